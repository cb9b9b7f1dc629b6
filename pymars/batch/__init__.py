"""Batch processing of whole folders (or manifests) of products on Dask distributed: ``pymars batch ...``.

What it is for: the ground segment runs encode, decode, enhance and spectral over
archives of many thousands of files. :func:`run_batch` streams the inputs
(:mod:`pymars.batch.inputs`) to a Dask cluster (a local cluster of processes
by default, or an existing one by address; no Dask at all with
``workers=0``), keeps at most about two tasks per worker in flight, writes each
output atomically next to its siblings, and records one row per input in
``OUT_DIR/manifest.csv`` (:mod:`pymars.batch.manifest`), so that a second run
does only what is missing or failed. The per-item work
(:mod:`pymars.batch.work`) loads each model once per worker process.

What it must not touch: PyTorch and training code, ever; a product (the
enhancers) only inside the function that runs it (docs/architecture.md, rule
6: this package is a composition root like ``pymars/cli.py``); ``os.replace``
(outputs and the manifest go through :mod:`pymars.clio`).

Example:
    >>> from pymars.batch import KINDS
    >>> KINDS
    ('encode', 'decode', 'enhance', 'spectral')
"""
from __future__ import annotations

from pymars.batch.engine import KINDS, run_batch

__all__ = ["KINDS", "run_batch"]
