"""Model cards of the shipped U-Net enhancers (pymars/weights/enhance-unet-*).

What it is for: writing each U-Net folder's MODEL_CARD.md (pymars.enhance.export.write_model_card) with the
exact commands that made it and its figures, read from the bench results named below, so that a rerun of
the commands and of this script gives the same cards. It must not train, export or change weights.

Run:  python export/enhance_unet_cards.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymars.enhance.export import write_model_card  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HARDWARE = ("x86_64, 2 CPU cores shared with one to three other trainings and benches (each run one thread at "
            "nice 5), no GPU; PyTorch 2.13.0+cpu, bf16 autocast + channels_last (`--precision bf16`) on this AMX "
            "CPU; weights and loss fp32, shipped rounded to float16 (`enhance-export --half`).")

#: The commands behind the colour U-Net (docs/enhance.md "A U-Net at MarsQE's cost").
COMMANDS = {
    "unet-jpeg30-10k": """\
pymars enhance-train cache --setting jpeg:30 --regions 800        # runs/enhance/cache-jpeg30.npz
pymars enhance-train model --kind unet --setting jpeg:30 --steps 10000 --batch 8 --crop 48 --precision bf16 \\
    --threads 1 --out runs/enhance/unet-jpeg30-c48                   # 1,092 s
pymars enhance-export runs/enhance/unet-jpeg30-c48/checkpoint.pt --setting jpeg:30 --half -o pymars/weights/enhance-unet-jpeg30-10k
# the curve: pymars enhance-export of snapshot-{1000,2500,5000,7500}.pt, python bench/enhance_eval.py --models FOLDER
# --settings jpeg:30 --no-checks for each, --merge into bench/results/enhance_unet_curve.json, then
python bench/enhance_unet_curve.py
python bench/enhance_generalisation.py --models unet-jpeg30-10k --qualities 20,30,50 --out bench/results/enhance_generalisation_unet.json
python bench/enhance_generalisation.py --plain --raw --models unet-jpeg30-10k --qualities 30,40,50,60 --out bench/results/enhance_jpeg_quality_unet.json
python bench/enhance_eval.py --models unet-jpeg30-10k,marsqe-jpeg30-10k --settings jpeg:30 --throughput --out bench/results/enhance_unet.json
python export/enhance_unet_cards.py""",
}  # the gray U-Nets' commands: gray_commands


#: The gray U-Nets: (QF, fine-tuning steps, benches run on them).
GRAY = {
    "unet-gray-jpeg30": (30, 4000, [
        "python bench/enhance_gray_curve.py --runs runs/enhance/unet-gray-jpeg30-ft --steps 1000,2000,3000,4000 "
        "--out bench/results/enhance_gray_unet_curve.json",
        "python bench/enhance_generalisation.py --plain --raw --models unet-gray-jpeg30 --qualities 20,30,40,50,60 "
        "--out bench/results/enhance_gray_unet.json",
        "python bench/enhance_generalisation.py --models unet-gray-jpeg30 --qualities 20,30,50 "
        "--out bench/results/enhance_generalisation_gray_unet.json"]),
    "unet-gray-jpeg75": (75, 3000, [
        "python bench/enhance_generalisation.py --plain --raw --models unet-gray-jpeg75 --qualities 50,60,70,75,80,85 "
        "--out bench/results/enhance_gray_unet75.json",
        "python bench/enhance_generalisation.py --models unet-gray-jpeg75 --qualities 50,60,75,80 "
        "--out bench/results/enhance_generalisation_gray_unet75.json"]),
}


def gray_commands(name: str) -> str:
    """The commands of a gray U-Net: its gray cache, the colour start, the fine-tune, the export, its benches."""
    q, steps, benches = GRAY[name]
    return "\n".join([
        f"pymars enhance-train cache --gray --setting jpeg:{q} --regions 800   # runs/enhance/cache-gray-jpeg{q}.npz",
        "pymars enhance-train model --kind unet --setting jpeg:30 --steps 10000 --batch 8 --crop 96 --precision bf16 \\",
        "    --threads 1 --out runs/enhance/unet-jpeg30-c96                   # the colour start (3,801 s)",
        f"pymars enhance-train model --kind unet --gray --setting jpeg:{q} --steps {steps} --batch 8 --crop 96 --lr 2e-4 \\",
        f"    --precision bf16 --threads 1 --init-from runs/enhance/unet-jpeg30-c96/checkpoint.pt --out runs/enhance/{name}-ft",
        f"pymars enhance-export runs/enhance/{name}-ft/checkpoint.pt --setting jpeg:{q} --half -o pymars/weights/enhance-{name}",
        *benches, "python export/enhance_unet_cards.py"])


def gains(path: Path, model: str) -> dict:
    """The mean gains (dB) of ``model`` in a bench/enhance_generalisation.py result, {} when absent."""
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text())["gain_db"]
    return next((v for k, v in doc.items() if Path(k).name.removeprefix("enhance-") == model), {})


def listed(g: dict) -> str:
    return ", ".join(f"{k} {v:+.2f}" for k, v in g.items() if v is not None)


def notes_for(name: str) -> list[str]:
    notes = ["Kind `unet` (pymars/enhance/networks.py): three 2x levels at widths 32/64/128, 128 at the bottom, "
             "1,580,675 parameters, 131,776 MACs per pixel (0.90 of MarsQE's), reach about 76 pixels each side; "
             "it takes the compressed image alone (no references, no dictionary, no ../shared at inference). "
             "Images are edge-padded to multiples of 8 and run in 512-pixel cores with an 80-pixel margin "
             "(model.json `multiple`, `tile`, `margin`)."]
    if name == "unet-jpeg30-10k":
        curve = json.loads((RESULTS / "enhance_unet_curves.json").read_text())
        c = curve["unet_gain_db_vs_step"]["c48"]
        m = curve["equal_budget_gain_db_vs_step"]["marsqe"]
        notes.append("Curve, PSNR gain on the 69 development tiles at jpeg:30 (bench/results/enhance_unet_curves.json, "
                     "bench/results/enhance_plots/unet_jpeg30.png): "
                     + ", ".join(f"{int(s):,} {v:+.2f}" for s, v in c.items())
                     + " dB; MarsQE at the same steps and batch: "
                     + ", ".join(f"{int(s):,} {v:+.2f}" for s, v in m.items())
                     + f". 96-pixel crops (3.5x the time per step) plateau lower "
                       f"({curve['unet_gain_db_vs_step']['c96']['10000']:+.2f} at 10,000), and a cache four times "
                       f"larger (3,200 regions) ends at {curve['unet_gain_db_vs_step']['r3200']['10000']:+.2f}: at "
                       "this budget neither the crop nor the amount of data lifts the plateau.")
        fam = json.loads((RESULTS / "enhance_bd_unet.json").read_text())["bd_rate_vs_jpeg"]["unet (one model per QF)"]
        mq = json.loads((RESULTS / "enhance_bd10k.json").read_text())["bd_rate_vs_jpeg"]["marsqe (one model per QF)"]
        notes.append(f"BD-rate of JPEG + U-Net against JPEG over QF 20-50 (one U-Net per QF, QF 20/40/50 fine-tuned "
                     f"from this one; bench/results/enhance_bd_unet.json): {fam['all']['bd_rate_percent']:.1f} % "
                     f"(MarsQE, one 10,000-step model per QF, bench/results/enhance_bd10k.json: "
                     f"{mq['all']['bd_rate_percent']:.1f} %); the issue's -30 % is not reached.")
        g = gains(RESULTS / "enhance_generalisation_unet.json", name)
        if g:
            notes.append("Never-worse checks (bench/results/enhance_generalisation_unet.json; gray = every 2nd "
                         "dev_navcam tile through the gray path, 8x8 means kept): " + listed(g) + ". `auto` gives gray "
                         "images the gray nets instead.")
        q = gains(RESULTS / "enhance_jpeg_quality_unet.json", name)
        if q:
            notes.append("Off its QF (bench/results/enhance_jpeg_quality_unet.json): " + listed(q)
                         + ". `pymars enhance --model auto` runs it on colour JPEGs of QF 55 and below.")
    if name == "unet-gray-jpeg75":
        notes.append("Trained on gray images: gray input only (an RGB image is refused in one line). Started "
                     "from the colour U-Net trained with 96-pixel crops (runs/enhance/unet-jpeg30-c96), then 3,000 "
                     "steps on the gray QF 75 cache (1,426 s). `auto` runs it on gray JPEGs of QF 46-82, where the "
                     "gray DnCNN of QF 75 ran before.")
        g = gains(RESULTS / "enhance_gray_unet75.json", name)
        if g:
            notes.append("Mean PSNR gain over its input, dB (bench/results/enhance_gray_unet75.json; gray = every "
                         "2nd dev_navcam tile, raw gray = the 16 dev_navcam_pds tiles, 8-bit views of raw 12-bit "
                         "EDRs): " + listed(g) + ". The gray DnCNN of QF 75 it replaces, at the same QFs: "
                         + listed({k: v for k, v in gains(RESULTS / "enhance_gray.json", "dncnn-gray-jpeg75-10k").items()
                                   if k in g}) + " (bench/results/enhance_gray.json).")
        s = gains(RESULTS / "enhance_generalisation_gray_unet75.json", name)
        if s:
            notes.append("Sharpened gray (bench/results/enhance_generalisation_gray_unet75.json): " + listed(s) + ".")
    if name == "unet-gray-jpeg30":
        notes.append("Trained on gray images: gray input only (an RGB image is refused in one line). Started "
                     "from the colour U-Net trained with 96-pixel crops (runs/enhance/unet-jpeg30-c96, +1.00 dB on "
                     "the colour tiles), then 4,000 steps on the gray QF 30 cache.")
        g = gains(RESULTS / "enhance_gray_unet.json", name)
        if g:
            notes.append("Mean PSNR gain over its input, dB (bench/results/enhance_gray_unet.json; gray = every 2nd "
                         "dev_navcam tile, raw gray = the 16 dev_navcam_pds tiles, 8-bit views of raw 12-bit EDRs): "
                         + listed(g) + ".")
        s = gains(RESULTS / "enhance_generalisation_gray_unet.json", name)
        if s:
            notes.append("Sharpened gray (bench/results/enhance_generalisation_gray_unet.json): " + listed(s) + ".")
        cur = RESULTS / "enhance_gray_unet_curve.json"
        if cur.is_file():
            doc = json.loads(cur.read_text())
            run = next(iter(doc["curves"]))
            notes.append("Curve (gray / raw gray tiles at QF 30 by fine-tuning step; "
                         "bench/results/enhance_gray_unet_curve.json): "
                         + ", ".join(f"{int(k):,} {v:+.2f} / {doc['raw_curves'][run][k]:+.2f}"
                                     for k, v in doc["curves"][run].items()) + ".")
    speed = RESULTS / "enhance_unet.json"
    if speed.is_file():
        chk = json.loads(speed.read_text()).get("checks", {})
        tp = next((v for k, v in chk.items() if Path(k).name.removeprefix("enhance-") == "unet-jpeg30-10k"), {})
        if "mp_per_s_threads1" in tp:
            notes.append(f"Throughput (ONNX Runtime CPU, 512x768 image; bench/results/enhance_unet.json): "
                         f"{tp['mp_per_s_threads1']:.2f} / {tp['mp_per_s_threads2']:.2f} Mpx/s with 1 / 2 threads"
                         + (" (same graph for the gray net: three equal channels)" if name != "unet-jpeg30-10k" else "")
                         + ".")
    return notes


def main() -> None:
    for folder in sorted((ROOT / "pymars" / "weights").glob("enhance-unet-*")):
        name = folder.name.removeprefix("enhance-")
        command = COMMANDS.get(name) or gray_commands(name)
        write_model_card(folder, command=command, notes="\n".join(notes_for(name)), hardware=HARDWARE)
        print(f"wrote {folder / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
