"""Encoder and decoder speed of the lossless / near-lossless coder on real development tiles.

What it is for: issue 20's speed figures (encoder >= 20 Mpx/s on one x86 core,
decoder reported) measured where they are meant: the flight encoder is the C
API (``build/c/encode_raw``, ``marsenc_encode_max_error``), so its time is
taken inside that process with ``--repeat`` (CPU time of the encode calls
alone: no blob load, no file reading, no Python). Each development tile of a
group is written as a raw file and encoded N times; a group's rate is its
pixels x N over the summed CPU seconds. The decoder has no C example, so its
time is that of ``pymars.decode`` (the same C++ core through pybind11; one
Python call per tile, timed with ``time.process_time``), reported beside it.
The 12-bit Navcam EDRs (``--edr``) are cut into 256 x 256 tiles as
bench/lossless_high_depth.py does.

Run:  python bench/lossless_speed.py [--groups dev_navcam_pds,...] [--errors 0,2] [--repeat 20]
      [--encoder build/c/encode_raw] [--versus OTHER/encode_raw] [--edr] [--out bench/results/lossless_speed.json]

``--versus OTHER`` times a second encode_raw build (e.g. the session start's) on the
same tiles, the two interleaved tile by tile in A B B A order, so drift of this
machine's clock (about 10 % from run to run) falls on both alike; each row then
also gives the other build's rate and the ratio, and the two builds' files must be
identical (a speed change must not change a byte).

Stop other processes first: the figures are one core's, and a busy second core
(shared caches, clocks) lowers them. Needs ../shared (or $PYMARS_SHARED) and
the C build (``cmake -S . -B build/c -DCMAKE_BUILD_TYPE=Release && cmake
--build build/c``). It must not write outside a temporary folder and --out.

Example:
    >>> parse_time("encode 20 x: 0.0500 s CPU, 26.21 Mpx/s\\nquality 100\\n")
    0.05
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GRAY = ("dev_navcam", "dev_navcam_pds", "dev_marsscapes_gray", "dev_marsdata_gray")


def parse_time(stdout: str) -> float:
    """CPU seconds of encode_raw's ``--repeat`` line."""
    m = re.search(r"encode \d+ x: ([0-9.]+) s CPU", stdout)
    if not m:
        raise RuntimeError(f"encode_raw printed no timing line (too old a build?): {stdout[:200]!r}")
    return float(m.group(1))


def group_tiles(group: str) -> list[np.ndarray]:
    if group == "edr12":
        sys.path.insert(0, str(REPO / "bench"))
        from lossless_high_depth import read_edr_12bit, tiles_of

        from pymars.evaluation.protocol import mars_data_dir

        root = mars_data_dir()
        labels = sorted((root / "curiosity_navcam_pds").glob("*.LBL")) if root else []
        return [t for lbl in labels for t in tiles_of(read_edr_12bit(lbl))]
    from pymars.evaluation.protocol import dev_tiles

    return [t.pixels for t in dev_tiles(group)]


def encode_time(encoder: Path, args: list[str], out: Path) -> tuple[float, bytes]:
    """CPU seconds of one encode_raw --repeat run, and the file it wrote."""
    r = subprocess.run([str(encoder), *args, str(out)], capture_output=True, text=True, check=True)
    return parse_time(r.stdout), out.read_bytes()


def measure(group: str, k: int, encoder: Path, repeat: int, folder: Path, versus: Path | None = None) -> dict:
    """Encode (C API, CPU time) and decode (pymars.decode, CPU time) rates of one group at one k
    (and, with ``versus``, the other build's encode rate from interleaved runs)."""
    import pymars
    from pymars.bundles import DEFAULT_GRAY_NEAR_LOSSLESS_MODEL, DEFAULT_NEAR_LOSSLESS_MODEL

    tiles = group_tiles(group)
    if not tiles:
        raise SystemExit(f"{group}: no tiles (is ../shared there?)")
    gray = tiles[0].ndim == 2
    # The bundles `pymars encode --lossless` / `max_error=` picks (bundles.near_lossless_bundle).
    bundle = pymars.open_bundle(DEFAULT_GRAY_NEAR_LOSSLESS_MODEL if gray else DEFAULT_NEAR_LOSSLESS_MODEL)
    enc_s = dec_s = other_s = 0.0
    px = 0
    for i, tile in enumerate(tiles):
        h, w = tile.shape[:2]
        c = 1 if tile.ndim == 2 else tile.shape[2]
        bits = 8 if tile.dtype == np.uint8 else 12
        raw = folder / f"t{i}.raw"
        raw.write_bytes(tile.astype("<u2").tobytes() if bits > 8 else tile.tobytes())
        args = ["--repeat", str(repeat), "--bits", str(bits), "--max-error", str(k),
                str(bundle.blob_path), str(raw), str(w), str(h), str(c), "0"]
        if versus is None:
            t, data = encode_time(encoder, args, folder / "o.pmrs")
            enc_s += t
        else:  # A B B A: a clock that drifts through the pair weighs on both builds alike
            t1, data = encode_time(encoder, args, folder / "o.pmrs")
            u1, other = encode_time(versus, args, folder / "v.pmrs")
            u2, _ = encode_time(versus, args, folder / "v.pmrs")
            t2, _ = encode_time(encoder, args, folder / "o.pmrs")
            enc_s += (t1 + t2) / 2
            other_s += (u1 + u2) / 2
            if other != data:
                raise RuntimeError(f"{group} tile {i}: {versus} wrote other bytes than {encoder} at k = {k}")
        t0 = time.process_time()
        for _ in range(repeat):
            dec = pymars.decode(data, model=bundle)
        dec_s += time.process_time() - t0
        if int(np.abs(dec.reshape(tile.shape).astype(np.int64) - tile).max()) > k:
            raise RuntimeError(f"{group} tile {i}: decoded error above k = {k}")
        px += h * w
    mpx = px * repeat / 1e6
    row = {"group": group, "k": k, "tiles": len(tiles), "pixels": px, "repeat": repeat, "model": bundle.name,
           "encode_cpu_s": enc_s, "encode_mpx_per_s": mpx / enc_s, "decode_cpu_s": dec_s,
           "decode_mpx_per_s": mpx / dec_s}
    if versus is not None:
        row.update({"versus": str(versus), "versus_encode_cpu_s": other_s, "versus_encode_mpx_per_s": mpx / other_s,
                    "speedup": other_s / enc_s})
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groups", default="dev_navcam_pds,dev_navcam,dev_marsscapes_gray,dev_marsdata_gray,"
                                        "dev_marsscapes,dev_marsdata")
    ap.add_argument("--edr", action="store_true", help="also the 12-bit Navcam EDRs (256 x 256 tiles)")
    ap.add_argument("--errors", default="0", help="comma-separated k (0 = lossless)")
    ap.add_argument("--repeat", type=int, default=20, help="encodes (and decodes) of each tile")
    ap.add_argument("--encoder", default=str(REPO / "build" / "c" / "encode_raw"))
    ap.add_argument("--versus", default=None,
                    help="another encode_raw build, timed interleaved with --encoder (its files must be identical)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "lossless_speed.json"))
    args = ap.parse_args(argv)
    encoder = Path(args.encoder)
    if not encoder.is_file():
        raise SystemExit(f"{encoder}: no C build; run cmake -S . -B build/c -DCMAKE_BUILD_TYPE=Release && "
                         f"cmake --build build/c")
    versus = Path(args.versus) if args.versus else None
    if versus is not None and not versus.is_file():
        raise SystemExit(f"--versus {versus}: no such encode_raw build")
    groups = [g for g in args.groups.split(",") if g] + (["edr12"] if args.edr else [])
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for g in groups:
            for k in (int(v) for v in args.errors.split(",")):
                row = measure(g, k, encoder, args.repeat, Path(d), versus)
                rows.append(row)
                other = (f", versus {row['versus_encode_mpx_per_s']:6.2f} Mpx/s ({row['speedup']:.3f}x)"
                         if versus is not None else "")
                print(f"{g:<22} k={k}: encode {row['encode_mpx_per_s']:6.2f} Mpx/s (C API, CPU time){other}, "
                      f"decode {row['decode_mpx_per_s']:6.2f} Mpx/s (pymars.decode), {row['tiles']} tiles", flush=True)
    out = {"command": "python bench/lossless_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "rows": rows, "note": "one core; CPU time of the encode calls inside encode_raw --repeat"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out + ".part")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
