"""Build the integer CDF tables stored in the weight blob (docs/model-blob.md).

Tables are made once, at export, from float densities; the coder only ever sees
the integers, so encoder and decoder cannot disagree about a probability.
Every table has a half-width R, symbols for the values -R..R and an escape
symbol holding the tail mass; every symbol keeps a count >= 1 so that any value
stays codable.

Example:
    >>> t = gaussian_table(1.0)
    >>> int(t.cdf[0]), int(t.cdf[-1]), t.half_width
    (0, 65536, 6)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PRECISION = 16
TOTAL = 1 << PRECISION
TAIL_MASS = 1e-9
MAX_HALF_WIDTH = 2047


@dataclass(frozen=True)
class CdfTable:
    """An integer CDF: ``cdf`` has 2R+3 entries, 0 .. 65536; symbol 2R+1 is the escape."""

    half_width: int
    cdf: np.ndarray  # uint32

    @property
    def freqs(self) -> np.ndarray:
        return np.diff(self.cdf.astype(np.int64))

    def code_length_bits(self, value: int) -> float:
        """Bits to code ``value`` with this table (escape bits included).

        Example:
            >>> round(gaussian_table(1.0).code_length_bits(0), 2)
            1.38
        """
        r = self.half_width
        f = self.freqs
        if -r <= value <= r:
            return PRECISION - math.log2(f[value + r])
        u = 2 * (value - r - 1) if value > r else 2 * (-value - r - 1) + 1
        n = (u + 1).bit_length() - 1
        return PRECISION - math.log2(f[2 * r + 1]) + 5 + n


def quantize_pmf(pmf: np.ndarray) -> np.ndarray:
    """Integer counts summing to 65536, each >= 1, close to ``pmf`` (float, sums to ~1).

    Counts are ``max(1, floor(p * T))`` for the largest T that keeps the sum
    <= 65536; the rest goes to the largest remainders (docs/model-blob.md).

    Example:
        >>> c = quantize_pmf(np.array([0.5, 0.25, 0.25, 0.0]))
        >>> int(c.sum()), int(c.min()) >= 1
        (65536, True)
    """
    p = np.asarray(pmf, np.float64)
    if p.ndim != 1 or len(p) < 2 or len(p) > TOTAL or not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("pmf must be a finite, non-negative vector of 2..65536 entries")
    p = p / p.sum()

    def counts(t: float) -> np.ndarray:
        return np.maximum(1, np.floor(p * t)).astype(np.int64)

    lo, hi = 0.0, float(TOTAL)
    for _ in range(100):  # bisection on T: the sum is monotone in T
        mid = 0.5 * (lo + hi)
        if counts(mid).sum() <= TOTAL:
            lo = mid
        else:
            hi = mid
    c = counts(lo)
    rest = TOTAL - int(c.sum())
    if rest > 0:
        remainder = p * lo - np.floor(p * lo)
        remainder[np.floor(p * lo) < 1] = p[np.floor(p * lo) < 1] * lo - 1  # floored up to 1 already
        order = np.lexsort((np.arange(len(p)), -remainder))
        c[order[:rest]] += 1
    assert c.sum() == TOTAL and c.min() >= 1
    return c


def table_from_pmf(values_pmf: np.ndarray, tail: float) -> CdfTable:
    """A table from the pmf of values -R..R (length 2R+1) plus the tail mass.

    Example:
        >>> table_from_pmf(np.array([0.25, 0.5, 0.25]), 0.0).half_width
        1
    """
    r = (len(values_pmf) - 1) // 2
    pmf = np.concatenate([np.asarray(values_pmf, np.float64), [max(tail, 0.0)]])
    cdf = np.concatenate([[0], np.cumsum(quantize_pmf(pmf))]).astype(np.uint32)
    return CdfTable(r, cdf)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def gaussian_table(sigma: float) -> CdfTable:
    """Table of a zero-mean Gaussian of std ``sigma`` discretised on unit bins.

    Example:
        >>> gaussian_table(0.11).half_width
        1
    """
    from scipy.special import ndtri

    # Smallest R whose two tails beyond R + 0.5 hold < TAIL_MASS.
    r = int(min(MAX_HALF_WIDTH, max(1, math.ceil(-sigma * ndtri(TAIL_MASS / 2) - 0.5))))
    v = np.arange(-r, r + 1, dtype=np.float64)
    upper = _normal_cdf((v + 0.5) / sigma)
    lower = _normal_cdf((v - 0.5) / sigma)
    pmf = upper - lower
    tail = 2 * _normal_cdf(-(r + 0.5) / sigma)
    return table_from_pmf(pmf, tail)


def scale_tables(scales: np.ndarray) -> list[CdfTable]:
    """One Gaussian table per entry of the scale table.

    Example:
        >>> len(scale_tables(np.array([0.5, 1.0])))
        2
    """
    return [gaussian_table(float(s)) for s in scales]


def factorized_tables(pmf: np.ndarray) -> list[CdfTable]:
    """Tables for the hyper-latent from per-channel pmfs over -R..R (shape C x (2R+1)).

    The mass outside -R..R (what the density has left) becomes the escape.

    Example:
        >>> len(factorized_tables(np.full((2, 5), 0.2)))
        2
    """
    out = []
    for row in pmf:
        row = np.clip(np.asarray(row, np.float64), 0, None)
        tail = max(0.0, 1.0 - row.sum())
        out.append(table_from_pmf(row, tail + 1e-12))
    return out
