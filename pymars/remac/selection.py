"""Reference selection rules of REMAC, in NumPy: the reference the C++ rover code is tested against.

What it is for: the rover picks, per tile, one **entropy reference** (deep:
nearest library latent descriptor, latent feature recycling, no extra network)
and one **decoder reference** (shallow: nearest uniform-LBP histogram by KL,
MarsQE Eq. 4). These functions state the rules in a few lines so that the
C++ encoder (``csrc/core/selection``) can be checked against them and the
training can use the same choices. Every quantity is an integer, so the
choice is identical on every CPU.

* quantised latent ``q = floor(clamp(8 y, -127, 127) + 1/2)`` (int8; the core's
  ``round_to_int``, halves rounded up, float32 arithmetic);
* descriptor ``d[c] = (32 * sum |q_c| + n // 2) // n`` over the n latent
  positions of the tile (about 256 * mean |y_c|, uint16);
* entropy reference ``argmin_r sum_c |d[c] - d_r[c]|`` (ties: lowest r);
* decoder reference ``argmin_r KL_Q16(h_r || h)`` of uniform LBP histograms of
  the gray tile (the C++ matcher; ties: lowest r).

What it must not do: be used by the encoder to decide ids (the C++ core does);
it mirrors that code.

Example:
    >>> import numpy as np
    >>> q = quantise_latent(np.array([[[0.06, -0.07]], [[1.0, 2.0]]], np.float32))
    >>> q.ravel().tolist(), latent_descriptor(q).tolist()
    ([0, -1, 8, 16], [16, 384])
"""
from __future__ import annotations

import numpy as np

from pymars.texture import lbp_histograms, nearest_histogram

#: round(8 y): the stored reference latents are in units of 1/8.
LATENT_SCALE = 8
LATENT_LIMIT = 127
#: Descriptor scale per unit of |q|: 32 |q| ~ 256 |y|.
DESCRIPTOR_SCALE = 32
NO_REFERENCE = 0xFFFF


def quantise_latent(y: np.ndarray) -> np.ndarray:
    """int8 ``floor(clamp(8 y, -127, 127) + 1/2)`` in float32, exactly the C++ core's ``round_to_int``.

    Example:
        >>> quantise_latent(np.array([0.0625, -0.0625, 100.0, np.nan], np.float32)).tolist()
        [1, 0, 127, 0]
    """
    v = np.asarray(y, np.float32) * np.float32(LATENT_SCALE)
    v = np.nan_to_num(np.clip(v, -LATENT_LIMIT, LATENT_LIMIT), nan=0.0)
    return np.floor(v + np.float32(0.5)).astype(np.int8)


def latent_descriptor(q: np.ndarray) -> np.ndarray:
    """uint16 per-channel descriptor of an int8 latent (M, h, w): ``(32 * sum|q| + n//2) // n``.

    Example:
        >>> latent_descriptor(np.full((2, 2, 2), -3, np.int8)).tolist()
        [96, 96]
    """
    q = np.asarray(q).astype(np.int64)
    n = q.shape[1] * q.shape[2]
    if n == 0:
        raise ValueError("empty latent")
    s = np.abs(q).reshape(q.shape[0], -1).sum(1)
    return np.minimum((DESCRIPTOR_SCALE * s + n // 2) // n, 65535).astype(np.uint16)


def entropy_reference(descriptor: np.ndarray, library_descriptors: np.ndarray) -> int:
    """Index of the library descriptor nearest in L1 (ties to the lowest index); NO_REFERENCE if empty.

    Example:
        >>> entropy_reference(np.array([10, 10]), np.array([[0, 0], [9, 11], [11, 9]]))  # a tie: the lower index
        1
    """
    lib = np.asarray(library_descriptors, np.int64)
    if len(lib) == 0:
        return NO_REFERENCE
    dist = np.abs(lib - np.asarray(descriptor, np.int64)[None]).sum(1)
    return int(np.argmin(dist))


def decoder_reference(gray_tile: np.ndarray, library_histograms: np.ndarray) -> int:
    """Index of the library LBP histogram nearest by fixed-point KL (C++ matcher); NO_REFERENCE if empty.

    Example:
        >>> from pymars.texture import lbp_histograms
        >>> a = np.tile(np.array([[0, 255], [255, 0]], np.uint8), (8, 8)); b = np.full((16, 16), 7, np.uint8)
        >>> hists = np.stack([lbp_histograms(t, "uniform") for t in (b, a)])
        >>> decoder_reference(a, hists)
        1
    """

    if len(library_histograms) == 0:
        return NO_REFERENCE
    h = lbp_histograms(np.ascontiguousarray(gray_tile, np.uint8), "uniform")
    return int(nearest_histogram(h, np.ascontiguousarray(library_histograms, np.uint32), "kl")[0])
