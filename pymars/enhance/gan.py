"""The debiased GAN recipe (model-agnostic) and the bias-triangle evaluation.

What it is for: the enhancement-bias paper (../shared/papers/003_*.txt)
observes that GAN-trained enhancers end up closer to the *compressed* domain
than to the raw one, and fixes it with two mechanisms that any enhancer can
use; this module adds them to pymars.enhance.training (``--gan``):

1. a conditional discriminator ``D(I | I_C)`` (Eq. 4): the discriminator sees
   the candidate image concatenated with the compressed input, so it can
   tell compression artefacts from raw texture (mode ``conditional``; the
   unconditional ``D(I)`` of Eq. 2 is mode ``plain``);
2. the domain-divergence regularisation ``L_R`` (Eqs. 6-8): with
   ``D_CR = |psi(I_R) - psi(I_C)|`` and ``D_CE = |psi(I_E) - psi(I_C)|``,
   ``L_R = D_CR - D_CE`` when ``D_CE < D_CR``, else 0 (suffix ``+lr``).

The generator loss is Eq. 9: ``L_recon + lambda_p L_percept + lambda_d
L_discrim + lambda_R L_R``, with the enhancer's own MSE as ``L_recon``,
``L_percept`` the mean absolute psi-feature difference to the raw image.

psi, the frozen feature network: the paper uses VGG-19 (ImageNet), which
cannot be obtained here. pymars uses the frozen analysis transform g_a of
the shipped codec (pymars/weights/base-v1: four 5x5 stride-2 convolutions
with GDN, trained on Mars images to keep what reconstruction needs), taking
the outputs of its four stages (1/2 .. 1/16 resolution) as psi_l. It is the
project's own Mars-trained multi-scale convolutional network, it needs no
download, and the bias triangle below uses the same network, so training
and evaluation measure the same feature space. (stlpips-pytorch's
shift-tolerant AlexNet was considered: its wheel is 63 MB and needs
torchvision, which is not installed.) docs/enhance.md discusses it.

Bias triangle (Section 3, Eq. 1): distances between the raw (R), compressed
(C) and enhanced (E) domains, ``S_CR``, ``S_CE``, ``S_RE``, and the horizontal
deviation of E from the perpendicular bisector of C-R,
``(S_CE^2 - S_RE^2) / S_CR^2 * 100 %``: negative means E is closer to the
compressed domain (biased), +100 % means E sits on R, -100 % on C. Two
distances, on psi features: ``fd`` (Frechet distance of Gaussians fitted to
pooled patch features, the FID construction) and ``pd`` (paired mean
feature distance with unit-normalised channels, the LPIPS construction
without learned weights).

Example:
    >>> deviation(s_cr=1.0, s_ce=0.0, s_re=1.0), deviation(s_cr=1.0, s_ce=1.0, s_re=0.0)
    (-100.0, 100.0)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pymars.bundles import open_bundle
from pymars.train.codec.torch_backend import torch_model


def deviation(s_cr: float, s_ce: float, s_re: float) -> float:
    """Eq. 1 of the bias paper, in percent."""
    return float((s_ce**2 - s_re**2) / s_cr**2 * 100.0)


class FeatureNet(nn.Module):
    """psi: the frozen g_a of the shipped codec; ``forward`` returns its four stage outputs.

    Example:
        >>> psi = FeatureNet()
        >>> [f.shape[2] for f in psi(torch.rand(1, 3, 64, 64))]
        [32, 16, 8, 4]
    """

    def __init__(self, model=None):
        super().__init__()

        self.layers = torch_model(open_bundle(model)).g_a.layers
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # always frozen, also inside a module put in training mode
        return super().train(False)

    def forward(self, x):
        feats = []
        for layer in self.layers:
            x = layer(x)
            if not isinstance(layer, nn.Conv2d) or layer is self.layers[-1]:
                feats.append(x)
        return feats


def domain_divergence(f_raw, f_comp, f_enh) -> torch.Tensor:
    """L_R (Eqs. 6-8), summed over layers, mean over the batch; per image D = mean |psi(a) - psi(b)|.

    Example:
        >>> c = [torch.zeros(2, 1, 2, 2)]; r = [torch.ones(2, 1, 2, 2)]
        >>> float(domain_divergence(r, c, [torch.full((2, 1, 2, 2), 0.25)]))  # D_CR 1, D_CE 0.25
        0.75
        >>> float(domain_divergence(r, c, [torch.full((2, 1, 2, 2), 2.0)]))  # already farther: no push
        0.0
    """
    total = 0.0
    for r, c, e in zip(f_raw, f_comp, f_enh):
        d_cr = (r - c).abs().mean((1, 2, 3))
        d_ce = (e - c).abs().mean((1, 2, 3))
        total = total + F.relu(d_cr - d_ce).mean()
    return total


class Discriminator(nn.Module):
    """PatchGAN discriminator; ``conditional`` concatenates the compressed image (Eq. 4)."""

    def __init__(self, conditional: bool, width: int = 32):
        super().__init__()
        self.conditional = conditional
        c = width
        self.body = nn.Sequential(nn.Conv2d(6 if conditional else 3, c, 4, 2, 1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(2 * c, 2 * c, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(2 * c, 1, 3, 1, 1))

    def forward(self, image, comp):
        return self.body(torch.cat([image, comp], 1) if self.conditional else image)


class AdversarialRecipe:
    """The adversarial part of training: D, its optimiser, and the generator's extra loss terms.

    ``mode``: ``plain`` / ``conditional`` (discriminator), optionally ``+lr``
    (domain-divergence regularisation).

    Example:
        >>> g = AdversarialRecipe("conditional+lr", 0.01, 1.0, 1e-4)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> float(g.generator_loss(x, x, x, 0, 10).detach()) >= 0
        True
    """

    MODES = ("plain", "conditional", "plain+lr", "conditional+lr")

    def __init__(self, mode: str, gan_weight: float = 0.01, lr_weight: float = 1.0, lr: float = 1e-4,
                 percept_weight: float = 0.01):
        if mode not in self.MODES:
            raise ValueError(f"gan mode {mode!r}: expected one of {self.MODES}")
        self.mode, self.gan_weight, self.lr_weight, self.percept_weight = mode, gan_weight, lr_weight, percept_weight
        self.disc = Discriminator(mode.startswith("conditional"))
        self.opt = torch.optim.Adam(self.disc.parameters(), lr, betas=(0.5, 0.999))
        self.psi = FeatureNet()
        self.use_lr = mode.endswith("+lr")

    def generator_loss(self, enh, raw, comp, step: int, steps: int) -> torch.Tensor:
        f_e = self.psi(enh)
        with torch.no_grad():
            f_r = self.psi(raw)
        percept = sum((a - b).abs().mean() for a, b in zip(f_e, f_r))
        logits = self.disc(enh, comp)
        adv = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        loss = self.percept_weight * percept + self.gan_weight * adv
        if self.use_lr:
            with torch.no_grad():
                f_c = self.psi(comp)
            loss = loss + self.lr_weight * domain_divergence(f_r, f_c, f_e)
        return loss

    def discriminator_step(self, enh, raw, comp, step: int, steps: int) -> float:
        real, fake = self.disc(raw, comp), self.disc(enh, comp)
        loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
            F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return float(loss.item())

    def state_dict(self) -> dict:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        self.disc.load_state_dict(d["disc"])
        self.opt.load_state_dict(d["opt"])


# --------------------------------------------------------------------------- bias triangle


def pooled_features(psi: FeatureNet, images: list[np.ndarray], patch: int = 64) -> np.ndarray:
    """(n_patches, sum of channels) psi features, spatially averaged over each patch x patch window."""
    rows = []
    with torch.no_grad():
        for img in images:
            h, w = img.shape[0] // patch * patch, img.shape[1] // patch * patch
            x = torch.from_numpy(np.ascontiguousarray(img[:h, :w].transpose(2, 0, 1))[None].astype(np.float32) / 255)
            parts = []
            for f in psi(x):
                s = patch * f.shape[2] // h
                parts.append(F.avg_pool2d(f, s, s)[0].flatten(1).T.numpy())  # (n_patches, C)
            rows.append(np.concatenate(parts, 1))
    return np.concatenate(rows).astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (rows = samples).

    Example:
        >>> rng = np.random.default_rng(0); a = rng.standard_normal((500, 3))
        >>> frechet_distance(a, a) < 1e-6, round(frechet_distance(a, a + 2.0), 3)
        (True, 12.0)
    """
    from scipy import linalg

    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb)
    covmean = np.real(covmean)
    return float(max(mu @ mu + np.trace(ca + cb - 2 * covmean), 0.0))


def paired_distance(psi: FeatureNet, a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Mean over image pairs of sum over layers of the mean squared difference of unit-normalised features."""
    total = []
    with torch.no_grad():
        for x, y in zip(a, b):
            tx = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))[None].astype(np.float32) / 255)
            ty = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1))[None].astype(np.float32) / 255)
            d = 0.0
            for fx, fy in zip(psi(tx), psi(ty)):
                d += float(((F.normalize(fx, dim=1) - F.normalize(fy, dim=1)) ** 2).sum(1).mean())
            total.append(d)
    return float(np.mean(total))


def bias_triangle(raw: list[np.ndarray], comp: list[np.ndarray], enh: list[np.ndarray],
                  psi: FeatureNet | None = None) -> dict:
    """Both triangles (fd and pd): the three distances and the deviation of Eq. 1."""
    psi = psi or FeatureNet()
    out = {}
    fr, fc, fe = (pooled_features(psi, s) for s in (raw, comp, enh))
    fd = {"S_CR": frechet_distance(fc, fr), "S_CE": frechet_distance(fc, fe), "S_RE": frechet_distance(fr, fe)}
    pd = {"S_CR": paired_distance(psi, comp, raw), "S_CE": paired_distance(psi, comp, enh),
          "S_RE": paired_distance(psi, raw, enh)}
    for name, s in (("fd", fd), ("pd", pd)):
        out[name] = dict(s, deviation_percent=deviation(s["S_CR"], s["S_CE"], s["S_RE"]))
    return out
