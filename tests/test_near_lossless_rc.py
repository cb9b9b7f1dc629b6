"""Range-coded near-lossless tiles (docs/bitstream.md §4.8, DIMS flag bit 1), gray and RGB.

Tiny models (two training steps on synthetic scenes, from the shared fixtures)
are re-exported with near-lossless qualities and the range coder; the real C++
encoder and decoder code every tile. What must hold: every sample of every
channel within the quality's k, quality 100 lossless, incompressible tiles
stored, damaged payloads refused, Golomb models (base-v2-gray's files) unchanged.
"""
from __future__ import annotations

import numpy as np
import pytest

import pymars
from pymars.data.synthetic import mars_like_scene

HEADER, RECORD = 40, 24  # file header and tile record header (docs/bitstream.md)


def _derive(source, tmp_path_factory, name, **options):
    from pymars.train.export.bundle_writer import derive_bundle

    out = tmp_path_factory.mktemp("bundle") / name
    derive_bundle(source, out, tile_means=False, nl_from_quality=90, nl_max_error=10, **options)
    return pymars.open_bundle(str(out))


@pytest.fixture(scope="module")
def rgb_rc(tiny_bundle, tmp_path_factory):
    return _derive(tiny_bundle.root, tmp_path_factory, "tiny-rc", nl_coder="arith")


@pytest.fixture(scope="module")
def rgb_golomb(tiny_bundle, tmp_path_factory):
    return _derive(tiny_bundle.root, tmp_path_factory, "tiny-golomb", nl_coder="golomb")


@pytest.fixture(scope="module")
def gray_rc(gray_bundle_dir, tmp_path_factory):
    return _derive(gray_bundle_dir, tmp_path_factory, "tiny-gray-rc", nl_coder="arith")


def _rgb(h=70, w=90, seed=3):
    return mars_like_scene(h, w, seed=seed)


def _max_error(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def test_the_blob_names_its_near_lossless_coder(rgb_rc, rgb_golomb):
    from pymars.train.codec.torch_backend import torch_model
    from pymars.train.export.blob import dims_flags
    assert dims_flags(torch_model(rgb_rc).cfg) == 2 and dims_flags(torch_model(rgb_golomb).cfg) == 0
    assert rgb_rc.model_id != rgb_golomb.model_id
    assert rgb_rc.core.near_lossless_error(90) == rgb_golomb.core.near_lossless_error(90) == 10


@pytest.mark.parametrize("quality", [90, 93, 97, 99, 100])
def test_every_channel_stays_within_k(rgb_rc, gray_rc, quality):
    k = rgb_rc.core.near_lossless_error(quality)
    for bundle, img in ((rgb_rc, _rgb(seed=quality)), (gray_rc, _rgb(seed=quality)[..., 1])):
        for tile_size in (32, 256):
            dec = pymars.decode(pymars.encode(img, quality=quality, model=bundle, tile_size=tile_size), model=bundle)
            assert dec.shape == img.shape
            assert _max_error(dec, img) <= k
    assert (k == 0) == (quality == 100)


def test_channels_that_differ_keep_their_own_bound(rgb_rc):
    """The channel-difference prediction must not leak one channel's error into another."""
    rng = np.random.default_rng(5)
    img = np.stack([np.full((64, 64), 250, np.uint8), rng.integers(0, 256, (64, 64), dtype=np.uint8),
                    np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))], 2)
    for quality in (90, 95, 100):
        dec = pymars.decode(pymars.encode(img, quality=quality, model=rgb_rc), model=rgb_rc)
        for c in range(3):
            assert _max_error(dec[..., c], img[..., c]) <= rgb_rc.core.near_lossless_error(quality)


def test_range_coding_beats_golomb_codes_on_a_smooth_scene(rgb_rc, rgb_golomb):
    img = _rgb(128, 128, seed=8)
    for quality in (90, 95, 100):
        rc, gb = (len(pymars.encode(img, quality=quality, model=b)) for b in (rgb_rc, rgb_golomb))
        assert rc < gb, (quality, rc, gb)
        golomb = pymars.decode(pymars.encode(img, quality=quality, model=rgb_golomb), model=rgb_golomb)
        assert _max_error(golomb, img) <= rgb_golomb.core.near_lossless_error(quality)  # Golomb files still decode


def test_an_incompressible_tile_is_stored_and_exact(gray_rc):
    noise = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    data = pymars.encode(noise, quality=100, model=gray_rc, tile_size=32)
    assert len(data) == HEADER + RECORD + 1 + 32 * 32  # form byte 1 + the samples
    assert data[HEADER + RECORD] == 1
    assert np.array_equal(pymars.decode(data, model=gray_rc), noise)


def test_damaged_range_coded_payloads_are_refused(gray_rc):
    from pymars import _core

    img = mars_like_scene(32, 32, seed=4, channels=1)
    payload = pymars.encode(img, quality=95, model=gray_rc, tile_size=32)[HEADER + RECORD:]
    assert payload[0] == 0 and payload[1] == 0  # form byte, then the range coder's leading 0

    def damaged(p):
        with pytest.raises(ValueError, match="damaged"):
            _core.decode_tile_payload(gray_rc.core, p, 32, 32, 95, None, None)

    damaged(payload[:-1])                     # truncated
    damaged(payload + b"\x00")                # a byte the coder did not write
    damaged(b"\x02" + payload[1:])            # unknown form
    damaged(b"\x00\x01" + payload[2:])        # the coder's first byte is always 0
    damaged(b"\x01" + payload[1:])            # stored form of the wrong length
    damaged(b"")
    # Any single corrupted byte either decodes (to something) or is reported damaged: never a crash.
    for i in range(2, len(payload)):
        bad = bytearray(payload)
        bad[i] ^= 0x5A
        try:
            _core.decode_tile_payload(gray_rc.core, bytes(bad), 32, 32, 95, None, None)
        except ValueError as e:
            assert "damaged" in str(e)


def test_a_blob_with_unknown_dims_flags_is_refused(rgb_rc):
    import struct

    blob = bytearray(rgb_rc.blob_path.read_bytes())
    at = blob.index(b"DIMS") + 8 + 7 * 4
    assert struct.unpack_from("<I", blob, at)[0] == 2
    from pymars import _core

    # Bit 3 is unknown; bit 2 (Arith2) means nothing without bit 1 (range coded).
    for flags in (8, 4):
        struct.pack_into("<I", blob, at, flags)
        with pytest.raises(ValueError):
            _core.Model(bytes(blob))
    struct.pack_into("<I", blob, at, 6)
    assert _core.Model(bytes(blob)).near_lossless_coder == "arith2"


def test_target_bytes_reaches_lossless(rgb_rc):
    img = _rgb(64, 64, seed=5)
    lossless = len(pymars.encode(img, quality=100, model=rgb_rc))
    data = pymars.encode(img, target_bytes=lossless, model=rgb_rc)
    assert len(data) <= lossless and pymars.info(data)["quality"] == 100
    assert np.array_equal(pymars.decode(data, model=rgb_rc), img)


def test_max_error_picks_the_cheapest_quality_within_k(rgb_rc, tiny_bundle):
    from pymars.errors import ModelMismatchError
    from pymars.rover.encode import quality_for_max_error

    img = _rgb(48, 64, seed=2)
    for k in (0, 3, 10, 40):
        q = quality_for_max_error(rgb_rc, k)
        assert rgb_rc.core.near_lossless_error(q) <= k
        assert rgb_rc.core.near_lossless_error(q - 1) is None or rgb_rc.core.near_lossless_error(q - 1) > k
        dec = pymars.decode(pymars.encode(img, max_error=k, model=rgb_rc), model=rgb_rc)
        assert _max_error(dec, img) <= k
    with pytest.raises(ModelMismatchError, match="no near-lossless quality"):
        pymars.encode(img, max_error=2, model=tiny_bundle)
    # 16-bit input is coded at its own depth by a range-coded model (docs/bitstream.md §4.8): exact.
    img16 = img.astype(np.uint16) * 256 + 77
    assert np.array_equal(pymars.decode(pymars.encode(img16, max_error=0, model=rgb_rc), model=rgb_rc), img16)
    with pytest.raises(ValueError, match="not both"):
        pymars.encode(img, max_error=0, target_bytes=1000, model=rgb_rc)


def test_cli_lossless_round_trip_and_info_mode(rgb_rc, tmp_path):
    import json
    import subprocess
    import sys

    from pymars.bundles import gray_bundle, near_lossless_bundle
    from pymars.imageio import image_bytes

    img = _rgb(40, 56, seed=6)
    src = tmp_path / "in.png"
    src.write_bytes(image_bytes(img, ".png"))
    run = [sys.executable, "-m", "pymars"]
    subprocess.run([*run, "encode", str(src), "-o", str(tmp_path / "a.pmrs"), "--lossless", "--model", str(rgb_rc.root)],
                   check=True, capture_output=True, cwd=tmp_path)
    subprocess.run([*run, "decode", str(tmp_path / "a.pmrs"), "-o", str(tmp_path / "a.png"), "--model",
                    str(rgb_rc.root)], check=True, capture_output=True, cwd=tmp_path)
    from pymars.imageio import read_image

    assert np.array_equal(read_image(tmp_path / "a.png"), img)
    r = subprocess.run([*run, "encode", str(src), "-o", str(tmp_path / "b.pmrs"), "--max-error", "-2", "--model",
                        str(rgb_rc.root)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode != 0 and "max_error must be 0 or more" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "b.pmrs").exists()
    if gray_bundle() is None or near_lossless_bundle(gray=True) is None:
        return  # `info` names the mode from an installed model's table
    (tmp_path / "g.png").write_bytes(image_bytes(img[..., 1], ".png"))
    subprocess.run([*run, "encode", str(tmp_path / "g.png"), "-o", str(tmp_path / "g.pmrs"), "--max-error", "2"],
                   check=True, capture_output=True, cwd=tmp_path)
    info = json.loads(subprocess.run([*run, "info", str(tmp_path / "g.pmrs"), "--json"], check=True,
                                     capture_output=True, text=True, cwd=tmp_path).stdout)
    nl = near_lossless_bundle(gray=True)  # max_error without a model: the gray near-lossless bundle
    k = nl.core.near_lossless_error(info["quality"])
    assert k <= 2 and info["mode"] == f"near-lossless, max error {k} ({nl.name})"
