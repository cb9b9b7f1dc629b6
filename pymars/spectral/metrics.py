"""Image metrics of the thesis (RMSE, PCC, cosine similarity, SSIM) and a carbonate-detection score.

What it is for: the results table (docs/spectral.md) compares predicted and
true FAL composites, both HxWx3 uint8, on the 0-255 scale the thesis reports.

* RMSE, PCC (Pearson) and cosine similarity are taken over the pixels inside
  the footprint (input not all black), all three channels flattened: the black
  surround is 0 in both images by construction and would inflate PCC and cosine.
* SSIM is the usual Gaussian-window SSIM (Wang et al. 2004: 11x11, sigma 1.5,
  K1 = 0.01, K2 = 0.03, L = 255) per channel on the whole image, averaged.
* Averages hide the rare class, as the thesis found: carbonates show green in
  FAL and cover under 1 % of the pixels. :func:`carbonate_mask` marks a pixel
  green when G exceeds both R and B by more than :data:`GREEN_MARGIN` (of 255);
  :class:`DetectionCounts` pools true/false positives over a set of images for
  precision, recall, F1 and IoU. A detector that outputs a score per pixel
  (the UNet's carbonate head) needs a threshold: :func:`best_f1` finds the
  one of highest pooled F1, to be chosen on the val part and applied to test.

No perceptual metric: LPIPS needs pretrained weights that cannot be fetched
here (stlpips-pytorch is the one offline option and is not a dependency), so
the LPIPS column of the thesis is absent.

Example:
    >>> import numpy as np
    >>> a = np.full((16, 16, 3), 100, np.uint8); b = a.copy(); b[..., 0] = 110
    >>> m = image_metrics(b, a)
    >>> round(m["rmse"], 3), round(m["cosine"], 4)
    (5.774, 0.999)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A FAL pixel is "green" (carbonate-like) when G - max(R, B) exceeds this (0-255 scale).
GREEN_MARGIN = 8


def _check_pair(pred: np.ndarray, target: np.ndarray) -> None:
    if pred.shape != target.shape or pred.ndim != 3 or pred.shape[2] != 3:
        raise ValueError(f"expected two HxWx3 images of one shape, got {pred.shape} and {target.shape}")


def footprint(img: np.ndarray) -> np.ndarray:
    """Pixels inside the CRISM footprint: not black in every channel.

    Example:
        >>> import numpy as np
        >>> footprint(np.array([[[0, 0, 0], [0, 1, 0]]], np.uint8)).tolist()
        [[False, True]]
    """
    return np.asarray(img).max(axis=-1) > 0


def rmse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean square error (0-255 scale) over ``mask`` pixels (all if None).

    Example:
        >>> import numpy as np
        >>> rmse(np.zeros((2, 2, 3)), np.full((2, 2, 3), 3.0))
        3.0
    """
    d = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    d = d[mask] if mask is not None else d
    return float(np.sqrt(np.mean(d ** 2))) if d.size else float("nan")


def pcc(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation of the flattened values (NaN when either side is constant).

    Example:
        >>> import numpy as np
        >>> x = np.arange(12.0).reshape(2, 2, 3)
        >>> pcc(x, 2 * x + 1), pcc(x, -x)
        (1.0, -1.0)
    """
    a = np.asarray(pred, np.float64)
    b = np.asarray(target, np.float64)
    a, b = (a[mask], b[mask]) if mask is not None else (a, b)
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float(np.clip((a * b).sum() / den, -1, 1)) if den > 0 else float("nan")


def cosine(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Cosine similarity of the flattened values.

    Example:
        >>> import numpy as np
        >>> cosine(np.array([[[1.0, 0, 0]]]), np.array([[[1.0, 1, 0]]]))
        0.7071067811865475
    """
    a = np.asarray(pred, np.float64)
    b = np.asarray(target, np.float64)
    a, b = (a[mask], b[mask]) if mask is not None else (a, b)
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def _gauss_filter(x: np.ndarray, sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    """Separable Gaussian filter of a 2-D array, 'valid' region only (as the reference SSIM)."""
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    n = 2 * radius + 1
    rows = sum(k[i] * x[i:x.shape[0] - n + 1 + i] for i in range(n))
    return sum(k[i] * rows[:, i:x.shape[1] - n + 1 + i] for i in range(n))


def ssim(pred: np.ndarray, target: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM over channels (Gaussian 11x11, sigma 1.5); images must be at least 11x11.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype(np.uint8)
        >>> ssim(x, x), round(ssim(x, np.zeros_like(x)), 4)
        (1.0, 0.0)
    """
    _check_pair(pred, target)
    if min(pred.shape[:2]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11, got {pred.shape[:2]}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for ch in range(pred.shape[2]):
        x = pred[..., ch].astype(np.float64)
        y = target[..., ch].astype(np.float64)
        mx, my = _gauss_filter(x), _gauss_filter(y)
        sxx = _gauss_filter(x * x) - mx * mx
        syy = _gauss_filter(y * y) - my * my
        sxy = _gauss_filter(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(s.mean())
    return float(np.mean(vals))


def carbonate_mask(fal: np.ndarray, margin: int = GREEN_MARGIN) -> np.ndarray:
    """Green (carbonate-like) FAL pixels: ``G - max(R, B) > margin``, inside the footprint.

    Example:
        >>> import numpy as np
        >>> carbonate_mask(np.array([[[100, 120, 100], [100, 105, 100], [0, 0, 0]]], np.uint8)).tolist()
        [[True, False, False]]
    """
    f = np.asarray(fal, np.int32)
    return (f[..., 1] - np.maximum(f[..., 0], f[..., 2]) > margin) & footprint(fal)


@dataclass
class DetectionCounts:
    """Pooled pixel counts of carbonate detection over a set of images."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> "DetectionCounts":
        """Count one image pair (FAL uint8) into the totals; returns self.

        Example:
            >>> import numpy as np
            >>> g = np.array([[[50, 90, 50], [50, 50, 50]]], np.uint8)
            >>> DetectionCounts().add(g, g).add(g[:, ::-1], g).scores()["f1"]
            0.5
        """
        p, t = carbonate_mask(pred), carbonate_mask(target)
        if mask is not None:
            p, t = p & mask, t & mask
        return self.add_masks(p, t)

    def add_masks(self, pred: np.ndarray, truth: np.ndarray) -> "DetectionCounts":
        """Count one pair of boolean carbonate masks (a detector's, the target's) into the totals; returns self.

        Example:
            >>> import numpy as np
            >>> DetectionCounts().add_masks(np.array([True, True]), np.array([True, False])).scores()["precision"]
            0.5
        """
        self.tp += int((pred & truth).sum())
        self.fp += int((pred & ~truth).sum())
        self.fn += int((~pred & truth).sum())
        return self

    def scores(self) -> dict[str, float]:
        """Precision, recall, F1 and IoU of the green class (NaN where undefined).

        Example:
            >>> DetectionCounts(tp=1, fp=1, fn=2).scores()["precision"]
            0.5
        """
        def ratio(a, b):
            return a / b if b else float("nan")

        p, r = ratio(self.tp, self.tp + self.fp), ratio(self.tp, self.tp + self.fn)
        f1 = ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)
        return {"precision": p, "recall": r, "f1": f1, "iou": ratio(self.tp, self.tp + self.fp + self.fn),
                "true_pixels": self.tp + self.fn, "predicted_pixels": self.tp + self.fp}


def best_f1(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Highest pooled F1 of ``scores >= threshold`` over all thresholds, and that threshold (the lowest
    score still marked positive); (nan, inf) when ``truth`` has no positive.

    Example:
        >>> import numpy as np
        >>> best_f1(np.array([0.9, 0.8, 0.3, 0.1]), np.array([True, False, True, False]))
        (0.8, 0.3)
    """
    s, t = np.asarray(scores, np.float64).ravel(), np.asarray(truth, bool).ravel()
    if not t.any():
        return float("nan"), float("inf")
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    last = np.r_[s[1:] != s[:-1], True]  # a threshold takes every tied score together
    tp = np.cumsum(t)[last]
    n = np.arange(1, len(s) + 1)[last]
    f1 = 2 * tp / (n + t.sum())
    i = int(np.argmax(f1))
    return float(f1[i]), float(s[last][i])


def image_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """RMSE, PCC and cosine over the footprint (``mask``, default: the target's) and SSIM on the whole image.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(1).integers(1, 255, (16, 16, 3)).astype(np.uint8)
        >>> image_metrics(x, x)
        {'rmse': 0.0, 'pcc': 1.0, 'cosine': 1.0, 'ssim': 1.0}
    """
    _check_pair(pred, target)
    if mask is None:
        mask = footprint(target)
    return {"rmse": rmse(pred, target, mask), "pcc": pcc(pred, target, mask), "cosine": cosine(pred, target, mask),
            "ssim": ssim(pred, target)}
