"""The benchmark report (bench/report.py) written from a small synthetic result document.

What it checks: that ``build_report`` turns RD, complexity and latency results
into a readable report folder: Markdown and HTML with the tables, RD plots that
are real PNG files, and the side-by-side crops. It does not need ``../shared``
or a trained model: three procedural tiles are coded with two real classic
codecs (JPEG and WebP, fast), scored and summarised with the project's own
evaluation code, exactly as the RD benchmark does. It must stay fast (< 30 s)
and never time anything.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from pymars.data.synthetic import mars_like_scene

BENCH = Path(__file__).resolve().parents[1] / "bench"
GRIDS = {"jpeg420": (5, 20, 45, 90), "webp": (0, 30, 70, 95)}
GROUP = "synthetic"


@pytest.fixture(scope="module")
def report():
    pytest.importorskip("matplotlib")
    pytest.importorskip("bjontegaard")
    spec = importlib.util.spec_from_file_location("bench_report_under_test", BENCH / "report.py")
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inputs(report):
    from pymars.evaluation import bdrate
    from pymars.evaluation.classic import CLASSIC_CODECS

    # MS-SSIM needs sides over 160 px; 176 x 192 keeps the coding cheap.
    tiles = {f"scene{i}@y0x0": mars_like_scene(176, 192, seed=i) for i in range(3)}
    codecs = {name: CLASSIC_CODECS[name] for name in GRIDS}
    records = [report.rd_classic.evaluate(codecs[name], pixels, q, tile_id)
               for tile_id, pixels in tiles.items() for name in GRIDS for q in GRIDS[name]]
    rd = {"protocol": "mars-rd-1", "quick": True,
          "groups": {GROUP: {"tile_ids": list(tiles), "summary": bdrate.summarize_group(records), "records": records}}}
    complexity = {"tile": 256, "macs_per_px": {"g_a": 11000.0, "h_a": 600.0, "h_s": 1500.0, "g_s": 30000.0},
                  "flop_counter_macs_per_px": {"g_a": 11000.0, "h_a": 600.0, "h_s": 1500.0, "g_s": 30000.0},
                  "params": {"g_a": 1, "h_a": 2, "h_s": 3, "g_s": 4}, "rover_macs_per_px": 13100.0,
                  "cpp_s_per_mpx": 2.5, "torch_s_per_mpx": 0.7, "instructions_per_px": 41000.0}
    latency = {
        "coders": {"pymars/encode": {"codec": "pymars", "role": "encode", "label": "pymars C++ encoder"},
                   "jpeg420/encode": {"codec": "jpeg420", "role": "encode", "label": "jpeg420 encoder"}},
        "latency": {"crops": {"pymars/encode": {"s_per_mpx": 2.5, "x_jpeg": 312.5, "n": 4},
                              "jpeg420/encode": {"s_per_mpx": 0.008, "x_jpeg": 1.0, "n": 4}}},
        "memory": {"image": "pano@y0x0", "coders": {"pymars/encode": {"baseline_mib": 34.0, "peak_mib": 50.0},
                                                    "jpeg420/encode": {"baseline_mib": 36.0, "peak_mib": 40.0}},
                   "encode_raw": {"max_rss_mib": 16.9, "arena_mib": 13.5, "blob_mib": 4.0, "image_mib": 1.3}},
        "settings": {}, "machine": {},
    }
    return rd, complexity, latency, tiles, codecs


@pytest.fixture(scope="module")
def built(report, inputs, tmp_path_factory):
    rd, complexity, latency, tiles, codecs = inputs
    out = tmp_path_factory.mktemp("report")
    report.build_report(out, rd, complexity, latency, tiles={GROUP: tiles}, codecs=codecs)
    return out, (out / "index.md").read_text(), (out / "index.html").read_text()


def test_report_writes_markdown_and_html(built):
    out, md, page = built
    assert md.startswith("# pymars benchmark report")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_report_has_a_bd_table_against_jpeg420_with_every_codec(built):
    _, md, page = built
    assert "BD against jpeg420" in md and "BD against jpeg420" in page
    table = md.split("BD against jpeg420")[1].split("\n\n")[1]
    assert {row.split("|")[1].strip() for row in table.splitlines()[2:]} == {"jpeg420", "webp"}
    assert "per-tile median %" in md and "BD-rate MS-SSIM %" in md


def test_report_has_the_complexity_and_latency_tables(built):
    _, md, _ = built
    assert "MACs / px (analytic)" in md and "13100.0 MACs per pixel" in md
    assert "| pymars/encode | pymars C++ encoder | encode | 2.5000 | 312.50 | 50.0 | 34.0 |" in md
    assert "16.9 MiB" in md  # the C API encoder's footprint


def test_rd_plots_are_valid_pngs(built):
    from PIL import Image

    out, md, _ = built
    for metric in ("psnr", "ms_ssim"):
        path = out / f"rd_{GROUP}_{metric}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as im:
            im.verify()
        assert f"(rd_{GROUP}_{metric}.png)" in md


def test_crops_exist_for_two_tiles_and_every_codec(built, inputs, report):
    from PIL import Image

    out, md, _ = built
    tile_ids = inputs[0]["groups"][GROUP]["tile_ids"]
    chosen = report.crop_tiles(tile_ids)
    assert chosen == [tile_ids[0], tile_ids[1]]
    for tile_id in chosen:
        folder = out / "crops" / GROUP / report._safe(tile_id)
        for name in ("original", *GRIDS):
            with Image.open(folder / f"{name}.png") as im:
                # A 128 x 128 window, upscaled 2x by pixel repetition.
                assert im.size == (2 * report.CROP_SIZE, 2 * report.CROP_SIZE)
        strip = out / "crops" / f"{GROUP}_{report._safe(tile_id)}.png"
        assert strip.is_file() and f"({strip.relative_to(out).as_posix()})" in md


def test_crops_use_the_grid_point_closest_to_a_quarter_bpp(built, inputs, report):
    _, md, _ = built
    records = inputs[0]["groups"][GROUP]["records"]
    tile_id = inputs[0]["groups"][GROUP]["tile_ids"][0]
    for name in GRIDS:
        rec = report.closest_record(records, tile_id, name)
        others = [r["bpp"] for r in records if r["tile"] == tile_id and r["codec"] == name]
        assert abs(rec["bpp"] - 0.25) == min(abs(b - 0.25) for b in others)
        assert f"| {name} | {rec['quality']} | {rec['bpp']:.3f} | {rec['psnr']:.2f} |" in md


def test_reencoded_crops_reproduce_the_recorded_sizes(built):
    _, md, _ = built
    assert "Every crop tile re-encoded to a file of exactly the size in the RD records." in md


def test_html_refers_only_to_files_in_the_report_folder(built):
    out, _, page = built
    sources = re.findall(r'src="([^"]+)"', page)
    assert sources and all((out / s).is_file() for s in sources)
    assert not any(s.startswith(("/", "http")) for s in sources)
