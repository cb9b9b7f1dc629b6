"""Lossless and near-lossless coding of the development tiles: pymars against JPEG-LS and the lossless codecs.

pymars codes its top qualities with the near-lossless coder of the C++ core
(docs/bitstream.md §4.7/§4.8): every sample within +-k of the original. This
bench finds, in each model, the quality whose maximum error is k, codes every
tile of each group with it and reports **bits per sample** (bits per pixel per
channel), PSNR and the largest error seen, beside JPEG-LS (CharLS) with
NEAR = k, and at k = 0 beside JPEG XL lossless (effort 7), PNG (level 9) and
JPEG 2000 lossless (reversible 5/3), all through imagecodecs, on the same tiles.

Run:  python bench/near_lossless.py [--groups dev_marsscapes,dev_navcam,...] [--errors 0,1,2,4,6]
                                    [--model-rgb NAME|FOLDER] [--model-gray NAME|FOLDER] [--out FILE]

Colour groups use ``--model-rgb`` (default: the bundle ``--max-error`` uses for RGB,
base-v1-nl), gray groups ``--model-gray`` (default: the gray default bundle); a model without a quality
of error k is skipped for that k, with a note. Needs ../shared (or $PYMARS_SHARED).

Example:
    >>> import numpy as np
    >>> bits_per_sample(b"x" * 3, np.zeros((2, 2, 3), np.uint8))
    2.0
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

GRAY_GROUPS = ("dev_navcam", "dev_navcam_pds", "dev_marsscapes_gray", "dev_marsdata_gray")


def bits_per_sample(data: bytes, image: np.ndarray) -> float:
    """Bits of ``data`` per sample (pixel and channel) of ``image``.

    Example:
        >>> bits_per_sample(b"ab", np.zeros((4, 4), np.uint8))
        1.0
    """
    return 8.0 * len(data) / image.size


def quality_for_error(bundle, k: int) -> int | None:
    """The lowest quality of ``bundle`` whose near-lossless maximum error is ``k`` (None if none).

    Example:
        >>> import pymars
        >>> b = pymars.open_bundle(None)
        >>> q = quality_for_error(b, 0)
        >>> q is None or b.core.near_lossless_error(q) == 0
        True
    """
    for q in range(1, 101):
        if bundle.core.near_lossless_error(q) == k:
            return q
    return None


def classic(image: np.ndarray, k: int) -> dict[str, bytes]:
    """The classic codecs' files of ``image`` at maximum error ``k`` (k = 0: every lossless codec).

    Example:
        >>> sorted(classic(np.zeros((16, 16), np.uint8), 0))
        ['jpeg2000', 'jpegls', 'jpegxl', 'png']
    """
    import imagecodecs as ic

    out = {"jpegls": ic.jpegls_encode(image, level=k)}
    if k == 0:
        out["jpegxl"] = ic.jpegxl_encode(image, lossless=True, effort=7)
        out["png"] = ic.png_encode(image, level=9)
        out["jpeg2000"] = ic.jpeg2k_encode(image, level=0, reversible=True)
    return out


def decode_classic(name: str, data: bytes) -> np.ndarray:
    import imagecodecs as ic

    return {"jpegls": ic.jpegls_decode, "jpegxl": ic.jpegxl_decode, "png": ic.png_decode,
            "jpeg2000": ic.jpeg2k_decode}[name](data)


def run(groups, errors, model_rgb=None, model_gray=None, progress=True) -> dict:
    """Every (group, k, codec): mean bits/sample, mean PSNR, worst error, pymars encode/decode ms per Mpx.

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or "pymars" in run(["dev_marsdata"], [4], progress=False)["groups"]["dev_marsdata"]["4"]
        True
    """
    from tqdm import tqdm

    import pymars
    from pymars.bundles import DEFAULT_GRAY_MODEL, DEFAULT_NEAR_LOSSLESS_MODEL
    from pymars.evaluation.metrics import psnr
    from pymars.evaluation.protocol import dev_tiles

    result = {"groups": {}, "notes": [], "models": {}}
    for group in groups:
        gray = group in GRAY_GROUPS
        bundle = pymars.open_bundle((model_gray or DEFAULT_GRAY_MODEL) if gray else (model_rgb or DEFAULT_NEAR_LOSSLESS_MODEL))
        result["models"][group] = {"name": bundle.name, "model_id": bundle.model_id.hex()}
        tiles = [t.pixels for t in dev_tiles(group)]
        per_k = {}
        for k in errors:
            q = quality_for_error(bundle, k)
            rows: dict[str, dict] = {}
            if q is None:
                result["notes"].append(f"{group}: {bundle.name} has no quality with maximum error {k}")
            stats: dict[str, list] = {}
            for tile in tqdm(tiles, desc=f"{group} k={k}", disable=not progress):
                files = classic(tile, k)
                if q is not None:
                    t0 = time.perf_counter()
                    data = pymars.encode(tile, q, model=bundle)
                    t1 = time.perf_counter()
                    dec = pymars.decode(data, model=bundle).reshape(tile.shape)
                    t2 = time.perf_counter()
                    mpx = tile.shape[0] * tile.shape[1] / 1e6
                    stats.setdefault("pymars", []).append((bits_per_sample(data, tile), psnr(tile, dec),
                                                           int(np.abs(dec.astype(int) - tile).max()),
                                                           (t1 - t0) * 1e3 / mpx, (t2 - t1) * 1e3 / mpx))
                for name, blob in files.items():
                    dec = decode_classic(name, blob).reshape(tile.shape)
                    stats.setdefault(name, []).append((bits_per_sample(blob, tile), psnr(tile, dec),
                                                       int(np.abs(dec.astype(int) - tile).max()), None, None))
            for name, s in stats.items():
                rows[name] = {"bits_per_sample": float(np.mean([r[0] for r in s])),
                              "psnr": float(np.mean([min(r[1], 100.0) for r in s])),
                              "max_error": max(r[2] for r in s), "tiles": len(s)}
                if name == "pymars":
                    rows[name].update(quality=q, encode_ms_per_mpx=float(np.median([r[3] for r in s])),
                                      decode_ms_per_mpx=float(np.median([r[4] for r in s])))
            per_k[str(k)] = rows
        result["groups"][group] = per_k
    return result


def table(result: dict) -> str:
    """A markdown table: bits per sample per group and k, pymars beside every other codec.

    Example:
        >>> table({"groups": {"g": {"0": {"pymars": {"bits_per_sample": 4.0, "psnr": 100.0, "max_error": 0},
        ...                              "png": {"bits_per_sample": 5.0, "psnr": 100.0, "max_error": 0}}}}})
        '| group | k | pymars | png |\\n|---|---|---|---|\\n| g | 0 | **4.000** | 5.000 |'
    """
    names = sorted({n for g in result["groups"].values() for r in g.values() for n in r} - {"pymars"})
    lines = ["| group | k | pymars | " + " | ".join(names) + " |", "|---" * (len(names) + 3) + "|"]
    for group, per_k in result["groups"].items():
        for k, rows in per_k.items():
            best = min(r["bits_per_sample"] for r in rows.values())
            cells = []
            for n in ["pymars", *names]:
                if n not in rows:
                    cells.append("-")
                    continue
                v = f"{rows[n]['bits_per_sample']:.3f}"
                cells.append(f"**{v}**" if rows[n]["bits_per_sample"] == best else v)
            lines.append(f"| {group} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--groups", default="dev_marsscapes,dev_marsdata,dev_navcam,dev_navcam_pds")
    ap.add_argument("--errors", default="0,1,2,4,6")
    ap.add_argument("--model-rgb")
    ap.add_argument("--model-gray")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    errors = [int(k) for k in args.errors.split(",")]
    if any(not 0 <= k <= 32 for k in errors):
        ap.error("--errors: each k in 0..32")
    result = run(args.groups.split(","), errors, args.model_rgb, args.model_gray, progress=not args.no_progress)
    result["command"] = "python bench/near_lossless.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(table(result))
    for note in result["notes"]:
        print("note:", note)
    if args.out:
        from pymars.clio import write_json

        write_json(args.out, result)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
