"""The spectral networks (PyTorch): one small conditional UNet serves the regression baseline and the denoiser.

What it is for: the thesis compares a UNet trained with MSE against an
InstructPix2Pix-style diffusion model. Both are built here from one backbone,
:class:`SpectralUNet`, small enough to train on a 2-core CPU in tens of minutes:

* input channels: the CaSSIS image (3, scaled to [-1, 1]), multiplied by an
  image-keep flag, plus the flag itself as a 4th channel (so "no image" is not
  confused with a black image); the denoiser also gets the noisy FAL image
  ``x_t`` first (3 more channels), i.e. concatenation as in InstructPix2Pix;
* a conditioning vector added in every residual block (scale and shift): the
  diffusion time embedding (denoiser only) plus the metadata embedding;
* :class:`MetadataEmbedding` replaces the CLIP text encoder of the thesis: a
  learned site table (:data:`~pymars.spectral.metadata.SITES`) plus Fourier
  features of latitude and longitude through a linear layer, blended with a
  learned "no metadata" vector by a metadata-keep flag. Training drops the
  metadata (and, for the denoiser, the image) at random, which is what lets
  one model run with or without metadata and gives classifier-free guidance
  its unconditional branches.

* optional carbonate detection head (``carbonate_head``, ``unet`` only): one
  more output channel, a per-pixel logit of "the FAL target is carbonate-green
  here" (G - max(R, B) > 8). An MSE regressor averages the rare green excess
  away (0.7 % of the pixels; docs/spectral.md), so the colour it predicts never
  crosses the green rule; a classifier trained with a class-weighted BCE on the
  green mask, thresholded on the val part, is the direct way to score it.

Every forward takes the same tensors (``x_t`` is ignored by the regression
model), so ONNX export and inference are one code path. With the head the
output has 4 channels: the FAL image, then the carbonate logit.

Example:
    >>> import torch
    >>> net = SpectralUNet(SpectralConfig(kind="diffusion", width=8))
    >>> b = 2
    >>> out = net(torch.zeros(b, 3, 16, 16), torch.zeros(b, 3, 16, 16), torch.ones(b), torch.full((b,), 500.0),
    ...           torch.zeros(b), torch.zeros(b), torch.zeros(b, dtype=torch.long), torch.ones(b))
    >>> tuple(out.shape)
    (2, 3, 16, 16)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from pymars.spectral.metadata import SITES


@dataclass
class SpectralConfig:
    """Architecture of a spectral model. ``kind`` is ``unet`` (MSE regression) or ``diffusion`` (denoiser)."""

    kind: str = "unet"
    width: int = 16
    mults: tuple[int, ...] = (1, 2, 4)
    emb_dim: int = 64
    fourier: int = 4
    sites: int = len(SITES)
    # One more output channel: the carbonate-green logit (module docstring). unet only.
    carbonate_head: bool = False

    def to_dict(self) -> dict:
        """Plain-JSON form (stored in config.json beside the weights).

        ``carbonate_head`` is written only when set, so the config (and the
        checkpoint identity a resumed run is checked against) of a model
        without the head is what it was before the head existed.

        Example:
            >>> SpectralConfig().to_dict()["mults"]
            [1, 2, 4]
            >>> "carbonate_head" in SpectralConfig().to_dict(), SpectralConfig(carbonate_head=True).to_dict()["carbonate_head"]
            (False, True)
        """
        d = asdict(self)
        d["mults"] = list(self.mults)
        if not self.carbonate_head:
            del d["carbonate_head"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SpectralConfig":
        """Inverse of :meth:`to_dict` (unknown keys ignored).

        Example:
            >>> SpectralConfig.from_dict({"kind": "diffusion", "mults": [1, 2], "extra": 1}).mults
            (1, 2)
        """
        names = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in d.items() if k in names}
        if "mults" in kw:
            kw["mults"] = tuple(kw["mults"])
        return cls(**kw)


def fourier_features(lat_deg: torch.Tensor, lon_deg: torch.Tensor, n: int) -> torch.Tensor:
    """``[B, 4n]`` sin/cos of k*lat and k*lon (k = 1..n, radians): periodic in longitude, smooth on the sphere.

    Example:
        >>> import torch
        >>> (fourier_features(torch.zeros(1), torch.tensor([180.0]), 2).round(decimals=3) + 0.0).tolist()
        [[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, -1.0, 1.0]]
    """
    k = torch.arange(1, n + 1, dtype=lat_deg.dtype, device=lat_deg.device)
    a = (lat_deg * (math.pi / 180.0))[:, None] * k  # not torch.deg2rad: it has no ONNX export
    o = (lon_deg * (math.pi / 180.0))[:, None] * k
    return torch.cat([torch.sin(a), torch.sin(o), torch.cos(a), torch.cos(o)], dim=1)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``[B, dim]`` of diffusion times ``t`` (0..1000).

    Example:
        >>> import torch
        >>> time_embedding(torch.tensor([0.0, 10.0]), 8).shape
        torch.Size([2, 8])
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    a = t.float()[:, None] * freqs
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class MetadataEmbedding(nn.Module):
    """Location embedding (site table + lat/lon Fourier features) blended with a learned null by ``keep``."""

    def __init__(self, dim: int, sites: int, fourier: int):
        super().__init__()
        self.fourier = fourier
        self.site = nn.Embedding(sites, dim)
        self.coords = nn.Linear(4 * fourier, dim)
        self.null = nn.Parameter(torch.zeros(dim))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, lat, lon, site, keep):
        e = self.out(self.site(site) + self.coords(fourier_features(lat, lon, self.fourier)))
        k = keep[:, None]
        return k * e + (1 - k) * self.null


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.n1 = nn.GroupNorm(min(8, cin), cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.n2 = nn.GroupNorm(min(8, cout), cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.c1(F.silu(self.n1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.n2(h) * (1 + scale) + shift)
        return self.skip(x) + self.c2(h)


class SpectralUNet(nn.Module):
    """UNet regression model or denoiser (``cfg.kind``); forward(x_t, cassis, image_keep, t, lat, lon, site, meta_keep)."""

    def __init__(self, cfg: SpectralConfig):
        super().__init__()
        if cfg.kind not in ("unet", "diffusion"):
            raise ValueError(f"unknown spectral model kind {cfg.kind!r} (unet or diffusion)")
        if cfg.carbonate_head and cfg.kind != "unet":
            raise ValueError("the carbonate head is for the unet model only")
        self.cfg = cfg
        w, e = cfg.width, cfg.emb_dim
        cin = 4 + (3 if cfg.kind == "diffusion" else 0)
        self.meta = MetadataEmbedding(e, cfg.sites, cfg.fourier)
        if cfg.kind == "diffusion":
            self.time = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.inp = nn.Conv2d(cin, w, 3, padding=1)
        chans = [w * m for m in cfg.mults]
        self.down = nn.ModuleList()
        prev = w
        for c in chans:
            self.down.append(ResBlock(prev, c, e))
            prev = c
        self.mid = ResBlock(prev, prev, e)
        self.up = nn.ModuleList()
        for c in reversed(chans):
            self.up.append(ResBlock(prev + c, c, e))
            prev = c
        self.out = nn.Sequential(nn.GroupNorm(min(8, prev), prev), nn.SiLU(), nn.Conv2d(prev, 3, 3, padding=1))
        if cfg.carbonate_head:
            # Its own small branch on the last decoder features (not a 4th channel of self.out), so a
            # model without the head loads into this one unchanged and only the branch starts new.
            self.carb = nn.Sequential(nn.GroupNorm(min(8, prev), prev), nn.SiLU(), nn.Conv2d(prev, prev, 3, padding=1),
                                      nn.SiLU(), nn.Conv2d(prev, 1, 1))
            with torch.no_grad():  # start near the class prior (~1 % green) rather than at 50 %
                self.carb[-1].bias.fill_(-4.0)

    @property
    def multiple(self) -> int:
        """Image sides must be a multiple of this (one halving between levels)."""
        return 2 ** (len(self.cfg.mults) - 1)

    def forward(self, x_t, cassis, image_keep, t, lat, lon, site, meta_keep):
        k = image_keep[:, None, None, None]
        cond = torch.cat([cassis * k, k.expand(-1, 1, cassis.shape[2], cassis.shape[3])], dim=1)
        h = torch.cat([x_t, cond], dim=1) if self.cfg.kind == "diffusion" else cond
        emb = self.meta(lat, lon, site, meta_keep)
        if self.cfg.kind == "diffusion":
            emb = emb + self.time(time_embedding(t, self.cfg.emb_dim))
        h = self.inp(h)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                h = F.avg_pool2d(h, 2)
            h = block(h, emb)
            skips.append(h)
        h = self.mid(h, emb)
        for i, block in enumerate(self.up):
            if i:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        if self.cfg.carbonate_head:
            return torch.cat([self.out(h), self.carb(h)], dim=1)
        return self.out(h)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    Example:
        >>> count_parameters(torch.nn.Linear(3, 2))
        8
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
