"""Spectral models: DDIM sampler, training resume, the committed weights (ONNX vs torch) and the CLI.

No ../shared needed: the CLI runs the committed weights on synthetic PNGs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pymars.cli import main
from pymars.spectral.diffusion import Schedule, ddim_sample, guidance_combine
from pymars.spectral.predict import WEIGHTS_DIR, SpectralPredictor, check_cassis

SHIPPED = [WEIGHTS_DIR / "spectral-unet", WEIGHTS_DIR / "spectral-diffusion"]


def _scene(h=40, w=48, seed=0):
    """A CaSSIS-like test image with a black out-of-footprint corner."""
    img = np.random.default_rng(seed).integers(1, 256, (h, w, 3)).astype(np.uint8)
    img[:6, :10] = 0
    return img


# ---- sampler ----------------------------------------------------------------------------------------------

def test_ddim_is_deterministic_for_a_seed_and_depends_on_it():
    s = Schedule()
    f = lambda x, t, c: 0.3 * x + 0.01 * t[:, None, None, None] / 1000
    a = ddim_sample(f, (1, 3, 8, 8), s, 7, seed=11)
    b = ddim_sample(f, (1, 3, 8, 8), s, 7, seed=11)
    c = ddim_sample(f, (1, 3, 8, 8), s, 7, seed=12)
    assert (a == b).all() and not np.allclose(a, c) and np.abs(a).max() <= 1.0
    with pytest.raises(ValueError):
        ddim_sample(f, (1, 3, 8, 8), s, 0)


def test_ddim_recovers_the_clean_image_from_an_exact_denoiser():
    s = Schedule()
    x0 = np.random.default_rng(0).uniform(-0.9, 0.9, (1, 3, 6, 6))
    out = ddim_sample(lambda x, t, c: s.v_from(x, x0, t), x0.shape, s, steps=3, seed=1)
    np.testing.assert_allclose(out, x0, atol=1e-4)


def test_classifier_free_guidance_formula():
    v00, vi0, vim = np.full(2, 1.0), np.full(2, 2.0), np.full(2, 4.0)
    # v00 + s_i (vi0 - v00) + s_m (vim - vi0) with s_i = 2, s_m = 0.5 -> 1 + 2 + 1
    assert guidance_combine(np.stack([v00, vi0, vim]), 2.0, 0.5, True).tolist() == [4.0, 4.0]
    assert guidance_combine(np.stack([v00, vi0]), 1.0, 9.0, False).tolist() == [2.0, 2.0]


# ---- training ---------------------------------------------------------------------------------------------

def test_training_resumes_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    from pymars.spectral.train import TrainConfig, load_checkpoint, train

    kw = dict(model="diffusion", batch=2, crop=16, width=8, data="toy", progress=False, validate_every=0,
              save_every=2)
    train(TrainConfig(out=str(tmp_path / "a"), steps=4, **kw))
    train(TrainConfig(out=str(tmp_path / "b"), steps=2, **kw))
    r = train(TrainConfig(out=str(tmp_path / "b"), steps=4, **kw))  # resumes from step 2
    assert r["step"] == 4
    a, b = load_checkpoint(tmp_path / "a" / "checkpoint.pt"), load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), k
    with pytest.raises(ValueError, match="another architecture"):
        train(TrainConfig(out=str(tmp_path / "a"), steps=5, **{**kw, "width": 16}))


def test_bf16_fine_tune_from_a_run_with_a_green_weight(tmp_path):
    torch = pytest.importorskip("torch")
    from pymars.spectral.models import SpectralConfig
    from pymars.spectral.train import TrainConfig, green_mask, init_weights, load_checkpoint, train

    kw = dict(batch=2, crop=16, width=8, data="toy", progress=False, validate_every=0, save_every=2)
    train(TrainConfig(out=str(tmp_path / "a"), model="unet", steps=2, **kw))
    start = load_checkpoint(tmp_path / "a" / "checkpoint.pt").state_dict()
    # --init-from takes the run's EMA weights; the fine-tune's first checkpoint moved away from them.
    assert all(torch.equal(v, init_weights(tmp_path / "a", SpectralConfig(kind="unet", width=8))[k])
               for k, v in start.items())
    r = train(TrainConfig(out=str(tmp_path / "b"), model="unet", steps=2, precision="bf16", init=str(tmp_path / "a"),
                          green_weight=4.0, **kw))
    assert r["step"] == 2 and np.isfinite(r["loss"])
    tuned = load_checkpoint(tmp_path / "b" / "checkpoint.pt").state_dict()
    assert all(v.dtype == torch.float32 for v in tuned.values())
    assert any(not torch.equal(v, tuned[k]) for k, v in start.items())
    with pytest.raises(ValueError, match="holds a unet"):
        train(TrainConfig(out=str(tmp_path / "c"), model="diffusion", steps=1, init=str(tmp_path / "a"), **kw))
    fal = torch.full((1, 3, 2, 2), -1.0)
    fal[0, 1, 0, 0] = -1.0 + 9 / 127.5  # 9 levels greener than red and blue: a carbonate pixel
    assert green_mask(fal).sum() == 1


# ---- committed weights ------------------------------------------------------------------------------------

@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_committed_weights_onnx_agrees_with_torch(folder):
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from pymars.spectral.export import INPUT_NAMES, example_inputs, load_torch_model

    assert (folder / "MODEL_CARD.md").is_file()
    model = load_torch_model(folder)
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    ex = example_inputs(3, 40, seed=5)
    with torch.no_grad():
        ref = model(*(torch.from_numpy(ex[n]) for n in INPUT_NAMES)).numpy()
    got = sess.run(None, {k: v for k, v in ex.items() if k in names})[0]
    assert np.abs(ref - got).max() < 1e-3
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model"]["kind"] in folder.name and cfg["onnx_max_abs_diff"] < 1e-3


def test_diffusion_prediction_is_seeded_and_uses_the_metadata():
    p = SpectralPredictor("diffusion")
    img = _scene()
    a = p.predict(img, steps=3, seed=4)
    assert (a == p.predict(img, steps=3, seed=4)).all()
    with_meta = p.predict(img, 18.4, 77.6, "jezero_crater", steps=3, seed=4)
    assert a.shape == img.shape and not (a == with_meta).all()
    assert (a[:6, :10] == 0).all()  # outside the footprint stays black


def test_diffusion_mean_of_samples_is_the_mean_of_the_seeded_draws():
    # samples=N averages the draws of seeds seed..seed+N-1 in the network's output space (then one rounding).
    p = SpectralPredictor("diffusion")
    img = _scene()
    one = p.predict(img, steps=2, seed=4, samples=1)
    assert (one == p.predict(img, steps=2, seed=4)).all()
    two = p.predict(img, steps=2, seed=4, samples=2).astype(int)
    a, b = one.astype(int), p.predict(img, steps=2, seed=5).astype(int)
    assert np.abs(two - (a + b) / 2).max() <= 1.0 and not (two == a).all()
    with pytest.raises(ValueError, match="samples"):
        p.predict(img, steps=2, samples=0)


def test_predictor_refuses_bad_arrays():
    for bad, msg in [(np.zeros((16, 16), np.uint8), "HxWx3"), (np.zeros((16, 16, 3), np.uint16), "uint8"),
                     (np.zeros((0, 16, 3), np.uint8), "at least"), ([[1, 2, 3]], "numpy array")]:
        with pytest.raises(ValueError, match=msg):
            check_cassis(bad)
    p = SpectralPredictor("unet")
    with pytest.raises(ValueError, match="together"):
        p.predict(_scene(), lat=1.0)
    with pytest.raises(ValueError, match="finite"):
        p.predict(_scene(), lat=float("nan"), lon=0.0, site="coprates")
    with pytest.raises(ValueError, match="unknown site"):
        p.predict(_scene(), lat=1.0, lon=0.0, site="atlantis")


# ---- CLI --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [["--model", "unet"],
                                   ["--model", "diffusion", "--steps", "2", "--lat", "-13", "--lon", "-60",
                                    "--site", "coprates"]])
def test_cli_predict_end_to_end(tmp_path, capsys, extra):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    img = _scene(37, 45)  # odd sizes: padded to the network's multiple and cropped back
    Image.fromarray(img).save(src)
    assert main(["spectral", "predict", str(src), "-o", str(out), "--quiet", *extra]) == 0
    fal = np.asarray(Image.open(out))
    assert fal.shape == img.shape and fal.dtype == np.uint8 and (fal[:6, :10] == 0).all() and fal.max() > 0
    assert not list(tmp_path.glob("*.part"))
    assert "FAL" in capsys.readouterr().out


def test_cli_predict_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "out.png"
    Image.fromarray(np.zeros((20, 20), np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(_scene(4, 4)).save(tmp_path / "tiny.png")
    Image.fromarray(_scene()).save(tmp_path / "ok.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    cases = [([str(tmp_path / "missing.png")], "file not found"),
             ([str(tmp_path / "deep.png")], "8-bit RGB"),
             ([str(tmp_path / "junk.png")], "not a readable image"),
             ([str(tmp_path / "tiny.png")], "at least 8x8"),
             ([str(tmp_path / "ok.png"), "--lat", "10"], "together"),
             ([str(tmp_path / "ok.png"), "--lat", "10", "--lon", "3", "--site", "atlantis"], "unknown site")]
    for args, msg in cases:
        assert main(["spectral", "predict", *args, "-o", str(out), "--model", "unet", "--quiet"]) == 2
        assert msg in capsys.readouterr().err
        assert not out.exists()
    assert main(["spectral", "predict", str(tmp_path / "ok.png"), "-o", str(tmp_path / "x.jpg"), "--quiet"]) == 2
    assert main(["spectral", "predict", str(tmp_path / "ok.png"), "-o", str(out), "--model", "nope"]) == 2


def test_predict_runs_without_torch(tmp_path):
    """The ground path is ONNX Runtime only: block torch and run the CLI in a fresh interpreter."""
    import subprocess
    import sys

    Image.fromarray(_scene()).save(tmp_path / "in.png")
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'): raise ImportError('torch blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from pymars.cli import main\n"
            f"rc = main(['spectral', 'predict', {str(tmp_path / 'in.png')!r}, '-o', {str(tmp_path / 'o.png')!r},\n"
            "           '--model', 'diffusion', '--steps', '2', '--quiet'])\n"
            "assert rc == 0 and 'torch' not in sys.modules\n")
    # Not from the checkout: its pymars/ lacks the compiled _core when the package is installed (as in CI).
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.png").is_file()
