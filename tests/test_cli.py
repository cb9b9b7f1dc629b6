"""The command line: encode/decode/info/demo on PNG and TIFF, 8 and 16-bit, gray and RGB.

Specification:
* ``encode`` then ``decode`` keeps size, channels and bit depth for every accepted format;
* ``info`` prints the header, ``--json`` is machine-readable;
* ``demo`` runs on a given image and prints bpp, PSNR and times;
* a non-image file, a missing file and a corrupt .pmrs give exit status 2 and a one-line error;
* no partial output file is left behind after a failure.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from pymars.cli import main
from pymars.imageio import read_image, write_image


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3])
def test_encode_decode_keeps_format(tiny_bundle, tmp_path, capsys, suffix, dtype, channels, scene_rgb):
    img = scene_rgb[:40, :56] if channels == 3 else scene_rgb[:40, :56, 0]
    img = img.astype(dtype) * (257 if dtype == np.uint16 else 1)
    src = tmp_path / f"in{suffix}"
    write_image(src, img)
    assert main(["encode", str(src), "-o", str(tmp_path / "a.pmrs"), "-q", "60", "--model", str(tiny_bundle.root)]) == 0
    out = tmp_path / f"out{suffix}"
    assert main(["decode", str(tmp_path / "a.pmrs"), "-o", str(out), "--model", str(tiny_bundle.root)]) == 0
    back = read_image(out)
    assert back.shape == img.shape and back.dtype == img.dtype


def test_info_json_reports_the_header(tiny_bundle, tmp_path, capsys, scene_rgb):
    src = tmp_path / "in.png"
    write_image(src, scene_rgb)
    main(["encode", str(src), "-o", str(tmp_path / "a.pmrs"), "--target-bytes", "4000", "--model", str(tiny_bundle.root)])
    capsys.readouterr()
    assert main(["info", str(tmp_path / "a.pmrs"), "--json"]) == 0
    h = json.loads(capsys.readouterr().out)
    assert (h["width"], h["height"], h["channels"]) == (200, 150, 3)
    assert h["file_bytes"] <= 4000 and h["tiles_missing_or_damaged"] == []


def test_demo_on_an_image_prints_rate_quality_and_times(tiny_bundle, tmp_path, capsys, scene_rgb):
    src = tmp_path / "in.png"
    write_image(src, scene_rgb)
    assert main(["demo", str(src), "-q", "50", "--model", str(tiny_bundle.root), "--out", str(tmp_path / "d")]) == 0
    text = capsys.readouterr().out
    for word in ("bpp", "PSNR", "encode", "decode"):
        assert word in text
    assert (tmp_path / "d" / "decoded.png").exists()


def test_non_image_file_is_refused(tiny_bundle, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    assert main(["encode", str(bad), "-o", str(tmp_path / "x.pmrs"), "--model", str(tiny_bundle.root)]) == 2
    assert "not an image" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.pmrs*"))


def test_missing_file_is_refused(capsys):
    assert main(["decode", "does-not-exist.pmrs"]) == 2
    assert "not found" in capsys.readouterr().err


def test_corrupt_file_is_refused_without_partial_output(tiny_bundle, tmp_path, capsys):
    bad = tmp_path / "bad.pmrs"
    bad.write_bytes(b"PMRS" + bytes(60))
    assert main(["decode", str(bad), "-o", str(tmp_path / "out.png"), "--model", str(tiny_bundle.root)]) == 2
    assert not list(tmp_path.glob("out.png*"))
