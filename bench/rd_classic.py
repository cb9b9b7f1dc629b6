"""RD benchmark of the classic codecs on the development tiles (`mars-rd-1`).

Runs every codec of a registry at every point of its quality grid on the
protocol's development tiles (``dev_marsscapes``: 38 tiles, ``dev_marsdata``:
31 tiles, from :func:`pymars.evaluation.protocol.dev_tiles`), scores each decoded
tile (PSNR, MS-SSIM), writes one JSON file, and prints per group the mean RD
curves, BD-rates against ``jpeg420``, ``hevc444`` and the bare HEVC stream
(PSNR and MS-SSIM), speed medians, and the best classic codec::

    dev_tiles(group) x registry[codec].qualities
        --code_tile--> bytes, decoded, encode/decode seconds
        --psnr, ms_ssim--> record --summarize_group--> curves, BD tables --> JSON + tables

Codec registry
--------------
``REGISTRY`` maps a name to a :class:`pymars.evaluation.classic.Codec`::

    Codec(name, qualities,                       # the quality grid, in rate order
          encode=lambda tile, q: bytes,          # uint8 HxW or HxWx3 -> complete file
          decode=lambda data, shape: ndarray,    # -> uint8 array of `shape`
          settings={...},                        # written into the JSON
          stream_bytes=None)                     # optional second byte count

The benchmark times ``encode`` and ``decode`` itself (``time.perf_counter``),
counts ``len(bytes)`` as the rate and scores the decoded array, so a new codec
only supplies the two functions. To add pymars as just another entry::

    from pymars.evaluation.classic import Codec
    register(Codec("pymars", (10, 25, 40, 55, 70, 85), encode=pymars_encode,
                   decode=pymars_decode, settings={"model": "..."}))
    main(["--codecs", "all,pymars"])

The classic entries come from :data:`pymars.evaluation.classic.CLASSIC_CODECS`;
``all`` means the protocol's seven (``hevc420`` is optional: name it).

This script must not change the protocol: tiles, grids, settings and
aggregation all come from ``pymars``; it only runs and reports them.
Run it single-threaded (it pins the BLAS/OpenMP pools to one thread), e.g.::

    nice -n 10 python bench/rd_classic.py                    # full run, ~6 min on 2 busy cores
    python bench/rd_classic.py --quick                       # about a minute
    python bench/rd_classic.py --report bench/results/classic_rd.json   # re-print tables

Example:
    >>> from pymars.data.synthetic import mars_like_scene
    >>> rec = evaluate(REGISTRY["jpeg420"], mars_like_scene(176, 176, seed=0), 75, "synthetic@y0x0")
    >>> sorted(rec)[:4], rec["channels"]
    (['bpp', 'bytes', 'channels', 'codec'], 3)
"""
from __future__ import annotations

import os

# The protocol times codecs single-threaded; the metric code must not compete
# for cores either. This has to happen before NumPy loads its BLAS.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pymars.evaluation import bdrate
from pymars.evaluation.classic import CLASSIC_CODECS, DEFAULT_CODECS, Codec, code_tile, library_versions
from pymars.evaluation.metrics import ms_ssim, psnr
from pymars.evaluation.protocol import GRAY_GROUPS, GROUPS, PROTOCOL, dev_tiles

DEFAULT_OUT = Path("bench/results/classic_rd.json")
QUICK_OUT = Path("bench/results/classic_rd_quick.json")
#: --quick: every QUICK_TILE_STEP-th tile of each group and these grid points (4 of 8, both ends kept).
QUICK_TILE_STEP = 6
QUICK_GRID_INDEX = (0, 2, 5, 7)

#: name -> Codec; starts with the protocol's classic codecs, :func:`register` adds more.
REGISTRY: dict[str, Codec] = dict(CLASSIC_CODECS)


def register(codec: Codec) -> None:
    """Add (or replace) a codec in the registry, e.g. pymars itself.

    Example:
        >>> register(REGISTRY["jpeg444"]); "jpeg444" in REGISTRY
        True
    """
    REGISTRY[codec.name] = codec


def resolve_codecs(spec: str) -> list[str]:
    """Codec names from a comma list; ``all`` = the protocol's default seven.

    Example:
        >>> resolve_codecs("all,hevc420")[-2:]
        ['hevc444', 'hevc420']
    """
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        for name in DEFAULT_CODECS if part == "all" else (part,):
            if name not in REGISTRY:
                raise SystemExit(f"unknown codec {name!r}; registered: {', '.join(REGISTRY)}")
            if name not in names:
                names.append(name)
    return names


def qualities_for(codec: Codec, quick: bool) -> tuple:
    """The codec's full grid, or the --quick subset of it.

    Example:
        >>> qualities_for(REGISTRY["jpeg420"], quick=True)
        (5, 20, 60, 90)
    """
    if not quick:
        return tuple(codec.qualities)
    grid = tuple(codec.qualities)
    return tuple(dict.fromkeys(grid[i] for i in QUICK_GRID_INDEX if i < len(grid)))


def evaluate(codec: Codec, pixels: np.ndarray, quality, tile_id: str) -> dict:
    """Code one tile at one quality and score it: one JSON record.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> r = evaluate(REGISTRY["hevc444"], mars_like_scene(176, 176, seed=0), 35, "t")
        >>> r["stream_bytes"] < r["bytes"], 0 < r["ms_ssim"] < 1
        (True, True)
    """
    coded = code_tile(codec, pixels, quality)
    h, w = pixels.shape[:2]
    record = {
        "tile": tile_id,
        "codec": codec.name,
        "quality": quality,
        "bytes": coded.n_bytes,
        "bpp": 8.0 * coded.n_bytes / (h * w),
        "psnr": psnr(pixels, coded.decoded),
        "ms_ssim": ms_ssim(pixels, coded.decoded),
        "encode_s": coded.encode_seconds,
        "decode_s": coded.decode_seconds,
        "pixels": h * w,
        "channels": 1 if pixels.ndim == 2 else pixels.shape[2],
    }
    if coded.stream_bytes is not None:
        record["stream_bytes"] = coded.stream_bytes
        record["stream_bpp"] = 8.0 * coded.stream_bytes / (h * w)
    return record


def run(
    groups: Sequence[str] = GROUPS,
    codec_names: Sequence[str] = DEFAULT_CODECS,
    quick: bool = False,
    progress: bool = True,
) -> dict:
    """Run the benchmark and return the result document (not yet written).

    Needs ``../shared/data/mars`` (or ``$PYMARS_SHARED``).
    """
    from tqdm import tqdm

    codecs = [REGISTRY[n] for n in codec_names]
    tiles_by_group = {}
    for group in groups:
        tiles = dev_tiles(group)
        tiles_by_group[group] = tiles[::QUICK_TILE_STEP] if quick else tiles
    total = sum(len(t) * len(qualities_for(c, quick)) for t in tiles_by_group.values() for c in codecs)
    doc: dict = {
        "protocol": PROTOCOL,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]) if sys.argv and sys.argv[0] else None,
        "quick": quick,
        "versions": environment(),
        "settings": {c.name: {"qualities": list(qualities_for(c, quick)), **_plain(c.settings)} for c in codecs},
        "groups": {},
    }
    with tqdm(total=total, disable=not progress, unit="code", dynamic_ncols=True) as bar:
        for group, tiles in tiles_by_group.items():
            records = []
            for tile in tiles:
                for codec in codecs:
                    bar.set_description(f"{group} {codec.name}")
                    for q in qualities_for(codec, quick):
                        records.append(evaluate(codec, tile.pixels, q, tile.tile_id))
                        bar.update()
            doc["groups"][group] = {
                "tile_ids": [t.tile_id for t in tiles],
                "tiles": {
                    t.tile_id: {"h": int(t.pixels.shape[0]), "w": int(t.pixels.shape[1]),
                                "channels": 1 if t.pixels.ndim == 2 else int(t.pixels.shape[2])}
                    for t in tiles
                },
                "summary": bdrate.summarize_group(records),
                "records": records,
            }
    return doc


def environment() -> dict:
    """Library versions and platform, for the result file.

    Example:
        >>> "bjontegaard" in environment()
        True
    """
    import bjontegaard
    import scipy

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "bjontegaard": bjontegaard.__version__,
        **library_versions(),
    }


def _plain(v):
    """Settings as JSON values (tuples become lists, anything else its str)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


# ---------------------------------------------------------------------------
# Tables


def _fmt(v, spec: str = ".2f", width: int = 8) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a".rjust(width)
    return format(v, spec).rjust(width)


def best_codec(summary: dict, anchor: str = "jpeg420") -> str | None:
    """The classic codec with the lowest BD-rate (PSNR, mean curves) against ``anchor``.

    Pseudo-curves (``<codec>:stream``), the anchor itself and codecs outside
    :data:`CLASSIC_CODECS` (such as pymars, once registered) are not candidates.

    Example:
        >>> rows = {"jpeg420": 0.0, "jpeg2000": -20.0, "avif": -35.0, "hevc444:stream": -40.0, "pymars": -60.0}
        >>> best_codec({"bd": {"jpeg420": {"psnr": {k: {"bd_rate": v} for k, v in rows.items()}}}})
        'avif'
    """
    table = summary.get("bd", {}).get(anchor, {}).get("psnr", {})
    candidates = {
        name: row["bd_rate"]
        for name, row in table.items()
        if name != anchor and ":" not in name and name in CLASSIC_CODECS and row["bd_rate"] is not None
    }
    return min(candidates, key=candidates.get) if candidates else None


def format_group(group: str, entry: dict) -> str:
    """Printable tables of one group: mean curves, BD tables, speed, best codec."""
    s = entry["summary"]
    lines = [f"== {group}: {s['tiles']} tiles ==", "", "Mean curves (mean bpp, mean per-tile PSNR, mean MS-SSIM)"]
    lines.append(f"{'codec':<16}{'q':>6}{'bpp':>9}{'PSNR':>9}{'MS-SSIM':>10}")
    for name, c in s["curves"].items():
        if ":" in name:
            continue
        stream = s["curves"].get(name + ":stream")
        for i, q in enumerate(c["qualities"]):
            line = f"{name:<16}{q!s:>6}{_fmt(c['bpp'][i], '.4f', 9)}{_fmt(c['psnr'][i], '.3f', 9)}" \
                   f"{_fmt(c['ms_ssim'][i], '.5f', 10)}"
            if stream:
                line += f"   (bare stream {stream['bpp'][i]:.4f} bpp)"
            lines.append(line)
    for anchor in s["bd"]:
        label = {"hevc444:stream": "hevc444 bare HEVC stream"}.get(anchor, anchor)
        lines += ["", f"BD vs {label} (mean curves; per-tile median; PSNR and MS-SSIM-dB)"]
        lines.append(
            f"{'codec':<16}{'BD-rate':>9}{'BD-PSNR':>9}{'tile-med':>9}{'overlap':>8}  {'PSNR range':<13}"
            f"{'BD-rate':>9}{'tile-med':>9}  {'PSNR@0.5':>8}"
        )
        lines.append(
            f"{'':<16}{'PSNR %':>9}{'dB':>9}{'%':>9}{'':>8}  {'dB':<13}{'MS-SSIM %':>9}{'%':>9}  {'bpp dB':>8}"
        )
        for name, row in s["bd"][anchor]["psnr"].items():
            ms = s["bd"][anchor]["ms_ssim_db"][name]
            lo, hi = row["metric_range"]
            rng = f"{lo:.1f}-{hi:.1f}" if lo is not None and hi is not None and hi > lo else "none"
            lines.append(
                f"{name:<16}{_fmt(row['bd_rate'], '+.1f', 9)}{_fmt(row['bd_metric'], '+.2f', 9)}"
                f"{_fmt(row['per_tile_median_bd_rate'], '+.1f', 9)}{_fmt(row['overlap'], '.0%', 8)}  {rng:<13}"
                f"{_fmt(ms['bd_rate'], '+.1f', 9)}{_fmt(ms['per_tile_median_bd_rate'], '+.1f', 9)}"
                f"  {_fmt(s['curves'][name]['psnr_at_0.5_bpp'], '.2f', 8)}"
            )
    lines += ["", "Speed, median ms per megapixel (256x256-class tiles, single-threaded; set-up included)"]
    lines.append(f"{'codec':<16}{'kind':>5}{'encode':>10}{'decode':>10}{'n':>6}")
    for name, kinds in s["speed"].items():
        for kind, v in kinds.items():
            lines.append(f"{name:<16}{kind:>5}{v['encode_ms_per_mp']:>10.1f}{v['decode_ms_per_mp']:>10.1f}{v['n']:>6}")
    best = best_codec(s)
    if best:
        row = s["bd"]["jpeg420"]["psnr"][best]
        lines += ["", f"Best classic codec on {group}: {best} (BD-rate {row['bd_rate']:+.1f} % vs jpeg420, PSNR)"]
    return "\n".join(lines)


def format_report(doc: dict) -> str:
    """All groups' tables, with a header naming the protocol and run.

    Example:
        >>> format_report({"protocol": "mars-rd-1", "quick": True, "groups": {}}).splitlines()[0]
        'mars-rd-1 classic-codec RD (quick subset)'
    """
    head = f"{doc['protocol']} classic-codec RD" + (" (quick subset)" if doc.get("quick") else "")
    parts = [head]
    for group, entry in doc["groups"].items():
        parts += ["", format_group(group, entry)]
    return "\n".join(parts)


def main(argv: Iterable[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None,
                    help=f"result JSON (default {DEFAULT_OUT}; {QUICK_OUT} with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help=f"every {QUICK_TILE_STEP}th tile and 4 of the 8 grid points (a few minutes)")
    ap.add_argument("--groups", default=",".join(GROUPS),
                    help=f"comma list of groups (colour: {', '.join(GROUPS)}; gray: {', '.join(GRAY_GROUPS)})")
    ap.add_argument("--codecs", default="all", help="comma list of codec names; 'all' = the protocol's seven")
    ap.add_argument("--report", type=Path, default=None, help="only print the tables of an existing result JSON")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    args = ap.parse_args(None if argv is None else list(argv))

    if args.report is not None:
        print(format_report(json.loads(args.report.read_text())))
        return 0
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    unknown = set(groups) - set(GROUPS) - set(GRAY_GROUPS)
    if unknown:
        raise SystemExit(f"unknown group(s) {sorted(unknown)}; known: {', '.join(GROUPS + GRAY_GROUPS)}")
    doc = run(groups, resolve_codecs(args.codecs), quick=args.quick, progress=not args.no_progress)
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    print(format_report(doc))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
