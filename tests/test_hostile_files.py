"""Crafted hostile files through ``pymars decode``: each gets its documented outcome, in bounded memory.

Issue 23: ground servers decode whatever arrives, and a 40-byte header once
made the decoder allocate 4.6 GB. Each file below is decoded by the command
line in its own process, under an address-space limit (RLIMIT_AS, 1 GiB: a
normal decode of a small file peaks at about 0.46 GiB of address space, most
of it ONNX Runtime's and NumPy's reservations) and a time limit, and must end
in the outcome docs/bitstream.md §3 ("Trailing data", "Decoder limits",
"Damage handling") documents:

* **refused**: exit status 2, one line ``pymars: error: ...`` naming the
  reason, no traceback, and no output file (nor a temporary one) left behind;
* **damage report**: exit status 1, the image written, one summary line on
  stdout naming what was lost or ignored, one ``pymars: warning:`` line, no traceback;
* **ok**: exit status 0 and "ok" (only for files whose every byte is used).

The files are made from the tiny test model (tests/conftest.py), so they
are small; the tile records are real ones of that model. What this module
must not do: run a decode without the limits, or write outside pytest's
temporary folders (each child runs there, never in the checkout).
"""
from __future__ import annotations

import os
import re
import resource
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import pymars
from pymars import _core
from pymars.data.synthetic import mars_like_scene

ADDRESS_SPACE_LIMIT = 1 << 30
TIME_LIMIT_S = 120  # a hang guard, not a speed test (bench/ measures speed)
BOMB_SIDE = 16384  # 16384 x 16384 = 2^28 pixels: the default max_pixels, the largest accepted image


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str
    output_exists: int
    leftovers: list
    max_rss_kib: int  # peak resident memory of the decoding process (-1: not reported)


def run_decode(folder: Path, data: bytes, *extra: str) -> Outcome:
    """``pymars decode FILE -o out.png`` in a fresh interpreter under the address-space and time limits."""
    src, out = folder / "hostile.pmrs", folder / "out.png"
    src.write_bytes(data)
    rss_file = folder / "maxrss"
    # The child reports its own peak RSS (VmHWM, KiB) into a file, leaving stdout/stderr to the CLI.
    # Not ru_maxrss: Linux carries it across exec, so it would count the forking pytest process.
    code = ("import sys\nfrom pymars.cli import main\nrc = main(sys.argv[2:])\n"
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
            "open(sys.argv[1], 'w').write(hwm[0] if hwm else '-1')\nsys.exit(rc)")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="")
    r = subprocess.run([sys.executable, "-c", code, str(rss_file), "decode", str(src), "-o", str(out), *extra],
                       capture_output=True, text=True, timeout=TIME_LIMIT_S, preexec_fn=limit,
                       cwd=folder, env=env)  # not the checkout: its pymars/ may lack the compiled _core
    left = [p.name for p in folder.iterdir() if ".part" in p.name]
    rss = int(rss_file.read_text()) if rss_file.exists() else -1
    return Outcome(r.returncode, r.stdout, r.stderr, out.exists(), left, rss)


def lines(text: str) -> list[str]:
    """The non-empty lines of an output, without the decoder's progress bar (cleared, but its text stays
    between carriage returns)."""
    return [p.strip() for p in re.split(r"[\r\n]", text) if p.strip() and not re.match(r"decode: +\d+%\|", p)]


def assert_refused(o: Outcome, *words: str) -> str:
    err = lines(o.stderr)
    assert o.status == 2, (o.status, o.stdout, o.stderr)
    assert len(err) == 1 and err[0].startswith("pymars: error: "), o.stderr
    assert "Traceback" not in o.stderr + o.stdout and "internal error" not in o.stderr
    for w in words:
        assert w in err[0], err[0]
    assert not o.output_exists and not o.leftovers, "a refused file must leave no output behind"
    return err[0]


def assert_damage_report(o: Outcome, *words: str) -> str:
    assert o.status == 1, (o.status, o.stdout, o.stderr)
    assert "Traceback" not in o.stderr + o.stdout
    out = lines(o.stdout)
    assert len(out) == 1 and "out.png" in out[0], o.stdout
    warning = lines(o.stderr)
    assert len(warning) == 1 and warning[0].startswith("pymars: warning: "), o.stderr
    for w in words:
        assert w in out[0], out[0]
    assert o.output_exists and not o.leftovers
    return out[0]


# ----------------------------------------------------------------------------------------------- the files


@pytest.fixture(scope="module")
def model(tiny_bundle):
    return ["--model", str(tiny_bundle.root)]


@pytest.fixture(scope="module")
def good(tiny_bundle) -> bytes:
    """A clean gray file of 6 tiles (2 x 3 grid of 32-pixel tiles)."""
    return pymars.encode(mars_like_scene(64, 96, seed=3, channels=1), 60, tile_size=32, model=tiny_bundle)


@pytest.fixture(scope="module")
def tile0_record(tiny_bundle) -> bytes:
    """The tile record of a 256 x 256 gray image coded as one tile: tile 0 of any image with 256-pixel tiles."""
    data = pymars.encode(mars_like_scene(256, 256, seed=4, channels=1), 60, tile_size=256, model=tiny_bundle)
    return data[40:]


def header(bundle, width, height, **kw) -> bytes:
    kw.setdefault("channels", 1)
    kw.setdefault("quality", 60)
    return _core.write_file_header(width, height, model_id=bytes(bundle.model_id), **kw)


def with_header_crc(b: bytearray) -> bytes:
    hl = b[5]
    b[hl - 4 : hl] = struct.pack("<I", zlib.crc32(bytes(b[: hl - 4])))
    return bytes(b)


def record(index: int, payload: bytes, length: int | None = None, payload_crc: int | None = None) -> bytes:
    """A record header with a valid record CRC, whatever the fields say, followed by ``payload``."""
    head = b"PMTL" + struct.pack("<IIHHI", index, len(payload) if length is None else length, 0xFFFF, 0xFFFF,
                                 zlib.crc32(payload) if payload_crc is None else payload_crc)
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def records_of(data: bytes) -> list[tuple[int, int]]:
    """(record start, record end) of every record of a clean file, in order."""
    h = _core.parse_file_header(data)
    return [(off - 24, off + length) for off, length in _core.scan_tile_records(data, h["header_length"],
                                                                                 h["tile_count"])]


# ----------------------------------------------------------------------------------------------- refused


def test_header_only_at_the_maximum_size_is_refused_at_once_in_little_memory(tmp_path, tiny_bundle, model):
    bomb = header(tiny_bundle, BOMB_SIDE, BOMB_SIDE, bit_depth=16)
    assert len(bomb) == 40
    o = run_decode(tmp_path, bomb, *model)
    assert_refused(o, "no tile record", "16384x16384", "nothing to decode")
    assert 0 < o.max_rss_kib < 100 * 1024, o.max_rss_kib  # issue 23: under 100 MB (was 4.6 GB)


def test_header_only_above_the_pixel_limit_is_refused_by_the_limit(tmp_path, tiny_bundle, model):
    o = run_decode(tmp_path, header(tiny_bundle, 65535, 65535), *model)
    assert_refused(o, "65535x65535", "max_pixels", "--max-pixels")


def test_raising_the_pixel_limit_still_allocates_nothing_for_a_header_alone(tmp_path, tiny_bundle, model):
    o = run_decode(tmp_path, header(tiny_bundle, 65535, 65535, channels=3, bit_depth=16, tile_size=16), *model,
                   "--max-pixels", str(1 << 33))
    assert_refused(o, "no tile record")
    assert o.max_rss_kib < 100 * 1024, o.max_rss_kib


def test_header_followed_by_garbage_is_refused(tmp_path, tiny_bundle, model):
    junk = np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    o = run_decode(tmp_path, header(tiny_bundle, BOMB_SIDE, BOMB_SIDE) + junk, *model)
    assert_refused(o, "no valid tile record")


def test_a_lone_record_claiming_a_4_gib_payload_is_refused(tmp_path, tiny_bundle, model):
    o = run_decode(tmp_path, header(tiny_bundle, BOMB_SIDE, BOMB_SIDE) + record(0, b"x" * 100, length=0xFFFFFFFF),
                   *model)
    assert_refused(o, "no valid tile record")


def test_overlapping_records_claiming_long_payloads_are_refused_in_linear_time(tmp_path, tiny_bundle, model):
    # 2 MB of valid record headers, each claiming a payload up to the end with a wrong CRC: the
    # search once cost O(len^2) (minutes); with CRC checkpoints it is one pass.
    n = 2_000_000 // 24
    body = b"".join(record(0, b"", length=(n - 1 - i) * 24, payload_crc=0xDEADBEEF) for i in range(n))
    o = run_decode(tmp_path, header(tiny_bundle, 4096, 4096) + body, *model)
    assert_refused(o, "no valid tile record")


def test_tile_count_mismatch_is_refused(tmp_path, tiny_bundle, model, good):
    b = bytearray(good)
    b[32:36] = struct.pack("<I", 7)  # 6 tiles in the grid
    assert_refused(run_decode(tmp_path, with_header_crc(b), *model), "tile_count")


def test_unknown_flag_bits_are_refused(tmp_path, model, good):
    b = bytearray(good)
    b[6:8] = struct.pack("<H", 0x8000)
    assert_refused(run_decode(tmp_path, with_header_crc(b), *model), "flags")


def test_a_reference_library_hash_without_a_library_is_refused(tmp_path, tiny_bundle, model, good):
    lib = header(tiny_bundle, 96, 64, tile_size=32, library_hash=b"LIBHASH!")
    assert_refused(run_decode(tmp_path, lib + good[40:], *model), "reference library", "LIBHASH!".encode().hex())


def test_an_unknown_version_is_refused(tmp_path, model, good):
    b = bytearray(good)
    b[4] = 2
    assert_refused(run_decode(tmp_path, with_header_crc(b), *model), "version")


def test_a_tile_size_out_of_range_is_refused(tmp_path, model, good):
    b = bytearray(good)
    b[28:30] = struct.pack("<H", 8)
    assert_refused(run_decode(tmp_path, with_header_crc(b), *model), "out of range", "tile_size")


def test_an_unknown_model_id_is_refused(tmp_path, good):
    b = bytearray(good)
    b[8:16] = b"\x01" * 8
    assert_refused(run_decode(tmp_path, with_header_crc(b)), "model id", "0101010101010101")


@pytest.mark.parametrize("cut, field", [(0, "empty"), (2, "magic"), (4, "version"), (5, "header_length"),
                                        (7, "flags"), (12, "model_id"), (18, "width"), (22, "height"),
                                        (24, "channels"), (25, "bit_depth"), (26, "quality"), (29, "tile_size"),
                                        (34, "tile_count"), (38, "header_crc")])
def test_truncation_inside_a_header_field_is_refused(tmp_path, model, good, cut, field):
    assert_refused(run_decode(tmp_path, good[:cut], *model), "too short")


@pytest.mark.parametrize("cut, field", [(2, "sync"), (6, "tile_index"), (10, "payload_length"), (13, "entropy_ref"),
                                        (15, "decoder_ref"), (18, "payload_crc"), (22, "record_crc"),
                                        (30, "payload")])
def test_truncation_inside_the_first_record_is_refused(tmp_path, model, good, cut, field):
    why = "no tile record" if cut < 24 else "no valid tile record"  # under 24 bytes: not even a record header
    assert_refused(run_decode(tmp_path, good[: 40 + cut], *model), why, "nothing to decode")


# ----------------------------------------------------------------------------------------------- decoded, reported


def test_one_valid_tile_in_a_maximum_size_header_decodes_in_bounded_memory(tmp_path, tiny_bundle, model,
                                                                          tile0_record):
    # A damaged but partial file keeps its good tile: the 256 MiB output fits the 1 GiB limit.
    o = run_decode(tmp_path, header(tiny_bundle, BOMB_SIDE, BOMB_SIDE) + tile0_record, *model)
    assert_damage_report(o, "16384x16384x1", "0 damaged, 4095 missing")


def test_truncation_inside_a_later_record_reports_the_missing_tiles(tmp_path, model, good):
    (s, e) = records_of(good)[3]
    o = run_decode(tmp_path, good[: s + 10], *model)
    assert_damage_report(o, "0 damaged, 3 missing", "bytes outside valid tile records ignored")


def test_trailing_bytes_are_reported_never_ok(tmp_path, model, good):
    o = run_decode(tmp_path, good + b"\0" * 100, *model)
    assert_damage_report(o, "100 trailing bytes ignored")


def test_a_concatenation_is_reported_never_ok(tmp_path, model, good):
    o = run_decode(tmp_path, good + good, *model)
    assert_damage_report(o, f"{len(good)} trailing bytes ignored", "another pymars file follows")


def test_a_duplicated_record_is_ignored_and_reported(tmp_path, model, good):
    (s, e) = records_of(good)[1]
    o = run_decode(tmp_path, good[:e] + good[s:e] + good[e:], *model)
    assert_damage_report(o, f"{e - s} bytes between tile records ignored")


def test_an_out_of_range_tile_index_is_ignored_and_reported(tmp_path, model, good):
    (s, e) = records_of(good)[2]
    o = run_decode(tmp_path, good[:e] + record(6, b"abc") + record(0xFFFFFFFF, b"") + good[e:], *model)
    assert_damage_report(o, f"{27 + 24} bytes between tile records ignored")


def test_a_record_claiming_a_4_gib_payload_inside_a_file_costs_nothing(tmp_path, model, good):
    (s, e) = records_of(good)[0]
    o = run_decode(tmp_path, good[:e] + record(1, b"", length=0xFFFFFFFF) + good[e:], *model)
    assert_damage_report(o, "24 bytes between tile records ignored")


def test_a_payload_claiming_huge_symbol_runs_damages_only_its_tile(tmp_path, model, good):
    # A CRC-valid payload whose rANS state and bytes are all 0xFF: every escape claims a 30-bit
    # value (docs/bitstream.md §4.3); the decoder stops at the first check that fails.
    recs = records_of(good)
    (s, e) = recs[4]
    o = run_decode(tmp_path, good[:s] + record(4, b"\xff" * 3000) + good[e:], *model)
    assert_damage_report(o, "1 damaged, 0 missing")


def test_records_in_reverse_order_decode_clean(tmp_path, model, good):
    recs = records_of(good)
    o = run_decode(tmp_path, good[:40] + b"".join(good[s:e] for s, e in reversed(recs)), *model)
    assert o.status == 0 and lines(o.stdout)[0].endswith(", ok") and not lines(o.stderr), (o.stdout, o.stderr)


@pytest.mark.parametrize("side, tile, expect", [(65535, 16, "not scanned"), (BOMB_SIDE, 256, "tiles_present: 0")])
def test_info_on_a_header_only_bomb_allocates_nothing_per_tile(tmp_path, tiny_bundle, side, tile, expect):
    # `pymars info` listed every tile's state: 16.8 M entries for a 40-byte header (65535^2, 16-pixel tiles).
    (tmp_path / "bomb.pmrs").write_bytes(header(tiny_bundle, side, side, tile_size=tile))

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))

    r = subprocess.run([sys.executable, "-m", "pymars.cli", "info", str(tmp_path / "bomb.pmrs")], capture_output=True,
                       text=True, timeout=TIME_LIMIT_S, preexec_fn=limit, cwd=tmp_path)
    assert r.returncode == 0 and not r.stderr, r.stderr
    assert expect in " ".join(r.stdout.split()), r.stdout


def test_the_cli_and_api_default_pixel_limits_agree():
    from pymars import cli
    from pymars.ground import decode as api

    assert cli.DEFAULT_MAX_PIXELS == api.DEFAULT_MAX_PIXELS == BOMB_SIDE * BOMB_SIDE
