"""Colour fidelity and tile seams of a pymars model on the development tiles (issue 14's fidelity targets).

For every tile and quality it records the **mean signed error per channel**
(decoded minus original, in 8-bit levels: a colour or brightness drift, which
PSNR hides) and, on windows of 2 x 2 coding tiles, the **seam ratio**: the mean
absolute error on the pixels next to an internal tile boundary (the two rows and
two columns that touch it) over the mean absolute error of the rest. 1.0 means
no seam.

Run:  python bench/fidelity.py [--model NAME|FOLDER] [--groups ...] [--qualities 1,50,100] [--out FILE]

Writes a JSON document (default: printed only) and prints the worst tile per
group and quality. Needs ../shared (or $PYMARS_SHARED).

Example:
    >>> import numpy as np
    >>> seam_ratio(np.zeros((64, 64)), np.pad(np.ones((2, 64)), ((31, 31), (0, 0))), 32)
    inf
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def mean_signed_error(orig: np.ndarray, dec: np.ndarray) -> list[float]:
    """Per channel mean of ``dec - orig`` in levels.

    Example:
        >>> mean_signed_error(np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 2, np.uint8))
        [2.0, 2.0, 2.0]
    """
    d = dec.astype(np.float64) - orig.astype(np.float64)
    d = d[..., None] if d.ndim == 2 else d
    return [float(v) for v in d.reshape(-1, d.shape[-1]).mean(0)]


def seam_ratio(orig: np.ndarray, dec: np.ndarray, tile: int) -> float:
    """Mean |error| on the rows/columns touching internal tile boundaries over the rest's.

    Example:
        >>> seam_ratio(np.zeros((64, 64)), np.ones((64, 64)), 32)
        1.0
    """
    err = np.abs(dec.astype(np.float64) - orig.astype(np.float64))
    err = err.mean(-1) if err.ndim == 3 else err
    mask = np.zeros(err.shape, bool)
    for b in range(tile, err.shape[0], tile):
        mask[b - 1 : b + 1] = True
    for b in range(tile, err.shape[1], tile):
        mask[:, b - 1 : b + 1] = True
    inner = err[~mask].mean()
    return float(err[mask].mean() / inner) if inner > 0 else float("inf")


def seam_windows(group: str, count: int = 8, side: int = 512) -> list[np.ndarray]:
    """``count`` windows of ``side`` x ``side`` (2 x 2 coding tiles) from a group's prepared images."""
    from pymars.evaluation.protocol import column_rule_windows, group_files, prepared_image

    out = []
    for path in group_files(group):
        img = prepared_image(group, path)
        for y, x in column_rule_windows(img, side):  # < 1 % black, like the protocol's tiles
            out.append(np.ascontiguousarray(img[y : y + side, x : x + side]))
            break
        if len(out) >= count:
            break
    return out


def run(model, groups, qualities, seam_count: int = 4, progress: bool = True) -> dict:
    from tqdm import tqdm

    import pymars
    from pymars.evaluation.protocol import dev_tiles

    bundle = pymars.open_bundle(model)
    doc = {"model": bundle.name, "model_id": bundle.model_id.hex(), "qualities": list(qualities), "groups": {}}
    for group in groups:
        tiles = dev_tiles(group)
        recs = []
        for t in tqdm(tiles, desc=f"{group} tiles", disable=not progress):
            for q in qualities:
                dec = pymars.decode(pymars.encode(t.pixels, q, model=bundle), model=bundle)
                recs.append({"tile": t.tile_id, "quality": q, "mean_signed_error": mean_signed_error(t.pixels, dec)})
        seams = []
        for w in tqdm(seam_windows(group, seam_count), desc=f"{group} seams", disable=not progress):
            for q in qualities:
                dec = pymars.decode(pymars.encode(w, q, model=bundle), model=bundle)
                seams.append({"quality": q, "seam_ratio": seam_ratio(w, dec, 256)})
        worst = {}
        for q in qualities:
            errs = [max(abs(v) for v in r["mean_signed_error"]) for r in recs if r["quality"] == q]
            sr = [s["seam_ratio"] for s in seams if s["quality"] == q]
            worst[str(q)] = {"worst_abs_mean_error": max(errs), "median_abs_mean_error": float(np.median(errs)),
                             "mean_seam_ratio": float(np.mean(sr)) if sr else None,
                             "worst_seam_ratio": max(sr) if sr else None}
        doc["groups"][group] = {"tiles": len(tiles), "seam_windows": len(seams) // max(1, len(qualities)),
                                "summary": worst, "records": recs, "seams": seams}
    return doc


def main(argv=None) -> int:
    from pymars.evaluation.protocol import GROUPS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--groups", default=",".join(GROUPS))
    ap.add_argument("--qualities", default="1,50,100")
    ap.add_argument("--seam-windows", type=int, default=4, help="512x512 windows per group for the seam ratio")
    ap.add_argument("--out", type=Path, default=None, help="result JSON (written atomically)")
    args = ap.parse_args(argv)
    doc = run(args.model, [g for g in args.groups.split(",") if g], [int(q) for q in args.qualities.split(",")],
              args.seam_windows)
    doc["command"] = " ".join(["python", *sys.argv])
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731  (groups without 512x512 windows)
    for group, entry in doc["groups"].items():
        for q, s in entry["summary"].items():
            print(f"{group:22s} q{q:>3}: worst |mean error| {s['worst_abs_mean_error']:.2f} levels "
                  f"(median {s['median_abs_mean_error']:.2f}); seam ratio {fmt(s['mean_seam_ratio'])} "
                  f"(worst {fmt(s['worst_seam_ratio'])})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
