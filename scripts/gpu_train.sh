#!/usr/bin/env bash
# One prepared training command for a lent GPU (the `device` tool), per model family.
#
#   scripts/gpu_train.sh prepare FAMILY RUN      # here: pack the crop pool and RUN's weights into .gpu_pack/
#   scripts/gpu_train.sh remote FAMILY SECONDS   # there: train for SECONDS, write slim weights to $OUT
#   scripts/gpu_train.sh resume FAMILY RUN       # here: continue RUN on the CPU from what the GPU returned
#
# FAMILY is a `pymars train --model` preset (wide, gray-wide, gray, base; wide: the RGB
# 256-latent model on augmented crops, the same pool rules as the CPU run). The GPU gets the
# working tree only (no ../shared), so `prepare` writes the crop pool as one .npz
# (pymars.train.dataset.save_pool, 256x256 crops) and the run's EMA weights; .gpu_pack/
# is git-ignored and named in the device call's `carry`. `remote` runs the same
# training code (bf16 autocast on CUDA, batch 32 of 256x256) and returns the model
# and EMA weights in float16 with the step count (no optimiser state: $OUT takes 16 MiB
# a file); `resume` starts the CPU run from them with a fresh optimiser.
#
# Size: the device takes at most 64 MiB of working tree (tracked files + carry). The
# tracked tree is ~190 MB (pymars/weights ~160 MB); `scripts/gpu_slim_tree.sh park` moves the
# folders training does not read out of the checkout for the call (code ~3 MB remains) and
# `restore` brings them back. The gray-wide pack is ~80 MB (pool 71 MB at 256x256 + weights
# 10 MB), so it still has to be cut (e.g. Navcam at 2x/4x only, or lossless WebP as
# scripts/gpu_enhance.py packs its regions) before this family can travel. `remote` puts a
# stand-in for pymars' C core in place (scripts/core_standin.py): the device has no build of it.
# The device call (one command, ~9 minutes of training; see /work/.library/device):
#   run(command="scripts/gpu_train.sh remote gray-wide 480", carry=[".gpu_pack"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?usage: scripts/gpu_train.sh prepare|remote|resume FAMILY ...}
family=${2:?model family (pymars train --model)}
pack=.gpu_pack
case "$cmd" in
  prepare)
    run=${3:?run folder with checkpoint.pt}
    mkdir -p "$pack"
    grep -qxF "/$pack/" .git/info/exclude 2>/dev/null || echo "/$pack/" >> .git/info/exclude
    .venv/bin/python - "$family" "$run" "$pack" <<'PY'
import sys, torch
from pymars.train.dataset import gray_training_pool, mars_training_pool, save_pool
from pymars.train.codec.loop import MODEL_PRESETS
family, run, pack = sys.argv[1:4]
gray = MODEL_PRESETS[family].channels == 1
wide = MODEL_PRESETS[family].latent >= 256
pool = gray_training_pool(256) if gray else mars_training_pool(256, augment=wide, scales=3 if wide else 2)
save_pool(pool, f"{pack}/{family}_pool256.npz")
ck = torch.load(f"{run}/checkpoint.pt", map_location="cpu", weights_only=False)
torch.save({"ema": {k: v.half() if v.is_floating_point() else v for k, v in ck["ema"].items()},
            "step": ck["step"], "model_config": ck["model_config"]}, f"{pack}/{family}_init.pt")
print("packed", family, "from step", ck["step"])
PY
    du -sh "$pack"
    ;;
  remote)
    seconds=${3:-480}
    export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
    out=${OUT:-/tmp/gpu_out}
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt" || true
    python3 - "$family" "$seconds" "$pack" "$out" <<'PY' 2>&1 | tee "$out/train.log"
import sys, time, torch
sys.path.insert(0, "scripts")
from core_standin import install  # the device has no build of pymars' C core; training never calls it
install()
from pymars.train.codec.loop import TrainConfig, train
import os
family, seconds, pack, out = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
DEVICE = os.environ.get("DEVICE", "cuda")  # DEVICE=cpu BATCH=2 checks this script on a machine without a GPU
BATCH = int(os.environ.get("BATCH", "32"))
t0 = time.time()
# Steps for the time budget: measure 30 steps, then size the run (the LR schedule needs its length).
probe = TrainConfig(out="/tmp/gpu_probe", steps=30, batch=BATCH, crop=256, model=family, device=DEVICE,
                    init_from=f"{pack}/{family}_init.pt", pool_cache=f"{pack}/{family}_pool256.npz",
                    validate_every=0, save_every=1000, progress=False, precision="bf16", channels_last=True)
train(probe)
rate = 30 / (time.time() - t0)
steps = int(rate * (seconds - (time.time() - t0)) * 0.9)
print(f"{rate:.1f} steps/s (first 30, with start-up): training {steps} steps", flush=True)
cfg = TrainConfig(**{**probe.__dict__, "out": "/tmp/gpu_run", "steps": steps, "save_every": 500, "lr": 1e-4,
                     "decay_from": 0.5, "progress": False})
train(cfg)
ck = torch.load("/tmp/gpu_run/checkpoint.pt", map_location="cpu", weights_only=False)
slim = {"model": {k: v.half() if v.is_floating_point() else v for k, v in ck["model"].items()},
        "ema": {k: v.half() if v.is_floating_point() else v for k, v in ck["ema"].items()},
        "step": ck["step"], "model_config": ck["model_config"], "train_config": ck["train_config"],
        "hardware": torch.cuda.get_device_name(0) if DEVICE == "cuda" else DEVICE}
torch.save(slim, f"{out}/{family}_gpu.pt")
print("saved", ck["step"], "steps")
PY
    ;;
  resume)
    run=${3:?run folder for the CPU continuation}
    got=$(ls -t /work/.device/*/"${family}_gpu.pt" 2>/dev/null | head -1 || true)
    got=${GPU_WEIGHTS:-$got}
    [ -n "$got" ] || { echo "no ${family}_gpu.pt from the device (set GPU_WEIGHTS=PATH)"; exit 2; }
    echo "pymars train --model $family --init-from $got --out $run ..."
    exec .venv/bin/pymars train --model "$family" --init-from "$got" --out "$run" --threads 2 "${@:4}"
    ;;
  *) echo "unknown command $cmd (prepare, remote, resume)"; exit 2 ;;
esac
