#!/usr/bin/env python3
"""The enhancers' GPU run beside the CPU's equal-budget run: PSNR gain against training pixels and time.

What it is for: issue 19 asks whether MarsQE's +1.0 dB plateau at JPEG QF 30 is the CPU
budget's or the data's. scripts/gpu_enhance.py trained four enhancers at equal GPU time on
a lent H200 (batch 32 of 64 px crops, snapshots at 25/50/75/100 %); bench/enhance_eval.py
scored every snapshot on the 69 development tiles. This script joins those scores with
the runs' step/second records (runs/enhance/gpu/<job>/gpu_history.json) and the CPU's
equal-budget curve (bench/results/enhance_eq10k.json: batch 8 of 48 px crops), writes one
summary JSON and draws the curves. Training pixels (steps x batch x crop^2) put the two
recipes on one axis. It reads result files only; it trains and evaluates nothing.

    python bench/enhance_gpu_curve.py --evals runs/gpu/enhance_gpu_eval.json,runs/gpu/enhance_gpu_curve.json \\
        --out bench/results/enhance_gpu.json --plot bench/results/enhance_plots/gpu_jpeg30.png

Example:
    >>> job_and_step("runs/enhance/export/gpu-marsqe-w32-2050"), job_and_step("runs/enhance/export/gpu-dncnn")
    (('marsqe-w32', 2050), ('dncnn', None))
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GPU_BATCH, GPU_CROP = 32, 64  # scripts/gpu_enhance.py
CPU_BATCH, CPU_CROP = 8, 48  # the equal-budget CPU recipe (docs/enhance.md)
LABELS = {"marsqe-w32": "MarsQE width 32", "marsqe-w16": "MarsQE width 16", "lite-w16": "MarsQE-lite width 16",
          "dncnn": "DnCNN", "marsqe": "MarsQE width 16", "marsqe-lite": "MarsQE-lite width 16", "arcnn": "AR-CNN"}


def job_and_step(model: str) -> tuple[str, int | None]:
    """(job, snapshot step) from an exported folder's name ``gpu-<job>[-<step>]``; step None = the final weights."""
    name = Path(model).name.removeprefix("gpu-")
    m = re.fullmatch(r"(.+)-(\d+)", name)
    return (m.group(1), int(m.group(2))) if m else (name, None)


def gpu_curves(evals: list[str], runs: Path, setting: str = "jpeg:30") -> dict:
    """{job: [{step, seconds, mpx, gain_db}, ...]} from enhance_eval result files and the runs' histories."""
    curves: dict = {}
    for f in evals:
        table = json.loads(Path(f).read_text())["table"][setting]
        base = table["compressed"]["all"]["psnr"]
        for model, row in table.items():
            if model == "compressed":
                continue
            job, step = job_and_step(model)
            hist = json.loads((runs / job / "gpu_history.json").read_text())
            step = step or max(hist["steps"])
            seconds = {h["step"]: h["seconds"] for h in hist["history"]}.get(step)
            curves.setdefault(job, {})[step] = {"step": step, "seconds": seconds,
                                                "mpx": step * GPU_BATCH * GPU_CROP ** 2 / 1e6,
                                                "gain_db": round(row["all"]["psnr"] - base, 3)}
    return {j: [c[s] for s in sorted(c)] for j, c in curves.items()}


def cpu_curves(path: Path) -> dict:
    eq = json.loads(path.read_text())["equal_budget"]
    return {k: [{"step": int(s), "mpx": int(s) * CPU_BATCH * CPU_CROP ** 2 / 1e6, "gain_db": g}
                for s, g in sorted(v.items(), key=lambda kv: int(kv[0]))]
            for k, v in eq["gain_db_vs_step"].items()}


def plot(gpu: dict, cpu: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for job, pts in gpu.items():
        a.plot([p["mpx"] for p in pts], [p["gain_db"] for p in pts], "o-", label=f"{LABELS.get(job, job)}, GPU")
        b.plot([p["seconds"] for p in pts], [p["gain_db"] for p in pts], "o-", label=LABELS.get(job, job))
    for job, pts in cpu.items():
        a.plot([p["mpx"] for p in pts], [p["gain_db"] for p in pts], "x--", alpha=0.6,
               label=f"{LABELS.get(job, job)}, CPU")
    for ax in (a, b):
        ax.axhline(1.5, color="k", lw=0.8, ls=":")
        ax.set_ylabel("PSNR gain over JPEG QF 30 (dB), 69 dev tiles")
        ax.grid(alpha=0.3)
    a.set_xscale("log")
    a.set_xlabel("training pixels (million; steps x batch x crop^2)")
    a.set_title("GPU (batch 32, 64 px) and CPU (batch 8, 48 px) runs")
    b.set_xlabel("seconds of training, four runs sharing one H200")
    b.set_title("equal GPU time")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", required=True, help="comma-separated bench/enhance_eval.py result files")
    ap.add_argument("--runs", default="runs/enhance/gpu", help="scripts/gpu_enhance.py import's folder")
    ap.add_argument("--cpu", default=str(ROOT / "bench" / "results" / "enhance_eq10k.json"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot")
    args = ap.parse_args(argv)
    gpu = gpu_curves(args.evals.split(","), Path(args.runs))
    cpu = cpu_curves(Path(args.cpu))
    doc = {"setting": "jpeg:30", "tiles": 69, "hardware": "NVIDIA H200 (the device tool), four runs at once",
           "recipe": {"batch": GPU_BATCH, "crop": GPU_CROP, "lr": 5e-4, "schedule": "cosine to lr/100, sized to the time",
                      "precision": "bf16 autocast + channels_last", "regions": 440,
                      "command": "python3 scripts/gpu_enhance.py remote 225 (JOBS=marsqe-w32,marsqe-w16,lite-w16,dncnn)"},
           "gpu": gpu, "cpu_equal_budget": cpu}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    for job, pts in gpu.items():
        print(f"{LABELS.get(job, job):22s} " + "  ".join(f"{p['step']}: {p['gain_db']:+.2f}" for p in pts))
    if args.plot:
        plot(gpu, cpu, Path(args.plot))
        print("wrote", args.plot)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
