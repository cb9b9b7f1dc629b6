"""Semantic classes of 128x128 patches: the MarsScapes 8 -> 4 mapping and the labelled patch set.

What it is for: MarsQE groups patches into K = 4 texture-distinct terrain
classes (sand, soil, rock, sky) to build its reference dictionary and to
restrict non-local attention. The paper uses an off-the-shelf SegFormer that is
not available here, so pymars trains a small patch classifier
(:class:`PatchClassifier`: softmax regression on 18 colour, gradient and LBP
texture statistics, the LBP from the project's C++ matcher) on the MarsScapes
colour masks in ``../shared/data/mars``. A CNN was tried first; on this
shared 2-core CPU its training did not fit the budget, and the texture
statistics are what separates these classes anyway. This module holds the
colour table, the 8 -> 4 mapping, the labelled 128x128 patches with the
development tiles held out, and the classifier.

The mapping (documented in docs/enhance.md), by texture rather than by name:

============  =========================  =======
colour        MarsScapes class            class
============  =========================  =======
(0,0,255)     soil                       soil
(255,0,0)     gravel                     soil    (loose regolith with pebbles)
(255,0,255)   sand                       sand
(0,255,0)     bedrock                    rock
(255,255,0)   big rock                   rock
(170,85,0)    ridge                      rock    (outcrop edges, distant relief)
(34,56,19)    sky                        sky
(0,255,255)   unknown / steep slope      ignore  (sources disagree; 0.2 %)
(128,128,128) unresolved (near horizon)  ignore
(0,0,0)       no-data                    ignore
============  =========================  =======

A patch's class is the majority class of its labelled pixels, when at least
half of the patch is labelled (otherwise it is not used).

What it must not do: read a development tile's pixels into a training set
(:func:`labelled_patches` excludes every selected ``dev_marsscapes`` window,
grown by a margin).

Example:
    >>> import numpy as np
    >>> rgb = np.array([[[0, 0, 255], [255, 0, 0]], [[34, 56, 19], [0, 0, 0]]], np.uint8)
    >>> class_map(rgb).tolist()
    [[1, 1], [3, 255]]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pymars.evaluation.protocol import black_mask, group_files, load_8bit, mars_data_dir, selected_windows
from pymars.texture import lbp_histograms, rgb_to_gray

#: The K = 4 classes, in index order.
CLASS_NAMES = ("sand", "soil", "rock", "sky")
SAND, SOIL, ROCK, SKY = range(4)
IGNORE = 255
#: Patch side S of the paper (classification, matching and the main network's patches).
PATCH = 128

#: MarsScapes colour -> (source name, class index or IGNORE).
COLOUR_TABLE: dict[tuple[int, int, int], tuple[str, int]] = {
    (0, 0, 255): ("soil", SOIL),
    (255, 0, 0): ("gravel", SOIL),
    (255, 0, 255): ("sand", SAND),
    (0, 255, 0): ("bedrock", ROCK),
    (255, 255, 0): ("big rock", ROCK),
    (170, 85, 0): ("ridge", ROCK),
    (34, 56, 19): ("sky", SKY),
    (0, 255, 255): ("unknown / steep slope", IGNORE),
    (128, 128, 128): ("unresolved grey", IGNORE),
    (0, 0, 0): ("no-data", IGNORE),
}


def class_map(label_rgb: np.ndarray) -> np.ndarray:
    """Per-pixel class index (uint8, IGNORE for unmapped or unknown colours) of a MarsScapes colour mask.

    Example:
        >>> class_map(np.array([[[255, 0, 255], [1, 2, 3]]], np.uint8)).tolist()
        [[0, 255]]
    """
    if label_rgb.ndim != 3 or label_rgb.shape[2] != 3:
        raise ValueError(f"a colour mask is HxWx3, got shape {label_rgb.shape}")
    key = (label_rgb[..., 0].astype(np.int32) << 16) | (label_rgb[..., 1].astype(np.int32) << 8) | label_rgb[..., 2]
    out = np.full(label_rgb.shape[:2], IGNORE, np.uint8)
    for (r, g, b), (_, k) in COLOUR_TABLE.items():
        if k != IGNORE:
            out[key == ((r << 16) | (g << 8) | b)] = k
    return out


def patch_class(classes: np.ndarray, min_labelled: float = 0.5) -> int:
    """Majority class of a patch's labelled pixels, or IGNORE when under ``min_labelled`` of it is labelled.

    Example:
        >>> m = np.full((4, 4), SOIL, np.uint8); m[:1] = SKY
        >>> patch_class(m), patch_class(np.full((4, 4), IGNORE, np.uint8))
        (1, 255)
    """
    counts = np.bincount(classes.ravel(), minlength=256)[: len(CLASS_NAMES)]
    if counts.sum() < min_labelled * classes.size:
        return IGNORE
    return int(np.argmax(counts))


def label_file(image_path: Path) -> Path:
    """The colour mask that belongs to a MarsScapes panorama (it may not exist: 6 of 74 have none).

    Example:
        >>> label_file(Path("/d/marsscapes_msl_mastcam_pano/images/122_1.png")).name
        '122_1_color.png'
    """
    return image_path.parent.parent / "labels_semantic_color" / f"{image_path.stem}_color.png"


def labelled_patches(stride: int = 64, margin: int = 64, held_out: bool = True, progress: bool = True,
                     root: Path | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw 128x128 patches of the labelled MarsScapes panoramas, their classes and names.

    ``held_out=True`` (training) skips every patch that touches a selected
    development window grown by ``margin``; ``held_out=False`` returns only
    the patches inside development windows (to score the classifier on pixels
    it never saw). Patches with over 1 % black no-data or under half labelled
    pixels are dropped.

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or len(labelled_patches(progress=False)[0]) > 1000
        True
    """
    from PIL import Image
    from tqdm import tqdm

    root = root or mars_data_dir()
    if root is None:
        raise FileNotFoundError("labelled patches need ../shared/data/mars (or set PYMARS_SHARED)")
    held: dict[Path, list[tuple[int, int]]] = {}
    for path, y, x in selected_windows("dev_marsscapes", root):
        held.setdefault(path, []).append((y, x))
    patches, labels, names = [], [], []
    for path in tqdm(group_files("dev_marsscapes", root), desc="labelled panoramas", disable=not progress):
        lf = label_file(path)
        if not lf.is_file():
            continue
        img = load_8bit(path)
        with Image.open(lf) as im:
            cls = class_map(np.asarray(im.convert("RGB")))
        dev = np.zeros(img.shape[:2], bool)
        for y, x in held.get(path, []):
            if held_out:
                dev[max(0, y - margin): y + 256 + margin, max(0, x - margin): x + 256 + margin] = True
            else:
                dev[y: y + 256, x: x + 256] = True
        black = black_mask(img)
        h, w = img.shape[:2]
        for y in range(0, h - PATCH + 1, stride):
            for x in range(0, w - PATCH + 1, stride):
                win = (slice(y, y + PATCH), slice(x, x + PATCH))
                inside = dev[win]
                if (held_out and inside.any()) or (not held_out and not inside.all()):
                    continue
                if black[win].mean() > 0.01:
                    continue
                k = patch_class(cls[win])
                if k == IGNORE:
                    continue
                patches.append(img[win])
                labels.append(k)
                names.append(f"{path.name}:{y},{x}")
    if not patches:
        return np.zeros((0, PATCH, PATCH, 3), np.uint8), np.zeros(0, np.uint8), []
    return np.stack(patches), np.array(labels, np.uint8), names


#: Names of the features of :func:`patch_features`, in order.
FEATURES = ("mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "grad", "grad_half",
            *(f"lbp_riu2_{i}" for i in range(10)))


def patch_features(patches: np.ndarray) -> np.ndarray:
    """(n, 18) float64 features of (n, S, S, 3) uint8 patches: colour means and spreads (/255), mean
    absolute gray gradient at full and half resolution (/255), and the normalised rotation-invariant
    uniform LBP histogram (10 bins, C++ matcher).

    Example:
        >>> f = patch_features(np.full((2, 16, 16, 3), 128, np.uint8))
        >>> f.shape, round(float(f[0, 0]), 3), float(f[0, 6])
        ((2, 18), 0.502, 0.0)
    """

    patches = np.asarray(patches)
    if patches.ndim != 4 or patches.shape[3] != 3 or patches.dtype != np.uint8:
        raise ValueError(f"expected (n, S, S, 3) uint8 patches, got {patches.shape} {patches.dtype}")
    out = np.empty((len(patches), len(FEATURES)), np.float64)
    for i, p in enumerate(patches):
        x = p.astype(np.float64) / 255.0
        gray = rgb_to_gray(np.ascontiguousarray(p))
        g = gray.astype(np.float64) / 255.0
        half = g[: g.shape[0] // 2 * 2, : g.shape[1] // 2 * 2]
        half = 0.25 * (half[::2, ::2] + half[1::2, ::2] + half[::2, 1::2] + half[1::2, 1::2])
        h = np.asarray(lbp_histograms(gray, "riu2"), np.float64)
        out[i, :3] = x.mean((0, 1))
        out[i, 3:6] = x.std((0, 1))
        out[i, 6] = 0.5 * (np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())
        out[i, 7] = 0.5 * (np.abs(np.diff(half, axis=0)).mean() + np.abs(np.diff(half, axis=1)).mean())
        out[i, 8:] = h / h.sum()
    return out


class PatchClassifier:
    """Softmax regression over standardised :func:`patch_features`: patches -> class indices.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> sky = np.full((6, 32, 32, 3), (200, 160, 120), np.uint8)
        >>> rock = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
        >>> clf = PatchClassifier.fit(np.concatenate([sky, rock]), np.repeat([SKY, ROCK], 6), steps=200)
        >>> clf(np.concatenate([sky[:1], rock[:1]])).tolist()
        [3, 2]
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, weight: np.ndarray, bias: np.ndarray):
        self.mean, self.scale, self.weight, self.bias = mean, scale, weight, bias

    def logits(self, patches: np.ndarray) -> np.ndarray:
        return ((patch_features(patches) - self.mean) / self.scale) @ self.weight + self.bias

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        if len(patches) == 0:
            return np.zeros(0, np.int64)
        return self.logits(patches).argmax(1)

    @classmethod
    def fit(cls, patches: np.ndarray, labels: np.ndarray, steps: int = 2000, lr: float = 0.5,
            l2: float = 1e-3, features: np.ndarray | None = None) -> "PatchClassifier":
        """Full-batch gradient descent on the class-balanced cross-entropy (deterministic)."""
        f = patch_features(patches) if features is None else features
        mean, scale = f.mean(0), f.std(0) + 1e-8
        z = (f - mean) / scale
        k = len(CLASS_NAMES)
        y = np.eye(k)[labels]
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        # Balanced: every class weighs the same in the loss, whatever its share of the patches.
        sw = (1.0 / np.maximum(counts, 1))[labels] / np.count_nonzero(counts)
        w, b = np.zeros((z.shape[1], k)), np.zeros(k)
        for _ in range(steps):
            logit = z @ w + b
            logit -= logit.max(1, keepdims=True)
            p = np.exp(logit)
            p /= p.sum(1, keepdims=True)
            g = (p - y) * sw[:, None]
            w -= lr * (z.T @ g + l2 * w)
            b -= lr * g.sum(0)
        return cls(mean, scale, w, b)

    def to_json(self) -> dict:
        return {"features": list(FEATURES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weight": self.weight.tolist(), "bias": self.bias.tolist(), "classes": list(CLASS_NAMES)}

    @classmethod
    def from_json(cls, d: dict) -> "PatchClassifier":
        if list(d["features"]) != list(FEATURES):
            raise ValueError("classifier file was made with other features")
        return cls(*(np.asarray(d[k], np.float64) for k in ("mean", "scale", "weight", "bias")))


def confusion(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """4x4 confusion counts (rows: truth, columns: prediction).

    Example:
        >>> confusion(np.array([0, 1, 1]), np.array([0, 1, 2]))[1].tolist()
        [0, 1, 1, 0]
    """
    k = len(CLASS_NAMES)
    return np.bincount(np.asarray(truth) * k + np.asarray(predicted), minlength=k * k).reshape(k, k)
