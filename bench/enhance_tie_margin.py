"""TEM's tie margin: how it changes MarsQE's output, and how far ONNX Runtime and PyTorch then agree.

Eq. 5 of MarsQE picks, for each 4x4 feature block, the reference block of
highest cosine similarity. Near a tie that arg-max flips under float
rounding, and ONNX Runtime and PyTorch round differently, so the two
backends can disagree on whole images (pymars.enhance.networks.TextureExtraction).
This script re-exports one shipped MarsQE model with several tie margins
(0 = the literal arg-max) into a temporary folder and, on every
``--every``-th development tile (../shared/EVALUATION.md), reports:

* the max abs difference of the whole-image ONNX Runtime and PyTorch outputs;
* PSNR of the PyTorch output against the raw tile, and its max abs change
  against the literal arg-max.

Writes bench/results/enhance_tie_margin.json (or ``--out``) and prints a table.

Run:  python bench/enhance_tie_margin.py --model marsqe-jpeg20 --margins 0,1e-3,1e-2 --every 10

Example:
    >>> psnr(np.zeros((3, 2, 2), np.float32), np.full((3, 2, 2), 0.1, np.float32))
    20.0
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from pymars.clio import write_json


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1]."""
    return float(round(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)), 6))


def main(argv=None) -> int:
    import torch
    from tqdm import tqdm

    from pymars.enhance.cli import resolve_model
    from pymars.enhance.codecs import compress
    from pymars.enhance.dictionary import Dictionary
    from pymars.enhance.export import reexport
    from pymars.enhance.inference import Enhancer, load_classifier
    from pymars.evaluation.protocol import GROUPS, dev_tiles

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="marsqe-jpeg20")
    ap.add_argument("--margins", default="0,1e-3,1e-2")
    ap.add_argument("--every", type=int, default=10, help="every N-th development tile (the first one always)")
    ap.add_argument("--dictionary", default="runs/enhance/dictionary-6.npz")
    ap.add_argument("--out", default="bench/results/enhance_tie_margin.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    folder = resolve_model(args.model)
    margins = [float(m) for m in args.margins.split(",")]
    tiles = [t for g in GROUPS for t in dev_tiles(g)]
    tiles = tiles[:1] + tiles[args.every - 1::args.every]
    clf = load_classifier()
    d = Dictionary.load(args.dictionary) if Path(args.dictionary).is_file() else None
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        pairs = {}
        for m in margins:
            reexport(folder, Path(tmp) / f"m{m:g}", tem_margin=m)
            pairs[m] = (Enhancer(Path(tmp) / f"m{m:g}", dictionary=d, classifier=clf),
                        Enhancer(Path(tmp) / f"m{m:g}", dictionary=d, classifier=clf, backend="torch"))
        setting = pairs[margins[0]][0].meta["setting"].split(",")[0]
        for t in tqdm(tiles, desc="tiles"):
            raw = t.pixels if t.pixels.ndim == 3 else np.repeat(t.pixels[:, :, None], 3, 2)
            dec, _ = compress(raw, setting)
            ref = raw.transpose(2, 0, 1).astype(np.float32) / 255
            outs = {}
            for m, (onnx_enh, torch_enh) in pairs.items():
                o, p = onnx_enh.enhance_float(dec), torch_enh.enhance_float(dec)
                outs[m] = p
                rows.setdefault(f"{m:g}", []).append({
                    "tile": t.tile_id, "onnx_vs_torch_max_abs": float(np.abs(o - p).max()), "psnr": psnr(ref, p),
                    "vs_argmax_max_abs": float(np.abs(p - outs[margins[0]]).max()) if margins[0] == 0 else None})
    result = {"model": args.model, "setting": setting, "tiles": len(tiles), "margins": rows}
    out = Path(args.out)
    write_json(out, result)

    print(f"{args.model} on {setting}, {len(tiles)} development tiles")
    print("| margin | max ONNX vs PyTorch | mean PSNR (dB) | PSNR gain over arg-max (min / max, dB) |")
    print("|---|---|---|---|")
    base = rows.get("0")
    for m, r in rows.items():
        gains = [x["psnr"] - b["psnr"] for x, b in zip(r, base)] if base else [float("nan")]
        print(f"| {m} | {max(x['onnx_vs_torch_max_abs'] for x in r):.1e} | {np.mean([x['psnr'] for x in r]):.4f} | "
              f"{min(gains):+.4f} / {max(gains):+.4f} |")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
