"""Byte-identical files on aarch64 and 32-bit big-endian PowerPC (the short CI subset).

The C example (csrc/examples/encode_raw.c) is cross-built with Debian's gcc
cross compilers (cmake/toolchains/) and run under qemu-user; its files must be
the bytes that pymars.encode writes on this x86-64 machine, whole and with
tile-row streaming, for 8-bit RGB and 16-bit gray input. Skipped where the
cross compilers or qemu are not installed (apt-get install -y
g++-aarch64-linux-gnu g++-powerpc-linux-gnu qemu-user). The long check is
scripts/cross_arch_check.sh (more images, the shipped model, --ctest).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "aarch64": ("aarch64-linux-gnu.cmake", "aarch64-linux-gnu-g++", "qemu-aarch64"),
    "ppc": ("powerpc-linux-gnu.cmake", "powerpc-linux-gnu-g++", "qemu-ppc"),
}


@pytest.fixture(scope="module", params=sorted(TARGETS))
def cross_encoder(request, tmp_path_factory):
    toolchain, compiler, emulator = TARGETS[request.param]
    missing = [t for t in (compiler, emulator, "cmake") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"cross-architecture tools not installed: {', '.join(missing)}")
    build = tmp_path_factory.mktemp(f"cross-{request.param}")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DCMAKE_BUILD_TYPE=Release",
                    "-DPYMARS_BUILD_TESTS=OFF", f"-DCMAKE_TOOLCHAIN_FILE={ROOT / 'cmake' / 'toolchains' / toolchain}"],
                   check=True, capture_output=True)
    jobs = os.environ.get("PYMARS_BUILD_JOBS", "2")
    subprocess.run(["cmake", "--build", str(build), f"-j{jobs}", "--target", "encode_raw"], check=True,
                   capture_output=True)
    return emulator, build / "encode_raw"


@pytest.mark.parametrize("mode", ["whole", "stream"])
def test_cross_built_encoder_writes_the_x86_bytes(cross_encoder, tiny_bundle, tmp_path, scene_rgb, scene_gray, mode):
    import pymars

    emulator, exe = cross_encoder
    ramp = np.arange(scene_gray.size, dtype=np.uint16).reshape(scene_gray.shape) % 251
    gray16 = scene_gray.astype(np.uint16) * 256 + ramp  # low bits set, at most 65530
    cases = [(scene_rgb, 8, 61, 64), (gray16, 16, 33, 32)]
    for image, bits, quality, tile in cases:
        raw = tmp_path / f"img{bits}.raw"
        raw.write_bytes(image.astype("<u2").tobytes() if bits > 8 else image.tobytes())
        out = tmp_path / f"out{bits}.pmrs"
        h, w = image.shape[:2]
        c = 1 if image.ndim == 2 else image.shape[2]
        flags = ["--stream"] if mode == "stream" else []
        subprocess.run([emulator, str(exe), *flags, "--bits", str(bits), str(tiny_bundle.blob_path), str(raw), str(w),
                        str(h), str(c), str(quality), str(out), str(tile)], check=True, capture_output=True)
        expected = pymars.encode(image, quality, tile_size=tile, bit_depth=bits, model=tiny_bundle)
        assert out.read_bytes() == expected, f"{exe.parent.name}: {bits}-bit image differs ({mode})"


def test_cross_built_encoder_with_references_writes_the_x86_bytes(cross_encoder, tiny_remac, remac_library, tmp_path,
                                                                   scene_rgb):
    """REMAC: reference selection (float analysis -> integer descriptor, LBP/KL) and the reference branch
    of the integer h_s give the same bytes on every CPU."""
    import pymars

    emulator, exe = cross_encoder
    bundle = tiny_remac[0]
    lib = tmp_path / "lib.pmrl"
    remac_library.save(lib)
    raw = tmp_path / "img.raw"
    raw.write_bytes(scene_rgb.tobytes())
    h, w, c = scene_rgb.shape
    out = tmp_path / "out.pmrs"
    subprocess.run([emulator, str(exe), "--refs", str(lib), str(bundle.blob_path), str(raw), str(w), str(h), str(c),
                    "47", str(out), "64"], check=True, capture_output=True)
    expected = pymars.encode(scene_rgb, 47, tile_size=64, model=bundle, refs=remac_library)
    assert out.read_bytes() == expected, f"{exe.parent.name}: REMAC file differs"


def _assert_cross_bytes(cross_encoder, bundle, image, qualities, tmp_path, what, flags=()):
    """Encode `image` (tiles 64) with the cross-built C API encoder under qemu; compare with x86-64's bytes."""
    import pymars

    emulator, exe = cross_encoder
    raw = tmp_path / "img.raw"
    raw.write_bytes(image.tobytes())
    h, w, c = image.shape
    for quality in qualities:
        out = tmp_path / f"out{quality}.pmrs"
        subprocess.run([emulator, str(exe), *flags, str(bundle.blob_path), str(raw), str(w), str(h), str(c),
                        str(quality), str(out), "64"], check=True, capture_output=True)
        expected = pymars.encode(image, quality, tile_size=64, model=bundle)
        assert out.read_bytes() == expected, f"{exe.parent.name} {' '.join(flags)}: {what} q{quality} differs"


def _with_outliers(scene):
    noisy = scene.copy()
    noisy[::7, ::5] ^= 0x55  # isolated outliers: escapes, large errors and large coefficients
    return noisy


def test_cross_built_encoder_writes_the_x86_bytes_at_range_coded_near_lossless_qualities(
        cross_encoder, tiny_bundle, tmp_path_factory, tmp_path, scene_rgb):
    """Near-lossless tiles (§4.8: integer modelling, range coder, channel-difference prediction) on every CPU."""
    import pymars
    from pymars.train.export.bundle_writer import derive_bundle

    root = tmp_path_factory.mktemp("rc") / "tiny-rc"
    derive_bundle(tiny_bundle.root, root, tile_means=False, nl_from_quality=90, nl_max_error=10, nl_coder="arith")
    _assert_cross_bytes(cross_encoder, pymars.open_bundle(str(root)), _with_outliers(scene_rgb), (90, 97, 100),
                        tmp_path, "near-lossless")


def test_cross_built_encoder_writes_the_x86_bytes_with_arith2(cross_encoder, tiny_bundle, tmp_path_factory, tmp_path,
                                                               scene_rgb):
    """Arith2 tiles (§4.8 "Arith2": trained priors, mixed bins, no bias below k = 3) on every CPU."""
    import numpy as np

    import pymars
    from pymars import _core
    from pymars.train.export.bundle_writer import derive_bundle

    rng = np.random.default_rng(0)
    priors = rng.integers(200, 32500, (3, _core.NL_K_CLASSES, _core.NL_CONTEXTS, _core.NL_BINS)).astype(np.uint16)
    root = tmp_path_factory.mktemp("a2") / "tiny-a2"
    derive_bundle(tiny_bundle.root, root, tile_means=False, nl_from_quality=90, nl_max_error=10, nl_coder="arith2",
                  nl_priors=priors)
    bundle = pymars.open_bundle(str(root))
    _assert_cross_bytes(cross_encoder, bundle, _with_outliers(scene_rgb), (90, 97, 99, 100), tmp_path, "Arith2")
    # A raw-like colour frame (per-channel gain and noise): tiles of form 4, the fitted gains with fitted linear
    # predictors for channel 0 and both colour planes (double-precision solves: the same bytes on every CPU).
    f = scene_rgb[..., 0].astype(np.float64)
    raw = np.stack([f, 0.78 * f + 6, 0.55 * f + 10], -1) + rng.normal(0, 1.5, f.shape + (3,))
    raw = np.clip(np.round(raw), 0, 255).astype(np.uint8)
    data = pymars.encode(raw, 100, tile_size=64, model=bundle)
    head = _core.parse_file_header(data)
    forms = {data[off] for off, _ in _core.scan_tile_records(data, head["header_length"], head["tile_count"])}
    assert 4 in forms, forms
    _assert_cross_bytes(cross_encoder, bundle, raw, (95, 100), tmp_path, "Arith2 with gains")


@pytest.mark.parametrize("mode", ["whole", "stream"])
def test_cross_built_encoder_writes_the_x86_bytes_at_wavelet_qualities(
        cross_encoder, tiny_bundle, tmp_path_factory, tmp_path, scene_rgb, mode):
    """Wavelet tiles (§4.9: integer lifting, rate-distortion choice of levels, priors, range coder, finer steps
    at seams) on every CPU, whole images and tile rows streamed (a strip must know its seams)."""
    import pymars
    from pymars.train.codec.wavelet_priors import count_bins, priors_from_counts
    from pymars.train.export.bundle_writer import derive_bundle

    root = tmp_path_factory.mktemp("wv") / "tiny-wv"
    priors = priors_from_counts(count_bins([scene_rgb[:64, :64]], 3))
    derive_bundle(tiny_bundle.root, root, tile_means=False, wavelet_priors=priors, wv_from_quality=1,
                  wv_max_step=120.0, wv_min_step=1.0, nl_from_quality=100, nl_max_error=0, nl_coder="arith")
    _assert_cross_bytes(cross_encoder, pymars.open_bundle(str(root)), _with_outliers(scene_rgb), (1, 50, 99),
                        tmp_path, "wavelet", ["--stream"] if mode == "stream" else [])
