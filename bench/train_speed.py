"""Training speed of the real base models: fp32 NCHW against bf16 autocast + channels_last (issue 14).

One process, the same batches, the same thread count: for each model preset
and engine it times ``--steps`` optimiser steps (after ``--warmup``), and
reports the median seconds per step and the speed-up. The loss of the first
step is printed for both engines too, as a check that the bf16 path computes
the same objective (entropy model and loss stay fp32).

Run:  python bench/train_speed.py [--models gray-wide,base] [--threads 2] [--out FILE]

Example:
    >>> sorted(ENGINES)
    ['bf16-channels-last', 'fp32-nchw']
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

#: engine name -> (autocast to bf16, channels_last)
ENGINES = {"fp32-nchw": (False, False), "bf16-channels-last": (True, True)}


def time_engine(preset: str, bf16: bool, channels_last: bool, steps: int, warmup: int, batch: int, crop: int) -> dict:
    import numpy as np
    import torch

    from pymars.train.codec.loop import MODEL_PRESETS
    from pymars.train.codec.network import BaseCodec, rd_loss

    torch.manual_seed(0)
    cfg = copy.deepcopy(MODEL_PRESETS[preset])
    model = BaseCodec(cfg)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    gen = torch.Generator().manual_seed(1)
    times, first = [], None
    for i in range(warmup + steps):
        x = torch.rand(batch, cfg.channels, crop, crop, generator=gen).contiguous(memory_format=fmt)
        level = torch.rand(batch, generator=gen) * (len(cfg.lambdas) - 1)
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x, level)
        loss, logs = rd_loss(model, x, level, out)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
        if first is None:
            first = logs["loss"]
    return {"s_per_step": float(np.median(times)), "first_loss": first}


def main(argv=None) -> int:
    import platform

    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="gray-wide,base")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    doc = {"command": " ".join(["python", *sys.argv]), "torch": torch.__version__, "cpu": platform.processor(),
           "threads": args.threads, "batch": args.batch, "crop": args.crop, "models": {}}
    for preset in [m for m in args.models.split(",") if m]:
        res = {name: time_engine(preset, bf, cl, args.steps, args.warmup, args.batch, args.crop)
               for name, (bf, cl) in ENGINES.items()}
        res["speedup"] = res["fp32-nchw"]["s_per_step"] / res["bf16-channels-last"]["s_per_step"]
        doc["models"][preset] = res
        print(f"{preset}: fp32 NCHW {res['fp32-nchw']['s_per_step']:.3f} s/step, bf16 + channels_last "
              f"{res['bf16-channels-last']['s_per_step']:.3f} s/step: {res['speedup']:.2f}x "
              f"(first loss {res['fp32-nchw']['first_loss']:.3f} vs {res['bf16-channels-last']['first_loss']:.3f})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
