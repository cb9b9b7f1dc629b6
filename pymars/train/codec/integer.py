"""Integer hyper-synthesis: the network that decides every probability table.

Why integers: an entropy decoder breaks as soon as it picks one table index
differently from the encoder, and float networks differ across CPUs, GPUs and
thread counts (DESIGN.md). This module defines the hyper-synthesis h_s so that
its inference is *exactly* integer arithmetic:

    z_hat (int) -> [conv3x3 -> depth-to-space -> QReLU] x2 -> conv3x3 -> QReLU
                -> conv1x1 -> (mean in Q4, scale-table index)

Each layer: int8 weights, int32 bias, int32 accumulation, then a per-output-
channel rounding right shift ``(acc + 2^(s-1)) >> s`` (round half up, floor
shift) and a clamp. QReLU activations are uint8 holding a value in units of
1/16. Training uses fake quantisation (straight-through rounding of weights
and activations) so the float model sees the integer model's discretisation.

The C++ core (``csrc/core/hyper_synthesis``) runs the exported integers, and
:func:`run_integer_numpy` is an independent int64 NumPy implementation that
tests compare it with. This module must not be used to compute indices for
coding: only the C++ core does that.

Choice recorded for the patent note (US 11,869,221, entropy coding with
integer networks): pymars uses an integer hyper-synthesis (option (b) of
DESIGN.md) because it is a learned, backward-adaptive model that codes better
than forward-adaptive side information; see docs/architecture.md.

Example:
    >>> import torch
    >>> hs = IntegerHyperSynthesis(z_channels=4, hidden=8, y_channels=3, scale_levels=80)
    >>> mean_q4, index = hs(torch.zeros(1, 4, 2, 2))
    >>> mean_q4.shape, index.shape
    (torch.Size([1, 3, 8, 8]), torch.Size([1, 3, 8, 8]))
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Fractional bits of QReLU activations and of the predicted mean.
ACT_FRAC_BITS = 4
ACT_MAX = 255
MEAN_MIN, MEAN_MAX = -32768, 32767
#: Largest weight magnitude (int8, symmetric so that negation is safe).
WEIGHT_MAX = 127
#: Per-channel weight exponent range. Capped so that int32 biases cannot overflow.
EXP_MIN, EXP_MAX = 0, 24


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass.

    Example:
        >>> import torch
        >>> round_ste(torch.tensor([0.4, 1.6])).tolist()
        [0.0, 2.0]
    """
    return x + (torch.round(x) - x).detach()


@dataclass
class IntegerLayer:
    """One exported integer layer (all arrays int64 for easy, overflow-free checks)."""

    weight: np.ndarray  # int8 values, shape (cout, cin, k, k)
    bias: np.ndarray  # int32 values, shape (cout,)
    shift: np.ndarray  # right shift per output channel, shape (cout,)
    out_min: np.ndarray  # clamp per output channel
    out_max: np.ndarray
    depth_to_space: bool


class FakeQuantConv(nn.Module):
    """A convolution trained to run as int8 weights / int32 accumulation.

    ``in_frac_bits``: fractional bits of the integer input (0 for z_hat, 4 for
    QReLU outputs). ``out_frac_bits``: per output channel, the fractional bits of
    the rounded output (4 for activations and means, 0 for table indices).

    Example:
        >>> import torch
        >>> conv = FakeQuantConv(2, 3, 3, in_frac_bits=0, out_frac_bits=[4, 4, 0])
        >>> conv(torch.zeros(1, 2, 5, 5)).shape
        torch.Size([1, 3, 5, 5])
    """

    def __init__(self, cin: int, cout: int, kernel: int, in_frac_bits: int, out_frac_bits):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.in_frac_bits = in_frac_bits
        self.register_buffer("out_frac_bits", torch.as_tensor(out_frac_bits, dtype=torch.float32))

    def exponents(self) -> torch.Tensor:
        """Per-output-channel weight exponent e: int weight = round(w * 2^-in_frac * 2^e).

        Example:
            >>> conv = FakeQuantConv(1, 1, 1, 0, [0])
            >>> int(conv.exponents().numel())
            1
        """
        w = self.conv.weight.detach() * 2.0 ** (-self.in_frac_bits)
        wmax = w.abs().flatten(1).amax(1).clamp_min(1e-12)
        e = torch.floor(torch.log2(WEIGHT_MAX / wmax))
        # The output shift e - out_frac must be >= 0.
        return e.clamp(EXP_MIN, EXP_MAX).maximum(self.out_frac_bits)

    #: False gives the unquantised float network (to measure what integers cost).
    quantize: bool = True

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """Pre-activation in units of 2^-out_frac, already rounded (float tensor of integers)."""
        if not self.quantize:
            u = F.conv2d(a, self.conv.weight * 2.0 ** (-self.in_frac_bits), self.conv.bias, padding=self.conv.padding)
            return u * 2.0 ** self.out_frac_bits[None, :, None, None]
        e = self.exponents()[:, None, None, None]
        w = self.conv.weight * 2.0 ** (-self.in_frac_bits)
        w_q = torch.clamp(round_ste(w * 2.0**e), -WEIGHT_MAX, WEIGHT_MAX) / 2.0**e
        b_q = round_ste(self.conv.bias * 2.0 ** e.flatten()) / 2.0 ** e.flatten()
        u = F.conv2d(a, w_q, b_q, padding=self.conv.padding)
        return round_ste(u * 2.0 ** self.out_frac_bits[None, :, None, None])

    def export(self, out_min, out_max, depth_to_space: bool) -> IntegerLayer:
        """Integer weights, biases and shifts exactly as the C++ core runs them.

        Example:
            >>> conv = FakeQuantConv(1, 2, 1, 0, [4, 4])
            >>> conv.export([0, 0], [255, 255], False).weight.dtype
            dtype('int64')
        """
        e = self.exponents()
        w = self.conv.weight.detach() * 2.0 ** (-self.in_frac_bits)
        w_q = torch.clamp(torch.round(w * 2.0 ** e[:, None, None, None]), -WEIGHT_MAX, WEIGHT_MAX)
        b_q = torch.round(self.conv.bias.detach().double() * 2.0 ** e.double())
        shift = (e - self.out_frac_bits).to(torch.int64)
        return IntegerLayer(
            w_q.to(torch.int64).numpy(),
            b_q.to(torch.int64).numpy(),
            shift.numpy(),
            np.asarray(out_min, np.int64),
            np.asarray(out_max, np.int64),
            depth_to_space,
        )


def qrelu(u: torch.Tensor) -> torch.Tensor:
    """Clamp to the uint8 activation range; gradient passes inside the range only.

    Example:
        >>> import torch
        >>> qrelu(torch.tensor([-3.0, 7.0, 300.0])).tolist()
        [0.0, 7.0, 255.0]
    """
    return u.clamp(0, ACT_MAX)


class IntegerHyperSynthesis(nn.Module):
    """h_s: integer z_hat -> (mean in Q4 units, scale-table index), both float tensors of integers.

    The scale index is returned *before* clamping to the table, so the caller
    can add the quality's per-channel offset and clamp once.

    Example:
        >>> import torch
        >>> hs = IntegerHyperSynthesis(4, 8, 3, 80)
        >>> len(hs.export())
        4
    """

    def __init__(self, z_channels: int, hidden: int, y_channels: int, scale_levels: int):
        super().__init__()
        self.y_channels = y_channels
        self.scale_levels = scale_levels
        f = ACT_FRAC_BITS
        self.up1 = FakeQuantConv(z_channels, 4 * hidden, 3, 0, [f] * (4 * hidden))
        self.up2 = FakeQuantConv(hidden, 4 * hidden, 3, f, [f] * (4 * hidden))
        self.mid = FakeQuantConv(hidden, hidden, 3, f, [f] * hidden)
        self.head = FakeQuantConv(hidden, 2 * y_channels, 1, f, [f] * y_channels + [0] * y_channels)
        with torch.no_grad():
            # Start the scale index mid-table so early training sees sane scales.
            self.head.conv.bias[y_channels:] = scale_levels / 2

    def set_quantized(self, on: bool) -> None:
        """Switch between the integer model (default) and its unquantised float twin.

        Example:
            >>> hs = IntegerHyperSynthesis(2, 4, 1, 80); hs.set_quantized(False); hs.up1.quantize
            False
        """
        for conv in (self.up1, self.up2, self.mid, self.head):
            conv.quantize = on

    def forward(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = qrelu(F.pixel_shuffle(self.up1(z_hat), 2))
        a = qrelu(F.pixel_shuffle(self.up2(a), 2))
        a = qrelu(self.mid(a))
        out = self.head(a)
        mean_q4 = out[:, : self.y_channels].clamp(MEAN_MIN, MEAN_MAX)
        index = out[:, self.y_channels :]
        return mean_q4, index

    def export(self) -> list[IntegerLayer]:
        """The four integer layers in execution order.

        Example:
            >>> layers = IntegerHyperSynthesis(4, 8, 3, 80).export()
            >>> [l.depth_to_space for l in layers]
            [True, True, False, False]
        """
        m = self.y_channels
        n1, n2, nm = self.up1.conv.out_channels, self.up2.conv.out_channels, self.mid.conv.out_channels
        big = 2**31 - 1
        return [
            self.up1.export([0] * n1, [ACT_MAX] * n1, True),
            self.up2.export([0] * n2, [ACT_MAX] * n2, True),
            self.mid.export([0] * nm, [ACT_MAX] * nm, False),
            # Means clamp to int16; indices are clamped later with the quality offset.
            self.head.export([MEAN_MIN] * m + [-big] * m, [MEAN_MAX] * m + [big] * m, False),
        ]


def run_integer_numpy(z_hat: np.ndarray, layers: list[IntegerLayer]) -> np.ndarray:
    """Reference int64 implementation of the exported h_s (independent of the C++ core).

    ``z_hat``: int array (C, H, W). Returns the head output (2M, 4H, 4W), int64.

    Example:
        >>> hs = IntegerHyperSynthesis(2, 4, 1, 80)
        >>> run_integer_numpy(np.zeros((2, 1, 1), np.int64), hs.export()).shape
        (2, 4, 4)
    """
    a = z_hat.astype(np.int64)
    for layer in layers:
        cout, cin, k, _ = layer.weight.shape
        pad = k // 2
        c, h, w = a.shape
        ap = np.zeros((c, h + 2 * pad, w + 2 * pad), np.int64)
        ap[:, pad : pad + h, pad : pad + w] = a
        acc = np.zeros((cout, h, w), np.int64)
        for dy in range(k):
            for dx in range(k):
                patch = ap[:, dy : dy + h, dx : dx + w].reshape(cin, -1)
                acc += (layer.weight[:, :, dy, dx] @ patch).reshape(cout, h, w)
        acc += layer.bias[:, None, None]
        assert np.abs(acc).max(initial=0) < 2**31, "int32 accumulator overflow"
        s = layer.shift[:, None, None]
        # Round half up with a floor shift; s == 0 means no rounding.
        rounding = np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)
        out = np.right_shift(acc + rounding, s)
        out = np.clip(out, layer.out_min[:, None, None], layer.out_max[:, None, None])
        if layer.depth_to_space:
            out = out.reshape(cout // 4, 2, 2, h, w).transpose(0, 3, 1, 4, 2).reshape(cout // 4, 2 * h, 2 * w)
        a = out
    return a
