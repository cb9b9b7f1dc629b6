"""`pymars train`: resumable rate-distortion training of the base codec, CPU or GPU.

One model serves every quality: each sample of a batch draws a random rate
level position in [0, L-1] (continuous, so interpolated gains are trained too),
and the loss is ``lambda(level) * 255^2 * MSE + bpp``.

Checkpoints (model, EMA model, optimiser, step, RNG state) are written
atomically every ``--save-every`` steps to ``OUT/checkpoint.pt``; running the
same command again resumes (the loop is pymars.train.engine's; this module
keeps the codec's presets, data, loss, validation and warm start). ``OUT/log.jsonl`` gets one line per validation.
Validation uses a fixed subset of the development tiles, evaluated with real
rounding (no noise): it monitors, it never trains.

Example (a few steps on synthetic scenes, no ../shared needed):
    >>> import tempfile
    >>> cfg = TrainConfig(out=tempfile.mkdtemp(), steps=2, batch=2, crop=64, synthetic=True,
    ...                   model="tiny", validate_every=0, save_every=2, progress=False)
    >>> train(cfg)["step"]
    2
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from pymars.bundles import training_file
from pymars.train.codec.estimate import estimate_rd
from pymars.train.codec.network import DEFAULT_LAMBDAS, BaseCodec, BaseConfig, rd_loss
from pymars.train.dataset import (
    gray_training_pool,
    load_pool,
    mars_training_pool,
    save_pool,
    synthetic_pool,
    validation_tiles,
)
from pymars.train.engine import CHECKPOINT, EMA, Hooks, Precision, Trainer, hold_then_cosine, record_config, start_run

#: base-v2 rate levels: base-v1's eight plus two above them, for the quality missions
#: downlink (JPEG q75-95; base-v1 stops at 32.7 dB).
HIGH_RATE_LAMBDAS = DEFAULT_LAMBDAS + (0.35, 0.7)

#: gray-wide rate levels: ten, geometric from 0.004 to 1.2 (28 dB to above 40 dB).
GRAY_WIDE_LAMBDAS = tuple(round(0.004 * (1.2 / 0.004) ** (i / 9), 5) for i in range(10))

MODEL_PRESETS = {
    "base": BaseConfig(),
    # base-v2 gray: base-v1's architecture with one input/output channel (so it can
    # start from base-v1's weights, see warm_start) and the high-rate levels.
    "gray": BaseConfig(channels=1, lambdas=HIGH_RATE_LAMBDAS, name="pymars-base"),
    # base-v2 gray, wide: twice the latent channels (one latent value per pixel: the
    # 128-channel latent caps the unquantised autoencoder at ~27 dB on Navcam tiles)
    # and rate levels shifted up, for JPEG q75-95 qualities.
    "gray-wide": BaseConfig(channels=1, latent=256, lambdas=GRAY_WIDE_LAMBDAS, name="pymars-base"),
    # base-v2 colour, wide: the gray-wide latent and rate levels for RGB, trained on
    # augmented crops (white balance, tone, noise, JPEG history; panoramas at 1x/2x/4x).
    "wide": BaseConfig(latent=256, lambdas=GRAY_WIDE_LAMBDAS),
    "tiny-gray": BaseConfig(channels=1, latent=16, hyper=8, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8,
                            synthesis=(16, 8, 8, 8), lambdas=HIGH_RATE_LAMBDAS),
    # For tests and smoke runs: same structure, tiny widths.
    "tiny": BaseConfig(latent=16, hyper=8, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8, synthesis=(16, 8, 8, 8)),
}


@dataclass
class TrainConfig:
    out: str = "runs/base"
    steps: int = 40000
    batch: int = 8
    crop: int = 128
    lr: float = 2e-4
    lr_final: float = 2e-5
    decay_from: float = 0.8  # fraction of steps after which the LR follows a cosine down to lr_final
    ema: float = 0.999
    clip: float = 1.0
    seed: int = 0
    threads: int = 0  # 0: torch default
    device: str = "auto"
    model: str = "base"
    synthetic: bool = False  # train on procedurally generated scenes (tests, no ../shared)
    validate_every: int = 1000
    save_every: int = 250
    progress: bool = True
    init_from: str = ""  # start from another checkpoint's EMA weights (e.g. 128 -> 256 crops)
    warm_start: str = ""  # start from a shipped weights folder (e.g. pymars/weights/base-v1), adapted (see warm_start)
    precision: str = "bf16"  # "bf16": autocast transforms to bfloat16 (AMX / GPU); "fp32"
    channels_last: bool = True  # NHWC activations: what oneDNN's fast convolutions want
    pool_cache: str = ""  # .npz of the crop pool (dataset.save_pool): read if present, else built and written


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Constant, then a cosine from ``lr`` to ``lr_final`` over the last part of training.

    Example:
        >>> c = TrainConfig(steps=100, lr=1.0, lr_final=0.0, decay_from=0.5)
        >>> learning_rate(c, 10), learning_rate(c, 100)
        (1.0, 0.0)
    """
    return hold_then_cosine(step, cfg.steps, cfg.lr, cfg.lr_final, cfg.decay_from)


@torch.no_grad()
def validate(model: BaseCodec, tiles: list[np.ndarray], device: torch.device, levels=(0, 3, 7)) -> dict:
    """Mean PSNR and estimated bpp (real rounding, ideal code length) per rate level.

    Example:
        >>> m = BaseCodec(MODEL_PRESETS["tiny"])
        >>> sorted(validate(m, [np.zeros((64, 64, 3), np.uint8)], torch.device("cpu"), levels=(0,)))
        ['level0']
    """

    model.eval()
    out = {}
    for lv in levels:
        ps, bs = [], []
        for t in tiles:
            t = t[..., None] if t.ndim == 2 else t
            x = torch.from_numpy(t.transpose(2, 0, 1).copy()).float().div(255)[None].to(device)
            r = estimate_rd(model, x, float(lv))
            ps.append(r["psnr"])
            bs.append(r["bpp"])
        out[f"level{lv}"] = {"psnr": float(np.mean(ps)), "bpp": float(np.mean(bs))}
    model.train()
    return out


def warm_start(model: BaseCodec, source: str) -> list[str]:
    """Initialise ``model`` from a weights folder or a training checkpoint of another configuration.

    ``source``: a bundle folder (its ``model.safetensors``) or a ``checkpoint.pt``
    (its EMA weights). Tensors of equal shape are copied; the others are adapted:

    * RGB -> gray: the first analysis convolution sums its three input channels and
      the last synthesis convolution (sub-pixel, channel ``c * 4 + k``) averages its
      three outputs, so the gray model starts as the RGB model on a replicated image;
    * a wider latent: the old channels keep their weights (h_s's head maps its mean
      and scale-index halves separately), new channels keep their initialisation;
    * other rate levels: each channel's log-gain is refitted on the quantiser-step
      rule ``a_c + 0.5 * log(lambda)`` through the source's gains.

    Returns the adapted tensor names.

    Example:
        >>> import tempfile, torch
        >>> from safetensors.torch import save_file
        >>> d = tempfile.mkdtemp()
        >>> rgb = BaseCodec(MODEL_PRESETS["tiny"])
        >>> save_file(rgb.state_dict(), d + "/model.safetensors")
        >>> gray = BaseCodec(MODEL_PRESETS["tiny-gray"])
        >>> sorted(warm_start(gray, d))[:2]
        ['g_a.layers.0.weight', 'g_s.layers.10.conv.bias']
    """
    path = Path(source)
    if path.is_dir():
        from safetensors.torch import load_file

        src = load_file(str(training_file(path / "model.safetensors")))
    else:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        src = ck["ema"]
    src = {k: v.float() if v.is_floating_point() else v for k, v in src.items()}
    old_lam = src.get("lambdas")
    if old_lam is None and "log_gain" in src:
        old_lam = torch.tensor(BaseConfig().lambdas[: src["log_gain"].shape[0]])
    own = model.state_dict()
    new_m, adapted = model.cfg.latent, []
    for name, dst in own.items():
        if name not in src or name == "lambdas":  # the rate levels are the new model's
            continue
        w = src[name]
        if name == "log_gain":
            if w.shape == dst.shape and torch.equal(old_lam.float(), model.lambdas.float()):
                own[name] = w
                continue
            # Per channel offset a_c of the quantiser-step rule, fitted on the source's levels.
            a = (w - 0.5 * torch.log(old_lam.float())[:, None]).mean(0)
            a = torch.cat([a, a.mean().repeat(max(0, new_m - a.numel()))])[:new_m]
            own[name] = a[None, :] + 0.5 * torch.log(model.lambdas.float())[:, None]
        elif w.shape == dst.shape:
            own[name] = w
            continue
        elif name.startswith("g_a.") and w.dim() == 4 and w.shape[1] == 3 and dst.shape[1] == 1:
            own[name] = w.sum(1, keepdim=True)
        elif name.startswith("g_s.") and w.shape[0] == 12 and dst.shape[0] == 4:
            own[name] = w.reshape(3, 4, *w.shape[1:]).mean(0)
        elif name.startswith("h_s.head.") and w.shape[0] % 2 == 0 and dst.shape[0] == 2 * new_m:
            old_m, t = w.shape[0] // 2, dst.clone()
            t[:old_m], t[new_m : new_m + old_m] = w[:old_m], w[old_m:]
            own[name] = t
        elif w.dim() == dst.dim() and all(a <= b for a, b in zip(w.shape, dst.shape)):
            t = dst.clone()
            if w.dim() == 4 and w.shape[1] < dst.shape[1]:
                t[:, w.shape[1] :] = 0  # new inputs start silent: the grown model computes what the old one did
            t[tuple(slice(0, n) for n in w.shape)] = w
            own[name] = t
        else:
            raise ValueError(f"{source}: cannot adapt {name} {tuple(w.shape)} -> {tuple(dst.shape)}")
        adapted.append(name)
    model.load_state_dict(own)
    return adapted


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) and return the final state summary.

    Resumes from ``OUT/checkpoint.pt`` when present; the data order after a
    resume is a fresh RNG stream seeded from (seed, step), so it is reproducible.
    """
    out, device = start_run(cfg.out, cfg.seed, cfg.threads, cfg.device)
    model_cfg = MODEL_PRESETS[cfg.model]
    model = BaseCodec(copy.deepcopy(model_cfg)).to(device)
    if cfg.warm_start and not (out / CHECKPOINT).exists():
        adapted = warm_start(model, cfg.warm_start)
        if cfg.progress:
            print(f"warm start from {cfg.warm_start} (adapted: {', '.join(adapted) or 'none'})")
    precision = Precision(cfg.precision, cfg.channels_last, device)
    model = precision.prepare(model)
    ema = EMA(model, cfg.ema)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    val_tiles: list = []

    def validation(step: int) -> dict | None:
        if not val_tiles:
            return None
        levels = (0, (model.levels - 1) // 2, model.levels - 1)
        rec = {"step": step, "time_s": trainer.elapsed(), "train": dict(trainer.running),
               "skipped_steps": trainer.skipped, "val": validate(ema.model, val_tiles, device, levels=levels)}
        trainer.write(f"step {step}: " + ", ".join(f"{k} {v['bpp']:.3f} bpp {v['psnr']:.2f} dB"
                                                    for k, v in rec["val"].items()))
        return rec

    def postfix(t) -> dict:
        r = t.running
        return dict(loss=f"{r['loss']:.2f}", bpp=f"{r['bpp']:.3f}", psnr=f"{r['psnr']:.2f}", skipped=t.skipped)

    hooks = Hooks(validate=validation, postfix=postfix,
                  extras=lambda: {"model_config": model_cfg.to_dict(), "train_config": asdict(cfg)})
    # A rare crop can make the multiplicative inverse GDN explode; one such step (loss 1e7,
    # seen at step ~6000 of the first run) poisons Adam's moments: outlier steps after 200 are skipped.
    trainer = Trainer(out, model, opt, lambda s: learning_rate(cfg, s), steps=cfg.steps, seed=cfg.seed, ema=ema,
                      clip=cfg.clip, precision=precision, device=device, save_every=cfg.save_every,
                      validate_every=cfg.validate_every, outlier_after=200, hooks=hooks, progress=cfg.progress,
                      identity={"model_config": model_cfg.to_dict()})
    trainer.resume(cfg.init_from)
    record_config(out / "train_config.json", asdict(cfg))

    gray = model_cfg.channels == 1
    if cfg.pool_cache and Path(cfg.pool_cache).exists():
        pool = load_pool(cfg.pool_cache)
        if pool.crop != cfg.crop:
            raise ValueError(f"{cfg.pool_cache} holds {pool.crop}x{pool.crop} crops, not {cfg.crop}: rebuild it")
    elif cfg.synthetic:
        pool = synthetic_pool(cfg.crop, gray)
    elif gray:
        pool = gray_training_pool(cfg.crop, progress=cfg.progress)
    else:
        wide = model_cfg.latent >= 256
        pool = mars_training_pool(cfg.crop, progress=cfg.progress, augment=wide, scales=3 if wide else 2)
    if cfg.pool_cache and not Path(cfg.pool_cache).exists():
        save_pool(pool, cfg.pool_cache)
    if not cfg.synthetic and cfg.validate_every:
        val_tiles += validation_tiles(gray=gray)

    def step(s: int, rng: np.random.Generator):
        x = precision.batch(torch.from_numpy(pool.sample(rng, cfg.batch)).to(device))
        level = torch.from_numpy(rng.uniform(0, model.levels - 1, cfg.batch).astype(np.float32)).to(device)
        with precision.autocast():
            res = model(x, level)
        return rd_loss(model, x, level, res)

    r = trainer.run(step)
    return {"step": r["step"], "out": str(out), **r["running"]}
