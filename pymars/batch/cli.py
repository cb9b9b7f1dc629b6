"""``pymars batch encode|decode|enhance|spectral IN_DIR_OR_MANIFEST -o OUT_DIR``: the batch commands of the CLI.

What it is for: :func:`register` adds the ``batch`` group to the main parser
(pymars/cli.py calls it while building the parser); :func:`cmd_batch` runs
:func:`pymars.batch.run_batch` and prints one summary line. Exit status 0
when every item is ok, 1 when some failed (their errors are in the
manifest), 2 for a refused job (one line: a missing folder, an OUT_DIR that
is a file, an unreachable scheduler, a missing ONNX Runtime provider). It must
not import Dask, the codec or a product at import time.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
    >>> register(sub)
    >>> a = p.parse_args(["batch", "encode", "in/", "-o", "out/", "--lossless", "--workers", "0"])
    >>> a.batch_command, a.workers, a.lossless
    ('encode', 0, True)
"""
from __future__ import annotations

import os

from pymars.clio import positive_int


def cmd_batch(args) -> int:
    from pymars.batch.engine import run_batch

    kind = args.batch_command
    opts: dict = {}
    if kind == "encode":
        opts = {"quality": args.quality, "lossless": args.lossless, "max_error": args.max_error, "model": args.model,
                "psnr": args.psnr}
    elif kind == "decode":
        opts = {"model": args.model, "providers": args.providers}
    elif kind == "enhance":
        opts = {"model": args.model, "dictionary": args.dictionary, "providers": args.providers,
                "threads": args.threads, "batch": args.batch}
    elif kind == "spectral":
        opts = {"model": args.model, "threads": args.threads, "steps": args.steps, "seed": args.seed}
    res = run_batch(kind, args.input, args.output, workers=args.workers, scheduler=args.scheduler, options=opts,
                    progress=not args.quiet, image_format=getattr(args, "format", "png"))
    print(f"{res['manifest']}: {res['ok']} ok, {res['failed']} failed, {res['skipped']} already done, "
          f"{res['seconds']:.1f} s")
    return 0 if res["failed"] == 0 else 1


def register(sub) -> None:
    """Add ``batch encode``, ``batch decode``, ``batch enhance`` and ``batch spectral`` to the main parser's subparsers."""
    b = sub.add_parser("batch", help="encode, decode, enhance or predict spectral channels for a folder (or CSV "
                                     "manifest) of files on Dask; "
                                     "resumable, with OUT_DIR/manifest.csv (docs/ground-segment.md)")
    bsub = b.add_subparsers(dest="batch_command", required=True)

    def common(p):
        p.add_argument("input", help="folder of inputs, or a CSV manifest with an 'input' column")
        p.add_argument("-o", "--output", required=True, help="output folder (outputs keep the input stems; "
                                                             "manifest.csv records every input)")
        p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="local Dask worker processes (default: one per core; 0: a plain loop in this process)")
        p.add_argument("--scheduler", metavar="ADDRESS", help="join an existing Dask cluster, e.g. tcp://HOST:8786 "
                                                              "(--workers is then ignored)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=cmd_batch)

    e = bsub.add_parser("encode", help="images and PDS products -> OUT_DIR/<stem>.pmrs")
    common(e)
    g = e.add_mutually_exclusive_group()
    g.add_argument("-q", "--quality", type=int, default=75, help="1..100 (default 75)")
    g.add_argument("--max-error", type=int, metavar="K", help="near-lossless: every sample within +-K")
    g.add_argument("--lossless", action="store_true", help="every sample exact (8, 12 or 16-bit)")
    e.add_argument("--model", help="model bundle (default: the shipped one)")
    e.add_argument("--psnr", action="store_true", help="decode each file again and record its PSNR (slower)")

    d = bsub.add_parser("decode", help=".pmrs files -> OUT_DIR/<stem>.png (or .tif)")
    common(d)
    d.add_argument("--format", choices=("png", "tif"), default="png", help="output image format (default png)")
    d.add_argument("--model", help="model bundle (default: the one each file names)")
    d.add_argument("--providers", metavar="LIST", help="ONNX Runtime providers, e.g. TensorRT,CUDA,CPU (default CPU)")

    n = bsub.add_parser("enhance", help="8-bit images -> OUT_DIR/<stem>.png, enhanced")
    common(n)
    n.add_argument("--model", default="auto", help="enhancer name or folder (default %(default)s: the one for each "
                                                    "JPEG's quality, as `pymars enhance`)")
    n.add_argument("--dictionary", help="MarsQE reference dictionary .npz (default: rebuilt from ../shared)")
    n.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per worker (default 1)")
    n.add_argument("--providers", metavar="LIST", help="ONNX Runtime providers, e.g. TensorRT,CUDA,CPU (default CPU)")
    n.add_argument("--batch", type=positive_int, default=1, metavar="N",
                   help="windows per inference call (default 1; 8-32 for a GPU provider)")

    s = bsub.add_parser("spectral", help="CaSSIS 8-bit RGB composites -> OUT_DIR/<stem>.png, the predicted FAL "
                                         "composite (as `pymars spectral predict`)")
    common(s)
    s.add_argument("--model", default="diffusion", help="diffusion (default), unet, or a weights folder")
    s.add_argument("--steps", type=int, help="DDIM steps (default: the model's config)")
    s.add_argument("--seed", type=int, help="noise seed (default 0)")
    s.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per worker (default 1)")
    s.epilog = ("A CSV manifest may give each scene's metadata in lat, lon and site columns "
                "(empty cells: no metadata for that scene).")
