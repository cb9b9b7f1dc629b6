"""PDS3 and PDS4 products as input: read with pdr at their own bit depth, coded losslessly at that depth.

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


@pytest.mark.parametrize("bits", [8, 12, 16])
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


# ---- PDS4 (Mars 2020 style: an XML label beside the raw array file) -------------------------

PDS4_LABEL = """<?xml version="1.0" encoding="UTF-8"?>
<Product_Observational xmlns="http://pds.nasa.gov/pds4/pds/v1" xmlns:msn="http://pds.nasa.gov/pds4/msn/v1">
  <Identification_Area>
    <logical_identifier>urn:nasa:pds:mars2020_mastcamz_ops_raw:data:{product}</logical_identifier>
    <version_id>1.0</version_id>
    <title>pymars test product</title>
    <information_model_version>1.15.0.0</information_model_version>
    <product_class>Product_Observational</product_class>
  </Identification_Area>
  <Observation_Area>
    <Time_Coordinates><start_date_time>2021-05-01T00:00:00Z</start_date_time>
      <stop_date_time>2021-05-01T00:00:01Z</stop_date_time></Time_Coordinates>
    <Investigation_Area><name>Mars2020</name><type>Mission</type><Internal_Reference>
      <lid_reference>urn:nasa:pds:context:investigation:mission.mars2020</lid_reference>
      <reference_type>data_to_investigation</reference_type></Internal_Reference></Investigation_Area>
    <Observing_System>
      <Observing_System_Component><name>Mars 2020</name><type>Host</type></Observing_System_Component>
      <Observing_System_Component><name>Mastcam-Z Left</name><type>Instrument</type></Observing_System_Component>
    </Observing_System>
    <Target_Identification><name>Mars</name><type>Planet</type></Target_Identification>
    <Mission_Area><msn:Mission_Information><msn:sol_number>70</msn:sol_number></msn:Mission_Information></Mission_Area>
  </Observation_Area>
  <File_Area_Observational>
    <File><file_name>{product}.IMG</file_name></File>
    <{array}>
      <local_identifier>{ident}</local_identifier>
      <offset unit="byte">0</offset>
      <axes>{axes}</axes>
      <axis_index_order>Last Index Fastest</axis_index_order>
      <Element_Array><data_type>{data_type}</data_type></Element_Array>
      {axis_arrays}
    </{array}>
  </File_Area_Observational>
</Product_Observational>
"""


def write_pds4(folder, img: np.ndarray, product: str, ident: str = "image"):
    """A PDS4 product: PRODUCT.xml + PRODUCT.IMG, RGB stored band-first (Band, Line, Sample) as Mars 2020 does.
    float32 arrays are written as IEEE754MSBSingle (calibrated products such as CaSSIS I/F)."""
    data = np.moveaxis(img, -1, 0) if img.ndim == 3 else img
    kind = {np.dtype(np.uint16): (">u2", "UnsignedMSB2"), np.dtype(np.float32): (">f4", "IEEE754MSBSingle")}
    dtype, data_type = kind.get(img.dtype, ("u1", "UnsignedByte"))
    data.astype(dtype).tofile(folder / f"{product}.IMG")
    names = ("Band", "Line", "Sample")[3 - data.ndim:]
    axis_arrays = "".join(f"<Axis_Array><axis_name>{n}</axis_name><elements>{e}</elements>"
                          f"<sequence_number>{i + 1}</sequence_number></Axis_Array>"
                          for i, (n, e) in enumerate(zip(names, data.shape)))
    (folder / f"{product}.xml").write_text(PDS4_LABEL.format(
        product=product, ident=ident, array="Array_3D_Image" if data.ndim == 3 else "Array_2D_Image", axes=data.ndim,
        data_type=data_type, axis_arrays=axis_arrays))
    return folder / f"{product}.xml"


def test_spectral_predict_takes_a_calibrated_three_band_pds4_product(tmp_path, capsys):
    """CaSSIS-like I/F floats in a PDS4 cube (BLU, PAN, NIR), NaN outside the footprint: stretched per band over
    the valid pixels, as the PNG pairs were, then predicted; a one-band product is one line."""
    from PIL import Image

    from pymars.spectral.cli import pds_cassis

    rng = np.random.default_rng(3)
    bands = (0.05 + 0.2 * rng.random((48, 40, 3))).astype(np.float32)
    bands[:6] = np.nan  # outside the footprint
    label = write_pds4(tmp_path, bands, "cas_mcp_test")
    img = pds_cassis(str(label))
    assert img.dtype == np.uint8 and img.shape == (48, 40, 3)
    assert (img[:6] == 0).all() and img[6:].max(axis=(0, 1)).tolist() == [255, 255, 255]
    out = tmp_path / "fal.png"
    assert main(["spectral", "predict", str(label), "-o", str(out), "--model", "unet", "--quiet"]) == 0
    assert np.asarray(Image.open(out)).shape == (48, 40, 3)
    assert "product:" in capsys.readouterr().err
    one = write_pds4(tmp_path, bands[..., 0].copy(), "cas_one_band")
    assert main(["spectral", "predict", str(one), "-o", str(tmp_path / "x.png"), "--model", "unet", "--quiet"]) == 2
    assert "three CaSSIS bands" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("kind", ["gray12", "gray16", "rgb8"])
def test_read_pds4_keeps_samples_depth_channels_and_identity(tmp_path, kind):
    if kind.startswith("gray"):
        img = frame(int(kind[4:]))
    else:
        img = np.stack([frame(8), frame(8)[::-1], frame(8)[:, ::-1]], axis=-1)
    label = write_pds4(tmp_path, img, f"zl0_0070_{kind}")
    assert is_pds(label)
    for path in (label, label.with_suffix(".IMG")):  # the label or the array file of the product
        arr, depth, identity = read_pds(path)
        assert arr.dtype == img.dtype and np.array_equal(arr, img)
        assert depth == {"gray12": 12, "gray16": 16, "rgb8": 8}[kind]
        assert identity == {"instrument_host_name": "Mars 2020", "instrument_id": "Mastcam-Z Left",
                            "planet_day_number": 70, "product_id": f"zl0_0070_{kind}"}


def test_cli_codes_a_pds4_product_losslessly(tmp_path, capsys):
    img = frame(12, 70, 90)
    label = write_pds4(tmp_path, img, "nlf_0100_test")
    assert main(["encode", str(label), "-o", str(tmp_path / "f.pmrs"), "--lossless", "--tile-size", "64"]) == 0
    assert "product_id nlf_0100_test" in capsys.readouterr().err
    assert main(["decode", str(tmp_path / "f.pmrs"), "-o", str(tmp_path / "back.tif")]) == 0
    assert np.array_equal(read_image(tmp_path / "back.tif"), img)


def test_an_xml_that_is_not_a_pds4_image_is_one_line(tmp_path):
    (tmp_path / "notes.xml").write_text("<?xml version='1.0'?><notes><note>hello</note></notes>")
    with pytest.raises(InputImageError, match="notes.xml: not a readable PDS image product"):
        read_pds(tmp_path / "notes.xml")
    assert main(["encode", str(tmp_path / "notes.xml"), "-o", str(tmp_path / "x.pmrs")]) != 0
    assert not (tmp_path / "x.pmrs").exists()


def test_enhance_takes_an_8_bit_pds4_product_and_refuses_a_12_bit_one(tmp_path):
    gray = frame(8, 64, 80)
    label = write_pds4(tmp_path, gray, "browse_8bit")
    assert main(["enhance", str(label), "-o", str(tmp_path / "e.png"), "--model", "dncnn-jpeg30", "--quiet"]) == 0
    assert read_image(tmp_path / "e.png").shape == gray.shape
    label12 = write_pds4(tmp_path, frame(12, 64, 80), "edr_12bit")
    assert main(["enhance", str(label12), "-o", str(tmp_path / "f.png"), "--model", "dncnn-jpeg30"]) != 0
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("version", ["pds3", "pds4"])
@pytest.mark.parametrize("bits", [8, 12, 16])
def test_pds_products_round_trip_losslessly_at_their_depth(tmp_path, version, bits):
    import pymars

    img = frame(bits, 40, 56)
    path = write_product(tmp_path, img, bits) if version == "pds3" else write_pds4(tmp_path, img, f"p{bits}")
    arr, depth, _ = read_pds(path)
    data = pymars.encode(arr, 100, max_error=0, bit_depth=depth, tile_size=32)
    assert pymars.info(data)["bit_depth"] == bits
    assert np.array_equal(pymars.decode(data), img)


@pytest.mark.parametrize("version", ["pds3", "pds4"])
def test_a_truncated_pds_data_file_is_one_line(tmp_path, version):
    img = frame(12, 40, 56)
    path = write_product(tmp_path, img, 12) if version == "pds3" else write_pds4(tmp_path, img, "cut")
    data_file = path.with_suffix(".IMG")
    data_file.write_bytes(data_file.read_bytes()[:1000])
    with pytest.raises(InputImageError, match=f"{path.name}: not a readable PDS image product"):
        read_pds(path)


def test_a_pds4_array_named_IMAGE_is_still_read_as_pds4(tmp_path):
    img = frame(12)
    arr, depth, identity = read_pds(write_pds4(tmp_path, img, "named", ident="IMAGE"))
    assert np.array_equal(arr, img) and depth == 12 and identity["product_id"] == "named"
