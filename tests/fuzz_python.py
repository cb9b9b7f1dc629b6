"""Fuzzing the Python-side parsing: ``pymars.info`` and ``decode_with_report`` on arbitrary bytes.

Property: whatever the bytes, ``info`` returns a header or raises
``BitstreamError``, and ``decode_with_report`` returns an image of the header's
size with every tile either decoded or listed as damaged / missing, or raises
``BitstreamError`` / ``ModelMismatchError``. Nothing else escapes, nothing
crashes. Like the C++ harness (csrc/fuzz/fuzz_decode.cpp), each input is also
tried with its model id and header CRC patched to match the model, so that
mutations reach the record scanner and the entropy decoder instead of stopping
at the header checks.

Two drivers share :func:`check_one_input`:

* atheris (coverage-guided; ``pip install atheris``)::

      python tests/fuzz_python.py -atheris_runs=20000 csrc/fuzz/corpus/container
      python tests/fuzz_python.py -max_total_time=600 csrc/fuzz/corpus/container

* without atheris, seeded random mutations of valid files (:func:`mutate`),
  which is what CI runs (tests/test_fuzz_smoke.py)::

      python tests/fuzz_python.py --no-atheris --runs 20000

The model is a randomly initialised micro codec exported into a temporary
bundle (a fixture, not a codec: decoding is fast, pictures are noise), or the
bundle folder in $PYMARS_FUZZ_BUNDLE.
Harness limit: headers claiming more than MAX_FUZZ_PIXELS pixels are only
parsed, not decoded (a header followed by one valid tile record may claim a
65535 x 65535 image, whose output would take 4 GiB; a header alone is refused
before any allocation, docs/bitstream.md §3 "Decoder limits").
"""
from __future__ import annotations

import sys
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np

MAX_FUZZ_PIXELS = 1 << 22


def fuzz_bundle(folder: str | Path):
    """Export a random-weight micro codec (latent 8) into ``folder``; returns its ModelBundle."""
    import torch

    from pymars.bundles import ModelBundle
    from pymars.train.codec.network import BaseCodec, BaseConfig
    from pymars.train.export.bundle_writer import write_bundle

    torch.manual_seed(0)
    cfg = BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8, synthesis=(8, 8, 8, 8))
    write_bundle(BaseCodec(cfg).eval(), Path(folder), {"purpose": "fuzzing fixture: random weights, not a codec"})
    return ModelBundle(Path(folder))


def patched_for_model(data: bytes, model_id: bytes) -> bytes:
    """``data`` with the model id replaced and the header CRC recomputed (where there is a header to patch)."""
    if len(data) < 40 or data[:4] != b"PMRS" or data[5] not in (40, 48) or len(data) < data[5]:
        return data
    hl = data[5]
    b = bytearray(data)
    b[8:16] = model_id
    b[hl - 4 : hl] = zlib.crc32(bytes(b[: hl - 4])).to_bytes(4, "little")
    return bytes(b)


def check_one_input(data: bytes, bundle) -> str:
    """Run info + decode_with_report on ``data`` as given and patched; returns the last outcome.

    Raises AssertionError when a promise is broken (any other exception escaping is a bug too).
    """
    import pymars
    from pymars.errors import BitstreamError, ModelMismatchError
    from pymars.ground.decode import DamagedTilesWarning, decode_with_report

    outcome = "refused"
    for candidate in dict.fromkeys((data, patched_for_model(data, bundle.model_id))):
        try:
            header = pymars.info(candidate)
        except BitstreamError:
            header = None
        if header is None:
            outcome = "refused"
            continue
        assert header["tile_count"] >= 1 and 1 <= header["width"] <= 65535 and 1 <= header["height"] <= 65535
        if header["width"] * header["height"] > MAX_FUZZ_PIXELS:
            outcome = "too large for the harness"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DamagedTilesWarning)
                image, report = decode_with_report(candidate, model=bundle)
        except (BitstreamError, ModelMismatchError):
            outcome = "refused"
            continue
        h, w, c = header["height"], header["width"], header["channels"]
        assert image.shape == ((h, w) if c == 1 else (h, w, 3)), (image.shape, header)
        assert image.dtype == (np.uint8 if header["bit_depth"] == 8 else np.uint16)
        assert report.tile_count == header["tile_count"]
        bad = report.damaged + report.missing
        assert len(set(bad)) == len(bad) and all(0 <= i < report.tile_count for i in bad)
        outcome = "decoded" if report.ok else "decoded with damage"
    return outcome


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random corruption of a file: bit flips, byte overwrites, insertions, deletions,
    truncation, duplicated or swapped chunks, header fields set to extreme values."""
    b = bytearray(data)
    kind = int(rng.integers(0, 8))
    n = len(b)
    if n == 0:
        return bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))
    if kind == 0:  # bit flips
        for pos in rng.integers(0, n, int(rng.integers(1, 8))):
            b[int(pos)] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:  # random bytes
        for pos in rng.integers(0, n, int(rng.integers(1, 8))):
            b[int(pos)] = int(rng.integers(0, 256))
    elif kind == 2:  # truncation
        b = b[: int(rng.integers(0, n))]
    elif kind == 3:  # insertion
        pos = int(rng.integers(0, n + 1))
        b[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 32)), dtype=np.uint8))
    elif kind == 4:  # deletion
        pos = int(rng.integers(0, n))
        del b[pos : pos + int(rng.integers(1, 32))]
    elif kind == 5:  # duplicate a chunk somewhere else
        a = int(rng.integers(0, n))
        chunk = b[a : a + int(rng.integers(1, 200))]
        pos = int(rng.integers(0, n + 1))
        b[pos:pos] = chunk
    elif kind == 6:  # a header field at an extreme value (the patched copy makes its CRC valid)
        field = [(16, 4), (20, 4), (24, 1), (25, 1), (26, 1), (28, 2), (32, 4), (6, 2), (5, 1)][int(rng.integers(0, 9))]
        value = [0, 1, 2, 0xFF, 0xFFFF, 0xFFFFFFFF, 16, 4096, 65535, 65536][int(rng.integers(0, 10))]
        off, size = field
        if off + size <= n:
            b[off : off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    else:  # swap two chunks (reordered records)
        a, c = sorted(int(x) for x in rng.integers(0, n, 2))
        k = int(rng.integers(1, 100))
        b = b[:a] + b[c : c + k] + b[a + k : c] + b[a : a + k] + b[c + k :]
    return bytes(b)


def seed_files(bundle) -> list[bytes]:
    """A few small valid files of ``bundle``: gray, RGB, 12-bit, several tile sizes."""
    import pymars
    from pymars.data.synthetic import mars_like_scene

    return [
        pymars.encode(mars_like_scene(40, 56, seed=1, channels=1), 50, tile_size=16, model=bundle),
        pymars.encode(mars_like_scene(48, 32, seed=2), 90, tile_size=32, model=bundle),
        pymars.encode(mars_like_scene(20, 24, seed=3, channels=1).astype(np.uint16) * 16, 70, tile_size=16,
                      bit_depth=12, model=bundle),
    ]


def run_mutations(bundle, runs: int, seed: int = 0) -> dict[str, int]:
    """Seeded random mutations of the seed files through :func:`check_one_input`; returns outcome counts."""
    rng = np.random.default_rng(seed)
    seeds = seed_files(bundle)
    counts: dict[str, int] = {}
    for i in range(runs):
        data = seeds[i % len(seeds)]
        for _ in range(int(rng.integers(1, 4))):
            data = mutate(data, rng)
        outcome = check_one_input(data, bundle)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _bundle(folder: str):
    """$PYMARS_FUZZ_BUNDLE (a bundle folder, to skip the export) or a fresh micro codec in ``folder``."""
    import os

    if os.environ.get("PYMARS_FUZZ_BUNDLE"):
        from pymars.bundles import ModelBundle

        return ModelBundle(Path(os.environ["PYMARS_FUZZ_BUNDLE"]))
    return fuzz_bundle(folder)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as d:
        if "--no-atheris" in argv:
            runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 2000
            bundle = _bundle(d)
            counts = run_mutations(bundle, runs)
            print(f"{runs} inputs, outcomes {counts}, 0 unexpected exceptions")
            return 0
        import atheris

        with atheris.instrument_imports():
            import pymars  # noqa: F401
            import pymars.ground.decode  # noqa: F401
        bundle = _bundle(d)
        atheris.Setup(argv, lambda data: check_one_input(bytes(data), bundle))
        atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
