"""Texture-matcher speed: pymars' C++ LBP histograms against scikit-image, and dictionary search throughput.

What it measures (one thread, medians of ``--repeats`` runs):

* the whole-image LBP histogram of a 1152x1600 gray image (the size of a
  MarsScapes panorama tile) with ``pymars.texture.lbp_histograms`` against
  ``skimage.feature.local_binary_pattern(P=8, R=1)`` followed by
  ``np.bincount`` -- the straightforward Python way. Variants are paired by
  bin count: default (256) <-> skimage 'default', uniform (59) <-> 'nri_uniform',
  riu2 (10) <-> 'uniform'. scikit-image samples the diagonal neighbours on a
  circle (bilinear interpolation) while pymars uses the 8 pixel neighbours (the
  integer definition the rover can reproduce bit-exactly, docs/texture-matcher.md),
  so the histograms differ slightly; the work per pixel is the same task;
* per-patch histograms (128x128 patches) of the same image;
* ``nearest_histogram`` over dictionaries of 64 .. 4096 histograms (KL and JS,
  fixed point): queries per second and histogram comparisons per second.

The image is a real Mars image from ``../shared/data/mars`` when one is
present, otherwise the built-in synthetic terrain (the speed does not depend
on content much; the script says which it used).

Run:  python bench/matcher_speed.py [--repeats 7] [--json bench/results/matcher_speed.json]

Example:
    >>> t = median_seconds(lambda: sum(range(1000)), repeats=3)
    >>> t > 0
    True
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from pymars import texture  # noqa: E402

#: pymars variant -> scikit-image method with the same number of bins.
SKIMAGE_METHOD = {"default": "default", "uniform": "nri_uniform", "riu2": "uniform"}
HEIGHT, WIDTH = 1152, 1600


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def test_image() -> tuple[np.ndarray, str]:
    """A 1152x1600 uint8 gray image: a real Mars image when ../shared is present, else synthetic."""
    shared = Path(os.environ.get("PYMARS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    mars = shared / "data" / "mars"
    # only photographs: the label masks next to them are PNGs too
    candidates = sorted(p for p in mars.rglob("*.png") if p.parent.name == "images") if mars.is_dir() else []
    from PIL import Image

    for path in candidates:
        with Image.open(path) as im:
            if im.width >= WIDTH and im.height >= HEIGHT and im.mode in ("L", "RGB"):
                gray = np.asarray(im.convert("RGB"))
                return texture.rgb_to_gray(np.ascontiguousarray(gray[:HEIGHT, :WIDTH])), str(path.relative_to(shared))
    from pymars.data.synthetic import mars_like_scene

    rgb = mars_like_scene(HEIGHT, WIDTH, seed=0)
    return texture.rgb_to_gray(np.ascontiguousarray(rgb)), "synthetic mars_like_scene(seed=0)"


def histogram_speed(gray: np.ndarray, repeats: int) -> list[dict]:
    from skimage.feature import local_binary_pattern

    rows = []
    for variant, method in SKIMAGE_METHOD.items():
        bins = texture.LBP_BINS[variant]

        def ours():
            return texture.lbp_histograms(gray, variant)

        def theirs():
            codes = local_binary_pattern(gray, P=8, R=1, method=method)
            return np.bincount(codes.astype(np.int64).ravel(), minlength=bins)

        t_ours, t_theirs = median_seconds(ours, repeats), median_seconds(theirs, repeats)
        t_patch = median_seconds(lambda: texture.lbp_histograms(gray, variant, patch=128), repeats)
        assert ours().shape == (bins,) and theirs().shape == (bins,)
        rows.append({
            "variant": variant, "skimage_method": method, "bins": bins,
            "pymars_ms": 1e3 * t_ours, "pymars_patch128_ms": 1e3 * t_patch, "skimage_ms": 1e3 * t_theirs,
            "speedup": t_theirs / t_ours, "pymars_mpx_per_s": gray.size / t_ours / 1e6,
        })
    return rows


def search_speed(repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for size in (64, 512, 4096):
        for variant in ("default", "riu2"):
            bins = texture.LBP_BINS[variant]
            dictionary = rng.integers(0, 4000, size=(size, bins), dtype=np.uint32)
            query = rng.integers(0, 4000, size=bins, dtype=np.uint32)
            for metric in ("kl", "js"):
                t = median_seconds(lambda: texture.nearest_histogram(query, dictionary, metric), repeats)
                rows.append({"dictionary": size, "bins": bins, "metric": metric, "query_ms": 1e3 * t,
                             "queries_per_s": 1 / t, "comparisons_per_s": size / t})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", help="write the figures to this JSON file")
    args = ap.parse_args(argv)

    gray, source = test_image()
    print(f"image: {gray.shape[1]}x{gray.shape[0]} gray from {source}; one thread; medians of {args.repeats}")
    hist = histogram_speed(gray, args.repeats)
    print("\nwhole-image LBP histogram (8 neighbours, radius 1)")
    print(f"{'variant':8} {'bins':>4} {'pymars ms':>10} {'patch128 ms':>12} {'skimage ms':>11} {'speed-up':>9} {'Mpx/s':>8}")
    for r in hist:
        print(f"{r['variant']:8} {r['bins']:4d} {r['pymars_ms']:10.2f} {r['pymars_patch128_ms']:12.2f} "
              f"{r['skimage_ms']:11.1f} {r['speedup']:8.0f}x {r['pymars_mpx_per_s']:8.0f}")
    search = search_speed(args.repeats)
    print("\ndictionary search (nearest_histogram, fixed-point divergences)")
    print(f"{'N':>5} {'bins':>4} {'metric':6} {'ms/query':>9} {'queries/s':>10} {'comparisons/s':>14}")
    for r in search:
        print(f"{r['dictionary']:5d} {r['bins']:4d} {r['metric']:6} {r['query_ms']:9.3f} "
              f"{r['queries_per_s']:10.0f} {r['comparisons_per_s']:14.3g}")
    if args.json:
        import skimage

        Path(args.json).write_text(json.dumps({"image": source, "shape": list(gray.shape), "repeats": args.repeats,
                                               "skimage": skimage.__version__, "histograms": hist,
                                               "search": search}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
