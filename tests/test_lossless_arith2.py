"""Arith2, the near-lossless coder with trained contexts (docs/bitstream.md §4.8), and its bundles.

Synthetic scenes only (no ../shared): exact round trips at 8, 12 and 16 bits, the
+-k bound, the NLPR section's checks, and the bin counts the priors are trained on.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

import pymars
from pymars import _core
from pymars.bundles import DEFAULT_GRAY_NEAR_LOSSLESS_MODEL, DEFAULT_NEAR_LOSSLESS_MODEL
from pymars.data.synthetic import mars_like_scene

HEADER, RECORD = 40, 24  # file header and tile record header (docs/bitstream.md)


def _bundle(name):
    try:
        return pymars.open_bundle(name)
    except FileNotFoundError:
        pytest.skip(f"bundle {name} is not installed")


@pytest.fixture(scope="module")
def rgb():
    return _bundle(DEFAULT_NEAR_LOSSLESS_MODEL)


@pytest.fixture(scope="module")
def gray():
    return _bundle(DEFAULT_GRAY_NEAR_LOSSLESS_MODEL)


def test_the_lossless_defaults_use_arith2_with_priors(rgb, gray):
    for b in (rgb, gray):
        assert b.core.near_lossless_coder == "arith2"
        assert b.blob_path.read_bytes().find(b"NLPR") > 0
        assert [b.core.near_lossless_error(q) for q in (81, 100)] == [16, 0]


@pytest.mark.parametrize("k", [0, 1, 2, 4, 8, 16])
def test_every_sample_within_k(rgb, gray, k):
    img = mars_like_scene(96, 80, seed=k)
    for b, x in ((rgb, img), (gray, img[..., 1].copy())):
        data = pymars.encode(x, max_error=k, model=b)
        out = pymars.decode(data, model=b).reshape(x.shape)
        assert int(np.abs(out.astype(int) - x).max()) <= k
        if k == 0:
            assert np.array_equal(out, x)


def test_piecewise_flat_chroma_codes_smaller_than_the_first_range_coder(rgb):
    # A scene whose colour differences are flat patches (what JPEG-decoded colour
    # frames hold): Arith2 drops the bias correction there and must not lose.
    y = mars_like_scene(128, 128, seed=3)[..., 0].astype(int)
    yy, xx = np.mgrid[0:128, 0:128]
    cr = 8 * ((yy // 16 + xx // 24) % 3) - 8
    img = np.clip(np.stack([y + cr, y, y - cr // 2], -1), 0, 255).astype(np.uint8)
    old = pymars.open_bundle("base-v1-nl") if (pymars.bundles.WEIGHTS_DIR / "base-v1-nl").is_dir() else None
    new = pymars.encode(img, max_error=0, model=rgb)
    assert np.array_equal(pymars.decode(new, model=rgb).reshape(img.shape), img)
    if old is not None:
        assert len(new) < len(pymars.encode(img, max_error=0, model=old))


@pytest.mark.parametrize("depth", [12, 16])
def test_source_depth_round_trip(gray, rgb, depth):
    rng = np.random.default_rng(depth)
    base = mars_like_scene(64, 72, seed=1).astype(np.uint16) << (depth - 8)
    img = np.minimum(base + rng.integers(0, 1 << (depth - 8), base.shape, dtype=np.uint16), (1 << depth) - 1)
    for b, x in ((gray, img[..., 0].copy()), (rgb, img)):
        data = pymars.encode(x, max_error=0, bit_depth=depth, model=b)
        assert np.array_equal(pymars.decode(data, model=b).reshape(x.shape), x)
        data = pymars.encode(x, max_error=3, bit_depth=depth, model=b)
        out = pymars.decode(data, model=b).reshape(x.shape)
        assert int(np.abs(out.astype(np.int64) - x).max()) <= 3


def _nlpr(blob: bytearray) -> int:
    return blob.index(b"NLPR") + 8  # payload start (tag, u32 length)


def test_a_bad_nlpr_section_is_refused(rgb):
    good = bytearray(rgb.blob_path.read_bytes())
    at = _nlpr(good)
    assert struct.unpack_from("<4I", good, at) == (3, _core.NL_K_CLASSES, _core.NL_CONTEXTS, _core.NL_BINS)
    _core.Model(bytes(good))
    for field, value in ((0, 1), (1, 3), (2, 1000), (3, 15)):  # kinds, k classes, contexts, bins
        bad = bytearray(good)
        struct.pack_into("<I", bad, at + 4 * field, value)
        with pytest.raises(ValueError):
            _core.Model(bytes(bad))
    for value in (0, 1 << 15):  # probabilities are 1..32767
        bad = bytearray(good)
        struct.pack_into("<H", bad, at + 16 + 2 * 1234, value)
        with pytest.raises(ValueError):
            _core.Model(bytes(bad))
    # NLPR without Arith2 (DIMS flags back to plain range coding) means nothing.
    bad = bytearray(good)
    dims = bad.index(b"DIMS") + 8 + 7 * 4
    struct.pack_into("<I", bad, dims, struct.unpack_from("<I", bad, dims)[0] & ~4)
    with pytest.raises(ValueError):
        _core.Model(bytes(bad))


def test_bin_counts_cover_every_coded_sample():
    tile = mars_like_scene(40, 48, seed=2)
    counts, n = _core.nl_bin_counts(tile, 0)
    assert counts.shape == (3, _core.NL_CONTEXTS, _core.NL_BINS, 2) and n > 0
    # Every sample codes its zero bin exactly once.
    assert counts[:, :, 0, :].sum() == tile.size
    with pytest.raises(ValueError):
        _core.nl_bin_counts(tile, 33)
    with pytest.raises(ValueError):
        _core.nl_bin_counts(np.zeros((4, 4, 2), np.uint8), 0)


def test_priors_move_bytes_not_samples(rgb):
    # The same tile through a blob whose priors are all 1/2: other bytes, each payload
    # whole under its own model (the samples are checked by the round trips above).
    blob = bytearray(rgb.blob_path.read_bytes())
    at = _nlpr(blob) + 16
    n = 3 * _core.NL_K_CLASSES * _core.NL_CONTEXTS * _core.NL_BINS
    blob[at : at + 2 * n] = np.full(n, 16384, "<u2").tobytes()
    flat = _core.Model(bytes(blob))
    tile = mars_like_scene(32, 32, seed=7)
    payloads = [bytes(_core.encode(m, tile, 100, 32))[HEADER + RECORD:] for m in (rgb.core, flat)]
    assert payloads[0] != payloads[1]
    for model, payload in zip((rgb.core, flat), payloads):
        _core.decode_tile_payload(model, payload, 32, 32, 100, None, None)  # raises when damaged


def test_an_arith2_model_without_priors_starts_at_one_half(tiny_bundle, tmp_path_factory):
    from pymars.train.export.bundle_writer import derive_bundle

    root = tmp_path_factory.mktemp("a2") / "tiny-a2-flat"
    derive_bundle(tiny_bundle.root, root, tile_means=False, nl_from_quality=90, nl_max_error=10, nl_coder="arith2")
    b = pymars.open_bundle(str(root))
    assert b.core.near_lossless_coder == "arith2" and b.blob_path.read_bytes().find(b"NLPR") < 0
    img = mars_like_scene(70, 50, seed=9)
    for k in (0, 2, 5):
        out = pymars.decode(pymars.encode(img, max_error=k, model=b), model=b).reshape(img.shape)
        assert int(np.abs(out.astype(int) - img).max()) <= k


def test_priors_need_arith2(tiny_bundle, tmp_path_factory):
    from pymars.train.export.bundle_writer import derive_bundle

    priors = np.full((3, _core.NL_K_CLASSES, _core.NL_CONTEXTS, _core.NL_BINS), 16384, np.uint16)
    with pytest.raises(ValueError, match="arith2"):
        derive_bundle(tiny_bundle.root, tmp_path_factory.mktemp("a2") / "x", nl_from_quality=90, nl_max_error=10,
                      nl_coder="arith", nl_priors=priors)
    with pytest.raises(ValueError, match="priors must be"):
        derive_bundle(tiny_bundle.root, tmp_path_factory.mktemp("a2") / "y", nl_from_quality=90, nl_max_error=10,
                      nl_coder="arith2", nl_priors=priors[:1])


def _raw_like_colour(h=64, w=64, seed=0):
    # A raw colour frame: the channels differ by a gain and carry their own sensor noise.
    rng = np.random.default_rng(seed)
    f = mars_like_scene(h, w, seed=seed, channels=1).astype(float)
    img = np.stack([f, 0.78 * f + 6, 0.55 * f + 10], -1) + rng.normal(0, 1.5, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def test_raw_colour_takes_the_gain_form_and_decodes(rgb):
    img = _raw_like_colour()
    for k in (0, 2, 6):
        data = pymars.encode(img, max_error=k, model=rgb, tile_size=64)
        # Form 4: form 2's fitted gains, with channel 0 and both colour planes linearly predicted.
        assert data[HEADER + RECORD] == 4, "a raw-like tile should pick the fitted gains (form 4)"
        out = pymars.decode(data, model=rgb).reshape(img.shape)
        assert int(np.abs(out.astype(int) - img).max()) <= k
    # 16-bit samples too.
    img16 = img.astype(np.uint16) * 16 + 3
    data = pymars.encode(img16, max_error=0, bit_depth=12, model=rgb, tile_size=64)
    assert np.array_equal(pymars.decode(data, model=rgb).reshape(img16.shape), img16)


def test_lossless_jpeg_decoded_colour_keeps_the_differences(rgb):
    # Lossless RGB tiles are coded once, in the form the colour planes' residuals point to
    # (nearlossless.cpp, lossless_form_guess): a JPEG-decoded frame (chroma subsampled, flat
    # difference planes, fitted gains away from 1) must keep the unit-gain differences (form 3),
    # a raw-like one the gains (form 4, test above); both exact.
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(mars_like_scene(64, 64, seed=3)).save(buf, "JPEG", quality=85)
    img = np.array(Image.open(buf))
    data = pymars.encode(img, max_error=0, model=rgb, tile_size=64)
    assert data[HEADER + RECORD] == 3, "a JPEG-decoded colour tile should keep the differences (form 3)"
    assert np.array_equal(pymars.decode(data, model=rgb).reshape(img.shape), img)


def test_a_gain_above_32_is_damage(rgb):
    img = _raw_like_colour(32, 32, seed=1)
    payload = bytearray(pymars.encode(img, max_error=0, model=rgb, tile_size=32)[HEADER + RECORD:])
    assert payload[0] == 4 and payload[1] <= 32 and payload[2] <= 32
    _core.decode_tile_payload(rgb.core, bytes(payload), 32, 32, 100, None, None)
    payload[1] = 33
    with pytest.raises(ValueError, match="damaged"):
        _core.decode_tile_payload(rgb.core, bytes(payload), 32, 32, 100, None, None)


# ---- Linear prediction (form 3 / 4, docs/bitstream.md §4.8 "Linear prediction") ----

WEIGHTS = 27  # 3 texture classes x 9 neighbours, one signed byte each


def _noisy_gray(h=96, w=96, seed=0, sigma=3.0):
    # A raw-like gray frame: a smooth scene under sensor noise, what MED passes on.
    rng = np.random.default_rng(seed)
    f = mars_like_scene(h, w, seed=seed, channels=1).astype(float) + rng.normal(0, sigma, (h, w))
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("k", [0, 1, 3, 8])
def test_gray_tiles_take_the_linear_form_and_keep_the_bound(gray, k):
    img = _noisy_gray(seed=k)
    data = pymars.encode(img, max_error=k, model=gray, tile_size=96)
    assert data[HEADER + RECORD] == 3
    weights = np.frombuffer(data[HEADER + RECORD + 1:HEADER + RECORD + 1 + WEIGHTS], np.int8)
    assert weights.min() >= -127  # -128 is never written
    out = pymars.decode(data, model=gray).reshape(img.shape)
    assert int(np.abs(out.astype(int) - img).max()) <= k


@pytest.mark.parametrize("depth", [12, 16])
def test_linear_form_at_the_file_bit_depth(gray, depth):
    img = (_noisy_gray(80, 112, seed=depth).astype(np.uint32) << (depth - 8)).astype(np.uint16)
    img[5, 7] = (1 << depth) - 1  # the top of the range
    data = pymars.encode(img, max_error=0, bit_depth=depth, model=gray, tile_size=112)
    assert data[HEADER + RECORD] == 3
    assert np.array_equal(pymars.decode(data, model=gray).reshape(img.shape), img)


def test_linear_prediction_beats_med_on_noisy_gray(gray):
    # The reason for form 3: on a noisy frame the fitted predictor needs fewer bits
    # than MED (the same tile coded by the bundle's coder with form 3 written as MED
    # cannot be asked for, so compare with JPEG-LS, which is MED with LOCO-I contexts).
    imagecodecs = pytest.importorskip("imagecodecs")
    img = _noisy_gray(256, 256, seed=5, sigma=4.0)
    ours = len(pymars.encode(img, max_error=0, model=gray, tile_size=256))
    jpegls = len(imagecodecs.jpegls_encode(img))
    assert ours < 0.97 * jpegls


def test_a_damaged_weight_or_a_short_header_is_damage(gray):
    img = _noisy_gray(32, 32, seed=1)
    payload = bytearray(pymars.encode(img, max_error=0, model=gray, tile_size=32)[HEADER + RECORD:])
    assert payload[0] == 3
    _core.decode_tile_payload(gray.core, bytes(payload), 32, 32, 100, None, None)
    bad = bytearray(payload)
    bad[1 + 4] = 0x80  # a weight of -128: never written
    with pytest.raises(ValueError, match="damaged"):
        _core.decode_tile_payload(gray.core, bytes(bad), 32, 32, 100, None, None)
    with pytest.raises(ValueError, match="damaged"):
        _core.decode_tile_payload(gray.core, bytes(payload[:1 + WEIGHTS - 1]), 32, 32, 100, None, None)
    rgb_form = bytearray(payload)
    rgb_form[0] = 4  # gains + weights: RGB only
    with pytest.raises(ValueError, match="damaged"):
        _core.decode_tile_payload(gray.core, bytes(rgb_form), 32, 32, 100, None, None)


def test_raw_colour_planes_take_their_own_weights(rgb):
    # Form 4 carries 3 x 27 weights after the gains; the colour planes of a raw-like tile are noisy, so the
    # fitted planes must beat MED on them: the tile is smaller than with channel 0's weights alone (JPEG XL
    # is the outside check in bench/lossless_raw_colour.py).
    img = _raw_like_colour(64, 64, seed=7)
    payload = pymars.encode(img, max_error=0, model=rgb, tile_size=64)[HEADER + RECORD:]
    assert payload[0] == 4
    weights = np.frombuffer(payload[3:3 + 3 * WEIGHTS], np.int8)
    assert weights.min() >= -127 and np.any(weights[WEIGHTS:] != 0)
    # The same tile cut short of its plane weights is damage, not a different picture.
    with pytest.raises(ValueError, match="damaged"):
        _core.decode_tile_payload(rgb.core, bytes(payload[:3 + 2 * WEIGHTS]), 64, 64, 100, None, None)


def test_the_fitted_weights_are_the_same_every_time(gray):
    # The fit runs in double; its operation order is fixed (no FMA contraction), so the
    # same tile gives the same bytes (across CPUs: tests/test_cross_arch.py).
    img = _noisy_gray(64, 64, seed=2)
    a = pymars.encode(img, max_error=0, model=gray, tile_size=64)
    b = pymars.encode(img.copy(), max_error=0, model=gray, tile_size=64, threads=2)
    assert a == b


def test_tiles_too_small_to_fit_keep_the_med_forms(gray, rgb):
    # Under 4 rows (or 6 columns) there is nothing to fit: MED, forms 0 and 2, exactly what every tile of
    # the earlier encoders was, so that decoding path stays exercised.
    g = np.ascontiguousarray(_noisy_gray(64, 40, seed=3)[:3])
    data = pymars.encode(g, max_error=0, model=gray, tile_size=64)
    assert data[HEADER + RECORD] == 0
    assert np.array_equal(pymars.decode(data, model=gray).reshape(g.shape), g)
    c = _raw_like_colour(64, 64, seed=4)[:3]
    data = pymars.encode(np.ascontiguousarray(c), max_error=0, model=rgb, tile_size=64)
    assert data[HEADER + RECORD] in (0, 2)
    assert np.array_equal(pymars.decode(data, model=rgb).reshape(c.shape), c)
