"""The C++ core builds without Python or PyTorch and passes its own tests (ctest).

This is what a flight-software project gets: plain CMake, a static library, the
C header, the example program, and the C++ tests (entropy coder, container, and
the C API end to end with a real weight blob: determinism, no heap after init,
status codes, decoder re-deriving every table index).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cpp_build(tmp_path_factory, tiny_bundle):
    cmake = shutil.which("cmake")
    assert cmake, "cmake is required to build the C++ core"
    build = tmp_path_factory.mktemp("cbuild")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run([cmake, "-S", str(ROOT), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release",
                    f"-DPYMARS_TEST_BLOB={tiny_bundle.blob_path}"], check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(build), "-j2"], check=True, capture_output=True)
    return build


def test_core_builds_as_a_static_library_with_a_c_header(cpp_build):
    assert (cpp_build / "libmarscore.a").exists()
    assert (cpp_build / "encode_raw").exists()


def test_ctest_passes(cpp_build):
    r = subprocess.run(["ctest", "--output-on-failure"], cwd=cpp_build, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_c_example_encodes_what_python_encodes(cpp_build, tiny_bundle, tmp_path, scene_rgb):
    import pymars

    raw = tmp_path / "img.raw"
    raw.write_bytes(scene_rgb.tobytes())
    out = tmp_path / "c.pmrs"
    h, w, c = scene_rgb.shape
    subprocess.run([str(cpp_build / "encode_raw"), str(tiny_bundle.blob_path), str(raw), str(w), str(h), str(c), "55",
                    str(out)], check=True, capture_output=True)
    assert out.read_bytes() == pymars.encode(scene_rgb, 55, model=tiny_bundle)
