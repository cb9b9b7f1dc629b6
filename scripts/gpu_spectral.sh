#!/usr/bin/env bash
# The spectral diffusion model on a lent GPU (the `device` tool), in one prepared, time-budgeted command.
#
#   scripts/gpu_spectral.sh prepare                  # here: pack the spectral data into .gpu_pack/ (~19 MB)
#   scripts/gpu_spectral.sh remote SECONDS [WIDTH]   # there: train for about SECONDS of wall time, write to $OUT
#   scripts/gpu_spectral.sh export PT OUTDIR         # here: the returned .pt -> a weights folder (ONNX checked)
#
# The GPU gets the working tree only (no ../shared): `prepare` copies exactly what
# `pymars spectral train --model diffusion` reads (the PNG pairs with metadata.csv, the USGS
# splib07 AV95 library, the CaSSIS filter curves, their PROVENANCE) into
# .gpu_pack/shared/data/spectral; `remote` points PYMARS_SHARED at .gpu_pack/shared. The
# scene split is computed from metadata.csv (pymars.spectral.pairs), so no split file travels.
#
# `remote` runs the same training code as the CPU recipe (the batch of step i and its noise
# come from default_rng([seed, i]); LR 200-step warm-up then constant, EMA 0.999) on CUDA in
# bf16 autocast, batch 32, width WIDTH (32), 3 batch-drawing worker processes + 1 torch
# thread (4 CPU threads in all), and stops by time (--max-seconds: SECONDS less 25 s for
# start-up and the last save). Into $OUT it writes exactly:
#   spectral_diffusion_gpu.pt  EMA weights (fp16), model and train config, step, hardware, the
#                              validation history (train/val loss every 500 steps); no optimiser.
#                              Rewritten atomically after every checkpoint (500 steps), so a
#                              killed run still returns weights (~3 MB at width 32).
#   spectral_diffusion.log     the training log (validation lines with elapsed seconds).
# Environment: INIT (a weights folder to continue, e.g. .gpu_pack/spectral-diffusion-init, which
# `prepare` fills with the shipped model; fresh optimiser), DEVICE (cuda; DEVICE=cpu checks the script on a machine without a GPU), BATCH (32),
# LR (0.001), WORKERS (3 on cuda, 0 on cpu), PRECISION (bf16 on cuda, fp32 on cpu),
# RUN (/tmp/spectral-diffusion-gpu, the full run folder, removed first unless RESUME=1).
#
# The device call (from the repository root; budget ~7 minutes of training):
#   run(command="PYMARS_SHARED=$PWD/.gpu_pack/shared scripts/gpu_spectral.sh remote 420 32",
#       carry=[".gpu_pack"], timeout_s=500)
# Back here (the .pt is a checkpoint for `pymars spectral export`):
#   scripts/gpu_spectral.sh export FILES_AT/spectral_diffusion_gpu.pt runs/spectral-diffusion-gpu-export
#   .venv/bin/python bench/spectral_eval.py --families diffusion --diffusion runs/spectral-diffusion-gpu-export \
#       --table-only --out /tmp/spectral_gpu.json [--quick]
# To continue it on the CPU: `pymars spectral train --model diffusion --width 32 --batch 32
# --init-from spectral_diffusion_gpu.pt` (EMA weights, fresh optimiser).
#
# pymars imports its C++ extension (pymars._core) on import; the device's python3 has no build
# of it, and spectral training never calls it, so `remote` runs with a stand-in module when the
# real one cannot be imported (any call into it raises).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?usage: scripts/gpu_spectral.sh prepare | remote SECONDS [WIDTH] | export PT OUTDIR}
pack=.gpu_pack

pick_python() {  # python3 with torch (the device), else the checkout's venv (this machine)
  if [ -n "${PY:-}" ]; then echo "$PY"; elif python3 -c "import torch" 2>/dev/null; then echo python3;
  else echo .venv/bin/python; fi
}

case "$cmd" in
  prepare)
    src=${PYMARS_SHARED:-../shared}/data/spectral
    dst=$pack/shared/data/spectral
    [ -d "$src/crism_cassis_fal_png_pairs" ] || { echo "no $src/crism_cassis_fal_png_pairs" >&2; exit 2; }
    mkdir -p "$pack"
    mkdir -p .git/info
    grep -qxF "/$pack/" .git/info/exclude 2>/dev/null || echo "/$pack/" >> .git/info/exclude
    [ -d "$dst" ] && chmod -R u+w "$dst" && rm -rf "$dst"  # only our part of the pack: others share .gpu_pack
    mkdir -p "$dst/usgs_splib07_av95" "$dst/cassis_filter_curves"
    cp "$src/PROVENANCE.md" "$dst/"
    cp -r "$src/crism_cassis_fal_png_pairs" "$dst/"  # <scene>/{original,edited}_image.png, metadata.csv
    cp "$src/usgs_splib07_av95/"{PROVENANCE.md,s07_AV95_envi.sli,s07_AV95_envi.hdr} "$dst/usgs_splib07_av95/"
    cp "$src/cassis_filter_curves/"{PROVENANCE.md,cassis-response-mtrdr.txt} "$dst/cassis_filter_curves/"
    chmod -R u+w "$dst"
    # The shipped weights, for a run that continues them (INIT=.gpu_pack/spectral-diffusion-init):
    # pymars/weights does not travel (scripts/gpu_slim_tree.sh parks it). No ONNX: training reads the rest.
    init=$pack/spectral-diffusion-init
    rm -rf "$init" && mkdir -p "$init"
    cp pymars/weights/spectral-diffusion/{config.json,model.safetensors} "$init/"
    du -sh "$pack/shared/data/spectral" "$init"
    du -sh "$pack"
    ;;

  remote)
    seconds=${2:?wall seconds}
    width=${3:-32}
    out=${OUT:?set OUT (the device tool sets it)}
    device=${DEVICE:-cuda}
    if [ "$device" = cuda ]; then workers=${WORKERS:-3}; precision=${PRECISION:-bf16};
    else workers=${WORKERS:-0}; precision=${PRECISION:-fp32}; fi
    run=${RUN:-/tmp/spectral-diffusion-gpu}
    [ "${RESUME:-0}" = 1 ] || rm -rf "$run"
    export PYMARS_SHARED=${PYMARS_SHARED:-$PWD/$pack/shared}
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TQDM_MININTERVAL=30
    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    budget=$(( seconds > 60 ? seconds - 25 : seconds / 2 ))
    mkdir -p "$out"
    py=$(pick_python)
    {
      echo "gpu_spectral remote: $seconds s (training $budget s), width $width, batch ${BATCH:-32}, $device," \
           "$precision, $workers workers, PYMARS_SHARED=$PYMARS_SHARED, $(date -u +%FT%TZ)"
      command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv || true
      "$py" - "$out/spectral_diffusion_gpu.pt" <<PY
import sys
sys.path.insert(0, "scripts")
from core_standin import install  # pymars' C core has no build on the device; training never calls it
install()
from pymars.cli import main
sys.exit(main(["spectral", "train", "--model", "diffusion", "--out", "$run", "--steps", "10000000",
               "--width", "$width", "--batch", "${BATCH:-32}", "--lr", "${LR:-0.001}", "--device", "$device",
               "--precision", "$precision", "--workers", "$workers", "--threads", "1",
               "--max-seconds", "$budget", "--save-every", "500", "--validate-every", "500",
               "--snapshot", sys.argv[1]] + (["--init-from", "${INIT:-}"] if "${INIT:-}" else [])))
PY
      echo "done $(date -u +%FT%TZ)"
    } 2>&1 | tee "$out/spectral_diffusion.log"
    ls -la "$out"
    ;;

  export)
    pt=${2:?the returned spectral_diffusion_gpu.pt}
    dest=${3:?output weights folder}
    py=$(pick_python)
    "$py" -m pymars spectral export "$pt" -o "$dest"
    "$py" - "$pt" <<'PY'
import sys, torch
ck = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
print(f"step {ck['step']}, {ck.get('hardware', '?')}, {ck.get('elapsed_s', '?')} s")
for r in ck.get("history", []):
    print(f"  step {r['step']}: train {r['train_loss']:.4f} val {r['val_loss']:.4f} ({r['elapsed_s']} s)")
PY
    ;;

  *)
    echo "unknown verb $cmd (prepare, remote, export)" >&2
    exit 2
    ;;
esac
