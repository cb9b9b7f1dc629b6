"""Lossless and near-lossless coding of 12-bit Navcam EDRs at their own bit depth.

pymars codes a 12/16-bit image with ``max_error=k`` at the source depth (the
range-coded near-lossless coder, docs/bitstream.md §4.8, header flag bit 1).
This bench cuts the four real 12-bit Navcam EDRs of ../shared/data/mars
(curiosity_navcam_pds, read raw with ``pdr``) into 256 x 256 tiles and reports
**bits per sample** of pymars lossless beside JPEG-LS (CharLS), JPEG XL lossless
(effort 7), JPEG 2000 lossless (reversible 5/3) and PNG (16-bit, level 9), and of
near-lossless k = 1, 2, 4 beside JPEG-LS NEAR = k, all through imagecodecs on the
same uint16 tiles. Every decoded tile is checked (exact, or within k).

Run:  python bench/lossless_high_depth.py [--errors 0,1,2,4] [--model NAME] [--out FILE]

Needs ../shared (or $PYMARS_SHARED). Writes bench/results/lossless_high_depth.json.

Example:
    >>> import numpy as np
    >>> [t.shape for t in tiles_of(np.zeros((300, 512), np.uint16))]
    [(256, 256), (256, 256)]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

TILE = 256


def read_edr_12bit(label: Path) -> np.ndarray:
    """The raw samples of a PDS3 Navcam EDR (label path) as uint16, without any scaling."""
    import pdr

    img = np.asarray(pdr.read(str(label))["IMAGE"])
    if img.ndim == 3:
        img = img[0]
    if int(img.max()) > 4095:
        raise ValueError(f"{label.name}: samples above 4095, not a 12-bit EDR")
    return img.astype(np.uint16)


def tiles_of(img: np.ndarray, side: int = TILE) -> list[np.ndarray]:
    """Whole side x side tiles in raster order (partial edge tiles dropped)."""
    return [np.ascontiguousarray(img[y : y + side, x : x + side])
            for y in range(0, img.shape[0] - side + 1, side) for x in range(0, img.shape[1] - side + 1, side)]


def classic(tile: np.ndarray, k: int) -> dict[str, bytes]:
    """The classic codecs' files of a 12-bit uint16 tile at maximum error k (k = 0: every lossless codec)."""
    import imagecodecs as ic

    out = {"jpegls": ic.jpegls_encode(tile, level=k)}
    if k == 0:
        out["jpegxl"] = ic.jpegxl_encode(tile, lossless=True, effort=7, bitspersample=12)
        out["jpeg2000"] = ic.jpeg2k_encode(tile, level=0, reversible=True, bitspersample=12)
        out["png"] = ic.png_encode(tile, level=9)
    return out


def jpegls_sample_bits(data: bytes) -> int:
    """The sample precision P a JPEG-LS file was coded with (its SOF55 marker segment).

    imagecodecs' jpegls_encode takes no bit depth: a uint16 tile is coded with
    P = 16 (MAXVAL 65535) even when every sample fits 12 bits, which costs CharLS a
    little (a larger error range, a longer escape limit, a slower start of its
    context statistics). The figure is recorded so the comparison says so.

    Example:
        >>> import imagecodecs
        >>> jpegls_sample_bits(imagecodecs.jpegls_encode(np.zeros((8, 8), np.uint8)))
        8
    """
    i = data.find(b"\xff\xf7")
    return data[i + 4] if i >= 0 else 0


def decode_classic(name: str, data: bytes) -> np.ndarray:
    import imagecodecs as ic

    return {"jpegls": ic.jpegls_decode, "jpegxl": ic.jpegxl_decode, "jpeg2000": ic.jpeg2k_decode,
            "png": ic.png_decode}[name](data)


def main(argv=None) -> int:
    import pymars
    from pymars.clio import write_json
    from pymars.evaluation import protocol

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--errors", default="0,1,2,4")
    ap.add_argument("--model", default=None, help="bundle (default: the gray max_error default, base-v2-gray-rc)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lossless_high_depth.json")
    args = ap.parse_args(argv)
    root = protocol.mars_data_dir()
    if root is None:
        print("../shared/data/mars is not available (set PYMARS_SHARED)", file=sys.stderr)
        return 2
    labels = sorted((root / "curiosity_navcam_pds").glob("*.LBL"))
    tiles = [t for lab in labels for t in tiles_of(read_edr_12bit(lab))]
    samples = sum(t.size for t in tiles)
    errors = [int(e) for e in args.errors.split(",")]
    results = {"files": [lab.name for lab in labels], "tiles": len(tiles), "tile_size": TILE, "bit_depth": 12,
               "samples": samples, "bits_per_sample": {}, "max_error_seen": {}, "seconds": {}}
    for k in errors:
        sizes: dict[str, int] = {}
        worst: dict[str, int] = {}
        secs: dict[str, float] = {}
        for t in tiles:
            t0 = time.perf_counter()
            data = pymars.encode(t, max_error=k, bit_depth=12, model=args.model)
            secs["pymars"] = secs.get("pymars", 0.0) + time.perf_counter() - t0
            back = pymars.decode(data)
            codecs = {"pymars": (data, back)}
            for name, d in classic(t, k).items():
                codecs[name] = (d, decode_classic(name, d))
            for name, (d, b) in codecs.items():
                sizes[name] = sizes.get(name, 0) + len(d)
                e = int(np.abs(b.astype(np.int64).reshape(t.shape) - t.astype(np.int64)).max())
                worst[name] = max(worst.get(name, 0), e)
        results["bits_per_sample"][f"k{k}"] = {n: 8.0 * s / samples for n, s in sizes.items()}
        results["max_error_seen"][f"k{k}"] = worst
        results["seconds"][f"k{k}"] = secs
        assert worst["pymars"] <= k, f"pymars exceeded k={k}: {worst['pymars']}"
    results["jpegls_sample_bits"] = jpegls_sample_bits(classic(tiles[0], 0)["jpegls"])
    results["notes"] = ("JPEG-LS is CharLS through imagecodecs, which offers no bit-depth setting: it codes these "
                        f"12-bit tiles with P = {results['jpegls_sample_bits']} bits (MAXVAL {2 ** results['jpegls_sample_bits'] - 1}),"
                        " which costs it a little; JPEG XL and JPEG 2000 are told 12 bits.")
    write_json(args.out, results)
    print(f"{len(tiles)} tiles of {TILE}x{TILE} from {len(labels)} 12-bit Navcam EDRs; bits/sample (max error)")
    names = sorted({n for v in results["bits_per_sample"].values() for n in v}, key=lambda n: (n != "pymars", n))
    print(f"{'k':>4} " + " ".join(f"{n:>16}" for n in names))
    for key, row in results["bits_per_sample"].items():
        cells = [f"{row[n]:8.3f} ({results['max_error_seen'][key][n]:>3})" if n in row else " " * 16 for n in names]
        print(f"{key:>4} " + " ".join(f"{c:>16}" for c in cells))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
