"""Regenerate the fuzzing model blob and seed corpus (csrc/fuzz/tiny.pmw, csrc/fuzz/corpus/).

The fuzz targets need a real model to reach the entropy decoder, and a model
that is small enough for thousands of decodes per second: ``tiny.pmw`` is a
randomly initialised (untrained) micro codec (latent 8, hyper 4) exported
exactly as a trained one is (pymars.train.export.blob). It is a test fixture, not a
codec: its pictures are noise, but its blob, tables and integer h_s are real.

Seeds (each a few hundred bytes):
* ``corpus/container/``: valid files of that model (gray, RGB, 12-bit, 1x1,
  with a library hash, several tile sizes), truncated / bit-flipped copies,
  header-only, concatenated and trailing-data copies, and a 40-byte header
  claiming 16384 x 16384 pixels (alone and with a record claiming 4 GiB);
* ``corpus/decode/``: the same files prefixed by byte 0 (fuzz_decode whole-file
  mode) and single tile payloads prefixed by byte 1, height, width, quality
  (one-payload mode, see fuzz_decode.cpp); sequence-coded seeds for the wavelet
  blobs and Arith2 payloads for the lossless blobs (base-v2-nl, base-v2-gray-nl): forms 3 and 4
  (fitted linear prediction) and, from 3-row tiles, forms 0 and 2.

``regress_*`` seeds are fuzzer findings kept after their fix (decode/regress_arith2_gain_plane_gradient:
an Arith2 RGB payload whose gain plane's gradients passed the 8-bit gradient table, found with
PYMARS_FUZZ_BLOB=base-v2-nl); regeneration keeps them.

Run from the repository root, with pymars._core built:
    python csrc/fuzz/make_corpus.py
"""
from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def tiny_blob() -> bytes:
    import torch

    from pymars.train.codec.network import BaseCodec, BaseConfig
    from pymars.train.export.blob import model_blob

    torch.manual_seed(0)
    cfg = BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8, synthesis=(8, 8, 8, 8))
    return model_blob(BaseCodec(cfg).eval(), {"purpose": "fuzzing fixture: random weights, not a codec"})


def scene(h: int, w: int, c: int, seed: int) -> np.ndarray:
    from pymars.data.synthetic import mars_like_scene

    return mars_like_scene(h, w, seed=seed, channels=c)


def reference_frame(channels: int) -> np.ndarray:
    """fuzz_decode.cpp's synthetic earlier frame (160 x 160): the reference of sequence-coded seeds."""
    y, x = np.mgrid[0:160, 0:160]
    planes = [(x * 7 + y * 13 + (x * y) % 31 + 40 * c) % 256 for c in range(channels)]
    return np.ascontiguousarray(np.stack(planes, -1).astype(np.uint8).squeeze())


def sequence_seeds(decode: Path) -> None:
    """Sequence-coded seeds (docs/bitstream.md §4.10) for the wavelet blobs (PYMARS_FUZZ_BLOB=.../base-v2-wv):
    a file with predicted tiles (whole-file mode) and one predicted payload (one-payload mode, bit 4 of byte 2)."""
    from pymars import _core
    from pymars.bundles import open_bundle

    for name, c in (("base-v2-gray-wv", 1), ("base-v2-wv", 3)):
        bundle = open_bundle(name)
        ref = reference_frame(c)
        new = np.ascontiguousarray(ref[12:76, 20:84])  # a displaced window of the same frame
        new = np.clip(new.astype(np.int64) * 15 // 16 + 5, 0, 255).astype(np.uint8)
        data = _core.encode(bundle.core, new, 60, 32, reference=(ref, bytes(8)))
        h = _core.parse_file_header(data)
        spans = _core.scan_tile_records(data, h["header_length"], h["tile_count"])
        (decode / f"file_sequence_{name}").write_bytes(b"\x00" + data)
        off, length = next(s for s in spans if data[s[0]] == 2)
        (decode / f"payload_sequence_{name}").write_bytes(bytes([1, 31, 31, 59]) + data[off : off + length])


def arith2_seeds(decode: Path) -> None:
    """Arith2 near-lossless payloads (docs/bitstream.md §4.8) for the lossless blobs
    (PYMARS_FUZZ_BLOB=.../base-v2-nl or .../base-v2-gray-nl), one-payload mode: lossless,
    k = 2 (no bias correction on the difference planes) and k = 6 (with it), and raw-like
    colour tiles coded with fitted gains (form 2)."""
    from pymars import _core
    from pymars.bundles import open_bundle

    for name, c in (("base-v2-gray-nl", 1), ("base-v2-nl", 3)):
        bundle = open_bundle(name)
        img = scene(32, 32, c, seed=11)
        for quality in (100, 98, 93):
            data = _core.encode(bundle.core, img, quality, 32)
            h = _core.parse_file_header(data)
            off, length = _core.scan_tile_records(data, h["header_length"], h["tile_count"])[0]
            k = bundle.core.near_lossless_error(quality)
            (decode / f"payload_arith2_{name}_k{k}").write_bytes(bytes([1, 31, 31, quality - 1]) + data[off : off + length])
        if c == 3:  # a raw-like colour tile (gains and own noise per channel): form 4, gains + 3 weight sets
            rng = np.random.default_rng(5)
            f = scene(32, 32, 1, seed=12).astype(np.float64)
            raw = np.stack([f, 0.78 * f + 6, 0.55 * f + 10], -1) + rng.normal(0, 1.5, (32, 32, 3))
            raw = np.clip(np.round(raw), 0, 255).astype(np.uint8)
            for quality in (100, 93):
                data = _core.encode(bundle.core, raw, quality, 32)
                h = _core.parse_file_header(data)
                off, length = _core.scan_tile_records(data, h["header_length"], h["tile_count"])[0]
                assert data[off] == 4, "the raw-like seed should take the gain form (with fitted weights for every plane: 4)"
                k = bundle.core.near_lossless_error(quality)
                (decode / f"payload_arith2_gains_k{k}").write_bytes(bytes([1, 31, 31, quality - 1]) + data[off : off + length])
                # A tile of 3 rows is too small for the fitted predictor: form 2 (gains, MED), as
                # earlier encoders wrote every raw-like tile.
                data = _core.encode(bundle.core, np.ascontiguousarray(raw[:3]), quality, 32)
                h = _core.parse_file_header(data)
                off, length = _core.scan_tile_records(data, h["header_length"], h["tile_count"])[0]
                assert data[off] == 2 or quality != 100, "a 3-row raw-like seed should take form 2"
                (decode / f"payload_arith2_form{data[off]}_k{k}").write_bytes(bytes([1, 2, 31, quality - 1]) + data[off : off + length])
        # A 3-row gray tile: form 0 (MED), the form of every gray tile before the fitted predictor.
        if c == 1:
            data = _core.encode(bundle.core, np.ascontiguousarray(img[:3]), 100, 32)
            h = _core.parse_file_header(data)
            off, length = _core.scan_tile_records(data, h["header_length"], h["tile_count"])[0]
            assert data[off] == 0, "a 3-row gray seed should take form 0"
            (decode / "payload_arith2_form0_k0").write_bytes(bytes([1, 2, 31, 99]) + data[off : off + length])


def main() -> int:
    from pymars import _core

    blob_path = HERE / "tiny.pmw"
    if "--keep-blob" in sys.argv and blob_path.exists():
        blob = blob_path.read_bytes()
    else:
        blob = tiny_blob()
        blob_path.write_bytes(blob)
    model = _core.Model(blob)
    files = {
        "gray40x56_t16_q50": _core.encode(model, scene(40, 56, 1, 1), 50, 16),
        "rgb48x32_t32_q90": _core.encode(model, scene(48, 32, 3, 2), 90, 32),
        "rgb33x17_t16_q5": _core.encode(model, scene(33, 17, 3, 3), 5, 16),
        "gray1x1_t16_q100": _core.encode(model, scene(8, 8, 1, 4)[:1, :1], 100, 16),
        "gray12bit_20x24_t16_q70": _core.encode(model, scene(20, 24, 1, 5).astype(np.uint16) * 16 + 3, 70, 16, 12),
        "rgb16bit_16x16_t16_q30": _core.encode(model, scene(16, 16, 3, 6).astype(np.uint16) * 257, 30, 16, 16),
        "gray_lib_32x32_t16_q60": _core.encode(model, scene(32, 32, 1, 7), 60, 16, library_hash=b"LIBHASH!"),
    }
    rng = np.random.default_rng(1)
    variants = {}
    for name, data in list(files.items())[:3]:
        variants[name + "_cut_header"] = data[:30]
        variants[name + "_cut_mid"] = data[: len(data) // 2]
        variants[name + "_cut_last"] = data[:-1]
        flipped = bytearray(data)
        for pos in rng.integers(40, len(data), size=3):
            flipped[pos] ^= 1 << int(rng.integers(0, 8))
        variants[name + "_flips"] = bytes(flipped)
        variants[name + "_dup_tail"] = data + data[40:]
        variants[name + "_header_only"] = data[: _core.parse_file_header(data)["header_length"]]
        variants[name + "_concat"] = data + data
        variants[name + "_trailing"] = data + bytes(7)
    # A 40-byte file that claims 16384 x 16384 pixels (issue 23's "bomb"), and the same
    # header followed by one record whose payload_length is 0xFFFFFFFF with a valid record CRC.
    bomb = _core.write_file_header(16384, 16384, channels=1, bit_depth=16, quality=50, tile_size=256,
                                   model_id=model.model_id)
    variants["bomb_header_only"] = bomb
    record = bytearray(_core.make_tile_record(0, b"x"))
    record[8:12] = (0xFFFFFFFF).to_bytes(4, "little")
    record[20:24] = _core.crc32(bytes(record[:20])).to_bytes(4, "little")
    variants["bomb_huge_payload_length"] = bomb + bytes(record)
    container = HERE / "corpus" / "container"
    decode = HERE / "corpus" / "decode"
    # Findings kept as regression seeds (``regress_*``, e.g. a crash input of the fuzzer once fixed) are not
    # generated here: they survive regeneration.
    for d in (container, decode):
        kept = {p.name: p.read_bytes() for p in d.glob("regress_*")} if d.is_dir() else {}
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for name, data in kept.items():
            (d / name).write_bytes(data)
    for name, data in {**files, **variants}.items():
        (container / name).write_bytes(data)
        (decode / ("file_" + name)).write_bytes(b"\x00" + data)
    # One-payload mode: byte 1, then tile height, width, quality, then the payload.
    for name, data in files.items():
        h = _core.parse_file_header(data)
        spans = _core.scan_tile_records(data, h["header_length"], h["tile_count"])
        off, length = spans[0]
        th, tw = min(h["height"], h["tile_size"]), min(h["width"], h["tile_size"])
        head = bytes([1, th - 1, tw - 1, h["quality"] - 1])
        (decode / ("payload_" + name)).write_bytes(head + data[off : off + length])
    sequence_seeds(decode)
    arith2_seeds(decode)
    total = sum(p.stat().st_size for p in (HERE / "corpus").rglob("*") if p.is_file())
    print(f"tiny.pmw: {len(blob)} bytes, model id {hashlib.sha256(blob).hexdigest()[:16]}; corpus {total} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
