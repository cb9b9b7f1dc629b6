"""Lossless and near-lossless coding of raw-like colour frames: a check the JPEG-decoded colour sets cannot give.

The colour development groups are JPEG-decoded (../shared PROVENANCE.md): their colour
differences are piecewise flat, which the near-lossless coders' channel-difference
prediction exploits. A raw colour frame (debayered from the sensor, as a lossless
downlink holds) has channels that differ by a gain and carry their own noise. ../shared
has none, so this bench makes them: each gray Navcam development tile (dev_navcam_pds,
the first 8 of dev_navcam; held-out sols) becomes R, G, B = x, 0.78 x + 6, 0.55 x + 10
plus independent Gaussian noise of 1.5 levels per channel (seed 0), rounded and clipped.
It reports bits per sample of each pymars model at k = 0, 2, 6 and of JPEG XL (effort 7),
JPEG-LS, JPEG 2000 and PNG lossless on the same tiles; every decoded tile is checked.

Run:  python bench/lossless_raw_colour.py [--models base-v1-nl,base-v2-nl] [--out FILE]

Needs ../shared (or $PYMARS_SHARED).

Example:
    >>> import numpy as np
    >>> raw_like(np.full((4, 4), 100, np.uint8), np.random.default_rng(0)).shape
    (4, 4, 3)
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

GAINS, OFFSETS, NOISE = (1.0, 0.78, 0.55), (0.0, 6.0, 10.0), 1.5


def raw_like(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A raw-like colour tile (H, W, 3) uint8 from a gray tile: per-channel gain, offset and independent noise.

    Example:
        >>> t = raw_like(np.zeros((2, 3), np.uint8), np.random.default_rng(1))
        >>> t.dtype, t.shape
        (dtype('uint8'), (2, 3, 3))
    """
    f = gray.astype(np.float64)
    img = np.stack([g * f + o for g, o in zip(GAINS, OFFSETS)], -1) + rng.normal(0, NOISE, f.shape + (3,))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def run(models: list[str], errors=(0, 2, 6)) -> dict:
    """Bits per sample per model and k, and of the classic lossless codecs, on the raw-like tiles.

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or "jpegxl" in run(["base-v2-nl"], errors=(0,))["bits_per_sample"]
        True
    """
    import imagecodecs as ic

    import pymars
    from pymars.evaluation.protocol import dev_tiles

    rng = np.random.default_rng(0)
    grays = [t.pixels for t in dev_tiles("dev_navcam_pds")] + [t.pixels for t in dev_tiles("dev_navcam")][:8]
    tiles = [raw_like(g, rng) for g in grays]
    n = sum(t.size for t in tiles)
    out: dict = {"tiles": len(tiles), "bits_per_sample": {}}
    for name in models:
        b = pymars.open_bundle(name)
        row = {}
        for k in errors:
            q = b.core.quality_for_max_error(k)
            bits = 0
            for t in tiles:
                data = pymars.encode(t, q, model=b)
                dec = pymars.decode(data, model=b).reshape(t.shape)
                if int(np.abs(dec.astype(int) - t).max()) > k:
                    raise RuntimeError(f"{name}: a tile exceeds k = {k}")
                bits += 8 * len(data)
            row[f"k{k}"] = bits / n
        out["bits_per_sample"][name] = row
    codecs = {"jpegxl": lambda t: ic.jpegxl_encode(t, lossless=True, effort=7),
              "jpegls": lambda t: ic.jpegls_encode(t),
              "jpeg2000": lambda t: ic.jpeg2k_encode(t, level=0, reversible=True),
              "png": lambda t: ic.png_encode(t, level=9)}
    for name, enc in codecs.items():
        out["bits_per_sample"][name] = {"k0": sum(8 * len(enc(t)) for t in tiles) / n}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="base-v1-nl,base-v2-nl")
    ap.add_argument("--out", default="bench/results/lossless_raw_colour.json")
    args = ap.parse_args(argv)
    from pymars.clio import write_json

    result = run([m for m in args.models.split(",") if m])
    result["command"] = "python bench/lossless_raw_colour.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name, row in result["bits_per_sample"].items():
        print(f"{name:12s} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()))
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
