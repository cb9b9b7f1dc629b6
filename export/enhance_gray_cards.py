"""Model cards of the enhancers trained on gray images (pymars/weights/enhance-*-gray-*).

What it is for: writing each gray model's MODEL_CARD.md (pymars.enhance.export.write_model_card) with the
exact commands that made it, its curve and its figures, read from the bench results named below, so that a
rerun of the commands and of this script gives the same cards. It must not train, export or change weights.

Run:  python export/enhance_gray_cards.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymars.enhance.export import write_model_card  # noqa: E402

RESULTS = ROOT / "bench" / "results"
HARDWARE = ("x86_64, 2 CPU cores (the other one ran a second training), no GPU; PyTorch 2.13.0+cpu, one thread at "
            "nice 2, bf16 autocast + channels_last (`--precision bf16`) on this AMX CPU; weights and loss fp32.")


def commands(setting: str, name: str, kind: str) -> str:
    tag = setting.replace(":", "")
    return (f"pymars enhance-train cache --gray --setting {setting} --regions 800      # runs/enhance/cache-gray-{tag}.npz\n"
            f"pymars enhance-train model --kind {kind} --gray --setting {setting} --steps 10000 --precision bf16 "
            f"--threads 1 \\\n    --out runs/enhance/{name}\n"
            f"pymars enhance-export runs/enhance/{name}/checkpoint.pt -o pymars/weights/enhance-{name}\n"
            "python bench/enhance_generalisation.py --plain --raw --models dncnn-gray-jpeg30-10k,dncnn-gray-jpeg75-10k,"
            "dncnn-gray-jpeg90-10k \\\n    --qualities 20,30,40,50,60,70,75,80,85,90,95 --out bench/results/enhance_gray.json\n"
            "python bench/enhance_generalisation.py --plain --raw --models marsqe-gray-jpeg30-10k --qualities 20,30,40,50 "
            "\\\n    --dictionary runs/enhance/dictionary-6.npz --out bench/results/enhance_gray_marsqe.json\n"
            "python bench/enhance_gray_curve.py --runs runs/enhance/marsqe-gray-jpeg30-10k,runs/enhance/dncnn-gray-jpeg30-10k,"
            "runs/enhance/dncnn-gray-jpeg75-10k,runs/enhance/dncnn-gray-jpeg90-10k\n"
            "python export/enhance_gray_cards.py")


def row(doc: dict, model: str) -> dict:
    return next((v for k, v in doc["gain_db"].items() if Path(k).name.removeprefix("enhance-") == model), {})


def main() -> None:
    gray = json.loads((RESULTS / "enhance_gray.json").read_text())
    gray["gain_db"].update(json.loads((RESULTS / "enhance_gray_marsqe.json").read_text())["gain_db"])
    curve = json.loads((RESULTS / "enhance_gray_curve.json").read_text())
    speed = json.loads((RESULTS / "enhance_throughput_idle.json").read_text())
    for folder in sorted((ROOT / "pymars" / "weights").glob("enhance-*-gray-jpeg*")):
        meta = json.loads((folder / "model.json").read_text())
        name = folder.name.removeprefix("enhance-")
        setting = meta["setting"]
        mine = row(gray, name)
        kind = meta["kind"]
        notes = [f"Trained on gray images: gray input only (an RGB image is refused in one line); `pymars enhance "
                 f"--model auto` runs it on gray images (pymars.enhance.jpeg_quality.AUTO_GRAY_MODELS).",
                 "Mean PSNR gain over its input, dB (bench/results/enhance_gray.json; gray = every 2nd dev_navcam "
                 "tile, gray Curiosity Navcam JPEGs of held-out sols; raw gray = the 16 dev_navcam_pds tiles, 8-bit "
                 "views of raw 12-bit EDRs never JPEG-compressed): "
                 + ", ".join(f"{k} {v:+.2f}" for k, v in mine.items() if v is not None) + "."]
        cur = {k: v for k, v in curve.get("curves", {}).get(name, {}).items()}
        if cur:
            notes.append("Curve (gain on the gray tiles at its own setting, by training step): "
                         + ", ".join(f"{int(k):,} {v:+.2f}" for k, v in sorted(cur.items(), key=lambda kv: int(kv[0])))
                         + " (bench/results/enhance_gray_curve.json).")
        if "dictionary" in meta:
            notes.append("Its references are those dictionary patches made gray (BT.601 luma, three equal channels) and "
                         "compressed as gray images, at training (the cache) and at inference (Enhancer) alike.")
        twin = "dncnn-jpeg30" if kind == "dncnn" else "marsqe-jpeg30-10k"
        tp = speed["checks"][f"pymars/weights/enhance-{twin}"]
        notes.append(f"Throughput: that of {twin} (same graphs; a gray image still runs three channels): "
                     f"{tp['mp_per_s_threads1']:.2f} / {tp['mp_per_s_threads2']:.2f} Mpx/s with 1 / 2 ONNX Runtime "
                     "threads on the idle CPU (bench/results/enhance_throughput_idle.json).")
        write_model_card(folder, command=commands(setting, name, kind), notes="\n".join(notes), hardware=HARDWARE)
        print(f"wrote {folder / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
