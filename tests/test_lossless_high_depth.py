"""Lossless and near-lossless coding at the source bit depth (12 and 16 bit; docs/bitstream.md §4.8, §5).

With ``max_error`` a 12/16-bit image is coded by the range-coded near-lossless
coder at its own depth (header flag bit 1): exact at k = 0, every sample within
k (in the image's units) otherwise; decoded as uint16 at the file's depth,
without the 8-bit expansion. Without ``max_error`` and for 8-bit images nothing
changes (scripts/bitstream_digest.py pins every byte; two cases are pinned here).
Synthetic images only.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import pymars
from pymars.bundles import open_bundle
from pymars.cli import main
from pymars.data.synthetic import mars_like_scene
from pymars.errors import ModelMismatchError
from pymars.imageio import read_image, write_image

FLAG_SOURCE_DEPTH = 2  # header flags bit 1

pytestmark = pytest.mark.filterwarnings("ignore::pymars.ground.decode.DamagedTilesWarning")


def _bundle_or_skip(name):
    b = open_bundle(name)
    if not b.available:
        pytest.skip(f"bundle {name} not installed")
    return b


def _image(h, w, channels, depth, seed=0, noise=3.0):
    """A Mars-like scene at `depth` bits with sensor-like noise and a few full-range samples."""
    rng = np.random.default_rng(seed)
    base = mars_like_scene(max(h, 8), max(w, 8), seed=seed + 1)[:h, :w].astype(np.float64)
    if channels == 1:
        base = base.mean(axis=2)
    top = (1 << depth) - 1
    img = np.clip(np.round(base * top / 255 + rng.normal(0, noise, base.shape)), 0, top).astype(np.uint16)
    flat = img.reshape(-1)
    flat[:: 97] = top  # saturated samples: the largest residuals
    flat[5:: 131] = 0
    return img


SIZES = [(1, 1), (17, 5), (64, 64), (67, 130), (200, 129)]


@pytest.mark.parametrize("depth", [12, 16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", SIZES)
def test_lossless_round_trip_is_exact(depth, channels, size):
    _bundle_or_skip("base-v2-gray-rc" if channels == 1 else "base-v1-nl")
    img = _image(*size, channels, depth, seed=size[0])
    data = pymars.encode(img, max_error=0, bit_depth=depth, tile_size=64)
    h = pymars.info(data)
    assert h["flags"] & FLAG_SOURCE_DEPTH and h["sample_depth"] == depth and h["bit_depth"] == depth
    out = pymars.decode(data)
    assert out.dtype == np.uint16 and out.shape == img.shape
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("depth", [12, 16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_near_lossless_error_bound_on_every_sample(depth, channels, k):
    _bundle_or_skip("base-v2-gray-rc" if channels == 1 else "base-v1-nl")
    img = _image(150, 133, channels, depth, seed=k, noise=6.0)
    data = pymars.encode(img, max_error=k, bit_depth=depth, tile_size=64)
    out = pymars.decode(data)
    err = np.abs(out.astype(np.int64) - img.astype(np.int64))
    assert int(err.max()) <= k
    assert int(err.max()) >= 1  # k is used (the model's quality for max_error k has error k' <= k)
    lossless = pymars.encode(img, max_error=0, bit_depth=depth, tile_size=64)
    assert len(data) < len(lossless)


def test_12_bit_smooth_gray_costs_well_below_12_bits_per_sample():
    _bundle_or_skip("base-v2-gray-rc")
    y, x = np.mgrid[0:256, 0:256]
    img = (2048 + 900 * np.sin(x / 37.0) * np.cos(y / 51.0) + 3 * (x % 3)).astype(np.uint16)
    data = pymars.encode(img, max_error=0, bit_depth=12)
    np.testing.assert_array_equal(pymars.decode(data), img)
    bits = 8 * len(data) / img.size
    assert bits < 6, bits  # sanity: far below the 12 bits of the raw samples


def test_noise_is_stored_at_16_bits_and_exact():
    _bundle_or_skip("base-v2-gray-rc")
    img = np.random.default_rng(3).integers(0, 65536, (64, 64), dtype=np.uint16)
    data = pymars.encode(img, max_error=0, bit_depth=16, tile_size=64)
    # Stored form: form byte + 2 bytes per sample (header 40, record header 24).
    assert len(data) == 40 + 24 + 1 + 2 * img.size
    np.testing.assert_array_equal(pymars.decode(data), img)


def test_damaged_tile_is_contained():
    _bundle_or_skip("base-v1-nl")
    img = _image(128, 192, 3, 12, seed=9)
    data = bytearray(pymars.encode(img, max_error=0, bit_depth=12, tile_size=64))
    # Flip one payload byte of tile 1: its CRC fails, every other tile decodes exactly.
    start = data.index(b"PMTL", 40 + 24)  # the second record
    data[start + 24 + 10] ^= 0xFF
    out, report = pymars.decode_with_report(bytes(data))
    assert report.damaged == [1] and not report.missing
    mask = np.ones(img.shape[:2], bool)
    mask[0:64, 64:128] = False
    np.testing.assert_array_equal(out[mask], img[mask])
    assert not out[0:64, 64:128].any()


def test_without_max_error_and_at_8_bits_nothing_changes():
    _bundle_or_skip("base-v2-gray-rc")
    # 8-bit lossless: byte for byte the file of before (scripts/bitstream_digest.py's case, with the
    # lossless default of then; the default is now base-v2-gray-nl).
    gray8 = mars_like_scene(200, 180, seed=3).mean(axis=2).astype(np.uint8)
    data = pymars.encode(gray8, max_error=0, model="base-v2-gray-rc")
    assert pymars.info(data)["flags"] == 0
    assert hashlib.sha256(data).hexdigest() == "876f1e7ac7494076cfb9257d33075b66cd8fd8d7d1458d1002d88f6fcca83aee"
    # A 12-bit image at a near-lossless *quality* keeps the 8-bit reduction of §5 (no flag).
    gray12 = mars_like_scene(100, 90, seed=5)[..., 1].astype(np.uint16) * 16 + 7
    data = pymars.encode(gray12, quality=100, model="base-v2-gray-rc")  # bit_depth 16, as the digest
    assert pymars.info(data)["flags"] == 0 and pymars.info(data)["sample_depth"] == 8
    assert hashlib.sha256(data).hexdigest() == "8e9228f84d9dfb3d3f29c30aefa9cf24b8032ae0ab1b67e6e7d30c28ff90321d"


def test_golomb_model_refuses_max_error_on_16_bit_in_one_line():
    b = _bundle_or_skip("base-v2-gray")
    assert b.core.near_lossless_coder == "golomb"
    with pytest.raises(ModelMismatchError) as e:
        pymars.encode(_image(32, 32, 1, 12), max_error=0, bit_depth=12, model="base-v2-gray")
    assert "\n" not in str(e.value) and "Golomb" in str(e.value)


def test_gray_file_through_rgb_model_keeps_depth():
    _bundle_or_skip("base-v1-nl")
    img = _image(40, 70, 1, 16, seed=4)
    data = pymars.encode(img, max_error=0, bit_depth=16, model="base-v1-nl")
    np.testing.assert_array_equal(pymars.decode(data), img)


def test_cli_lossless_16_bit_tiff(tmp_path, capsys):
    _bundle_or_skip("base-v2-gray-rc")
    img = _image(70, 90, 1, 12, seed=2)
    src = tmp_path / "in.tif"
    write_image(src, img)
    assert main(["encode", str(src), "-o", str(tmp_path / "a.pmrs"), "--lossless", "--bit-depth", "12"]) == 0
    assert main(["decode", str(tmp_path / "a.pmrs"), "-o", str(tmp_path / "back.tif")]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "back.tif"), img)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "a.pmrs")]) == 0
    text = capsys.readouterr().out
    assert "lossless" in text and "12-bit samples" in text
