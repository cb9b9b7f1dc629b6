"""Float layers of the transforms (analysis on the rover, synthesis on the ground).

The rover side runs these in C++ with a fixed operation order, so every layer
here must be expressible as plain multiply-adds, absolute values and one
division: no sqrt, no exp, no libm. That is why the normaliser is the
*simplified* GDN of Johnston et al. 2019 ("Computationally efficient neural
image compression"): ``y_i = x_i / (beta_i + sum_j gamma_ij |x_j|)``.

Example:
    >>> import torch
    >>> SimplifiedGDN(4)(torch.ones(1, 4, 2, 2)).shape
    torch.Size([1, 4, 2, 2])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SimplifiedGDN(nn.Module):
    """Simplified (inverse) generalised divisive normalisation.

    ``beta`` and ``gamma`` are kept non-negative by squaring a free parameter;
    the C++ core receives the squared values, so it never needs the square.

    Example:
        >>> import torch
        >>> gdn = SimplifiedGDN(3)
        >>> torch.allclose(gdn(torch.zeros(1, 3, 1, 1)), torch.zeros(1, 3, 1, 1))
        True
    """

    def __init__(self, channels: int, inverse: bool = False, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_sqrt = nn.Parameter(torch.ones(channels))
        self.gamma_sqrt = nn.Parameter(torch.eye(channels) * gamma_init**0.5)

    def beta_gamma(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The effective non-negative (beta, gamma) used by the layer.

        Example:
            >>> b, g = SimplifiedGDN(2).beta_gamma()
            >>> bool((b > 0).all() and (g >= 0).all())
            True
        """
        # A small floor on beta keeps the division well-conditioned in fp32.
        beta = self.beta_sqrt.square() + 1e-3
        gamma = self.gamma_sqrt.square()
        return beta, gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta, gamma = self.beta_gamma()
        norm = F.conv2d(x.abs(), gamma[:, :, None, None], beta)
        return x * norm if self.inverse else x / norm


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a LeakyReLU and an identity shortcut (ground only).

    Example:
        >>> import torch
        >>> ResidualBlock(8)(torch.zeros(1, 8, 4, 4)).shape
        torch.Size([1, 8, 4, 4])
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.1)
        return x + self.conv2(F.leaky_relu(h, 0.1))


class Upsample2x(nn.Module):
    """3x3 convolution to 4*C channels followed by depth-to-space (sub-pixel upsampling).

    Sub-pixel convolution instead of a transposed convolution: it has no
    checkerboard overlap and exports to every ONNX / TensorRT version.

    Example:
        >>> import torch
        >>> Upsample2x(4, 2)(torch.zeros(1, 4, 3, 3)).shape
        torch.Size([1, 2, 6, 6])
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, 4 * cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)
