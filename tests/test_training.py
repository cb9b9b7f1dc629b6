"""Training: runs on synthetic scenes, checkpoints atomically, resumes where it stopped.

Specification:
* a run of N steps writes a checkpoint at step N and a resumed run continues from it;
* the learning-rate schedule is constant, then a cosine to lr_final;
* gains are exact scale-table steps, so a quality maps to an integer index offset;
* the training pool never returns pixels of a protocol tile (needs ../shared).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pymars.evaluation import protocol
from pymars.train.codec.entropy_model import LOG_SCALE_STEP
from pymars.train.codec.loop import MODEL_PRESETS, TrainConfig, learning_rate, train
from pymars.train.codec.network import BaseCodec


def test_training_resumes_from_its_checkpoint(tmp_path):
    cfg = TrainConfig(out=str(tmp_path), steps=3, batch=2, crop=64, synthetic=True, model="tiny",
                      validate_every=0, save_every=2, progress=False)
    assert train(cfg)["step"] == 3
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 3 and not list(tmp_path.glob("*.tmp"))
    cfg.steps = 5
    assert train(cfg)["step"] == 5


def test_learning_rate_is_constant_then_cosine():
    cfg = TrainConfig(steps=1000, lr=1e-3, lr_final=1e-5, decay_from=0.5)
    assert learning_rate(cfg, 0) == learning_rate(cfg, 500) == 1e-3
    assert learning_rate(cfg, 750) < 1e-3 and abs(learning_rate(cfg, 1000) - 1e-5) < 1e-12


def test_gains_are_exact_scale_table_steps():
    m = BaseCodec(MODEL_PRESETS["tiny"])
    k = m.gain_steps(torch.linspace(0, m.levels - 1, 11))
    assert torch.equal(k, torch.round(k))
    g = torch.exp(LOG_SCALE_STEP * k)
    assert torch.allclose(torch.log(g) / LOG_SCALE_STEP, k, atol=1e-4)


@pytest.mark.skipif(protocol.mars_data_dir() is None, reason="../shared/data/mars is not available")
def test_training_crops_never_overlap_protocol_tiles():
    from pymars.train.dataset import mars_training_pool

    pool = mars_training_pool(128, progress=False)
    held = {}
    for path, y, x in protocol.selected_windows("dev_marsscapes"):
        held.setdefault(str(path), []).append((y, x))
    files = [str(p) for p in protocol.group_files("dev_marsscapes")]
    for k in range(0, 2 * len(files), 2):  # native-resolution panoramas come first, in file order
        for y, x in pool.positions[k]:
            for ty, tx in held.get(files[k // 2], []):
                assert y + 128 <= ty or y >= ty + 256 or x + 128 <= tx or x >= tx + 256
