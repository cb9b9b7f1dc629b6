#!/usr/bin/env python3
"""The U-Net's curve at JPEG QF 30 beside the equal-budget curves of MarsQE, MarsQE-lite, DnCNN and AR-CNN.

What it is for: docs/enhance.md "A U-Net" and the card of ``enhance-unet-jpeg30-10k`` compare the U-Net
(three runs: 48 px crops on the 800-region cache, 96 px crops on the same cache, 48 px crops on a
3,200-region cache) with the 10,000-step equal-budget runs of the other kinds, by training step. It
reads result files only: the merged bench/enhance_eval.py run of the U-Net snapshots
(bench/results/enhance_unet_curve.json, whose labels name the run and the step) and
bench/results/enhance_eq10k.json's ``equal_budget`` curves; it trains and evaluates nothing. Writes the
curves into ``--out`` and draws ``--plot``.

    python bench/enhance_unet_curve.py --eval bench/results/enhance_unet_curve.json \\
        --out bench/results/enhance_unet_curves.json --plot bench/results/enhance_plots/unet_jpeg30.png

Example:
    >>> run_and_step("runs/enhance/unet/exp/unet-c48-s2500"), run_and_step("runs/enhance/unet/exp/unet-jpeg30-c96-final")
    (('c48', 2500), ('c96', 10000))
    >>> run_and_step("runs/enhance/unet/exp/unet-c48"), run_and_step("runs/enhance/unet/ens/ens30")
    (('c48', 10000), None)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: The U-Net runs (docs/enhance.md): label in the eval -> what it was.
RUNS = {"c48": "U-Net, 48 px crops, 800 regions", "c96": "U-Net, 96 px crops, 800 regions",
        "r3200": "U-Net, 48 px crops, 3,200 regions"}
LAST = 10000


def run_and_step(label: str) -> tuple[str, int] | None:
    """(run, step) of an exported snapshot's label; the run's last step for its final weights; None otherwise."""
    m = re.fullmatch(r"unet-(?:jpeg30-)?(c48|c96|r3200)(?:-s?(\d+|final))?", Path(label).name)
    if not m:
        return None
    step = m.group(2)
    return m.group(1), LAST if step in (None, "final") else int(step)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval", default=str(ROOT / "bench/results/enhance_unet_curve.json"))
    ap.add_argument("--eq10k", default=str(ROOT / "bench/results/enhance_eq10k.json"))
    ap.add_argument("--out", default=str(ROOT / "bench/results/enhance_unet_curves.json"))
    ap.add_argument("--plot", default=str(ROOT / "bench/results/enhance_plots/unet_jpeg30.png"))
    a = ap.parse_args()
    from pymars.clio import write_json

    table = json.loads(Path(a.eval).read_text())["table"]["jpeg:30"]
    base = table["compressed"]["all"]["psnr"]
    curves: dict[str, dict[str, float]] = {}
    for label, row in table.items():
        rs = run_and_step(label)
        if rs is not None:
            curves.setdefault(rs[0], {})[str(rs[1])] = round(row["all"]["psnr"] - base, 3)
    curves = {r: dict(sorted(c.items(), key=lambda kv: int(kv[0]))) for r, c in curves.items()}
    others = json.loads(Path(a.eq10k).read_text())["equal_budget"]["gain_db_vs_step"]
    doc = {"setting": "jpeg:30", "tiles": 69, "unet_gain_db_vs_step": curves, "equal_budget_gain_db_vs_step": others,
           "runs": {r: RUNS[r] for r in curves}}
    write_json(a.out, doc)
    for r, c in curves.items():
        print(f"{RUNS[r]:36s} " + ", ".join(f"{int(s):,} {v:+.2f}" for s, v in c.items()))
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for r, c in curves.items():
            ax.plot([int(s) for s in c], list(c.values()), "o-", lw=2, label=RUNS[r])
        for k, c in others.items():
            ax.plot([int(s) for s in c], list(c.values()), "--", marker=".", label=f"{k} (equal budget, 48 px)")
        ax.set_xlabel("training steps (batch 8)")
        ax.set_ylabel("PSNR gain over JPEG QF 30, dB (69 tiles)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(a.plot, dpi=110)
        print(f"wrote {a.out}, {a.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
