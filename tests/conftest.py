"""Shared fixtures: a tiny trained-for-a-moment model bundle and synthetic scenes.

Tests must run without ../shared and without a GPU, and must not depend on
the shipped weights to test the machinery: the ``tiny_bundle`` fixture trains
a tiny model for a few steps on procedural scenes and exports it exactly as a
real model is exported (blob, ONNX, safetensors), so encode/decode/ONNX/PyTorch
are all exercised end to end in seconds.
"""
from __future__ import annotations

import numpy as np
import pytest

from pymars.data.synthetic import mars_like_scene


def pytest_configure(config):
    # CI has 2 cores; OpenMP spin-waiting of two busy processes (e.g. pytest-xdist
    # or a training run beside the tests) slows tiny models down 25x. One thread
    # is plenty for the tiny models used here.
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    import torch

    from pymars.bundle import ModelBundle
    from pymars.export.bundle import load_checkpoint_model, write_bundle
    from pymars.train.loop import TrainConfig, train

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("tiny_run")
    train(TrainConfig(out=str(run), steps=30, batch=4, crop=64, lr=2e-3, synthetic=True, model="tiny",
                      validate_every=0, save_every=30, progress=False, ema=0.0))
    model, ck = load_checkpoint_model(run / "checkpoint.pt")
    out = tmp_path_factory.mktemp("bundles") / "tiny-test"
    write_bundle(model, out, {"steps": ck["step"], "data": "synthetic scenes (tests)"})
    return ModelBundle(out)


@pytest.fixture(scope="session")
def scene_rgb():
    return mars_like_scene(150, 200, seed=11)


@pytest.fixture(scope="session")
def scene_gray():
    return mars_like_scene(120, 90, seed=12, channels=1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)
