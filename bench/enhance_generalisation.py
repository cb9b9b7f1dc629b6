"""Does an enhancer ever make its input worse? Gray, sharpened and off-setting JPEGs of the dev tiles.

What it measures (issue 19, item 6: "no enhancer may make its input worse on
average: gray, colour, any camera"): the mean PSNR gain (dB) of each model
over the JPEG it is given, on inputs it was not trained on:

* ``gray``: every 2nd ``dev_navcam`` tile (gray Curiosity Navcam frames of
  held-out sols), gray JPEG (Pillow) at each ``--qualities`` QF, through the
  gray path of :class:`pymars.enhance.inference.Enhancer`;
* ``gray sharpened``: the same tiles after an unsharp mask (amount 1, sigma
  1.5) before JPEG: content crisper than anything in training;
* ``colour sharpened``: every 3rd colour development tile, sharpened, JPEG 4:2:0.

A model trained on gray images (``enhance-train cache --gray``) is not run on
the colour sets (``n/a``). A negative mean is the failure this guards against. With ``--plain`` the
sets are instead the gray tiles and every 3rd colour tile, unsharpened, at each
``--qualities`` QF: how far above its own QF a model still helps. Those tiles
are themselves decoded JPEGs (../shared PROVENANCE.md); ``--raw`` adds the
``dev_navcam_pds`` tiles, 8-bit views of raw 12-bit Navcam EDRs that were never
JPEG-compressed: the check that a gain is not the net re-creating the source
JPEG's quantisation. The model
``auto`` is what ``pymars enhance`` runs by default: the shipped model of each
JPEG's quality read from the file, or the image unchanged above QF 60
(pymars.enhance.jpeg_quality). Writes bench/results/enhance_generalisation.json
(or ``--out``) and prints a table.

Run:  python bench/enhance_generalisation.py --models marsqe-jpeg30-10k,marsqe-lite7-jpeg30-10k --qualities 20,30,50
      python bench/enhance_generalisation.py --codec pymars --qualities 50 --models dncnn-wv50,dncnn-cascade-wv50 \
          --out bench/results/enhance_generalisation_pymars50.json   # the same checks on pymars files
      python bench/enhance_generalisation.py --plain --models auto,marsqe-jpeg30-10k,marsqe-jpeg50 --qualities 30,50,60,75,90 \
          --out bench/results/enhance_jpeg_quality.json

Example:
    >>> x = np.full((16, 16), 100, np.uint8); x[8:] = 140
    >>> s = unsharp(x); int(s[7, 0]) < 100 < 140 < int(s[8, 0])
    True
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymars.clio import write_json  # noqa: E402
from pymars.evaluation.metrics import psnr  # noqa: E402

RESULT = Path(__file__).resolve().parent / "results" / "enhance_generalisation.json"


def unsharp(img: np.ndarray, amount: float = 1.0, sigma: float = 1.5) -> np.ndarray:
    """Unsharp mask of a uint8 image (per channel): ``img + amount * (img - blur)``, clipped."""
    from scipy.ndimage import gaussian_filter

    x = img.astype(np.float64)
    blur = gaussian_filter(x, sigma=(sigma, sigma) + (0,) * (x.ndim - 2))
    return np.clip(np.round(x + amount * (x - blur)), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Pillow JPEG round trip (gray stays gray; colour 4:2:0, as the protocol's anchor)."""
    return jpeg_file(img, quality)[1]


def jpeg_file(img: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    """The JPEG file (Pillow, as :func:`jpeg`) and its decoded pixels."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue(), np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def pymars_file(img: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    """A pymars file of the default model for the image (gray: base-v2-gray-wv) and its decoded pixels."""
    import pymars

    data = pymars.encode(img, quality)
    return data, pymars.decode(data).reshape(img.shape)


def main() -> None:
    from tqdm import tqdm

    from pymars.enhance.cli import resolve_model
    from pymars.enhance.inference import Enhancer
    from pymars.evaluation.protocol import dev_tiles

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", required=True, help="enhancer names or folders, comma-separated")
    ap.add_argument("--qualities", default="20,30,50", help="JPEG QFs of the gray sets (colour: 30 only)")
    ap.add_argument("--dictionary", default=None, help="MarsQE dictionary .npz (default: rebuilt from ../shared)")
    ap.add_argument("--plain", action="store_true", help="unsharpened gray and colour sets at every --qualities QF")
    ap.add_argument("--raw", action="store_true", help="with --plain: also the never-JPEG'd dev_navcam_pds tiles")
    ap.add_argument("--codec", choices=("jpeg", "pymars"), default="jpeg",
                    help="what makes the inputs: Pillow JPEG at each QF, or pymars (the default models) at each "
                         "quality, e.g. --codec pymars --qualities 50 for the pymars:50 enhancers")
    ap.add_argument("--out", default=str(RESULT))
    a = ap.parse_args()
    compress = jpeg_file if a.codec == "jpeg" else pymars_file
    unit = "QF" if a.codec == "jpeg" else "pymars q"
    gray = [t.pixels for t in dev_tiles("dev_navcam")][::2]
    colour = [t.pixels for g in ("dev_marsscapes", "dev_marsdata") for t in dev_tiles(g)][::3]
    raw_gray = [t.pixels for t in dev_tiles("dev_navcam_pds")] if a.raw else []
    sets = {}
    qualities = [int(x) for x in a.qualities.split(",")]
    for q in qualities:
        sets[f"gray {unit} {q}"] = (gray, q)
        if a.plain:
            sets[f"colour {unit} {q}"] = (colour, q)
            if raw_gray:
                sets[f"raw gray {unit} {q}"] = (raw_gray, q)
        else:
            sets[f"gray sharpened {unit} {q}"] = ([unsharp(t) for t in gray], q)
    if not a.plain:  # JPEG: QF 30, the enhancers' main setting; pymars: the first quality asked for
        qc = 30 if a.codec == "jpeg" else qualities[0]
        sets[f"colour sharpened {unit} {qc}"] = ([unsharp(t) for t in colour], qc)
    doc = {"codec": a.codec, "tiles": {"gray": len(gray), "colour": len(colour), "raw_gray": len(raw_gray)},
           "gain_db": {}}
    from pymars.enhance.jpeg_quality import choose_model

    enhancers = {}

    def enhanced(name: str, data: bytes, comp: np.ndarray) -> np.ndarray:
        model = choose_model("auto", data, gray=comp.ndim == 2)[0] if name == "auto" else name
        if model is None:  # auto, above every model's reach: the image as it is
            return comp
        if model not in enhancers:
            enhancers[model] = Enhancer(resolve_model(model), dictionary=a.dictionary, threads=1)
        return enhancers[model].enhance(comp)

    def gray_only(name: str) -> bool:  # a model trained on gray images (enhance-train cache --gray) refuses colour
        if name == "auto":
            return False
        meta = resolve_model(name) / "model.json"
        return meta.is_file() and json.loads(meta.read_text()).get("input") == "gray"

    for name in a.models.split(","):
        row = {}
        for label, (raws, q) in sets.items():
            if gray_only(name) and label.startswith("colour"):
                row[label] = None
                continue
            gains = []
            for raw in tqdm(raws, desc=f"{name}: {label}", leave=False):
                data, comp = compress(raw, q)
                gains.append(psnr(raw, enhanced(name, data, comp)) - psnr(raw, comp))
            row[label] = round(float(np.mean(gains)), 3)
        doc["gain_db"][name] = row
        print(name, row, flush=True)
    write_json(a.out, doc)
    labels = list(sets)
    print("\n| model | " + " | ".join(labels) + " |\n|---|" + "---|" * len(labels))
    for name, row in doc["gain_db"].items():
        print(f"| {name} | " + " | ".join("n/a" if row[k] is None else f"{row[k]:+.2f}" for k in labels) + " |")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
