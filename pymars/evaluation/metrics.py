"""Per-tile distortion metrics of the `mars-rd-1` protocol: PSNR and MS-SSIM.

Both functions take two uint8 (or any real-valued, 0..255) images of the same
shape, HxW (one channel) or HxWxC, and return a Python float. They follow
``../shared/EVALUATION.md`` §3 to the letter, so that numbers computed here can
be put next to numbers computed elsewhere with the same protocol:

* ``psnr``: ``10 log10(255^2 / MSE)``, MSE in float64 over all pixels *and* all
  channels (not a mean of per-channel PSNRs); 100 dB when the MSE is 0.
* ``ms_ssim``: the multi-scale SSIM of Wang et al. (2003) as computed by
  ``pytorch_msssim`` 1.0.0 ``ms_ssim`` (5 scales, Gaussian window 11 / sigma 1.5,
  K = (0.01, 0.03), data range 255, weights (0.0448, 0.2856, 0.3001, 0.2363,
  0.1333), 'valid' filtering, 2x2 average pooling that pads odd sizes with one
  zero on each side and counts the padding in the average), per channel, then the
  mean over channels. It is written in NumPy (float64) so the evaluation does not
  need PyTorch; tests check it against ``pytorch_msssim`` when that is installed.

This module must not resample, convert colour or clip its inputs: a metric that
quietly changed the pixels would make figures incomparable.

Example:
    >>> import numpy as np
    >>> a = np.zeros((4, 4), np.uint8); b = a.copy(); b[0, 0] = 255
    >>> round(psnr(a, b), 4)  # MSE = 255^2 / 16
    12.0412
"""
from __future__ import annotations

import numpy as np

#: Data range of 8-bit samples; both metrics are defined on 0..255.
DATA_RANGE = 255.0
#: PSNR reported for a lossless tile (MSE == 0), as the protocol fixes it.
LOSSLESS_PSNR = 100.0

# MS-SSIM constants of the protocol (identical to pytorch_msssim's defaults).
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1, K2 = 0.01, 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = DATA_RANGE) -> float:
    """PSNR in dB between two images, MSE over all pixels and channels (``peak``: 255 for 8-bit samples,
    4095 for 12-bit ...); identical images score LOSSLESS_PSNR.

    Example:
        >>> import numpy as np
        >>> a = np.full((8, 8, 3), 100, np.uint8)
        >>> psnr(a, a)
        100.0
        >>> round(psnr(a, a + 1), 3)  # every sample off by one: MSE = 1
        48.131
        >>> round(psnr(a.astype(np.uint16) * 16, a.astype(np.uint16) * 16 + 1, peak=4095.0), 3)
        72.245
    """
    a, b = same_shape(a, b)
    # float64 before subtracting: uint8 differences would wrap around.
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return LOSSLESS_PSNR
    return float(10.0 * np.log10(peak**2 / mse))


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two 8-bit images (per channel, then averaged), as in pytorch_msssim 1.0.0.

    The shorter side must be over 160 px: after four 2x poolings the 11-tap
    window must still fit ('valid' filtering), which is what pytorch_msssim asserts.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> a = rng.integers(0, 256, (176, 176, 3), dtype=np.uint8)
        >>> ms_ssim(a, a)
        1.0
        >>> 0.0 < ms_ssim(a, np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255)) < 1.0
        True
    """
    a, b = same_shape(a, b)
    # Work on (C, H, W) planes: every channel is scored on its own, as in pytorch_msssim
    # (grouped convolution), and averaged only at the very end.
    x = planes(a)
    y = planes(b)
    h, w = x.shape[1:]
    min_side = (WINDOW_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1)
    if min(h, w) <= min_side:
        raise ValueError(f"MS-SSIM needs both sides over {min_side} px, got {h}x{w}")
    window = gaussian_window(WINDOW_SIZE, WINDOW_SIGMA)
    weights = np.asarray(MS_SSIM_WEIGHTS)
    factors = []
    levels = len(weights)
    for level in range(levels):
        ssim_c, cs_c = ssim_and_contrast_structure(x, y, window)
        if level < levels - 1:
            # pytorch_msssim clamps negative contrast-structure terms to 0 (relu)
            # so that a fractional power of a negative number cannot occur.
            factors.append(np.maximum(cs_c, 0.0))
            x = _avg_pool_2x2(x)
            y = _avg_pool_2x2(y)
    factors.append(np.maximum(ssim_c, 0.0))
    per_channel = np.prod(np.stack(factors) ** weights[:, None], axis=0)
    return float(per_channel.mean())


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian taps centred on ``size // 2``, rounded to float32 as pytorch_msssim does.

    The taps are computed in float64, rounded to float32 (exp correctly
    rounded), normalised by their float32-rounded sum and returned as float64.
    This reproduces pytorch_msssim's float32 window bit for bit. It matters
    because the 2-D window then sums to 1 only within ~1e-8, and with
    ``E[x^2] - E[x]^2`` at local means near 150 that bias alone moves MS-SSIM
    by up to ~5e-6 on flat, strongly compressed tiles: as much as the
    protocol's tolerance against pytorch_msssim.

    Example:
        >>> w = gaussian_window(11, 1.5)
        >>> w.shape, abs(float(w.sum()) - 1.0) < 1e-6, bool(w[5] == w.max())
        ((11,), True, True)
        >>> float(w[5]) == float(np.float32(0.26601171493530273))
        True
    """
    coords = np.arange(size, dtype=np.float32) - np.float32(size // 2)
    exponent = (-(coords**2) / np.float32(2.0 * sigma**2)).astype(np.float64)
    # NumPy's float32 exp can be 1 ulp off; exp in float64 then rounding is exact.
    taps = np.exp(exponent).astype(np.float32)
    total = np.float32(taps.astype(np.float64).sum())
    return (taps / total).astype(np.float64)


def same_shape(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two images as arrays, refused in one line when their shapes differ or are not HxW / HxWxC.

    Example:
        >>> same_shape(np.zeros((2, 3)), np.zeros((3, 2)))
        Traceback (most recent call last):
        ...
        ValueError: images differ in shape: (2, 3) vs (3, 2)
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected HxW or HxWxC, got shape {a.shape}")
    return a, b


def planes(img: np.ndarray) -> np.ndarray:
    """HxW or HxWxC -> (C, H, W) float64.

    Example:
        >>> planes(np.zeros((4, 5, 3), np.uint8)).shape
        (3, 4, 5)
    """
    p = img[None] if img.ndim == 2 else np.moveaxis(img, -1, 0)
    return p.astype(np.float64)


def _filter_valid(planes: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable correlation with ``window`` along H then W, keeping only full windows.

    The window is symmetric, so correlation equals convolution; 'valid' means the
    output shrinks by ``len(window) - 1`` per axis (no padding at the borders).
    """
    n = len(window)
    rows = np.lib.stride_tricks.sliding_window_view(planes, n, axis=1) @ window
    return np.lib.stride_tricks.sliding_window_view(rows, n, axis=2) @ window


def ssim_and_contrast_structure(x: np.ndarray, y: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean SSIM and mean contrast-structure term at one scale.

    Example:
        >>> x = planes(np.full((16, 16), 100, np.uint8))
        >>> [round(float(v), 6) for v in ssim_and_contrast_structure(x, x, gaussian_window())[0]]
        [1.0]
    """
    c1 = (K1 * DATA_RANGE) ** 2
    c2 = (K2 * DATA_RANGE) ** 2
    mu_x = _filter_valid(x, window)
    mu_y = _filter_valid(y, window)
    # Local (co)variances as E[xy] - E[x]E[y], the same formula as pytorch_msssim,
    # so that the two agree to rounding error rather than to a modelling choice.
    var_x = _filter_valid(x * x, window) - mu_x**2
    var_y = _filter_valid(y * y, window) - mu_y**2
    cov_xy = _filter_valid(x * y, window) - mu_x * mu_y
    cs_map = (2.0 * cov_xy + c2) / (var_x + var_y + c2)
    ssim_map = (2.0 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs_map
    return ssim_map.mean(axis=(1, 2)), cs_map.mean(axis=(1, 2))


def _avg_pool_2x2(planes: np.ndarray) -> np.ndarray:
    """2x2 average pooling, stride 2, as ``F.avg_pool2d(kernel_size=2, padding=[H % 2, W % 2])``.

    An odd axis gets one zero on each side; windows then start at the first
    (zero) sample and the last padded zero is dropped, and the zeros count in
    the average (PyTorch's default ``count_include_pad=True``). An even axis is
    pooled plainly.
    """
    _, h, w = planes.shape
    ph, pw = h % 2, w % 2
    padded = np.pad(planes, ((0, 0), (ph, ph), (pw, pw)))
    out_h = (h + 2 * ph - 2) // 2 + 1
    out_w = (w + 2 * pw - 2) // 2 + 1
    core = padded[:, : 2 * out_h, : 2 * out_w]
    c = planes.shape[0]
    return core.reshape(c, out_h, 2, out_w, 2).mean(axis=(2, 4))
