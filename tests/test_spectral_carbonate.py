"""The UNet's carbonate detection head: model, loss, training start, ONNX export, threshold and scoring.

Synthetic data only (no ../shared, no GPU): the head is a second output of the
same graph, trained with a class-weighted BCE on the target's green mask, and
scored as a detector of its own at a threshold chosen on another part.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from pymars.spectral.evaluate import (choose_carbonate_threshold, detection_row, format_table,
                                      save_carbonate_threshold)
from pymars.spectral.metrics import best_f1
from pymars.spectral.pairs import ScenePair


def _green_scene(seed=0, size=16):
    """A grey FAL with a green blob, the same image as input, a black (out-of-footprint) corner."""
    rng = np.random.default_rng(seed)
    fal = rng.integers(48, 53, (size, size, 3)).astype(np.uint8)  # grey: |G - max(R, B)| <= 4
    fal[4:8, 4:8, 1] = 120
    fal[:2, :2] = 0
    return ScenePair(f"s{seed}", fal.copy(), fal, None)


# ---- thresholds and scores (numpy only) ---------------------------------------------------------------------

def test_best_f1_takes_tied_scores_together_and_handles_no_positive():
    # Scores 0.5 tie on a positive and a negative: a threshold cannot split them.
    f1, thr = best_f1(np.array([0.9, 0.5, 0.5, 0.1]), np.array([False, True, False, True]))
    assert thr == 0.1 and f1 == pytest.approx(2 * 2 / (4 + 2))
    f1, thr = best_f1(np.array([1.0, 2.0]), np.array([False, False]))
    assert f1 != f1 and thr == float("inf")  # NaN: F1 is undefined without a positive


def test_best_f1_is_one_for_a_perfect_ranking():
    s = np.arange(10.0)
    assert best_f1(s, s >= 7) == (1.0, 7.0)


def test_threshold_chosen_on_one_part_scores_another():
    val, test = _green_scene(0), _green_scene(1)
    logit = np.where(np.arange(16)[:, None] * np.ones(16) < 8, 2.0, -2.0)  # positive on the top half
    logit[4:8, 4:8] = 5.0
    thr, f1 = choose_carbonate_threshold([logit], [val])
    assert thr == 5.0 and f1 == 1.0
    row = detection_row([logit - 3.0], [test], thr, "head")  # shifted logits on "test": nothing passes
    assert row["carbonate"]["recall"] == 0.0 and row["carbonate"]["true_pixels"] == 16
    assert "| head | - | - | - | - |" in format_table([row])


def test_detection_row_ignores_pixels_outside_the_footprint():
    p = _green_scene(2)
    logit = np.full((16, 16), 9.0)  # everything "positive", the black corner included
    c = detection_row([logit], [p], 0.0, "all")["carbonate"]
    assert c["predicted_pixels"] == 16 * 16 - 4 and c["true_pixels"] == 16 and c["recall"] == 1.0


def test_save_carbonate_threshold_keeps_the_rest_of_the_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": {"kind": "unet"}}))
    save_carbonate_threshold(tmp_path, 0.25, {"part": "val", "f1": 0.4})
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model"] == {"kind": "unet"} and cfg["carbonate_head"] == {"threshold": 0.25, "part": "val", "f1": 0.4}


# ---- model, loss, training start (torch) --------------------------------------------------------------------

def test_head_adds_one_output_channel_and_is_unet_only():
    torch = pytest.importorskip("torch")
    from pymars.spectral.models import SpectralConfig, SpectralUNet

    args = (torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16), torch.ones(2), torch.zeros(2), torch.zeros(2),
            torch.zeros(2), torch.zeros(2, dtype=torch.long), torch.ones(2))
    assert SpectralUNet(SpectralConfig(width=8, carbonate_head=True))(*args).shape == (2, 4, 16, 16)
    assert SpectralUNet(SpectralConfig(width=8))(*args).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="unet model only"):
        SpectralUNet(SpectralConfig(kind="diffusion", width=8, carbonate_head=True))
    # A config without the head round-trips without the key (old configs and checkpoint identities unchanged).
    assert SpectralConfig.from_dict(SpectralConfig(width=8).to_dict()) == SpectralConfig(width=8)
    assert SpectralConfig.from_dict(SpectralConfig(carbonate_head=True).to_dict()).carbonate_head


def test_head_model_starts_from_headless_weights_with_the_same_fal_output():
    torch = pytest.importorskip("torch")
    from pymars.spectral.models import SpectralConfig, SpectralUNet
    from pymars.spectral.train import load_init

    torch.manual_seed(0)
    src = SpectralUNet(SpectralConfig(width=8)).eval()
    dst = SpectralUNet(SpectralConfig(width=8, carbonate_head=True)).eval()
    load_init(dst, src.state_dict())
    args = (torch.zeros(1, 3, 16, 16), torch.rand(1, 3, 16, 16) * 2 - 1, torch.ones(1), torch.zeros(1),
            torch.zeros(1), torch.zeros(1), torch.zeros(1, dtype=torch.long), torch.ones(1))
    with torch.no_grad():
        assert torch.equal(dst(*args)[:, :3], src(*args))
    with pytest.raises(ValueError, match="do not fit"):
        load_init(src, dst.state_dict())  # head weights in a head-less model: refused


def test_carbonate_bce_counts_footprint_pixels_only_and_a_step_lowers_it():
    torch = pytest.importorskip("torch")
    from pymars.spectral.train import carbonate_bce, to_unit

    p = _green_scene(3)
    fal, cassis = (torch.from_numpy(to_unit(a[None])) for a in (p.fal, p.cassis))
    logit = torch.zeros(1, 1, 16, 16, requires_grad=True)
    base = carbonate_bce(logit, fal, cassis, 10.0)
    outside = logit.detach().clone()
    outside[..., :2, :2] = 50.0  # wrong, but outside the footprint: no effect
    assert float(carbonate_bce(outside, fal, cassis, 10.0)) == pytest.approx(float(base.detach()))
    base.backward()
    with torch.no_grad():
        assert float(carbonate_bce(logit - 10 * logit.grad, fal, cassis, 10.0)) < float(base)


def test_toy_training_with_head_runs_and_resumes(tmp_path):
    pytest.importorskip("torch")
    from pymars.spectral.train import TrainConfig, load_checkpoint, train

    cfg = TrainConfig(out=str(tmp_path), steps=2, batch=2, crop=16, width=8, data="toy", progress=False,
                      validate_every=0, save_every=1, carbonate_head=True, carb_weight=0.5)
    assert train(cfg)["step"] == 2
    cfg.steps = 3
    assert train(cfg)["step"] == 3
    assert load_checkpoint(tmp_path / "checkpoint.pt").cfg.carbonate_head


# ---- ONNX export and prediction -----------------------------------------------------------------------------

def test_export_has_fal_and_carbonate_outputs_and_predictor_reads_both(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from pymars.spectral.export import export_model
    from pymars.spectral.models import SpectralConfig, SpectralUNet
    from pymars.spectral.predict import SpectralPredictor

    torch.manual_seed(0)
    info = export_model(SpectralUNet(SpectralConfig(width=8, carbonate_head=True)), tmp_path)
    assert info["onnx_max_abs_diff"] < 1e-3
    assert json.loads((tmp_path / "config.json").read_text())["outputs"] == ["out", "carb_logit"]
    pred = SpectralPredictor(tmp_path)
    assert pred.has_carbonate_head
    img = np.random.default_rng(0).integers(1, 256, (18, 22, 3)).astype(np.uint8)  # sides not a multiple of 4
    img[:3, :5] = 0
    fal, logit = pred.predict_with_carbonate(img, lat=18.4, lon=77.6, site="jezero")
    assert fal.shape == img.shape and logit.shape == img.shape[:2] and logit.dtype == np.float32
    assert np.isneginf(logit[:3, :5]).all() and np.isfinite(logit[3:]).all()
    assert (fal == pred.predict(img, lat=18.4, lon=77.6, site="jezero")).all()  # same FAL as plain predict


def test_predictor_without_head_refuses_carbonate(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from pymars.spectral.export import export_model
    from pymars.spectral.models import SpectralConfig, SpectralUNet
    from pymars.spectral.predict import SpectralPredictor

    export_model(SpectralUNet(SpectralConfig(width=8)), tmp_path)
    assert "outputs" not in json.loads((tmp_path / "config.json").read_text())
    with pytest.raises(ValueError, match="no carbonate head"):
        SpectralPredictor(tmp_path).predict_with_carbonate(np.ones((8, 8, 3), np.uint8))


def test_cli_train_options():
    from pymars.spectral.cli import register

    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    a = p.parse_args(["spectral", "train", "--model", "unet", "--out", "x", "--carbonate-head", "--carb-weight", "0.1",
                      "--carb-pos-weight", "5"])
    assert (a.carbonate_head, a.carb_weight, a.carb_pos_weight) == (True, 0.1, 5.0)
    assert p.parse_args(["spectral", "train", "--model", "unet", "--out", "x"]).carbonate_head is None


def test_cli_writes_the_heads_mask_with_the_val_threshold_or_refuses_in_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from PIL import Image

    from pymars.cli import main
    from pymars.spectral.evaluate import save_carbonate_threshold
    from pymars.spectral.export import export_model
    from pymars.spectral.models import SpectralConfig, SpectralUNet
    from pymars.spectral.predict import SpectralPredictor

    head, plain = tmp_path / "head", tmp_path / "plain"
    export_model(SpectralUNet(SpectralConfig(width=8, carbonate_head=True)), head)
    export_model(SpectralUNet(SpectralConfig(width=8)), plain)
    img = np.random.default_rng(1).integers(1, 256, (20, 24, 3)).astype(np.uint8)
    img[:4] = 0  # outside the footprint: never carbonate
    src = tmp_path / "cassis.png"
    Image.fromarray(img).save(src)
    fal_out, mask_out = tmp_path / "fal.png", tmp_path / "mask.png"
    args = ["spectral", "predict", str(src), "-o", str(fal_out), "--carbonate-mask", str(mask_out), "--quiet"]
    # No threshold chosen yet, and a model without the head: one line each, no file written.
    for model, match in ((head, "no carbonate threshold"), (plain, "needs a UNet with the carbonate head")):
        assert main([*args, "--model", str(model)]) != 0
        assert match in capsys.readouterr().err
        assert not fal_out.exists() and not mask_out.exists()
    _, logit = SpectralPredictor(head).predict_with_carbonate(img)
    threshold = float(np.median(logit[4:]))
    save_carbonate_threshold(head, threshold, {"val_f1": 0.5})
    assert main([*args, "--model", str(head)]) == 0
    mask = np.array(Image.open(mask_out))
    assert mask.shape == img.shape[:2] and set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask > 0, logit >= threshold)
    assert not mask[:4].any() and fal_out.exists()
