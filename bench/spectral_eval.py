"""Spectral-channel prediction: the results table, the sampling time and the real-cube check.

What it measures (issue 7), all through ONNX Runtime on CPU, on the shipped
weights (``pymars/weights/spectral-unet`` and ``spectral-diffusion``):

* the results table (thesis Table 5.7 style) on the held-out ``test`` part of
  the documented split (docs/spectral.md): RMSE (0-255), PCC, cosine, SSIM and
  the carbonate (green FAL pixel) precision / recall / F1, for: copying the input
  (a floor), the UNet and the diffusion model, each without and with the
  scene's metadata (one model per family, trained with metadata dropout; "without"
  runs its learned null embedding, and for the diffusion model drops the
  metadata guidance branch);
* the sampling time per 256x256 image of the diffusion model at its configured
  DDIM steps (and of the UNet), 1 and 2 ONNX Runtime threads, median of
  ``--repeats`` after one untimed warm-up; with metadata (3 guidance branches
  per step) and without (2). The machine is shared: wall seconds include
  waiting for a core (an upper bound of an idle machine), process CPU seconds
  do not (for 2 threads they add both threads' time); the 1-minute load
  average is recorded beside each;
* the real-cube check (:mod:`pymars.spectral.realcube`);
* when the UNet weights have the carbonate detection head (``--carbonate-head``
  in training): two more rows, "unet detection head -/+ metadata", the head's
  logit thresholded as a detector of its own (precision / recall / F1 only;
  the image columns are "-"). Each threshold (without / with metadata) is the
  one of highest pooled F1 on the ``val`` part, chosen in this run and then
  applied to test unchanged; the "unet -/+ metadata" rows above them stay the
  FAL output's colour rule, so the two can be compared. ``--save-threshold``
  writes the with-metadata threshold into the weights folder's config.json;
* with ``--sweep-val``: the guidance scales of the diffusion model tried on the
  ``val`` part (with metadata), written to ``spectral_guidance_val.json``; the
  shipped config.json's scales were chosen from it (best carbonate F1, then RMSE),
  never from the test part.

Writes ``bench/results/spectral.json`` (``spectral_quick.json`` with --quick:
4 test scenes, 1 repeat) atomically and prints the table.

Usage: ``python3 bench/spectral_eval.py [--quick] [--steps N]``; a run's own exports instead of the
shipped weights: ``--unet FOLDER --diffusion FOLDER --table-only --out F.json`` (the table alone).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from pymars.clio import write_json
from pymars.spectral.evaluate import (carbonate_head_outputs, choose_carbonate_threshold, detection_row,  # noqa: E402
                                      evaluate_weights, format_table, held_out_pairs, save_carbonate_threshold,
                                      score_predictions)
from pymars.spectral.pairs import pairs_dir  # noqa: E402
from pymars.spectral.predict import SpectralPredictor  # noqa: E402
from pymars.spectral.realcube import real_cube_check  # noqa: E402


def timing(model: str, img: np.ndarray, meta: dict, threads: int, repeats: int, steps: int | None) -> dict:
    """Median wall and process-CPU seconds of one prediction. On a shared machine the wall time includes
    waiting for a core; the CPU time (summed over ONNX Runtime's threads) does not."""
    p = SpectralPredictor(model, threads=threads)
    p.predict(img[:64, :64], steps=steps, **meta)  # warm-up: session set-up and first-run allocations
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        p.predict(img, steps=steps, **meta)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall_s": float(np.median(wall)), "cpu_s": float(np.median(cpu)), "load_avg_1min": os.getloadavg()[0]}


def sweep_val(steps: int | None, scenes: int = 8, weights: str = "diffusion", out: Path | None = None,
              steps_list: tuple = (), samples_list: tuple = (), guidance: tuple | None = None) -> int:
    """Guidance scales (then DDIM steps) of the diffusion model on the first ``scenes`` val scenes, with metadata."""
    pairs = held_out_pairs("val")[:scenes]
    rows = []
    grid = ((1.0, 1.0), (1.5, 2.0), (1.0, 3.0), (2.0, 1.0), (2.0, 3.0))
    for gi, gm in grid if guidance is None else guidance:
        row = evaluate_weights(weights, pairs, True, f"diffusion + metadata, s_img {gi}, s_meta {gm}",
                               steps=steps, image_guidance=gi, meta_guidance=gm)
        row.pop("per_scene")
        row.update(image_guidance=gi, meta_guidance=gm)
        rows.append(row)
        print(format_table([row]).splitlines()[-1], flush=True)
    for n in steps_list:  # DDIM steps at the model's own guidance scales
        row = evaluate_weights(weights, pairs, True, f"diffusion + metadata, {n} DDIM steps", steps=n)
        row.pop("per_scene")
        row.update(ddim_steps=n)
        rows.append(row)
        print(format_table([row]).splitlines()[-1], flush=True)
    for n in samples_list:  # the mean of n samples (seeds 0..n-1) at the model's own guidance scales
        row = evaluate_weights(weights, pairs, True, f"diffusion + metadata, mean of {n} samples", steps=steps,
                               samples=n)
        row.pop("per_scene")
        row.update(samples=n)
        rows.append(row)
        print(format_table([row]).splitlines()[-1], flush=True)
    out = out or ROOT / "bench" / "results" / "spectral_guidance_val.json"
    write_json(out, {"part": "val", "weights": weights, "scenes": [p.scene for p in pairs], "steps": steps,
                     "rows": rows})
    print(format_table(rows))
    print(f"wrote {out}")
    return 0


def _row(job: tuple) -> dict:
    """One row of the table (run in a worker process, so the rows are computed side by side)."""
    model, weights, with_meta, steps, scenes = job
    pairs = [p for p in held_out_pairs("test") if p.scene in scenes]
    name = f"{model} {'+' if with_meta else '-'} metadata"
    return evaluate_weights(weights, pairs, with_meta, name, **({"steps": steps} if model == "diffusion" else {}))


def carbonate_head_rows(weights: str, pairs: list) -> tuple[list[dict], dict]:
    """The detection head's test rows (without / with metadata), each at its threshold chosen on val."""
    val = held_out_pairs("val")
    rows, chosen = [], {}
    for with_meta in (False, True):
        thr, f1_val = choose_carbonate_threshold(carbonate_head_outputs(weights, val, with_meta)[1], val)
        _, logits = carbonate_head_outputs(weights, pairs, with_meta)
        label = f"unet detection head {'+' if with_meta else '-'} metadata"
        rows.append(detection_row(logits, pairs, thr, f"{label} (logit >= {thr:.2f}, chosen on val)"))
        chosen["with metadata" if with_meta else "without metadata"] = {"threshold": thr, "val_f1": f1_val,
                                                                        "val_scenes": len(val)}
    return rows, chosen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, help="DDIM steps (default: the diffusion model's config)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-table", action="store_true", help="timings and real cube only")
    ap.add_argument("--workers", type=int, default=3, help="processes computing the table's rows side by side")
    ap.add_argument("--sweep-val", action="store_true", help="guidance sweep on the val part, then exit")
    ap.add_argument("--unet", default="unet", help="UNet weights: name or folder (default: the shipped one)")
    ap.add_argument("--diffusion", default="diffusion", help="diffusion weights: name or folder (default: shipped)")
    ap.add_argument("--table-only", action="store_true", help="the results table alone (no timings, no real cube)")
    ap.add_argument("--out", help="result file (default bench/results/spectral[_quick].json)")
    ap.add_argument("--sweep-steps", default="", help="with --sweep-val: DDIM step counts to try too, e.g. 10,50")
    ap.add_argument("--sweep-samples", default="", help="with --sweep-val: sample counts whose mean to try, e.g. 2,4")
    ap.add_argument("--sweep-guidance", default="",
                    help="with --sweep-val: image:meta scale pairs instead of the default grid, e.g. 1:1,1:0.5 "
                         "('none': no guidance rows)")
    ap.add_argument("--families", default="unet,diffusion",
                    help="model families in the table (e.g. unet: no diffusion rows, much faster)")
    ap.add_argument("--save-threshold", action="store_true",
                    help="write the carbonate head's val-chosen threshold (with metadata) into --unet's config.json")
    args = ap.parse_args(argv)
    weights = {"unet": args.unet, "diffusion": args.diffusion}
    if pairs_dir() is None:
        print("needs ../shared/data/spectral", file=sys.stderr)
        return 2
    if args.sweep_val:
        return sweep_val(args.steps, weights=args.diffusion, out=Path(args.out) if args.out else None,
                         steps_list=tuple(int(x) for x in args.sweep_steps.split(",") if x),
                         samples_list=tuple(int(x) for x in args.sweep_samples.split(",") if x),
                         guidance=None if not args.sweep_guidance else tuple(
                             tuple(float(v) for v in g.split(":")) for g in args.sweep_guidance.split(",")
                             if g != "none"))
    pairs = held_out_pairs("test")
    if args.quick:
        pairs = pairs[:4]
    families = [m for m in ("unet", "diffusion") if m in args.families.split(",")]
    if "diffusion" in families:
        diff_cfg = SpectralPredictor(weights["diffusion"]).config
    else:  # no diffusion rows: its sampler settings do not apply, and its weights need not exist
        diff_cfg = {"sampler": {"steps": None}}
    steps = args.steps or diff_cfg["sampler"]["steps"]
    result = {"split_part": "test", "scenes": [p.scene for p in pairs], "ddim_steps": steps,
              "sampler": {**diff_cfg["sampler"], "steps": steps}, "machine": platform.platform(),
              "cpu_count": os.cpu_count(), "weights": weights, "rows": []}
    if not args.skip_table:
        result["rows"].append(score_predictions([p.cassis for p in pairs], pairs, "input copied (floor)"))
        from concurrent.futures import ProcessPoolExecutor

        jobs = [(m, weights[m], wm, steps, [p.scene for p in pairs]) for m in ("diffusion", "unet")
                if m in families for wm in (False, True)]
        if args.workers == 1:  # in this process: nothing else runs beside it
            rows = dict(zip([(m, wm) for m, _, wm, *_ in jobs], map(_row, jobs)))
        else:
            with ProcessPoolExecutor(max_workers=args.workers) as pool:
                rows = dict(zip([(m, wm) for m, _, wm, *_ in jobs], pool.map(_row, jobs)))
        for m in families:
            for wm in (False, True):
                result["rows"].append(rows[(m, wm)])
        if "unet" in families and SpectralPredictor(weights["unet"]).has_carbonate_head:
            head_rows, chosen = carbonate_head_rows(weights["unet"], pairs)
            result["rows"].extend(head_rows)
            result["carbonate_head_threshold"] = chosen
            print(f"carbonate head thresholds chosen on val: {json.dumps(chosen)}")
            if args.save_threshold:
                save_carbonate_threshold(weights["unet"], chosen["with metadata"]["threshold"],
                                         {"part": "val", "metadata": True, "f1": chosen["with metadata"]["val_f1"]})
        print(f"\nheld-out test part: {len(pairs)} scenes; RMSE on 0-255; carbonate = G - max(R, B) > 8")
        print(format_table(result["rows"]))
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / ("spectral_quick.json" if args.quick
                                                                      else "spectral.json")
    if args.table_only:
        write_json(out, result)
        print(f"wrote {out}")
        return 0
    img = pairs[0].cassis
    m = pairs[0].meta
    meta = {"lat": m.lat, "lon": m.lon, "site": m.site} if m else {}
    reps = 1 if args.quick else args.repeats
    result["timing_s_per_256"] = {}
    for model in ("unet", "diffusion"):
        for threads in (1, 2):
            for label, kw in (("with metadata", meta), ("without metadata", {})):
                key = f"{model}, {threads} thread(s), {label}"
                t = timing(weights[model], img, kw, threads, reps, steps if model == "diffusion" else None)
                result["timing_s_per_256"][key] = t
                print(f"{key}: {t['wall_s']:.2f} s wall, {t['cpu_s']:.2f} s CPU per 256x256 "
                      f"(load {t['load_avg_1min']:.1f})", flush=True)
    result["real_cube"] = {model: real_cube_check(weights[model], pairs_dir().parent, with_linear=model == "unet")
                           for model in ("unet", "diffusion")}
    print(json.dumps(result["real_cube"], indent=1))
    write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
