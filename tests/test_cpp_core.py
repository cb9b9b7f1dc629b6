"""The C++ core builds without Python or PyTorch and passes its own tests (ctest).

This is what a flight-software project gets: plain CMake, a static library, the
C header, the example program, and the C++ tests (entropy coder, container, and
the C API end to end with a real weight blob: determinism, no heap after init,
status codes, tile-row streaming, decoder re-deriving every table index); an
installed package that a C project finds with find_package(pymars); no
writable global state in the core; and an example that leaves no output file when it fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
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
    jobs = os.environ.get("PYMARS_BUILD_JOBS", "2")
    subprocess.run([cmake, "--build", str(build), f"-j{jobs}"], check=True, capture_output=True)
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


def test_c_example_with_a_reference_library_encodes_what_python_encodes(cpp_build, tiny_remac, remac_library,
                                                                         tiny_bundle, tmp_path, scene_rgb):
    import pymars

    bundle = tiny_remac[0]
    raw = tmp_path / "img.raw"
    raw.write_bytes(scene_rgb.tobytes())
    lib = tmp_path / "lib.pmrl"
    remac_library.save(lib)
    h, w, c = scene_rgb.shape
    want = pymars.encode(scene_rgb, 45, model=bundle, refs=remac_library)
    for mode in ([], ["--stream"]):
        out = tmp_path / "c.pmrs"
        subprocess.run([str(cpp_build / "encode_raw"), *mode, "--refs", str(lib), str(bundle.blob_path), str(raw),
                        str(w), str(h), str(c), "45", str(out)], check=True, capture_output=True)
        assert out.read_bytes() == want
    # A base blob with a library is refused (it has no reference branch).
    r = subprocess.run([str(cpp_build / "encode_raw"), "--refs", str(lib), str(tiny_bundle.blob_path), str(raw),
                        str(w), str(h), str(c), "45", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "reference library" in r.stderr


@pytest.mark.parametrize("mode", [[], ["--stream"]], ids=["whole", "stream"])
def test_c_example_leaves_no_output_when_it_fails(cpp_build, tiny_bundle, tmp_path, scene_rgb, mode):
    """A refused quality or a short raw file: exit 2, and OUT is as before (absent, or untouched)."""
    raw = tmp_path / "img.raw"
    raw.write_bytes(scene_rgb.tobytes())
    short = tmp_path / "short.raw"
    short.write_bytes(scene_rgb.tobytes()[: scene_rgb.size // 2])
    h, w, c = scene_rgb.shape
    kept = tmp_path / "kept.pmrs"
    kept.write_bytes(b"an earlier result")
    for source, quality, out in ((raw, "500", tmp_path / "bad.pmrs"), (short, "50", tmp_path / "bad.pmrs"),
                                 (short, "50", kept)):
        r = subprocess.run([str(cpp_build / "encode_raw"), *mode, str(tiny_bundle.blob_path), str(source), str(w),
                            str(h), str(c), quality, str(out)], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count("\n") == 1 and ("quality" in r.stderr or "raw image" in r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.raw", "kept.pmrs", "short.raw"]
    assert kept.read_bytes() == b"an earlier result"


def test_core_has_no_writable_global_state(cpp_build):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    out = subprocess.run([nm, "-C", str(cpp_build / "libmarscore.a")], check=True, capture_output=True, text=True).stdout
    # b/B: .bss, d/D: .data, g/G, s/S: small data, V/v weak objects, u: unique globals (function statics).
    writable = [line for line in out.splitlines() if len(line.split()) >= 3 and line.split()[1] in "bBdDgGsSVvu"]
    assert writable == []


def test_c_project_links_the_installed_package_with_find_package(cpp_build, tiny_bundle, tmp_path, scene_rgb):
    import pymars

    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(cpp_build), "--prefix", str(prefix)], check=True, capture_output=True)
    assert (prefix / "include" / "marsenc.h").exists()
    assert (prefix / "lib" / "cmake" / "pymars" / "pymarsConfigVersion.cmake").exists()
    example = tmp_path / "example"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    r = subprocess.run(["cmake", "-S", str(ROOT / "csrc" / "examples"), "-B", str(example), *gen,
                        f"-DCMAKE_PREFIX_PATH={prefix}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(example)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    raw = tmp_path / "img.raw"
    raw.write_bytes(scene_rgb.tobytes())
    h, w, c = scene_rgb.shape
    outs = []
    for flags in ([], ["--stream"]):
        out = tmp_path / f"out{len(outs)}.pmrs"
        subprocess.run([str(example / "encode_raw"), *flags, str(tiny_bundle.blob_path), str(raw), str(w), str(h), str(c),
                        "40", str(out), "64"], check=True, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == pymars.encode(scene_rgb, 40, tile_size=64, model=tiny_bundle)


def test_c_example_streams_16_bit_samples_as_python_encodes_them(cpp_build, tiny_bundle, tmp_path, scene_gray):
    import numpy as np

    import pymars

    img16 = scene_gray.astype(np.uint16) * 16 + 5  # 12-bit samples
    raw = tmp_path / "img16.raw"
    raw.write_bytes(img16.astype("<u2").tobytes())
    out = tmp_path / "c16.pmrs"
    h, w = img16.shape
    subprocess.run([str(cpp_build / "encode_raw"), "--stream", "--bits", "12", str(tiny_bundle.blob_path), str(raw),
                    str(w), str(h), "1", "70", str(out), "32"], check=True, capture_output=True)
    assert out.read_bytes() == pymars.encode(img16, 70, tile_size=32, bit_depth=12, model=tiny_bundle)


@pytest.mark.parametrize("bundle_name", ["tiny", "base-v1-nl"])
def test_c_rate_control_encodes_what_python_encodes(cpp_build, tiny_bundle, tmp_path, scene_rgb, bundle_name):
    """marsenc_encode_to_size (encode_raw --target) picks the quality of pymars.encode(target_bytes=N) and
    writes its bytes; base-v1-nl's top qualities are near-lossless (a model with both kinds of tile)."""
    import pymars
    from pymars import _core

    bundle = tiny_bundle if bundle_name == "tiny" else pymars.open_bundle(bundle_name)
    if not bundle.available:
        pytest.skip(f"{bundle_name} is not installed")
    raw = tmp_path / "img.raw"
    raw.write_bytes(scene_rgb.tobytes())
    h, w, c = scene_rgb.shape
    size = {q: len(pymars.encode(scene_rgb, q, tile_size=64, model=bundle)) for q in (1, 50, 100)}
    for target in (size[1], (size[1] + size[50]) // 2, size[50], size[100] - 1, size[100] + 1000):
        out = tmp_path / f"t{target}.pmrs"
        r = subprocess.run([str(cpp_build / "encode_raw"), "--target", str(target), str(bundle.blob_path), str(raw),
                            str(w), str(h), str(c), "0", str(out), "64"], check=True, capture_output=True, text=True)
        want, quality = _core.encode_to_target(bundle.core, scene_rgb, target, 64)
        assert out.read_bytes() == want == pymars.encode(scene_rgb, target_bytes=target, tile_size=64, model=bundle)
        assert f"quality {quality}\n" in r.stdout and len(want) <= target
    # Below quality 1's file both refuse, and the example leaves no output.
    out = tmp_path / "small.pmrs"
    r = subprocess.run([str(cpp_build / "encode_raw"), "--target", str(size[1] - 1), str(bundle.blob_path), str(raw),
                        str(w), str(h), str(c), "0", str(out), "64"], capture_output=True, text=True)
    assert r.returncode == 1 and "quality 1" in r.stderr and not out.exists()
    with pytest.raises(ValueError, match="target_bytes too small: quality 1 needs"):
        pymars.encode(scene_rgb, target_bytes=size[1] - 1, tile_size=64, model=bundle)


@pytest.mark.parametrize("bits,channels", [(8, 3), (12, 1), (16, 3)])
def test_c_api_max_error_encodes_what_python_encodes(cpp_build, tmp_path, bits, channels):
    """marsenc_encode_max_error (encode_raw --max-error K) chooses the quality of pymars.encode(max_error=K)
    (one choice, Model::quality_for_max_error) and writes its bytes, 12/16-bit samples at their own depth."""
    import pymars
    from pymars.data.synthetic import mars_like_scene

    bundle = pymars.open_bundle("base-v2-gray-rc" if channels == 1 else "base-v1-nl")
    rng = np.random.default_rng(bits)
    img = mars_like_scene(70, 90, seed=bits, channels=channels)
    if bits != 8:
        img = (img.astype(np.uint16) << (bits - 8)) | rng.integers(0, 1 << (bits - 8), img.shape, dtype=np.uint16)
    raw = tmp_path / "img.raw"
    raw.write_bytes(img.astype("<u2").tobytes() if bits != 8 else img.tobytes())
    for k in (0, 2):
        out = tmp_path / f"k{k}.pmrs"
        r = subprocess.run([str(cpp_build / "encode_raw"), "--bits", str(bits), "--max-error", str(k),
                            str(bundle.blob_path), str(raw), "90", "70", str(channels), "0", str(out), "64"],
                           check=True, capture_output=True, text=True)
        want = pymars.encode(img, max_error=k, tile_size=64, model=bundle, bit_depth=bits)
        assert out.read_bytes() == want
        assert f"quality {bundle.core.quality_for_max_error(k, bits)}\n" in r.stdout
        back = pymars.decode(want, model=bundle)
        assert np.abs(back.astype(np.int64) - img.astype(np.int64)).max() <= k
    if bits == 12:
        # Stray high bits of the 16-bit container (which pymars.encode refuses): the C API codes
        # such a sample as the largest one (the row loader of 9-12-bit input, tile_codec.cpp).
        stray = img.copy()
        stray.reshape(-1)[::37] |= np.uint16(0xF000)
        raw.write_bytes(stray.astype("<u2").tobytes())
        out = tmp_path / "stray.pmrs"
        subprocess.run([str(cpp_build / "encode_raw"), "--bits", "12", "--max-error", "0", str(bundle.blob_path),
                        str(raw), "90", "70", str(channels), "0", str(out), "64"], check=True, capture_output=True)
        clamped = np.minimum(stray, 4095)
        assert out.read_bytes() == pymars.encode(clamped, max_error=0, tile_size=64, model=bundle, bit_depth=12)


def test_c_api_repeat_times_the_encoder_and_writes_the_same_file(cpp_build, tmp_path):
    """encode_raw --repeat N (bench/lossless_speed.py's timing) encodes N times, prints the CPU time of the
    encode calls, and writes the file one encode writes; nonsense counts are refused before any file exists."""
    import sys

    import pymars
    from pymars.data.synthetic import mars_like_scene

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from lossless_speed import encode_time, parse_time

    bundle = pymars.open_bundle("base-v2-gray-nl")
    img = mars_like_scene(70, 90, seed=3, channels=1)
    raw = tmp_path / "img.raw"
    raw.write_bytes(img.tobytes())
    args = [str(bundle.blob_path), str(raw), "90", "70", "1", "0"]
    r = subprocess.run([str(cpp_build / "encode_raw"), "--repeat", "3", "--max-error", "0", *args,
                        str(tmp_path / "a.pmrs")], check=True, capture_output=True, text=True)
    assert "encode 3 x: " in r.stdout and parse_time(r.stdout) >= 0.0
    assert (tmp_path / "a.pmrs").read_bytes() == pymars.encode(img, max_error=0, model=bundle)
    # the bench's helper (also its --versus runs): the time and the very bytes of that file
    t, data = encode_time(cpp_build / "encode_raw", ["--repeat", "2", "--max-error", "0", *args], tmp_path / "c.pmrs")
    assert t >= 0.0 and data == (tmp_path / "a.pmrs").read_bytes()
    for bad in ("0", "-2", "1000001"):
        r = subprocess.run([str(cpp_build / "encode_raw"), "--repeat", bad, "--max-error", "0", *args,
                            str(tmp_path / "b.pmrs")], capture_output=True, text=True)
        assert r.returncode == 2 and "usage" in r.stderr and not (tmp_path / "b.pmrs").exists()
