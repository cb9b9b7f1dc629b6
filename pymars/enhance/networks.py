"""PyTorch networks of the enhancer: MarsQE (full and lite), AR-CNN, DnCNN and a U-Net.

What it is for: the trainable networks of issue 6, written so that every one of
them exports to plain ONNX (opset 17: Conv, MatMul, ArgMax/Gather, Softmax,
Reshape/Transpose; no Im2Col/Col2Im) and runs whole images in ONNX Runtime.

MarsQE (Liu et al., MarsQE, Section IV), at the small widths a 2-core CPU can
train (``width`` 16 by default):

* main network: an L = 3 level encoder shared by the compressed input, the
  compressed reference and the raw reference; at every level a
  :class:`TextureExtraction` (TEM, Eqs. 5-7: d x d blocks, cosine similarity,
  arg-max block of the raw reference scaled by the similarity); a decoder whose
  levels fuse the transferred textures with :class:`TextureFusion` (TFM,
  Eq. 8 with channel attention); a :class:`SupervisedAttention` (SAM) that
  outputs ``I_enh`` and the features passed on;
* post-enhancement network (full MarsQE only): encoder-decoder of
  :class:`QualityEnhancement` (QEM: LN, GELU, channel attention) blocks and a
  :class:`NonLocalModule` (NLM, Eq. 9) whose attention is masked to pixels of
  the same semantic class; it outputs ``I+_enh``.

Ablations: ``fusion="add"`` replaces TFM by an addition (paper's "w/o TFM");
``references=False`` removes TEM and TFM ("w/o TEM & TFM").

Baselines: :class:`ARCNN` (Dong et al. 2015; widths reduced) and
:class:`DnCNN` (Zhang et al. 2017; depth and width reduced), both with a
global residual; :class:`DnCNNCascade` appends a dilated stage to a trained
DnCNN (wider context for the wavelet coder's output); :class:`UNet` reads
about 76 pixels each side at MarsQE's MACs per pixel (three 2x levels). Every network maps images in [0, 1] to images in [0, 1]
(unclipped during training).

What it must not do: depend on the batch for inference (DnCNN's batch norm is
used in eval mode), or hold data-dependent Python control flow (it would not
export).

Example:
    >>> import torch
    >>> net = MarsQE(width=8, post=True)
    >>> x = torch.rand(1, 3, 32, 32); r = torch.rand(1, 3, 32, 32)
    >>> enh, plus = net(x, r, r, torch.zeros(1, 1, 32, 32))
    >>> enh.shape, plus.shape
    (torch.Size([1, 3, 32, 32]), torch.Size([1, 3, 32, 32]))
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Block side d of TEM (paper: 4) and number of levels L (paper: 3).
BLOCK = 4
LEVELS = 3
#: TEM's tie margin at inference (see :class:`TextureExtraction`). Similarities are cosines in [-1, 1] and
#: the backends differ by about 1e-7, so a rounding difference moves a blend weight by about 1e-5. On seven
#: development tiles of marsqe-jpeg20 it took the whole-image ONNX/PyTorch gap from 1.7e-3 to 7.2e-7 and
#: PSNR up by 0.003-0.011 dB against the literal arg-max (bench/enhance_tie_margin.py).
TIE_MARGIN = 1e-2
#: Input sides must be multiples of this: two 2x downsamplings, then d x d blocks.
MULTIPLE = 2 ** (LEVELS - 1) * BLOCK


def conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, k // 2)


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity shortcut."""

    def __init__(self, c: int):
        super().__init__()
        self.a, self.b = conv(c, c), conv(c, c)

    def forward(self, x):
        return x + self.b(F.relu(self.a(x)))


class ChannelAttention(nn.Module):
    """RCAN channel attention: per-channel weights in (0, 1) from globally pooled features."""

    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, max(c // reduction, 2), 1), nn.Conv2d(max(c // reduction, 2), c, 1)

    def forward(self, x):
        return torch.sigmoid(self.b(F.relu(self.a(x.mean((2, 3), keepdim=True)))))


class LayerNorm2d(nn.Module):
    """Layer normalisation over channels at every pixel (written out so that it exports to any opset)."""

    def __init__(self, c: int, eps: float = 1e-6):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(1, c, 1, 1)), nn.Parameter(torch.zeros(1, c, 1, 1)), eps

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = ((x - mu) ** 2).mean(1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.weight + self.bias


def to_blocks(x: torch.Tensor, d: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C*d*d, H/d * W/d): non-overlapping d x d blocks as vectors, raster order.

    The same as ``F.unfold(x, d, stride=d)`` but built from Reshape/Transpose,
    which every ONNX opset has.

    Example:
        >>> x = torch.arange(32.).reshape(1, 2, 4, 4)
        >>> bool((to_blocks(x, 2) == F.unfold(x, 2, stride=2)).all())
        True
    """
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // d, d, w // d, d).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * d * d, (h // d) * (w // d))


def from_blocks(v: torch.Tensor, c: int, h: int, w: int, d: int) -> torch.Tensor:
    """Inverse of :func:`to_blocks` (``F.fold`` for non-overlapping blocks).

    Example:
        >>> x = torch.rand(2, 3, 8, 4)
        >>> bool((from_blocks(to_blocks(x, 4), 3, 8, 4, 4) == x).all())
        True
    """
    b = v.shape[0]
    v = v.reshape(b, c, d, d, h // d, w // d).permute(0, 1, 4, 2, 5, 3)
    return v.reshape(b, c, h, w)


class TextureExtraction(nn.Module):
    """TEM (Eqs. 5-7): for each d x d block of the compressed features, the raw-reference block whose
    compressed-reference twin is most cosine-similar, scaled by that similarity.

    Eq. 5's hard arg-max jumps when two candidates are almost equally similar, and
    ONNX Runtime and PyTorch round the similarities differently (about 1e-7), so
    the two backends can pick different blocks and disagree by 1e-3 or more on
    a whole image. With ``margin`` m > 0 the pick is made continuous: every
    candidate whose similarity lies within m of the best gets the weight
    ``m - (best - its similarity)``, normalised. When the runner-up trails by m
    or more this is exactly Eq. 5 (the only weight is the best's); near a tie it
    blends the tied blocks, so a rounding difference moves the output by about
    (difference / m) instead of flipping it. ``margin=0`` is the literal arg-max:
    training uses it (the paper's Eq. 5); the export sets :data:`TIE_MARGIN`.

    Example:
        >>> tem = TextureExtraction(2)
        >>> q = torch.rand(1, 3, 4, 4)
        >>> bool(torch.allclose(tem(q, q, q), q))  # every block finds itself with similarity 1
        True
        >>> k = torch.cat([q[..., :2], q[..., :2]], dim=3)  # every block has an exact twin: a tie
        >>> v = torch.cat([torch.zeros(1, 3, 4, 2), torch.ones(1, 3, 4, 2)], dim=3)
        >>> round(float(TextureExtraction(2, margin=TIE_MARGIN)(k, k, v).mean()), 4)  # the tied pair is blended half and half
        0.5
    """

    def __init__(self, block: int = BLOCK, margin: float = 0.0):
        super().__init__()
        self.block, self.margin = block, float(margin)

    def forward(self, query, key, value):
        d = self.block
        b, c, h, w = query.shape
        q = F.normalize(to_blocks(query, d), dim=1)
        k = F.normalize(to_blocks(key, d), dim=1)
        v = to_blocks(value, d)
        sim = torch.bmm(q.transpose(1, 2), k)  # (B, Nq, Nk): <B_comp^i / |.|, B_ref^j / |.|>
        if self.margin <= 0:
            score, index = sim.max(dim=2)  # S_i (Eq. 6) and D_i (Eq. 5)
            picked = torch.gather(v, 2, index.unsqueeze(1).expand(-1, v.shape[1], -1))
        else:
            score = sim.max(dim=2, keepdim=True).values  # S_i (Eq. 6); the max itself is continuous
            weight = torch.relu(sim - score + self.margin)  # > 0 only within the margin of the best
            weight = weight / weight.sum(dim=2, keepdim=True)  # the best alone contributes m: never 0
            picked = torch.bmm(v, weight.transpose(1, 2))  # D_i (Eq. 5), blended only near a tie
            score = score.squeeze(2)
        return from_blocks(picked * score.unsqueeze(1), c, h, w, d)  # Eq. 7


class TextureFusion(nn.Module):
    """TFM (Eq. 8): F_res = C3(F_trans) - F~; F_fused = C3(F~ + F_res * CA(F~))."""

    def __init__(self, c: int):
        super().__init__()
        self.trans, self.out, self.ca = conv(c, c), conv(c, c), ChannelAttention(c)

    def forward(self, trans, decoded):
        res = self.trans(trans) - decoded
        return self.out(decoded + res * self.ca(decoded))


class SupervisedAttention(nn.Module):
    """SAM (MPRNet): an image from the features (+ the input), and features re-weighted by that image."""

    def __init__(self, c: int, features: bool = True):
        super().__init__()
        self.img = conv(c, 3)
        # MarsQE-lite has no post network to pass features to: no attention branch (no dead weights).
        self.features = features
        if features:
            self.f, self.back = conv(c, c), conv(3, c)

    def forward(self, feat, image):
        out = self.img(feat) + image
        if not self.features:
            return feat, out
        return self.f(feat) * torch.sigmoid(self.back(out)) + feat, out


class QualityEnhancement(nn.Module):
    """QEM: x + CA-weighted (LN -> conv3x3 -> GELU -> conv1x1)(x)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm, self.a, self.b, self.ca = LayerNorm2d(c), conv(c, c), nn.Conv2d(c, c, 1), ChannelAttention(c)

    def forward(self, x):
        y = self.b(F.gelu(self.a(self.norm(x))))
        return x + y * self.ca(y)


class NonLocalAttention(nn.Module):
    """Dot-product attention over all pixels, masked so that a pixel attends only to pixels of its class.

    The paper runs one non-local pass per semantic class (a speed-up); the
    masked form computes the same thing in one graph that ONNX can hold.

    Example:
        >>> nla = NonLocalAttention(4)
        >>> x = torch.rand(1, 4, 2, 2); cls = torch.tensor([[[[0., 1.], [0., 1.]]]])
        >>> y = nla(x, cls); x2 = x.clone(); x2[..., 1] += 5  # change only class-1 pixels
        >>> bool(torch.allclose(nla(x2, cls)[..., 0], y[..., 0]))  # class-0 outputs do not move
        True
    """

    def __init__(self, c: int):
        super().__init__()
        self.q, self.k, self.v = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.scale = c ** -0.5

    def forward(self, x, classes):
        b, c, h, w = x.shape
        q, k, v = self.q(x).reshape(b, c, -1), self.k(x).reshape(b, c, -1), self.v(x).reshape(b, c, -1)
        logits = torch.bmm(q.transpose(1, 2), k) * self.scale  # (B, N, N)
        cl = classes.reshape(b, -1)
        same = (cl.unsqueeze(2) == cl.unsqueeze(1)).to(logits.dtype)
        # A finite large negative (not -inf): every row has at least itself, and no NaN can appear.
        attn = torch.softmax(logits - (1.0 - same) * 1e4, dim=2)
        return torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, h, w)


class NonLocalModule(nn.Module):
    """NLM (Eq. 9): X = C3(NLA(LN(F))) + F;  F' = C1(GELU(C1(LN(X)))) + X."""

    def __init__(self, c: int):
        super().__init__()
        self.n1, self.nla, self.c3 = LayerNorm2d(c), NonLocalAttention(c), conv(c, c)
        self.n2, self.m1, self.m2 = LayerNorm2d(c), nn.Conv2d(c, 2 * c, 1), nn.Conv2d(2 * c, c, 1)

    def forward(self, f, classes):
        x = self.c3(self.nla(self.n1(f), classes)) + f
        return self.m2(F.gelu(self.m1(self.n2(x)))) + x


class Encoder(nn.Module):
    """L = 3 level feature encoder (widths c, 2c, 4c), shared by the input and both references."""

    def __init__(self, c: int):
        super().__init__()
        self.head, self.l1 = conv(3, c), ResBlock(c)
        self.d1, self.l2 = conv(c, 2 * c, 3, 2), ResBlock(2 * c)
        self.d2, self.l3 = conv(2 * c, 4 * c, 3, 2), ResBlock(4 * c)

    def forward(self, x):
        e1 = self.l1(self.head(x))
        e2 = self.l2(self.d1(e1))
        return e1, e2, self.l3(self.d2(e2))


class MarsQE(nn.Module):
    """MarsQE (``post=True``) or MarsQE-lite (``post=False``); see the module docstring.

    ``forward(comp, ref_raw, ref_comp, classes)`` takes images in [0, 1]
    (sides multiples of :data:`MULTIPLE`; the references may have another
    size than the input) and a (B, 1, H, W) class-index map; it returns
    ``(I_enh, I+_enh)`` (the lite network returns ``I_enh`` twice).
    """

    def __init__(self, width: int = 16, post: bool = True, fusion: str = "tfm", references: bool = True):
        super().__init__()
        if fusion not in ("tfm", "add"):
            raise ValueError(f"fusion must be 'tfm' or 'add', not {fusion!r}")
        c = width
        self.width, self.post_enabled, self.fusion, self.references = width, post, fusion, references
        self.encoder = Encoder(c)
        self.tem = TextureExtraction(BLOCK)
        self.b3 = ResBlock(4 * c)
        self.up2, self.r2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, 2), ResBlock(2 * c)
        self.up1, self.r1 = nn.ConvTranspose2d(2 * c, c, 2, 2), ResBlock(c)
        self.tfm = nn.ModuleList([TextureFusion(k * c) for k in (1, 2, 4)]) if references and fusion == "tfm" else None
        self.sam = SupervisedAttention(c, features=post)
        if post:
            self.p_in, self.p_mix = conv(3, c), nn.Conv2d(2 * c, c, 1)
            self.p_q1, self.p_d1 = QualityEnhancement(c), conv(c, 2 * c, 3, 2)
            self.p_q2, self.p_d2 = QualityEnhancement(2 * c), conv(2 * c, 4 * c, 3, 2)
            self.p_nlm = NonLocalModule(4 * c)
            self.p_u2, self.p_q3 = nn.ConvTranspose2d(4 * c, 2 * c, 2, 2), QualityEnhancement(2 * c)
            self.p_u1, self.p_q4 = nn.ConvTranspose2d(2 * c, c, 2, 2), QualityEnhancement(c)
            self.p_out = conv(c, 3)

    def _fuse(self, level: int, trans, decoded):
        if not self.references:
            return decoded
        if self.fusion == "add":
            return decoded + trans
        return self.tfm[level](trans, decoded)

    def main(self, comp, ref_raw, ref_comp):
        """The main (patch-wise) network: ``(I_enh, features for the post network)``."""
        e1, e2, e3 = self.encoder(comp)
        if self.references:
            k1, k2, k3 = self.encoder(ref_comp)
            v1, v2, v3 = self.encoder(ref_raw)
            t1, t2, t3 = self.tem(e1, k1, v1), self.tem(e2, k2, v2), self.tem(e3, k3, v3)
        else:
            t1 = t2 = t3 = None
        d3 = self._fuse(2, t3, self.b3(e3))
        d2 = self._fuse(1, t2, self.r2(self.up2(d3) + e2))
        d1 = self._fuse(0, t1, self.r1(self.up1(d2) + e1))
        feat, enh = self.sam(d1, comp)
        return enh, feat

    def post(self, comp, enh, feat, classes):
        """The post-enhancement network: ``I+_enh`` from the input, ``I_enh``, the SAM features and the class map."""
        h1 = self.p_q1(self.p_mix(torch.cat([self.p_in(comp), feat], 1)))
        h2 = self.p_q2(self.p_d1(h1))
        h3 = self.p_nlm(self.p_d2(h2), classes[:, :, ::4, ::4])
        u2 = self.p_q3(self.p_u2(h3) + h2)
        u1 = self.p_q4(self.p_u1(u2) + h1)
        return enh + self.p_out(u1)

    def forward(self, comp, ref_raw, ref_comp, classes):
        enh, feat = self.main(comp, ref_raw, ref_comp)
        if not self.post_enabled:
            return enh, enh
        return enh, self.post(comp, enh, feat, classes)


class ARCNN(nn.Module):
    """AR-CNN: feature extraction 9x9, feature enhancement 7x7, mapping 1x1, reconstruction 5x5.

    Widths (32, 16, 16) instead of (64, 32, 16) to fit the CPU budget; a
    global residual (the net predicts the correction) so that it trains in
    the same small number of steps as the others.
    """

    def __init__(self, widths=(32, 16, 16)):
        super().__init__()
        a, b, c = widths
        self.body = nn.Sequential(conv(3, a, 9), nn.PReLU(a), conv(a, b, 7), nn.PReLU(b), conv(b, c, 1), nn.PReLU(c),
                                  conv(c, 3, 5))

    def forward(self, comp):
        return comp + self.body(comp)


class DnCNN(nn.Module):
    """DnCNN: conv-ReLU, (depth - 2) x conv-BN-ReLU, conv; residual learning (the net predicts -noise)."""

    def __init__(self, depth: int = 10, width: int = 32):
        super().__init__()
        layers = [conv(3, width), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [conv(width, width), nn.BatchNorm2d(width), nn.ReLU()]
        layers.append(conv(width, 3))
        self.body = nn.Sequential(*layers)

    def forward(self, comp):
        return comp + self.body(comp)


class DilatedStage(nn.Module):
    """A residual refinement stage of dilated 3x3 convolutions (IRCNN-style context at DnCNN's cost per layer).

    Why: a wavelet coder's errors (ringing around edges, smoothed texture) span
    further than DnCNN's 21 x 21 receptive field; dilations 1-2-4-8-4-2-1 see
    49 x 49 with seven layers. The last convolution starts at zero, so a stage
    appended to a trained net starts as the identity and training can only
    move away from the trained net's output where that lowers the loss.
    """

    def __init__(self, width: int = 32, dilations: tuple[int, ...] = (1, 2, 4, 8, 4, 2, 1)):
        super().__init__()
        layers = [conv(3, width), nn.ReLU()]
        for d in dilations:
            layers += [nn.Conv2d(width, width, 3, 1, d, dilation=d), nn.ReLU()]
        last = conv(width, 3)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        layers.append(last)
        self.body = nn.Sequential(*layers)
        #: Pixels of context the stage reads on each side.
        self.radius = 2 + sum(dilations)

    def forward(self, x):
        return x + self.body(x)


class DnCNNCascade(nn.Module):
    """DnCNN followed by a :class:`DilatedStage` (kind ``dncnn-cascade``): a trained DnCNN extended in reach.

    Started from a trained DnCNN (``--init-from`` a ``dncnn`` folder fills
    ``first``), it begins exactly at that net's output.

    Example:
        >>> import torch
        >>> net = DnCNNCascade().eval()
        >>> x = torch.rand(1, 3, 24, 24)
        >>> bool(torch.equal(net(x), net.first(x))), net.radius
        (True, 34)
    """

    def __init__(self):
        super().__init__()
        self.first = DnCNN()
        self.second = DilatedStage()
        #: Receptive-field radius of the whole cascade (DnCNN's ten 3x3 layers, then the stage's).
        self.radius = 10 + self.second.radius

    def forward(self, comp):
        return self.second(self.first(comp))


class UNet(nn.Module):
    """A residual U-Net (kind ``unet``): three 2x downsamplings, one residual block per level each way.

    Why: JPEG's errors at QF 20-50 are block-sized and correlated across blocks
    (8 x 8 DCT quantisation, chroma at half resolution), while DnCNN and MarsQE's
    main network read about 10-40 pixels each side; a U-Net reads about 76 at 0.90 of
    MarsQE's MACs per pixel (131,776; bench/enhance_macs.py), since its deeper levels work on 1/4, 1/16 and
    1/64 of the pixels. Skips are sums (no concatenation), down- and upsampling
    are 2 x 2 stride-2 convolutions, and the last convolution starts at zero,
    so a fresh net is the identity (global residual).

    Input sides must be multiples of :attr:`multiple` (8); ``Enhancer`` pads
    images by edge replication to that and cuts the pad off.

    Example:
        >>> import torch
        >>> net = UNet().eval()
        >>> x = torch.rand(1, 3, 24, 32)
        >>> bool(torch.equal(net(x), x)), net.multiple, net.radius
        (True, 8, 76)
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 128)):
        super().__init__()
        self.widths = tuple(widths)
        self.head = conv(3, widths[0])
        self.enc = nn.ModuleList(ResBlock(c) for c in widths[:-1])
        self.down = nn.ModuleList(nn.Conv2d(a, b, 2, 2) for a, b in zip(widths[:-1], widths[1:]))
        self.bottom = nn.Sequential(ResBlock(widths[-1]), ResBlock(widths[-1]))
        self.up = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, 2) for a, b in zip(widths[:-1], widths[1:]))
        self.dec = nn.ModuleList(ResBlock(c) for c in widths[:-1])
        self.tail = conv(widths[0], 3)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)
        levels = len(widths) - 1
        #: Input sides must be multiples of this.
        self.multiple = 2 ** levels
        # Reach: a 3x3 conv at level l adds 2^l pixels each side; each level has two blocks (enc, dec) of two
        # convolutions, the bottom two blocks; the head and the tail one each; strided 2x2 convolutions add
        # 2^l - 1 at most (counted as 2^l).
        self.radius = 2 + sum(4 * 2 ** level + 2 ** level for level in range(levels)) + 4 * 2 ** levels + \
            sum(2 ** level for level in range(levels))

    def forward(self, comp):
        x = self.head(comp)
        skips = []
        for block, down in zip(self.enc, self.down):
            x = block(x)
            skips.append(x)
            x = down(F.relu(x))
        x = self.bottom(x)
        for block, up, skip in zip(reversed(self.dec), reversed(self.up), reversed(skips)):
            x = block(up(x) + skip)
        return comp + self.tail(F.relu(x))


#: Model kinds that take only the compressed image (the others also take references and classes).
PLAIN_KINDS = ("arcnn", "dncnn", "dncnn-cascade", "unet")
MARSQE_KINDS = ("marsqe", "marsqe-lite", "marsqe-notfm", "marsqe-notem")


def build(kind: str, width: int = 16) -> nn.Module:
    """A fresh network of a kind: arcnn, dncnn, dncnn-cascade, unet, marsqe, marsqe-lite, marsqe-notfm, marsqe-notem.

    Example:
        >>> type(build("marsqe-lite")).__name__, build("marsqe-lite").post_enabled
        ('MarsQE', False)
    """
    if kind == "arcnn":
        return ARCNN()
    if kind == "dncnn":
        return DnCNN()
    if kind == "dncnn-cascade":
        return DnCNNCascade()
    if kind == "unet":
        return UNet()
    if kind == "marsqe":
        return MarsQE(width, post=True)
    if kind == "marsqe-lite":
        return MarsQE(width, post=False)
    if kind == "marsqe-notfm":
        return MarsQE(width, post=True, fusion="add")
    if kind == "marsqe-notem":
        return MarsQE(width, post=True, references=False)
    raise ValueError(f"unknown enhancer kind {kind!r}; known: {PLAIN_KINDS + MARSQE_KINDS}")
