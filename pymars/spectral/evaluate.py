"""Evaluation on the held-out scenes: the results table of docs/spectral.md (thesis Table 5.7 style).

What it is for: ``pymars spectral evaluate`` and ``bench/spectral_eval.py``
score weights folders on one part of the documented split
(:func:`pymars.spectral.pairs.split_scenes`, ``test`` by default) with the
thesis' metrics plus the carbonate-detection score
(:mod:`pymars.spectral.metrics`). Every image is predicted through ONNX
Runtime, i.e. exactly what ``pymars spectral predict`` ships. A row "with
metadata" passes each scene's repaired latitude, longitude and site; "without"
passes none (the models' learned null embedding). A trivial "input as
output" row shows what the metrics give for copying the CaSSIS composite.

A UNet with the carbonate detection head is scored twice: its FAL output
with the colour rule like every model, and its head as a detector of its own
(:func:`detection_row`): logit above a threshold chosen on the ``val`` part
(:func:`choose_carbonate_threshold`, highest pooled F1 there), never on test.

Example:
    >>> import numpy as np
    >>> from pymars.spectral.pairs import ScenePair
    >>> x = np.random.default_rng(0).integers(1, 255, (16, 16, 3)).astype(np.uint8)
    >>> r = score_predictions([x], [ScenePair("s", x, x, None)], "copy")
    >>> r["rmse"], r["carbonate"]["f1"] != r["carbonate"]["f1"] or r["carbonate"]["f1"] == 1.0
    (0.0, True)
"""
from __future__ import annotations

import time

import numpy as np

from pymars.spectral.metrics import DetectionCounts, best_f1, carbonate_mask, footprint, image_metrics
from pymars.spectral.pairs import ScenePair, load_pairs, split_scenes
from pymars.spectral.predict import SpectralPredictor

METRICS = ("rmse", "pcc", "cosine", "ssim")


def held_out_pairs(part: str = "test") -> list[ScenePair]:
    """The scenes of one part (``train``, ``val``, ``test``) of the documented split, from ../shared.

    Example:
        >>> from pymars.spectral.pairs import pairs_dir
        >>> pairs_dir() is None or len(held_out_pairs("test")) == 15
        True
    """

    if part not in ("train", "val", "test"):
        raise ValueError(f"part must be train, val or test, got {part!r}")
    pairs = load_pairs()
    parts = split_scenes([p.scene for p in pairs], {p.scene: p.meta for p in pairs})
    return [p for p in pairs if p.scene in parts[part]]


def score_predictions(preds: list[np.ndarray], pairs: list[ScenePair], name: str,
                      seconds: list[float] | None = None) -> dict:
    """Mean metrics over images, pooled carbonate scores and per-scene rows for one model setting.

    Example:
        >>> import numpy as np
        >>> from pymars.spectral.pairs import ScenePair
        >>> a = np.full((12, 12, 3), 50, np.uint8); b = a.copy(); b[..., 1] = 70
        >>> r = score_predictions([b], [ScenePair("s", a, a, None)], "x")
        >>> r["carbonate"]["predicted_pixels"], r["carbonate"]["true_pixels"]
        (144, 0)
    """
    counts = DetectionCounts()
    per = []
    for pred, p in zip(preds, pairs):
        m = image_metrics(pred, p.fal)
        counts.add(pred, p.fal)
        per.append({"scene": p.scene, **m})
    row = {"name": name, "images": len(per), **{k: float(np.nanmean([r[k] for r in per])) for k in METRICS},
           "carbonate": counts.scores(), "per_scene": per}
    if seconds:
        row["seconds_per_image"] = float(np.mean(seconds))
    return row


def evaluate_weights(weights, pairs: list[ScenePair], with_meta: bool, name: str, threads: int = 1,
                     progress: bool = False, **predict_kw) -> dict:
    """Predict every pair with a weights folder (ONNX Runtime) and score it; see :func:`score_predictions`.

    Example:
        >>> evaluate_weights("no-such-model", [], True, "x")
        Traceback (most recent call last):
        ...
        FileNotFoundError: spectral weights 'no-such-model' not found ...
    """
    from tqdm import tqdm

    predictor = SpectralPredictor(weights, threads=threads)
    preds, secs = [], []
    for p in tqdm(pairs, desc=name, disable=not progress, leave=False):
        kw = dict(predict_kw)
        if with_meta and p.meta is not None:
            kw.update(lat=p.meta.lat, lon=p.meta.lon, site=p.meta.site)
        t0 = time.perf_counter()
        preds.append(predictor.predict(p.cassis, **kw))
        secs.append(time.perf_counter() - t0)
    return score_predictions(preds, pairs, name, secs)


def format_table(rows: list[dict]) -> str:
    """Markdown table: RMSE (0-255), PCC, cosine, SSIM, and carbonate precision / recall / F1.

    Example:
        >>> row = {"name": "m", "rmse": 1.0, "pcc": 0.5, "cosine": 0.9, "ssim": 0.8,
        ...        "carbonate": {"precision": 0.1, "recall": 0.2, "f1": float("nan")}}
        >>> print(format_table([row]).splitlines()[2])
        | m | 1.00 | 0.500 | 0.900 | 0.800 | 0.100 | 0.200 | - |
    """
    def f(v, d):
        return "-" if v is None or v != v else f"{v:.{d}f}"

    lines = ["| model | RMSE | PCC | cosine | SSIM | carb. precision | carb. recall | carb. F1 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["carbonate"]
        lines.append(f"| {r['name']} | {f(r['rmse'], 2)} | {f(r['pcc'], 3)} | {f(r['cosine'], 3)} | "
                     f"{f(r['ssim'], 3)} | {f(c['precision'], 3)} | {f(c['recall'], 3)} | {f(c['f1'], 3)} |")
    return "\n".join(lines)


def carbonate_head_outputs(weights, pairs: list[ScenePair], with_meta: bool,
                           threads: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """FAL predictions and carbonate logit maps (-inf outside the footprint) of a UNet with the head.

    Example:
        >>> carbonate_head_outputs("no-such-model", [], True)
        Traceback (most recent call last):
        ...
        FileNotFoundError: spectral weights 'no-such-model' not found ...
    """
    predictor = SpectralPredictor(weights, threads=threads)
    fals, logits = [], []
    for p in pairs:
        kw = {"lat": p.meta.lat, "lon": p.meta.lon, "site": p.meta.site} if with_meta and p.meta else {}
        fal, logit = predictor.predict_with_carbonate(p.cassis, **kw)
        fals.append(fal)
        logits.append(logit)
    return fals, logits


def choose_carbonate_threshold(logits: list[np.ndarray], pairs: list[ScenePair]) -> tuple[float, float]:
    """The logit threshold of highest F1 pooled over the pairs' footprint pixels, and that F1. Meant for the
    val part; the test part only ever sees the threshold chosen here.

    Example:
        >>> import numpy as np
        >>> from pymars.spectral.pairs import ScenePair
        >>> fal = np.full((2, 2, 3), 50, np.uint8); fal[0, 0, 1] = 90  # one green pixel
        >>> logit = np.array([[3.0, 1.0], [0.0, -1.0]], np.float32)
        >>> choose_carbonate_threshold([logit], [ScenePair("s", fal, fal, None)])
        (3.0, 1.0)
    """
    scores = np.concatenate([lg[footprint(p.cassis)] for lg, p in zip(logits, pairs)])
    truth = np.concatenate([carbonate_mask(p.fal)[footprint(p.cassis)] for p in pairs])
    f1, thr = best_f1(scores, truth)
    return thr, f1


def detection_row(logits: list[np.ndarray], pairs: list[ScenePair], threshold: float, name: str) -> dict:
    """A table row for the carbonate head as a detector: pixel positive when ``logit >= threshold``; the image
    metrics are NaN (shown "-"): the row scores a mask, not a FAL image.

    Example:
        >>> import numpy as np
        >>> from pymars.spectral.pairs import ScenePair
        >>> fal = np.full((2, 2, 3), 50, np.uint8); fal[0, 0, 1] = 90
        >>> r = detection_row([np.array([[3.0, 1.0], [0.0, -1.0]])], [ScenePair("s", fal, fal, None)], 1.0, "head")
        >>> r["carbonate"]["precision"], r["carbonate"]["recall"], r["rmse"] != r["rmse"]
        (0.5, 1.0, True)
    """
    counts = DetectionCounts()
    per = []
    for lg, p in zip(logits, pairs):
        inside = footprint(p.cassis)
        pred, truth = (lg >= threshold) & inside, carbonate_mask(p.fal) & inside
        counts.add_masks(pred, truth)
        c = DetectionCounts().add_masks(pred, truth)
        per.append({"scene": p.scene, "tp": c.tp, "fp": c.fp, "fn": c.fn})
    nan = float("nan")
    return {"name": name, "images": len(pairs), **{k: nan for k in METRICS}, "carbonate": counts.scores(),
            "threshold": float(threshold), "per_scene": per}


def save_carbonate_threshold(folder, threshold: float, chosen: dict) -> None:
    """Record the head's val-chosen decision threshold in the weights folder's config.json
    (``carbonate_head``: ``threshold`` and how it was chosen), so predictions can apply it.

    Example:
        >>> import json, os, tempfile
        >>> d = tempfile.mkdtemp(); open(os.path.join(d, "config.json"), "w").write("{}")
        2
        >>> save_carbonate_threshold(d, 1.5, {"part": "val", "f1": 0.2})
        >>> json.load(open(os.path.join(d, "config.json")))["carbonate_head"]["threshold"]
        1.5
    """
    import json
    from pathlib import Path

    from pymars.clio import atomic_path

    path = Path(folder) / "config.json"
    cfg = json.loads(path.read_text())
    cfg["carbonate_head"] = {"threshold": float(threshold), **chosen}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(cfg, indent=2))
