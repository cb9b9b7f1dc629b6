"""The straightforward NumPy reference of the texture matcher (the test oracle).

What it is for: an independent, readable statement of every definition in
docs/texture-matcher.md, against which the C++ matcher (``pymars._core``,
csrc/core/texture.cpp) is tested:

* LBP codes by padding the image (edge replication) and comparing eight
  shifted copies, histograms with ``np.bincount``, RGB to gray with the same
  integer formula, float (double) KL / Jensen-Shannon divergences and
  nearest-neighbour search;
* a pure Python-integer twin of the fixed-point divergences (same Q30
  probabilities, same compile-time log2 table, same rounding), which must
  agree with the C++ result exactly, bit for bit.

What it must not do: be used on the rover or in any code path whose result
reaches a bitstream (it is slow, and its float functions depend on libm), or
share code with the C++ implementation: its tables are built here by a
different construction so that a mistake in one does not hide in the other.

Example:
    >>> import numpy as np
    >>> gray = np.array([[10, 20], [30, 40]], np.uint8)
    >>> lbp_codes(gray, "default").tolist()
    [[255, 231], [241, 193]]
    >>> lbp_histograms(gray, "riu2").tolist()
    [0, 0, 0, 1, 0, 1, 1, 0, 1, 0]
"""
from __future__ import annotations

import numpy as np

# (dy, dx) of bit p, counter-clockwise from east; rows grow downwards.
NEIGHBOURS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))
BINS = {"default": 256, "uniform": 59, "riu2": 10}

PROBABILITY_BITS = 30  # Q30 probabilities
EPSILON_LOG2 = 16  # eps = 2^-16 added to every normalised bin
FRACTION_BITS = 16  # fixed-point results are bits in Q16
MAX_BINS = 65536


# --------------------------------------------------------------------------- LBP


def _bits(pattern: int) -> list[int]:
    return [(pattern >> p) & 1 for p in range(8)]


def _is_uniform(pattern: int) -> bool:
    b = _bits(pattern)
    return sum(b[p] != b[(p + 1) % 8] for p in range(8)) <= 2


def pattern_table(variant: str) -> np.ndarray:
    """The code of each of the 256 8-bit patterns under a variant (uint8, 256).

    Uniform order: 0x00 -> 0, a circular run of k ones starting at bit r -> 1 + 8(k-1) + r,
    0xFF -> 57, non-uniform -> 58. riu2: the number of ones of a uniform pattern, else 9.

    Example:
        >>> t = pattern_table("uniform")
        >>> int(t[0]), int(t[1]), int(t[0b10000000]), int(t[0b10000001]), int(t[255]), int(t[0b101])
        (0, 1, 8, 16, 57, 58)
        >>> int(pattern_table("riu2")[0b00111000]), int(pattern_table("riu2")[0b101])
        (3, 9)
    """
    if variant == "default":
        return np.arange(256, dtype=np.uint8)
    if variant == "riu2":
        return np.array([bin(p).count("1") if _is_uniform(p) else 9 for p in range(256)], np.uint8)
    if variant == "uniform":
        # Built by enumerating the runs (the C++ searches each pattern's run start instead).
        table = np.full(256, 58, np.uint8)
        table[0], table[255] = 0, 57
        for k in range(1, 8):
            run = (1 << k) - 1
            for r in range(8):
                table[((run << r) | (run >> (8 - r))) & 0xFF] = 1 + 8 * (k - 1) + r
        return table
    raise ValueError(f"unknown LBP variant {variant!r}; expected one of {sorted(BINS)}")


def lbp_codes(gray: np.ndarray, variant: str = "default") -> np.ndarray:
    """LBP codes of a gray uint8 image (H, W), edge-replicated borders.

    Example:
        >>> lbp_codes(np.full((2, 3), 7, np.uint8), "riu2").tolist()
        [[8, 8, 8], [8, 8, 8]]
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("gray must be a 2-D uint8 array")
    table = pattern_table(variant)
    h, w = gray.shape
    if h == 0 or w == 0:
        return np.zeros((h, w), np.uint8)
    padded = np.pad(gray, 1, mode="edge")
    pattern = np.zeros((h, w), np.uint16)
    for p, (dy, dx) in enumerate(NEIGHBOURS):
        neighbour = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        pattern |= (neighbour >= gray).astype(np.uint16) << p
    return table[pattern]


def patch_grid(height: int, width: int, patch: int) -> tuple[int, int]:
    """(patches_y, patches_x): ceil divisions; patch 0 is one whole-image patch.

    Example:
        >>> patch_grid(10, 7, 4), patch_grid(10, 7, 0), patch_grid(0, 7, 4)
        ((3, 2), (1, 1), (0, 0))
    """
    if height == 0 or width == 0:
        return 0, 0
    if patch == 0:
        return 1, 1
    return -(-height // patch), -(-width // patch)


def lbp_histograms(gray: np.ndarray, variant: str = "default", patch: int = 0) -> np.ndarray:
    """uint32 LBP histograms: (bins,) for patch 0, else (patches_y, patches_x, bins).

    Partial patches at the right and bottom edges are kept (fewer pixels).

    Example:
        >>> h = lbp_histograms(np.zeros((5, 3), np.uint8), "riu2", patch=2)
        >>> h.shape, h[:, :, 8].tolist()
        ((3, 2, 10), [[4, 2], [4, 2], [2, 1]])
    """
    codes = lbp_codes(gray, variant)
    bins = BINS[variant]
    h, w = codes.shape
    py, px = patch_grid(h, w, patch)
    if patch == 0:
        if py == 0:
            return np.zeros(bins, np.uint32)
        return np.bincount(codes.ravel(), minlength=bins).astype(np.uint32)
    out = np.zeros((py, px, bins), np.uint32)
    for j in range(py):
        for i in range(px):
            block = codes[j * patch : (j + 1) * patch, i * patch : (i + 1) * patch]
            out[j, i] = np.bincount(block.ravel(), minlength=bins)
    return out


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """Gray = (77 R + 150 G + 29 B + 128) >> 8 from (H, W, 3) uint8.

    Example:
        >>> rgb_to_gray(np.array([[[255, 255, 255], [255, 0, 0], [0, 0, 0]]], np.uint8)).tolist()
        [[255, 77, 0]]
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("rgb must be an (H, W, 3) uint8 array")
    c = rgb.astype(np.uint32)
    return ((77 * c[..., 0] + 150 * c[..., 1] + 29 * c[..., 2] + 128) >> 8).astype(np.uint8)


# --------------------------------------------------------------------------- float divergences


def smoothed(counts: np.ndarray) -> np.ndarray:
    """The smoothed distribution (c/N + eps) / (1 + bins eps), eps = 2^-16 (uniform if N = 0).

    Example:
        >>> smoothed(np.array([0, 0])).tolist()
        [0.5, 0.5]
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.sum() == 0:
        return np.full(c.size, 1.0 / c.size)
    eps = 2.0**-EPSILON_LOG2
    return (c / c.sum() + eps) / (1.0 + c.size * eps)


def kl_divergence(p, q) -> float:
    """D_KL(p || q) in bits of the smoothed count histograms (float).

    Example:
        >>> kl_divergence([5, 5], [5, 5])
        0.0
        >>> round(kl_divergence([1, 0], [1, 1]), 4)
        0.9997
    """
    a, b = smoothed(p), smoothed(q)
    return max(0.0, float(np.sum(a * np.log2(a / b))))


def js_divergence(p, q) -> float:
    """Jensen-Shannon divergence in bits (at most 1) of the smoothed histograms (float).

    Example:
        >>> round(js_divergence([1, 0], [0, 1]), 4)
        0.9997
    """
    a, b = smoothed(p), smoothed(q)
    m = 0.5 * (a + b)
    return max(0.0, float(0.5 * np.sum(a * np.log2(a / m)) + 0.5 * np.sum(b * np.log2(b / m))))


def nearest_histogram(query, dictionary, metric: str = "kl") -> tuple[int, float]:
    """(index, divergence) minimising D(dictionary[i] || query) (MarsQE Eq. 4); ties -> lowest index.

    Example:
        >>> nearest_histogram([9, 1], [[1, 9], [8, 2], [9, 1]])
        (2, 0.0)
    """
    fn = {"kl": kl_divergence, "js": js_divergence}[metric]
    d = [fn(ref, query) for ref in np.asarray(dictionary)]
    best = int(np.argmin(d))  # argmin returns the first minimum
    return best, d[best]


# --------------------------------------------------------------------------- fixed-point twin


def _log2_q24_of_q31(m: int) -> int:
    """log2(m / 2^31) in Q24 for m in [2^31, 2^32] by repeated squaring (truncating)."""
    y = 0
    if m >= 1 << 32:
        m >>= 1
        y = 1 << 24
    for bit in range(23, -1, -1):
        m = (m * m) >> 31
        if m >= 1 << 32:
            m >>= 1
            y |= 1 << bit
    return y


LOG2_TABLE_BITS = 10  # 1024 interpolation intervals
LOG2_TABLE = tuple(
    _log2_q24_of_q31(((1 << LOG2_TABLE_BITS) + j) << (31 - LOG2_TABLE_BITS)) for j in range((1 << LOG2_TABLE_BITS) + 1)
)


def fixed_log2_q24(x: int) -> int:
    """log2(x) in Q24, the integer algorithm of csrc/core/texture.cpp (0 for x == 0).

    Example:
        >>> fixed_log2_q24(1), fixed_log2_q24(1024) == 10 << 24
        (0, True)
        >>> abs(fixed_log2_q24(3) / 2**24 - 1.5849625) < 1e-6
        True
    """
    if x <= 0:
        return 0
    k = x.bit_length() - 1
    m = (x >> (k - 31)) if k >= 31 else (x << (31 - k))
    pos_bits = 31 - LOG2_TABLE_BITS
    frac = m - (1 << 31)
    j, r = frac >> pos_bits, frac & ((1 << pos_bits) - 1)
    lo = LOG2_TABLE[j]
    return (k << 24) + lo + (((LOG2_TABLE[j + 1] - lo) * r) >> pos_bits)


def _smoothed_q30(counts) -> list[int]:
    """round(c 2^30 / N) + 2^14 per bin; an empty histogram counts one in every bin."""
    c = [int(v) for v in np.asarray(counts).ravel()]
    if not 1 <= len(c) <= MAX_BINS or min(c) < 0 or max(c) >= 1 << 32:
        raise ValueError("histograms need 1..65536 bins of uint32 counts")
    n = sum(c)
    if n == 0:
        c, n = [1] * len(c), len(c)
    eps = 1 << (PROBABILITY_BITS - EPSILON_LOG2)
    return [(((v << PROBABILITY_BITS) + n // 2) // n) + eps for v in c]


def _quotient(sp: int, sn: int, s: int) -> int:
    """(sp - sn) / s truncated towards zero, as the C++ writes it."""
    return (sp - sn) // s if sp >= sn else -((sn - sp) // s)


def _kl_q24(a: list[int], b: list[int]) -> int:
    sa, sb = sum(a), sum(b)
    sp = sum(x * fixed_log2_q24(x) for x in a)
    sn = sum(x * fixed_log2_q24(y) for x, y in zip(a, b))
    return _quotient(sp, sn, sa) - fixed_log2_q24(sa) + fixed_log2_q24(sb)


def kl_divergence_fixed(p, q) -> int:
    """D_KL(p || q) in bits, Q16, exactly as the C++ fixed-point code computes it.

    Example:
        >>> kl_divergence_fixed([5, 5], [5, 5])
        0
        >>> kl_divergence_fixed([1, 0], [1, 1]), kl_divergence_fixed([1, 0], [1, 1]) / 65536
        (65519, 0.9997406005859375)
    """
    a, b = _smoothed_q30(p), _smoothed_q30(q)
    if len(a) != len(b):
        raise ValueError("histograms differ in length")
    d = _kl_q24(a, b)
    return 0 if d <= 0 else (d + 128) >> 8


def js_divergence_fixed(p, q) -> int:
    """Jensen-Shannon divergence in bits, Q16, exactly as the C++ computes it.

    The mixture is M_i = A_i + B_i over S_A + S_B (the two Q30 totals differ by a
    few units at most, so this is (a + b) / 2 up to rounding).

    Example:
        >>> js_divergence_fixed([1, 0], [0, 1])
        65519
    """
    a, b = _smoothed_q30(p), _smoothed_q30(q)
    if len(a) != len(b):
        raise ValueError("histograms differ in length")
    m = [x + y for x, y in zip(a, b)]
    sa, sb = sum(a), sum(b)
    lsm = fixed_log2_q24(sa + sb)
    kla = _quotient(sum(x * fixed_log2_q24(x) for x in a), sum(x * fixed_log2_q24(z) for x, z in zip(a, m)), sa)
    klb = _quotient(sum(y * fixed_log2_q24(y) for y in b), sum(y * fixed_log2_q24(z) for y, z in zip(b, m)), sb)
    d2 = kla - fixed_log2_q24(sa) + lsm + klb - fixed_log2_q24(sb) + lsm
    return 0 if d2 <= 0 else (d2 + 256) >> 9


def nearest_histogram_fixed(query, dictionary, metric: str = "kl") -> tuple[int, int]:
    """(index, Q16 divergence) of the fixed-point matcher; ties -> lowest index.

    Example:
        >>> nearest_histogram_fixed([9, 1], [[1, 9], [9, 1], [9, 1]])
        (1, 0)
    """
    fn = {"kl": kl_divergence_fixed, "js": js_divergence_fixed}[metric]
    d = [fn(ref, query) for ref in np.asarray(dictionary)]
    best = min(range(len(d)), key=lambda i: (d[i], i))
    return best, d[best]
