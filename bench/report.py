"""The benchmark report a person reads, and the one command that makes it (``python bench/report.py``).

``python bench/report.py`` (in a checkout; bench/ is not part of the installed package) runs every benchmark of the
project in order and writes a report folder::

    1 classic RD   bench/rd_classic.py  -> <results>/classic_rd[_quick].json   (reused when it matches)
    2 pymars RD    bench/rd_pymars.py   -> <results>/pymars_rd[_quick].json    (classic records merged in)
    3 complexity   bench/complexity.py  -> <results>/complexity[_quick].json   (no callgrind with --quick)
    4 latency      bench/latency.py     -> <results>/latency[_quick].json      (speed and peak memory)
    5 report       build_report         -> DIR/index.md, DIR/index.html, DIR/*.png, DIR/crops/, DIR/data/

``<results>`` is the report folder's ``data/``: a run writes only below the
report folder it is given. The committed result files in ``bench/results/``
are read, never written, unless ``--update-results`` asks for exactly that
(each records the model id it was made with). The classic RD file is reused
instead of re-run when its protocol, quick flag, groups, codec settings,
quality grids and library versions all equal the current ones (the codecs are
deterministic, so re-running would give the same numbers); it is looked for in
``<results>``, then in ``bench/results/``; ``--skip-classic`` never runs it,
uses it when it matches, and times only JPEG (needed for the ratios) in the
latency step.

The report (Markdown and a self-contained HTML page; the plots are PNG files
next to it) has, per group: RD plots (PSNR and MS-SSIM against bpp, every
codec), BD-rate tables against jpeg420 and hevc444 (mean curves and per-tile
medians, PSNR and MS-SSIM), the best classic codec; then MACs and instructions
per pixel, latency and memory with ratios to JPEG, and side-by-side crops: for
two fixed tiles per group (the first and the middle one of the group's list),
every codec at the grid point whose bpp on that tile is closest to 0.25, the
same 128x128 window (the most detailed one of the original, by mean absolute
gradient), upscaled 2x by pixel repetition and labelled with codec, bpp and
PSNR. The tile is re-encoded for the crop; a file that differs in size from
the RD record is flagged, as is any RD record that differs from the previous
run's (the report folder's own earlier run, else the committed file), when
both were made with the same model id: the report says whether the results
reproduced, or that the previous ones came from another model.

This module only reads result files and re-codes the few crop tiles; it must
not compute RD figures of its own (those come from ``pymars.evaluation``).

Run::

    python bench/report.py --quick --report /tmp/report     # < 5 min on a free 2-core machine
    pymars bench --report bench/results/report    # the full benchmark
    pymars bench --quick --update-results         # ... and regenerate the committed bench/results/*_quick.json
    python bench/report.py --no-run --quick       # rebuild the report from the committed result files

Example:
    >>> blocks = [Heading(1, "RD"), Table(["codec", "bpp"], [["jpeg420", "0.25"]])]
    >>> print(render_markdown(blocks))
    # RD
    <BLANKLINE>
    | codec | bpp |
    |---|---|
    | jpeg420 | 0.25 |
    <BLANKLINE>
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import datetime
import html
import json
import math
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def _import_pymars() -> None:
    """Import pymars, preferring an installed one (it has the built C++ module) over the checkout."""
    try:
        import pymars  # noqa: F401
        return
    except ImportError:
        pass
    sys.path.insert(0, str(REPO))
    import pymars  # noqa: F401


_import_pymars()
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import rd_classic  # noqa: E402

from pymars.evaluation.bdrate import ms_ssim_db  # noqa: E402
from pymars.evaluation.classic import CLASSIC_CODECS, DEFAULT_CODECS, Codec, code_tile  # noqa: E402

#: The bpp the side-by-side crops aim at.
CROP_BPP = 0.25
CROP_SIZE = 128
CROP_ZOOM = 2
ANCHORS = ("jpeg420", "hevc444", "hevc444:stream")
STEPS = ("classic RD", "pymars RD", "complexity", "latency", "report")


# ---------------------------------------------------------------------------
# A tiny document model, rendered to Markdown and to HTML


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    headers: list
    rows: list
    caption: str = ""


@dataclass
class Figure:
    """An image file (path relative to the report folder) with a caption."""

    path: str
    caption: str = ""


@dataclass
class Figures:
    """Images shown side by side (HTML) or one after the other (Markdown)."""

    items: list = field(default_factory=list)


def _md_cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence) -> str:
    """Markdown for a list of blocks (GitHub-flavoured tables).

    Example:
        >>> print(render_markdown([Figure("a.png", "RD curve")]))
        ![RD curve](a.png)
        <BLANKLINE>
        *RD curve*
        <BLANKLINE>
    """
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}\n")
        elif isinstance(b, Paragraph):
            out.append(b.text + "\n")
        elif isinstance(b, Table):
            if b.caption:
                out.append(f"*{b.caption}*\n")
            lines = ["| " + " | ".join(_md_cell(h) for h in b.headers) + " |",
                     "|" + "---|" * len(b.headers)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines) + "\n")
        elif isinstance(b, Figure):
            out.append(f"![{b.caption}]({b.path})\n\n*{b.caption}*\n" if b.caption else f"![]({b.path})\n")
        elif isinstance(b, Figures):
            out.append(render_markdown(b.items).rstrip("\n") + "\n")
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: 0.3em; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; image-rendering: pixelated; }
"""


def render_html(blocks: Sequence, title: str) -> str:
    """A self-contained HTML page for a list of blocks (images are files next to it).

    Example:
        >>> page = render_html([Paragraph("a < b")], "t")
        >>> "<p>a &lt; b</p>" in page, page.startswith("<!DOCTYPE html>")
        (True, True)
    """
    esc = html.escape
    body = []

    def figure(f: Figure) -> str:
        cap = f"<figcaption>{esc(f.caption)}</figcaption>" if f.caption else ""
        return f'<figure><img src="{esc(f.path)}" alt="{esc(f.caption)}">{cap}</figure>'

    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{esc(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            body.append(f"<p>{esc(b.text)}</p>")
        elif isinstance(b, Table):
            cap = f"<caption>{esc(b.caption)}</caption>" if b.caption else ""
            head = "".join(f"<th>{esc(str(h))}</th>" for h in b.headers)
            rows = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Figure):
            body.append(figure(b))
        elif isinstance(b, Figures):
            body.append("<div>" + "".join(figure(f) for f in b.items) + "</div>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# ---------------------------------------------------------------------------
# Numbers to text


def fmt(v, spec: str = ".2f") -> str:
    """A number for a table; None / NaN become "n/a".

    Example:
        >>> fmt(-12.345, "+.1f"), fmt(None), fmt(float("nan"))
        ('-12.3', 'n/a', 'n/a')
    """
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return format(v, spec)


def _safe(name: str) -> str:
    """A file-name-safe version of a tile id or codec name.

    Example:
        >>> _safe("1162_2@y16x0")
        '1162_2_y16x0'
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# ---------------------------------------------------------------------------
# RD: plots and tables


def plot_rd(summary: Mapping, group: str, metric: str, path: Path, log_x: bool = True) -> Path:
    """One RD plot: ``psnr`` or ``ms_ssim`` (in dB) against mean bpp, every codec of a group.

    pymars is drawn in black and thicker, bare-stream pseudo-curves dotted.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=110)
    # One colour per real codec, in summary order; a bare-stream curve takes its codec's colour.
    palette = plt.get_cmap("tab10").colors
    real = [n for n in summary["curves"] if n != "pymars" and ":" not in n]
    colour = {n: palette[i % len(palette)] for i, n in enumerate(real)}
    for name, c in summary["curves"].items():
        x = np.asarray(c["bpp"], dtype=float)
        y = np.asarray(c["psnr"] if metric == "psnr" else ms_ssim_db(np.asarray(c["ms_ssim"], float)), float)
        order = np.argsort(x)
        style: dict = {"marker": "o", "markersize": 3.5, "linewidth": 1.3}
        if name == "pymars":
            style.update(color="black", linewidth=2.4, markersize=5, zorder=5)
        elif ":" in name:
            style.update(color=colour.get(name.split(":")[0], "grey"), linestyle=":", marker=None)
        else:
            style.update(color=colour[name])
        ax.plot(x[order], y[order], label=name, **style)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (mean over tiles)" + (", log scale" if log_x else ""))
    ax.set_ylabel("PSNR (dB, mean of per-tile PSNR)" if metric == "psnr" else "MS-SSIM (dB), -10 log10(1 - MS-SSIM)")
    ax.set_title(f"{group}: {summary.get('tiles', '?')} tiles")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def bd_table(summary: Mapping, anchor: str) -> Table | None:
    """BD figures of every codec against ``anchor``: PSNR and MS-SSIM, mean curves and per-tile medians.

    Example:
        >>> row = {"bd_rate": -20.0, "bd_metric": 1.0, "per_tile_median_bd_rate": -18.0, "overlap": 0.9,
        ...        "metric_range": [28.0, 36.0]}
        >>> s = {"bd": {"jpeg420": {"psnr": {"x": row}, "ms_ssim_db": {"x": row}}}, "curves": {"x": {}}}
        >>> bd_table(s, "jpeg420").rows[0][:4]
        ['x', '-20.0', '-18.0', '+1.00']
    """
    table = summary.get("bd", {}).get(anchor)
    if not table:
        return None
    rows = []
    for name, p in table["psnr"].items():
        m = table.get("ms_ssim_db", {}).get(name, {})
        lo, hi = p.get("metric_range") or (None, None)
        rng = f"{lo:.1f}-{hi:.1f}" if lo is not None and hi is not None and hi > lo else "none"
        rows.append([name, fmt(p.get("bd_rate"), "+.1f"), fmt(p.get("per_tile_median_bd_rate"), "+.1f"),
                     fmt(p.get("bd_metric"), "+.2f"), fmt(p.get("overlap"), ".0%"), rng,
                     fmt(m.get("bd_rate"), "+.1f"), fmt(m.get("per_tile_median_bd_rate"), "+.1f"),
                     fmt(summary["curves"].get(name, {}).get("psnr_at_0.5_bpp"), ".2f")])
    label = {"hevc444:stream": "hevc444 counted as the bare HEVC stream"}.get(anchor, anchor)
    return Table(["codec", "BD-rate PSNR %", "per-tile median %", "BD-PSNR dB", "overlap", "PSNR range dB",
                  "BD-rate MS-SSIM %", "per-tile median MS-SSIM %", "PSNR @ 0.5 bpp"], rows,
                 f"BD against {label} (negative = fewer bits for the same quality)")


def curves_table(summary: Mapping) -> Table:
    """Mean RD points of every codec: quality, bpp, PSNR, MS-SSIM.

    Example:
        >>> s = {"curves": {"c": {"qualities": [5], "bpp": [0.2], "psnr": [30.0], "ms_ssim": [0.95]}}}
        >>> curves_table(s).rows
        [['c', '5', '0.2000', '30.00', '0.95000']]
    """
    rows = []
    for name, c in summary["curves"].items():
        for i, q in enumerate(c["qualities"]):
            rows.append([name, str(q), fmt(c["bpp"][i], ".4f"), fmt(c["psnr"][i], ".2f"), fmt(c["ms_ssim"][i], ".5f")])
    return Table(["codec", "quality", "mean bpp", "mean PSNR dB", "mean MS-SSIM"], rows,
                 "Mean curves (arithmetic means over the group's tiles)")


# ---------------------------------------------------------------------------
# Side-by-side crops


def crop_tiles(tile_ids: Sequence[str]) -> list[str]:
    """The fixed crop tiles of a group: the first and the middle one of its list.

    Example:
        >>> crop_tiles(["a", "b", "c"]), crop_tiles(["a"])
        (['a', 'b'], ['a'])
    """
    return list(dict.fromkeys([tile_ids[0], tile_ids[len(tile_ids) // 2]])) if tile_ids else []


def crop_origin(pixels: np.ndarray, size: int = CROP_SIZE, step: int = 16) -> tuple[int, int]:
    """(y, x) of the ``size`` window with the most detail (mean absolute gradient), on a ``step`` grid.

    Detail is where codecs differ; a flat patch of sky would show nothing.
    Ties go to the first window in raster order, so the choice is fixed.

    Example:
        >>> img = np.zeros((256, 256), np.uint8); img[150:170:2, 200:220] = 255
        >>> crop_origin(img)
        (48, 96)
    """
    g = pixels.astype(np.float64)
    g = g.mean(axis=2) if g.ndim == 3 else g
    energy = np.zeros_like(g)
    energy[:, 1:] += np.abs(np.diff(g, axis=1))
    energy[1:, :] += np.abs(np.diff(g, axis=0))
    ii = np.zeros((g.shape[0] + 1, g.shape[1] + 1))
    ii[1:, 1:] = energy.cumsum(0).cumsum(1)
    best, where = -1.0, (0, 0)
    for y in range(0, g.shape[0] - size + 1, step):
        for x in range(0, g.shape[1] - size + 1, step):
            s = ii[y + size, x + size] - ii[y, x + size] - ii[y + size, x] + ii[y, x]
            if s > best:
                best, where = s, (y, x)
    return where


def closest_record(records: Iterable[Mapping], tile: str, codec: str, target_bpp: float = CROP_BPP) -> Mapping | None:
    """The RD record of ``codec`` on ``tile`` whose bpp is closest to ``target_bpp`` (lower bpp wins ties).

    Example:
        >>> recs = [dict(tile="t", codec="c", quality=q, bpp=b) for q, b in ((1, 0.1), (2, 0.3), (3, 0.9))]
        >>> closest_record(recs, "t", "c")["quality"]
        2
    """
    mine = [r for r in records if r["tile"] == tile and r["codec"] == codec]
    return min(mine, key=lambda r: (abs(r["bpp"] - target_bpp), r["bpp"])) if mine else None


def _zoom(pixels: np.ndarray, k: int = CROP_ZOOM) -> np.ndarray:
    """Nearest-neighbour upscaling by pixel repetition; gray becomes RGB."""
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)
    return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)


def _font(size: int = 13):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has a single bitmap font
        return ImageFont.load_default()


def labelled_strip(panels: Sequence[tuple[np.ndarray, str]], path: Path, gap: int = 8, band: int = 36) -> Path:
    """Panels side by side, each with a (two-line) label above it, saved as one PNG."""
    from PIL import Image, ImageDraw

    h = max(p.shape[0] for p, _ in panels)
    w = sum(p.shape[1] for p, _ in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (w, h + band), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
    x = 0
    for pixels, label in panels:
        canvas.paste(Image.fromarray(pixels), (x, band))
        draw.multiline_text((x + 2, 2), label, fill="black", font=font, spacing=2)
        x += pixels.shape[1] + gap
    canvas.save(path)
    return path


def make_crops(out_dir: Path, group: str, tile_id: str, pixels: np.ndarray, records: Sequence[Mapping],
               codecs: Mapping[str, Codec], order: Sequence[str], bar=None) -> dict:
    """Crops of one tile for every codec near 0.25 bpp: panel PNGs, one labelled strip, and their figures.

    Returns ``{"strip": path, "window": (y, x), "rows": [...], "mismatches": [...]}`` with paths
    relative to ``out_dir``.
    """
    from PIL import Image

    folder = out_dir / "crops" / _safe(group) / _safe(tile_id)
    folder.mkdir(parents=True, exist_ok=True)
    y, x = crop_origin(pixels)
    window = (slice(y, y + CROP_SIZE), slice(x, x + CROP_SIZE))
    panels = [(_zoom(pixels[window]), f"original\n{tile_id}")]
    Image.fromarray(panels[0][0]).save(folder / "original.png")
    rows, mismatches = [], []
    for name in order:
        rec = closest_record(records, tile_id, name)
        if bar is not None:
            bar.set_description(f"crops {tile_id} {name}")
        if rec is None or name not in codecs:
            if bar is not None:
                bar.update()
            continue
        coded = code_tile(codecs[name], pixels, rec["quality"])
        if coded.n_bytes != rec["bytes"]:
            mismatches.append(f"{group} {tile_id} {name} q={rec['quality']}: {coded.n_bytes} bytes now, "
                              f"{rec['bytes']} in the RD record")
        panel = _zoom(coded.decoded[window])
        Image.fromarray(panel).save(folder / f"{_safe(name)}.png")
        panels.append((panel, f"{name} q={rec['quality']}\n{rec['bpp']:.3f} bpp, {rec['psnr']:.2f} dB"))
        rows.append([name, str(rec["quality"]), fmt(rec["bpp"], ".3f"), fmt(rec["psnr"], ".2f"),
                     fmt(rec.get("ms_ssim"), ".4f")])
        if bar is not None:
            bar.update()
    strip = labelled_strip(panels, out_dir / "crops" / f"{_safe(group)}_{_safe(tile_id)}.png")
    return {"strip": strip.relative_to(out_dir).as_posix(), "window": (y, x), "rows": rows, "mismatches": mismatches}


# ---------------------------------------------------------------------------
# The report


def _complexity_blocks(cx: Mapping) -> list:
    rows = []
    for part in ("g_a", "h_a", "h_s", "g_s"):
        if part in cx.get("macs_per_px", {}):
            where = "ground" if part == "g_s" else "rover"
            rows.append([part, where, fmt(cx["macs_per_px"][part], ".1f"),
                         fmt(cx.get("flop_counter_macs_per_px", {}).get(part), ".1f"),
                         str(cx.get("params", {}).get(part, "n/a"))])
    blocks: list = [Table(["part", "runs on", "MACs / px (analytic)", "MACs / px (torch flop counter)", "parameters"],
                          rows, f"MACs per input pixel, {cx.get('tile', 256)}x{cx.get('tile', 256)} tile")]
    ipp = cx.get("instructions_per_px")
    blocks.append(Paragraph(
        f"Rover total (g_a + h_a + h_s): {fmt(cx.get('rover_macs_per_px'), '.1f')} MACs per pixel; "
        f"instructions per pixel of the C++ encoder (callgrind, marsenc_encode): "
        f"{fmt(ipp, '.0f') if ipp else 'not measured (no valgrind, no build/c/encode_raw, or --quick)'}. "
        f"Encode speed on a synthetic image, one thread: C++ {fmt(cx.get('cpp_s_per_mpx'), '.3f')} s/Mpx, "
        f"PyTorch eager analysis + h_s {fmt(cx.get('torch_s_per_mpx'), '.3f')} s/Mpx."))
    return blocks


def _latency_blocks(lat: Mapping) -> list:
    import latency

    s = lat.get("settings", {})
    m = lat.get("machine", {})
    labels = {k: c.get("label", "") for k, c in lat.get("coders", {}).items()}
    head = latency.latency_headers(lat)
    rows = [[r[0], labels.get(r[0], ""), *r[1:]] for r in latency.latency_rows(lat)]
    blocks: list = [Table([head[0], "what", *head[1:]], rows,
                          "Median seconds per megapixel, one thread, and the ratio to jpeg420 (same role) "
                          "measured in the same run; peak resident memory of a fresh process per coder")]
    text = []
    if s.get("crops"):
        text.append(f"crops: {len(s['crops'])} native-resolution {s['crop_size'][0]}x{s['crop_size'][1]} windows "
                    f"of development panoramas ({', '.join(s['crops'])}); tiles: {s['tiles']['count']} development "
                    f"tiles; qualities {s['qualities']}; repeats {s['repeats']}; {s.get('statistic', '')}; "
                    f"{s.get('warm_up', '')}.")
    if m.get("loadavg_start"):
        text.append(f"Load average {m['loadavg_start'][0]:.2f} at the start and {m.get('loadavg_end', [0])[0]:.2f} "
                    f"at the end, {m.get('cpu_count')} CPUs, nice {m.get('nice')}: absolute times on a busy machine "
                    f"are slower, the ratios to JPEG much less so.")
    mem = lat.get("memory") or {}
    if mem:
        text.append(f"Peak memory: one fresh Python process per coder on {mem.get('image')}; 'baseline' is that "
                    f"process's ru_maxrss after its imports and loading the input, 'peak' after one call "
                    f"(model loading included).")
        raw = mem.get("encode_raw")
        if raw and "error" not in raw:
            text.append(f"The C API encoder (build/c/encode_raw under /usr/bin/time -v, no interpreter) peaks at "
                        f"{fmt(raw.get('max_rss_mib'), '.1f')} MiB: arena {fmt(raw.get('arena_mib'), '.1f')} MiB, "
                        f"weight blob {fmt(raw.get('blob_mib'), '.1f')} MiB, image {fmt(raw.get('image_mib'), '.2f')} "
                        f"MiB, plus the output buffer, the binary and libc.")
        elif raw:
            text.append(f"C API encoder: {raw['error']}")
    blocks += [Paragraph(t) for t in text]
    return blocks


def build_report(out_dir: Path, rd: Mapping | None, complexity: Mapping | None = None, latency: Mapping | None = None,
                 tiles: Mapping[str, Mapping[str, np.ndarray]] | None = None, codecs: Mapping[str, Codec] | None = None,
                 notes: Sequence[str] = (), log_x: bool = True, progress: bool = False) -> Path:
    """Write ``out_dir/index.md`` and ``out_dir/index.html`` (plots and crops as PNG files beside them).

    ``rd`` is a result document of bench/rd_classic.py or rd_pymars.py (``groups`` ->
    ``summary``, ``records``, ``tile_ids``); ``complexity`` and ``latency`` those of
    complexity.py (``--json``) and latency.py. Crops need ``tiles`` (group -> tile
    id -> uint8 pixels) and ``codecs`` (name -> Codec) to re-code the tiles; without
    them the section says so. Returns the HTML path.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    title = "pymars benchmark report" + (" (quick subset)" if rd and rd.get("quick") else "")
    blocks: list = [Heading(1, title)]
    head = [f"Created {created}. Protocol {rd.get('protocol', 'n/a') if rd else 'n/a'}."]
    model = (rd or {}).get("settings", {}).get("pymars") or (latency or {}).get("model")
    if model and model.get("model_id"):
        head.append(f"pymars model {model.get('model', model.get('name'))} (id {model['model_id'][:16]}...).")
    blocks.append(Paragraph(" ".join(head)))
    blocks += [Paragraph(n) for n in notes]

    # RD per group
    mismatches: list[str] = []
    if rd and rd.get("groups"):
        blocks.append(Heading(2, "Rate-distortion"))
        blocks.append(Paragraph("Mean bpp (complete files, headers included) and mean per-tile PSNR over each "
                                "group's tiles; BD-rate with PCHIP (bjontegaard 1.3.0), as ../shared/EVALUATION.md "
                                "fixes it. 'per-tile median' is the median over tiles of each tile's own BD-rate."))
        crop_jobs = []
        for group, entry in rd["groups"].items():
            s = entry["summary"]
            blocks.append(Heading(3, f"{group} ({s.get('tiles', len(entry.get('tile_ids', [])))} tiles)"))
            figs = []
            for metric in ("psnr", "ms_ssim"):
                name = f"rd_{_safe(group)}_{metric}.png"
                plot_rd(s, group, metric, out_dir / name, log_x=log_x)
                figs.append(Figure(name, f"{group}: {'PSNR' if metric == 'psnr' else 'MS-SSIM (dB)'} against bpp"))
            blocks.append(Figures(figs))
            for anchor in ANCHORS:
                t = bd_table(s, anchor)
                if t is not None:
                    blocks.append(t)
            best = rd_classic.best_codec(s)
            if best:
                line = f"Best classic codec on {group}: {best} " \
                       f"(BD-rate {fmt(s['bd']['jpeg420']['psnr'][best]['bd_rate'], '+.1f')} % against jpeg420, PSNR)."
                if "pymars" in s["curves"] and best in s["curves"]:
                    line += f" pymars against {best}: BD-rate " + fmt(
                        _bd_against(s, entry["records"], best, "pymars"), "+.1f") + " % (PSNR, mean curves)."
                blocks.append(Paragraph(line))
            if tiles and codecs and group in tiles:
                order = [n for n in s["curves"] if ":" not in n]
                for tile_id in crop_tiles(entry["tile_ids"]):
                    if tile_id in tiles[group]:
                        crop_jobs.append((group, tile_id, order))
        # Crops: after the tables, in their own section
        blocks.append(Heading(2, f"Side-by-side crops at about {CROP_BPP} bpp"))
        if crop_jobs:
            blocks.append(Paragraph(
                f"Two fixed tiles per group (the first and the middle one of its list). Each codec at the grid point "
                f"whose bpp on that tile is closest to {CROP_BPP}; the same {CROP_SIZE}x{CROP_SIZE} window (the most "
                f"detailed one of the original), upscaled {CROP_ZOOM}x by pixel repetition. bpp and PSNR are those "
                f"of the whole tile."))
            total = sum(len(o) for _, _, o in crop_jobs)
            with tqdm(total=total, disable=not progress, unit="tile", dynamic_ncols=True) as bar:
                for group, tile_id, order in crop_jobs:
                    c = make_crops(out_dir, group, tile_id, tiles[group][tile_id], rd["groups"][group]["records"],
                                   codecs, order, bar)
                    mismatches += c["mismatches"]
                    blocks.append(Heading(3, f"{group}: {tile_id}, window y={c['window'][0]} x={c['window'][1]}"))
                    blocks.append(Figure(c["strip"], f"{tile_id}: original and every codec near {CROP_BPP} bpp"))
                    blocks.append(Table(["codec", "quality", "bpp", "PSNR dB", "MS-SSIM"], c["rows"]))
        else:
            blocks.append(Paragraph("No crops: the tiles or the codecs were not available to this run."))

    if complexity:
        blocks.append(Heading(2, "Complexity"))
        blocks += _complexity_blocks(complexity)
    if latency:
        blocks.append(Heading(2, "Latency and memory"))
        blocks += _latency_blocks(latency)

    if rd and rd.get("groups"):
        blocks.append(Heading(2, "Reproducibility"))
        if mismatches:
            blocks.append(Paragraph("Re-encoding the crop tiles gave files of a different size than the RD run: "
                                    + "; ".join(mismatches)))
        elif tiles and codecs:
            blocks.append(Paragraph("Every crop tile re-encoded to a file of exactly the size in the RD records."))
        blocks.append(Heading(2, "Appendix: mean RD points"))
        for group, entry in rd["groups"].items():
            blocks.append(Heading(3, group))
            blocks.append(curves_table(entry["summary"]))

    (out_dir / "index.md").write_text(render_markdown(blocks))
    html_path = out_dir / "index.html"
    html_path.write_text(render_html(blocks, title))
    return html_path


def _bd_against(summary: Mapping, records: Sequence[Mapping], anchor: str, test: str) -> float | None:
    """BD-rate (PSNR, mean curves) of ``test`` against any codec (the summary only has the protocol's anchors)."""
    from pymars.evaluation.bdrate import bd

    a, t = summary["curves"][anchor], summary["curves"][test]
    r = bd(a["bpp"], a["psnr"], t["bpp"], t["psnr"]).bd_rate
    return r if math.isfinite(r) else None


# ---------------------------------------------------------------------------
# Running the benchmarks

#: Runs a bench script with the pymars package that runs this driver already
#: imported: the scripts put the checkout first on sys.path, and after
#: `pip install .` the checkout's pymars/ has no built C++ module.
_BOOT = """
import sys, runpy
root, script = sys.argv[1], sys.argv[2]
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
added = root not in sys.path
if added:
    sys.path.insert(0, root)
import pymars
if added:
    sys.path.remove(root)
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


def run_script(script: Path, args: Sequence[str]) -> int:
    """Run ``bench/<script>`` in a child Python with this process's pymars; returns the exit status."""
    import pymars

    root = str(Path(pymars.__file__).resolve().parents[1])
    cmd = [sys.executable, "-c", _BOOT, root, str(script), *map(str, args)]
    return subprocess.run(cmd, cwd=REPO).returncode


def classic_reusable(path: Path, quick: bool, codecs: Sequence[str] = DEFAULT_CODECS) -> tuple[bool, str]:
    """Whether a classic RD result file can stand in for a new run, and why (not).

    It can when protocol, quick flag, groups, codec settings and quality grids,
    and the codec library versions all equal the current ones.
    """
    from pymars.evaluation.classic import library_versions
    from pymars.evaluation.protocol import GROUPS, PROTOCOL

    if not path.is_file():
        return False, f"{path} does not exist"
    doc = json.loads(path.read_text())
    if doc.get("protocol") != PROTOCOL:
        return False, f"protocol {doc.get('protocol')} is not {PROTOCOL}"
    if bool(doc.get("quick")) != quick:
        return False, "made with a different --quick setting"
    if set(doc.get("groups", {})) != set(GROUPS):
        return False, f"groups {sorted(doc.get('groups', {}))} are not {list(GROUPS)}"
    expected = {c: {"qualities": list(rd_classic.qualities_for(CLASSIC_CODECS[c], quick)),
                    **CLASSIC_CODECS[c].settings} for c in codecs}
    # A JSON round trip turns tuples into lists, as the stored file has them.
    if json.loads(json.dumps(expected, default=str)) != doc.get("settings"):
        return False, "codec settings or quality grids differ"
    stored = doc.get("versions", {})
    changed = [k for k, v in library_versions().items() if stored.get(k) != v]
    if changed:
        return False, f"library versions differ: {', '.join(changed)}"
    return True, "protocol, settings, grids and library versions match"


def rd_fingerprint(doc: Mapping | None) -> dict:
    """The deterministic part of an RD result: (group, tile, codec, quality) -> (bytes, PSNR, MS-SSIM).

    Example:
        >>> doc = {"groups": {"g": {"records": [dict(tile="t", codec="c", quality=1, bytes=9, psnr=30.0,
        ...        ms_ssim=0.9, encode_s=0.1)]}}}
        >>> rd_fingerprint(doc)
        {('g', 't', 'c', 1): (9, 30.0, 0.9)}
    """
    if not doc:
        return {}
    return {(g, r["tile"], r["codec"], r["quality"]): (r["bytes"], r["psnr"], r["ms_ssim"])
            for g, e in doc.get("groups", {}).items() for r in e.get("records", [])}


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def load_crop_inputs(rd: Mapping, model=None) -> tuple[dict, dict]:
    """The crop tiles' pixels (from ../shared) and every codec of the RD document, for re-coding."""
    import rd_pymars

    from pymars.evaluation.protocol import dev_tiles

    tiles = {}
    for group, entry in rd.get("groups", {}).items():
        want = set(crop_tiles(entry["tile_ids"]))
        tiles[group] = {t.tile_id: t.pixels for t in dev_tiles(group) if t.tile_id in want}
    codecs: dict = dict(CLASSIC_CODECS)
    pym = [r["quality"] for e in rd.get("groups", {}).values() for r in e["records"] if r["codec"] == "pymars"]
    if pym:
        codecs["pymars"] = rd_pymars.pymars_codec(model, tuple(sorted(set(pym))))
    return tiles, codecs


def result_paths(folder: Path, quick: bool) -> dict[str, Path]:
    """The result file of each step in ``folder``.

    Example:
        >>> result_paths(Path("r"), True)["pymars_rd"].as_posix()
        'r/pymars_rd_quick.json'
    """
    suffix = "_quick" if quick else ""
    return {k: folder / f"{k}{suffix}.json" for k in ("classic_rd", "pymars_rd", "complexity", "latency")}


def rd_model_id(doc: Mapping | None) -> str | None:
    """The model id an RD result file was made with (None for a classic-only file).

    Example:
        >>> rd_model_id({"settings": {"pymars": {"model": "base-v1", "model_id": "bf282961a97e5962"}}})
        'bf282961a97e5962'
    """
    return (((doc or {}).get("settings") or {}).get("pymars") or {}).get("model_id")


def reproducibility_note(previous: Mapping | None, previous_name: str, now: Mapping | None) -> str | None:
    """The report's sentence on whether the RD records reproduced a previous run's.

    Records are compared only when both runs used the same model id: another
    model gives other numbers, which is not a failure to reproduce.

    Example:
        >>> old = {"settings": {"pymars": {"model_id": "0b0f0b2eb42f08b2"}}, "groups": {}}
        >>> new = {"settings": {"pymars": {"model_id": "bf282961a97e5962"}}, "groups": {}}
        >>> reproducibility_note(old, "pymars_rd_quick.json", new)
        'Reproducibility: the previous RD records (pymars_rd_quick.json) were made with model 0b0f0b2eb42f08b2, this run with bf282961a97e5962: not compared (another model gives other numbers); run the same command again to check them.'
    """
    if now is None:
        return None
    if not previous:
        return (f"Reproducibility: no previous {previous_name} to compare the RD records with; "
                "run the same command again to check them.")
    was, is_ = rd_model_id(previous), rd_model_id(now)
    if was != is_:
        return (f"Reproducibility: the previous RD records ({previous_name}) were made with model {was or 'unknown'}, "
                f"this run with {is_ or 'unknown'}: not compared (another model gives other numbers); run the same "
                "command again to check them.")
    before, after = rd_fingerprint(previous), rd_fingerprint(now)
    same = [k for k in after if k in before]
    differ = [k for k in same if after[k] != before[k]]
    return (f"Reproducibility: {len(same)} RD records (bytes, PSNR, MS-SSIM) also in the previous run's "
            f"{previous_name} (same model {is_}); {len(differ)} differ"
            + (f", e.g. {differ[:3]}" if differ else ": the RD numbers reproduced exactly."))


def run_all(out_dir: Path, results: Path, quick: bool = False, skip_classic: bool = False, model=None,
            run: bool = True, progress: bool = True, committed: Path | None = None) -> int:
    """Run the five steps (see the module docstring) and write the report; 0 when every step succeeded.

    The steps write their result files to ``results`` only; ``committed``
    (bench/results) is read for a reusable classic RD file and for the
    previous RD records, never written.
    """
    from pymars.evaluation.protocol import mars_data_dir

    if run and mars_data_dir() is None:
        raise FileNotFoundError("the benchmarks need the development images in ../shared/data/mars "
                                "(or set PYMARS_SHARED to the folder that holds data/mars)")
    paths = result_paths(results, quick)
    fallback = result_paths(committed, quick) if committed is not None and committed != results else paths
    results.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    notes: list[str] = []
    previous_path = paths["pymars_rd"] if paths["pymars_rd"].is_file() else fallback["pymars_rd"]
    previous_rd = _load(previous_path)
    model_args = ["--model", str(model)] if model else []
    quick_args = ["--quick"] if quick else []
    started = time.perf_counter()

    def step(i: int, what: str) -> None:
        print(f"\n[{i}/{len(STEPS)}] {what}  ({time.perf_counter() - started:.0f} s so far)", flush=True)

    if run:
        ok, why = classic_reusable(paths["classic_rd"], quick)
        if not ok and fallback["classic_rd"] != paths["classic_rd"]:
            ok_committed, why_committed = classic_reusable(fallback["classic_rd"], quick)
            if ok_committed:
                shutil.copy2(fallback["classic_rd"], paths["classic_rd"])  # read from the checkout, written here
                ok, why = True, f"{why_committed} (copied from {fallback['classic_rd']})"
        step(1, f"classic RD -> {paths['classic_rd']}")
        # rd_pymars merges the records of whatever file --classic names; a path
        # that does not exist means pymars alone (never a stale or failed file).
        merge_from = results / "no-classic-rd.json"
        if ok:
            print(f"reusing it: {why}")
            notes.append(f"Classic RD reused from {paths['classic_rd'].name} ({why}).")
            merge_from = paths["classic_rd"]
        elif skip_classic:
            print(f"--skip-classic: not run ({why}); the report shows pymars alone")
            notes.append(f"Classic RD skipped (--skip-classic): {why}.")
        else:
            print(f"running it: {why}")
            if run_script(BENCH / "rd_classic.py", [*quick_args, "--out", paths["classic_rd"]]) != 0:
                failed.append("classic RD")
            else:
                merge_from = paths["classic_rd"]

        step(2, f"pymars RD -> {paths['pymars_rd']}")
        args = [*quick_args, "--classic", merge_from, "--out", paths["pymars_rd"], *model_args]
        # The ONNX-vs-PyTorch agreement check re-codes every tile: full runs only.
        if run_script(BENCH / "rd_pymars.py", args + (["--no-torch-check"] if quick else [])) != 0:
            failed.append("pymars RD")

        step(3, f"complexity -> {paths['complexity']}")
        args = ["--json", paths["complexity"], *model_args] + (["--no-callgrind"] if quick else [])
        if run_script(BENCH / "complexity.py", args) != 0:
            failed.append("complexity")

        step(4, f"latency and memory -> {paths['latency']}")
        args = [*quick_args, "--out", paths["latency"], *model_args] + (["--skip-classic"] if skip_classic else [])
        if run_script(BENCH / "latency.py", args) != 0:
            failed.append("latency")

    step(5, f"report -> {out_dir}")
    rd = _load(paths["pymars_rd"]) or _load(paths["classic_rd"])
    if run and rd is not None:
        where = previous_path.name if previous_path.parent == results else str(previous_path)
        note = reproducibility_note(previous_rd, where, rd)
        if note:
            notes.append(note)
    if failed:
        notes.append(f"Steps that failed: {', '.join(failed)} (their sections are missing or stale).")
    tiles = codecs = None
    if rd is not None:
        try:
            tiles, codecs = load_crop_inputs(rd, model)
        except (FileNotFoundError, ImportError) as e:
            notes.append(f"No crops: {e}")
    html_path = build_report(out_dir, rd, _load(paths["complexity"]), _load(paths["latency"]), tiles, codecs,
                             notes, progress=progress)
    data = out_dir / "data"
    data.mkdir(exist_ok=True)
    for p in paths.values():
        if p.is_file() and p.parent.resolve() != data.resolve():
            shutil.copy2(p, data / p.name)  # the report folder carries its own numbers
    print(f"\nwrote {out_dir / 'index.md'} and {html_path} in {time.perf_counter() - started:.0f} s")
    if failed:
        print(f"failed steps: {', '.join(failed)}")
    return 1 if failed else 0


def main(argv: Iterable[str] | None = None) -> int:
    """Command line entry point (``python bench/report.py``)."""
    ap = argparse.ArgumentParser(prog="bench/report.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="quick subsets of every step (< 5 min on 2 free cores)")
    ap.add_argument("--report", type=Path, default=None,
                    help="report folder (default bench/results/report, or report_quick with --quick); the "
                         "result files go to its data/ folder")
    ap.add_argument("--skip-classic", action="store_true",
                    help="do not run the classic RD (use the result file if it matches); time only JPEG")
    ap.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    ap.add_argument("--results", type=Path, default=None,
                    help="folder of the result JSON files (default: REPORT/data; with --no-run bench/results)")
    ap.add_argument("--update-results", action="store_true",
                    help="write the result files to the committed bench/results/ (regenerates them)")
    ap.add_argument("--no-run", action="store_true", help="only rebuild the report from existing result files")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(None if argv is None else list(argv))
    out = (args.report or BENCH / "results" / ("report_quick" if args.quick else "report")).resolve()
    committed = (BENCH / "results").resolve()
    if args.results is not None:
        results = args.results.resolve()
    elif args.update_results or args.no_run:
        results = committed
    else:
        results = out / "data"
    try:
        return run_all(out, results, args.quick, args.skip_classic, args.model, run=not args.no_run,
                       progress=not args.no_progress, committed=committed)
    except FileNotFoundError as e:
        print(f"bench/report.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
