"""Encode with the C++ rover encoder, decode on the ground: the whole chain.

Specification:
* every tile round-trips; the reconstruction is close to the input for this model;
* the ONNX Runtime and PyTorch synthesis paths agree within 0.05 dB PSNR;
* gray, RGB, odd sizes, 1x1 and multi-tile images keep their shape and dtype;
* 16-bit input is coded at 8-bit precision and comes back as 16-bit;
* target_bytes gives the largest quality that fits;
* higher quality never gives a smaller file on these scenes.
"""
from __future__ import annotations

import numpy as np
import pytest

import pymars
from conftest import psnr


def test_rgb_roundtrip_onnx_and_torch_agree(tiny_bundle, scene_rgb):
    data = pymars.encode(scene_rgb, 80, model=tiny_bundle)
    a = pymars.decode(data, model=tiny_bundle, backend="onnx")
    b = pymars.decode(data, model=tiny_bundle, backend="torch")
    assert a.shape == scene_rgb.shape and a.dtype == np.uint8
    assert abs(psnr(a, scene_rgb) - psnr(b, scene_rgb)) < 0.05
    assert psnr(a, scene_rgb) > 15  # a 30-step tiny model: far from good, far from noise


def test_gray_image_roundtrips_as_gray(tiny_bundle, scene_gray):
    out = pymars.decode(pymars.encode(scene_gray, 60, model=tiny_bundle), model=tiny_bundle)
    assert out.shape == scene_gray.shape and out.dtype == np.uint8
    assert pymars.info(pymars.encode(scene_gray, 60, model=tiny_bundle))["channels"] == 1


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 1), (17, 33, 3), (5, 300), (257, 513, 3)])
def test_odd_and_tiny_sizes_roundtrip(tiny_bundle, shape):
    img = np.random.default_rng(3).integers(0, 256, size=shape, dtype=np.uint8)
    data = pymars.encode(img, 50, model=tiny_bundle)
    out = pymars.decode(data, model=tiny_bundle)
    assert out.shape == img.shape


def test_multi_tile_grid_is_recorded(tiny_bundle, scene_rgb):
    data = pymars.encode(scene_rgb, 50, tile_size=64, model=tiny_bundle)
    h = pymars.info(data)
    assert (h["tile_size"], h["tile_count"]) == (64, 3 * 4)
    assert pymars.decode(data, model=tiny_bundle).shape == scene_rgb.shape


def test_sixteen_bit_input_is_coded_at_eight_bit_precision(tiny_bundle, scene_rgb):
    img16 = scene_rgb.astype(np.uint16) * 257
    data16 = pymars.encode(img16, 70, model=tiny_bundle)
    data8 = pymars.encode(scene_rgb, 70, model=tiny_bundle)
    assert pymars.info(data16)["bit_depth"] == 16
    out16 = pymars.decode(data16, model=tiny_bundle)
    out8 = pymars.decode(data8, model=tiny_bundle)
    assert out16.dtype == np.uint16
    np.testing.assert_array_equal(out16, out8.astype(np.uint16) * 257)


def test_twelve_bit_input_scales_back(tiny_bundle):
    img = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096)
    out = pymars.decode(pymars.encode(img, 90, bit_depth=12, model=tiny_bundle), model=tiny_bundle)
    assert out.dtype == np.uint16 and out.max() <= 4095


def test_target_bytes_picks_the_largest_quality_that_fits(tiny_bundle, scene_rgb):
    sizes = {q: len(pymars.encode(scene_rgb, q, model=tiny_bundle)) for q in (20, 21, 60)}
    target = sizes[20] + (sizes[60] - sizes[20]) // 2
    data = pymars.encode(scene_rgb, target_bytes=target, model=tiny_bundle)
    q = pymars.info(data)["quality"]
    assert len(data) <= target
    assert len(pymars.encode(scene_rgb, q + 1, model=tiny_bundle)) > target or q == 100


def test_target_bytes_below_the_smallest_file_is_refused(tiny_bundle, scene_rgb):
    with pytest.raises(ValueError, match="target_bytes too small"):
        pymars.encode(scene_rgb, target_bytes=50, model=tiny_bundle)


def test_file_size_grows_with_quality(tiny_bundle, scene_rgb):
    sizes = [len(pymars.encode(scene_rgb, q, model=tiny_bundle)) for q in (1, 25, 50, 75, 100)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
