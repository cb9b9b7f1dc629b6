"""Write the MODEL_CARD.md of the shipped spectral weights from their config and the measured results.

    python export/spectral_cards.py [--results bench/results/spectral.json] [--guidance bench/results/spectral_guidance_val.json]

Reads ``pymars/weights/spectral-{unet,diffusion}/config.json`` (architecture,
training recipe, exported step, ONNX-vs-torch difference) and the benchmark
files written by ``bench/spectral_eval.py``, so no figure in a card is typed by
hand. Prints the results section used in docs/spectral.md.

Example:
    >>> row = {"name": "unet - metadata", "rmse": 1.0, "pcc": 0.5, "cosine": 0.9, "ssim": 0.8,
    ...        "carbonate": {"precision": 0.1, "recall": 0.2, "f1": 0.3}}
    >>> "unet - metadata" in results_markdown({"rows": [row], "scenes": ["a"], "timing_s_per_256": {},
    ...                                         "real_cube": {}, "ddim_steps": 20})
    True
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from pymars.spectral.evaluate import format_table  # noqa: E402


def results_markdown(res: dict, guidance: dict | None = None) -> str:
    """The results table, sampling times and real-cube check of a spectral.json document as markdown."""
    out = [f"Held-out `test` part of the split ({len(res['scenes'])} scenes), ONNX Runtime, "
           f"diffusion sampled with {res['ddim_steps']} DDIM steps, seed 0. RMSE on 0-255; carbonate = pixels with "
           "G - max(R, B) > 8 (precision / recall / F1 pooled over all test pixels).", "",
           format_table(res["rows"]), ""]
    if res.get("timing_s_per_256"):
        out += ["Time per 256x256 image, ONNX Runtime on this 2-core CPU, shared with other jobs while measured "
                "(median after a warm-up; wall includes waiting for a core, CPU is the process time over all "
                "threads):", "", "| model, threads, metadata | wall s | CPU s | load avg |", "|---|---|---|---|"]
        out += [f"| {k} | {v['wall_s']:.2f} | {v['cpu_s']:.2f} | {v['load_avg_1min']:.1f} |"
                for k, v in res["timing_s_per_256"].items()]
        out.append("")
    for model, rc in res.get("real_cube", {}).items():
        m = rc["model"]
        out.append(f"Real cube `frt0001458f_01` ({rc['pixels']} pixels, {rc['shape'][0]}x{rc['shape'][1]}), {model}: "
                   f"RMSE {m['rmse']:.1f}, PCC {m['pcc']:.3f}, cosine {m['cosine']:.3f}, SSIM {m['ssim']:.3f}; "
                   f"per-channel PCC (R2529, R1506, R1080) "
                   f"{', '.join(f'{v:.2f}' for v in rc['model_channel_pcc'])}.")
        if "linear_r2" in rc:
            out.append(f"A linear map from the 4 CaSSIS bands fitted on these pixels reaches R^2 "
                       f"{', '.join(f'{v:.2f}' for v in rc['linear_r2'])} (optimistic: fitted and scored on the same "
                       f"pixels); FAL standard deviation {', '.join(f'{v:.4f}' for v in rc['fal_std_if'])} I/F.")
        out.append("")
    if guidance:
        out += [f"Guidance scales tried on {len(guidance['scenes'])} `val` scenes (with metadata), "
                f"`bench/results/spectral_guidance_val.json`:", "", format_table(guidance["rows"]), ""]
    return "\n".join(out)


def card(folder: Path, res: dict, guidance: dict | None) -> str:
    cfg = json.loads((folder / "config.json").read_text())
    tr, mc = cfg["train"], cfg["model"]
    kind = mc["kind"]
    gpu = tr.get("device", "cpu") not in ("cpu", "")
    rows = [r for r in res["rows"] if r["name"].startswith(kind)]
    what = ("UNet regression baseline (MSE), the thesis' baseline" if kind == "unet" else
            "conditional diffusion denoiser (v-prediction, cosine DDPM schedule, T = 1000), InstructPix2Pix-style "
            "conditioning by concatenation of the CaSSIS image, metadata embedding in place of CLIP; DDIM sampling "
            f"with classifier-free guidance (config.json: {cfg.get('sampler')})")
    lines = [
        f"# Model card: {folder.name}", "",
        f"- **What:** {what}. Architecture `SpectralUNet` (pymars/spectral/models.py): width {mc['width']}, "
        f"levels x{mc['mults']}, conditioning vector {mc['emb_dim']}-d (site table of {mc['sites']} + lat/lon "
        f"Fourier features, {mc['fourier']} frequencies).",
        "- **Task:** CaSSIS BLU, PAN, NIR composite (8-bit, per-channel stretched) -> CRISM FAL composite "
        "(R2529, R1506, R1080), 8-bit. Design: docs/spectral.md.",
        "- **Data:** ../shared/data/spectral: the 57 `train` scenes of the documented split (by scene, stratified by "
        "site, overlapping footprints grouped, seed 0; docs/spectral.md) of `crism_cassis_fal_png_pairs`, augmented "
        f"(rotation +-45 deg, flips, {tr['crop']}x{tr['crop']} crops), plus {int(tr['synthetic_fraction'] * 100)} % "
        "synthetic patches mixed from USGS splib07 spectra through the CaSSIS filter curves. Validation: the 16 `val` "
        "scenes; results: the 15 `test` scenes, never trained on.",
        f"- **Metadata:** repaired latitude, longitude and site (lat/lon swap detection, docs/spectral.md); dropped "
        f"with p = {tr['meta_drop']} in training" + (f", image dropped with p = {tr['image_drop']}" if kind ==
                                                     "diffusion" else "") +
        ", so one model runs with and without metadata.",
        f"- **Training:** " + ((f"{tr['init_step']} steps from scratch (`{tr['init_run']}`), then "
                                  if tr.get("init_step") else f"from the weights of `{tr['init']}`, ")
                                 if tr.get("init") else "") +
        f"{tr['step']} steps{' more, from those weights' if tr.get('init') else ''}, batch {tr['batch']}, AdamW lr "
        f"{tr['lr']} (200-step warm-up, then constant), EMA {tr['ema']} (these are the EMA weights), seed "
        f"{tr['seed']}, " + ("on the GPU below" if gpu else "1 thread") +
        (", bf16 autocast + channels_last" if tr.get("precision") == "bf16" else "") +
        (f", carbonate (green FAL) target pixels counted {1 + tr['green_weight']:g} times in the loss "
         f"(`--green-weight {tr['green_weight']:g}`)" if tr.get("green_weight") else "") + ".",
        (f"- **Hardware:** {tr.get('hardware', 'a GPU')}, lent for one session (the `device` tool), "
         f"{tr.get('workers', 0)} batch-drawing worker processes; stopped by time after {tr.get('max_seconds', 0):.0f} s "
         f"of training (`--max-seconds`), so the step count is the GPU's, not a chosen total." if gpu else
         f"- **Hardware:** this x86_64 2-core CPU, no GPU ({platform.python_implementation()} "
         f"{platform.python_version()}, PyTorch CPU), shared with other engineers' training jobs (so wall time is "
         "not a measure of cost)."),
        f"- **Reproduce:** " + (
            f"`scripts/gpu_spectral.sh prepare` here, then on a GPU "
            f"`PYMARS_SHARED=$PWD/.gpu_pack/shared scripts/gpu_spectral.sh remote "
            f"{tr.get('max_seconds', 0) + 25:.0f} {mc['width']}` (the device call is in the script's header; "
            f"another GPU reaches another step count), then `scripts/gpu_spectral.sh export "
            f"spectral_diffusion_gpu.pt pymars/weights/{folder.name}` and the sampler settings below in config.json"
            if gpu else (
            (f"`pymars spectral train --model {kind} --out {tr['init_run']} --steps {tr['init_step']}`, then "
             if tr.get("init_step") else "") +
            f"`pymars spectral train --model {kind} --init-from {tr.get('init_run', tr.get('init'))} "
            f"--out runs/spectral-{kind}-ft "
            f"--steps {tr['step']}" + (" --precision bf16" if tr.get("precision") == "bf16" else "") +
            (f" --green-weight {tr['green_weight']:g}" if tr.get("green_weight") else "") +
            "` (each resumable; the batch of step i and the learning rate depend only on i and the seed) then "
            f"`pymars spectral export runs/spectral-{kind}-ft/checkpoint.pt -o pymars/weights/{folder.name}`"
            if tr.get("init") else
            f"`pymars spectral train --model {kind} --out runs/spectral-{kind} --steps {tr['step']}` "
            f"(resumable; the batch of step i and the learning rate depend only on i and the seed) then "
            f"`pymars spectral export runs/spectral-{kind}/checkpoint.pt -o pymars/weights/{folder.name}`")) +
        "; results: `python3 bench/spectral_eval.py`; this card: `python3 export/spectral_cards.py`.",
        f"- **Files:** `model.safetensors` (EMA weights{', float16 as the run kept them' if gpu else ''}), "
        f"`model.onnx` (one network evaluation; ONNX Runtime vs "
        f"PyTorch max |diff| {cfg['onnx_max_abs_diff']:.1e}), `config.json`.", "",
        "## Held-out results (test part, ONNX Runtime)", "", format_table(rows), "",
    ]
    curve = ROOT / "bench" / "results" / "spectral_gpu_train.json"
    if gpu and curve.is_file():  # the run's validation curve, from the compact file the GPU returned
        hist = json.loads(curve.read_text())["history"]
        picks = [h for h in hist if h["step"] in (500, 1000, 2500, 5000, 7500, 10000) or h is hist[-1]]
        lines[-5:-5] = [f"- **Curve:** validation loss (EMA weights, 128 val crops) " + ", ".join(
            f"{h['val_loss']:.4f} at step {h['step']} ({h['elapsed_s']:.0f} s)" for h in picks) +
            " (`bench/results/spectral_gpu_train.json`)."]
    if kind == "diffusion":
        n = int(cfg.get("sampler", {}).get("samples", 1))
        lines.append(f"DDIM steps {res['ddim_steps']}, seed 0" +
                     (f"; each prediction the mean of {n} samples (seeds 0..{n - 1})." if n > 1 else "."))
    t = {k: v for k, v in res.get("timing_s_per_256", {}).items() if k.startswith(kind)}
    if t:
        lines += ["", "Seconds per 256x256 image (ONNX Runtime, this shared 2-core CPU; wall / process CPU): " +
                  "; ".join(f"{k.split(', ', 1)[1]}: {v['wall_s']:.2f} / {v['cpu_s']:.2f}" for k, v in t.items())
                  + "."]
    rc = res.get("real_cube", {}).get(kind)
    if rc:
        m = rc["model"]
        lines += ["", f"Real cube check (`frt0001458f_01`, {rc['pixels']} pixels): RMSE {m['rmse']:.1f}, "
                      f"PCC {m['pcc']:.3f}, SSIM {m['ssim']:.3f}, per-channel PCC "
                      f"{', '.join(f'{v:.2f}' for v in rc['model_channel_pcc'])}."]
    floor = next((r["carbonate"]["f1"] for r in res["rows"] if r["name"].startswith("input")), None)
    best = max((r["carbonate"]["f1"] for r in rows), default=None)
    lines += ["", "## Limitations", ""]
    if floor is not None and best is not None and best <= floor:
        lines.append(f"- **Carbonates are not detected**: the best carbonate F1 of this model ({best:.3f}) is not "
                     f"above copying the input ({floor:.3f}); the averages above hide it (docs/spectral.md).")
    if tr.get("steps", tr["step"]) != tr["step"] and not tr.get("max_seconds"):
        lines.append(f"- History: launched with `--steps {tr['steps']}` and stopped at the saved step {tr['step']} "
                     "when the session's CPU budget was spent (validation loss still falling); the learning rate "
                     f"does not depend on the planned total, so `--steps {tr['step']}` reproduces these weights.")
    lines += [
              "- Trained on 57 scenes of 8-bit, per-image stretched composites: predictions are "
              "relative (stretched) FAL colours, not reflectance.",
              "- Carbonates (green FAL) are under 1 % of the pixels; the carbonate score on 15 test scenes rests on "
              "a few thousand pixels from two or three scenes and is noisy.",
              "- Six sites only; a scene elsewhere must be run without metadata (site 'unknown' is refused).",
              "- The input band order (BLU, PAN, NIR) of the PNG pairs is inferred, not certain (PROVENANCE.md).",
              "- Jezero rows share one placeholder coordinate, so Jezero scenes of different parts may overlap on "
              "the ground.",
              "- The real-cube check is one bland 15x64 frame without atmospheric correction: it tests the chain, "
              "not carbonate detection."]
    if kind == "diffusion":
        lines.append("- Sampling costs (guidance branches) x (steps) network evaluations: see the timings.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "spectral.json"))
    ap.add_argument("--guidance", default=str(ROOT / "bench" / "results" / "spectral_guidance_val.json"))
    args = ap.parse_args(argv)
    res = json.loads(Path(args.results).read_text())
    g = Path(args.guidance)
    guidance = json.loads(g.read_text()) if g.is_file() else None
    for name in ("spectral-unet", "spectral-diffusion"):
        folder = ROOT / "pymars" / "weights" / name
        (folder / "MODEL_CARD.md").write_text(card(folder, res, guidance))
        print(f"wrote {folder / 'MODEL_CARD.md'}")
    print(results_markdown(res, guidance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
