"""The Python binding runs the core's encoder orchestration (csrc/core/encoder.h), not a copy of it.

* the parameter ranges are the core's (pymars._core.MIN_QUALITY ... TILE_SIZE_STEP, from limits.h)
  and the binding refuses exactly what lies outside them;
* rate control (encode_to_target) is the binary search of the C API's marsenc_encode_to_size over
  the sizes of single-quality encodes, and writes that quality's bytes, whatever the thread count
  and also when the chosen quality is near-lossless (a model with learned and sample-coded qualities);
* open_file parses a file's header once; its decode_stream decodes what DecodeStream decodes.
"""
from __future__ import annotations

import numpy as np
import pytest


def test_core_exports_the_limits(tiny_bundle, scene_rgb):
    from pymars import _core

    assert (_core.MIN_QUALITY, _core.MAX_QUALITY) == (1, 100)
    assert _core.MAX_SIDE == 65535
    assert (_core.MIN_TILE_SIZE, _core.MAX_TILE_SIZE, _core.TILE_SIZE_STEP) == (16, 4096, 16)
    img = scene_rgb[:40, :40]
    core = tiny_bundle.core
    for q in (_core.MIN_QUALITY, _core.MAX_QUALITY):
        assert _core.encode(core, img, q, _core.MIN_TILE_SIZE)[:4] == b"PMRS"
    assert _core.encode(core, img, 50, _core.MAX_TILE_SIZE)[:4] == b"PMRS"
    for q in (_core.MIN_QUALITY - 1, _core.MAX_QUALITY + 1):
        with pytest.raises(ValueError, match="quality must be in 1..100"):
            _core.encode(core, img, q, 64)
    for t in (_core.MIN_TILE_SIZE - _core.TILE_SIZE_STEP, _core.MAX_TILE_SIZE + _core.TILE_SIZE_STEP,
              _core.MIN_TILE_SIZE + 1):
        with pytest.raises(ValueError, match="tile size must be a multiple of 16"):
            _core.encode(core, img, 50, t)


def _expected_quality(size_at, target):
    """The search of encoder.h's search_quality(), stated independently."""
    if size_at(1) > target:
        return None
    lo, hi = 1, 100
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size_at(mid) <= target:
            lo = mid
        else:
            hi = mid - 1
    return lo


@pytest.mark.parametrize("bundle_name", ["tiny", "base-v1-nl"])
def test_rate_control_is_the_search_over_single_quality_encodes(tiny_bundle, scene_rgb, bundle_name):
    import pymars
    from pymars import _core

    bundle = tiny_bundle if bundle_name == "tiny" else pymars.open_bundle(bundle_name)
    if not bundle.available:
        pytest.skip(f"{bundle_name} is not installed")
    core, img = bundle.core, scene_rgb[:130, :150]
    files = {}

    def size_at(q):
        if q not in files:
            files[q] = _core.encode(core, img, q, 64)
        return len(files[q])

    targets = [size_at(1), size_at(1) + 1, (size_at(1) + size_at(70)) // 2, size_at(70), size_at(100) - 1, 10**9]
    for target in targets:
        want = _expected_quality(size_at, target)
        for threads in (1, 3):
            data, quality = _core.encode_to_target(core, img, target, 64, threads=threads)
            assert quality == want and data == files[want], (target, threads)
    if bundle_name != "tiny":  # the chosen quality of the largest targets is near-lossless
        assert core.near_lossless_error(_expected_quality(size_at, 10**9)) is not None
    with pytest.raises(ValueError, match=f"target_bytes too small: quality 1 needs {size_at(1)} bytes"):
        _core.encode_to_target(core, img, size_at(1) - 1, 64)


def test_open_file_parses_the_header_once_and_decodes_like_decode_stream(tiny_bundle, scene_rgb):
    import pymars
    from pymars import _core

    core = tiny_bundle.core
    data = pymars.encode(scene_rgb, 50, tile_size=64, model=tiny_bundle)
    f = _core.open_file(data)
    assert f.header == _core.parse_file_header(data[:48])
    a, b = f.decode_stream(core), _core.DecodeStream(core, data)
    assert a.header == b.header and a.summary == b.summary
    n = a.header["tile_count"]
    for ta, tb in zip(a.decode(0, n, threads=2), b.decode(0, n)):
        assert ta["status"] == tb["status"] == "ok"
        np.testing.assert_array_equal(ta["y_hat"], tb["y_hat"])
    # The header's errors are parse_file_header's; the model / library checks are DecodeStream's.
    for bad in (b"garbage", data[:30], b"PMRX" + data[4:]):
        with pytest.raises(ValueError) as e1:
            _core.parse_file_header(bad[:48])
        with pytest.raises(ValueError) as e2:
            _core.open_file(bad)
        assert str(e1.value) == str(e2.value)
    other = pymars.open_bundle("base-v1")
    if other.available:
        with pytest.raises(ValueError, match="different model"):
            f.decode_stream(other.core)
    with pytest.raises(ValueError, match="library"):
        f.decode_stream(core, library_hash=b"12345678")
