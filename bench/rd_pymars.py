"""RD of pymars on the development tiles (`mars-rd-1`), side by side with the classic codecs.

pymars is registered as one more codec of ``bench/rd_classic.py``'s registry,
so it is coded, timed and scored exactly like the classic codecs (complete file
bytes, PSNR over all channels, MS-SSIM, per-tile means, BD-rate with PCHIP).
The classic codecs' records are read from their result file (default
``bench/results/classic_rd.json``, made by ``bench/rd_classic.py``) instead of
being re-run; the tile lists must be identical, and this script checks that.

It also decodes every pymars file through the PyTorch path and reports the
largest PSNR difference between the ONNX Runtime and PyTorch reconstructions.

Run:  python bench/rd_pymars.py [--quick] [--model NAME] [--qualities 1,15,...]

Example:
    >>> pymars_codec().name
    'pymars'
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench modules, also when loaded by path

import numpy as np
import rd_classic

from pymars.evaluation import bdrate
from pymars.evaluation.classic import Codec
from pymars.evaluation.metrics import psnr
from pymars.evaluation.protocol import GROUPS

#: The eight trained rate levels sit at these qualities (q = 1 + 99 * level / 7, rounded).
DEFAULT_QUALITIES = (1, 15, 29, 43, 58, 72, 86, 100)


def pymars_codec(model=None, qualities=DEFAULT_QUALITIES, backend: str = "onnx") -> Codec:
    """pymars as a registry entry (C++ encoder, ``backend`` synthesis).

    Example:
        >>> pymars_codec(qualities=(10, 90)).qualities
        (10, 90)
    """
    import pymars

    bundle = pymars.open_bundle(model)

    def encode(tile, q):
        return pymars.encode(tile, int(q), model=bundle)

    def decode(data, shape):
        return pymars.decode(data, backend=backend, model=bundle).reshape(shape)

    settings = {"model": bundle.name, "model_id": bundle.model_id.hex() if bundle.available else None,
                "backend": backend, "tile_size": 256, "threads": 1}
    return Codec("pymars", tuple(qualities), encode=encode, decode=decode, settings=settings)


def torch_agreement(records_by_group: dict, model=None) -> dict:
    """Max |PSNR(ONNX) - PSNR(PyTorch)| over every coded tile, per group."""
    import pymars
    from pymars.evaluation.protocol import dev_tiles

    bundle = pymars.open_bundle(model)
    out = {}
    for group, recs in records_by_group.items():
        tiles = {t.tile_id: t.pixels for t in dev_tiles(group)}
        worst = 0.0
        for r in recs:
            if r["codec"] != "pymars":
                continue
            data = pymars.encode(tiles[r["tile"]], int(r["quality"]), model=bundle)
            rec_t = pymars.decode(data, backend="torch", model=bundle).reshape(tiles[r["tile"]].shape)
            worst = max(worst, abs(psnr(tiles[r["tile"]], rec_t) - r["psnr"]))
        out[group] = worst
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--qualities", default=",".join(map(str, DEFAULT_QUALITIES)))
    ap.add_argument("--classic", type=Path, default=rd_classic.DEFAULT_OUT)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-torch-check", action="store_true")
    args = ap.parse_args(argv)

    qualities = tuple(int(q) for q in args.qualities.split(","))
    rd_classic.register(pymars_codec(args.model, qualities))
    groups = [g for g in args.groups.split(",") if g]
    doc = rd_classic.run(groups, ["pymars"], quick=args.quick)
    classic_path = rd_classic.QUICK_OUT if args.quick and args.classic == rd_classic.DEFAULT_OUT else args.classic
    classic = json.loads(Path(classic_path).read_text()) if Path(classic_path).exists() else None
    for group in groups:
        entry = doc["groups"][group]
        if classic and group in classic["groups"]:
            if classic["groups"][group]["tile_ids"] != entry["tile_ids"]:
                raise SystemExit(f"{group}: tile lists of {classic_path} and this run differ")
            entry["records"] = classic["groups"][group]["records"] + entry["records"]
            entry["summary"] = bdrate.summarize_group(entry["records"])
    if not args.no_torch_check:
        doc["onnx_vs_torch_max_psnr_difference_db"] = torch_agreement(
            {g: doc["groups"][g]["records"] for g in groups}, args.model)
    out = args.out or Path("bench/results") / ("pymars_rd_quick.json" if args.quick else "pymars_rd.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    print(rd_classic.format_report(doc))
    if "onnx_vs_torch_max_psnr_difference_db" in doc:
        print("\nONNX Runtime vs PyTorch synthesis, max |PSNR difference| (dB):",
              json.dumps(doc["onnx_vs_torch_max_psnr_difference_db"]))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
