"""Wavelet tiles (docs/bitstream.md §4.9, blob sections WVQT and WVPR), gray and RGB.

Tiny models from the shared fixtures are re-exported with wavelet qualities (and
trained priors, and near-lossless tops); the real C++ encoder and decoder code
every tile. What must hold: any tile size decodes to its shape, PSNR rises with
quality and follows the step, the mean colour is kept, incompressible tiles are
stored exactly, damaged payloads and malformed blob sections are refused, the
ground decodes wavelet files without the ONNX synthesis, trained priors save
bytes at the same quality.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import psnr

import pymars
import pymars.ground.decode
from pymars.data.synthetic import mars_like_scene
from pymars.errors import BitstreamError

HEADER, RECORD = 40, 24  # file header and tile record header (docs/bitstream.md)


def _derive(source, tmp_path_factory, name, priors=None, **options):
    from pymars.train.export.bundle_writer import derive_bundle

    out = tmp_path_factory.mktemp("bundle") / name
    opts = dict(tile_means=False, wv_from_quality=1, wv_max_step=120.0, wv_min_step=2.0, nl_from_quality=99,
                nl_max_error=1, nl_coder="arith")
    opts.update(options)
    derive_bundle(source, out, wavelet_priors=priors, **opts)
    return pymars.open_bundle(str(out))


def _priors(channels, seeds=(1, 2, 3)):
    from pymars.train.codec.wavelet_priors import count_bins, priors_from_counts

    tiles = [mars_like_scene(64, 64, seed=s, channels=channels) for s in seeds]
    return priors_from_counts(count_bins(tiles, channels))


@pytest.fixture(scope="module")
def rgb_wv(tiny_bundle, tmp_path_factory):
    return _derive(tiny_bundle.root, tmp_path_factory, "tiny-wv", priors=_priors(3))


@pytest.fixture(scope="module")
def gray_wv(gray_bundle_dir, tmp_path_factory):
    return _derive(gray_bundle_dir, tmp_path_factory, "tiny-gray-wv", priors=_priors(1))


@pytest.fixture(scope="module")
def gray_wv_flat(gray_bundle_dir, tmp_path_factory):
    return _derive(gray_bundle_dir, tmp_path_factory, "tiny-gray-wv-flat")


def test_ladder_marks_wavelet_and_near_lossless_qualities(gray_wv):
    core = gray_wv.core
    assert core.wavelet_step(1) == pytest.approx(120.0)
    assert core.wavelet_step(98) == pytest.approx(2.0)
    assert core.near_lossless_error(98) is None and core.wavelet_step(99) is None
    assert core.near_lossless_error(99) == 1 and core.near_lossless_error(100) == 0
    steps = [core.wavelet_step(q) for q in range(1, 99)]
    assert all(a > b for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (7, 9), (17, 300), (300, 17), (64, 64), (130, 201)])
def test_any_tile_shape_round_trips_gray(gray_wv, shape):
    img = mars_like_scene(max(shape[0], 8), max(shape[1], 8), seed=5, channels=1)[: shape[0], : shape[1]]
    img = np.ascontiguousarray(img)
    for q in (1, 50, 95):
        out = pymars.decode(pymars.encode(img, q, tile_size=64, model=gray_wv), model=gray_wv)
        assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(pymars.decode(pymars.encode(img, 100, tile_size=64, model=gray_wv), model=gray_wv), img)


@pytest.mark.parametrize("shape", [(1, 5), (9, 7), (64, 64), (100, 150)])
def test_any_tile_shape_round_trips_rgb(rgb_wv, shape):
    img = np.ascontiguousarray(mars_like_scene(max(shape[0], 8), max(shape[1], 8), seed=6)[: shape[0], : shape[1]])
    for q in (1, 60, 98):
        out = pymars.decode(pymars.encode(img, q, tile_size=64, model=rgb_wv), model=rgb_wv)
        assert out.shape == img.shape
    assert np.array_equal(pymars.decode(pymars.encode(img, 100, tile_size=64, model=rgb_wv), model=rgb_wv), img)


@pytest.mark.parametrize("fixture", ["gray_wv", "rgb_wv"])
def test_quality_follows_the_step(fixture, request):
    bundle = request.getfixturevalue(fixture)
    img = mars_like_scene(128, 160, seed=7, channels=bundle.channels)
    sizes, quality = [], []
    for q in (1, 20, 40, 60, 80, 98):
        data = pymars.encode(img, q, tile_size=64, model=bundle)
        out = pymars.decode(data, model=bundle)
        sizes.append(len(data))
        quality.append(psnr(img, out))
        step = bundle.core.wavelet_step(q)
        # Uniform quantisation of orthonormal-like bands: MSE about step^2 / 12; allow 4x.
        assert np.mean((img.astype(float) - out) ** 2) <= step**2 / 3 + 1
    assert sizes == sorted(sizes) and quality == sorted(quality)
    assert quality[-1] > 45


def test_mean_colour_is_kept(rgb_wv):
    img = mars_like_scene(128, 128, seed=8)
    for q in (1, 30, 70):
        out = pymars.decode(pymars.encode(img, q, tile_size=64, model=rgb_wv), model=rgb_wv)
        err = (out.astype(float) - img).reshape(-1, 3).mean(axis=0)
        assert np.all(np.abs(err) < 0.5), (q, err)


def test_noise_tile_is_stored_exactly_at_fine_steps(gray_bundle_dir, tmp_path_factory):
    fine = _derive(gray_bundle_dir, tmp_path_factory, "tiny-gray-fine", wv_min_step=0.25, nl_from_quality=0)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    data = pymars.encode(noise, 100, tile_size=64, model=fine)  # step 1/4: coded, it would exceed the samples
    payload = data[HEADER + RECORD :]
    assert payload[0] == 1 and len(payload) == 64 * 64 + 1
    assert np.array_equal(pymars.decode(data, model=fine), noise)
    coded = pymars.encode(noise, 1, tile_size=64, model=fine)[HEADER + RECORD :]
    assert coded[0] == 0 and len(coded) < 64 * 64


def test_priors_save_bytes_at_the_same_quality(gray_wv, gray_wv_flat):
    img = mars_like_scene(128, 128, seed=9, channels=1)
    a = pymars.encode(img, 30, tile_size=128, model=gray_wv)
    b = pymars.encode(img, 30, tile_size=128, model=gray_wv_flat)
    # The encoder's rate-distortion choice reads the coder's probabilities, so a
    # few levels differ too; the quality stays.
    assert abs(psnr(img, pymars.decode(a, model=gray_wv)) - psnr(img, pymars.decode(b, model=gray_wv_flat))) < 0.3
    assert len(a) < len(b)  # priors from similar scenes save the learning cost


def test_threads_give_the_same_bytes(rgb_wv):
    img = mars_like_scene(200, 260, seed=10)
    assert pymars.encode(img, 45, tile_size=64, model=rgb_wv, threads=1) == \
        pymars.encode(img, 45, tile_size=64, model=rgb_wv, threads=2)


def test_wavelet_files_decode_without_the_onnx_synthesis(gray_wv, monkeypatch):
    img = mars_like_scene(64, 96, seed=11, channels=1)
    data = pymars.encode(img, 40, tile_size=64, model=gray_wv)

    def refuse(*a, **k):
        raise AssertionError("a wavelet file must not load the synthesis")

    monkeypatch.setattr(pymars.ground.decode, "synthesis_backend", refuse)
    assert pymars.decode(data, model=gray_wv).shape == img.shape


def test_damaged_payloads_are_reported_not_crashing(gray_wv):
    img = mars_like_scene(64, 64, seed=12, channels=1)
    data = bytearray(pymars.encode(img, 50, tile_size=64, model=gray_wv))
    rng = np.random.default_rng(1)
    for trial in range(40):
        bad = bytearray(data)
        for _ in range(3):
            bad[HEADER + RECORD + int(rng.integers(1, len(data) - HEADER - RECORD))] ^= int(rng.integers(1, 256))
        try:
            out, report = pymars.ground.decode.decode_with_report(bytes(bad), model=gray_wv)
        except BitstreamError:
            continue
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"trial {trial}: {type(e).__name__}: {e}")
        assert out.shape == img.shape


def test_target_bytes_works_on_wavelet_qualities(rgb_wv):
    img = mars_like_scene(128, 192, seed=13)
    full = len(pymars.encode(img, 60, tile_size=64, model=rgb_wv))
    data = pymars.encode(img, tile_size=64, model=rgb_wv, target_bytes=full)
    assert full * 0.8 <= len(data) <= full


def _sections(blob: bytes):
    n = struct.unpack_from("<I", blob, 8)[0]
    pos, out = 12, []
    for _ in range(n):
        tag, length = blob[pos : pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        out.append((tag, pos + 8, length))
        pos += 8 + (length + 3) // 4 * 4
    return out


def _load(blob: bytes):
    from pymars import _core

    return _core.Model(blob)


def test_malformed_wavelet_sections_are_refused(gray_wv):
    blob = gray_wv.blob_path.read_bytes()
    sec = {tag: (at, n) for tag, at, n in _sections(blob)}
    assert b"WVQT" in sec and b"WVPR" in sec
    at, n = sec[b"WVPR"]
    bad = bytearray(blob)
    bad[at + 12 : at + 14] = b"\0\0"  # a prior of 0: an impossible probability
    with pytest.raises(ValueError):
        _load(bytes(bad))
    bad = bytearray(blob)
    bad[at : at + 4] = struct.pack("<I", 2)  # two plane kinds in a gray model
    with pytest.raises(ValueError):
        _load(bytes(bad))
    at, n = sec[b"WVQT"]
    bad = bytearray(blob)
    bad[at - 4 : at] = struct.pack("<I", n - 2)  # 99 steps: the lengths no longer add up
    with pytest.raises(ValueError):
        _load(bytes(bad))


def test_bin_counts_and_priors():
    from pymars import _core
    from pymars.train.codec.wavelet_priors import priors_from_counts

    tile = mars_like_scene(64, 64, seed=14, channels=1)
    counts, size = _core.wavelet_bin_counts(tile, 16 * 8)
    assert counts.shape == (2, _core.WAVELET_STATE_BITS, 2) and counts[0].sum() > 64 * 64 and counts[1].sum() == 0 and size > 0
    p = priors_from_counts(counts[:1])
    assert p.dtype == np.uint16 and p.min() >= 32 and p.max() <= 32736
    zero_flags = counts[0, :42].sum(axis=0)  # the high bands' zero flags: mostly zero at step 8
    assert zero_flags[0] > zero_flags[1]
    with pytest.raises(ValueError):
        _core.wavelet_bin_counts(tile, 0)
