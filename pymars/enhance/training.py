"""Training of the enhancers (resumable, seeded, with a progress bar).

What it is for: the commands behind ``pymars enhance-train``. Every run

* draws step ``s``'s batch from ``numpy.random.default_rng([seed, s])``, so a
  run that is stopped and resumed sees exactly the batches an uninterrupted
  run would;
* sets the learning rate as a function of the step only (Adam, cosine
  annealing from ``lr`` to ``lr / 100``), so resuming follows the same schedule;
* writes ``checkpoint.pt`` atomically every ``save_every`` steps and at the end;
* uses one thread (``torch.set_num_threads(1)``) unless told otherwise: the
  machine is shared.

Enhancers train on a cache of (raw, compressed, class, reference) regions
(pymars.enhance.patches) with 64x64 crops, so a step costs only the network.
Losses: MSE for AR-CNN, DnCNN and MarsQE-lite; MarsQE's Eq. 10,
``|I_enh - I_raw|^2 + lambda |I+_enh - I_raw|^2`` with lambda = 1. With
``gan`` set, pymars.enhance.gan adds the adversarial recipe.

The loop itself (resume, checkpoints, progress) is pymars.train.engine's;
this module keeps the enhancers' data, loss, GAN hooks and weights loading.

Example:
    >>> from pymars.train.engine import cosine_lr  # the enhancers' schedule
    >>> cosine_lr(0, 100, 1e-3), round(cosine_lr(100, 100, 1e-3), 8)
    (0.001, 1e-05)
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pymars.bundles import training_file
from pymars.clio import atomic_write
from pymars.enhance.classes import CLASS_NAMES, PatchClassifier, confusion, patch_features
from pymars.enhance.patches import TrainingCache
from pymars.evaluation.classic import jpeg420

# --------------------------------------------------------------------------- classifier


def train_patch_classifier(data: str = "runs/enhance/labelled_train.npz", dev: str = "runs/enhance/labelled_dev.npz",
                           per_class: int = 1500, seed: int = 0, progress: bool = True) -> tuple:
    """Fit the patch classifier on a class-balanced sample of the labelled training patches.

    At most ``per_class`` patches per class; every other patch goes through
    JPEG at a random QF in 10..95 (inference classifies *compressed*
    patches). Returns (classifier, report) with the accuracy on the
    development-window patches (never trained on), raw and at JPEG QF 30.
    """
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    with np.load(data) as z:
        labels = z["labels"]
        pick = np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:per_class]
                               for k in range(len(CLASS_NAMES))])
        pick.sort()
        patches = z["patches"][pick]
        labels = labels[pick]
    qf = rng.integers(10, 96, len(patches))
    compressed = rng.random(len(patches)) < 0.5
    seen = np.stack([jpeg420(p, int(q)).decoded if c else p for p, q, c in
                     tqdm(zip(patches, qf, compressed), total=len(patches), desc="classifier patches",
                          disable=not progress)])
    clf = PatchClassifier.fit(seen, labels, features=patch_features(seen))
    report = {"train_patches": int(len(patches)), "train_per_class": np.bincount(labels, minlength=4).tolist()}
    if dev and Path(dev).is_file():
        with np.load(dev) as z:
            dp, dl = z["patches"], z["labels"]
        for name, imgs in (("raw", dp), ("jpeg30", np.stack([jpeg420(p, 30).decoded for p in dp]))):
            pred = clf(imgs)
            report[f"dev_{name}_accuracy"] = float((pred == dl).mean())
            report[f"dev_{name}_confusion"] = confusion(dl, pred).tolist()
        report["dev_patches_per_class"] = np.bincount(dl, minlength=4).tolist()
    return clf, report


# --------------------------------------------------------------------------- enhancers


@dataclass
class EnhancerConfig:
    kind: str = "marsqe"
    cache: str = "runs/enhance/cache-jpeg30.npz"
    out: str = "runs/enhance/marsqe-jpeg30"
    steps: int = 1000
    batch: int = 8
    crop: int = 48
    lr: float = 5e-4
    lam: float = 1.0
    seed: int = 0
    width: int = 16
    threads: int = 1
    save_every: int = 100
    snapshot_every: int = 100  # also keep model-only snapshots (snapshot-<step>.pt) to compare runs at equal steps
    gan: str = ""  # "", "plain", "conditional", "conditional+lr", "plain+lr"
    # Loss weights of Eq. 9 relative to the MSE term (~1e-3 here): small, so that fidelity still leads.
    gan_weight: float = 1e-3
    lr_weight: float = 1e-2
    # Start from these weights (init_weights: a weights folder, a run folder or a .pt): the MSE model before the
    # GAN recipe, or the QF 30 model when fine-tuning for another setting.
    init: str = ""
    stop_at: int = 0  # stop (resumably) once this step is reached; 0 = run to ``steps``
    # "bf16": autocast the networks to bfloat16 with channels_last activations (AMX CPUs, GPUs);
    # "fp32": the shipped enhancers' recipe. The loss is always taken in fp32.
    precision: str = "fp32"
    # "cpu", "cuda" or "auto" (pymars.train.engine.pick_device); a lent GPU runs the same loop (scripts/gpu_enhance.py).
    device: str = "cpu"
    # Worker threads that draw the coming steps' batches ahead (0: drawn in the loop). A step's batch depends on
    # (seed, step) only, so drawing ahead changes nothing but speed: a GPU step is shorter than numpy's crop work.
    prefetch: int = 0
    # Stop (resumably, checkpoint written) after this many seconds of training; 0 = no limit.
    max_seconds: float = 0.0
    # A model of gray images: set from the cache (TrainingCache.gray) when training starts; export records it.
    gray: bool = False


class _BatchesAhead:
    """The batches of the next ``ahead`` steps, drawn in threads; ``get(s)`` is step ``s``'s batch.

    Example:
        >>> import numpy as np
        >>> class Toy:
        ...     def batch(self, rng, n, crop): return {"x": rng.random(n)}
        >>> ahead = _BatchesAhead(Toy(), seed=0, batch=2, crop=8, ahead=2)
        >>> bool((ahead.get(5)["x"] == Toy().batch(np.random.default_rng([0, 5]), 2, 8)["x"]).all())
        True
    """

    def __init__(self, cache, seed: int, batch: int, crop: int, ahead: int):
        from concurrent.futures import ThreadPoolExecutor

        self.cache, self.seed, self.batch, self.crop, self.ahead = cache, seed, batch, crop, ahead
        self.pool = ThreadPoolExecutor(ahead)
        self.pending: dict = {}

    def get(self, s: int) -> dict:
        for t in range(s, s + self.ahead + 1):
            if t not in self.pending:
                self.pending[t] = self.pool.submit(self.cache.batch, np.random.default_rng([self.seed, t]),
                                                   self.batch, self.crop)
        for t in [t for t in self.pending if t < s]:  # a resumed run skips steps it has already taken
            self.pending.pop(t)
        return self.pending.pop(s).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()


def mse_loss(kind: str, outputs, target, lam: float = 1.0):
    """The reconstruction loss: MarsQE's Eq. 10 (two outputs, lambda) or plain MSE.

    Example:
        >>> import torch
        >>> t = torch.zeros(1, 3, 2, 2); o = torch.ones(1, 3, 2, 2)
        >>> float(mse_loss("marsqe", (o, o), t, 1.0)), float(mse_loss("dncnn", o, t))
        (2.0, 1.0)
    """
    import torch.nn.functional as F

    if kind == "marsqe" or kind in ("marsqe-notfm", "marsqe-notem"):
        enh, plus = outputs
        return F.mse_loss(enh, target) + lam * F.mse_loss(plus, target)
    if isinstance(outputs, tuple):
        outputs = outputs[0]
    return F.mse_loss(outputs, target)


def run_enhancer(net, kind: str, batch: dict):
    """Forward an enhancer on a training batch (dict of tensors) whatever its kind.

    Example:
        >>> import torch
        >>> from pymars.enhance.networks import build
        >>> b = {k: torch.rand(1, 3, 16, 16) for k in ("comp", "ref_raw", "ref_comp")}
        >>> b["classes"] = torch.zeros(1, 1, 16, 16)
        >>> [tuple(final_output(k, run_enhancer(build(k, 4), k, b)).shape) for k in ("dncnn", "marsqe")]
        [(1, 3, 16, 16), (1, 3, 16, 16)]
    """
    from pymars.enhance.networks import PLAIN_KINDS

    if kind in PLAIN_KINDS:
        return net(batch["comp"])
    return net(batch["comp"], batch["ref_raw"], batch["ref_comp"], batch["classes"])


def final_output(kind: str, outputs):
    """The image an enhancer delivers: I+_enh for MarsQE, I_enh for the lite net, the output otherwise.

    Example:
        >>> final_output("marsqe", ("enh", "plus")), final_output("arcnn", "out")
        ('plus', 'out')
    """
    return outputs[1] if isinstance(outputs, tuple) else outputs


def train_enhancer(cfg: EnhancerConfig, progress: bool = True) -> dict:
    """Train (or resume) one enhancer on a cache; returns a summary written to ``out/train.json`` too."""
    import torch

    from pymars.enhance.networks import build
    from pymars.train.engine import CHECKPOINT, Hooks, Precision, Trainer, cosine_lr, save_checkpoint, start_run

    # One thread unless told otherwise (0 too): the machine is shared.
    out, device = start_run(cfg.out, cfg.seed, max(1, cfg.threads), cfg.device)
    cache = TrainingCache.load(cfg.cache)
    if cache.gray != cfg.gray:  # the cache decides what the model is for
        from dataclasses import replace

        cfg = replace(cfg, gray=cache.gray)
    precision = Precision(cfg.precision, channels_last=cfg.precision == "bf16", device=device)
    net = precision.prepare(build(cfg.kind, cfg.width)).to(device)
    opt = torch.optim.Adam(net.parameters(), cfg.lr, betas=(0.9, 0.999))
    gan = None
    if cfg.gan and device.type != "cpu":
        raise ValueError(f"the GAN recipe trains on the CPU only (device {cfg.device!r} asked)")
    if cfg.gan:
        from pymars.enhance.gan import AdversarialRecipe

        gan = AdversarialRecipe(cfg.gan, cfg.gan_weight, cfg.lr_weight, cfg.lr)
    history: list = []
    batch: dict = {}  # the last step's batch and outputs, for the discriminator's step
    outputs = None

    def extras() -> dict:
        w = trainer.window
        history.append({"step": trainer.step, "loss": float(np.mean(w)) if w else None,
                        "seconds": round(trainer.elapsed(), 1)})
        state = {"history": history, "config": asdict(cfg)}
        if gan is not None:
            state["gan"] = gan.state_dict()
        return state

    def snapshot(step: int) -> None:
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:
            save_checkpoint({"model": net.state_dict(), "step": step, "config": asdict(cfg)}, out / f"snapshot-{step}.pt")

    def discriminator(step: int) -> None:
        if gan is not None:
            gan.discriminator_step(final_output(cfg.kind, outputs).detach(), batch["raw"], batch["comp"], step,
                                   cfg.steps)

    hooks = Hooks(extras=extras, after_save=snapshot, after_update=discriminator,
                  postfix=lambda t: {"loss": f"{np.mean(t.window[-20:]):.2e}"})
    trainer = Trainer(out, net, opt, lambda s: cosine_lr(s, cfg.steps, cfg.lr), steps=cfg.steps, seed=cfg.seed,
                      clip=1.0, precision=precision, save_every=cfg.save_every, stop_at=cfg.stop_at,
                      optimizer_key="opt", hooks=hooks, device=device, max_seconds=cfg.max_seconds,
                      progress=progress, desc=f"{cfg.kind} {Path(cfg.cache).stem}")
    if cfg.init and not (out / CHECKPOINT).is_file():
        start = init_weights(cfg.init, cfg.kind, cfg.width)
        # A cascade started from a plain DnCNN gets only its first stage; the new stage keeps its fresh
        # (identity-at-start) weights.
        missing = net.load_state_dict(start, strict=False).missing_keys
        if any(not k.startswith("second.") for k in missing) or (missing and cfg.kind != "dncnn-cascade"):
            raise ValueError(f"{cfg.init}: weights do not fill a {cfg.kind}: missing {missing[:3]}")
    ck = trainer.resume()
    if ck is not None:
        history = ck.get("history", [])
        if gan is not None and "gan" in ck:
            gan.load_state_dict(ck["gan"])
    net.train()
    ahead = _BatchesAhead(cache, cfg.seed, cfg.batch, cfg.crop, cfg.prefetch) if cfg.prefetch > 0 else None

    def step(s: int, rng: np.random.Generator):
        nonlocal outputs, batch
        drawn = ahead.get(s) if ahead is not None else cache.batch(rng, cfg.batch, cfg.crop)
        batch = {k: precision.batch(torch.from_numpy(v).to(device, non_blocking=True)) for k, v in drawn.items()}
        with precision.autocast():
            outputs = run_enhancer(net, cfg.kind, batch)
        outputs = tuple(o.float() for o in outputs) if isinstance(outputs, tuple) else outputs.float()
        loss = mse_loss(cfg.kind, outputs, batch["raw"], cfg.lam)
        if gan is not None:
            loss = loss + gan.generator_loss(final_output(cfg.kind, outputs), batch["raw"], batch["comp"], s, cfg.steps)
        return loss, {}

    try:
        r = trainer.run(step)
    finally:
        if ahead is not None:  # the batches drawn past the last step are not needed
            ahead.close()
    summary = {"config": asdict(cfg), "steps": r["step"], "history": history[-5:],
               "parameters": int(sum(p.numel() for p in net.parameters()))}
    atomic_write(out / "train.json", json.dumps(summary, indent=1).encode())
    return summary


def init_weights(source: str | os.PathLike, kind: str, width: int = 16) -> dict:
    """The float32 state dict a fine-tune starts from: a weights folder, a run folder or a checkpoint/snapshot .pt.

    ``source`` may be an exported folder (``pymars/weights/enhance-marsqe-jpeg30``:
    model.safetensors + model.json), a run folder (its ``checkpoint.pt``) or a
    ``checkpoint.pt`` / ``snapshot-<step>.pt`` file. The source must be the
    same kind and width as the model being trained (a one-line error says
    otherwise), or a ``dncnn`` for a ``dncnn-cascade`` (its first stage); only the weights are taken: optimiser, step and learning-rate
    schedule start afresh, so ``--steps`` and ``--lr`` are the fine-tune's own.

    Example:
        >>> from pymars.enhance.inference import WEIGHTS
        >>> sd = init_weights(WEIGHTS / "enhance-arcnn-jpeg30", "arcnn")
        >>> {str(v.dtype) for v in sd.values()}
        {'torch.float32'}
        >>> init_weights(WEIGHTS / "enhance-arcnn-jpeg30", "dncnn")
        Traceback (most recent call last):
        ...
        ValueError: cannot start a dncnn (width 16) from ...enhance-arcnn-jpeg30: it holds a arcnn (width 16)
    """
    from pymars.enhance.networks import PLAIN_KINDS

    p = Path(source)
    if not (training_file(p / "model.safetensors").is_file() or (p / "checkpoint.pt").is_file() or p.is_file()):
        raise FileNotFoundError(f"{source}: no model.safetensors, checkpoint.pt or .pt file to start from")
    net, src_kind, meta = load_enhancer(p)
    src_width = meta.get("width") or 16
    if kind == "dncnn-cascade" and src_kind == "dncnn":
        # The cascade's first stage is a DnCNN: start it from the trained one (its second stage stays fresh).
        return {f"first.{k}": (v.float() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    # Plain kinds ignore the width (their widths are fixed); compare it for MarsQE only.
    if src_kind != kind or (kind not in PLAIN_KINDS and int(src_width) != int(width)):
        shown = str(source) if len(str(source)) < 40 else "..." + Path(source).name
        raise ValueError(f"cannot start a {kind} (width {width}) from {shown}: it holds a {src_kind} "
                         f"(width {src_width})")
    state = net.state_dict()
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def load_enhancer(path: str | os.PathLike):
    """(network in eval mode, kind, config dict) from a training checkpoint or a weights folder.

    Example:
        >>> from pymars.enhance.inference import WEIGHTS
        >>> net, kind, meta = load_enhancer(WEIGHTS / "enhance-arcnn-jpeg30")
        >>> kind, meta["setting"]
        ('arcnn', 'jpeg:30')
    """
    import torch

    from pymars.enhance.networks import build

    p = Path(path)
    if p.is_dir() and training_file(p / "model.safetensors").is_file():
        from safetensors.torch import load_file

        meta = json.loads((p / "model.json").read_text())
        net = build(meta["kind"], meta.get("width", 16))
        net.load_state_dict(load_file(str(training_file(p / "model.safetensors"))))
        if hasattr(net, "tem"):  # folders exported before the tie margin existed ran the literal arg-max
            net.tem.margin = float(meta.get("tem_margin", 0.0))
        return net.eval(), meta["kind"], meta
    ck = p / "checkpoint.pt" if p.is_dir() else p
    state = torch.load(ck, map_location="cpu", weights_only=False)
    cfg = dict(state["config"], step_trained=state["step"])
    net = build(cfg["kind"], cfg.get("width", 16))
    net.load_state_dict(state["model"])
    return net.eval(), cfg["kind"], cfg
