"""Independent oracles for the bitstream building blocks in ``pymars._core``.

The C++ tests (csrc/tests) check the coder against itself; this file checks it
against code that shares nothing with it:

* the rANS coder (docs/bitstream.md §4) against information theory, i.e. the
  ideal code length computed from our own integer tables, and against
  constriction's ANS coder on the same distribution;
* CRC-32 against ``zlib`` and SHA-256 against ``hashlib``;
* the header and tile-record bindings against the spec's byte layout.

It must not test the learned model or the tile codec (other files do), and it
must not depend on real data: every input is generated from a fixed seed.
"""

import hashlib
import struct
import zlib

import numpy as np
import pytest

from pymars import _core  # the C++ module must be built: no skip hides a missing core

TOTAL = 1 << 16  # probability precision of every table (§4.1)
MAX_ABS = 1 << 20  # largest |value| an encoder may code (§4.3)


# --------------------------------------------------------------------------- helpers


def laplace_table(half_width, scale, escape_mass=1e-4):
    """An integer table (§4.2) for a discrete Laplace of `scale` plus an escape.

    Every symbol keeps frequency >= 1; the largest symbol absorbs the rounding.
    Returns (half_width, cdf) as the bindings expect.
    """
    values = np.arange(-half_width, half_width + 1)
    pmf = np.exp(-np.abs(values) / scale)
    pmf = np.append(pmf / pmf.sum() * (1 - escape_mass), escape_mass)
    n = pmf.size
    freq = np.maximum(1, np.floor(pmf * (TOTAL - n)).astype(np.int64) + 1)
    freq[np.argmax(freq)] += TOTAL - freq.sum()
    assert freq.min() >= 1 and freq.sum() == TOTAL
    cdf = np.concatenate([[0], np.cumsum(freq)]).astype(np.uint32)
    return half_width, cdf


def frequencies(table):
    return np.diff(table[1].astype(np.int64))


def ideal_bits(values, table_index, tables):
    """Information content of the values under our own integer tables (§4.3).

    A value inside the table costs -log2(freq/65536); an escaped one costs the
    escape symbol, 5 bits for n and n bits for the tail.
    """
    bits = 0.0
    for v, t in zip(values.tolist(), table_index.tolist()):
        half_width, _ = tables[t]
        freq = frequencies(tables[t])
        if -half_width <= v <= half_width:
            bits += -np.log2(freq[v + half_width] / TOTAL)
        else:
            u = 2 * (v - half_width - 1) if v > half_width else 2 * (-v - half_width - 1) + 1
            n = (u + 1).bit_length() - 1
            bits += -np.log2(freq[2 * half_width + 1] / TOTAL) + 5 + n
    return bits


def draw_values(rng, tables, table_index, escape_rate=0.0):
    """Values drawn from each value's own table; a fraction replaced by escapes."""
    values = np.empty(table_index.size, dtype=np.int32)
    for t, (half_width, _) in enumerate(tables):
        where = np.flatnonzero(table_index == t)
        freq = frequencies(tables[t])[:-1].astype(np.float64)
        values[where] = rng.choice(2 * half_width + 1, size=where.size, p=freq / freq.sum()) - half_width
    escapes = rng.random(values.size) < escape_rate
    magnitude = rng.integers(1, MAX_ABS + 1, size=values.size)
    sign = np.where(rng.random(values.size) < 0.5, -1, 1)
    limits = np.array([tables[t][0] for t in table_index])
    values[escapes] = (sign * np.maximum(magnitude, limits + 1))[escapes]
    return values


def round_trip(values, table_index, tables):
    stream = _core.rans_encode_values(values, table_index, tables)
    decoded = _core.rans_decode_values(stream, table_index, tables)
    return stream, decoded


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture
def tables():
    return [laplace_table(r, s) for r, s in [(1, 0.3), (8, 1.5), (40, 6.0), (200, 40.0)]]


# --------------------------------------------------------------------------- rANS round trips


def test_values_round_trip_through_mixed_tables(rng, tables):
    table_index = rng.integers(0, len(tables), size=20000).astype(np.int32)
    values = draw_values(rng, tables, table_index, escape_rate=0.01)
    _, decoded = round_trip(values, table_index, tables)
    np.testing.assert_array_equal(decoded, values)


def test_extreme_values_round_trip(tables):
    values = np.array([MAX_ABS, -MAX_ABS, MAX_ABS - 1, -MAX_ABS + 1, 2, -2, 0], dtype=np.int32)
    table_index = np.zeros(values.size, dtype=np.int32)
    _, decoded = round_trip(values, table_index, tables)
    np.testing.assert_array_equal(decoded, values)


def test_empty_sequence_is_the_four_byte_initial_state(tables):
    empty = np.zeros(0, dtype=np.int32)
    stream, decoded = round_trip(empty, empty, tables)
    assert stream == struct.pack("<I", 1 << 23)
    assert decoded.size == 0


def test_decoded_values_are_int32(tables):
    values = np.array([1, -1], dtype=np.int32)
    _, decoded = round_trip(values, np.zeros(2, dtype=np.int32), tables)
    assert decoded.dtype == np.int32


# --------------------------------------------------------------------------- rANS against oracles


@pytest.mark.parametrize("escape_rate", [0.0, 0.02])
def test_coded_size_is_within_a_few_bytes_of_the_information_content(rng, tables, escape_rate):
    table_index = rng.integers(0, len(tables), size=50000).astype(np.int32)
    values = draw_values(rng, tables, table_index, escape_rate=escape_rate)
    stream = _core.rans_encode_values(values, table_index, tables)
    ideal_bytes = ideal_bits(values, table_index, tables) / 8
    assert len(stream) >= ideal_bytes - 1  # no code beats the entropy of its own model
    assert len(stream) <= ideal_bytes * 1.001 + 8


def test_coded_size_matches_constriction_on_the_same_distribution(rng, tables):
    constriction = pytest.importorskip("constriction")
    table_index = rng.integers(0, len(tables), size=50000).astype(np.int32)
    values = draw_values(rng, tables, table_index)
    ours = len(_core.rans_encode_values(values, table_index, tables))

    # constriction codes each table's symbols with its own Categorical model
    # built from the same (float) pmf; order does not change an ANS size
    # beyond a few bytes, so grouping by table is fair.
    coder = constriction.stream.stack.AnsCoder()
    for t, (half_width, _) in enumerate(tables):
        pmf = frequencies(tables[t]).astype(np.float64) / TOTAL
        model = constriction.stream.model.Categorical(pmf, perfect=False)
        symbols = values[table_index == t].astype(np.int32) + half_width
        coder.encode_reverse(symbols, model)
    theirs = coder.num_valid_bits() / 8
    assert abs(ours - theirs) <= 0.001 * theirs + 8


def test_constriction_decodes_its_own_stream_of_our_symbols(rng, tables):
    # Sanity check of the oracle itself: the symbols we feed it are valid and
    # its model has the same alphabet as our table.
    constriction = pytest.importorskip("constriction")
    half_width, _ = tables[1]
    pmf = frequencies(tables[1]).astype(np.float64) / TOTAL
    model = constriction.stream.model.Categorical(pmf, perfect=False)
    values = draw_values(rng, [tables[1]], np.zeros(1000, dtype=np.int32))
    symbols = (values + half_width).astype(np.int32)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols, model)
    decoder = constriction.stream.stack.AnsCoder(coder.get_compressed())
    np.testing.assert_array_equal(decoder.decode(model, symbols.size), symbols)


# --------------------------------------------------------------------------- rANS errors


def test_every_truncated_stream_is_rejected(rng, tables):
    table_index = rng.integers(0, len(tables), size=300).astype(np.int32)
    values = draw_values(rng, tables, table_index, escape_rate=0.05)
    stream = _core.rans_encode_values(values, table_index, tables)
    for cut in range(len(stream)):
        with pytest.raises(ValueError, match="damaged rANS stream"):
            _core.rans_decode_values(stream[:cut], table_index, tables)


def test_trailing_byte_is_rejected(tables):
    table_index = np.zeros(10, dtype=np.int32)
    stream = _core.rans_encode_values(np.arange(10, dtype=np.int32) % 3 - 1, table_index, tables)
    with pytest.raises(ValueError, match="damaged rANS stream"):
        _core.rans_decode_values(stream + b"\0", table_index, tables)


def test_random_garbage_raises_value_error_without_crashing(rng, tables):
    for _ in range(300):
        garbage = rng.integers(0, 256, size=rng.integers(0, 200), dtype=np.uint8).tobytes()
        table_index = rng.integers(0, len(tables), size=rng.integers(0, 300)).astype(np.int32)
        with pytest.raises(ValueError):
            _core.rans_decode_values(garbage, table_index, tables)


def test_value_beyond_two_to_the_twenty_is_refused(tables):
    with pytest.raises(ValueError, match="outside"):
        _core.rans_encode_values(np.array([MAX_ABS + 1]), np.zeros(1, dtype=np.int32), tables)


def test_non_integer_values_are_refused(tables):
    with pytest.raises(TypeError):
        _core.rans_encode_values(np.array([0.5]), np.zeros(1, dtype=np.int32), tables)


def test_table_index_out_of_range_is_refused(tables):
    with pytest.raises(ValueError, match="not a table"):
        _core.rans_encode_values(np.zeros(1, np.int32), np.array([len(tables)], np.int32), tables)


def test_table_with_a_zero_frequency_is_refused():
    bad = [(1, np.array([0, 100, 100, 65000, 65536], dtype=np.uint32))]
    with pytest.raises(ValueError, match="increase strictly"):
        _core.rans_encode_values(np.zeros(1, np.int32), np.zeros(1, np.int32), bad)


def test_table_of_the_wrong_length_is_refused():
    bad = [(2, np.array([0, 100, 200, 65000, 65536], dtype=np.uint32))]
    with pytest.raises(ValueError, match="2\\*half_width\\+3"):
        _core.rans_encode_values(np.zeros(1, np.int32), np.zeros(1, np.int32), bad)


# --------------------------------------------------------------------------- CRC-32 and SHA-256


def test_crc32_equals_zlib(rng):
    for size in [0, 1, 3, 4, 63, 64, 65, 1000, 4096]:
        data = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        assert _core.crc32(data) == zlib.crc32(data)


def test_crc32_continues_like_zlib(rng):
    data = rng.integers(0, 256, size=500, dtype=np.uint8).tobytes()
    assert _core.crc32(data[200:], _core.crc32(data[:200])) == zlib.crc32(data)


def test_sha256_equals_hashlib_at_every_length_around_the_block_size(rng):
    data = rng.integers(0, 256, size=300, dtype=np.uint8).tobytes()
    for size in range(0, 300):
        assert _core.sha256(data[:size]) == hashlib.sha256(data[:size]).digest()


# --------------------------------------------------------------------------- container bindings


def test_written_header_parses_back_with_every_field():
    header = _core.write_file_header(1000, 600, channels=1, bit_depth=16, quality=42, tile_size=128,
                                     model_id=b"ABCDEFGH", library_hash=b"12345678")
    fields = _core.parse_file_header(header)
    assert len(header) == fields["header_length"] == 48
    assert header[:4] == b"PMRS"
    assert (fields["width"], fields["height"], fields["channels"]) == (1000, 600, 1)
    assert (fields["bit_depth"], fields["quality"], fields["tile_size"]) == (16, 42, 128)
    assert fields["tile_count"] == 8 * 5
    assert fields["model_id"] == b"ABCDEFGH" and fields["library_hash"] == b"12345678"


def test_header_crc_is_zlib_crc_of_the_preceding_bytes():
    header = _core.write_file_header(64, 64, tile_size=64)
    assert len(header) == 40
    assert struct.unpack("<I", header[36:40])[0] == zlib.crc32(header[:36])


def test_damaged_header_raises_value_error_with_the_reason():
    header = bytearray(_core.write_file_header(64, 64, tile_size=64))
    header[20] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        _core.parse_file_header(bytes(header))
    with pytest.raises(ValueError, match="not a pymars file"):
        _core.parse_file_header(b"GIF89a" + bytes(40))


def test_out_of_range_field_is_named_in_the_error():
    header = bytearray(_core.write_file_header(64, 64, tile_size=64))
    header[26] = 0  # quality
    header[36:40] = struct.pack("<I", zlib.crc32(bytes(header[:36])))
    with pytest.raises(ValueError, match="quality"):
        _core.parse_file_header(bytes(header))


def test_scan_finds_each_payload_and_reports_a_truncated_tail():
    header = _core.write_file_header(64, 32, tile_size=32)  # two tiles
    payloads = [b"first tile", b"second tile"]
    data = header + b"".join(_core.make_tile_record(i, p, entropy_ref=7) for i, p in enumerate(payloads))
    spans = _core.scan_tile_records(data, len(header), 2)
    assert [data[o:o + n] for o, n in spans] == payloads
    assert _core.scan_tile_records(data, len(header), 2, with_refs=True)[0][2:] == (7, 0xFFFF)
    assert _core.scan_tile_records(data[:-1], len(header), 2)[1] is None
