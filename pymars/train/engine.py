"""The one training engine: run folder, resume, EMA, learning rate, checkpoints, precision, progress.

What it is for: every model family of the project (base codec, REMAC, the
MarsQE enhancers, the spectral models) trains through :class:`Trainer`, so a
run behaves the same whatever it trains:

* the batch of step ``s`` comes from ``numpy.random.default_rng([seed, s])``
  and the learning rate is a function of the step only (:func:`hold_then_cosine`,
  :func:`cosine_lr`, :func:`linear_warmup`), so a run stopped and resumed sees
  the batches and the rates of an uninterrupted one;
* ``OUT/checkpoint.pt`` (model, EMA, optimiser, step, PyTorch RNG state, running
  averages, the family's extras) is written through :func:`pymars.clio.atomic_path`
  every ``save_every`` steps and at the end: a crash leaves the previous one;
* running the same command again resumes; a larger ``--steps`` continues the
  same run ("relay" across sessions); a checkpoint of another architecture is
  refused instead of half-loaded;
* validation records go to ``OUT/log.jsonl``, one JSON object per line.

A family hands the engine a ``step(step, rng) -> (loss, logs)`` callable (its
model, data and loss) and optional :class:`Hooks` (validation, checkpoint
extras, snapshots, a GAN's discriminator step); it keeps its model, data, loss,
validation and export.

What it must not do: import a model family (families depend on the engine,
never the reverse), write a file any other way than through pymars.clio's
atomic helpers, or draw random numbers from a stream that is not a function of
(seed, step) or saved in the checkpoint.

Example (a two-parameter model fitted for 4 steps, stopped at 2 and resumed):
    >>> import tempfile, torch
    >>> def fit(out, stop_at=0):
    ...     torch.manual_seed(0)
    ...     model = torch.nn.Linear(1, 1)
    ...     opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ...     tr = Trainer(out, model, opt, lambda s: 0.1, steps=4, stop_at=stop_at, progress=False)
    ...     tr.resume()
    ...     def step(s, rng):
    ...         x = torch.from_numpy(rng.random((8, 1), dtype="float32"))
    ...         return ((model(x) - 2 * x) ** 2).mean(), {}
    ...     return tr.run(step)
    >>> a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> fit(a)["step"], fit(b, stop_at=2)["step"], fit(b)["step"]
    (4, 2, 4)
    >>> wa, wb = (load_checkpoint(Path(d) / CHECKPOINT)["model"]["weight"] for d in (a, b))
    >>> torch.equal(wa, wb)  # b was stopped and resumed: the weights of the uninterrupted run
    True
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pymars.clio import atomic_path, atomic_write

#: The checkpoint's file name in a run folder (the families' checkpoints have always used it).
CHECKPOINT = "checkpoint.pt"

#: The validation log's file name in a run folder.
LOG = "log.jsonl"


# --------------------------------------------------------------------------- schedules


def hold_then_cosine(step: int, steps: int, lr: float, lr_final: float, decay_from: float) -> float:
    """The base codec's (and REMAC's) schedule: ``lr`` until ``decay_from * steps``, then a cosine to ``lr_final``.

    Example:
        >>> hold_then_cosine(10, 100, 1.0, 0.0, 0.5), round(hold_then_cosine(75, 100, 1.0, 0.0, 0.5), 6)
        (1.0, 0.5)
        >>> hold_then_cosine(100, 100, 1.0, 0.0, 0.5)
        0.0
    """
    start = decay_from * steps
    if step <= start:
        return lr
    t = min(1.0, (step - start) / max(1.0, steps - start))
    return lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * t))


def cosine_lr(step: int, steps: int, lr: float, final_ratio: float = 0.01) -> float:
    """The enhancers' schedule: cosine annealing from ``lr`` at step 0 to ``lr * final_ratio`` at ``steps``.

    Example:
        >>> cosine_lr(0, 100, 1e-3), round(cosine_lr(100, 100, 1e-3), 8), round(cosine_lr(50, 100, 1.0), 3)
        (0.001, 1e-05, 0.505)
    """
    t = min(max(step / max(steps, 1), 0.0), 1.0)
    return lr * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def linear_warmup(step: int, lr: float, warmup: int) -> float:
    """The spectral models' schedule: linear warm-up over ``warmup`` steps, then constant.

    It does not depend on the planned total, so a run stopped at any saved step
    is reproduced exactly by ``--steps`` of that step (the EMA does the averaging).

    Example:
        >>> linear_warmup(0, 1.0, 200), linear_warmup(99, 1.0, 200), linear_warmup(5000, 1.0, 200)
        (0.005, 0.5, 1.0)
    """
    return lr * min(1.0, (step + 1) / warmup)


# --------------------------------------------------------------------------- EMA


def ema_decay(step: int, decay: float, warmup: bool = True) -> float:
    """The EMA decay at ``step``: ``min(decay, (1 + step) / (10 + step))`` with warm-up, else ``decay``.

    Early on an EMA with the full decay would mostly average the random
    initialisation; the warm-up lets it follow the model for the first steps.

    Example:
        >>> [round(ema_decay(s, 0.999), 4) for s in (0, 10, 100, 100000)]
        [0.1, 0.55, 0.9182, 0.999]
        >>> ema_decay(0, 0.9, warmup=False)
        0.9
    """
    return min(decay, (1 + step) / (10 + step)) if warmup else decay


class EMA:
    """An exponential moving average of a model's trainable parameters (the weights that get exported).

    ``model`` is the average (a copy of the trained model, without gradients);
    parameters the trained model freezes keep their value. Buffers are not
    averaged: they are the copy's.

    Example:
        >>> m = torch.nn.Linear(1, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = m.weight.fill_(0.0)
        >>> ema = EMA(m, 0.999)
        >>> with torch.no_grad():
        ...     _ = m.weight.fill_(1.0)
        >>> ema.update(m, step=0); round(float(ema.model.weight), 4)  # decay 0.1 at step 0
        0.9
    """

    def __init__(self, model: torch.nn.Module, decay: float, warmup: bool = True):
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay
        self.warmup = warmup

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        w = 1 - ema_decay(step, self.decay, self.warmup)
        for pe, pm in zip(self.model.parameters(), model.parameters()):
            if pm.requires_grad:
                pe.lerp_(pm.detach(), w)


# --------------------------------------------------------------------------- precision, threads, device


class Precision:
    """Where a family computes: ``"bf16"`` (autocast to bfloat16, AMX / GPU) or ``"fp32"``; NHWC or not.

    ``channels_last`` lays activations out as oneDNN's fast convolutions want
    them; it applies to 4-D tensors only.

    Example:
        >>> p = Precision("bf16", channels_last=True, device="cpu")
        >>> x = p.batch(torch.zeros(1, 3, 4, 4)); x.is_contiguous(memory_format=torch.channels_last)
        True
        >>> with p.autocast():
        ...     torch.nn.Linear(2, 2)(torch.zeros(1, 2)).dtype
        torch.bfloat16
        >>> Precision("fp16")
        Traceback (most recent call last):
        ...
        ValueError: precision must be bf16 or fp32, not 'fp16'
    """

    def __init__(self, name: str = "fp32", channels_last: bool = False, device: str | torch.device = "cpu"):
        if name not in ("bf16", "fp32"):
            raise ValueError(f"precision must be bf16 or fp32, not {name!r}")
        self.name, self.channels_last, self.device = name, channels_last, torch.device(device)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model in the memory format of this precision (call before making its EMA)."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        """A 4-D batch in the memory format of this precision."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def autocast(self):
        """The autocast context of the forward pass (a no-op in fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.name == "bf16")


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when there is one, else the CPU; any other name as PyTorch reads it.

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def start_run(out: str | Path, seed: int = 0, threads: int = 0, device: str = "auto") -> tuple[Path, torch.device]:
    """Create the run folder, set the thread count (0: PyTorch's default) and the seed; return (folder, device).

    Call it before building the model: the seed sets its initialisation.

    Example:
        >>> import tempfile
        >>> start_run(tempfile.mkdtemp() + "/run", seed=0, device="cpu")[1]
        device(type='cpu')
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return folder, pick_device(device)


def record_config(path: str | Path, doc: dict) -> None:
    """Write a run's configuration record (indented JSON) atomically.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "train_config.json"
        >>> record_config(p, {"steps": 2}); json.loads(p.read_text())
        {'steps': 2}
    """
    atomic_write(path, json.dumps(doc, indent=2).encode())


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(state: dict, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically: the file is the new state or, on any error, still the old one.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "checkpoint.pt"
        >>> save_checkpoint({"step": 1}, p); torch.load(p)["step"]
        1
    """
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """A checkpoint's dict (every key a family saved), tensors on ``device``.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "checkpoint.pt"
        >>> save_checkpoint({"step": 3, "model": {}}, p); sorted(load_checkpoint(p))
        ['model', 'step']
    """
    return torch.load(path, map_location=device, weights_only=False)


def _plain(value):
    # Tuples and lists, ints and floats as JSON sees them: a config saved by torch.save
    # (tuples) and one rebuilt from JSON (lists) are the same configuration.
    return json.loads(json.dumps(value, default=str))


def refuse_other_architecture(path: str | Path, checkpoint: dict, identity: dict) -> None:
    """Raise ValueError when ``checkpoint`` was trained for another architecture than ``identity``.

    ``identity`` maps checkpoint keys (``"model_config"``, ...) to what this run
    expects. A key the checkpoint lacks, and inside a config an option one side
    lacks (an option added later), are no conflict: the old checkpoints still resume.

    Example:
        >>> refuse_other_architecture("ck.pt", {"model_config": {"width": 8}}, {"model_config": {"width": 8, "new": 1}})
        >>> refuse_other_architecture("ck.pt", {"model_config": {"width": 8}}, {"model_config": {"width": 16}})
        Traceback (most recent call last):
        ...
        ValueError: ck.pt holds another architecture (model_config: {'width': 8}); use another --out
    """
    for key, expected in identity.items():
        if key not in checkpoint:
            continue
        theirs, ours = _plain(checkpoint[key]), _plain(expected)
        if isinstance(theirs, dict) and isinstance(ours, dict):
            same = all(theirs[k] == ours[k] for k in theirs.keys() & ours.keys())
        else:
            same = theirs == ours
        if not same:
            raise ValueError(f"{path} holds another architecture ({key}: {checkpoint[key]}); use another --out")


def rng_state() -> dict:
    """PyTorch's random state (CPU, and every CUDA device in use), to put in a checkpoint.

    Example:
        >>> s = rng_state(); a = torch.rand(1); set_rng_state(s); bool(torch.rand(1) == a)
        True
    """
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state` (the CUDA part only where the same number of devices is present).

    Example:
        >>> set_rng_state(rng_state())
    """
    torch.set_rng_state(state["cpu"].cpu())
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


# --------------------------------------------------------------------------- the loop


@dataclass
class Hooks:
    """What a family adds to the loop (every hook is optional).

    * ``validate(step) -> record``: the JSON object appended to ``log.jsonl``
      (``None``: nothing to log); called every ``validate_every`` steps and at the end;
    * ``extras() -> dict``: the family's keys of every checkpoint (its configs,
      a history, a discriminator's state);
    * ``after_save(step)``: after each checkpoint (snapshots);
    * ``after_update(step)``: after each optimiser step (a GAN's discriminator);
    * ``postfix(trainer) -> dict``: the progress bar's figures, every 20 steps.

    Example:
        >>> Hooks().validate is None
        True
    """

    validate: Callable[[int], dict | None] | None = None
    extras: Callable[[], dict] | None = None
    after_save: Callable[[int], None] | None = None
    after_update: Callable[[int], None] | None = None
    postfix: Callable[["Trainer"], dict] | None = None


class Trainer:
    """Runs a family's step function from the saved step to ``steps``, with resume, EMA, checkpoints and logs.

    Arguments: the run folder, the model, its optimiser and the learning rate
    ``lr_at(step)`` (each parameter group gets it times its ``"scale"``, 1 if
    absent). Options:

    * ``ema``: an :class:`EMA` of the model, updated after each optimiser step;
    * ``clip``: gradient-norm clipping (0: none);
    * ``outlier_after``: from this step on, a step whose loss exceeds 20 times
      the running mean (or is not finite) is skipped: one exploding crop would
      poison Adam's moments (None: every step is taken);
    * ``stop_at``: stop there (resumably) before ``steps``; the schedule still runs to ``steps``;
    * ``max_seconds``: stop (resumably: validation and checkpoint as at the end) at the first step
      taken once this many seconds have passed since the trainer was made (0: no time limit); meant
      for schedules that do not depend on the planned total (:func:`linear_warmup`);
    * ``optimizer_key``: the checkpoint key of the optimiser state (the enhancers' is ``"opt"``);
    * ``identity``: checkpoint keys that must match to resume (see :func:`refuse_other_architecture`).

    After :meth:`run`: ``step``, ``running`` (0.98-averages of the logs of the
    steps taken), ``last`` (the last loss), ``window`` (the losses since the
    last checkpoint, emptied after each), ``skipped``.

    Example: see the module docstring.
    """

    def __init__(self, out: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 lr_at: Callable[[int], float], *, steps: int, seed: int = 0, ema: EMA | None = None,
                 clip: float = 1.0, precision: Precision | None = None, device: str | torch.device = "cpu",
                 save_every: int = 100, validate_every: int = 0, stop_at: int = 0, max_seconds: float = 0.0,
                 outlier_after: int | None = None,
                 optimizer_key: str = "optimizer", identity: dict | None = None, hooks: Hooks | None = None,
                 progress: bool = True, desc: str = "train"):
        self.out = Path(out)
        self.model, self.optimizer, self.lr_at, self.ema = model, optimizer, lr_at, ema
        self.steps, self.seed, self.clip = steps, seed, clip
        self.device = torch.device(device)
        self.precision = precision or Precision("fp32", device=self.device)
        self.save_every, self.validate_every, self.stop_at = save_every, validate_every, stop_at
        self.max_seconds = max_seconds
        self.outlier_after, self.optimizer_key = outlier_after, optimizer_key
        self.identity = identity or {}
        self.hooks = hooks or Hooks()
        self.progress, self.desc = progress, desc
        self.step, self.skipped, self.last = 0, 0, float("nan")
        self.running: dict[str, float] = {}
        self.window: list[float] = []
        self.t0 = time.time()
        self._bar = None

    @property
    def checkpoint(self) -> Path:
        """``OUT/checkpoint.pt``."""
        return self.out / CHECKPOINT

    def elapsed(self) -> float:
        """Seconds since this session's trainer was made."""
        return time.time() - self.t0

    def write(self, line: str) -> None:
        """A progress line (under the bar), only when the run shows progress."""
        if self.progress:
            (self._bar.write if self._bar is not None else print)(line)

    def resume(self, init_from: str = "") -> dict | None:
        """Continue from ``OUT/checkpoint.pt`` if it exists; return its dict (for the family's extras), else None.

        Without a checkpoint, ``init_from`` (another run's checkpoint) gives the
        starting weights: its EMA, for the model and the EMA (a fresh optimiser
        and step 0). Parts the other run lacks (new layers of a grown model)
        keep their initialisation; weights this model does not have are an error.
        """
        if not self.checkpoint.is_file():
            if init_from:
                self._init_from(init_from)
            return None
        ck = load_checkpoint(self.checkpoint, self.device)
        refuse_other_architecture(self.checkpoint, ck, self.identity)
        self.model.load_state_dict(ck["model"])
        if self.ema is not None:
            self.ema.model.load_state_dict(ck["ema"])
        self.optimizer.load_state_dict(ck[self.optimizer_key])
        self.step = int(ck["step"])
        # Checkpoints from before the engine lack these: the run still resumes, with a fresh
        # running mean and PyTorch random stream (the data order is a function of (seed, step) anyway).
        self.running = dict(ck.get("running", {}))
        self.skipped = int(ck.get("skipped_steps", 0))
        if "rng" in ck:
            set_rng_state(ck["rng"])
        if self.progress:
            print(f"resuming {self.checkpoint} at step {self.step}")
        return ck

    def _init_from(self, source: str) -> None:
        ck = load_checkpoint(source, self.device)
        missing, unexpected = self.model.load_state_dict(ck["ema"], strict=False)
        if unexpected:
            raise ValueError(f"{source} holds weights this model does not have: {unexpected[:4]}")
        if self.ema is not None:
            self.ema.model.load_state_dict(ck["ema"], strict=False)
        if self.progress and missing:
            print(f"initialised from {source}; new: {len(missing)} tensors ({missing[0]}, ...)")

    def state(self) -> dict:
        """The checkpoint dict of the current step (the family's extras included)."""
        state = {"model": self.model.state_dict()}
        if self.ema is not None:
            state["ema"] = self.ema.model.state_dict()
        state[self.optimizer_key] = self.optimizer.state_dict()
        state.update(step=self.step, rng=rng_state(), running=dict(self.running), skipped_steps=self.skipped)
        if self.hooks.extras is not None:
            state.update(self.hooks.extras())
        return state

    def save(self) -> None:
        """Write ``OUT/checkpoint.pt`` atomically, then run the ``after_save`` hook."""
        save_checkpoint(self.state(), self.checkpoint)
        self.window = []
        if self.hooks.after_save is not None:
            self.hooks.after_save(self.step)

    def log(self, record: dict) -> None:
        """Append one JSON line to ``OUT/log.jsonl``."""
        with open(self.out / LOG, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _outlier(self, loss: float, step: int) -> bool:
        if self.outlier_after is None:
            return False
        return not math.isfinite(loss) or ("loss" in self.running and step > self.outlier_after
                                           and loss > 20 * self.running["loss"])

    def _take(self, loss: torch.Tensor, step: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, step)
        if self.hooks.after_update is not None:
            self.hooks.after_update(step)

    def run(self, step_fn: Callable[[int, np.random.Generator], tuple]) -> dict:
        """Train to ``steps`` (or ``stop_at``); return ``{"step", "last", "running", "skipped"}``.

        ``step_fn(step, rng)`` returns ``(loss tensor, logs)`` (logs: floats for
        the running averages; ``"loss"`` is added when absent). The engine sets
        the learning rate before it and takes the optimiser step after it.
        """
        from tqdm import tqdm

        end = min(self.steps, self.stop_at) if self.stop_at else self.steps
        self._bar = tqdm(total=self.steps, initial=self.step, disable=not self.progress, desc=self.desc,
                         smoothing=0.05)
        try:
            while self.step < end:
                s = self.step
                for g in self.optimizer.param_groups:
                    g["lr"] = self.lr_at(s) * g.get("scale", 1.0)
                loss, logs = step_fn(s, np.random.default_rng([self.seed, s]))
                logs = dict(logs)
                logs.setdefault("loss", float(loss.detach()))
                if self._outlier(logs["loss"], s):
                    self.skipped += 1
                else:
                    self._take(loss, s)
                    for k, v in logs.items():
                        self.running[k] = 0.98 * self.running.get(k, v) + 0.02 * v
                self.last = logs["loss"]
                self.window.append(logs["loss"])
                self.step += 1
                self._bar.update(1)
                if self.step % 20 == 0 and self.running:
                    post = self.hooks.postfix(self) if self.hooks.postfix else {"loss": f"{self.last:.4g}"}
                    self._bar.set_postfix(**post)
                done = self.step >= end or bool(self.max_seconds and self.elapsed() >= self.max_seconds)
                if self.hooks.validate is not None and self.validate_every and (
                        self.step % self.validate_every == 0 or done):
                    record = self.hooks.validate(self.step)
                    if record is not None:
                        self.log(record)
                if self.step % self.save_every == 0 or done:
                    self.save()
                if done:
                    break
            if not self.checkpoint.is_file():  # nothing to train (steps already reached): still leave a checkpoint
                self.save()
        finally:
            self._bar.close()
            self._bar = None
        return {"step": self.step, "last": self.last, "running": dict(self.running), "skipped": self.skipped}
