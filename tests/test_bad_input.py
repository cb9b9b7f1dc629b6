"""Bad input gives a clear error, never a crash; damage costs only the damaged tiles.

Specification (one behaviour per test):
* empty images, 4 channels, float/NaN, other dtypes and huge sides are refused with a reason;
* garbage, a truncated header and an unknown version are refused as bitstream errors;
* a file from another model is refused with a model-mismatch error;
* a bit flip in one tile's payload damages that tile only; the others decode bit-exactly;
* a truncated file decodes every complete tile and reports the rest;
* random corruption never crashes the decoder.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import pymars
from pymars.errors import BitstreamError, InputImageError, ModelMismatchError
from pymars.ground.decode import DamagedTilesWarning, decode_with_report


@pytest.mark.parametrize(
    "image, reason",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 4), np.uint8), "1 or 3 channels"),
        (np.zeros((10, 10, 2), np.uint8), "1 or 3 channels"),
        (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8), np.int64), "uint8 or uint16"),
        (np.zeros((2, 2, 2, 2), np.uint8), "shape"),
        ([[1, 2], [3, 4]], "NumPy array"),
    ],
)
def test_bad_images_are_refused_with_a_reason(tiny_bundle, image, reason):
    with pytest.raises(InputImageError, match=reason):
        pymars.encode(image, model=tiny_bundle)


def test_huge_image_is_refused_before_any_work(tiny_bundle):
    big = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=(70000, 2), strides=(0, 0))
    with pytest.raises(InputImageError, match="65535"):
        pymars.encode(big, model=tiny_bundle)


def test_quality_out_of_range_is_refused(tiny_bundle, scene_gray):
    with pytest.raises(ValueError, match="1..100"):
        pymars.encode(scene_gray, 0, model=tiny_bundle)


@pytest.mark.parametrize("data", [b"", b"PMRS", b"hello world" * 10, bytes(64)])
def test_garbage_is_refused_as_bitstream_error(tiny_bundle, data):
    with pytest.raises(BitstreamError):
        pymars.decode(data, model=tiny_bundle)


def test_unknown_version_is_refused(tiny_bundle, scene_gray):
    data = bytearray(pymars.encode(scene_gray, 50, model=tiny_bundle))
    data[4] = 2
    with pytest.raises(BitstreamError, match="version"):
        pymars.decode(bytes(data), model=tiny_bundle)


def test_file_from_another_model_is_refused(tiny_bundle, scene_gray, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_bundle.root, other)
    blob = bytearray((other / "encoder.pmw").read_bytes())
    blob += b"XPAD" + (4).to_bytes(4, "little") + b"\0\0\0\0"  # an ignorable section changes the hash
    blob[8:12] = (int.from_bytes(blob[8:12], "little") + 1).to_bytes(4, "little")
    (other / "encoder.pmw").write_bytes(bytes(blob))
    data = pymars.encode(scene_gray, 50, model=str(other))
    with pytest.raises(ModelMismatchError, match="model id"):
        pymars.decode(data, model=tiny_bundle)


def _tile_payload_offsets(data: bytes):
    from pymars import _core

    h = _core.parse_file_header(data)
    return _core.scan_tile_records(data, h["header_length"], h["tile_count"])


def test_bit_flip_in_one_tile_damages_only_that_tile(tiny_bundle, scene_rgb):
    data = pymars.encode(scene_rgb, 60, tile_size=64, model=tiny_bundle)
    clean = pymars.decode(data, model=tiny_bundle)
    spans = _tile_payload_offsets(data)
    off, length = spans[5]
    bad = bytearray(data)
    bad[off + length // 2] ^= 0x10
    with pytest.warns(DamagedTilesWarning):
        out, rep = decode_with_report(bytes(bad), model=tiny_bundle)
    assert rep.damaged == [5] and rep.missing == []
    mask = np.ones(scene_rgb.shape[:2], bool)
    mask[64:128, 64:128] = False  # tile 5 of a 3x4 grid of 64-pixel tiles
    assert (out[mask] == clean[mask]).all()
    assert (out[~mask] == 0).all()


def test_truncated_file_decodes_every_complete_tile(tiny_bundle, scene_rgb):
    data = pymars.encode(scene_rgb, 60, tile_size=64, model=tiny_bundle)
    clean = pymars.decode(data, model=tiny_bundle)
    spans = _tile_payload_offsets(data)
    cut = spans[7][0] + spans[7][1] // 3  # inside tile 7's payload
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DamagedTilesWarning)
        out, rep = decode_with_report(data[:cut], model=tiny_bundle)
    assert rep.missing == list(range(7, 12))
    assert (out[:64] == clean[:64]).all()  # tiles 0..3 (first row) intact
    assert (out[64:128, :192] == clean[64:128, :192]).all()  # tiles 4..6


def test_random_corruption_never_crashes(tiny_bundle, scene_rgb):
    data = pymars.encode(scene_rgb, 60, tile_size=64, model=tiny_bundle)
    rng = np.random.default_rng(7)
    for _ in range(60):
        bad = bytearray(data)
        for pos in rng.integers(0, len(bad), size=rng.integers(1, 20)):
            bad[pos] = rng.integers(0, 256)
        if rng.random() < 0.3:
            bad = bad[: rng.integers(0, len(bad))]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DamagedTilesWarning)
                out = pymars.decode(bytes(bad), model=tiny_bundle)
            assert out.shape == scene_rgb.shape
        except (BitstreamError, ModelMismatchError):
            pass  # a damaged header is refused as a whole


def test_header_claiming_a_huge_image_is_refused_before_allocating(tiny_bundle):
    from pymars import _core

    header = _core.write_file_header(65535, 65535, model_id=tiny_bundle.model_id)
    with pytest.raises(BitstreamError, match="max_pixels"):
        pymars.decode(header, model=tiny_bundle)
