"""Probability models of the latents, as trained (float) and as coded (integer tables).

Two models:

* ``FactorizedDensity`` for the hyper-latent z: one learned univariate density
  per channel (Balle et al. 2018, appendix 6.1), used with additive uniform noise
  in training. Exported as one integer CDF table per channel.
* ``discretized_gaussian`` for the latent y: a zero-mean Gaussian whose scale is
  chosen from a fixed log-spaced table ``SCALES`` by an integer index. The
  integer index (never a float scale) is what encoder and decoder agree on;
  each table entry becomes one integer CDF table.

Tables are built once at export (``pymars.train.export.cdf_tables``) and stored with the
model; nothing at coding time evaluates a float density.

Example:
    >>> round(float(SCALES[0]), 2), round(float(SCALES[-1]))
    (0.11, 256)
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Scale table: SCALE_LEVELS log-spaced standard deviations from SCALE_MIN to SCALE_MAX.
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 80
LOG_SCALE_STEP = math.log(SCALE_MAX / SCALE_MIN) / (SCALE_LEVELS - 1)
SCALES = np.exp(math.log(SCALE_MIN) + LOG_SCALE_STEP * np.arange(SCALE_LEVELS))
LIKELIHOOD_FLOOR = 1e-9


def scale_from_index(index: torch.Tensor) -> torch.Tensor:
    """Standard deviation of table entry ``index`` (float tensor of integers, clamped).

    Example:
        >>> import torch
        >>> round(float(scale_from_index(torch.tensor(0.0))), 2)
        0.11
    """
    index = index.clamp(0, SCALE_LEVELS - 1)
    return torch.exp(math.log(SCALE_MIN) + LOG_SCALE_STEP * index)


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * (2**-0.5))


def discretized_gaussian(values: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Probability mass of ``values`` rounded to integers around ``mean`` under N(mean, scale).

    Uses the symmetric form (evaluate in the lower tail) for accuracy.

    Example:
        >>> import torch
        >>> p = discretized_gaussian(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([1.0]))
        >>> round(float(p), 4)
        0.3829
    """
    v = (values - mean).abs()
    upper = _std_normal_cdf((0.5 - v) / scale)
    lower = _std_normal_cdf((-0.5 - v) / scale)
    return (upper - lower).clamp_min(LIKELIHOOD_FLOOR)


class FactorizedDensity(nn.Module):
    """Per-channel learned CDF (Balle 2018): a small monotone MLP per channel.

    Example:
        >>> import torch
        >>> d = FactorizedDensity(2)
        >>> d.likelihood(torch.zeros(1, 2, 3, 3)).shape
        torch.Size([1, 2, 3, 3])
    """

    def __init__(self, channels: int, filters=(3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        dims = (1,) + tuple(filters) + (1,)
        scale = init_scale ** (1 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(dims) - 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of the CDF; ``x`` has shape (channels, 1, n).

        Example:
            >>> import torch
            >>> FactorizedDensity(3).logits_cdf(torch.zeros(3, 1, 5)).shape
            torch.Size([3, 1, 5])
        """
        for i, (m, b) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(m), x) + b
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """Mass of the unit interval around each (noisy or integer) value of z (B, C, H, W).

        Example:
            >>> import torch
            >>> bool((FactorizedDensity(1).likelihood(torch.zeros(1, 1, 1, 1)) > 0).all())
            True
        """
        b, c, h, w = z.shape
        v = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.logits_cdf(v - 0.5)
        upper = self.logits_cdf(v + 0.5)
        # Evaluate in the tail where the sigmoid is accurate.
        sign = -torch.sign(lower + upper).detach()
        p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        p = p.clamp_min(LIKELIHOOD_FLOOR)
        return p.reshape(c, b, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def pmf(self, support: int) -> np.ndarray:
        """Float64 probability of each integer in [-support, support] per channel, shape (C, 2S+1).

        Example:
            >>> FactorizedDensity(2).pmf(3).shape
            (2, 7)
        """
        c = self.matrices[0].shape[0]
        v = torch.arange(-support, support + 1, dtype=torch.float32).expand(c, 1, -1)
        lower = self.logits_cdf(v - 0.5).double()
        upper = self.logits_cdf(v + 0.5).double()
        sign = -torch.sign(lower + upper)
        p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        return p[:, 0, :].numpy()
