"""Spectral training options for a lent GPU: device, time budget, batch-drawing workers, compact snapshot.

Synthetic toy data only (no ../shared) and the CPU only (no GPU needed).
"""
import torch
import pytest

from pymars.spectral.train import TrainConfig, load_checkpoint, train


def toy(out, **kw) -> TrainConfig:
    base = dict(out=str(out), model="diffusion", steps=6, batch=2, crop=16, width=8, data="toy", progress=False,
                validate_every=0, save_every=3)
    return TrainConfig(**{**base, **kw})


def ema_of(folder) -> dict:
    return torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=False)["ema"]


def test_workers_draw_the_same_batches_as_the_training_process(tmp_path):
    train(toy(tmp_path / "a"))
    train(toy(tmp_path / "b", workers=2))
    a, b = ema_of(tmp_path / "a"), ema_of(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_time_budget_stops_resumably_before_the_planned_steps(tmp_path):
    r = train(toy(tmp_path, steps=10**6, save_every=10**6, max_seconds=0.5))
    assert 0 < r["step"] < 10**6
    ck = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert ck["step"] == r["step"]  # saved at the stop, not only every save_every
    assert train(toy(tmp_path, steps=r["step"] + 2))["step"] == r["step"] + 2


def test_snapshot_holds_fp16_ema_weights_without_optimiser_and_loads_as_a_checkpoint(tmp_path):
    snap = tmp_path / "out" / "spectral_diffusion_gpu.pt"
    train(toy(tmp_path / "run", snapshot=str(snap), validate_every=3))
    ck = torch.load(snap, map_location="cpu", weights_only=False)
    assert ck["step"] == 6 and "optimizer" not in ck and "model" not in ck
    assert all(v.dtype == torch.float16 for v in ck["ema"].values() if v.is_floating_point())
    assert "torch" in ck["hardware"] and ck["train_config"]["width"] == 8
    model = load_checkpoint(snap)
    assert model.cfg.kind == "diffusion"
    full = ema_of(tmp_path / "run")
    assert all(torch.allclose(model.state_dict()[k].float(), full[k].float(), atol=1e-2) for k in full)


def test_unknown_device_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--device must be cpu or cuda"):
        train(toy(tmp_path, device="tpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_says_so(tmp_path):
    with pytest.raises(RuntimeError, match="no CUDA device"):
        train(toy(tmp_path, device="cuda"))
