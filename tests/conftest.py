"""Shared fixtures: a tiny trained-for-a-moment model bundle and synthetic scenes.

Tests must run without ../shared and without a GPU, and must not depend on
the shipped weights to test the machinery: the ``tiny_bundle`` fixture trains
a tiny model for a few steps on procedural scenes and exports it exactly as a
real model is exported (blob, ONNX, safetensors), so encode/decode/ONNX/PyTorch
are all exercised end to end in seconds.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pymars.data.synthetic import mars_like_scene


def pytest_configure(config):
    # The installed wheel has no training weights (model.safetensors); the tests that
    # need them (PyTorch paths, re-export) find them in this checkout, also from the
    # subprocesses that run the CLI outside it.
    os.environ.setdefault("PYMARS_CHECKOUT", str(Path(__file__).resolve().parents[1]))
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

    from pymars.bundles import ModelBundle
    from pymars.train.codec.loop import TrainConfig, train
    from pymars.train.export.bundle_writer import load_checkpoint_model, write_bundle

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


@pytest.fixture(scope="session")
def tiny_remac(tmp_path_factory):
    """(bundle, model): a tiny REMAC bundle whose reference branch, fusion and 1/2-resolution
    refinement have random (non-zero) weights, so references change the tables and the reconstruction."""
    import torch

    from pymars.bundles import ModelBundle
    from pymars.train.remac.export import write_remac_bundle
    from pymars.train.remac.loop import load_base_model
    from pymars.train.remac.model import RemacCodec, RemacConfig

    torch.manual_seed(3)
    model = RemacCodec(load_base_model(synthetic=True),
                       RemacConfig(ref_channels=4, tem_channels=4, value_channels=4, refine_blocks=1))
    with torch.no_grad():
        model.g_s.refine[0].conv2.weight.normal_(0, 0.05)
        model.h_s.mid.conv.weight.normal_(0, 0.05)
        model.h_s.ref.conv.weight.normal_(0, 0.05)
        model.h_s.ref.conv.bias.normal_(0, 0.5)
        model.g_s.fuse.weight.normal_(0, 0.05)
    out = tmp_path_factory.mktemp("remac") / "tiny-remac"
    write_remac_bundle(model, out, {"test": True})
    return ModelBundle(out), model


def make_remac_library(bundle, seeds=(11, 12, 13)):
    """A library of synthetic reference tiles for ``bundle``; their latents are replaced by large
    random ones (the random tiny analysis gives latents near zero, so every reference would look alike)."""
    from pymars.remac import ReferenceLibrary
    from pymars.remac.library import reference_entry
    from pymars.remac.selection import latent_descriptor

    tiles = [mars_like_scene(256, 256, seed=s) for s in seeds]
    entries = [reference_entry(bundle.core, t) for t in tiles]
    rng = np.random.default_rng(seeds[0])
    latents = rng.integers(-60, 61, (len(seeds), bundle.latent_channels, 16, 16)).astype(np.int8)
    return ReferenceLibrary(model_id=bytes(bundle.model_id), histograms=np.stack([e[0] for e in entries]),
                            descriptors=np.stack([latent_descriptor(q) for q in latents]), latents=latents,
                            tiles=np.stack(tiles), names=[f"s{s}" for s in seeds])


@pytest.fixture(scope="session")
def remac_library(tiny_remac):
    return make_remac_library(tiny_remac[0])


@pytest.fixture(scope="session")
def gray_bundle_dir(tmp_path_factory):
    """A tiny gray model (two steps on synthetic scenes) exported with tile means."""
    pytest.importorskip("torch")
    from pymars.train.codec.loop import TrainConfig, train
    from pymars.train.export.bundle_writer import load_checkpoint_model, write_bundle

    run = tmp_path_factory.mktemp("run")
    train(TrainConfig(out=str(run), steps=2, batch=2, crop=64, synthetic=True, model="tiny-gray",
                      validate_every=0, save_every=2, progress=False))
    model, ck = load_checkpoint_model(run / "checkpoint.pt")
    model.cfg.tile_means = True
    out = tmp_path_factory.mktemp("bundle") / "tiny-gray"
    write_bundle(model, out, {"steps": ck["step"]})
    return out
