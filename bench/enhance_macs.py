"""Multiply-accumulates per pixel of the enhancers, counted by PyTorch's FLOP counter.

What it measures: one forward of each model as training runs it
(:func:`pymars.enhance.training.run_enhancer`) on a 128 x 128 window (MarsQE's
patch) with its raw and compressed references and a class map: FLOPs / 2 of
every convolution, transposed convolution, linear layer and batched matrix
product (TEM's block matching and NLM's attention included), divided by the
window's pixels. MarsQE runs its two reference encoders per patch as trained;
ONNX inference does the same. The issue's "MarsQE-lite at <= 1/4 of MarsQE's
MACs" is the ``ratio_to`` column. Writes bench/results/enhance_macs.json.

Run:  python bench/enhance_macs.py --models marsqe-jpeg30-10k,marsqe-lite-jpeg30-10k,marsqe-lite8-jpeg30-10k

Example:
    >>> from pymars.enhance.networks import build
    >>> macs_per_pixel(build("arcnn"), "arcnn")
    34320.0
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from pymars.clio import write_json  # noqa: E402

RESULT = Path(__file__).resolve().parent / "results" / "enhance_macs.json"
WINDOW = 128


def macs_per_pixel(net: torch.nn.Module, kind: str, size: int = WINDOW) -> float:
    """FLOPs / 2 of one forward on a ``size`` x ``size`` window, per pixel."""
    from torch.utils.flop_counter import FlopCounterMode

    from pymars.enhance.training import run_enhancer

    batch = {k: torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
             for k in ("comp", "ref_raw", "ref_comp")}
    batch["classes"] = torch.zeros(1, 1, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        run_enhancer(net.eval(), kind, batch)
    return fc.get_total_flops() / 2 / (size * size)


def main() -> None:
    from pymars.enhance.cli import resolve_model
    from pymars.enhance.training import load_enhancer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help="enhancer names or weights folders, comma-separated; "
                                                    "the first is the reference of ratio_to")
    ap.add_argument("--out", default=str(RESULT))
    a = ap.parse_args()
    rows, first = {}, None
    for name in a.models.split(","):
        net, kind, meta = load_enhancer(resolve_model(name))
        m = macs_per_pixel(net, kind)
        first = first or m
        rows[name] = {"kind": kind, "width": meta.get("width"), "parameters": sum(p.numel() for p in net.parameters()),
                      "macs_per_pixel": round(m), "ratio_to_first": round(m / first, 3)}
        print(f"{name:34s} {kind:12s} {rows[name]['macs_per_pixel']:>9,d} MACs/px  {m / first:.3f}", flush=True)
    write_json(a.out, {"window": WINDOW, "reference": a.models.split(",")[0], "models": rows,
                       "what": "torch.utils.flop_counter FLOPs / 2 of one training-style forward (references "
                               "and class map given), per pixel of the window"})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
