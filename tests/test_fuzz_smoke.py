"""A short, seeded fuzz run of the Python-side parsing, so CI exercises it without clang or atheris.

The harness is tests/fuzz_python.py (atheris when installed, for long runs);
here its property check runs on a few thousand random corruptions of valid
files: bit flips, overwritten / inserted / deleted bytes, truncations,
duplicated and swapped chunks, extreme header fields (with the header CRC
patched so they are read). Every input must give an image with its damage
reported, or a BitstreamError / ModelMismatchError; nothing else.
The C++ targets (csrc/fuzz/, libFuzzer) run with scripts/fuzz.sh.
"""
from __future__ import annotations

import numpy as np
import pytest
from fuzz_python import check_one_input, mutate, patched_for_model, run_mutations, seed_files


def test_valid_seed_files_decode_without_damage(tiny_bundle):
    for data in seed_files(tiny_bundle):
        assert check_one_input(data, tiny_bundle) == "decoded"


def test_patching_the_model_id_keeps_a_valid_header(tiny_bundle):
    import pymars

    data = seed_files(tiny_bundle)[0]
    other = patched_for_model(data, b"12345678")
    assert pymars.info(other)["model_id"] == b"12345678"
    assert patched_for_model(other, tiny_bundle.model_id) == data


def test_mutations_are_deterministic_for_a_seed():
    data = bytes(range(256)) * 4
    a = [mutate(data, np.random.default_rng(5)) for _ in range(3)]
    b = [mutate(data, np.random.default_rng(5)) for _ in range(3)]
    assert a == b


@pytest.mark.parametrize("seed", [0, 1])
def test_random_corruptions_decode_or_are_refused_cleanly(tiny_bundle, seed):
    counts = run_mutations(tiny_bundle, runs=1000, seed=seed)
    assert sum(counts.values()) == 1000
    # The run must reach every outcome class, or the harness tests nothing.
    assert counts.get("refused", 0) > 0 and counts.get("decoded with damage", 0) > 0
