"""The base pymars codec model (``pymars-base``): what is trained and what is exported.

    rover (C++ core, float, fixed op order)      shared (C++ core, integers)         ground (float)
    x --g_a--> y --*gain[q]--> y_q                z_hat --h_s(int)--> mean_q4, index
      y --h_a--> z --round--> z_hat                                                   
    symbols = round(y_q - mean_q), coded with table[index + offset[q]]  ->  y_hat = (symbols + mean_q) / gain[q]
                                                                           x_hat = g_s(y_hat)

* g_a: four 5x5 stride-2 convolutions with simplified GDN (light: ~11 k MACs/pixel).
* h_a: 3x3 conv, two 5x5 stride-2 convs, ReLU (float, rover).
* h_s: :class:`~pymars.train.codec.integer.IntegerHyperSynthesis` (integer, both sides).
* g_s: sub-pixel upsampling with residual blocks and inverse simplified GDN (ground).
* Variable rate: one gain vector per trained rate level (Cui et al. 2021,
  "asymmetric gained deep image compression"). Gains are restricted to
  ``exp(LOG_SCALE_STEP * k)`` for integer k, so multiplying the latent by a gain
  is *exactly* an integer shift ``k`` of the scale-table index: the quality
  setting enters the integer path as a lookup, never as float arithmetic.

Training (see :mod:`pymars.train`) uses additive noise for the rates and
straight-through rounding for the reconstruction (Minnen & Singh 2020).

Example:
    >>> import torch
    >>> model = BaseCodec(BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hs_hidden=8, synthesis=(8, 8, 8, 8)))
    >>> out = model(torch.rand(2, 3, 64, 64), torch.tensor([0, 3]))
    >>> out["x_hat"].shape, out["bpp"].shape
    (torch.Size([2, 3, 64, 64]), torch.Size([2]))
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from pymars.train.codec.entropy_model import (
    LOG_SCALE_STEP,
    SCALE_LEVELS,
    FactorizedDensity,
    discretized_gaussian,
    scale_from_index,
)
from pymars.train.codec.integer import ACT_FRAC_BITS, IntegerHyperSynthesis, round_ste
from pymars.train.codec.layers import ResidualBlock, SimplifiedGDN, Upsample2x

#: Rate levels (lambda of D = lambda * 255^2 * MSE + bits per pixel), low to high quality.
DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)
#: Hyper-latent values are clamped to int8 so h_s sees a bounded input.
Z_LIMIT = 127
#: Image side must be a multiple of this (4 stride-2 stages).
STRIDE = 16


@dataclass
class BaseConfig:
    """Architecture of a base codec; stored in the weights' metadata.

    Example:
        >>> BaseConfig().latent
        128
    """

    channels: int = 3
    latent: int = 128
    hyper: int = 64
    analysis: tuple = (64, 64, 64)
    hyper_analysis: int = 64
    hs_hidden: int = 128
    synthesis: tuple = (192, 128, 96, 64)
    lambdas: tuple = DEFAULT_LAMBDAS
    name: str = "pymars-base"
    extra: dict = field(default_factory=dict)
    #: Tile payloads carry each tile's mean per channel, restored by the ground after
    #: synthesis (docs/bitstream.md §4.6): a coding option, not a trained part.
    tile_means: bool = False
    #: Qualities from this one to 100 use the near-lossless coder (docs/bitstream.md §4.7),
    #: maximum error 6 falling to 0; 0: every quality is learned.
    nl_from_quality: int = 0
    #: With near-lossless qualities: the rate level the last learned quality uses (-1: the top one).
    learned_top_level: float = -1
    #: Largest near-lossless error (at quality ``nl_from_quality``); at most 32.
    nl_max_error: int = 6
    #: Entropy coder of near-lossless tiles: "golomb" (docs/bitstream.md §4.7) or
    #: "arith" (§4.8, DIMS flag bit 1; a fraction of a bit per sample on smooth tiles).
    nl_coder: str = "golomb"
    #: Qualities from this one up to the first near-lossless quality use the wavelet
    #: coder (docs/bitstream.md §4.9); 0: none. Steps fall geometrically from
    #: ``wv_max_step`` to ``wv_min_step`` (8-bit levels).
    wv_from_quality: int = 0
    wv_max_step: float = 40.0
    wv_min_step: float = 2.0

    def to_dict(self) -> dict:
        d = asdict(self)
        # Options at their defaults are left out: configs from before them keep their
        # exact bytes (and so their model ids).
        for key, default in (("tile_means", False), ("nl_from_quality", 0), ("learned_top_level", -1),
                             ("nl_max_error", 6), ("nl_coder", "golomb"), ("wv_from_quality", 0),
                             ("wv_max_step", 40.0), ("wv_min_step", 2.0)):
            if d[key] == default:
                del d[key]
        d["analysis"], d["synthesis"], d["lambdas"] = list(self.analysis), list(self.synthesis), list(self.lambdas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BaseConfig":
        d = dict(d)
        for k in ("analysis", "synthesis", "lambdas"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


class Analysis(nn.Module):
    """g_a: the rover's light analysis transform (image in [0, 1] -> y at 1/16 resolution)."""

    def __init__(self, cfg: BaseConfig):
        super().__init__()
        chans = (cfg.channels,) + tuple(cfg.analysis)
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 5, 2, 2), SimplifiedGDN(cout)]
        layers.append(nn.Conv2d(chans[-1], cfg.latent, 5, 2, 2))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class HyperAnalysis(nn.Module):
    """h_a: y -> z at 1/64 resolution (rover, float)."""

    def __init__(self, cfg: BaseConfig):
        super().__init__()
        n = cfg.hyper_analysis
        self.layers = nn.Sequential(
            nn.Conv2d(cfg.latent, n, 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(n, n, 5, 2, 2),
            nn.ReLU(),
            nn.Conv2d(n, cfg.hyper, 5, 2, 2),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.layers(y)


class Synthesis(nn.Module):
    """g_s: the ground's synthesis transform (y_hat -> image in [0, 1], not clamped)."""

    def __init__(self, cfg: BaseConfig):
        super().__init__()
        c0, c1, c2, c3 = cfg.synthesis
        self.layers = nn.Sequential(
            nn.Conv2d(cfg.latent, c0, 3, 1, 1),
            ResidualBlock(c0),
            Upsample2x(c0, c1),
            SimplifiedGDN(c1, inverse=True),
            ResidualBlock(c1),
            Upsample2x(c1, c2),
            SimplifiedGDN(c2, inverse=True),
            ResidualBlock(c2),
            Upsample2x(c2, c3),
            SimplifiedGDN(c3, inverse=True),
            Upsample2x(c3, cfg.channels),
        )

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.layers(y_hat)


class BaseCodec(nn.Module):
    """The trainable base codec. ``forward(x, level)`` returns x_hat and bits per pixel.

    ``level`` is a float tensor (B,) of rate-level positions in [0, L-1]; a
    fractional position interpolates the log-gains of its two neighbours, which
    is how quality 1..100 is served.
    """

    def __init__(self, cfg: BaseConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or BaseConfig()
        self.g_a = Analysis(cfg)
        self.h_a = HyperAnalysis(cfg)
        self.h_s = IntegerHyperSynthesis(cfg.hyper, cfg.hs_hidden, cfg.latent, SCALE_LEVELS)
        self.g_s = Synthesis(cfg)
        self.z_density = FactorizedDensity(cfg.hyper)
        lam = torch.tensor(cfg.lambdas, dtype=torch.float32)
        self.register_buffer("lambdas", lam)
        # Rate roughly follows the quantiser step ~ lambda^-1/2: initialise gains that way.
        init = 0.5 * torch.log(lam / lam[len(lam) // 2])
        self.log_gain = nn.Parameter(init[:, None].repeat(1, cfg.latent))

    @property
    def levels(self) -> int:
        return len(self.cfg.lambdas)

    def gain_steps(self, level: torch.Tensor) -> torch.Tensor:
        """Integer index offset k (as float, straight-through) per sample and channel: gain = exp(step*k).

        Example:
            >>> import torch
            >>> m = BaseCodec(BaseConfig(latent=4, hyper=2, analysis=(4, 4, 4), hs_hidden=4, synthesis=(4, 4, 4, 4)))
            >>> m.gain_steps(torch.tensor([0.0, 7.0])).shape
            torch.Size([2, 4])
        """
        level = level.clamp(0, self.levels - 1)
        lo = level.floor().long().clamp(max=self.levels - 2)
        t = (level - lo.float())[:, None]
        log_g = (1 - t) * self.log_gain[lo] + t * self.log_gain[lo + 1]
        return round_ste(log_g / LOG_SCALE_STEP)

    def lambda_at(self, level: torch.Tensor) -> torch.Tensor:
        """Lambda interpolated geometrically between rate levels."""
        level = level.clamp(0, self.levels - 1)
        lo = level.floor().long().clamp(max=self.levels - 2)
        t = level - lo.float()
        return torch.exp((1 - t) * self.lambdas[lo].log() + t * self.lambdas[lo + 1].log())

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> dict:
        b, _, h, w = x.shape
        y = self.g_a(x)
        z = self.h_a(y)
        # Under a bf16 autocast (the CPU training engine) only the transforms run in
        # bf16: the hyper path emulates integer arithmetic and the likelihoods need
        # fp32 tails, so everything from here to g_s is computed in fp32.
        with torch.autocast(x.device.type, enabled=False):
            y_hat, bits_y, bits_z = self._entropy_path(y.float(), z.float(), level.float())
        x_hat = self.g_s(y_hat)
        if x_hat.dtype != torch.float32:
            x_hat = x_hat.float()
        pixels = h * w
        return {
            "x_hat": x_hat,
            "bpp": (bits_y + bits_z) / pixels,
            "bpp_y": bits_y / pixels,
            "bpp_z": bits_z / pixels,
        }

    def _entropy_path(self, y: torch.Tensor, z: torch.Tensor, level: torch.Tensor):
        """(y_hat, bits of y, bits of z) per sample, in fp32 (noise for rates, rounding for y_hat)."""
        # z: noise for the rate, straight-through rounding for h_s (which must see integers).
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_hat = round_ste(z).clamp(-Z_LIMIT, Z_LIMIT)
        mean_q4, index = self.h_s(z_hat)
        # h_s upsamples z by 4; y may be smaller when its side is not a multiple of 4.
        mean_q4, index = mean_q4[..., : y.shape[2], : y.shape[3]], index[..., : y.shape[2], : y.shape[3]]
        k = self.gain_steps(level)[:, :, None, None]
        gain = torch.exp(LOG_SCALE_STEP * k)
        mean = mean_q4 * 2.0**-ACT_FRAC_BITS
        y_g, mean_g = y * gain, mean * gain
        scale_g = scale_from_index(round_ste(index) + k)
        y_noisy = y_g + torch.empty_like(y_g).uniform_(-0.5, 0.5)
        p_y = discretized_gaussian(y_noisy, mean_g, scale_g)
        p_z = self.z_density.likelihood(z_noisy)
        y_hat = (round_ste(y_g - mean_g) + mean_g) / gain
        bits_y = -torch.log2(p_y).flatten(1).sum(1)
        bits_z = -torch.log2(p_z).flatten(1).sum(1)
        return y_hat, bits_y, bits_z


def rd_loss(model: BaseCodec, x: torch.Tensor, level: torch.Tensor, out: dict) -> tuple[torch.Tensor, dict]:
    """Rate-distortion loss: mean over the batch of lambda * 255^2 * MSE + bpp.

    Example:
        >>> import torch
        >>> m = BaseCodec(BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hs_hidden=8, synthesis=(8, 8, 8, 8)))
        >>> x = torch.rand(1, 3, 32, 32); lv = torch.tensor([2.0])
        >>> loss, logs = rd_loss(m, x, lv, m(x, lv))
        >>> sorted(logs)
        ['bpp', 'loss', 'mse', 'psnr']
    """
    mse = (out["x_hat"] - x).square().flatten(1).mean(1)
    lam = model.lambda_at(level)
    loss = (lam * 255.0**2 * mse + out["bpp"]).mean()
    psnr = (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()
    return loss, {"loss": float(loss.detach()), "mse": float(mse.detach().mean()), "bpp": float(out["bpp"].detach().mean()), "psnr": float(psnr.detach())}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
