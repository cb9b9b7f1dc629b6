"""Texture matching: LBP descriptors and divergences for choosing references.

What it is for: the rover picks, for every tile, the reference whose texture is
closest (REMAC's shallow reference selector; MarsQE's semantic matching, Eq. 4:
``argmin_i D_KL(LBP(reference_i) || LBP(query))``) and writes the chosen id into
the bitstream. The functions here are the C++ matcher (csrc/core/texture.cpp)
as bound in ``pymars._core``; the ground uses the very same code, so a
selection computed in Python equals the rover's on every CPU.

    gray (H, W) uint8 ──lbp_codes──▶ codes ──lbp_histograms(patch)──▶ uint32 counts
                                                                    │
    dictionary (N, bins) ──────────── nearest_histogram(metric) ◀──┘ ──▶ (index, Q16 bits)

Variants: ``"default"`` (256 bins), ``"uniform"`` (59), ``"riu2"`` (10).
Divergences are fixed point by default (bits in Q16, integer, bit-identical on
every CPU; divide by 65536 for bits); ``fixed=False`` gives the ground-only
double version of the same definition. ``pymars.texture.oracle`` is the
NumPy oracle and the pure-integer twin used by the tests.

What it must not do: hold any logic of its own (every rule is in the C++ core,
documented in docs/texture-matcher.md), or let a float result decide anything
that reaches a bitstream.

Example:
    >>> import numpy as np
    >>> from pymars import texture
    >>> rng = np.random.default_rng(0)
    >>> tiles = rng.integers(0, 256, size=(3, 32, 32), dtype=np.uint8)
    >>> tiles[1] = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))  # a smooth ramp
    >>> dictionary = np.stack([texture.lbp_histograms(t, "riu2") for t in tiles])
    >>> ramp = np.tile(np.arange(32, dtype=np.uint8)[::-1] * 8, (32, 1))
    >>> index, q16 = texture.nearest_histogram(texture.lbp_histograms(ramp, "riu2"), dictionary)
    >>> index
    1
"""
from __future__ import annotations

from pymars._core import (
    js_divergence,
    kl_divergence,
    lbp_codes,
    lbp_histograms,
    nearest_histogram,
    rgb_to_gray,
)

#: Histogram bins of each LBP variant.
LBP_BINS = {"default": 256, "uniform": 59, "riu2": 10}
#: Fixed-point divergences are bits in Q16: value / Q16_ONE is bits.
Q16_ONE = 1 << 16

__all__ = [
    "LBP_BINS",
    "Q16_ONE",
    "js_divergence",
    "kl_divergence",
    "lbp_codes",
    "lbp_histograms",
    "nearest_histogram",
    "rgb_to_gray",
]
