"""Which real frame pairs overlap, and how many bytes could a frame already sent save? (issue 18)

Rovers shoot mosaics, stereo pairs and revisits: a later frame may show what an
earlier one showed, and both sides know the earlier frame exactly (the rover its
reconstruction, the ground the decoded file). Before a sequence mode is built into
the codec, this script measures what it could gain on the real data in ../shared.

1. **Registration.** Every pair of consecutive frames of one sol and one camera
   (MarsData Mastcam: same sol, same ML/MR eye; Navcam ``full_1024``: same sol) is
   registered by an exhaustive search of the integer translation at 1/10 scale
   (box-downsampled luma) with at least 10 % overlap. The score is the mean
   absolute difference over the overlap after removing its mean offset, divided by
   the frame's own mean absolute deviation: 0 is a perfect match, about 1 means the
   overlap predicts nothing. Every pair is listed with its translation, overlap
   fraction and score.
2. **Oracle bound.** For each pair scoring below ``--max-score`` (default 0.6), the
   second frame is cut into 64 x 64 blocks and each block is coded with the default
   model (``base-v2-wv``) at quality q in the cheaper of two ways:

   * intra: the block itself;
   * predicted: the block minus the decoded first frame (what both sides have) at
     the best integer displacement within +-13 pixels of the registered translation
     (SAD search, step 2 then 1), minus the mean difference per channel, plus 128,
     clipped to 8 bits, coded as an image by the same coder at the same quality; its
     reconstruction is the prediction plus the decoded residual. 6 bytes of side
     information per predicted block; a block is predicted only where that is
     smaller and its squared error is at most 5 % above intra's.

   The choice uses the original (an oracle), nothing is signalled but the 6 bytes,
   and the residual gets the intra coder's contexts: this bounds what translational
   prediction of whole blocks can save with this coder, it is not a built mode.
   Reported per pair and in total: bytes of the predicted second frame against the
   intra second frame (negative = saved) at equal PSNR (printed for both).

Run::

    python bench/sequence_overlap_bound.py            # about 5 minutes on one core
    python bench/sequence_overlap_bound.py --qualities 30,50 --json bench/results/sequence_overlap_bound.json

Needs ../shared (skips with a message without it). Example of the registration alone:

    >>> import numpy as np
    >>> a = np.random.default_rng(0).integers(0, 255, (60, 80)).astype(float)
    >>> b = np.zeros_like(a); b[:, :60] = a[:, 20:]; b[:, 60:] = 7
    >>> s = register(a, b, scale=1)
    >>> (s["dy"], s["dx"], round(s["overlap"], 2), s["score"] < 0.01)
    (0, 20, 0.75, True)
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODEL = "base-v2-wv"
BLOCK = 64
SIDE_BYTES = 6  # displacement (2 x int16) and a per-channel offset index: a generous guess
SEARCH = 13


def _down(x: np.ndarray, k: int) -> np.ndarray:
    h, w = x.shape
    return x[: h // k * k, : w // k * k].reshape(h // k, k, w // k, k).mean((1, 3))


def register(a: np.ndarray, b: np.ndarray, scale: int = 10, min_overlap: float = 0.1) -> dict:
    """Integer translation (dy, dx) with b[y, x] ~ a[y + dy, x + dx]: exhaustive search at 1/scale.

    Returns dy, dx (full-resolution pixels), overlap (fraction of b) and score (normalised
    mean absolute difference over the overlap, offset removed; 0 = identical).
    """
    A, B = (_down(np.asarray(v, float), scale) if scale > 1 else np.asarray(v, float) for v in (a, b))
    h, w = A.shape
    spread = np.abs(B - B.mean()).mean() + 1e-6
    best = {"score": np.inf, "dy": 0, "dx": 0, "overlap": 0.0}
    for dy in range(-h + 1, h):
        for dx in range(-w + 1, w):
            y0, y1, x0, x1 = max(0, -dy), min(h, h - dy), max(0, -dx), min(w, w - dx)
            overlap = (y1 - y0) * (x1 - x0) / (h * w)
            if overlap < min_overlap:
                continue
            d = B[y0:y1, x0:x1] - A[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
            score = float(np.abs(d - d.mean()).mean() / spread)
            if score < best["score"]:
                best = {"score": score, "dy": dy * scale, "dx": dx * scale, "overlap": overlap}
    return best


def frame_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    """Consecutive frames of one sol and camera: MarsData Mastcam (sol, ML/MR) and Navcam full_1024 (sol)."""
    groups: dict[tuple, list[Path]] = collections.defaultdict(list)
    for f in sorted((root / "marsdata_msl_mastcam_mars32k_jpeg").glob("[0-9]*.jpg")):
        sol, product = f.name.split("_")[:2]
        groups[("mastcam", sol, product[len(sol) : len(sol) + 2])].append(f)
    for f in sorted((root / "curiosity_navcam_gray" / "full_1024").glob("sol*.jpg")):
        groups[("navcam", f.name[:7], f.name[8:11])].append(f)
    return [(k[0], a, b) for k, fs in sorted(groups.items()) for a, b in zip(fs[:-1], fs[1:])]


def _code(img: np.ndarray, q: int):
    import pymars

    data = pymars.encode(np.ascontiguousarray(img), q, model=MODEL)
    return len(data) - 40, pymars.decode(data, model=MODEL)  # the 40-byte file header is per file, not per block


def _best_displacement(t: np.ndarray, ref: np.ndarray, y0: int, x0: int, gy: int, gx: int):
    h, w = ref.shape[:2]

    def sad(yy, xx):
        if yy < 0 or xx < 0 or yy + BLOCK > h or xx + BLOCK > w:
            return None
        d = t - ref[yy : yy + BLOCK, xx : xx + BLOCK].astype(np.int32)
        return int(np.abs(d - np.round(d.mean((0, 1)))).sum())

    best = None
    for dy in range(gy - SEARCH + 1, gy + SEARCH, 2):
        for dx in range(gx - SEARCH + 1, gx + SEARCH, 2):
            s = sad(y0 + dy, x0 + dx)
            if s is not None and (best is None or s < best[0]):
                best = (s, y0 + dy, x0 + dx)
    if best is None:
        return None
    _, by, bx = best
    for yy in range(by - 1, by + 2):
        for xx in range(bx - 1, bx + 2):
            s = sad(yy, xx)
            if s is not None and s < best[0]:
                best = (s, yy, xx)
    return best[1], best[2]


def oracle_bound(first: np.ndarray, second: np.ndarray, dy: int, dx: int, q: int) -> dict:
    """Bytes and PSNR of the second frame: intra blocks vs the oracle choice of intra / predicted blocks."""
    _, ref = _code(first, q)
    h, w = second.shape[:2]
    n_ch = 1 if second.ndim == 2 else second.shape[2]
    intra_bytes = best_bytes = 0
    intra_se = best_se = 0.0
    predicted = blocks = 0
    for y0 in range(0, h - BLOCK + 1, BLOCK):
        for x0 in range(0, w - BLOCK + 1, BLOCK):
            t = second[y0 : y0 + BLOCK, x0 : x0 + BLOCK].astype(np.int32)
            b1, d1 = _code(t.astype(np.uint8), q)
            e1 = float(((d1.astype(np.int32) - t) ** 2).sum())
            intra_bytes += b1
            intra_se += e1
            blocks += 1
            at = _best_displacement(t, ref, y0, x0, dy, dx)
            b2 = e2 = None
            if at is not None:
                p = ref[at[0] : at[0] + BLOCK, at[1] : at[1] + BLOCK].astype(np.int32)
                off = np.round((t - p).mean((0, 1))).astype(np.int32)
                r = np.clip(t - p - off + 128, 0, 255).astype(np.uint8)
                b2, d2 = _code(r, q)
                b2 += SIDE_BYTES
                rec = np.clip(d2.astype(np.int32) - 128 + p + off, 0, 255)
                e2 = float(((rec - t) ** 2).sum())
            if b2 is not None and b2 < b1 and e2 <= 1.05 * e1:
                best_bytes += b2
                best_se += e2
                predicted += 1
            else:
                best_bytes += b1
                best_se += e1
    n = blocks * BLOCK * BLOCK * n_ch

    def psnr(se):
        return float(10 * np.log10(255**2 / max(se / n, 1e-12)))

    return {"quality": q, "intra_bytes": intra_bytes, "oracle_bytes": best_bytes,
            "saving_percent": 100.0 * (best_bytes / intra_bytes - 1), "intra_psnr": psnr(intra_se),
            "oracle_psnr": psnr(best_se), "predicted_blocks": predicted, "blocks": blocks}


def run(qualities=(30, 50, 70, 85), max_score: float = 0.6, progress: bool = True) -> dict | None:
    from PIL import Image
    from tqdm import tqdm

    from pymars.evaluation.protocol import mars_data_dir

    root = mars_data_dir()
    if root is None:
        print("sequence_overlap_bound: ../shared/data/mars is not here; nothing to measure", file=sys.stderr)
        return None
    pairs = []
    for camera, a, b in tqdm(frame_pairs(root), desc="register", disable=not progress):
        ga, gb = (np.asarray(Image.open(f).convert("L")) for f in (a, b))
        if ga.shape != gb.shape:
            continue
        pairs.append({"camera": camera, "first": a.name, "second": b.name, **register(ga, gb)})
    for pair in tqdm([p for p in pairs if p["score"] < max_score], desc="oracle bound", disable=not progress):
        mode = "L" if pair["camera"] == "navcam" else "RGB"
        folder = root / ("marsdata_msl_mastcam_mars32k_jpeg" if pair["camera"] == "mastcam"
                         else "curiosity_navcam_gray/full_1024")
        first, second = (np.asarray(Image.open(folder / pair[k]).convert(mode)) for k in ("first", "second"))
        pair["bound"] = [oracle_bound(first, second, pair["dy"], pair["dx"], q) for q in qualities]
    total = {}
    for i, q in enumerate(qualities):
        bounded = [p["bound"][i] for p in pairs if "bound" in p]
        if bounded:
            total[str(q)] = 100.0 * (sum(b["oracle_bytes"] for b in bounded) / sum(b["intra_bytes"] for b in bounded) - 1)
    return {"model": MODEL, "block": BLOCK, "side_bytes": SIDE_BYTES, "search": SEARCH, "max_score": max_score,
            "pairs": pairs, "total_saving_percent": total,
            "command": "python bench/sequence_overlap_bound.py " + " ".join(sys.argv[1:])}


def table(result: dict) -> str:
    lines = ["| camera | second frame | shift (dy, dx) | overlap | score | " +
             " | ".join(f"q{b['quality']} saving (PSNR)" for b in next((p["bound"] for p in result["pairs"] if "bound" in p), [])) + " |"]
    lines.append("|" + "---|" * (5 + len(result["total_saving_percent"])))
    for p in result["pairs"]:
        cells = [p["camera"], p["second"][:32], f"({p['dy']}, {p['dx']})", f"{p['overlap']:.2f}", f"{p['score']:.2f}"]
        cells += [f"{b['saving_percent']:+.1f} % ({b['oracle_psnr']:.2f} vs {b['intra_psnr']:.2f} dB)"
                  for b in p.get("bound", [])] or ["not bounded (score too high)"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("all bounded pairs: " + ", ".join(f"q{q} {v:+.2f} %" for q, v in result["total_saving_percent"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qualities", default="30,50,70,85")
    ap.add_argument("--max-score", type=float, default=0.6, help="bound only pairs registered at least this well")
    ap.add_argument("--json", default=str(REPO / "bench" / "results" / "sequence_overlap_bound.json"))
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    result = run(tuple(int(q) for q in args.qualities.split(",")), args.max_score, progress=not args.no_progress)
    if result is None:
        return 0
    from pymars.clio import atomic_write

    atomic_write(Path(args.json), json.dumps(result, indent=1).encode())
    print(table(result))
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
