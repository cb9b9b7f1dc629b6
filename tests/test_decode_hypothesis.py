"""Property-based fuzzing (Hypothesis) of the Python decode entry point, ``pymars.decode_with_report``.

The C++ parsers have libFuzzer harnesses (csrc/fuzz/, scripts/fuzz.sh) and
tests/fuzz_python.py mutates valid files at random; here Hypothesis builds
files from their parts (a header with fields anywhere in their ranges, real
tile records, records with hostile fields and valid CRCs, garbage, cuts,
appended data) and shrinks any failure to a minimal file. Properties, from
docs/bitstream.md §3:

* whatever the bytes: an image with a consistent report, or BitstreamError /
  ModelMismatchError; nothing else escapes;
* a file without a single valid tile record is refused, before anything sized
  by its header is allocated;
* a header claiming more than ``max_pixels`` is refused;
* a report is ``ok`` only when every tile decoded and every byte was used:
  trailing bytes and concatenations are never ok, and a clean file with bytes
  appended decodes to the same image with those bytes counted as trailing.

Runs are derandomized (CI is reproducible) and keep no example database
(nothing is written into the checkout); longer local runs:
``PYMARS_HYPOTHESIS_EXAMPLES=5000 pytest tests/test_decode_hypothesis.py``.
"""
from __future__ import annotations

import os
import struct
import warnings
import zlib

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis (pip install '.[test]')")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pymars  # noqa: E402
from pymars.errors import BitstreamError, ModelMismatchError  # noqa: E402
from pymars.ground.decode import DamagedTilesWarning, decode_with_report  # noqa: E402

EXAMPLES = int(os.environ.get("PYMARS_HYPOTHESIS_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: Decoding limit of these tests: small images keep an example fast; larger claims must be refused.
MAX_PIXELS = 1 << 16


@pytest.fixture(scope="module")
def seeds(tiny_bundle) -> dict:
    """Clean files of the tiny model and their records: gray and RGB, 16- and 32-pixel tiles."""
    from pymars.data.synthetic import mars_like_scene

    files = [pymars.encode(mars_like_scene(48, 40, seed=1, channels=1), 50, tile_size=16, model=tiny_bundle),
             pymars.encode(mars_like_scene(40, 64, seed=2), 80, tile_size=32, model=tiny_bundle)]
    records = []
    for data in files:
        h = pymars.info(data)
        from pymars import _core

        for off, length in _core.scan_tile_records(data, h["header_length"], h["tile_count"]):
            records.append(data[off - 24 : off + length])
    return {"files": files, "records": records, "model_id": bytes(tiny_bundle.model_id)}


def header_bytes(model_id, width, height, channels, bit_depth, quality, tile_size, flags=0, tile_count=None,
                 library_hash=b"") -> bytes:
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    count = tiles_x * tiles_y if tile_count is None else tile_count
    hl = 48 if flags & 1 else 40
    body = (b"PMRS" + bytes([1, hl]) + struct.pack("<H", flags) + model_id + struct.pack("<II", width, height)
            + bytes([channels, bit_depth, quality, 0]) + struct.pack("<HHI", tile_size, 0, count)
            + (library_hash if flags & 1 else b""))
    return body + struct.pack("<I", zlib.crc32(body))


def record_bytes(index: int, payload: bytes, length: int | None = None, payload_crc: int | None = None) -> bytes:
    head = b"PMTL" + struct.pack("<IIHHI", index, len(payload) if length is None else length, 0xFFFF, 0xFFFF,
                                 zlib.crc32(payload) if payload_crc is None else payload_crc)
    return head + struct.pack("<I", zlib.crc32(head)) + payload


@st.composite
def crafted_files(draw, seeds):
    """A header (a seed file's own, or one with fields anywhere in range) followed by a mix of records and garbage."""
    if draw(st.booleans()):
        seed = draw(st.sampled_from(seeds["files"]))
        head = seed[:40]
    else:
        model_id = draw(st.sampled_from([seeds["model_id"]] * 3 + [b"\x00" * 8]))
        tile_size = draw(st.sampled_from([16, 32, 48, 4096]))
        side = st.one_of(st.integers(1, 200), st.integers(1, 200), st.sampled_from([16384, 65535]))
        head = header_bytes(model_id, draw(side), draw(side), draw(st.sampled_from([1, 3])),
                            draw(st.sampled_from([8, 12, 16])), draw(st.integers(1, 100)), tile_size,
                            flags=draw(st.sampled_from([0] * 6 + [1, 2, 0x8000])),
                            tile_count=draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, 2**32 - 1))),
                            library_hash=b"LIBHASH!")
    parts = draw(st.lists(st.one_of(
        st.sampled_from(seeds["records"]),
        st.sampled_from(seeds["records"]),
        st.builds(record_bytes, st.integers(0, 40), st.binary(max_size=64)),
        st.builds(record_bytes, st.integers(0, 2**32 - 1), st.binary(max_size=16),
                  st.one_of(st.none(), st.integers(0, 2**32 - 1)), st.one_of(st.none(), st.integers(0, 2**32 - 1))),
        st.binary(max_size=64),
    ), max_size=12))
    data = head + b"".join(parts)
    cut = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(data))))
    return data if cut is None else data[:cut]


def decode_outcome(data: bytes, bundle):
    """(image, report), or None when refused with one of the documented errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DamagedTilesWarning)
            return decode_with_report(data, model=bundle, max_pixels=MAX_PIXELS)
    except (BitstreamError, ModelMismatchError) as e:
        assert str(e) and "\n" not in str(e)  # one line for the user
        return None


def check_consistent(data: bytes, bundle) -> None:
    from pymars import _core

    result = decode_outcome(data, bundle)
    try:
        header = pymars.info(data)
    except BitstreamError:
        assert result is None
        event("refused: header")
        return
    if header["width"] * header["height"] > MAX_PIXELS:
        assert result is None, "a header above max_pixels must be refused"
        event("refused: max_pixels")
        return
    if not _core.has_valid_tile_record(data, header["header_length"], header["tile_count"]):
        assert result is None, "a file without a valid tile record must be refused"
        event("refused: no valid tile record")
        return
    if result is None:  # another model, a library hash, a tile size above the decoder's: refused
        event("refused: model or library")
        return
    image, report = result
    h, w, c = header["height"], header["width"], header["channels"]
    assert image.shape == ((h, w) if c == 1 else (h, w, 3))
    assert image.dtype == (np.uint8 if header["bit_depth"] == 8 else np.uint16)
    lost = report.damaged + report.missing
    assert len(set(lost)) == len(lost) and all(0 <= i < header["tile_count"] for i in lost)
    assert len(lost) < header["tile_count"] or report.damaged, "a valid record makes a tile present"
    assert 0 <= report.trailing_bytes <= report.bytes_skipped <= len(data) - header["header_length"]
    assert report.ok == (not lost and report.bytes_skipped == 0)
    event("decoded: ok" if report.ok else "decoded: damage reported")


@SETTINGS
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_decode_or_are_refused(tiny_bundle, data):
    check_consistent(data, tiny_bundle)


def test_crafted_files_decode_consistently_or_are_refused(tiny_bundle, seeds):
    @SETTINGS
    @given(data=crafted_files(seeds))
    def run(data):
        check_consistent(data, tiny_bundle)

    run()


def test_appended_bytes_are_trailing_and_never_ok(tiny_bundle, seeds):
    clean = {data: decode_outcome(data, tiny_bundle)[0] for data in seeds["files"]}

    @SETTINGS
    @given(which=st.sampled_from(seeds["files"]), tail=st.one_of(
        st.binary(min_size=1, max_size=200), st.sampled_from(seeds["files"]), st.sampled_from(seeds["records"])))
    def run(which, tail):
        image, report = decode_outcome(which + tail, tiny_bundle)
        assert not report.ok and report.trailing_bytes == len(tail) == report.bytes_skipped
        assert report.damaged == [] and report.missing == []
        assert np.array_equal(image, clean[which])
        assert report.concatenated == (tail in seeds["files"])

    run()
