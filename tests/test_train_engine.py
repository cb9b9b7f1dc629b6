"""The training engine (pymars.train.engine): what every model family's run relies on.

Specification:
* a run stopped at a checkpoint and resumed takes the same next step as an
  uninterrupted run (same loss, same weights), PyTorch randomness included;
* the EMA follows ``min(decay, (1 + s) / (10 + s))`` and leaves frozen parameters alone;
* the schedules give each family's values (codec/REMAC hold-then-cosine,
  enhancer cosine to lr/100, spectral linear warm-up);
* a checkpoint write that fails leaves the previous checkpoint intact and no
  temporary file;
* a checkpoint of another architecture is refused; one written before the
  engine (no RNG state, no running means) still resumes;
* a checkpoint of each family (codec, REMAC, enhancer, spectral) resumes and continues;
* the engine imports no family.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from pymars.train import engine
from pymars.train.engine import (
    EMA,
    Hooks,
    Trainer,
    cosine_lr,
    ema_decay,
    hold_then_cosine,
    linear_warmup,
    load_checkpoint,
    save_checkpoint,
)


def tiny_run(out, steps, stop_at=0, losses=None):
    """A 1-channel conv net on random crops, with dropout (PyTorch randomness) and an EMA."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Dropout(0.3),
                                torch.nn.Conv2d(4, 1, 3, padding=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    tr = Trainer(out, model, opt, lambda s: hold_then_cosine(s, steps, 1e-2, 1e-3, 0.5), steps=steps, seed=3,
                 ema=EMA(model, 0.99), save_every=2, stop_at=stop_at, progress=False)
    tr.resume()

    def step(s, rng):
        x = torch.from_numpy(rng.random((2, 1, 8, 8), dtype=np.float32))
        loss = ((model(x) - x.flip(-1)) ** 2).mean()
        if losses is not None:
            losses[s] = float(loss.detach())
        return loss, {}

    return tr, tr.run(step)


def test_resume_takes_the_same_next_step_as_an_uninterrupted_run(tmp_path):
    whole, parts = {}, {}
    tiny_run(tmp_path / "a", 6, losses=whole)
    tr, r = tiny_run(tmp_path / "b", 6, stop_at=4, losses=parts)
    assert r["step"] == 4 and load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 4
    tr, r = tiny_run(tmp_path / "b", 6, losses=parts)  # a new session: resumes at 4
    assert r["step"] == 6
    assert parts == whole  # the steps after the resume (4, 5) see the same data, dropout and weights
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) and torch.equal(a["ema"][k], b["ema"][k]) for k in a["model"])
    # Relay: a larger --steps continues the same run.
    tr, r = tiny_run(tmp_path / "b", 7)
    assert r["step"] == 7


def test_ema_warm_up_values_and_frozen_parameters():
    assert [ema_decay(s, 0.999) for s in (0, 1, 8)] == [0.1, 2 / 11, 0.5]
    assert ema_decay(10**6, 0.999) == 0.999 and ema_decay(0, 0.999, warmup=False) == 0.999
    m = torch.nn.Linear(1, 1)
    with torch.no_grad():
        m.weight.fill_(0.0), m.bias.fill_(0.0)
    m.bias.requires_grad_(False)
    ema = EMA(m, 0.999)
    expected = 0.0
    with torch.no_grad():
        m.weight.fill_(1.0), m.bias.fill_(1.0)
    for s in range(5):
        ema.update(m, s)
        d = min(0.999, (1 + s) / (10 + s))
        expected = d * expected + (1 - d) * 1.0
    assert abs(float(ema.model.weight) - expected) < 1e-6
    assert float(ema.model.bias) == 0.0  # frozen in the model: not averaged
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_schedules_give_each_familys_values():
    from pymars.train.codec.loop import TrainConfig, learning_rate

    c = TrainConfig(steps=1000, lr=2e-4, lr_final=2e-5, decay_from=0.8)
    assert learning_rate(c, 800) == 2e-4 and abs(learning_rate(c, 900) - 1.1e-4) < 1e-12
    assert abs(learning_rate(c, 1000) - 2e-5) < 1e-15 and learning_rate(c, 5000) == learning_rate(c, 1000)
    assert hold_then_cosine(600, 3000, 1e-4, 1e-5, 0.6) == 1e-4  # REMAC: hold to 60 %
    assert abs(cosine_lr(500, 1000, 5e-4) - 5e-4 * (0.01 + 0.99 * 0.5)) < 1e-15
    assert abs(cosine_lr(1000, 1000, 5e-4) - 5e-6) < 1e-15 and cosine_lr(2000, 1000, 5e-4) == cosine_lr(1000, 1000, 5e-4)
    assert [linear_warmup(s, 1e-3, 200) for s in (0, 199, 10**5)] == [5e-6, 1e-3, 1e-3]


def test_trainer_sets_each_groups_scaled_rate(tmp_path):
    p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    model = torch.nn.Module()
    model.p, model.q = p, q
    opt = torch.optim.SGD([{"params": [p], "scale": 1.0}, {"params": [q], "scale": 0.5}], lr=1.0)
    seen = []
    tr = Trainer(tmp_path, model, opt, lambda s: 0.1 * (s + 1), steps=2, progress=False)
    tr.run(lambda s, rng: (seen.append([g["lr"] for g in opt.param_groups]) or (p + q).sum(), {}))
    assert seen == [[0.1, 0.05], [0.2, 0.1]]


def test_a_failed_checkpoint_write_leaves_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"step": 1}, path)
    real_save = torch.save

    def dies_half_way(obj, f, *a, **k):
        real_save({"step": "partial"}, f)
        raise KeyboardInterrupt  # Ctrl-C while the file is being written

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_the_outlier_guard_skips_exploding_steps(tmp_path):
    w = torch.nn.Parameter(torch.ones(1))
    model = torch.nn.Module()
    model.w = w
    opt = torch.optim.SGD([w], lr=0.0)
    tr = Trainer(tmp_path, model, opt, lambda s: 0.0, steps=5, outlier_after=1, progress=False)
    losses = [1.0, 1.0, 1.0, 1e7, float("nan")]
    r = tr.run(lambda s, rng: ((w * losses[s]).sum(), {}))
    assert r["skipped"] == 2 and abs(r["running"]["loss"] - 1.0) < 1e-9


def test_another_architecture_is_refused_and_an_old_checkpoint_resumes(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    save_checkpoint({"model": model.state_dict(), "ema": model.state_dict(), "optimizer": opt.state_dict(),
                     "step": 7, "model_config": {"width": 2}}, tmp_path / "checkpoint.pt")  # no rng, no running
    tr = Trainer(tmp_path, model, opt, lambda s: 1e-3, steps=8, ema=EMA(model, 0.9), progress=False,
                 identity={"model_config": {"width": 2, "added_later": True}})
    assert tr.resume()["step"] == 7 and tr.step == 7
    tr = Trainer(tmp_path, model, opt, lambda s: 1e-3, steps=8, progress=False, identity={"model_config": {"width": 4}})
    with pytest.raises(ValueError, match="another architecture"):
        tr.resume()


def test_hooks_log_validation_and_add_checkpoint_keys(tmp_path):
    import json

    model = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    saved = []
    hooks = Hooks(validate=lambda s: {"step": s, "val": 1.0}, extras=lambda: {"train_config": {"a": 1}},
                  after_save=saved.append)
    tr = Trainer(tmp_path, model, opt, lambda s: 0.1, steps=3, save_every=2, validate_every=2, hooks=hooks,
                 progress=False)
    tr.run(lambda s, rng: (model(torch.ones(1, 1)).sum() ** 2, {}))
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 3] and saved == [2, 3]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["train_config"] == {"a": 1}


# ---- each family's checkpoint resumes through the engine -----------------------------------------------


def strip_engine_keys(path: Path) -> dict:
    """Rewrite a checkpoint as the loops before the engine wrote it (no RNG state, no running means)."""
    ck = load_checkpoint(path)
    for k in ("rng", "running", "skipped_steps"):
        ck.pop(k, None)
    save_checkpoint(ck, path)
    return ck


def test_codec_checkpoint_resumes(tmp_path):
    from pymars.train.codec.loop import TrainConfig, train

    cfg = TrainConfig(out=str(tmp_path), steps=2, batch=2, crop=64, synthetic=True, model="tiny",
                      validate_every=0, save_every=2, progress=False)
    train(cfg)
    ck = strip_engine_keys(tmp_path / "checkpoint.pt")
    assert {"model", "ema", "optimizer", "step", "model_config", "train_config"} <= set(ck)
    cfg.steps = 3
    assert train(cfg)["step"] == 3 and load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3


def test_remac_checkpoint_resumes(tmp_path):
    from pymars.train.remac.loop import RemacTrainConfig, train_remac

    cfg = RemacTrainConfig(out=str(tmp_path), steps=1, batch=2, crop=64, synthetic=True, progress=False,
                           validate_every=0)
    train_remac(cfg)
    ck = strip_engine_keys(tmp_path / "checkpoint.pt")
    assert {"model", "ema", "optimizer", "step", "remac_config", "base_config", "library_hash"} <= set(ck)
    cfg.steps = 2
    assert train_remac(cfg)["step"] == 2


def enhancer_cache(n=2):
    """A tiny enhancer training cache: synthetic scenes and their JPEG QF 30 versions (as tests/test_enhance.py)."""
    from pymars.data.synthetic import mars_like_scene
    from pymars.enhance.codecs import compress
    from pymars.enhance.patches import TrainingCache

    raw = np.stack([mars_like_scene(256, 256, seed=i) for i in range(n)])
    comp = np.stack([compress(r, "jpeg:30")[0] for r in raw])
    d_raw = np.stack([mars_like_scene(128, 128, seed=50 + i) for i in range(2)])
    d_comp = np.stack([compress(r, "jpeg:30")[0] for r in d_raw])[None]
    return TrainingCache(raw, comp, np.array([[[3, 3], [1, 2]]] * n, np.uint8), np.zeros((n, 2, 2), np.int16),
                         np.zeros(n, np.int16), d_raw, d_comp, np.array([1, 2], np.uint8), ["jpeg:30"])


def test_enhancer_checkpoint_resumes(tmp_path):
    from pymars.enhance.training import EnhancerConfig, train_enhancer

    cache = tmp_path / "cache.npz"
    enhancer_cache().save(cache)
    common = dict(kind="arcnn", cache=str(cache), batch=2, crop=32, save_every=1, snapshot_every=0)
    train_enhancer(EnhancerConfig(out=str(tmp_path / "r"), steps=1, **common), progress=False)
    ck = strip_engine_keys(tmp_path / "r" / "checkpoint.pt")
    assert {"model", "opt", "step", "history", "config"} <= set(ck) and "ema" not in ck
    s = train_enhancer(EnhancerConfig(out=str(tmp_path / "r"), steps=2, **common), progress=False)
    assert s["steps"] == 2 and [h["step"] for h in s["history"]] == [1, 2]


def test_spectral_checkpoint_resumes(tmp_path):
    from pymars.spectral.train import TrainConfig, train

    kw = dict(model="unet", batch=1, crop=8, width=8, data="toy", progress=False, validate_every=0, save_every=1)
    train(TrainConfig(out=str(tmp_path), steps=1, **kw))
    ck = strip_engine_keys(tmp_path / "checkpoint.pt")
    assert {"model", "ema", "optimizer", "step", "model_config", "train_config"} <= set(ck)
    assert train(TrainConfig(out=str(tmp_path), steps=2, **kw))["step"] == 2


def test_the_engine_imports_no_family():
    tree = ast.parse(Path(engine.__file__).read_text())
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in mods if m.startswith("pymars")} == {"pymars.clio"}
