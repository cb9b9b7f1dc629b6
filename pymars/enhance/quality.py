"""Quality metrics of the enhancement table that the RD protocol does not define: SSIM and PSNR-B.

What it is for: MarsQE's Table III reports PSNR, PSNR-B, SSIM and MS-SSIM.
PSNR and MS-SSIM come from pymars.evaluation.metrics (the protocol's
definitions); this module adds, on the same conventions (8-bit, RGB scored
over all channels, no colour conversion):

* ``ssim``: single-scale SSIM with the protocol's MS-SSIM settings (Gaussian
  window 11 / sigma 1.5, K = (0.01, 0.03), 'valid' filtering), per channel,
  then the mean over channels, i.e. ``pytorch_msssim.ssim``;
* ``psnr_b``: PSNR including blocking effects (Yim and Bovik, IEEE TIP 2011):
  ``10 log10(255^2 / (MSE + BEF))`` where the blocking effect factor of the
  *test* image is ``BEF = eta (D_B - D_B^c)`` if positive, with ``D_B`` the
  mean squared difference of horizontally and vertically adjacent pixels
  across 8x8 block boundaries, ``D_B^c`` the same for pairs inside blocks and
  ``eta = log2(B) / log2(min(H, W))``. For colour images MSE and BEF are
  computed per channel and averaged before the log (the way the protocol's
  PSNR pools channels).

What it must not do: change the pixels it scores (no rounding or clipping).

Example:
    >>> import numpy as np
    >>> a = np.full((16, 16), 100, np.uint8)
    >>> b = a.copy(); b[:, 8:] = 104  # one vertical step exactly on a block boundary
    >>> round(psnr_b(a, b), 3)  # MSE = 8; D_B = 16*16/(16+16) = 8, D_B^c = 0, eta = 3/4: BEF = 6
    36.67
"""
from __future__ import annotations

import math

import numpy as np

from pymars.evaluation.metrics import (
    DATA_RANGE,
    LOSSLESS_PSNR,
    WINDOW_SIGMA,
    WINDOW_SIZE,
    gaussian_window,
    planes,
    same_shape,
    ssim_and_contrast_structure,
)

BLOCK = 8


def blocking_effect_factor(plane: np.ndarray, block: int = BLOCK) -> float:
    """BEF of one 2-D plane (float), as defined by Yim and Bovik (2011).

    Example:
        >>> blocking_effect_factor(np.zeros((16, 16)))
        0.0
    """
    h, w = plane.shape
    dh = np.diff(plane, axis=1) ** 2  # pairs (x, x+1), x = 0..w-2
    dv = np.diff(plane, axis=0) ** 2
    hb = (np.arange(w - 1) % block) == block - 1  # x+1 starts a new block
    vb = (np.arange(h - 1) % block) == block - 1
    n_b = hb.sum() * h + vb.sum() * w
    n_c = (~hb).sum() * h + (~vb).sum() * w
    if n_b == 0 or n_c == 0:
        return 0.0
    d_b = (dh[:, hb].sum() + dv[vb, :].sum()) / n_b
    d_c = (dh[:, ~hb].sum() + dv[~vb, :].sum()) / n_c
    eta = math.log2(block) / math.log2(min(h, w))
    return float(eta * (d_b - d_c)) if d_b > d_c else 0.0


def psnr_b(reference: np.ndarray, test: np.ndarray, block: int = BLOCK) -> float:
    """PSNR-B in dB of ``test`` against ``reference`` (HxW or HxWxC, 0..255).

    Example:
        >>> a = np.full((16, 16, 3), 50, np.uint8)
        >>> psnr_b(a, a)
        100.0
    """
    reference, test = same_shape(reference, test)
    x, y = planes(reference), planes(test)
    mse = ((x - y) ** 2).mean(axis=(1, 2))
    bef = np.array([blocking_effect_factor(p, block) for p in y])
    total = float((mse + bef).mean())
    if total == 0.0:
        return LOSSLESS_PSNR
    return float(10.0 * np.log10(DATA_RANGE**2 / total))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Single-scale SSIM (pytorch_msssim ``ssim`` settings), per channel, then averaged.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        >>> ssim(a, a), ssim(a, 255 - a) < 0
        (1.0, True)
    """
    a, b = same_shape(a, b)
    x, y = planes(a), planes(b)
    if min(x.shape[1:]) < WINDOW_SIZE:
        raise ValueError(f"SSIM needs both sides at least {WINDOW_SIZE} px, got {x.shape[1]}x{x.shape[2]}")
    s, _ = ssim_and_contrast_structure(x, y, gaussian_window(WINDOW_SIZE, WINDOW_SIGMA))
    return float(s.mean())
