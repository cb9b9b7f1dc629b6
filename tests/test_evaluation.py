"""Specification of pymars.evaluation: metrics, BD aggregation and the classic codecs.

Everything here runs on synthetic scenes, without ../shared. The few tests that
need the development data or pytorch_msssim skip and say why.
"""
from __future__ import annotations

import importlib.util
import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from pymars.data.synthetic import mars_like_scene
from pymars.evaluation import bdrate, classic, metrics
from pymars.evaluation.protocol import mars_data_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rgb_tile() -> np.ndarray:
    return mars_like_scene(176, 192, seed=7)


@pytest.fixture(scope="module")
def small_rgb() -> np.ndarray:
    return mars_like_scene(64, 96, seed=3)


@pytest.fixture(scope="module")
def small_gray() -> np.ndarray:
    return mars_like_scene(64, 96, seed=3, channels=1)


def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf))


# ---------------------------------------------------------------------------
# PSNR


def test_psnr_of_identical_images_is_the_lossless_100_db(rgb_tile):
    assert metrics.psnr(rgb_tile, rgb_tile.copy()) == 100.0


def test_psnr_known_value_of_a_uniform_error_of_one():
    a = np.full((10, 10, 3), 50, np.uint8)
    assert metrics.psnr(a, a + 1) == pytest.approx(20 * math.log10(255), abs=1e-12)


def test_psnr_does_not_wrap_around_on_uint8_differences():
    a = np.zeros((4, 4), np.uint8)
    b = np.full((4, 4), 255, np.uint8)
    assert metrics.psnr(a, b) == pytest.approx(0.0, abs=1e-12)
    assert metrics.psnr(b, a) == pytest.approx(0.0, abs=1e-12)


def test_psnr_pools_the_mse_over_all_channels_not_per_channel_psnr():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] += 3  # one channel off by 3: MSE = 9 / 3 = 3
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 3.0), abs=1e-12)


def test_psnr_one_channel_equals_three_identical_channels():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-5, 6, a.shape), 0, 255).astype(np.uint8)
    rep = lambda x: np.repeat(x[..., None], 3, axis=2)  # noqa: E731
    assert metrics.psnr(a, b) == pytest.approx(metrics.psnr(rep(a), rep(b)), abs=1e-12)


def test_psnr_refuses_images_of_different_shape():
    with pytest.raises(ValueError):
        metrics.psnr(np.zeros((4, 4), np.uint8), np.zeros((4, 4, 1), np.uint8))


# ---------------------------------------------------------------------------
# MS-SSIM


def test_ms_ssim_of_identical_images_is_one(rgb_tile):
    assert metrics.ms_ssim(rgb_tile, rgb_tile) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ms_ssim(rgb_tile[..., 0], rgb_tile[..., 0]) == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_of_rgb_is_the_mean_of_its_channels(rgb_tile):
    dec = _jpeg_roundtrip(rgb_tile, 20)
    per_channel = [metrics.ms_ssim(rgb_tile[..., c], dec[..., c]) for c in range(3)]
    assert metrics.ms_ssim(rgb_tile, dec) == pytest.approx(np.mean(per_channel), abs=1e-12)


def test_ms_ssim_one_channel_equals_three_identical_channels(rgb_tile):
    gray = rgb_tile[..., 1].copy()
    dec = _jpeg_roundtrip(gray, 15)
    rep = lambda x: np.repeat(x[..., None], 3, axis=2)  # noqa: E731
    assert metrics.ms_ssim(gray, dec) == pytest.approx(metrics.ms_ssim(rep(gray), rep(dec)), abs=1e-12)


def test_ms_ssim_falls_as_the_distortion_grows(rgb_tile):
    values = [metrics.ms_ssim(rgb_tile, _jpeg_roundtrip(rgb_tile, q)) for q in (90, 50, 10, 2)]
    assert all(1.0 > a > b > 0.0 for a, b in zip(values, values[1:]))


def test_ms_ssim_needs_both_sides_over_160_px():
    img = np.zeros((160, 300), np.uint8)
    with pytest.raises(ValueError):
        metrics.ms_ssim(img, img)


def test_gaussian_window_is_pytorch_msssims_float32_window():
    w = metrics.gaussian_window(11, 1.5)
    assert w.dtype == np.float64 and np.all(w == w.astype(np.float32))
    assert np.allclose(w, w[::-1]) and abs(w.sum() - 1) < 1e-6


def test_avg_pool_pads_odd_sides_with_a_counted_zero():
    # 3x2 plane: H is odd, so one zero row goes on each side; the first output row
    # averages the top zero row with row 0, the second rows 1 and 2.
    plane = np.array([[[4.0, 8.0], [1.0, 3.0], [5.0, 7.0]]])
    assert metrics._avg_pool_2x2(plane).tolist() == [[[3.0], [4.0]]]


@pytest.fixture(scope="module")
def torch_ms_ssim():
    pytest.importorskip("torch", reason="pytorch_msssim agreement test needs torch")
    msssim = pytest.importorskip("pytorch_msssim", reason="pytorch-msssim==1.0.0 is not installed")
    import torch

    def score(a: np.ndarray, b: np.ndarray) -> float:
        def tensor(x):
            t = torch.from_numpy(x.astype(np.float64))
            return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]

        return float(msssim.ms_ssim(tensor(a), tensor(b), data_range=255, size_average=True))

    return score


@pytest.mark.parametrize("shape", [(256, 256, 3), (240, 256, 3), (256, 256), (177, 201, 3), (255, 199)])
def test_ms_ssim_agrees_with_pytorch_msssim_within_5e_6(torch_ms_ssim, shape):
    img = mars_like_scene(shape[0], shape[1], seed=sum(shape), channels=3 if len(shape) == 3 else 1)
    for quality in (5, 50):
        dec = _jpeg_roundtrip(img, quality)
        assert abs(metrics.ms_ssim(img, dec) - torch_ms_ssim(img, dec)) < 5e-6


def test_ms_ssim_agrees_with_pytorch_msssim_on_development_tiles(torch_ms_ssim):
    if mars_data_dir() is None:
        pytest.skip("../shared/data/mars is absent (set PYMARS_SHARED): real development tiles needed")
    from pymars.evaluation.protocol import dev_tiles

    for group in ("dev_marsdata",):
        for tile in dev_tiles(group)[::10]:
            dec = _jpeg_roundtrip(tile.pixels, 5)
            assert abs(metrics.ms_ssim(tile.pixels, dec) - torch_ms_ssim(tile.pixels, dec)) < 5e-6


# ---------------------------------------------------------------------------
# BD-rate and aggregation

ANCHOR_BPP = [0.1, 0.2, 0.4, 0.8, 1.6]
ANCHOR_PSNR = [27.0, 30.0, 33.0, 36.0, 39.0]


def test_bd_rate_of_a_codec_against_itself_is_zero():
    r = bdrate.bd(ANCHOR_BPP, ANCHOR_PSNR, ANCHOR_BPP, ANCHOR_PSNR)
    assert r.bd_rate == 0.0 and r.bd_metric == 0.0
    assert r.overlap == 1.0 and r.metric_range == (27.0, 39.0) and r.warnings == ()


def test_bd_rate_of_a_curve_at_half_the_rate_is_minus_50_percent():
    half = [b / 2 for b in ANCHOR_BPP]
    r = bdrate.bd(ANCHOR_BPP, ANCHOR_PSNR, half, ANCHOR_PSNR)
    assert r.bd_rate == pytest.approx(-50.0, abs=1e-9)
    assert r.bd_metric > 0  # same rate, better quality


def test_bd_rate_of_a_curve_at_twice_the_rate_is_plus_100_percent():
    double = [b * 2 for b in ANCHOR_BPP]
    assert bdrate.bd(ANCHOR_BPP, ANCHOR_PSNR, double, ANCHOR_PSNR).bd_rate == pytest.approx(100.0, abs=1e-9)


def test_bd_psnr_of_a_curve_1_db_higher_is_plus_1_db():
    r = bdrate.bd(ANCHOR_BPP, ANCHOR_PSNR, ANCHOR_BPP, [p + 1 for p in ANCHOR_PSNR])
    assert r.bd_metric == pytest.approx(1.0, abs=1e-9) and r.bd_rate < 0


def test_bd_ignores_point_order_and_non_monotone_points():
    shuffled = [3, 0, 4, 1, 2]
    bpp = [ANCHOR_BPP[i] for i in shuffled] + [2.0]
    psnr = [ANCHOR_PSNR[i] for i in shuffled] + [38.5]  # higher rate, lower PSNR: dropped
    r = bdrate.bd(ANCHOR_BPP, ANCHOR_PSNR, bpp, psnr)
    assert r.bd_rate == pytest.approx(0.0, abs=1e-12) and r.test_points == 5


def test_increasing_part_keeps_only_strictly_increasing_points():
    b, m = bdrate.increasing_part([0.1, 0.2, 0.2, 0.4, 0.8], [30, 31, 32, 31, 35])
    assert b.tolist() == [0.1, 0.2, 0.8] and m.tolist() == [30, 31, 35]


def test_insufficient_overlap_is_recorded_not_warned():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning escaping bd() fails the test
        r = bdrate.bd(ANCHOR_BPP, ANCHOR_PSNR, [0.5, 1.0, 2.0], [35.0, 38.0, 41.0])
    assert math.isfinite(r.bd_rate)
    assert r.metric_range == (35.0, 39.0)
    assert r.overlap == pytest.approx(4.0 / 14.0)
    assert any("overlap" in w for w in r.warnings)


def test_curves_that_do_not_overlap_give_nan_with_a_reason():
    r = bdrate.bd([0.1, 0.2], [20.0, 22.0], [1.0, 2.0], [40.0, 42.0])
    assert math.isnan(r.bd_rate) and r.overlap == 0.0 and r.warnings


def test_psnr_at_half_a_bit_interpolates_in_log_bpp():
    assert bdrate.metric_at_rate([0.25, 1.0], [30.0, 36.0], 0.5) == pytest.approx(33.0)
    assert math.isnan(bdrate.metric_at_rate([0.6, 1.0], [30.0, 36.0], 0.5))


def _records(codec, scale, tiles=("a", "b", "c"), stream=None):
    out = []
    for k, tile in enumerate(tiles):
        for q, (b, p) in enumerate(zip(ANCHOR_BPP, ANCHOR_PSNR)):
            r = dict(tile=tile, codec=codec, quality=q, bpp=b * scale * (1 + k), psnr=p - k,
                     ms_ssim=1 - 0.1 / (q + 1 + k))
            if stream is not None:
                r["stream_bpp"] = r["bpp"] * stream
            out.append(r)
    return out


def test_mean_curve_is_the_arithmetic_mean_of_bpp_and_of_per_tile_psnr():
    curve = bdrate.rd_curves(_records("x", 1.0))["x"]
    assert curve.bpp[0] == pytest.approx(0.1 * (1 + 2 + 3) / 3)
    assert curve.psnr[0] == pytest.approx(27.0 - 1.0)


def test_per_tile_median_bd_rate_compares_each_tile_with_itself():
    curves = bdrate.rd_curves(_records("anchor", 1.0) + _records("test", 0.5))
    median, n = bdrate.per_tile_median_bd_rate(curves["anchor"], curves["test"])
    assert median == pytest.approx(-50.0, abs=1e-9) and n == 3


def test_rd_curves_refuse_a_codec_missing_a_quality_on_a_tile():
    recs = _records("x", 1.0)[:-1]
    with pytest.raises(ValueError):
        bdrate.rd_curves(recs)


def test_summary_has_every_anchor_metric_and_the_bare_stream_curve():
    recs = _records("jpeg420", 1.0) + _records("hevc444", 0.5, stream=0.9) + _records("avif", 0.6)
    s = bdrate.summarize_group(recs)
    assert set(s["bd"]) == {"jpeg420", "hevc444", "hevc444:stream"}
    assert set(s["bd"]["jpeg420"]) == {"psnr", "ms_ssim_db"}
    assert s["bd"]["jpeg420"]["psnr"]["hevc444"]["bd_rate"] == pytest.approx(-50.0, abs=1e-9)
    assert s["bd"]["hevc444"]["psnr"]["hevc444:stream"]["bd_rate"] == pytest.approx(-10.0, abs=1e-9)


# ---------------------------------------------------------------------------
# Classic codecs

ALL_CODECS = list(classic.CLASSIC_CODECS)

MAGIC = {
    "jpeg420": (0, b"\xff\xd8\xff"),
    "jpeg444": (0, b"\xff\xd8\xff"),
    "jpeg2000": (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"),
    "webp": (8, b"WEBP"),
    "avif": (8, b"avif"),
    "jpegxl": (0, b"\xff\x0a"),  # bare codestream, not the ISO-BMFF container
    "hevc444": (8, b"hei"),  # brand heix for 4:4:4 (RExt), heic for 4:2:0 and 4:0:0
    "hevc420": (8, b"heic"),
}


def test_registry_has_the_protocols_codecs_and_grids():
    grids = {name: c.qualities for name, c in classic.CLASSIC_CODECS.items()}
    assert grids["jpeg420"] == grids["jpeg444"] == (5, 10, 20, 30, 45, 60, 75, 90)
    assert grids["jpeg2000"] == (26, 28, 30, 32, 34, 36, 38, 40)
    assert grids["webp"] == (0, 10, 30, 50, 70, 80, 90, 95)
    assert grids["avif"] == (10, 20, 30, 40, 50, 60, 70, 80)
    assert grids["jpegxl"] == (15, 10, 7, 5, 3.5, 2.5, 1.7, 1.0)
    assert grids["hevc444"] == grids["hevc420"] == (5, 12, 20, 28, 35, 42, 50, 58)
    assert "hevc420" not in classic.DEFAULT_CODECS and len(classic.DEFAULT_CODECS) == 7


@pytest.mark.parametrize("name", ALL_CODECS)
def test_codec_round_trips_an_rgb_tile(name, small_rgb):
    codec = classic.CLASSIC_CODECS[name]
    low = classic.code_tile(codec, small_rgb, codec.qualities[0])
    high = classic.code_tile(codec, small_rgb, codec.qualities[-1])
    assert high.decoded.shape == small_rgb.shape and high.decoded.dtype == np.uint8
    assert 0 < low.n_bytes < high.n_bytes
    assert metrics.psnr(small_rgb, low.decoded) < metrics.psnr(small_rgb, high.decoded)
    assert metrics.psnr(small_rgb, high.decoded) > 30
    assert high.encode_seconds > 0 and high.decode_seconds > 0


@pytest.mark.parametrize("name", ALL_CODECS)
def test_codec_codes_a_gray_tile_as_one_channel(name, small_gray):
    codec = classic.CLASSIC_CODECS[name]
    coded = classic.code_tile(codec, small_gray, codec.qualities[-1])
    assert coded.decoded.shape == small_gray.shape
    assert metrics.psnr(small_gray, coded.decoded) > 30


@pytest.mark.parametrize("name", ALL_CODECS)
def test_byte_count_is_the_complete_file_the_library_writes(name, small_rgb):
    codec = classic.CLASSIC_CODECS[name]
    data = codec.encode(small_rgb, codec.qualities[3])
    offset, magic = MAGIC[name]
    assert data[offset : offset + len(magic)] == magic
    assert classic.code_tile(codec, small_rgb, codec.qualities[3]).n_bytes == len(data)


def test_jpeg444_equals_jpeg420_on_gray_tiles(small_gray):
    a = classic.jpeg420(small_gray, 45)
    b = classic.jpeg444(small_gray, 45)
    assert a.n_bytes == b.n_bytes and np.array_equal(a.decoded, b.decoded)


def test_jpeg_gray_is_a_one_component_jpeg(small_gray):
    from PIL import Image

    data = classic.CLASSIC_CODECS["jpeg420"].encode(small_gray, 45)
    assert Image.open(io.BytesIO(data)).layers == 1


def test_webp_gray_decodes_as_the_rounded_mean_of_rgb(small_gray):
    from PIL import Image

    codec = classic.CLASSIC_CODECS["webp"]
    data = codec.encode(small_gray, 50)
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float64)
    expected = np.floor(rgb.mean(axis=2) + 0.5).astype(np.uint8)  # never exactly .5 for a mean of 3
    assert np.array_equal(codec.decode(data, small_gray.shape), expected)


def _av1c(data: bytes) -> int:
    """The flags byte of the av1C box: ..., monochrome (bit 4), subsampling_x (3), subsampling_y (2)."""
    i = data.index(b"av1C")
    return data[i + 6]


def test_avif_is_444_for_rgb_and_monochrome_for_gray(small_rgb, small_gray):
    codec = classic.CLASSIC_CODECS["avif"]
    rgb_flags = _av1c(codec.encode(small_rgb, 50))
    gray_flags = _av1c(codec.encode(small_gray, 50))
    assert (rgb_flags >> 2) & 0b111 == 0b000  # colour, no subsampling in x or y
    assert (gray_flags >> 4) & 1 == 1  # monochrome


@pytest.mark.parametrize("name, tile, chroma", [
    ("hevc444", "rgb", 3), ("hevc420", "rgb", 1), ("hevc444", "gray", 0), ("hevc420", "gray", 0)])
def test_hevc_chroma_format(name, tile, chroma, small_rgb, small_gray):
    data = classic.CLASSIC_CODECS[name].encode(small_rgb if tile == "rgb" else small_gray, 35)
    assert classic.heic_layout(data).chroma_format_idc == chroma


def test_hevc_bare_stream_counts_parameter_sets_and_slices_with_4_byte_lengths(small_rgb):
    data = classic.CLASSIC_CODECS["hevc444"].encode(small_rgb, 35)
    lay = classic.heic_layout(data)
    # One picture: VPS+SPS+PPS (3 NALs) in hvcC, one or more slices in mdat.
    assert all(t < 32 for t in lay.nal_types) and len(lay.nal_types) >= 1
    assert lay.stream_bytes == lay.parameter_set_bytes + lay.slice_bytes
    assert lay.parameter_set_bytes > 3 * 4
    # The container (ftyp, meta, mdat headers, hvcC fields) is a few hundred bytes.
    assert 100 < lay.file_bytes - lay.stream_bytes < 600
    assert classic.hevc444(small_rgb, 35).stream_bytes == lay.stream_bytes


def test_code_tile_refuses_non_uint8_and_four_channel_tiles(small_rgb):
    codec = classic.CLASSIC_CODECS["jpeg420"]
    with pytest.raises(TypeError):
        classic.code_tile(codec, small_rgb.astype(np.uint16), 50)
    with pytest.raises(ValueError):
        classic.code_tile(codec, np.zeros((8, 8, 4), np.uint8), 50)


def test_library_versions_name_every_codec_library():
    v = classic.library_versions()
    assert {"pillow", "libjpeg_turbo", "libwebp", "libavif", "openjpeg", "libjxl", "x265", "libde265"} <= set(v)


# ---------------------------------------------------------------------------
# The benchmark script (bench/rd_classic.py)


@pytest.fixture(scope="module")
def rd_classic():
    spec = importlib.util.spec_from_file_location("rd_classic", REPO / "bench" / "rd_classic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_scores_and_reports_a_synthetic_group(rd_classic):
    tiles = {f"scene{s}@y0x0": mars_like_scene(176, 176, seed=s) for s in (1, 2)}
    records = [
        rd_classic.evaluate(rd_classic.REGISTRY[name], pix, q, tid)
        for tid, pix in tiles.items()
        for name in ("jpeg420", "hevc444", "webp")
        for q in rd_classic.qualities_for(rd_classic.REGISTRY[name], quick=True)
    ]
    doc = {"protocol": "mars-rd-1", "quick": True,
           "groups": {"synthetic": {"summary": bdrate.summarize_group(records)}}}
    text = rd_classic.format_report(doc)
    assert "BD vs jpeg420" in text and "BD vs hevc444 bare HEVC stream" in text
    assert "Best classic codec on synthetic" in text


def test_benchmark_quick_grid_keeps_both_ends_of_every_grid(rd_classic):
    for codec in classic.CLASSIC_CODECS.values():
        q = rd_classic.qualities_for(codec, quick=True)
        assert q[0] == codec.qualities[0] and q[-1] == codec.qualities[-1] and len(q) == 4


def test_development_groups_have_38_and_31_tiles():
    if mars_data_dir() is None:
        pytest.skip("../shared/data/mars is absent (set PYMARS_SHARED): tile counts need the development set")
    from pymars.evaluation.protocol import selected_windows

    assert len(selected_windows("dev_marsscapes")) == 38
    assert len(selected_windows("dev_marsdata")) == 31
