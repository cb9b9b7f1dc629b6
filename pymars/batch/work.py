"""The work of one batch item, run inside a Dask worker (or the plain loop): read, process, write atomically.

What it is for: :func:`process_item` turns one input into one output and a
manifest row, and never raises for a bad item (its error becomes the row's
one-line ``error``), so one corrupt product cannot stop a job. Models are
loaded once per worker process: the codec's bundles and ONNX sessions are
cached by :mod:`pymars.bundles` and :mod:`pymars.ground.synthesis`, the
enhancers here (:func:`enhancer`, an ``lru_cache`` keyed by model name,
dictionary, threads and providers).

What it must not touch: PyTorch and training code; the enhance product only
inside :func:`enhancer` (docs/architecture.md, rule 6); ``os.replace`` (the
output goes through :class:`pymars.clio.AtomicOutput`).

Example:
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from pymars.imageio import write_image
    >>> from pymars.data.synthetic import mars_like_scene
    >>> d = Path(tempfile.mkdtemp()); write_image(d / "a.png", mars_like_scene(32, 32, seed=1))
    >>> row = process_item("encode", str(d / "a.png"), str(d / "out" / "a.pmrs"), {"psnr": True})
    >>> row["status"], row["bytes"] > 0, row["psnr"] > 25
    ('ok', True, True)
    >>> process_item("decode", str(d / "a.png"), str(d / "out" / "b.png"), {})["error"][:30]
    'not a valid pymars file: not a'
"""
from __future__ import annotations

import functools
import os
import socket
import time
import warnings
from pathlib import Path

import numpy as np

from pymars.evaluation import metrics
from pymars.imageio import read_source


def one_line(e: BaseException) -> str:
    """An exception as one manifest-safe line: the message of an expected failure, else ``Type: message``.

    Example:
        >>> one_line(ValueError("bad\\nlabel")), one_line(KeyError("x"))
        ('bad label', "KeyError: 'x'")
    """
    from pymars.clio import expected_failure

    text = expected_failure(e)
    if text is None:
        text = f"{type(e).__name__}: {e}"
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())[:500]


@functools.lru_cache(maxsize=4)
def enhancer(model: str, dictionary: str | None, threads: int | None, providers: tuple[str, ...] | None,
             batch: int = 1):
    """The enhancer ``model`` with its ONNX sessions, made once per worker process (then cached).

    Example:
        >>> enhancer("arcnn-jpeg30", None, 1, None) is enhancer("arcnn-jpeg30", None, 1, None)
        True
    """
    from pymars.enhance.cli import resolve_model  # the product, only when an enhance job runs
    from pymars.enhance.inference import Enhancer

    return Enhancer(resolve_model(model), dictionary=dictionary, threads=threads,
                    providers=list(providers) if providers else None, batch=batch)


def _encode(src: str, out: str, opts: dict, row: dict) -> None:
    import pymars
    from pymars.clio import atomic_write

    img, depth, identity = read_source(src)
    row.update(identity)
    lossless = bool(opts.get("lossless"))
    data = pymars.encode(img, quality=opts.get("quality", 75), model=opts.get("model"), threads=1,
                         bit_depth=depth,
                         max_error=0 if lossless else opts.get("max_error"))
    if opts.get("psnr"):
        peak = 255.0 if img.dtype == np.uint8 else float((1 << pymars.info(data)["bit_depth"]) - 1)
        back = pymars.decode(data, model=opts.get("model"))
        if back.ndim == 2 and img.ndim == 3:  # an RGB image of equal channels is coded as gray
            back = np.repeat(back[..., None], 3, axis=2)
        row["psnr"] = round(metrics.psnr(img, back, peak=peak), 3)
    atomic_write(out, data)
    row["bytes"] = len(data)


def _decode(src: str, out: str, opts: dict, row: dict) -> None:
    import pymars
    from pymars.clio import atomic_write
    from pymars.imageio import image_bytes

    with open(src, "rb") as f:
        data = f.read()
    with warnings.catch_warnings():  # damaged tiles go to the manifest, not to the worker's log
        warnings.simplefilter("ignore")
        img, report = pymars.decode_with_report(data, model=opts.get("model"), providers=opts.get("providers"))
    blob = image_bytes(img, Path(out).suffix)
    atomic_write(out, blob)
    row["bytes"] = len(blob)
    if not report.ok:  # the image is written (damaged tiles filled with 0): ok, with what was lost
        row["error"] = report.describe()


def _enhance(src: str, out: str, opts: dict, row: dict) -> None:
    from pymars.clio import atomic_write
    from pymars.enhance.jpeg_quality import AUTO, choose_model  # the product, only when an enhance job runs
    from pymars.imageio import image_bytes, is_pds

    img, _, identity = read_source(src)
    row.update(identity)
    if img.dtype != np.uint8:
        raise ValueError(f"{src}: the enhancers work on 8-bit images, got {img.dtype}")
    data = None
    if not is_pds(src):
        with open(src, "rb") as f:
            data = f.read()
    # "auto": the model of each JPEG's quality; above every model's reach the image is written unchanged
    # and the row says so (status ok, the note in `error`, as a decoded file's damaged tiles are).
    model, _, note = choose_model(opts.get("model") or AUTO, data, gray=img.ndim == 2)
    if note:
        row["error"] = note
    if model is None:
        blob = image_bytes(img, ".png")
        atomic_write(out, blob)
        row["bytes"] = len(blob)
        return
    providers = opts.get("providers")
    enh = enhancer(model, opts.get("dictionary"), opts.get("threads", 1),
                   tuple(providers) if providers else None, opts.get("batch", 1))
    blob = image_bytes(enh.enhance(img), ".png")
    atomic_write(out, blob)
    row["bytes"] = len(blob)


@functools.lru_cache(maxsize=2)
def spectral_predictor(model: str, threads: int):
    """The spectral model ``model`` (ONNX Runtime), made once per worker process (then cached).

    Example:
        >>> spectral_predictor("unet", 1) is spectral_predictor("unet", 1)
        True
    """
    from pymars.spectral.predict import SpectralPredictor  # the product, only when a spectral job runs

    return SpectralPredictor(model, threads=threads)


def _spectral(src: str, out: str, opts: dict, row: dict) -> None:
    from pymars.clio import atomic_write
    from pymars.imageio import image_bytes
    from pymars.spectral.cli import read_cassis

    img = read_cassis(src)  # the checks of `pymars spectral predict`: 8-bit RGB, size
    predictor = spectral_predictor(opts.get("model") or "diffusion", opts.get("threads", 1))
    fal = predictor.predict(img, lat=opts.get("lat"), lon=opts.get("lon"), site=opts.get("site"),
                            steps=opts.get("steps"), seed=opts.get("seed"))
    blob = image_bytes(fal, ".png")
    atomic_write(out, blob)
    row["bytes"] = len(blob)


WORK = {"encode": _encode, "decode": _decode, "enhance": _enhance, "spectral": _spectral}


def process_item(kind: str, input_path: str, output: str, options: dict) -> dict:
    """Process one input into ``output``; the manifest row (status ``ok`` or ``failed`` with a one-line error).

    ``options``: encode ``quality``, ``lossless``, ``max_error``, ``model``,
    ``psnr``; decode ``model``, ``providers``; enhance ``model``,
    ``dictionary``, ``threads``, ``providers``, ``batch``; spectral ``model``, ``threads``,
    ``steps``, ``seed`` and the scene's ``lat``, ``lon``, ``site`` (a manifest
    row's own). Never raises for a bad item.
    """
    row = {"input": input_path, "output": output, "status": "failed", "error": "",
           "worker": f"{socket.gethostname()}:{os.getpid()}"}
    t0 = time.perf_counter()
    try:
        WORK[kind](input_path, output, options, row)
        row["status"] = "ok"
    except Exception as e:  # one bad item is a row, not the end of the job
        row["error"] = one_line(e)
    row["seconds"] = round(time.perf_counter() - t0, 4)
    return row
