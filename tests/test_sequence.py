"""Sequence coding (issue 18, docs/bitstream.md §4.10): a frame coded against a frame already sent.

Synthetic frames cut from one scene with an offset stand for a mosaic pair (the
overlap is exact, plus an exposure change and noise where the test says so);
unrelated scenes stand for frames that do not overlap. The checks: the
predicted file decodes, bit-exactly, to what the rover reconstructed (C API) at
the intra file's quality; it is much smaller where the frames overlap and at
most the 8 header bytes larger where they do not; a missing, wrong or foreign
reference is one clear error; a damaged predicted tile stays contained; the CLI's
--sequence and --reference; the C example writes the Python bytes.
"""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

import pymars
from pymars import _core
from pymars.bundles import open_bundle
from pymars.data.synthetic import mars_like_scene
from pymars.errors import BitstreamError, InputImageError, ModelMismatchError
from pymars.sequence import Reference, decode_sequence, encode_sequence, file_id

from conftest import psnr


def _pair(channels=1, shift=(24, 96), size=(256, 320), gain=1.0, noise=0.0, seed=21):
    """Two frames of one scene, the second displaced by `shift` (a mosaic step), with an exposure gain and noise."""
    h, w = size
    scene = mars_like_scene(h + shift[0] + 8, w + shift[1] + 8, seed=seed, channels=channels)
    a = np.ascontiguousarray(scene[:h, :w])
    b = scene[shift[0] : shift[0] + h, shift[1] : shift[1] + w].astype(np.float64) * gain
    b += np.random.default_rng(seed).normal(0, noise, b.shape) if noise else 0
    return a, np.ascontiguousarray(np.clip(np.round(b), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def gray():
    return open_bundle("base-v2-gray-wv")


@pytest.fixture(scope="module")
def colour():
    return open_bundle("base-v2-wv")


@pytest.mark.parametrize("channels", [1, 3], ids=["gray", "rgb"])
def test_an_overlapping_frame_costs_far_less_at_equal_quality(channels, gray, colour):
    """The rate-distortion choice moves some levels toward the prediction (a little PSNR for many bits), so the
    comparison is at equal PSNR: the cheapest intra file at least as good costs far more."""
    bundle = gray if channels == 1 else colour
    a, b = _pair(channels, gain=1.06, noise=1.0)
    fa = pymars.encode(a, 60, model=bundle)
    ref = Reference.from_file(fa, model=bundle)
    pred = pymars.encode(b, 60, model=bundle, reference=ref)
    assert pymars.info(pred)["sequence_id"] == file_id(fa)
    quality = psnr(pymars.decode(pred, reference=ref), b)
    assert quality > psnr(pymars.decode(pymars.encode(b, 60, model=bundle)), b) - 1.0
    intra = next(f for f in (pymars.encode(b, q, model=bundle) for q in range(40, 101, 2))
                 if psnr(pymars.decode(f), b) >= quality)
    assert len(pred) < 0.8 * len(intra), (len(pred), len(intra))


def test_frames_that_do_not_overlap_cost_at_most_the_header_bytes(gray):
    a = mars_like_scene(200, 240, seed=1, channels=1)
    b = mars_like_scene(200, 240, seed=2, channels=1)[::-1].copy()
    ref = Reference.from_file(pymars.encode(a, 50, model=gray), model=gray)
    intra, pred = pymars.encode(b, 50, model=gray), pymars.encode(b, 50, model=gray, reference=ref)
    assert len(pred) <= len(intra) + 8  # the reference id in the header; no tile is worse than intra
    assert psnr(pymars.decode(pred, reference=ref), b) >= psnr(pymars.decode(intra), b) - 0.05


def test_the_rovers_reconstruction_is_what_the_ground_decodes(colour):
    """The C API's kept reconstruction (through the binding's core) equals the ground decode, tile for tile."""
    a, b = _pair(3)
    files = encode_sequence([a, b], quality=70, model=colour)
    decoded = decode_sequence(files, model=colour)
    # Re-encoding frame 2 against the ground's decode of frame 1 gives the same bytes: both sides hold the same frame.
    again = pymars.encode(b, 70, model=colour, reference=Reference(decoded[0], file_id(files[0])))
    assert again == files[1]


def test_a_missing_wrong_or_foreign_reference_is_one_clear_error(gray, colour):
    a, b = _pair(1)
    fa = pymars.encode(a, 60, model=gray)
    pred = pymars.encode(b, 60, model=gray, reference=fa)
    with pytest.raises(ModelMismatchError, match="coded against an earlier frame"):
        pymars.decode(pred)
    other = Reference.from_file(pymars.encode(b, 60, model=gray), model=gray)
    with pytest.raises(ModelMismatchError, match="not the one|file id"):
        pymars.decode(pred, reference=other)
    # A colour reference for a gray model, and a gray one for a colour model, are refused before any coding.
    rgb_ref = Reference(np.zeros((32, 32, 3), np.uint8), b"01234567")
    with pytest.raises(InputImageError, match="channel"):
        pymars.encode(b, 60, model=gray, reference=rgb_ref)
    with pytest.raises((InputImageError, ValueError), match="channel"):
        pymars.encode(np.repeat(b[..., None], 3, 2), 60, model=colour, reference=Reference(a, b"01234567"))
    with pytest.raises(TypeError, match="reference must be"):
        pymars.encode(b, 60, model=gray, reference=42)


def test_decode_sequence_names_the_frame_it_lacks(gray):
    a, b = _pair(1)
    files = encode_sequence([a, b], quality=50, model=gray)
    with pytest.raises(BitstreamError, match="not earlier in the sequence"):
        decode_sequence(files[1:], model=gray)


def test_a_damaged_predicted_tile_is_contained(gray):
    a, b = _pair(1)
    fa = pymars.encode(a, 60, model=gray)
    pred = bytearray(pymars.encode(b, 60, model=gray, reference=fa))
    h = pymars.info(bytes(pred))
    spans = _core.scan_tile_records(bytes(pred), h["header_length"], h["tile_count"])
    predicted = [i for i, s in enumerate(spans) if pred[s[0]] == 2]
    assert predicted, "the overlapping frame has predicted tiles"
    off, n = spans[predicted[0]]
    pred[off + n // 2] ^= 0x5A  # the record CRC catches it: the tile is damaged, the rest decodes
    with pytest.warns(UserWarning, match="damaged"):
        img, report = pymars.decode_with_report(bytes(pred), reference=fa)
    assert report.damaged == [predicted[0]] and img.shape == b.shape


def test_a_forged_predicted_tile_never_crashes(gray):
    """Hostile side information or streams in a predicted payload (record CRC made valid): damaged, never a crash."""
    import warnings

    a, b = _pair(1)
    fa = pymars.encode(a, 60, model=gray)
    pred = pymars.encode(b, 60, model=gray, reference=fa)
    h = pymars.info(pred)
    spans = _core.scan_tile_records(pred, h["header_length"], h["tile_count"])
    i = next(k for k, s in enumerate(spans) if pred[s[0]] == 2)
    payload = pred[spans[i][0] : spans[i][0] + spans[i][1]]
    rng = np.random.default_rng(5)
    for trial in range(40):
        p = bytearray(payload)
        if trial % 2:
            p[1:9] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()  # any displacement, huge ones included
        else:
            p[int(rng.integers(9, len(p)))] = int(rng.integers(0, 256))
        records = b"".join(_core.make_tile_record(j, bytes(p) if j == i else pred[s[0] : s[0] + s[1]])
                           for j, s in enumerate(spans))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img, report = pymars.decode_with_report(pred[: h["header_length"]] + records, reference=fa)
        assert img.shape == b.shape and set(report.damaged) <= {i}


def test_cli_encode_and_decode_a_sequence(tmp_path, gray):
    from PIL import Image

    a, b = _pair(1)
    c = mars_like_scene(256, 320, seed=9, channels=1)
    for name, img in (("a", a), ("b", b), ("c", c)):
        Image.fromarray(img).save(tmp_path / f"{name}.png")
    run = lambda *args: subprocess.run([sys.executable, "-m", "pymars", *args], cwd=tmp_path, capture_output=True,
                                       text=True)
    r = run("encode", "--sequence", "a.png", "b.png", "c.png", "-o", "out", "-q", "60", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "against a.pmrs" in r.stdout
    r = run("decode", "--sequence", "out/a.pmrs", "out/b.pmrs", "out/c.pmrs", "-o", "dec")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "dec").iterdir()) == ["a.png", "b.png", "c.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "dec" / "b.png")),
                          pymars.decode((tmp_path / "out" / "b.pmrs").read_bytes(), reference=tmp_path / "out" / "a.pmrs"))
    # One frame against a named earlier file gives the sequence's bytes; without it, one line and exit 2.
    r = run("encode", "b.png", "-o", "b1.pmrs", "-q", "60", "--reference", "out/a.pmrs")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "b1.pmrs").read_bytes() == (tmp_path / "out" / "b.pmrs").read_bytes()
    r = run("decode", "out/b.pmrs", "-o", "x.png")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "earlier frame" in r.stderr
    r = run("decode", "--sequence", "out/b.pmrs", "-o", "dec2")
    assert r.returncode == 2 and "not earlier in the sequence" in r.stderr
    assert not (tmp_path / "x.png").exists()
    r = run("info", "out/b.pmrs")
    assert "sequence_id" in r.stdout and "tiles_predicted" in r.stdout
    r = run("encode", "--sequence", "a.png", "sub/a.png", "-o", "out3")
    assert r.returncode == 2 and "same name" in r.stderr


@pytest.fixture(scope="module")
def c_example(tmp_path_factory):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed: the C example cannot be built")
    build = tmp_path_factory.mktemp("seqbuild")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    subprocess.run([cmake, "-S", str(root), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                   capture_output=True)
    subprocess.run([cmake, "--build", str(build), "--target", "encode_raw", "-j2"], check=True, capture_output=True)
    return build / "encode_raw"


@pytest.mark.parametrize("channels", [1, 3], ids=["gray", "rgb"])
def test_c_example_encodes_a_sequence_as_python_does(c_example, tmp_path, channels, gray, colour):
    bundle = gray if channels == 1 else colour
    a, b = _pair(channels)
    (tmp_path / "a.raw").write_bytes(a.tobytes())
    (tmp_path / "b.raw").write_bytes(b.tobytes())
    h, w = a.shape[:2]
    out = tmp_path / "b.pmrs"
    subprocess.run([str(c_example), "--after", str(tmp_path / "a.raw"), str(bundle.blob_path), str(tmp_path / "b.raw"),
                    str(w), str(h), str(channels), "55", str(out)], check=True, capture_output=True)
    fa = pymars.encode(a, 55, model=bundle)
    assert out.read_bytes() == pymars.encode(b, 55, model=bundle, reference=fa)


def test_both_ground_backends_decode_a_predicted_file_alike(gray):
    """Sequence-coded tiles are sample-coded (no synthesis): the ONNX Runtime and PyTorch paths give the same pixels."""
    pytest.importorskip("torch", reason="the PyTorch ground backend needs torch")
    a, b = _pair(1)
    fa = pymars.encode(a, 60, model=gray)
    pred = pymars.encode(b, 60, model=gray, reference=fa)
    assert np.array_equal(pymars.decode(pred, reference=fa, backend="onnx"),
                          pymars.decode(pred, reference=fa, backend="torch"))
