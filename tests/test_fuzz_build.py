"""Every fuzz harness builds from the CMake library target and replays its seed corpus cleanly.

This is the CI guard that keeps scripts/fuzz.sh from rotting (issue 23: it once
lacked two core sources and nothing noticed). It builds, it does not fuzz:
``scripts/fuzz.sh --corpus`` configures CMake's ``marscore`` target with the
sanitizer flags, links each ``csrc/fuzz/fuzz_*.cpp`` against it (libFuzzer with
clang; the standalone replay driver csrc/fuzz/standalone_main.cpp with any
other compiler, such as CI's g++) and runs every file of ``csrc/fuzz/corpus/``
once. Long runs: ``scripts/fuzz.sh SECONDS`` with clang (docs in the script).
What this module must not do: fuzz for long (CI time) or build into the
checkout (its build folder is pytest's temporary one).

Specification (one behaviour per test):
* the script builds one binary per harness source and replays every seed without a finding;
* the seed corpus exists for every harness, holds only small files, and includes the hostile
  kinds issue 23 names (header only, the 16384 x 16384 bomb, concatenation, trailing bytes).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HARNESSES = sorted(p.stem.removeprefix("fuzz_") for p in (ROOT / "csrc" / "fuzz").glob("fuzz_*.cpp"))


def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "clang++", "c++", "g++"):
        if name and shutil.which(name):
            return name
    return None


def test_there_are_harnesses_to_build():
    assert {"container", "decode"} <= set(HARNESSES)


@pytest.mark.skipif(shutil.which("cmake") is None or _compiler() is None,
                    reason="building the fuzz harnesses needs cmake and a C++17 compiler")
def test_every_fuzz_harness_builds_and_replays_its_seed_corpus(tmp_path):
    env = dict(os.environ, FUZZ_BUILD_DIR=str(tmp_path / "fuzz"), CXX=_compiler(),
               BUILD_JOBS=os.environ.get("PYMARS_BUILD_JOBS", "2"))
    run = subprocess.run(["bash", str(ROOT / "scripts" / "fuzz.sh"), "--corpus"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in HARNESSES:
        assert (tmp_path / "fuzz" / f"fuzz_{name}").is_file(), run.stdout
        line = next(x for x in run.stdout.splitlines() if x.startswith(f"fuzz_{name}:"))
        assert "0 crashes" in line, line
        seeds = len(list((ROOT / "csrc" / "fuzz" / "corpus" / name).iterdir()))
        ran = int(line.split(":")[1].split()[0])
        assert ran >= seeds, line  # libFuzzer also runs the empty input


@pytest.mark.parametrize("name", HARNESSES)
def test_each_harness_has_a_small_seed_corpus(name):
    seeds = [p for p in (ROOT / "csrc" / "fuzz" / "corpus" / name).iterdir() if p.is_file()]
    assert len(seeds) >= 10
    assert max(p.stat().st_size for p in seeds) <= 4096  # fuzz.sh's -max_len


def test_the_seed_corpus_holds_the_hostile_kinds():
    names = {p.name for p in (ROOT / "csrc" / "fuzz" / "corpus" / "container").iterdir()}
    for kind in ("bomb_header_only", "bomb_huge_payload_length", "_concat", "_trailing", "_header_only", "_cut_mid"):
        assert any(kind in n for n in names), kind
    bomb = (ROOT / "csrc" / "fuzz" / "corpus" / "container" / "bomb_header_only").read_bytes()
    assert len(bomb) == 40 and int.from_bytes(bomb[16:20], "little") == 16384
