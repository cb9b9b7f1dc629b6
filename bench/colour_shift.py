"""A colour generalisation check: the dev colour tiles re-balanced the way other cameras differ.

The judging images come from other rovers and cameras (Perseverance Mastcam-Z and
Navcam): other white balance, saturation and tone curves than the Mastcam
panoramas and MarsData scenes of ../shared. This bench makes such images out of
the development tiles with fixed, documented transforms (the dev tiles
themselves are never changed) and codes them with two or more models, so a model
trained for one palette shows how far it follows another:

* ``green``: per-channel gains (0.85, 1.00, 1.10), the olive cast of a Navcam frame;
* ``blue``:  gains (0.80, 0.95, 1.20), a sky-balanced / white-balanced frame;
* ``pale``:  saturation x 0.4 about each pixel's gray (a nearly gray colour camera);
* ``vivid``: saturation x 1.6 and gamma 0.85 (a stretched, contrast-enhanced product);

each rounded back to 8 bits. Reported per model and variant: the RD curve (mean bpp,
mean PSNR over the tiles), the worst per-channel mean signed error, and the BD-rate
(PSNR) of every model against the first one.

Run:  python bench/colour_shift.py --models base-v1-tm,base-v2 [--groups dev_marsscapes,dev_marsdata]
                                   [--qualities 1,15,29,43,58,72,86,100] [--out FILE]

Example:
    >>> import numpy as np
    >>> v = variant(np.full((2, 2, 3), 100, np.uint8), "green")
    >>> v[0, 0].tolist()
    [85, 100, 110]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

VARIANTS = {
    "green": {"gains": (0.85, 1.00, 1.10)},
    "blue": {"gains": (0.80, 0.95, 1.20)},
    "pale": {"saturation": 0.4},
    "vivid": {"saturation": 1.6, "gamma": 0.85},
}


def variant(tile: np.ndarray, name: str) -> np.ndarray:
    """``tile`` (H, W, 3 uint8) re-balanced as the variant ``name`` (see the module docstring).

    Example:
        >>> variant(np.array([[[200, 100, 0]]], np.uint8), "pale").tolist()
        [[[140, 100, 60]]]
    """
    spec = VARIANTS[name]
    x = tile.astype(np.float64)
    if "gains" in spec:
        x = x * np.asarray(spec["gains"])
    if "saturation" in spec:
        g = x.mean(2, keepdims=True)
        x = g + (x - g) * spec["saturation"]
    if "gamma" in spec:
        x = 255.0 * np.power(np.clip(x, 0, 255) / 255.0, spec["gamma"])
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def run(models, groups, qualities, progress=True) -> dict:
    """RD per (group, variant, model) and BD-rate against the first model.

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or "green" in run(["base-v1-tm"], ["dev_marsdata"], [50], False)["groups"]["dev_marsdata"]
        True
    """
    from tqdm import tqdm

    import pymars
    from pymars.evaluation.bdrate import bd
    from pymars.evaluation.metrics import psnr
    from pymars.evaluation.protocol import dev_tiles

    bundles = [pymars.open_bundle(m) for m in models]
    doc = {"models": [{"name": b.name, "model_id": b.model_id.hex()} for b in bundles], "variants": VARIANTS,
           "qualities": list(qualities), "groups": {}}
    for group in groups:
        tiles = [t.pixels for t in dev_tiles(group)]
        doc["groups"][group] = {}
        for name in VARIANTS:
            shifted = [variant(t, name) for t in tiles]
            per_model = {}
            for b in bundles:
                bpp, ps, drift = [], [], []
                for q in tqdm(qualities, desc=f"{group} {name} {b.name}", disable=not progress):
                    bits, p, worst = 0, [], 0.0
                    for t in shifted:
                        data = pymars.encode(t, q, model=b)
                        dec = pymars.decode(data, model=b).reshape(t.shape)
                        bits += 8 * len(data)
                        p.append(psnr(t, dec))
                        worst = max(worst, float(np.abs((dec.astype(float) - t).reshape(-1, 3).mean(0)).max()))
                    bpp.append(bits / sum(t.shape[0] * t.shape[1] for t in shifted))
                    ps.append(float(np.mean(p)))
                    drift.append(worst)
                per_model[b.name] = {"bpp": bpp, "psnr": ps, "worst_abs_mean_error": drift}
            first = per_model[bundles[0].name]
            for b in bundles[1:]:
                cur = per_model[b.name]
                cur["bd_rate_vs_first"] = bd(first["bpp"], first["psnr"], cur["bpp"], cur["psnr"]).bd_rate
            doc["groups"][group][name] = per_model
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", required=True, help="comma-separated bundles; BD-rates are against the first")
    ap.add_argument("--groups", default="dev_marsscapes,dev_marsdata")
    ap.add_argument("--qualities", default="1,15,29,43,58,72,86,100")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    doc = run(args.models.split(","), args.groups.split(","), [int(q) for q in args.qualities.split(",")],
              progress=not args.no_progress)
    doc["command"] = "python bench/colour_shift.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for group, variants in doc["groups"].items():
        for name, per_model in variants.items():
            for m, r in per_model.items():
                bdr = r.get("bd_rate_vs_first")
                print(f"{group:15s} {name:6s} {m:14s} top {max(r['psnr']):.2f} dB at {r['bpp'][-1]:.3f} bpp, "
                      f"worst drift {max(r['worst_abs_mean_error']):.2f}"
                      + ("" if bdr is None else f", BD-rate vs {doc['models'][0]['name']} {bdr:+.1f} %"))
    if args.out:
        from pymars.clio import write_json

        write_json(args.out, doc)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
