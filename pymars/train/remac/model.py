"""The REMAC model: the base codec plus a reference-guided integer h_s and a reference-fed ground decoder.

What it is for: training and exporting the reference-based codec of
docs/remac.md on top of a trained base model, whose rover analysis (g_a, h_a,
gains) it keeps *unchanged*, so the rover pays only for the selection:

    rover (unchanged g_a, h_a)                 shared (integer, C++ core)
    x --g_a--> y --h_a--> z_hat                z_hat --up1,up2--> a ----------+
    entropy ref r_e (library latent, int8) --ref conv--> QReLU --> r ---- concat --mid--> head --> mean, index
                                                                      ground (float)
    y_hat --RefSynthesis(y_hat, decoder ref tile r_d)--> x_hat

* :class:`ReferenceHyperSynthesis`: the base integer h_s whose ``mid`` layer
  also reads ``r = QReLU(conv3x3(ref_latent))``; the reference latent enters as
  integers in units of 1/8 (the library stores ``round(8y)``). Its new weights
  start at zero, so before training it *is* the base h_s, bit for bit.
* :class:`RefSynthesis`: the base g_s deepened (dilated residual blocks at
  1/16 and 1/8 for a larger receptive field, one more block at 1/4) and fed
  with the decoder reference through a texture-transfer block
  (:class:`BlockTextureTransfer`, MarsQE's TEM: per 4x4 block of decoder
  features, copy the features of the most cosine-similar reference block,
  weighted by that similarity). New residual branches and the fusion start at
  zero, so before training it *is* the base g_s.

No reference ("none": empty library) means a zero reference latent and an
all-zero reference tile; training shows the model that case too.

What it must not do: compute anything that decides a probability table for
coding (the C++ core runs the exported integers), or train g_a / h_a / gains.

Example:
    >>> import torch
    >>> from pymars.train.codec.network import BaseCodec, BaseConfig
    >>> base = BaseCodec(BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8, synthesis=(8, 8, 8, 8)))
    >>> m = RemacCodec(base, RemacConfig(ref_channels=4, tem_channels=4, value_channels=4))
    >>> x = torch.rand(2, 3, 64, 64)
    >>> out = m(x, torch.tensor([0.0, 5.0]), torch.zeros(2, 8, 16, 16), torch.rand(2, 3, 256, 256))
    >>> out["x_hat"].shape, out["bpp"].shape
    (torch.Size([2, 3, 64, 64]), torch.Size([2]))
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pymars.train.codec.entropy_model import LOG_SCALE_STEP, discretized_gaussian, scale_from_index
from pymars.train.codec.integer import (
    ACT_FRAC_BITS,
    ACT_MAX,
    MEAN_MAX,
    MEAN_MIN,
    FakeQuantConv,
    IntegerHyperSynthesis,
    IntegerLayer,
    qrelu,
    round_ste,
)
from pymars.train.codec.layers import ResidualBlock
from pymars.train.codec.network import Z_LIMIT, BaseCodec

#: Fractional bits of the stored reference latents (round(8 * y)).
REF_FRAC_BITS = 3
#: Side of a reference latent (a 256x256 reference tile at 1/16).
REF_LATENT = 16
#: Block side of the texture transfer (MarsQE's d).
TEM_BLOCK = 4


@dataclass
class RemacConfig:
    """Sizes of the reference parts (stored with the weights).

    Example:
        >>> RemacConfig().ref_channels
        16
    """

    ref_channels: int = 16  # channels of the integer reference branch of h_s
    tem_channels: int = 32  # key/query channels of the texture transfer
    value_channels: int = 48  # reference feature channels copied by the transfer
    dilations: tuple = (2, 4)  # extra residual blocks at 1/16
    refine_blocks: int = 0  # residual blocks at 1/2 resolution before the last upsampling (remac-v1: 0)
    name: str = "pymars-remac"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RemacConfig":
        d = dict(d)
        if "dilations" in d:
            d["dilations"] = tuple(d["dilations"])
        return cls(**d)


def tile_reference_latent(ref: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The reference latent laid over an h x w grid: ``out[.., y, x] = ref[.., y % 16, x % 16]``.

    This is the C++ core's rule for any tile size (docs/remac.md): a 256 tile
    sees the whole reference, smaller ones its top-left part, larger ones a
    periodic repetition.

    Example:
        >>> import torch
        >>> r = torch.arange(16.0).repeat(16, 1)[None, None]
        >>> tile_reference_latent(r, 2, 18)[0, 0, 0, 15:].tolist()
        [15.0, 0.0, 1.0]
    """
    s = ref.shape[-1]
    ry, rx = -(-h // s), -(-w // s)
    return ref.repeat(1, 1, ry, rx)[..., :h, :w]


class ReferenceHyperSynthesis(nn.Module):
    """Integer h_s with a reference input: see the module docstring.

    Example:
        >>> import torch
        >>> base = IntegerHyperSynthesis(4, 8, 3, 80)
        >>> hs = ReferenceHyperSynthesis(base, ref_channels=2)
        >>> z = torch.randint(-3, 4, (1, 4, 2, 2)).float()
        >>> m0, i0 = base(z); m1, i1 = hs(z, torch.randint(-50, 50, (1, 3, 16, 16)).float())
        >>> bool((m0 == m1).all() and (i0 == i1).all())   # zero-initialised branch: base behaviour
        True
    """

    def __init__(self, base: IntegerHyperSynthesis, ref_channels: int = 16):
        super().__init__()
        f = ACT_FRAC_BITS
        self.y_channels = base.y_channels
        self.scale_levels = base.scale_levels
        hidden = base.mid.conv.in_channels
        self.up1, self.up2, self.head = copy.deepcopy(base.up1), copy.deepcopy(base.up2), copy.deepcopy(base.head)
        self.ref = FakeQuantConv(base.y_channels, ref_channels, 3, REF_FRAC_BITS, [f] * ref_channels)
        self.mid = FakeQuantConv(hidden + ref_channels, hidden, 3, f, [f] * hidden)
        with torch.no_grad():
            nn.init.normal_(self.ref.conv.weight, std=0.02)
            self.ref.conv.bias.fill_(1.0)
            self.mid.conv.weight.zero_()
            self.mid.conv.weight[:, :hidden] = base.mid.conv.weight
            self.mid.conv.bias.copy_(base.mid.conv.bias)

    def set_quantized(self, on: bool) -> None:
        """Integer model (default) or its float twin.

        Example:
            >>> hs = ReferenceHyperSynthesis(IntegerHyperSynthesis(2, 4, 1, 80), 2); hs.set_quantized(False)
            >>> hs.ref.quantize
            False
        """
        for conv in (self.up1, self.up2, self.ref, self.mid, self.head):
            conv.quantize = on

    def forward(self, z_hat: torch.Tensor, ref_latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = qrelu(F.pixel_shuffle(self.up1(z_hat), 2))
        a = qrelu(F.pixel_shuffle(self.up2(a), 2))
        r = qrelu(self.ref(tile_reference_latent(ref_latent, a.shape[2], a.shape[3])))
        a = qrelu(self.mid(torch.cat([a, r], 1)))
        out = self.head(a)
        return out[:, : self.y_channels].clamp(MEAN_MIN, MEAN_MAX), out[:, self.y_channels :]

    def export(self) -> tuple[list[IntegerLayer], IntegerLayer]:
        """(the four h_s layers with ``mid`` reading hidden + R channels, the reference layer).

        Example:
            >>> hs = ReferenceHyperSynthesis(IntegerHyperSynthesis(4, 8, 3, 80), 2)
            >>> layers, ref = hs.export()
            >>> layers[2].weight.shape[1], ref.weight.shape[:2]
            (10, (2, 3))
        """
        m = self.y_channels
        n1, n2, nm = self.up1.conv.out_channels, self.up2.conv.out_channels, self.mid.conv.out_channels
        nr = self.ref.conv.out_channels
        big = 2**31 - 1
        layers = [
            self.up1.export([0] * n1, [ACT_MAX] * n1, True),
            self.up2.export([0] * n2, [ACT_MAX] * n2, True),
            self.mid.export([0] * nm, [ACT_MAX] * nm, False),
            self.head.export([MEAN_MIN] * m + [-big] * m, [MEAN_MAX] * m + [big] * m, False),
        ]
        return layers, self.ref.export([0] * nr, [ACT_MAX] * nr, False)


class DilatedResidualBlock(nn.Module):
    """Residual block of two dilated 3x3 convolutions; the second starts at zero (identity at start).

    Example:
        >>> import torch
        >>> b = DilatedResidualBlock(4, 2); x = torch.rand(1, 4, 8, 8)
        >>> bool(torch.equal(b(x), x))
        True
    """

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.1))


def _blocks(x: torch.Tensor, d: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, (H/d)(W/d), C*d*d), blocks in raster order."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // d, d, w // d, d).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // d) * (w // d), c * d * d)


def _unblocks(t: torch.Tensor, c: int, h: int, w: int, d: int) -> torch.Tensor:
    b = t.shape[0]
    t = t.reshape(b, h // d, w // d, c, d, d).permute(0, 3, 1, 4, 2, 5)
    return t.reshape(b, c, h, w)


def block_texture_transfer(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, d: int = TEM_BLOCK):
    """MarsQE's TEM: for each d x d block of ``query``, the ``value`` block at the most cosine-similar ``key`` block.

    Returns (transferred values (B, Cv, H, W), similarity map (B, 1, H, W)).
    H, W and the key's sides must be multiples of d.

    Example:
        >>> import torch
        >>> k = torch.zeros(1, 1, 8, 4); k[0, 0, :4] = 1; k[0, 0, 4:] = -1
        >>> v = torch.zeros(1, 1, 8, 4); v[0, 0, 4:] = 7
        >>> t, s = block_texture_transfer(-torch.ones(1, 1, 4, 4), k, v)
        >>> t.unique().tolist(), s.unique().tolist()
        ([7.0], [1.0])
    """
    b, _, h, w = query.shape
    q = F.normalize(_blocks(query, d), dim=-1)
    k = F.normalize(_blocks(key, d), dim=-1)
    v = _blocks(value, d)
    sim = torch.bmm(q, k.transpose(1, 2))  # (B, Nq, Nk)
    best, idx = sim.max(dim=2)
    t = torch.gather(v, 1, idx[..., None].expand(-1, -1, v.shape[2]))
    cv = value.shape[1]
    s_map = best[..., None].expand(-1, -1, d * d)
    return _unblocks(t, cv, h, w, d), _unblocks(s_map, 1, h, w, d)


class ReferenceFeatures(nn.Module):
    """Reference tile (B, 3, 256, 256) in [0, 1] -> (keys, values) at 1/4 resolution.

    Example:
        >>> import torch
        >>> k, v = ReferenceFeatures(8, 6)(torch.rand(1, 3, 32, 32))
        >>> k.shape, v.shape
        (torch.Size([1, 8, 8, 8]), torch.Size([1, 6, 8, 8]))
    """

    def __init__(self, key_channels: int, value_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(32, value_channels, 3, 2, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(value_channels, value_channels, 3, 1, 1),
        )
        self.key = nn.Conv2d(value_channels, key_channels, 1)

    def forward(self, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.body(ref)
        return self.key(v), v


class RefSynthesis(nn.Module):
    """The ground's ref-decoder: (y_hat, reference tile) -> image in [0, 1] (not clamped).

    Built from a base g_s (``base_layers``: its ``nn.Sequential``), whose
    weights it starts from. Layer order of the base g_s (pymars.train.codec.network):
    conv, RB, up, IGDN, RB, up, IGDN, RB, up, IGDN, up.

    Example:
        >>> import torch
        >>> from pymars.train.codec.network import BaseConfig, Synthesis
        >>> g = Synthesis(BaseConfig(latent=8, synthesis=(8, 8, 8, 8)))
        >>> r = RefSynthesis(g.layers, RemacConfig(tem_channels=4, value_channels=4, refine_blocks=2))
        >>> y = torch.rand(1, 8, 2, 3)
        >>> bool(torch.allclose(r(y, torch.rand(1, 3, 256, 256)), g(y), atol=1e-6))  # starts as the base g_s
        True
    """

    def __init__(self, base_layers: nn.Sequential, cfg: RemacConfig):
        super().__init__()
        L = copy.deepcopy(base_layers)
        c0 = L[0].out_channels
        c1 = L[2].conv.out_channels // 4
        c2 = L[5].conv.out_channels // 4
        self.s16 = nn.Sequential(L[0], L[1], *[DilatedResidualBlock(c0, dl) for dl in cfg.dilations])
        self.s8 = nn.Sequential(L[2], L[3], L[4], DilatedResidualBlock(c1, 2))
        self.s4 = nn.Sequential(L[5], L[6], L[7])
        self.ref_features = ReferenceFeatures(cfg.tem_channels, cfg.value_channels)
        self.query = nn.Conv2d(c2, cfg.tem_channels, 1)
        self.fuse = nn.Conv2d(c2 + cfg.value_channels, c2, 1)
        nn.init.zeros_(self.fuse.weight)
        nn.init.zeros_(self.fuse.bias)
        self.after = nn.Sequential(DilatedResidualBlock(c2, 1), L[8], L[9], L[10])
        # Why at 1/2 resolution: the base g_s has only the last pixel shuffle after its
        # 64-channel 1/2-resolution features, and its autoencoder ceiling (continuous y)
        # equals its PSNR at the top quality: the fine detail is lost in the decoder.
        c_half = L[10].conv.in_channels
        self.refine = nn.Sequential(*[DilatedResidualBlock(c_half, 1) for _ in range(cfg.refine_blocks)])

    def forward(self, y_hat: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        f = self.s4(self.s8(self.s16(y_hat)))
        key, value = self.ref_features(ref)
        t, s = block_texture_transfer(self.query(f), key, value)
        f = f + self.fuse(torch.cat([f, t * s], 1))
        return self.after[3](self.refine(self.after[:3](f)))


class RemacCodec(nn.Module):
    """Frozen base rover parts + trainable reference-guided h_s + ref-decoder.

    ``forward(x, level, ref_latent, ref_tile)``: ``ref_latent`` (B, M, 16, 16)
    holds the entropy references' int8 latents as floats (zeros: none),
    ``ref_tile`` (B, 3, 256, 256) the decoder references in [0, 1] (zeros: none).
    """

    def __init__(self, base: BaseCodec, cfg: RemacConfig | None = None):
        super().__init__()
        self.cfg = cfg or RemacConfig()
        self.base_cfg = base.cfg
        self.g_a, self.h_a, self.z_density = base.g_a, base.h_a, base.z_density
        self.register_buffer("lambdas", base.lambdas.clone())
        self.log_gain = nn.Parameter(base.log_gain.detach().clone(), requires_grad=False)
        for p in list(self.g_a.parameters()) + list(self.h_a.parameters()) + list(self.z_density.parameters()):
            p.requires_grad_(False)
        self.h_s = ReferenceHyperSynthesis(base.h_s, self.cfg.ref_channels)
        self.g_s = RefSynthesis(base.g_s.layers, self.cfg)

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    gain_steps = BaseCodec.gain_steps
    lambda_at = BaseCodec.lambda_at

    def forward(self, x: torch.Tensor, level: torch.Tensor, ref_latent: torch.Tensor, ref_tile: torch.Tensor,
                y: torch.Tensor | None = None) -> dict:
        """``y``: the analysis of ``x`` when the caller has it already (training computes it to select references)."""
        b, _, h, w = x.shape
        with torch.no_grad():
            y = self.g_a(x) if y is None else y
            z_hat = torch.round(self.h_a(y)).clamp(-Z_LIMIT, Z_LIMIT)
            p_z = self.z_density.likelihood(z_hat)
        mean_q4, index = self.h_s(z_hat, ref_latent)
        mean_q4, index = mean_q4[..., : y.shape[2], : y.shape[3]], index[..., : y.shape[2], : y.shape[3]]
        k = self.gain_steps(level.to(x.dtype))[:, :, None, None]
        gain = torch.exp(LOG_SCALE_STEP * k)
        mean_g = mean_q4 * 2.0**-ACT_FRAC_BITS * gain
        y_g = y * gain
        scale_g = scale_from_index(round_ste(index) + k)
        p_y = discretized_gaussian(y_g + torch.empty_like(y_g).uniform_(-0.5, 0.5), mean_g, scale_g)
        y_hat = (torch.round(y_g - mean_g) + mean_g) / gain
        x_hat = self.g_s(y_hat, ref_tile)
        bits_y = -torch.log2(p_y).flatten(1).sum(1)
        bits_z = -torch.log2(p_z).flatten(1).sum(1)
        return {"x_hat": x_hat, "bpp": (bits_y + bits_z) / (h * w), "bpp_y": bits_y / (h * w), "bpp_z": bits_z / (h * w)}
