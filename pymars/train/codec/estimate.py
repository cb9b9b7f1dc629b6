"""Quick rate-distortion estimate of a float model with real rounding (no entropy coder).

Used to monitor training. It uses the float mirror of the integer h_s, so its
rate is an estimate; reported figures always come from the real C++ coder.

Example:
    >>> import torch
    >>> from pymars.train.codec.network import BaseCodec, BaseConfig
    >>> m = BaseCodec(BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hs_hidden=8, synthesis=(8, 8, 8, 8)))
    >>> sorted(estimate_rd(m, torch.rand(1, 3, 64, 64), 3.0))
    ['bpp', 'bpp_z', 'psnr']
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pymars.train.codec.entropy_model import LOG_SCALE_STEP, discretized_gaussian, scale_from_index
from pymars.train.codec.integer import ACT_FRAC_BITS
from pymars.train.codec.network import STRIDE, Z_LIMIT, BaseCodec


def pad_to_stride(x: torch.Tensor, stride: int = STRIDE) -> torch.Tensor:
    """Replicate-pad the bottom/right so both sides are multiples of ``stride``.

    Example:
        >>> import torch
        >>> pad_to_stride(torch.zeros(1, 3, 50, 70)).shape
        torch.Size([1, 3, 64, 80])
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


@torch.no_grad()
def estimate_rd(model: BaseCodec, x: torch.Tensor, level: float) -> dict:
    """PSNR (dB, RGB) and ideal bits per pixel of one image (1, 3, H, W) in [0, 1]."""
    h, w = x.shape[-2:]
    xp = pad_to_stride(x, STRIDE)
    y = model.g_a(xp)
    z_hat = torch.round(model.h_a(y)).clamp(-Z_LIMIT, Z_LIMIT)
    mean_q4, index = model.h_s(z_hat)
    mean_q4, index = mean_q4[..., : y.shape[2], : y.shape[3]], index[..., : y.shape[2], : y.shape[3]]
    k = model.gain_steps(torch.tensor([level], device=x.device))[:, :, None, None]
    gain = torch.exp(LOG_SCALE_STEP * k)
    mean_g = mean_q4 * 2.0**-ACT_FRAC_BITS * gain
    sym = torch.round(y * gain - mean_g)
    p_y = discretized_gaussian(sym + mean_g, mean_g, scale_from_index(index + k))
    p_z = model.z_density.likelihood(z_hat)
    x_hat = model.g_s((sym + mean_g) / gain)[..., :h, :w].clamp(0, 1)
    x_hat = torch.round(x_hat * 255) / 255
    mse = float((x_hat - x).square().mean())
    bits_z = float(-torch.log2(p_z).sum())
    bits = float(-torch.log2(p_y).sum()) + bits_z
    return {"psnr": 10 * math.log10(1 / max(mse, 1e-12)), "bpp": bits / (h * w), "bpp_z": bits_z / (h * w)}
