"""`pymars spectral train`: resumable, seeded training (CPU, or CUDA) of the UNet baseline and the conditional denoiser.

What it is for: reproduce the committed spectral weights (their MODEL_CARD.md
gives the command). A batch mixes augmented crops of the training scenes
(:mod:`~pymars.spectral.pairs`, :mod:`~pymars.spectral.augment`) with a fraction
of synthetic lab-spectrum patches (:mod:`~pymars.spectral.synthesis`), which
carry no location (metadata dropped). Real crops drop their metadata with
probability ``meta_drop`` so one model learns both the conditional and the
unconditional branch (the "with / without metadata" rows of the results
table, and classifier-free guidance); the denoiser also drops the image with
``image_drop``.

* ``unet``: MSE between prediction and target, both in [-1, 1]; with
  ``carbonate_head`` plus ``carb_weight`` x a class-weighted BCE of the head's
  logit against the target's green mask (:func:`green_mask`) over the footprint.
* ``diffusion``: DDPM, a uniform time in 0..999, the target noised with the
  cosine schedule, MSE on v (:mod:`~pymars.spectral.diffusion`).

Checkpoints (model, EMA, optimiser, step) go atomically to ``OUT/checkpoint.pt``
every ``save_every`` steps (pymars.train.engine runs the loop); running the
same command again resumes. The batch
of step ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so a
resumed run sees the same data as an uninterrupted one. ``OUT/log.jsonl``
gets the validation loss every ``validate_every`` steps (validation scenes,
never trained on).

On a GPU (``device="cuda"``): the model, the batches and the noise live there,
``precision="bf16"`` autocasts; ``workers`` processes draw the batches ahead
(the batch of step ``i`` and the random numbers after it are still those of
``default_rng([seed, i])``, so the data is that of ``workers=0``);
``max_seconds`` stops resumably once that much wall time has passed (the
learning rate is constant after warm-up, so a run stopped by time is a run of
its saved step count); ``snapshot`` is a compact file (EMA weights in fp16,
configs, step, hardware, validation history; no optimiser) rewritten after
every checkpoint, which ``pymars spectral export`` takes like a checkpoint.

Example (two steps on synthetic toy data, no ../shared needed):
    >>> import tempfile
    >>> r = train(TrainConfig(out=tempfile.mkdtemp(), model="diffusion", steps=2, batch=2, crop=16, width=8,
    ...                       data="toy", progress=False, validate_every=0))
    >>> r["step"]
    2
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from pymars.spectral.augment import augment_pair
from pymars.spectral.diffusion import Schedule
from pymars.spectral.metadata import SITES
from pymars.spectral.metrics import best_f1
from pymars.spectral.models import SpectralConfig, SpectralUNet, count_parameters
from pymars.spectral.pairs import load_pairs, pairs_dir, split_scenes
from pymars.spectral.synthesis import SyntheticSource, synth_patch
from pymars.train.engine import CHECKPOINT, EMA, Hooks, Precision, Trainer, linear_warmup, record_config, start_run


@dataclass
class TrainConfig:
    """Training recipe; the defaults are the committed models' recipe (see their MODEL_CARD.md)."""

    out: str = "runs/spectral-unet"
    model: str = "unet"
    steps: int = 2000
    batch: int = 8
    crop: int = 64
    lr: float = 1e-3
    width: int = 16
    seed: int = 0
    synthetic_fraction: float = 0.25
    meta_drop: float = 0.2
    image_drop: float = 0.05
    ema: float = 0.999
    save_every: int = 250
    validate_every: int = 500
    data: str = "shared"  # "shared": ../shared PNG pairs + USGS synthesis; "toy": random synthetic only (tests)
    threads: int = 1
    progress: bool = True
    # "bf16": autocast to bfloat16 with channels_last activations (AMX CPUs, GPUs); "fp32": the
    # committed models' recipe.
    precision: str = "fp32"
    # Start from these weights (a weights folder such as pymars/weights/spectral-diffusion, or a
    # run's checkpoint.pt: its EMA weights); optimiser and schedule start afresh.
    init: str = ""
    # Loss weight on carbonate-like target pixels (G - max(R, B) > 8 levels, the metric's green):
    # each such pixel counts 1 + green_weight times. They are 0.7 % of the pixels, and an unweighted
    # loss averages them away (docs/spectral.md). 0: the committed models' recipe.
    green_weight: float = 0.0
    # Carbonate detection head (models.py; unet only): a 4th output channel, a per-pixel logit trained
    # with BCE on the target's green mask, positives weighted carb_pos_weight (they are ~1 in 150
    # footprint pixels; the decision threshold is chosen later on the val part, so this weight only
    # shapes the ranking, it need not be the class ratio). The loss adds carb_weight x that BCE.
    carbonate_head: bool = False
    carb_weight: float = 1.0
    carb_pos_weight: float = 10.0
    # Where the model trains: "cpu" (the committed recipe) or "cuda".
    device: str = "cpu"
    # Stop (resumably, with a checkpoint) once this many seconds have passed; 0: run to ``steps``.
    max_seconds: float = 0.0
    # Processes drawing batches ahead (0: in the training process, the committed recipe).
    workers: int = 0
    # Also write the compact weights file (see the module docstring) here after each checkpoint.
    snapshot: str = ""


def to_unit(img_u8: np.ndarray) -> np.ndarray:
    """HxWx3 (or NxHxWx3) uint8 -> channels-first float32 in [-1, 1].

    Example:
        >>> import numpy as np
        >>> to_unit(np.array([[[0, 255, 51]]], np.uint8)).ravel().tolist()
        [-1.0, 1.0, -0.6000000238418579]
    """
    x = np.asarray(img_u8, np.float32) / 127.5 - 1.0
    return np.moveaxis(x, -1, -3)


class BatchSource:
    """Draws training batches: augmented real crops plus synthetic patches, with metadata arrays."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.real = []
        self.val = []
        if cfg.data == "shared":

            if pairs_dir() is None:
                raise FileNotFoundError("../shared/data/spectral is missing; use data='toy' for a smoke run")
            pairs = load_pairs()
            parts = split_scenes([p.scene for p in pairs], {p.scene: p.meta for p in pairs})
            self.real = [p for p in pairs if p.scene in parts["train"]]
            self.val = [p for p in pairs if p.scene in parts["val"]]
            self.synth = SyntheticSource(pairs_dir().parent)
            self.table, self.carbonates = self.synth.table, self.synth.carbonates
        elif cfg.data == "toy":
            rng = np.random.default_rng(123)
            self.table, self.carbonates = rng.uniform(0.05, 0.5, (32, 6)), np.arange(4)
        else:
            raise ValueError(f"unknown data {cfg.data!r} (shared or toy)")

    def batch(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        c, n = self.cfg, self.cfg.batch
        xs, ys = [], []
        lat, lon = np.zeros(n, np.float32), np.zeros(n, np.float32)
        site, keep = np.zeros(n, np.int64), np.zeros(n, np.float32)
        for i in range(n):
            if not self.real or rng.random() < c.synthetic_fraction:
                x, y = synth_patch(self.table, rng, c.crop, self.carbonates, carbonate_p=0.25)
            else:
                p = self.real[int(rng.integers(0, len(self.real)))]
                x, y = augment_pair(p.cassis, p.fal, rng, c.crop)
                if p.meta is not None and rng.random() >= c.meta_drop:
                    lat[i], lon[i], site[i], keep[i] = p.meta.lat, p.meta.lon, p.meta.site_index, 1.0
            xs.append(x)
            ys.append(y)
        return {"cassis": to_unit(np.stack(xs)), "fal": to_unit(np.stack(ys)), "lat": lat, "lon": lon,
                "site": site, "meta_keep": keep}


def model_inputs(b: dict, x_t: torch.Tensor | None, t: torch.Tensor | None, image_keep: torch.Tensor | None = None):
    """The 8 forward arguments of :class:`SpectralUNet` from a batch dict of numpy arrays.

    Example:
        >>> import numpy as np
        >>> b = {"cassis": np.zeros((2, 3, 4, 4), np.float32), "lat": np.zeros(2, np.float32),
        ...      "lon": np.zeros(2, np.float32), "site": np.zeros(2, np.int64), "meta_keep": np.ones(2, np.float32)}
        >>> len(model_inputs(b, None, None))
        8
    """
    cassis = torch.from_numpy(b["cassis"])
    n = cassis.shape[0]
    return (x_t if x_t is not None else torch.zeros_like(cassis), cassis,
            image_keep if image_keep is not None else torch.ones(n),
            t if t is not None else torch.zeros(n), torch.from_numpy(b["lat"]), torch.from_numpy(b["lon"]),
            torch.from_numpy(b["site"]), torch.from_numpy(b["meta_keep"]))


def green_mask(fal: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) 1.0 where a [-1, 1] FAL target is carbonate-green (G - max(R, B) > 8 of 255 levels).

    Example:
        >>> x = torch.tensor([[[[0.0, 0.0]], [[0.2, 0.0]], [[0.0, 0.0]]]])  # R, G, B of 2 pixels
        >>> green_mask(x).ravel().tolist()
        [1.0, 0.0]
    """
    r, g, b = fal[:, 0:1], fal[:, 1:2], fal[:, 2:3]
    return (g - torch.maximum(r, b) > 8 / 127.5).to(fal.dtype)


def carbonate_bce(logit: torch.Tensor, fal: torch.Tensor, cassis: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Class-weighted BCE of (N, 1, H, W) carbonate logits against the green mask of the [-1, 1] FAL target,
    averaged over footprint pixels (input not black): the black surround is trivially "no carbonate" and
    would only dilute the loss.

    Example:
        >>> fal = torch.tensor([[[[0.0, 0.0]], [[0.2, 0.0]], [[0.0, 0.0]]]])  # pixel 0 green, pixel 1 grey
        >>> cassis = torch.zeros(1, 3, 1, 2)
        >>> good, bad = torch.tensor([[[[9.0, -9.0]]]]), torch.tensor([[[[-9.0, 9.0]]]])
        >>> float(carbonate_bce(good, fal, cassis, 10.0)) < 0.01 < float(carbonate_bce(bad, fal, cassis, 10.0))
        True
    """
    inside = (cassis > -1).any(dim=1, keepdim=True).to(logit.dtype)
    per_pixel = torch.nn.functional.binary_cross_entropy_with_logits(
        logit, green_mask(fal).to(logit.dtype),
        pos_weight=torch.tensor(pos_weight, dtype=logit.dtype, device=logit.device),
        reduction="none")
    return (per_pixel * inside).sum() / inside.sum().clamp(min=1.0)


def loss_on(model: SpectralUNet, b: dict, rng: np.random.Generator, schedule: Schedule,
            image_drop: float = 0.0, green_weight: float = 0.0, precision: Precision | None = None,
            carb_weight: float = 1.0, carb_pos_weight: float = 10.0) -> torch.Tensor:
    """Training loss of one batch (MSE for ``unet``; v-MSE at random times for ``diffusion``).

    ``green_weight``: carbonate-green target pixels count 1 + green_weight times
    (:func:`green_mask`). ``precision``: bf16 autocast and channels_last (None: fp32).
    A model with the carbonate head adds ``carb_weight`` x :func:`carbonate_bce`.

    Example:
        >>> import numpy as np
        >>> src = BatchSource(TrainConfig(data="toy", batch=2, crop=8))
        >>> m = SpectralUNet(SpectralConfig(kind="unet", width=8))
        >>> float(loss_on(m, src.batch(np.random.default_rng(0)), np.random.default_rng(0), Schedule()).detach()) > 0
        True
    """
    precision = precision or Precision("fp32")
    dev = next(model.parameters()).device

    def on(x):  # host arrays -> the model's device (a no-op on the CPU)
        return (torch.from_numpy(x) if isinstance(x, np.ndarray) else x).to(dev, non_blocking=True)

    fal = on(b["fal"])
    weight = 1.0 + green_weight * green_mask(fal) if green_weight else 1.0

    def run(*args):
        with precision.autocast():
            return model(*(precision.batch(on(a)) for a in args)).float()

    if model.cfg.kind == "unet":
        out = run(*model_inputs(b, None, None))
        mse = torch.mean(weight * (out[:, :3] - fal) ** 2)
        if not model.cfg.carbonate_head:
            return mse
        return mse + carb_weight * carbonate_bce(out[:, 3:], fal, on(b["cassis"]), carb_pos_weight)
    n = fal.shape[0]
    t = rng.integers(0, schedule.T, n)
    a, s = (on(np.asarray(v, np.float32))[:, None, None, None] for v in schedule.coefs(t))
    eps = on(rng.standard_normal(fal.shape).astype(np.float32))
    x_t = a * fal + s * eps
    keep = on((rng.random(n) >= image_drop).astype(np.float32))
    v = run(*model_inputs(b, x_t, on(t.astype(np.float32)), keep))
    return torch.mean(weight * (v - (a * eps - s * fal)) ** 2)


def _validation_batch(src: BatchSource, crop: int) -> dict | None:
    """Fixed validation batch: the central ``crop`` of every validation scene, with its metadata."""
    if not src.val:
        return None
    lo = (src.val[0].cassis.shape[0] - crop) // 2
    sl = slice(lo, lo + crop)
    b = {"cassis": to_unit(np.stack([p.cassis[sl, sl] for p in src.val])),
         "fal": to_unit(np.stack([p.fal[sl, sl] for p in src.val]))}
    b["lat"] = np.array([p.meta.lat if p.meta else 0 for p in src.val], np.float32)
    b["lon"] = np.array([p.meta.lon if p.meta else 0 for p in src.val], np.float32)
    b["site"] = np.array([p.meta.site_index if p.meta else 0 for p in src.val], np.int64)
    b["meta_keep"] = np.array([1.0 if p.meta else 0.0 for p in src.val], np.float32)
    return b


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) a spectral model and return a summary; see the module docstring."""
    if cfg.model not in ("unet", "diffusion"):
        raise ValueError(f"--model must be unet or diffusion, got {cfg.model!r}")
    if cfg.device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be cpu or cuda, got {cfg.device!r}")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: PyTorch sees no CUDA device")
    out, device = start_run(cfg.out, cfg.seed, cfg.threads, cfg.device)
    mcfg = SpectralConfig(kind=cfg.model, width=cfg.width, carbonate_head=cfg.carbonate_head)
    precision = Precision(cfg.precision, channels_last=cfg.precision == "bf16", device=device)
    model = SpectralUNet(mcfg)
    if cfg.init and not (out / CHECKPOINT).is_file():  # a resumed run has its own weights
        load_init(model, init_weights(cfg.init, mcfg))
    # The data (and its worker processes, forked before CUDA starts) before the model moves.
    src = BatchSource(cfg)
    prefetch = BatchPrefetcher(src, cfg.seed, cfg.workers) if cfg.workers > 0 else None
    model = precision.prepare(model.to(device))
    ema = EMA(model, cfg.ema)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    schedule = Schedule()
    val: dict | None = None

    def validation(step: int) -> dict | None:
        if val is None:
            return None
        with torch.no_grad():
            vl = float(loss_on(ema.model, val, np.random.default_rng(999), schedule, carb_weight=0.0))
            rec = {"step": step, "train_loss": trainer.last, "val_loss": vl, "elapsed_s": round(trainer.elapsed(), 1)}
            if mcfg.carbonate_head:  # val loss stays the plain MSE (comparable with head-less runs)
                args = [a.to(device) for a in model_inputs(val, None, None)]
                logit = ema.model(*args)[:, 3:].float().cpu()
                rec["val_carb_bce"] = float(carbonate_bce(logit, torch.from_numpy(val["fal"]),
                                                          torch.from_numpy(val["cassis"]), cfg.carb_pos_weight))
                inside = (torch.from_numpy(val["cassis"]) > -1).any(dim=1, keepdim=True)
                rec["val_carb_best_f1"] = best_f1(logit[inside].numpy(),
                                                  green_mask(torch.from_numpy(val["fal"]))[inside].numpy() > 0)[0]
        extra = (f", carbonate BCE {rec['val_carb_bce']:.4f}, best F1 {rec['val_carb_best_f1']:.3f}"
                 if mcfg.carbonate_head else "")
        trainer.write(f"step {step}: train loss {trainer.last:.4f}, val loss {vl:.4f}{extra} "
                      f"({rec['elapsed_s']} s)")
        return rec

    trainer = Trainer(out, model, opt, lambda s: linear_warmup(s, cfg.lr, 200), steps=cfg.steps, seed=cfg.seed,
                      ema=ema, clip=1.0, precision=precision, device=device, save_every=cfg.save_every,
                      validate_every=cfg.validate_every, max_seconds=cfg.max_seconds,
                      identity={"model_config": mcfg.to_dict()}, progress=cfg.progress, desc=f"train {cfg.model}",
                      hooks=Hooks(validate=validation, postfix=lambda t: {"loss": f"{t.last:.4f}"},
                                  extras=lambda: {"model_config": mcfg.to_dict(), "train_config": asdict(cfg),
                                                  "hardware": hardware(device)},
                                  after_save=lambda step: write_snapshot(trainer, cfg.snapshot) if cfg.snapshot
                                  else None))
    trainer.resume()
    record_config(out / "config.json", {"train": asdict(cfg), "model": mcfg.to_dict(), "sites": SITES})
    val = _validation_batch(src, 128)
    image_drop = cfg.image_drop if cfg.model == "diffusion" else 0.0

    def step(s: int, rng: np.random.Generator):
        if prefetch is not None:
            b, rng = prefetch.get(s)  # the batch of step s and default_rng([seed, s]) after drawing it
        else:
            b = src.batch(rng)
        return loss_on(model, b, rng, schedule, image_drop, cfg.green_weight, precision, cfg.carb_weight,
                       cfg.carb_pos_weight), {}

    try:
        r = trainer.run(step)
    finally:
        if prefetch is not None:
            prefetch.close()
    return {"step": r["step"], "loss": r["last"], "parameters": count_parameters(model), "out": str(out),
            "seconds": round(trainer.elapsed(), 1), "device": str(device)}


_SOURCE: BatchSource | None = None  # a prefetch worker's copy of the batch source (set when it forks)


def _set_source(src: BatchSource) -> None:
    global _SOURCE
    _SOURCE = src


def _draw(seed: int, step: int) -> tuple[dict, np.random.Generator]:
    rng = np.random.default_rng([seed, step])
    return _SOURCE.batch(rng), rng


class BatchPrefetcher:
    """Batches of the coming steps drawn by ``workers`` forked processes, at most ``2 * workers`` ahead.

    ``get(step)`` returns the batch of ``step`` and the generator ``default_rng([seed, step])``
    in the state after drawing it: exactly what the in-process path has, so the run is unchanged.

    Example:
        >>> src = BatchSource(TrainConfig(data="toy", batch=2, crop=8))
        >>> p = BatchPrefetcher(src, seed=0, workers=1)
        >>> b, rng = p.get(3); p.close()
        >>> r = np.random.default_rng([0, 3]); ref = src.batch(r)
        >>> bool((b["fal"] == ref["fal"]).all()), rng.random() == r.random()
        (True, True)
    """

    def __init__(self, src: BatchSource, seed: int, workers: int):
        import multiprocessing

        # fork: the workers share the loaded scenes; they never touch torch (or CUDA).
        self.pool = multiprocessing.get_context("fork").Pool(workers, initializer=_set_source, initargs=(src,))
        self.seed, self.depth = seed, 2 * workers
        self.pending: dict[int, object] = {}

    def get(self, step: int) -> tuple[dict, np.random.Generator]:
        if step not in self.pending:  # a jump (the first call, a resume): start over from here
            self.pending.clear()
        for s in range(step, step + self.depth):
            if s not in self.pending:
                self.pending[s] = self.pool.apply_async(_draw, (self.seed, s))
        return self.pending.pop(step).get()

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


def hardware(device: torch.device) -> str:
    """One line naming where a run trains (GPU name, or the CPU's architecture and core count) and PyTorch.

    Example:
        >>> "torch" in hardware(torch.device("cpu"))
        True
    """
    import platform

    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{platform.machine()} {os.cpu_count()}-core CPU")
    return f"{where}, torch {torch.__version__}, Python {platform.python_version()}"


def write_snapshot(trainer: Trainer, path: str | os.PathLike) -> None:
    """Write the compact weights file of a run (atomically): the EMA weights in fp16, the configs, the step,
    the hardware and the validation history (``log.jsonl``); no optimiser. ``pymars spectral export`` and
    :func:`load_checkpoint` take it like a checkpoint.pt.
    """
    import json

    from pymars.train.engine import LOG, save_checkpoint

    log = trainer.out / LOG
    history = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
    state = trainer.state()
    compact = {"ema": {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
                       for k, v in state["ema"].items()},
               "step": state["step"], "history": history, "elapsed_s": round(trainer.elapsed(), 1),
               "running": state["running"]}
    for key in ("model_config", "train_config", "hardware"):
        compact[key] = state[key]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(compact, path)


def init_weights(source: str | os.PathLike, mcfg: SpectralConfig) -> dict:
    """The state dict a fine-tune starts from: a weights folder (config.json + model.safetensors) or a
    run's checkpoint.pt / run folder (its EMA weights); it must hold a model of ``mcfg``'s kind and width.

    Example:
        >>> from pymars.spectral.predict import WEIGHTS_DIR as WEIGHTS
        >>> sd = init_weights(WEIGHTS / "spectral-unet", SpectralConfig(kind="unet", width=16))
        >>> len(sd) > 10
        True
        >>> init_weights(WEIGHTS / "spectral-unet", SpectralConfig(kind="diffusion", width=16))
        Traceback (most recent call last):
        ...
        ValueError: cannot start a diffusion model (width 16) from spectral-unet: it holds a unet (width 16)
    """
    from pymars.bundles import training_file  # an installed wheel's weights folder has no safetensors: the checkout's

    p = Path(source)
    if (p / "config.json").is_file() and training_file(p / "model.safetensors").is_file():
        from pymars.spectral.export import load_torch_model

        src = load_torch_model(p)
    elif (p / CHECKPOINT).is_file() or p.is_file():
        src = load_checkpoint(p / CHECKPOINT if p.is_dir() else p)
    else:
        raise FileNotFoundError(f"{source}: no config.json + model.safetensors or checkpoint.pt to start from")
    if (src.cfg.kind, src.cfg.width) != (mcfg.kind, mcfg.width):
        raise ValueError(f"cannot start a {mcfg.kind} model (width {mcfg.width}) from {p.name}: it holds a "
                         f"{src.cfg.kind} (width {src.cfg.width})")
    return {k: v.float() for k, v in src.state_dict().items()}


def load_init(model: SpectralUNet, state: dict) -> None:
    """Load fine-tune start weights; only a new carbonate head (``carb.*``) may be absent from them.

    Example:
        >>> src = SpectralUNet(SpectralConfig(kind="unet", width=8))
        >>> dst = SpectralUNet(SpectralConfig(kind="unet", width=8, carbonate_head=True))
        >>> load_init(dst, src.state_dict()); bool(torch.equal(dst.inp.weight, src.inp.weight))
        True
    """
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith("carb.")] + list(unexpected)
    if bad:
        raise ValueError(f"start weights do not fit the model: {', '.join(sorted(bad)[:5])}")


def load_checkpoint(path: str | Path, use_ema: bool = True) -> SpectralUNet:
    """The (EMA) model of a training checkpoint, in eval mode.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> _ = train(TrainConfig(out=d, steps=1, batch=1, crop=8, width=8, data="toy", progress=False))
        >>> load_checkpoint(os.path.join(d, "checkpoint.pt")).cfg.kind
        'unet'
    """
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = SpectralUNet(SpectralConfig.from_dict(ck["model_config"]))
    model.load_state_dict(ck["ema" if use_ema else "model"])
    return model.eval()
