"""Curves of the gray enhancers: PSNR gain on gray tiles at their own JPEG quality, by training step.

What it measures: for each training run (``pymars enhance-train model --gray``), the snapshots at
``--steps`` are exported exactly as ``pymars enhance-export`` would (ONNX, checked against PyTorch) into
a temporary folder and run through :class:`pymars.enhance.inference.Enhancer` on every 2nd ``dev_navcam``
tile (gray Curiosity Navcam JPEGs of held-out sols) and the 16 ``dev_navcam_pds`` tiles (8-bit views of raw
12-bit EDRs), each JPEG-compressed (Pillow) at the run's own QF. The training loss at the same steps comes
from the run's checkpoint. Writes bench/results/enhance_gray_curve.json (or ``--out``); the model cards
quote it (export/enhance_gray_cards.py). It must not write into pymars/weights.

Run:  python bench/enhance_gray_curve.py --runs runs/enhance/marsqe-gray-jpeg30-10k,runs/enhance/dncnn-gray-jpeg30-10k,runs/enhance/dncnn-gray-jpeg75-10k,runs/enhance/dncnn-gray-jpeg90-10k

Example:
    >>> snapshot_path(Path("runs/x"), 2500, 10000).name, snapshot_path(Path("runs/x"), 10000, 10000).name
    ('snapshot-2500.pt', 'checkpoint.pt')
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pymars.clio import write_json  # noqa: E402
from pymars.evaluation.metrics import psnr  # noqa: E402

RESULT = Path(__file__).resolve().parent / "results" / "enhance_gray_curve.json"


def snapshot_path(run: Path, step: int, last: int) -> Path:
    """The weights of ``run`` at ``step``: its final checkpoint at the last step, else the snapshot."""
    return run / ("checkpoint.pt" if step == last else f"snapshot-{step}.pt")


def main() -> None:
    import torch
    from tqdm import tqdm

    from enhance_generalisation import jpeg_file
    from pymars.enhance.dictionary import Dictionary
    from pymars.enhance.export import export_enhancer, plain_layout
    from pymars.enhance.inference import Enhancer
    from pymars.enhance.networks import PLAIN_KINDS
    from pymars.enhance.training import load_enhancer
    from pymars.evaluation.protocol import dev_tiles

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="training run folders (enhance-train model --gray), comma-separated")
    ap.add_argument("--steps", default="1000,2500,5000,7500,10000")
    ap.add_argument("--dictionary", default="runs/enhance/dictionary-6.npz", help="MarsQE runs: the dictionary .npz")
    ap.add_argument("--out", default=str(RESULT))
    a = ap.parse_args()
    sets = {"gray": [t.pixels for t in dev_tiles("dev_navcam")][::2],
            "raw gray": [t.pixels for t in dev_tiles("dev_navcam_pds")]}
    doc = {"tiles": {k: len(v) for k, v in sets.items()}, "curves": {}, "raw_curves": {}, "train_loss": {}}
    steps = [int(s) for s in a.steps.split(",")]
    for run in (Path(r) for r in a.runs.split(",")):
        ck = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
        cfg, last = ck["config"], int(ck["step"])
        if not cfg.get("gray"):
            raise ValueError(f"{run}: not a gray model's run (its cache was not built with --gray)")
        qf = int(cfg["cache"].split("jpeg")[-1].split(".")[0]) if "jpeg" in cfg["cache"] else None
        if qf is None:
            raise ValueError(f"{run}: the curve is for JPEG settings (cache {cfg['cache']})")
        inputs = {k: [jpeg_file(t, qf)[1] for t in v] for k, v in sets.items()}
        name = run.name
        loss = {h["step"]: h["loss"] for h in ck.get("history", []) if h.get("loss") is not None}
        doc["train_loss"][name] = {str(s): round(float(loss[s]), 6) for s in steps if s in loss}
        doc["curves"][name], doc["raw_curves"][name] = {}, {}
        for step in steps:
            net, kind, _ = load_enhancer(snapshot_path(run, step, last))
            with tempfile.TemporaryDirectory() as tmp:
                meta = {"setting": f"jpeg:{qf}", "input": "gray"}
                if kind in PLAIN_KINDS:
                    meta.update(plain_layout(net))
                else:  # MarsQE kinds: the dictionary's recipe, as pymars enhance-export records it
                    meta.update(dictionary=Dictionary.load(a.dictionary).recipe(), margin=8)
                export_enhancer(net, kind, meta, Path(tmp) / "m")
                enh = Enhancer(Path(tmp) / "m", threads=1, dictionary=None if kind in PLAIN_KINDS else a.dictionary)
                for label, key in (("gray", "curves"), ("raw gray", "raw_curves")):
                    gains = [psnr(raw, enh.enhance(comp)) - psnr(raw, comp)
                             for raw, comp in tqdm(list(zip(sets[label], inputs[label])), leave=False,
                                                   desc=f"{name} {step} {label}")]
                    doc[key][name][str(step)] = round(float(np.mean(gains)), 3)
            print(name, step, doc["curves"][name][str(step)], doc["raw_curves"][name][str(step)], flush=True)
    write_json(a.out, doc)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
