"""The C++ texture matcher (``pymars._core``) against its NumPy oracle.

Specification of docs/texture-matcher.md, checked against
``pymars.texture.oracle`` (written independently in NumPy / Python ints):

* LBP codes and histograms agree *exactly* on random images of many sizes
  (1x1, 2x3, odd, wide), on non-contiguous views and on real Mars images;
* the fixed-point divergences equal the Python-integer twin *exactly* (bit for
  bit), and are within 4e-5 bits of the float definition; the C++ float
  versions equal NumPy's to rounding;
* nearest-neighbour search picks the twin's index (MarsQE Eq. 4 direction,
  ties to the lowest index);
* invariances: riu2 codes are unchanged by rotations by 90 degrees and by
  mirroring, default codes rotate their bits; a constant image fills one bin;
* the golden numbers of csrc/tests/test_texture.cpp (which must hold on every
  CPU, PowerPC included) come out of the NumPy reference as well.

It must not test anything but the matcher, and must not need real data: the
real-image test skips with its reason when ../shared/data/mars is absent.
"""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import pymars.texture
from pymars import _core  # the C++ module must be built: no skip hides a missing core
from pymars.texture import oracle as ref

VARIANTS = ("default", "uniform", "riu2")
SIZES = [(1, 1), (1, 7), (7, 1), (2, 3), (3, 2), (2, 2), (17, 31), (64, 64), (101, 257), (5, 600)]
FIXED_VS_FLOAT_BITS = 4e-5  # texture.h: Q30 rounding against eps = 2^-16, plus the Q16 output rounding


def random_image(rng, h, w, levels=256):
    return rng.integers(0, levels, size=(h, w), dtype=np.uint8)


def random_histograms(rng, n, bins):
    """Count histograms with empty bins, tiny and huge totals, and empty histograms."""
    out = []
    for _ in range(n):
        scale = 1 << int(rng.integers(0, 24))
        h = rng.integers(0, scale, size=bins, dtype=np.int64)
        h[rng.random(bins) < 0.4] = 0
        if rng.random() < 0.05:
            h[:] = 0
        out.append(h.astype(np.uint32))
    return out


# --------------------------------------------------------------------------- documentation


@pytest.mark.parametrize("module", [pymars.texture, ref])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ["lbp_codes", "lbp_histograms", "rgb_to_gray", "kl_divergence", "js_divergence",
                                  "nearest_histogram"])
def test_binding_docstring_examples_run(name):
    runner = doctest.DocTestRunner()
    for t in doctest.DocTestFinder().find(getattr(_core, name), name, globs={}):
        runner.run(t)
    assert runner.tries > 0 and runner.failures == 0


# --------------------------------------------------------------------------- codes and histograms


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("size", SIZES)
def test_codes_equal_the_reference_on_random_images(size, variant):
    rng = np.random.default_rng(size[0] * 1000 + size[1])
    for levels in (2, 5, 256):  # few levels: many ties, which exercise ">="
        img = random_image(rng, *size, levels=levels)
        np.testing.assert_array_equal(_core.lbp_codes(img, variant), ref.lbp_codes(img, variant))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("size", SIZES)
def test_histograms_equal_the_reference_on_random_images(size, variant):
    rng = np.random.default_rng(7 + size[0] * 1000 + size[1])
    img = random_image(rng, *size, levels=9)
    for patch in (0, 1, 4, 16, 300):
        got = _core.lbp_histograms(img, variant, patch=patch)
        want = ref.lbp_histograms(img, variant, patch=patch)
        assert got.dtype == np.uint32 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_partial_patches_keep_their_smaller_pixel_counts():
    h = _core.lbp_histograms(np.zeros((10, 7), np.uint8), "riu2", patch=4)
    assert h.shape == (3, 2, 10)
    assert h.sum(axis=2).tolist() == [[16, 12], [16, 12], [8, 6]]


def test_non_contiguous_views_give_the_codes_of_their_contents():
    rng = np.random.default_rng(3)
    img = random_image(rng, 40, 60)
    for view in (img[:, ::2], img.T, img[5:30, 7:51], img[::-1]):
        np.testing.assert_array_equal(_core.lbp_codes(view, "uniform"),
                                      ref.lbp_codes(np.ascontiguousarray(view), "uniform"))


def test_empty_images_give_empty_codes_and_zero_histograms():
    img = np.zeros((0, 5), np.uint8)
    assert _core.lbp_codes(img).shape == (0, 5)
    assert _core.lbp_histograms(img, "riu2").tolist() == [0] * 10
    assert _core.lbp_histograms(img, "riu2", patch=4).shape == (0, 0, 10)


def test_rgb_to_gray_equals_the_integer_formula():
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, size=(33, 47, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_core.rgb_to_gray(rgb), ref.rgb_to_gray(rgb))
    extremes = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    assert _core.rgb_to_gray(extremes).tolist() == [[0, 255, 77, 149, 29]]


def _real_images(count=3):
    from pymars.evaluation.protocol import load_8bit, mars_data_dir

    root = mars_data_dir()
    if root is None:
        pytest.skip("real Mars images not available: ../shared/data/mars is absent (set PYMARS_SHARED)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        pytest.skip(f"no images under {root}")
    picks = files[:: max(1, len(files) // count)][:count]
    for path in picks:
        img = load_8bit(path)
        yield path.name, (img if img.ndim == 2 else ref.rgb_to_gray(img)), img


def test_codes_and_histograms_equal_the_reference_on_real_mars_images():
    for name, gray, original in _real_images():
        if original.ndim == 3:
            np.testing.assert_array_equal(_core.rgb_to_gray(original), gray, err_msg=name)
        for variant in VARIANTS:
            codes = _core.lbp_codes(gray, variant)
            np.testing.assert_array_equal(codes, ref.lbp_codes(gray, variant), err_msg=f"{name} {variant}")
            np.testing.assert_array_equal(_core.lbp_histograms(gray, variant, patch=64),
                                          ref.lbp_histograms(gray, variant, patch=64), err_msg=f"{name} {variant}")


# --------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (37, 52), (64, 64)])
def test_riu2_codes_are_invariant_to_rotation_and_mirroring(size):
    img = random_image(np.random.default_rng(size[0]), *size, levels=6)
    codes = _core.lbp_codes(img, "riu2")
    hist = _core.lbp_histograms(img, "riu2")
    for k in (1, 2, 3):
        np.testing.assert_array_equal(_core.lbp_codes(np.rot90(img, k), "riu2"), np.rot90(codes, k))
        np.testing.assert_array_equal(_core.lbp_histograms(np.rot90(img, k), "riu2"), hist)
    np.testing.assert_array_equal(_core.lbp_histograms(np.fliplr(img), "riu2"), hist)


def test_default_codes_rotate_their_bits_with_the_image():
    # Neighbours run counter-clockwise from east, so a counter-clockwise quarter
    # turn (np.rot90) moves bit p to bit p + 2.
    img = random_image(np.random.default_rng(9), 23, 41, levels=4)
    codes = _core.lbp_codes(img).astype(np.uint32)
    rotated = ((codes << 2) | (codes >> 6)) & 0xFF
    np.testing.assert_array_equal(_core.lbp_codes(np.rot90(img)), np.rot90(rotated))


@pytest.mark.parametrize("variant,bin_", [("default", 255), ("uniform", 57), ("riu2", 8)])
def test_a_constant_image_fills_a_single_bin(variant, bin_):
    h = _core.lbp_histograms(np.full((13, 9), 77, np.uint8), variant)
    assert h[bin_] == 13 * 9 and h.sum() == 13 * 9


def test_uniform_code_tables_have_58_uniform_patterns():
    uniform = ref.pattern_table("uniform")
    riu2 = ref.pattern_table("riu2")
    assert sorted(set(uniform.tolist())) == list(range(59))
    assert np.count_nonzero(uniform < 58) == 58
    assert np.array_equal(riu2 == 9, uniform == 58)
    # Every pattern through the C++ tables (a 3x3 image per pattern, read at its centre).
    for p in range(256):
        img = np.full((3, 3), 100, np.uint8)
        for bit, (dy, dx) in enumerate(ref.NEIGHBOURS):
            img[1 + dy, 1 + dx] = 150 if (p >> bit) & 1 else 50
        assert _core.lbp_codes(img, "default")[1, 1] == p
        assert _core.lbp_codes(img, "uniform")[1, 1] == uniform[p]
        assert _core.lbp_codes(img, "riu2")[1, 1] == riu2[p]


# --------------------------------------------------------------------------- divergences


@pytest.mark.parametrize("bins", [1, 2, 10, 59, 256, 1000])
def test_fixed_point_divergences_equal_the_integer_twin_exactly(bins):
    rng = np.random.default_rng(bins)
    hists = random_histograms(rng, 24, bins)
    for p, q in zip(hists[::2], hists[1::2]):
        assert _core.kl_divergence(p, q) == ref.kl_divergence_fixed(p, q)
        assert _core.kl_divergence(q, p) == ref.kl_divergence_fixed(q, p)
        assert _core.js_divergence(p, q) == ref.js_divergence_fixed(p, q)


def test_extreme_counts_equal_the_integer_twin():
    big = np.array([2**32 - 1, 0, 1, 2**31], np.uint32)
    small = np.array([0, 1, 0, 0], np.uint32)
    for p, q in [(big, small), (small, big), (big, big), (np.zeros(4, np.uint32), big)]:
        assert _core.kl_divergence(p, q) == ref.kl_divergence_fixed(p, q)
        assert _core.js_divergence(p, q) == ref.js_divergence_fixed(p, q)
    wide = np.full(65536, 2**32 - 1, np.uint32)  # the largest sums the format allows
    wide[::3] = 0
    assert _core.js_divergence(wide, wide[::-1].copy()) == ref.js_divergence_fixed(wide, wide[::-1])


@pytest.mark.parametrize("bins", [2, 10, 59, 256])
def test_fixed_point_is_within_4e5_bits_of_the_float_definition(bins):
    rng = np.random.default_rng(100 + bins)
    hists = random_histograms(rng, 60, bins)
    for p, q in zip(hists[::2], hists[1::2]):
        for fixed_fn, float_fn in ((_core.kl_divergence, ref.kl_divergence), (_core.js_divergence, ref.js_divergence)):
            assert abs(fixed_fn(p, q) / 65536 - float_fn(p, q)) <= FIXED_VS_FLOAT_BITS


@pytest.mark.parametrize("bins", [10, 256])
def test_cpp_float_divergences_equal_numpy(bins):
    rng = np.random.default_rng(200 + bins)
    hists = random_histograms(rng, 20, bins)
    for p, q in zip(hists[::2], hists[1::2]):
        assert _core.kl_divergence(p, q, fixed=False) == pytest.approx(ref.kl_divergence(p, q), rel=1e-9, abs=1e-12)
        assert _core.js_divergence(p, q, fixed=False) == pytest.approx(ref.js_divergence(p, q), rel=1e-9, abs=1e-12)


def test_divergence_values_follow_the_definition():
    assert _core.kl_divergence([3, 1, 0], [30, 10, 0]) == 0  # same distribution
    assert _core.js_divergence([1, 0], [0, 1]) == _core.js_divergence([0, 1], [1, 0]) <= 65536
    assert _core.kl_divergence([0, 0, 0], [5, 5, 5]) == 0  # an empty histogram is uniform
    assert 16 * 65536 - 200 < _core.kl_divergence([1, 0], [0, 1]) < 16 * 65536  # eps = 2^-16 caps the cost


# --------------------------------------------------------------------------- nearest neighbour


@pytest.mark.parametrize("metric", ["kl", "js"])
def test_nearest_equals_the_reference(metric):
    rng = np.random.default_rng(5)
    for _ in range(10):
        dictionary = np.stack(random_histograms(rng, 12, 10))
        query = random_histograms(rng, 1, 10)[0]
        got = _core.nearest_histogram(query, dictionary, metric)
        assert got == ref.nearest_histogram_fixed(query, dictionary, metric)
        index, div = _core.nearest_histogram(query, dictionary, metric, fixed=False)
        want_index, want_div = ref.nearest_histogram(query, dictionary, metric)
        assert div == pytest.approx(want_div, rel=1e-9, abs=1e-12)
        assert index == want_index
        # The fixed-point choice is a float-optimal one up to the stated tolerance.
        assert abs(got[1] / 65536 - want_div) <= FIXED_VS_FLOAT_BITS


def test_nearest_uses_the_reference_as_the_first_kl_argument():
    # MarsQE Eq. 4: argmin_i D_KL(LBP(reference_i) || LBP(query)). Reference 0
    # has mass where the query has none; reference 1 does not: the directions differ.
    query = np.array([50, 50, 0])
    dictionary = np.array([[40, 40, 20], [90, 10, 0]])
    index, div = _core.nearest_histogram(query, dictionary, "kl")
    assert index == 1 and div == _core.kl_divergence(dictionary[1], query)
    assert _core.kl_divergence(query, dictionary[0]) < _core.kl_divergence(query, dictionary[1])


def test_nearest_ties_go_to_the_lowest_index():
    dictionary = np.array([[1, 9], [2, 8], [20, 80], [2, 8]])
    assert _core.nearest_histogram([2, 8], dictionary, "kl") == (1, 0)
    assert _core.nearest_histogram([2, 8], dictionary, "js") == (1, 0)


def test_real_patches_match_their_own_texture():
    # A patch's descriptor is nearest to itself among the image's patches.
    for name, gray, _ in _real_images(count=1):
        hists = _core.lbp_histograms(gray[:512, :512], "uniform", patch=64).reshape(-1, 59)
        for i in (0, len(hists) // 2, len(hists) - 1):
            assert _core.nearest_histogram(hists[i], hists, "kl")[0] == i, name


# --------------------------------------------------------------------------- golden values


def _splitmix_image(seed, h, w):
    """The golden image of csrc/tests/test_texture.cpp (check.h's splitmix64 TestRng)."""
    mask = (1 << 64) - 1
    state = seed
    img = np.zeros((h, w), np.uint8)
    for y in range(h):
        for x in range(w):
            state = (state + 0x9E3779B97F4A7C15) & mask
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
            img[y, x] = (3 * x + 5 * y + (z ^ (z >> 31)) % 48) & 255
    return img


def _fnv1a(counts):
    h = 2166136261
    for b in np.asarray(counts, "<u4").tobytes():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def test_golden_values_match_the_cpp_test():
    img = _splitmix_image(2024, 53, 71)
    for impl in (ref, _core):
        all_ = impl.lbp_histograms(img, "default", 16)
        uni = impl.lbp_histograms(img, "uniform", 16)
        riu = impl.lbp_histograms(img, "riu2")
        riu_patches = impl.lbp_histograms(img, "riu2", 16).reshape(-1, 10)
        assert (_fnv1a(all_), _fnv1a(uni), _fnv1a(riu)) == (0x4FE47798, 0x57A83A6A, 0x49520696)
    assert ref.kl_divergence_fixed(uni[0, 0], uni[3, 4]) == _core.kl_divergence(uni[0, 0], uni[3, 4]) == 191641
    assert ref.js_divergence_fixed(all_[0, 0], all_[1, 2]) == _core.js_divergence(all_[0, 0], all_[1, 2]) == 21523
    assert ref.nearest_histogram_fixed(riu, riu_patches) == _core.nearest_histogram(riu, riu_patches) == (8, 337)


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_instead_of_guessing():
    img = np.zeros((4, 4), np.uint8)
    with pytest.raises(TypeError):
        _core.lbp_codes(img.astype(np.float32))  # never a silent cast to uint8
    with pytest.raises(TypeError):
        _core.lbp_codes(img.astype(np.uint16))
    with pytest.raises(ValueError):
        _core.lbp_codes(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="variant"):
        _core.lbp_histograms(img, "rotation")
    with pytest.raises(ValueError, match="patch"):
        _core.lbp_histograms(img, "riu2", patch=-1)
    with pytest.raises(ValueError):
        _core.rgb_to_gray(img)
    with pytest.raises(ValueError):
        _core.kl_divergence([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        _core.kl_divergence([1, -2], [1, 2])
    with pytest.raises(ValueError):
        _core.js_divergence([2**32, 0], [1, 2])
    with pytest.raises(TypeError):
        _core.kl_divergence([0.5, 0.5], [1, 2])
    with pytest.raises(ValueError, match="bins"):
        _core.kl_divergence(np.array([], np.uint32), np.array([], np.uint32))
    with pytest.raises(ValueError, match="empty"):
        _core.nearest_histogram([1, 2], np.zeros((0, 2), np.uint32))
    with pytest.raises(ValueError, match="bins"):
        _core.nearest_histogram([1, 2], np.ones((3, 4), np.uint32))
    with pytest.raises(ValueError, match="metric"):
        _core.nearest_histogram([1, 2], np.ones((3, 2), np.uint32), "l2")
