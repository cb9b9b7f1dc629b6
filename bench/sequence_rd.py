"""Sequence coding on real and simulated frame pairs: BD-rate of the second frame against intra (issue 18).

Each pair (first, second) is coded as the rover would: the first frame on its
own at quality q, the second frame once on its own (intra, the base codec) and
once against the first frame's decoded file (``pymars.encode(reference=...)``,
docs/bitstream.md §4.10), at the qualities ``--qualities``. BD-rate (PSNR) of the
second frame's predicted curve against its intra curve, per pair, with the
overlap fraction the rover's registration finds (``pymars._core.sequence_registration``)
and the encode times of both in the same run.

* **Real pairs**: every consecutive same-sol, same-camera pair of ../shared that
  bench/sequence_overlap_bound.py lists (MarsData Mastcam, Curiosity Navcam
  ``full_1024``), split by that script's registration score into overlapping
  (score < 0.6) and not overlapping.
* **Simulated pairs** (reported apart; real pairs decide): two 512 x 512 windows
  of one MarsScapes panorama (the first 6 panoramas, sorted by name, that are at
  least 1024 pixels wide) with 20 % and 50 % horizontal overlap, the second
  frame with what real sequences add: an
  exposure change (gain 0.94, offset +3), a 1-pixel vertical jitter, sensor
  noise (sigma 1.5 levels) and its own JPEG history (quality 90), the first
  frame with its own JPEG history.

Run::

    python bench/sequence_rd.py --json bench/results/sequence_rd.json      # ~10 min on one core
    python bench/sequence_rd.py --quick                                   # 6 real + 2 simulated pairs

Needs ../shared (skips with a message without it). Example of one pair's BD-rate:

    >>> import numpy as np
    >>> from pymars.data.synthetic import mars_like_scene
    >>> s = mars_like_scene(200, 330, seed=4, channels=1)
    >>> r = code_pair(np.ascontiguousarray(s[:, :256]), np.ascontiguousarray(s[:, 74:]), (40, 70))
    >>> r["bd_rate"] < -20, r["overlap"] > 0.6
    (True, True)
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
QUALITIES = (30, 50, 70, 85)
SIM_PANORAMAS = 6
SIM_SIZE = 512


def _psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def code_pair(first: np.ndarray, second: np.ndarray, qualities=QUALITIES) -> dict:
    """BD-rate of the second frame coded against the first (decoded) vs on its own, and both encode times."""
    import pymars
    from pymars import _core
    from pymars.evaluation.bdrate import bd
    from pymars.rover.encode import default_bundle
    from pymars.sequence import Reference, overlap

    bundle = default_bundle(second)
    px = second.shape[0] * second.shape[1]
    rows = []
    for q in qualities:
        ref = Reference.from_file(pymars.encode(first, q, model=bundle), model=bundle)
        t0 = time.perf_counter()
        intra = pymars.encode(second, q, model=bundle)
        t1 = time.perf_counter()
        pred = pymars.encode(second, q, model=bundle, reference=ref)
        t2 = time.perf_counter()
        rows.append({"quality": q, "intra_bpp": 8 * len(intra) / px, "pred_bpp": 8 * len(pred) / px,
                     "intra_psnr": _psnr(pymars.decode(intra), second),
                     "pred_psnr": _psnr(pymars.decode(pred, reference=ref), second),
                     "intra_s": t1 - t0, "pred_s": t2 - t1})
    reg = _core.sequence_registration(bundle.core, np.ascontiguousarray(second), ref.core())
    r = bd([x["intra_bpp"] for x in rows], [x["intra_psnr"] for x in rows],
           [x["pred_bpp"] for x in rows], [x["pred_psnr"] for x in rows])
    return {"bd_rate": r.bd_rate, "overlap": overlap(reg, second.shape, first.shape), "dy": reg["dy"],
            "dx": reg["dx"], "usable": reg["usable"], "rows": rows,
            "encode_s_intra": sum(x["intra_s"] for x in rows), "encode_s_pred": sum(x["pred_s"] for x in rows)}


def _jpeg(img: np.ndarray, q: int = 90) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB" if img.ndim == 3 else "L"))


def simulated_pairs(root: Path, count: int, seed: int = 0):
    """(name, first, second, nominal overlap) windows of MarsScapes panoramas with realistic differences."""
    from PIL import Image

    panos = sorted((root / "marsscapes_msl_mastcam_pano" / "images").glob("*.png"))
    rng = np.random.default_rng(seed)
    out = []
    for p in panos:
        img = np.asarray(Image.open(p).convert("RGB"))
        h, w = img.shape[:2]
        if h < SIM_SIZE or w < 2 * SIM_SIZE:
            continue
        for ov in (0.2, 0.5):
            step = int(round(SIM_SIZE * (1 - ov)))
            y0 = (h - SIM_SIZE) // 2
            a = img[y0 : y0 + SIM_SIZE, :SIM_SIZE]
            b = img[y0 + 1 : y0 + 1 + SIM_SIZE - 1, step : step + SIM_SIZE].astype(np.float64)  # 1-px jitter
            b = np.pad(b, ((0, 1), (0, 0), (0, 0)), mode="edge") * 0.94 + 3 + rng.normal(0, 1.5, (SIM_SIZE, SIM_SIZE, 3))
            b = np.clip(np.round(b), 0, 255).astype(np.uint8)
            out.append((f"{p.stem} overlap {ov:.0%}", _jpeg(np.ascontiguousarray(a)), _jpeg(b), ov))
        if len(out) >= 2 * count:
            break
    return out


def real_pairs(root: Path):
    """(name, first, second, bound-script score) of every consecutive same-sol, same-camera pair."""
    from PIL import Image

    from sequence_overlap_bound import frame_pairs, register

    out = []
    for camera, a, b in frame_pairs(root):
        A, B = np.asarray(Image.open(a)), np.asarray(Image.open(b))
        if A.shape != B.shape:
            continue
        gray = lambda x: x if x.ndim == 2 else x.mean(axis=2)  # noqa: E731
        s = register(gray(A), gray(B))
        out.append((f"{camera} {a.name} -> {b.name}", np.ascontiguousarray(A), np.ascontiguousarray(B), s["score"]))
    return out


def summarise(rows: list[dict]) -> dict:
    ok = [r["bd_rate"] for r in rows if np.isfinite(r["bd_rate"])]
    return {"pairs": len(rows), "mean_bd_rate": float(np.mean(ok)) if ok else None,
            "median_bd_rate": float(np.median(ok)) if ok else None,
            "best_bd_rate": float(min(ok)) if ok else None, "worst_bd_rate": float(max(ok)) if ok else None,
            "encode_time_ratio": (sum(r["encode_s_pred"] for r in rows) / max(1e-9, sum(r["encode_s_intra"] for r in rows)))
            if rows else None}


def run(root: Path, qualities=QUALITIES, quick: bool = False, progress: bool = True) -> dict:
    from tqdm import tqdm

    real = real_pairs(root)
    sim = simulated_pairs(root, 1 if quick else SIM_PANORAMAS)
    if quick:
        real = real[:6]
    result = {"qualities": list(qualities), "real": [], "simulated": []}
    jobs = [("real", n, a, b, s) for n, a, b, s in real] + [("simulated", n, a, b, s) for n, a, b, s in sim]
    for kind, name, a, b, s in tqdm(jobs, desc="pairs", disable=not progress):
        r = code_pair(a, b, qualities)
        r.update({"pair": name, ("score" if kind == "real" else "nominal_overlap"): s})
        result[kind].append(r)
    overlapping = [r for r in result["real"] if r["score"] < 0.6]
    apart = [r for r in result["real"] if r["score"] >= 0.6]
    result["summary"] = {"real_overlapping": summarise(overlapping), "real_not_overlapping": summarise(apart),
                         "simulated_20": summarise([r for r in result["simulated"] if r["nominal_overlap"] == 0.2]),
                         "simulated_50": summarise([r for r in result["simulated"] if r["nominal_overlap"] == 0.5])}
    return result


def table(result: dict) -> str:
    lines = ["| set | pairs | mean BD-rate | median | best | worst | encode time, predicted / intra |",
             "|---|---|---|---|---|---|---|"]
    for k, s in result["summary"].items():
        f = lambda v: "n/a" if v is None else f"{v:+.2f} %"  # noqa: E731
        lines.append(f"| {k} | {s['pairs']} | {f(s['mean_bd_rate'])} | {f(s['median_bd_rate'])} | "
                     f"{f(s['best_bd_rate'])} | {f(s['worst_bd_rate'])} | "
                     f"{'n/a' if s['encode_time_ratio'] is None else format(s['encode_time_ratio'], '.2f')}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qualities", default=",".join(map(str, QUALITIES)))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "mars"))
    args = ap.parse_args(argv)
    root = Path(args.data)
    if not root.exists():
        print(f"skipped: {root} not found (the real frames of ../shared are needed)")
        return 0
    res = run(root, tuple(int(q) for q in args.qualities.split(",")), quick=args.quick)
    res["command"] = "python bench/sequence_rd.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
