"""Export a training checkpoint as a model bundle and write its model card.

    python export/export_bundle.py runs/base128/checkpoint.pt -o pymars/weights/base-v1 \
        [--rd bench/results/pymars_rd.json] [--complexity bench/results/complexity.json]

The bundle (encoder.pmw, synthesis.onnx, model.safetensors, model.json) comes
from pymars.train.export.bundle_writer; the card states the training data, steps, hardware
and time read from the checkpoint, and the RD and complexity figures read from
the benchmark result files (so no figure in the card is typed by hand).
Re-running on the same checkpoint reproduces the same files byte for byte.

Example:
    >>> card_rd_table({"groups": {}}).strip()
    ''
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path


def card_rd_table(rd: dict) -> str:
    """Markdown tables of the RD curves and BD-rates of pymars in a pymars_rd.json document."""
    out = []
    for group, entry in rd.get("groups", {}).items():
        s = entry["summary"]
        c = s["curves"].get("pymars")
        if not c:
            continue
        out.append(f"\n**{group}** ({s['tiles']} tiles)\n")
        out.append("| quality | mean bpp | mean PSNR (dB) | mean MS-SSIM |\n|---|---|---|---|")
        for q, b, p, m in zip(c["qualities"], c["bpp"], c["psnr"], c["ms_ssim"]):
            out.append(f"| {q} | {b:.4f} | {p:.2f} | {m:.4f} |")
        out.append("\n| anchor | BD-rate PSNR | per-tile median | BD-PSNR | PSNR range | BD-rate MS-SSIM |\n|---|---|---|---|---|---|")
        for anchor, table in s["bd"].items():
            row, ms = table["psnr"]["pymars"], table["ms_ssim_db"]["pymars"]
            fmt = lambda v, f: "n/a" if v is None else format(v, f)  # noqa: E731
            rng = row.get("psnr_range") or [None, None]
            rng_s = "n/a" if None in rng else f"{rng[0]:.1f}-{rng[1]:.1f} dB"
            out.append(f"| {anchor} | {fmt(row['bd_rate'], '+.1f')} % | {fmt(row['per_tile_median_bd_rate'], '+.1f')} % | "
                       f"{fmt(row['bd_metric'], '+.2f')} dB | {rng_s} | {fmt(ms['bd_rate'], '+.1f')} % |")
    return "\n".join(out)


def training_curve(log: Path, out: Path) -> list[str]:
    r"""Card lines for a run's validation log (and ``training_curve.png`` in ``out`` when matplotlib is present).

    Example:
        >>> import tempfile, json
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "log.jsonl").write_text(json.dumps({"step": 10, "val": {"level0": {"bpp": 0.5, "psnr": 30.0}}}) + "\n")
        >>> training_curve(d / "log.jsonl", d)[5]
        '| 10 | 0.500 bpp, 30.00 dB |'
    """
    recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    levels = list(recs[0]["val"]) if recs else []
    lines = ["", "## Training curve (validation tiles, real rounding, estimated rate)", "",
             "| step | " + " | ".join(levels) + " |", "|---" * (len(levels) + 1) + "|"]
    for r in recs:
        lines.append(f"| {r['step']} | " + " | ".join(f"{r['val'][k]['bpp']:.3f} bpp, {r['val'][k]['psnr']:.2f} dB"
                                                       for k in levels) + " |")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return lines
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in levels:
        ax.plot([r["step"] for r in recs], [r["val"][k]["psnr"] for r in recs], marker="o", label=k)
    ax.set_xlabel("step")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "training_curve.png", dpi=80)
    plt.close(fig)
    lines += ["", "![training curve](training_curve.png)"]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--rd", type=Path, help="bench/results/pymars_rd.json for the card")
    ap.add_argument("--complexity", type=Path, help="bench/results/complexity.json for the card")
    ap.add_argument("--history", help="a sentence on how this particular run went (restarts, changes), for the card")
    ap.add_argument("--card-only", action="store_true", help="only rewrite MODEL_CARD.md")
    ap.add_argument("--tile-means", action="store_true",
                    help="files of this model carry each tile's mean per channel (2 bytes each; docs/bitstream.md §4.6)")
    ap.add_argument("--near-lossless-from", type=int, default=0,
                    help="qualities from this one to 100 use the near-lossless coder (max error 6 .. 0, 100 lossless)")
    ap.add_argument("--learned-top-level", type=float, default=-1,
                    help="with --near-lossless-from: rate level of the last learned quality (-1: the top level)")
    ap.add_argument("--near-lossless-max-error", type=int, default=6,
                    help="with --near-lossless-from: the maximum error at its first quality (0..32)")
    ap.add_argument("--near-lossless-coder", choices=("golomb", "arith"), default="golomb",
                    help="entropy coder of near-lossless tiles: Golomb codes (§4.7) or the range coder (§4.8)")
    ap.add_argument("--log", type=Path, help="the run's log.jsonl: the card gets its validation curve (table + PNG)")
    ap.add_argument("--hardware", default=f"{platform.processor() or platform.machine()}, 2 CPU cores, no GPU")
    args = ap.parse_args(argv)

    import torch

    from pymars.train.export.bundle_writer import load_checkpoint_model, write_bundle

    model, ck = load_checkpoint_model(args.checkpoint)
    if args.tile_means:
        model.cfg.tile_means = True
    if args.near_lossless_from:
        model.cfg.nl_from_quality = args.near_lossless_from
        model.cfg.learned_top_level = args.learned_top_level
        model.cfg.nl_max_error = args.near_lossless_max_error
        model.cfg.nl_coder = args.near_lossless_coder
    tc = ck.get("train_config", {})
    prov = {
        "steps": ck["step"],
        "batch": tc.get("batch"),
        "crop": tc.get("crop"),
        "lr": tc.get("lr"),
        "lr_final": tc.get("lr_final"),
        "decay_from": tc.get("decay_from"),
        "data": "../shared/data/mars development set, evaluation tiles held out (pymars/train/dataset.py)",
        "model": tc.get("model", "base"),
        "warm_start": tc.get("warm_start") or None,
        "init_from": tc.get("init_from") or None,
        "precision": tc.get("precision", "fp32"),
        "channels_last": tc.get("channels_last", False),
        "hardware": args.hardware,
        "torch": torch.__version__,
    }
    out = Path(args.output)
    if not args.card_only:
        write_bundle(model, out, prov)
    manifest = json.loads((out / "model.json").read_text())
    rd = json.loads(args.rd.read_text()) if args.rd and args.rd.exists() else None
    cx = json.loads(args.complexity.read_text()) if args.complexity and args.complexity.exists() else None
    gray = manifest["config"].get("channels", 3) == 1
    if gray:
        data_text = (f"{prov['data']}: gray crops of {prov['crop']}x{prov['crop']} (pymars.train.dataset.gray_training_pool): "
                     "Curiosity Navcam frames of the training sols (native, 2x and 4x box-downsampled; on-board binned "
                     "256x256 frames), luma of the MarsScapes panoramas (2x, 4x; evaluation windows +64 px excluded) and "
                     "of the MarsData scenes that give no evaluation tile; shares 50/35/15 %; every crop independently "
                     "re-exposed (gamma, gain), given sensor-like noise and re-compressed with JPEG q75-98. The Navcam "
                     "sols of the `dev_navcam` group and the PDS EDRs are never trained on.")
    else:
        data_text = (f"{prov['data']}: crops of {prov['crop']}x{prov['crop']} from the 74 MarsScapes panoramas "
                     "(native and 2x box-downsampled, evaluation windows +64 px excluded) and the 91 MarsData images that give no "
                     "evaluation tile (2x downsampled), MarsData drawn 20 % of the time.")
    start = ""
    if prov.get("warm_start") or prov.get("init_from"):
        start = f"Started from `{prov.get('warm_start') or prov.get('init_from')}` (pymars.train.codec.loop.warm_start). "
    run_flags = f"--model {prov['model']} " if prov.get("model", "base") != "base" else ""
    run_flags += f"--warm-start {prov['warm_start']} " if prov.get("warm_start") else ""
    lines = [
        f"# Model card: {out.name}",
        "",
        f"- **Architecture:** `{manifest['architecture']}` (docs/architecture.md): light float analysis g_a "
        f"(4 x conv5x5/s2 + simplified GDN, widths {manifest['config']['analysis']}, latent {manifest['config']['latent']}), "
        f"hyper-analysis h_a, integer hyper-synthesis h_s (int8 weights, int32 accumulation), "
        f"synthesis g_s {manifest['config']['synthesis']}; quality 1..100 through gain vectors on "
        f"{len(manifest['config']['lambdas'])} rate levels (lambda {manifest['config']['lambdas'][0]} .. {manifest['config']['lambdas'][-1]}).",
        f"- **Model id:** `{manifest['model_id']}` (first 8 bytes of SHA-256 of encoder.pmw).",
        f"- **Image channels:** {manifest['config'].get('channels', 3)}"
        + (" (gray: gray images and RGB images with three equal channels are coded as one channel)." if gray else " (RGB)."),
        f"- **Training data:** {data_text}",
        f"- **Training:** {start}{prov['steps']} steps, batch {prov['batch']}, Adam lr {prov['lr']} constant up to step "
        f"{round(prov['decay_from'] * prov['steps'])}, then a cosine down to {prov['lr_final']}, "
        "EMA 0.999, random rate level per sample; loss lambda * 255^2 * MSE + bpp; "
        f"precision {prov.get('precision', 'fp32')}{', channels_last' if prov.get('channels_last') else ''}.",
        f"- **Hardware:** {prov['hardware']}; PyTorch {prov['torch']}.",
        f"- **Reproduce:** `pymars train {run_flags}--out runs/base --steps {prov['steps']} --batch {prov['batch']} --crop {prov['crop']} "
        f"--lr {prov['lr']} --lr-final {prov['lr_final']} --decay-from {prov['decay_from']}` (resumable: the learning rate "
        "is a function of the step, so stopping and resuming follows the same schedule) "
        f"then `python export/export_bundle.py runs/base/checkpoint.pt -o pymars/weights/{out.name}`."
        + (f" {args.history}" if args.history else ""),
        "- **Files:** " + ", ".join(f"`{k}` (sha256 {v[:12]}...)" for k, v in manifest["files"].items()),
        "",
        "## Rate-distortion on the development set (`mars-rd-1`, ../shared/EVALUATION.md)",
        "",
        "Measured by `python bench/rd_pymars.py` (C++ encoder, complete files, ONNX Runtime decoding)."
        if rd else "Not measured yet.",
    ]
    if rd:
        lines.append(card_rd_table(rd))
        if "onnx_vs_torch_max_psnr_difference_db" in rd:
            lines.append(f"\nONNX Runtime vs PyTorch reconstructions: max |PSNR difference| "
                         f"{json.dumps(rd['onnx_vs_torch_max_psnr_difference_db'])} dB.")
    if args.log and args.log.exists():
        lines += training_curve(args.log, out)
    if cx:
        lines += ["", "## Encoder cost (`python bench/complexity.py`)", "",
                  f"- MACs per pixel on the rover: {cx['rover_macs_per_px']:.0f} "
                  f"(g_a {cx['macs_per_px']['g_a']:.0f}, h_a {cx['macs_per_px']['h_a']:.0f}, h_s {cx['macs_per_px']['h_s']:.0f}); "
                  f"ground synthesis {cx['macs_per_px']['g_s']:.0f}.",
                  f"- Parameters: " + ", ".join(f"{k} {v}" for k, v in cx["params"].items()) + ".",
                  f"- C++ encoder: {cx['cpp_s_per_mpx']:.2f} s per megapixel, one thread"
                  + (f"; {cx['instructions_per_px']:.0f} instructions per pixel (callgrind)." if cx.get("instructions_per_px") else ".")]
    if gray:
        lines += ["", "## Limitations", "",
                  "- Trained on a 2-core CPU for a limited number of steps, warm-started from base-v1; the training "
                  "curve above had not flattened.",
                  "- One channel only: RGB images with different channels are coded by the RGB default (base-v1).",
                  "- Tiles are coded independently: seams can show at low rates.",
                  "- 12/16-bit input is coded at 8-bit precision.",
                  "- Development data are JPEG- or ICER-derived (see ../shared/data/mars/PROVENANCE.md), not raw sensor data."]
        (out / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
        print(f"wrote {out}/MODEL_CARD.md")
        return 0
    lines += ["", "## Limitations", "",
              "- Trained on CPU for a limited number of steps; more training improves every rate point.",
              "- The rate range ends near 1 bpp (about 32.5 dB at quality 100): the transforms limit the top quality, "
              "so above that a classic codec is the better choice; BD-rates are over the overlapping PSNR range only.",
              "- The C++ encoder (direct convolutions, AVX2) is slower than PyTorch's oneDNN on the same CPU; "
              "its cost per pixel is what a flight CPU without SIMD pays (see bench/complexity.py).",
              "- Tiles are coded independently: seams can show at low rates.",
              "- 12/16-bit input is coded at 8-bit precision.",
              "- Development data are JPEG-derived (see ../shared/data/mars/PROVENANCE.md), not raw sensor data."]
    (out / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/MODEL_CARD.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
