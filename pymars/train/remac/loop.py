"""`pymars remac train`: resumable training of the REMAC parts on top of a trained base model.

What it trains (docs/remac.md): the reference branch of the integer h_s (with
``mid`` and ``head``, fake-quantised) and the ref-decoder; the rover analysis
(g_a, h_a, gains, z density) stays the base model's, so the rover's cost
changes only by the selection. Each crop gets its references by the rover's
rules (pymars/remac/selection.py) from a reference library built for the
same base model; a share of the crops (``--no-ref-share``) gets none, which is
how the model learns the empty-library case. The entropy reference latent is
rolled by a random offset (augmentation: a 128 crop's h_s grid covers a
quarter of a 16x16 reference latent).

Loss: ``lambda(level) * 255^2 * MSE + bpp`` as for the base codec; levels drawn
uniformly in [0, L-1]. Checkpoints are written atomically; running the same
command again resumes (the data order is a function of (seed, step)).

Example (two steps on synthetic scenes with a tiny model and library, no ../shared):
    >>> import tempfile
    >>> cfg = RemacTrainConfig(out=tempfile.mkdtemp(), steps=2, batch=2, crop=64, synthetic=True, progress=False)
    >>> train_remac(cfg)["step"]
    2
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from pymars.bundles import open_bundle
from pymars.data.synthetic import mars_like_scene
from pymars.remac import ReferenceLibrary
from pymars.texture import lbp_histograms, nearest_histogram, rgb_to_gray
from pymars.train.codec.entropy_model import LOG_SCALE_STEP, discretized_gaussian, scale_from_index
from pymars.train.codec.estimate import pad_to_stride
from pymars.train.codec.integer import ACT_FRAC_BITS
from pymars.train.codec.network import BaseCodec, BaseConfig, rd_loss
from pymars.train.dataset import CropPool, mars_training_pool, synthetic_pool, validation_tiles
from pymars.train.engine import EMA, Hooks, Trainer, hold_then_cosine, record_config, start_run
from pymars.train.remac.model import REF_LATENT, RemacCodec, RemacConfig


@dataclass
class RemacTrainConfig:
    out: str = "runs/remac"
    base: str = ""  # base model bundle (default: the shipped one)
    library: str = ""  # reference library (LIB.pmrl with its LIB.pmrg) built for the base model
    steps: int = 3000  # the remac-v1 recipe (its MODEL_CARD.md)
    batch: int = 8
    crop: int = 128
    lr: float = 1e-4
    lr_final: float = 1e-5
    decay_from: float = 0.6
    ema: float = 0.999
    clip: float = 1.0
    no_ref_share: float = 0.1
    ref_lr_scale: float = 1.0  # learning-rate factor of the reference parts (h_s branch and mid, TEM, fusion)
    init_from: str = ""  # start from another REMAC checkpoint's EMA weights (a fresh optimiser)
    refine_blocks: int = 0  # ref-decoder residual blocks at 1/2 resolution (RemacConfig.refine_blocks)
    decoder_only: bool = False  # freeze the h_s (entropy model): train the ref-decoder alone
    seed: int = 0
    threads: int = 0
    device: str = "auto"
    synthetic: bool = False  # tiny random base model, synthetic scenes and a random library (tests)
    validate_every: int = 500
    save_every: int = 100
    progress: bool = True


def load_base_model(base: str = "", synthetic: bool = False):
    """The base codec (BaseCodec, float32) from a bundle's model.safetensors; a tiny random one if ``synthetic``.

    Example:
        >>> load_base_model(synthetic=True).cfg.latent
        16
    """

    if synthetic:
        torch.manual_seed(0)
        return BaseCodec(BaseConfig(latent=16, hyper=8, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8,
                                    synthesis=(16, 8, 8, 8)))
    from safetensors.torch import load_file

    bundle = open_bundle(base or None)
    if not bundle.available:
        raise FileNotFoundError(f"base model {bundle.name!r} has no weights")
    model = BaseCodec(BaseConfig.from_dict(bundle.config))
    model.load_state_dict({k: v.float() for k, v in load_file(str(bundle.safetensors)).items()})
    return model.eval()


class LibraryTensors:
    """The library arrays training needs, as tensors (one extra row of zeros: "no reference")."""

    def __init__(self, histograms: np.ndarray, descriptors: np.ndarray, latents: np.ndarray, tiles: np.ndarray):
        self.histograms = np.ascontiguousarray(histograms, np.uint32)
        self.descriptors = torch.from_numpy(descriptors.astype(np.int64))
        zl = np.zeros((1,) + latents.shape[1:], np.float32)
        zt = np.zeros((1,) + tiles.shape[1:], np.uint8)
        self.latents = torch.from_numpy(np.concatenate([latents.astype(np.float32), zl]))
        self.tiles = torch.from_numpy(np.concatenate([tiles, zt])).permute(0, 3, 1, 2).float().div(255)
        self.none = len(descriptors)

    @classmethod
    def synthetic(cls, latent: int, count: int = 3, seed: int = 0) -> "LibraryTensors":

        rng = np.random.default_rng(seed)
        tiles = np.stack([mars_like_scene(256, 256, seed=100 + i) for i in range(count)])
        hist = np.stack([lbp_histograms(rgb_to_gray(t), "uniform") for t in tiles])
        lat = rng.integers(-20, 21, (count, latent, REF_LATENT, REF_LATENT)).astype(np.int8)
        desc = np.abs(lat.astype(np.int64)).mean((2, 3)).astype(np.uint16) * 32
        return cls(hist, desc, lat, tiles)


def select_references(model: RemacCodec, lib: LibraryTensors, x: torch.Tensor, y: torch.Tensor,
                      rng: np.random.Generator, no_ref_share: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Entropy and decoder reference ids per crop by the rover's rules (NO reference for a random share)."""

    q = torch.floor(torch.clamp(y * 8, -127, 127) + 0.5)
    n = q.shape[2] * q.shape[3]
    desc = torch.div(32 * q.abs().flatten(2).sum(2) + n // 2, n, rounding_mode="floor")
    ent = torch.cdist(desc.double(), lib.descriptors.double(), p=1).argmin(1)
    gray = (x.mul(255).round() * torch.tensor([77.0, 150.0, 29.0])[None, :, None, None]).sum(1).add(128).div(256).floor()
    dec = []
    for g in gray.to(torch.uint8).numpy():
        dec.append(nearest_histogram(lbp_histograms(np.ascontiguousarray(g), "uniform"), lib.histograms, "kl")[0])
    dec = torch.tensor(dec)
    none = torch.from_numpy(rng.random(len(x)) < no_ref_share)
    ent = torch.where(none, torch.full_like(ent, lib.none), ent)
    dec = torch.where(none, torch.full_like(dec, lib.none), dec)
    return ent, dec


@torch.no_grad()
def validate(model: RemacCodec, lib: LibraryTensors, tiles: list[np.ndarray], levels=(0, 3, 7)) -> dict:
    """Mean PSNR / ideal bpp per level with references, and with none (real rounding, no noise)."""

    model.eval()
    out = {}
    rng = np.random.default_rng(0)
    for lv in levels:
        for mode in ("ref", "none"):
            ps, bs = [], []
            for t in tiles:
                x = torch.from_numpy(t.transpose(2, 0, 1).copy()).float().div(255)[None]
                h, w = x.shape[2:]
                y = model.g_a(pad_to_stride(x))
                ent, dec = select_references(model, lib, x, y, rng, 0.0 if mode == "ref" else 1.0)
                z_hat = torch.round(model.h_a(y)).clamp(-127, 127)
                mean_q4, index = model.h_s(z_hat, lib.latents[ent])
                mean_q4, index = mean_q4[..., : y.shape[2], : y.shape[3]], index[..., : y.shape[2], : y.shape[3]]
                k = model.gain_steps(torch.tensor([float(lv)]))[:, :, None, None]
                gain = torch.exp(LOG_SCALE_STEP * k)
                mean_g = mean_q4 * 2.0**-ACT_FRAC_BITS * gain
                sym = torch.round(y * gain - mean_g)
                p_y = discretized_gaussian(sym + mean_g, mean_g, scale_from_index(index + k))
                bits = float(-torch.log2(p_y).sum() - torch.log2(model.z_density.likelihood(z_hat)).sum())
                x_hat = torch.round(model.g_s((sym + mean_g) / gain, lib.tiles[dec])[..., :h, :w].clamp(0, 1) * 255) / 255
                ps.append(10 * math.log10(1 / max(float((x_hat - x).square().mean()), 1e-12)))
                bs.append(bits / (x.shape[2] * x.shape[3]))
            out[f"level{lv}_{mode}"] = {"psnr": float(np.mean(ps)), "bpp": float(np.mean(bs))}
    model.train()
    return out


def train_remac(cfg: RemacTrainConfig) -> dict:
    """Train (or resume) and return the final running averages."""

    out, device = start_run(cfg.out, cfg.seed, cfg.threads, cfg.device)
    base = load_base_model(cfg.base, cfg.synthetic)
    if cfg.synthetic:
        lib = LibraryTensors.synthetic(base.cfg.latent)
        lib_hash = "synthetic"
    else:

        if not cfg.library:
            raise ValueError("--library is required (build one for the base model with "
                             "`pymars refs build --protocol --model base-v1 -o LIB.pmrl`)")
        rl = ReferenceLibrary.load(cfg.library)
        lib = LibraryTensors(rl.histograms, rl.descriptors, rl.latents, rl.tiles)
        lib_hash = rl.library_hash.hex()
    model = RemacCodec(base, RemacConfig(refine_blocks=cfg.refine_blocks)).to(device)
    if cfg.decoder_only:
        # The rate does not depend on the decoder, so with h_s frozen the loss is the
        # distortion alone (lambda-weighted per level, as in the full recipe).
        for p in model.h_s.parameters():
            p.requires_grad_(False)
    ema = EMA(model, cfg.ema)
    ref_names = ("h_s.ref.", "h_s.mid.", "g_s.ref_features.", "g_s.query.", "g_s.fuse.")
    ref_params = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith(ref_names)]
    other = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in ref_params)]
    # The engine multiplies each group's learning rate by its "scale".
    opt = torch.optim.Adam([{"params": other, "scale": 1.0}, {"params": ref_params, "scale": cfg.ref_lr_scale}], lr=cfg.lr)
    val_tiles: list = []

    def validation(step: int) -> dict | None:
        if not val_tiles:
            return None
        rec = {"step": step, "time_s": trainer.elapsed(), "train": dict(trainer.running),
               "val": validate(ema.model, lib, val_tiles)}
        trainer.write(f"step {step}: " + ", ".join(f"{k} {v['bpp']:.3f}/{v['psnr']:.2f}" for k, v in rec["val"].items()))
        return rec

    def postfix(t) -> dict:
        return dict(loss=f"{t.running['loss']:.3f}", bpp=f"{t.running['bpp']:.3f}", psnr=f"{t.running['psnr']:.2f}")

    def extras() -> dict:
        return {"remac_config": model.cfg.to_dict(), "base_config": base.cfg.to_dict(), "library_hash": lib_hash,
                "train_config": asdict(cfg)}

    trainer = Trainer(out, model, opt, lambda s: hold_then_cosine(s, cfg.steps, cfg.lr, cfg.lr_final, cfg.decay_from),
                      steps=cfg.steps, seed=cfg.seed, ema=ema, clip=cfg.clip, device=device,
                      save_every=cfg.save_every, validate_every=cfg.validate_every, outlier_after=100,
                      hooks=Hooks(validate=validation, extras=extras, postfix=postfix), progress=cfg.progress,
                      desc="remac", identity={"remac_config": model.cfg.to_dict(), "base_config": base.cfg.to_dict()})
    trainer.resume(cfg.init_from)
    record_config(out / "train_config.json", asdict(cfg))
    pool: CropPool = synthetic_pool(cfg.crop) if cfg.synthetic else mars_training_pool(cfg.crop, progress=cfg.progress)
    if not cfg.synthetic and cfg.validate_every:
        val_tiles += validation_tiles()

    def step(s: int, rng: np.random.Generator):
        x = torch.from_numpy(pool.sample(rng, cfg.batch)).to(device)
        level = torch.from_numpy(rng.uniform(0, model.levels - 1, cfg.batch).astype(np.float32)).to(device)
        with torch.no_grad():
            y = model.g_a(x)
        ent, dec = select_references(model, lib, x.cpu(), y.cpu(), rng, cfg.no_ref_share)
        shift = rng.integers(0, REF_LATENT, 2)
        ref_latent = torch.roll(lib.latents[ent], (int(shift[0]), int(shift[1])), (2, 3)).to(device)
        res = model(x, level, ref_latent, lib.tiles[dec].to(device), y=y)
        return rd_loss(model, x, level, res)

    r = trainer.run(step)
    return {"step": r["step"], "out": str(out), **r["running"]}
