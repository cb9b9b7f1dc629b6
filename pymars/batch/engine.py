"""The batch engine: inputs streamed to Dask distributed (or a plain loop), rows into the manifest.

What it is for: :func:`run_batch`, the one code path of ``pymars batch``.
With ``workers=N`` it starts a :class:`distributed.LocalCluster` of N
processes (one thread each: the codec and ONNX Runtime run one image per
process); with ``scheduler=ADDRESS`` it joins an existing cluster
(``dask scheduler`` + ``dask worker``); with ``workers=0`` it runs the same
per-item function in this process, without Dask (the reference for the
engine's overhead). At most ``2 x workers`` tasks are in flight, so memory
does not grow with the archive. A worker that dies is replaced by its nanny
and Dask runs its tasks again elsewhere; outputs are atomic, so a killed task
leaves no partial file.

What it must not touch: PyTorch, training code, a product (the work
functions import them when they run); ``os.replace``.

Example:
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from pymars.imageio import write_image
    >>> d = Path(tempfile.mkdtemp()); (d / "in").mkdir()
    >>> write_image(d / "in" / "a.png", np.full((32, 32), 50, np.uint8))
    >>> run_batch("encode", d / "in", d / "out", workers=0, progress=False)["ok"]
    1
    >>> run_batch("encode", d / "in", d / "out", workers=0, progress=False)["skipped"]
    1
"""
from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

from pymars.batch.inputs import iter_inputs, iter_items, output_for
from pymars.batch.manifest import MANIFEST, Manifest
from pymars.batch.work import one_line, process_item

KINDS = ("encode", "decode", "enhance", "spectral")
#: Tasks in flight per worker: one running, one queued, so a worker never waits for the client.
WINDOW_PER_WORKER = 2


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """OUT_DIR as a folder (made if missing); a file there is refused in one line.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "f"; _ = f.write_bytes(b"")
        >>> check_out_dir(f)
        Traceback (most recent call last):
        ...
        pymars.clio.OutputRefused: ...f: is a file; -o names the output folder
    """
    from pymars.clio import OutputRefused

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputRefused(f"{out_dir}: is a file; -o names the output folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def connect(workers: int, scheduler: str | None, timeout: float = 5.0):
    """(client, cluster or None): a new local cluster of ``workers`` processes, or the one at ``scheduler``.

    An unreachable scheduler is a one-line error. Needs ``dask[distributed]``
    (the ``cluster`` extra).

    Example:
        >>> connect(1, "tcp://127.0.0.1:9", timeout=1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ConnectionError: cannot reach the Dask scheduler at tcp://127.0.0.1:9 ...
    """
    import logging

    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("pymars batch needs Dask distributed (pip install 'pymars[cluster]')",
                          name="distributed") from None
    if scheduler:
        try:
            return Client(scheduler, timeout=timeout), None
        except (OSError, TimeoutError) as e:
            raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler} ({one_line(e)})") from None
    # dashboard off: no port to collide with, no bokeh; worker logs only for errors.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def run_batch(kind: str, source: str | os.PathLike, out_dir: str | os.PathLike, *, workers: int = 2,
              scheduler: str | None = None, options: dict | None = None, progress: bool = True,
              work: Callable[[str, str, str, dict], dict] | None = None, image_format: str = "png") -> dict:
    """Run a ``kind`` job over ``source`` (folder or CSV manifest) into ``out_dir``; returns the counts.

    ``options`` go to the per-item work (:func:`pymars.batch.work.process_item`);
    ``providers`` among them are checked here first (one line for a missing
    one). ``work`` replaces the per-item function (tests: a worker that dies).
    Returns ``{"ok", "failed", "skipped", "seconds", "manifest"}``; the
    manifest (OUT_DIR/manifest.csv) lists every input once.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown batch job {kind!r}: use one of {', '.join(KINDS)}")
    options = dict(options or {})
    if options.get("providers"):
        from pymars.ground.synthesis import onnx_providers

        options["providers"] = onnx_providers(options["providers"])
    inputs = iter_items(source, kind)
    first = next(inputs, None)  # a missing folder or a bad manifest fails here, before a cluster starts
    out = check_out_dir(out_dir)
    manifest = Manifest(out / MANIFEST)
    work = work or process_item
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    t0 = time.perf_counter()
    # The cluster first: an unreachable scheduler is refused before a progress bar is drawn.
    client, cluster = (None, None) if workers == 0 and not scheduler else connect(workers, scheduler)
    bar = _bar(_count(source, kind), kind, progress)

    def record(row: dict) -> None:
        manifest.record(row)
        counts["ok" if row["status"] == "ok" else "failed"] += 1
        bar.update(1)
        bar.set_postfix(ok=counts["ok"], failed=counts["failed"], skipped=counts["skipped"], refresh=False)

    def todo():
        """(input, output, options) still to do; skips finished ones, refuses a second input with the same stem."""
        taken: set[str] = set()
        for src, extra in _chain([first] if first is not None else [], inputs):
            dst = str(output_for(kind, src, out, image_format))
            if dst in taken:
                record({"input": src, "output": dst, "status": "failed",
                        "error": f"another input of this job already writes {Path(dst).name} (same stem)"})
                continue
            taken.add(dst)
            if manifest.done(src, dst):
                counts["skipped"] += 1
                bar.update(1)
                continue
            yield src, dst, {**options, **extra}  # a manifest row's own options (spectral: its metadata)

    try:
        if client is None:
            for src, dst, opts in todo():
                record(work(kind, src, dst, opts))
        else:
            _distributed(todo(), kind, work, client, workers, record)
    finally:
        manifest.flush()  # also on Ctrl-C: the manifest holds every finished item
        bar.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return {**counts, "seconds": round(time.perf_counter() - t0, 3), "manifest": str(manifest.path)}


def _chain(*its):
    for it in its:
        yield from it


def _distributed(items, kind: str, work, client, workers: int, record) -> None:
    """Submit ``items`` to Dask, at most WINDOW_PER_WORKER per worker in flight; record each result."""
    from distributed import as_completed

    n = len(client.scheduler_info().get("workers", {})) or max(1, workers)
    pending: dict = {}
    done = as_completed()
    tag = uuid.uuid4().hex[:8]
    serial = iter(range(1 << 62))

    def submit() -> bool:
        item = next(items, None)
        if item is None:
            return False
        src, dst, options = item
        # pure=False: the same input of a later run is new work; the key names the file for the logs.
        fut = client.submit(work, kind, src, dst, options, key=f"pymars-{kind}-{Path(src).name}-{tag}-{next(serial)}",
                            pure=False)
        pending[fut] = (src, dst)
        done.add(fut)
        return True

    for _ in range(WINDOW_PER_WORKER * n):
        if not submit():
            break
    for fut in done:
        src, dst = pending.pop(fut)
        try:
            row = fut.result()
        except Exception as e:  # KilledWorker (died too often on this item), a lost connection
            row = {"input": src, "output": dst, "status": "failed", "error": one_line(e)}
        fut.release()
        record(row)
        submit()


def _count(source, kind: str) -> int | None:
    """How many inputs (one more pass over names, no images), for the progress bar's total."""
    try:
        return sum(1 for _ in iter_inputs(source, kind))
    except (OSError, ValueError):
        return None


def _bar(total, kind: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"batch {kind}", unit="item", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True)
