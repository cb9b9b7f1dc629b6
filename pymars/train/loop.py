"""`pymars train`: resumable rate-distortion training of the base codec, CPU or GPU.

One model serves every quality: each sample of a batch draws a random rate
level position in [0, L-1] (continuous, so interpolated gains are trained too),
and the loss is ``lambda(level) * 255^2 * MSE + bpp``.

Checkpoints (model, EMA model, optimiser, step, RNG state, log) are written
atomically every ``--save-every`` steps to ``OUT/checkpoint.pt``; running the
same command again resumes. ``OUT/log.jsonl`` gets one line per validation.
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
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..models.codec import DEFAULT_LAMBDAS, BaseCodec, BaseConfig, rd_loss
from .dataset import CropPool, gray_training_pool, load_pool, mars_training_pool, save_pool

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
    start = cfg.decay_from * cfg.steps
    if step <= start:
        return cfg.lr
    t = min(1.0, (step - start) / max(1.0, cfg.steps - start))
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * t))


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _synthetic_pool(crop: int, gray: bool = False) -> CropPool:
    from ..data.synthetic import mars_like_scene
    from .dataset import GrayCropPool

    scenes = [mars_like_scene(256, 384, seed=s) for s in range(8)]
    return GrayCropPool(scenes, crop) if gray else CropPool(scenes, crop)


def _validation_tiles(count: int = 6, gray: bool = False) -> list[np.ndarray]:
    from ..data.protocol import dev_tiles, mars_data_dir

    if mars_data_dir() is None:
        return []
    tiles = []
    for group in ("dev_navcam", "dev_marsscapes_gray") if gray else ("dev_marsscapes", "dev_marsdata"):
        all_tiles = dev_tiles(group)
        step = max(1, len(all_tiles) // count)
        tiles += [t.pixels for t in all_tiles[::step][:count]]
    return tiles


@torch.no_grad()
def validate(model: BaseCodec, tiles: list[np.ndarray], device: torch.device, levels=(0, 3, 7)) -> dict:
    """Mean PSNR and estimated bpp (real rounding, ideal code length) per rate level.

    Example:
        >>> m = BaseCodec(MODEL_PRESETS["tiny"])
        >>> sorted(validate(m, [np.zeros((64, 64, 3), np.uint8)], torch.device("cpu"), levels=(0,)))
        ['level0']
    """
    from ..models.estimate import estimate_rd

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

        src = load_file(str(path / "model.safetensors"))
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


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def start_run(cfg) -> tuple[Path, torch.device]:
    """Create the run folder, set the thread count and the seed; return (folder, device).

    ``cfg`` is any training config with ``out``, ``threads``, ``device`` and ``seed``.

    Example:
        >>> import tempfile
        >>> start_run(TrainConfig(out=tempfile.mkdtemp(), device="cpu"))[1]
        device(type='cpu')
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    return out, _pick_device(cfg.device)


def resume(ckpt_path: Path, model, ema, opt, device, progress: bool = True, init_from: str = "") -> int:
    """Load model, EMA and optimiser state from ``ckpt_path`` if it exists; return its step (0 if none).

    Without a checkpoint, ``init_from`` (another run's checkpoint) gives the
    starting weights: its EMA, for both the model and the EMA (a fresh optimiser).

    Example:
        >>> resume(Path("/nonexistent/checkpoint.pt"), None, None, None, "cpu")
        0
    """
    if not ckpt_path.exists():
        if init_from:
            ck = torch.load(init_from, map_location=device, weights_only=False)
            # Parts the other run does not have (new layers of a grown model) keep their
            # initialisation; weights the model does not know are an error.
            missing, unexpected = model.load_state_dict(ck["ema"], strict=False)
            if unexpected:
                raise ValueError(f"{init_from} holds weights this model does not have: {unexpected[:4]}")
            ema.load_state_dict(ck["ema"], strict=False)
            if progress and missing:
                print(f"initialised from {init_from}; new: {len(missing)} tensors ({missing[0]}, ...)")
        return 0
    ck = torch.load(ckpt_path, map_location=device, weights_only=False)
    model.load_state_dict(ck["model"])
    ema.load_state_dict(ck["ema"])
    opt.load_state_dict(ck["optimizer"])
    if progress:
        print(f"resuming {ckpt_path} at step {ck['step']}")
    return int(ck["step"])


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) and return the final state summary.

    Resumes from ``OUT/checkpoint.pt`` when present; the data order after a
    resume is a fresh RNG stream seeded from (seed, step), so it is reproducible.
    """
    from tqdm import tqdm

    out, device = start_run(cfg)
    model_cfg = MODEL_PRESETS[cfg.model]
    model = BaseCodec(copy.deepcopy(model_cfg)).to(device)
    if cfg.warm_start and not (out / "checkpoint.pt").exists():
        adapted = warm_start(model, cfg.warm_start)
        if cfg.progress:
            print(f"warm start from {cfg.warm_start} (adapted: {', '.join(adapted) or 'none'})")
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ckpt_path = out / "checkpoint.pt"
    step = resume(ckpt_path, model, ema, opt, device, cfg.progress, cfg.init_from)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    gray = model_cfg.channels == 1
    if cfg.pool_cache and Path(cfg.pool_cache).exists():
        pool = load_pool(cfg.pool_cache)
        if pool.crop != cfg.crop:
            raise ValueError(f"{cfg.pool_cache} holds {pool.crop}x{pool.crop} crops, not {cfg.crop}: rebuild it")
    elif cfg.synthetic:
        pool = _synthetic_pool(cfg.crop, gray)
    elif gray:
        pool = gray_training_pool(cfg.crop, progress=cfg.progress)
    else:
        wide = model_cfg.latent >= 256
        pool = mars_training_pool(cfg.crop, progress=cfg.progress, augment=wide, scales=3 if wide else 2)
    if cfg.pool_cache and not Path(cfg.pool_cache).exists():
        save_pool(pool, cfg.pool_cache)
    val_tiles = [] if cfg.synthetic or not cfg.validate_every else _validation_tiles(gray=gray)
    amp = cfg.precision == "bf16"
    log_path = out / "log.jsonl"
    bar = tqdm(total=cfg.steps, initial=step, disable=not cfg.progress, desc="train", smoothing=0.05)
    running: dict[str, float] = {}
    skipped = 0
    t0 = time.time()
    while step < cfg.steps:
        rng = np.random.default_rng([cfg.seed, step])
        x = torch.from_numpy(pool.sample(rng, cfg.batch)).to(device)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        level = torch.from_numpy(rng.uniform(0, model.levels - 1, cfg.batch).astype(np.float32)).to(device)
        for g in opt.param_groups:
            g["lr"] = learning_rate(cfg, step)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out_ = model(x, level)
        loss, logs = rd_loss(model, x, level, out_)
        # A rare crop can make the multiplicative inverse GDN explode; one such
        # step (loss 1e7, seen at step ~6000 of the first run) poisons Adam's
        # moments. Skip steps whose loss is far above the running mean.
        outlier = not math.isfinite(logs["loss"]) or (
            "loss" in running and step > 200 and logs["loss"] > 20 * running["loss"]
        )
        if outlier:
            skipped += 1
        else:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            with torch.no_grad():
                # Warm-up: early on the EMA would mostly average the random initialisation.
                decay = min(cfg.ema, (1 + step) / (10 + step))
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - decay)
            for k, v in logs.items():
                running[k] = 0.98 * running.get(k, v) + 0.02 * v
        step += 1
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{running['loss']:.2f}", bpp=f"{running['bpp']:.3f}", psnr=f"{running['psnr']:.2f}",
                            skipped=skipped)
        done = step >= cfg.steps
        if cfg.validate_every and val_tiles and (step % cfg.validate_every == 0 or done):
            rec = {"step": step, "time_s": time.time() - t0, "train": running, "skipped_steps": skipped,
                   "val": validate(ema, val_tiles, device, levels=(0, (model.levels - 1) // 2, model.levels - 1))}
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            if cfg.progress:
                bar.write(f"step {step}: " + ", ".join(f"{k} {v['bpp']:.3f} bpp {v['psnr']:.2f} dB" for k, v in rec["val"].items()))
        if step % cfg.save_every == 0 or done:
            state = {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "model_config": model_cfg.to_dict(),
                "train_config": asdict(cfg),
            }
            _atomic_save(state, ckpt_path)
    bar.close()
    return {"step": step, "out": str(out), **running}
