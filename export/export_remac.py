"""Export a REMAC training checkpoint as a model bundle and write its model card.

    python export/export_remac.py runs/remac/checkpoint.pt -o pymars/weights/remac-v1 \
        [--rd bench/results/remac_rd.json] [--card-only]

The bundle comes from pymars.train.remac.export (encoder.pmw with the reference
branch, the ref-decoder ONNX, safetensors, model.json); the card takes the
training facts from the checkpoint and its log, and every RD / cost figure
from the benchmark result file (nothing typed by hand).

Example:
    >>> card_rd_section({"groups": {}}).strip()
    ''
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path


def card_rd_section(rd: dict) -> str:
    """Markdown tables (curves and BD-rates against the base codec) from a remac_rd.json document."""
    out = []
    for group, entry in rd.get("groups", {}).items():
        s = entry["summary"]
        out.append(f"\n**{group}** ({s['tiles']} tiles): mean bpp / PSNR (dB) per quality\n")
        names = [n for n in ("pymars", "remac-entropy", "remac", "remac-unrelated", "remac-nolib") if n in s["curves"]]
        q = s["curves"][names[0]]["qualities"]
        out.append("| variant | " + " | ".join(str(v) for v in q) + " |")
        out.append("|---|" + "---|" * len(q))
        for n in names:
            c = s["curves"][n]
            at = {qq: f"{b:.3f} / {p:.2f}" for qq, b, p in zip(c["qualities"], c["bpp"], c["psnr"])}
            out.append(f"| {n} | " + " | ".join(at.get(qq, "-") for qq in q) + " |")
        out.append("\n| variant | BD-rate vs base (PSNR) | per-tile median | BD-PSNR | BD-rate vs JPEG 4:2:0 |")
        out.append("|---|---|---|---|---|")
        for n in names[1:]:
            b = s["bd"]["pymars"]["psnr"].get(n, {})
            j = s["bd"].get("jpeg420", {}).get("psnr", {}).get(n, {})
            grid = "" if len(s["curves"][n]["qualities"]) == len(q) else " (4 qualities)"
            out.append(f"| {n}{grid} | {b.get('bd_rate', float('nan')):+.2f} % | {b.get('per_tile_median_bd_rate', float('nan')):+.2f} % | "
                       f"{b.get('bd_metric', float('nan')):+.3f} dB | {j.get('bd_rate', float('nan')):+.1f} % |")
        mm = entry.get("mismatch_vs_remac")
        if mm:
            out.append("\nRD loss of a mismatched reference against `remac` itself, on their common qualities "
                       "(1, 29, 72, 100): " + ", ".join(f"{k} {v['bd_rate']:+.2f} %" for k, v in mm.items())
                       + "; every file decoded bit-exactly (checked per tile).")
    macs = rd.get("encoder_macs_per_pixel")
    if macs:
        out.append(f"\nEncoder MACs per pixel: base {macs['base']:.0f}, REMAC {macs['remac']:.0f} "
                   f"(+{100 * macs['relative_increase']:.2f} %: {json.dumps(macs['remac_extra'])}).")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--rd", type=Path, nargs="*", default=[],
                    help="bench/results/remac_rd*.json for the card (several: their groups are merged)")
    ap.add_argument("--card-only", action="store_true")
    ap.add_argument("--hardware", default=f"{platform.processor() or platform.machine()}, 2 CPU cores, no GPU")
    args = ap.parse_args(argv)

    import torch

    from pymars.train.remac.export import load_remac_checkpoint, write_remac_bundle

    out = Path(args.output)
    ck_path = Path(args.checkpoint)
    model, ck = load_remac_checkpoint(ck_path)
    cfg = ck["train_config"]
    log = [json.loads(line) for line in (ck_path.parent / "log.jsonl").read_text().splitlines()] \
        if (ck_path.parent / "log.jsonl").exists() else []
    provenance = {"steps": ck["step"], "train_config": cfg, "library_hash": ck.get("library_hash"),
                  "hardware": args.hardware, "torch": torch.__version__}
    if not args.card_only:
        write_remac_bundle(model, out, provenance)
    manifest = json.loads((out / "model.json").read_text())
    val = log[-1]["val"] if log else {}
    val_rows = "\n".join(f"| {k} | {v['bpp']:.4f} | {v['psnr']:.2f} |" for k, v in val.items())
    rd = None
    for path in args.rd:
        doc = json.loads(path.read_text())
        if rd is None:
            rd = doc
        else:
            rd["groups"].update(doc["groups"])
    refine = getattr(model.cfg, "refine_blocks", 0)
    decoder_text = "base g_s deepened with dilated residual blocks" + (
        f" and {refine} residual blocks at 1/2 resolution" if refine else "")
    steps_text = (f"{ck['step']} (Adam, lr {cfg['lr']} constant to {int(cfg['decay_from'] * cfg['steps'])}, then cosine to\n"
                  f"  {cfg['lr_final']}; EMA 0.999; the exported weights are the EMA, rounded to float16)")
    train_cmd = (f"`pymars remac train --library runs/refs/protocol.pmrl --out runs/remac --steps {cfg['steps']} --threads 1`")
    if cfg.get("init_from"):
        parent = Path(cfg["init_from"])
        parent_steps = torch.load(parent, map_location="cpu", weights_only=False)["step"] if parent.exists() else "?"
        what = "the ref-decoder alone (`--decoder-only`: h_s frozen, so the rover's blob and model id are the parent's)" \
            if cfg.get("decoder_only") else "every REMAC part"
        steps_text = (f"{parent_steps} steps of the parent run (`{parent}`, remac-v1's recipe), then {ck['step']} steps of "
                      f"{what}, started from the parent's EMA" + (f" with {refine} new zero-initialised 1/2-resolution blocks" if refine else "")
                      + f"; Adam, lr {cfg['lr']} constant to {int(cfg['decay_from'] * cfg['steps'])}, then cosine to "
                      f"{cfg['lr_final']}; EMA 0.999; the exported weights are the EMA, rounded to float16")
        train_cmd = (f"`pymars remac train --library runs/refs/protocol.pmrl --out runs/remac --steps 3000 --threads 1`, then "
                     f"`pymars remac train --library runs/refs/protocol.pmrl --out {Path(args.checkpoint).parent} "
                     f"--init-from runs/remac/checkpoint.pt --steps {cfg['steps']} --lr {cfg['lr']} --decay-from {cfg['decay_from']} "
                     f"--seed {cfg['seed']}" + (f" --refine-blocks {refine}" if refine else "")
                     + (" --decoder-only" if cfg.get("decoder_only") else "") + " --threads 1`")
    card = f"""# Model card: {out.name} (REMAC, reference-based pymars)

- **Model id:** `{manifest['model_id']}` (architecture `pymars-remac`, docs/remac.md). It extends the base
  model `base-v1` (`bf282961a97e5962`): the rover analysis g_a, h_a, the quality gains and the z model are
  the base model's, unchanged; new are the reference branch of the integer h_s (a 3x3 integer conv of
  the entropy reference's int8 latent, {model.cfg.ref_channels} channels, joining the input of `mid`; `mid`
  and `head` fine-tuned) and the ref-decoder ({decoder_text}, plus block
  texture transfer from the decoder reference at 1/4 resolution).
- **Training data:** the base recipe's crops (../shared/data/mars development set, every evaluation tile
  held out; pymars/train/dataset.py), {cfg['crop']}x{cfg['crop']}, batch {cfg['batch']}, rate levels drawn
  uniformly; references picked per crop by the rover's rules from the library below; {100 * cfg['no_ref_share']:.0f} %
  of the crops get no reference (the empty-library case).
- **Reference library used in training:** `pymars refs build --protocol -o LIB.pmrl` (hash
  `{ck.get('library_hash')}` for base-v1; k chosen by the Calinski-Harabasz index), evaluation tiles held out.
  A library for this model is built with `pymars refs build --protocol --model {out.name} -o LIB.pmrl`
  (same references, latents from the same analysis; only the model id and so the hash differ).
- **Steps:** {steps_text}.
- **Hardware:** {args.hardware}; PyTorch {torch.__version__}; {log[-1]['time_s'] / 60 if log else float('nan'):.0f} min of
  training wall time in the last segment (the CPU was shared with other jobs).
- **Reproduce:** `pymars refs build --protocol -o runs/refs/protocol.pmrl`, then
  {train_cmd}
  (resumable), then `python export/export_remac.py {args.checkpoint} -o pymars/weights/{out.name}`.
- **ONNX Runtime vs PyTorch (ref-decoder):** max |difference| {manifest.get('onnx_vs_torch_max_abs', float('nan')):.2e}.

## Validation during training (12 development tiles, ideal code length, real rounding)

| level / references | bpp | PSNR (dB) |
|---|---|---|
{val_rows}

## RD on the development set (`python bench/rd_remac.py --refs LIB.pmrl`, complete files, ONNX Runtime)
{card_rd_section(rd) if rd else 'not measured yet'}

## Limitations
- **The references do not help yet.** Coding with an unrelated reference or with no library gives the same RD
  as with the selected references (see the mismatch lines above): after {ck['step']} CPU steps the reference
  branches (zero-initialised so that training starts from the base model) are still near zero; in the
  entropy branch most of `mid`'s reference weights round to 0 in int8. The small gain of the full model
  comes from the deeper decoder (at the high qualities), and the fine-tuned h_s codes slightly worse than
  the base one. The issue's target (-10 % against the base at equal encoder cost) is not met.
- The references are chosen from the development set's own panoramas (evaluation windows held out):
  the library is not shipped (its ground part holds image tiles of ../shared); build it with the command above.
- Encode times in the result files come from a CPU shared with other jobs; the encoder cost is given in
  MACs per pixel (the analysis is the base model's, byte for byte; REMAC adds the selection and the branch).
"""
    (out / "MODEL_CARD.md").write_text(card)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
