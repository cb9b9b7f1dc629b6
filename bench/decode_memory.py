"""Peak memory of decoding vs image size: is it bounded by the output (issue 23)?

What it is for: measuring, for decoded images of 1, 16, 64 and 256 M pixels,
the peak resident memory of ``pymars.decode_with_report`` and the bytes it
adds per output pixel, to check docs/bitstream.md §3 ("Decoder limits"):
peak <= the output's own bytes + a per-tile working set that does not grow
with the image. Each size runs in a fresh process (peak RSS = VmHWM, read
from /proc/self/status; the process first imports pymars, loads the model,
decodes a one-tile file to warm the synthesis up, and reads the file, and the
VmHWM at that point is the baseline). What it must not do: write anywhere
but its --out file, or leave a process behind.

Files are built from one real tile record, repeated under every tile index
(tiles are coded independently, so a record of a full 256 x 256 tile is valid
at any index of a 256-pixel grid):

* ``gray8-nl`` / ``gray16-nl``: base-v2-gray at near-lossless quality 90
  (bitstream §4.7, no synthesis: every tile is decoded and written, so every
  output page is touched), 8- and 16-bit gray output, every tile present;
* ``gray8-learned`` / ``rgb8-learned``: base-v2-gray / base-v1-tm at quality
  75 (the learned synthesis, 0.3 s a tile on this machine): every tile present
  at 1 M pixels; at 16, 64 and 256 M pixels only the first 16 tiles are present
  and the rest are missing (decoding 4096 synthesised tiles would take 20
  minutes on 2 shared cores), so those rows measure the synthesis working set
  and the output's allocation, not a fully written output.

Run (from a checkout, with the package installed):

    python bench/decode_memory.py                      # all series, writes bench/results/decode_memory.json
    python bench/decode_memory.py --sizes 1 16 --series gray8-nl --out /tmp/x.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDES = {1: 1024, 16: 4096, 64: 8192, 256: 16384}  # M pixels -> side of a square image
SERIES = {
    # name: (model, quality, bit_depth, channels, all tiles present at every size)
    "gray8-nl": ("base-v2-gray", 90, 8, 1, True),
    "gray16-nl": ("base-v2-gray", 90, 16, 1, True),
    "gray8-learned": ("base-v2-gray", 75, 8, 1, False),
    "rgb8-learned": ("base-v1-tm", 75, 8, 3, False),
}
REAL_TILES_WHEN_PARTIAL = 16
TILE = 256

CHILD = r"""
import json, sys, time, warnings
def hwm():
    return int([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]) * 1024
import pymars
from pymars.ground.decode import DamagedTilesWarning
path, model, warm = sys.argv[1], sys.argv[2], sys.argv[3]
bundle = pymars.open_bundle(model)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DamagedTilesWarning)
    pymars.decode_with_report(open(warm, "rb").read(), model=bundle)
    data = open(path, "rb").read()
    base = hwm()
    t0 = time.perf_counter()
    img, report = pymars.decode_with_report(data, model=bundle, max_pixels=1 << 30)
    dt = time.perf_counter() - t0
print(json.dumps({"baseline_rss": base, "peak_rss": hwm(), "seconds": dt, "output_bytes": img.nbytes,
                  "missing": len(report.missing), "damaged": len(report.damaged), "file_bytes": len(data)}))
"""


def tile_record_payload(model: str, quality: int, bit_depth: int, channels: int) -> tuple[bytes, bytes]:
    """(payload of one full 256 x 256 tile, a complete one-tile file) for the series' model and quality.

    Example:
        >>> payload, one = tile_record_payload("base-v2-gray", 90, 8, 1)
        >>> one[:4], len(one) == 40 + 24 + len(payload)
        (b'PMRS', True)
    """
    import numpy as np

    import pymars
    from pymars import _core
    from pymars.data.synthetic import mars_like_scene

    img = mars_like_scene(TILE, TILE, seed=7, channels=channels)
    if bit_depth == 16:
        img = img.astype(np.uint16) * 257
    one = pymars.encode(img, quality, tile_size=TILE, bit_depth=bit_depth, model=model)
    (off, length), = _core.scan_tile_records(one, 40, 1)
    return one[off : off + length], one


def build_file(model: str, quality: int, bit_depth: int, channels: int, side: int, real_tiles: int | None,
               payload: bytes) -> bytes:
    """A ``side`` x ``side`` file whose first ``real_tiles`` tiles (None: all) carry ``payload``; the rest are missing.

    Example:
        >>> payload, _ = tile_record_payload("base-v2-gray", 90, 8, 1)
        >>> data = build_file("base-v2-gray", 90, 8, 1, 1024, None, payload)
        >>> import pymars; pymars.info(data)["tile_count"], len(data) == 40 + 16 * (24 + len(payload))
        (16, True)
    """
    from pymars import _core
    from pymars.bundles import open_bundle

    head = _core.write_file_header(side, side, channels=channels, bit_depth=bit_depth, quality=quality,
                                   tile_size=TILE, model_id=bytes(open_bundle(model).model_id))
    n = (side // TILE) ** 2
    count = n if real_tiles is None else min(n, real_tiles)
    return head + b"".join(_core.make_tile_record(i, payload) for i in range(count))


def measure(series: str, mpx: int, folder: Path) -> dict:
    """One row: decode a ``mpx`` M pixel file of ``series`` in a fresh process; its peak and baseline RSS.

    Example:
        >>> import tempfile
        >>> row = measure("gray8-nl", 1, Path(tempfile.mkdtemp()))
        >>> row["pixels"], row["tiles_present"], row["output_bytes_per_pixel"]
        (1048576, 16, 1.0)
    """
    model, quality, depth, channels, full = SERIES[series]
    payload, one = tile_record_payload(model, quality, depth, channels)
    side = SIDES[mpx]
    real = None if full or mpx == 1 else REAL_TILES_WHEN_PARTIAL
    path, warm = folder / f"{series}-{mpx}.pmrs", folder / f"{series}-warm.pmrs"
    path.write_bytes(build_file(model, quality, depth, channels, side, real, payload))
    warm.write_bytes(one)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), model, str(warm)], capture_output=True, text=True,
                       env=env, cwd=folder, check=True)
    path.unlink()
    m = json.loads(r.stdout.strip().splitlines()[-1])
    pixels = side * side
    grown = m["peak_rss"] - m["baseline_rss"]
    tiles = (side // TILE) ** 2
    return {"series": series, "model": model, "quality": quality, "mpx": mpx, "width": side, "height": side,
            "pixels": pixels, "tiles": tiles, "tiles_present": tiles - m["missing"], **m,
            "output_bytes_per_pixel": m["output_bytes"] / pixels,
            "decode_bytes_per_pixel": round(grown / pixels, 4),
            "working_set_beyond_output": grown - m["output_bytes"]}


def main(argv: list[str] | None = None) -> int:
    """Measure the chosen series and sizes, print a line per row and write the JSON (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=sorted(SIDES), choices=sorted(SIDES))
    p.add_argument("--series", nargs="+", default=list(SERIES), choices=list(SERIES))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "decode_memory.json"))
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for series in args.series:
            for mpx in args.sizes:
                t0 = time.perf_counter()
                row = measure(series, mpx, Path(d))
                rows.append(row)
                print(f"{series:>14} {mpx:>4} Mpx: peak {row['peak_rss'] / 2**20:8.1f} MiB, baseline "
                      f"{row['baseline_rss'] / 2**20:6.1f} MiB, +{row['decode_bytes_per_pixel']:.3f} B/px "
                      f"(output {row['output_bytes_per_pixel']:.0f} B/px), beyond output "
                      f"{row['working_set_beyond_output'] / 2**20:+7.1f} MiB, {row['tiles_present']}/{row['tiles']} "
                      f"tiles, file {row['file_bytes'] / 2**20:.1f} MiB, decode {row['seconds']:.1f} s "
                      f"({time.perf_counter() - t0:.0f} s total)", flush=True)
    result = {"command": "python bench/decode_memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "measure": "peak RSS = VmHWM of a fresh process; baseline = VmHWM after imports, model load, "
                         "warm-up decode and reading the file; decode_bytes_per_pixel = (peak - baseline) / pixels",
              "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
