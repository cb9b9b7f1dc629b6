"""PDS3 products as input: read with pdr at their own bit depth, coded losslessly at that depth.

The products are written by the tests (a detached label and a raw image file,
as PDS3 Navcam EDRs are), so nothing here needs ../shared.
"""
from __future__ import annotations

import numpy as np
import pytest

pdr = pytest.importorskip("pdr", reason="pdr (the PDS reader, extra 'pds') is not installed")

from pymars.cli import main  # noqa: E402
from pymars.errors import InputImageError  # noqa: E402
from pymars.imageio import is_pds, read_image, read_pds  # noqa: E402

LABEL = """PDS_VERSION_ID = PDS3
RECORD_TYPE = FIXED_LENGTH
RECORD_BYTES = {record}
FILE_RECORDS = {lines}
^IMAGE = "{image}"
INSTRUMENT_HOST_NAME = "MARS SCIENCE LABORATORY"
INSTRUMENT_ID = NAV_LEFT_B
PLANET_DAY_NUMBER = 1343
SEQUENCE_ID = ncam00123
PRODUCT_ID = TEST_{bits}BIT_EDR
OBJECT = IMAGE
  LINES = {lines}
  LINE_SAMPLES = {samples}
  SAMPLE_TYPE = {kind}
  SAMPLE_BITS = {word}
  SAMPLE_BIT_MASK = 2#{mask}#
  BANDS = 1
END_OBJECT = IMAGE
END
"""


def write_product(folder, img: np.ndarray, bits: int):
    """A detached-label PDS3 product (NAME.LBL + NAME.IMG, big-endian words) holding ``img``."""
    word = 8 if bits == 8 else 16
    name = f"edr{bits}"
    raw = img.astype(">u2" if word == 16 else "u1").tobytes()
    (folder / f"{name}.IMG").write_bytes(raw)
    (folder / f"{name}.LBL").write_text(LABEL.format(
        record=img.shape[1] * word // 8, lines=img.shape[0], samples=img.shape[1], image=f"{name}.IMG", bits=bits,
        kind="MSB_UNSIGNED_INTEGER" if word == 16 else "UNSIGNED_INTEGER", word=word,
        mask="1" * bits if word == 8 else "0" * (16 - bits) + "1" * bits))
    return folder / f"{name}.LBL"


def frame(bits: int, h: int = 48, w: int = 40) -> np.ndarray:
    rng = np.random.default_rng(bits)
    y, x = np.mgrid[0:h, 0:w]
    top = (1 << bits) - 1
    img = (top * (0.3 + 0.2 * np.sin(x / 7.0) * np.cos(y / 5.0))).astype(np.int64) + rng.integers(-8, 9, (h, w))
    return np.clip(img, 0, top).astype(np.uint16 if bits > 8 else np.uint8)


@pytest.mark.parametrize("bits", [8, 12])
def test_read_pds_keeps_the_samples_their_depth_and_the_product_identity(tmp_path, bits):
    img = frame(bits)
    arr, depth, identity = read_pds(write_product(tmp_path, img, bits))
    assert depth == bits and arr.dtype == img.dtype and np.array_equal(arr, img)
    assert identity["instrument_id"] == "NAV_LEFT_B" and identity["planet_day_number"] == 1343
    assert identity["product_id"] == f"TEST_{bits}BIT_EDR" and identity["sequence_id"] == "ncam00123"


def test_cli_codes_a_12_bit_product_losslessly_at_its_depth(tmp_path, capsys):
    img = frame(12, 70, 90)
    label = write_product(tmp_path, img, 12)
    assert is_pds(label)
    assert main(["encode", str(label), "-o", str(tmp_path / "f.pmrs"), "--lossless", "--tile-size", "64"]) == 0
    assert "product_id TEST_12BIT_EDR" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "f.pmrs")]) == 0
    assert "12-bit samples" in capsys.readouterr().out
    assert main(["decode", str(tmp_path / "f.pmrs"), "-o", str(tmp_path / "back.tif")]) == 0
    assert np.array_equal(read_image(tmp_path / "back.tif"), img)


def test_a_broken_product_is_one_line(tmp_path):
    (tmp_path / "bad.LBL").write_text("PDS_VERSION_ID = PDS3\nOBJECT = IMAGE\nEND\n")
    with pytest.raises(InputImageError, match="bad.LBL: not a readable PDS image product"):
        read_pds(tmp_path / "bad.LBL")
    assert main(["encode", str(tmp_path / "bad.LBL"), "-o", str(tmp_path / "x.pmrs")]) != 0
    assert not (tmp_path / "x.pmrs").exists()
