"""MarsQE's semantic reference dictionary and its patch matching (Section IV-A, Eq. 4).

What it is for: for every 128x128 patch of a compressed image, a raw reference
patch of the same semantic class with the most similar texture, and that
reference's compressed twin (TEM compares the input with the compressed
reference and copies blocks of the raw one).

* Construction (:func:`choose_references`): the raw labelled patches of each
  class (pymars.enhance.classes) are described by their uniform LBP histogram
  of the gray patch (the project's C++ matcher, pymars.texture), clustered by
  k-medoids on the fixed-point Jensen-Shannon divergence (the same routine as
  REMAC's library, pymars.remac.build), and the N_k medoids become the class's
  references. The Calinski-Harabasz index of the joint clustering (all
  classes, Hellinger embedding of the histograms) is reported for every N_k
  tried, as the paper does to justify N_k = 6.
* Matching (:meth:`Dictionary.match`): ``argmin_i D_KL(LBP(R^_i^k) || LBP(P_comp))``
  over the compressed references of the patch's class, computed by
  ``pymars.texture.nearest_histogram`` (fixed point, ties to the lowest index).

The dictionary's pixels are crops of ../shared images, which must not be
committed: a shipped model carries only the *recipe* (source file, window,
class, SHA-256 of the pixels; :meth:`Dictionary.recipe`) and rebuilds the
pixels from ../shared (:func:`from_recipe`), refusing when a hash differs.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> flat = np.full((16, 16, 3), 120, np.uint8)
    >>> noisy = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    >>> d = Dictionary(np.stack([flat, noisy]), np.array([1, 1]), ["flat", "noisy"])
    >>> d.compress(lambda p: p)  # identity "codec": compressed twins are the raw patches
    >>> d.match(noisy, 1)
    1
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pymars.clio import atomic_path
from pymars.enhance.classes import CLASS_NAMES, PATCH
from pymars.evaluation.protocol import load_8bit, mars_data_dir, shared_dir
from pymars.texture import lbp_histograms, nearest_histogram, rgb_to_gray
from pymars.texture.clustering import calinski_harabasz, js_matrix, k_medoids

#: LBP variant used for matching (59 bins: rotation-variant uniform patterns).
LBP_VARIANT = "uniform"


def lbp_histogram(patch: np.ndarray) -> np.ndarray:
    """Uniform LBP histogram (uint32, 59 bins) of a patch's gray image, from the C++ matcher.

    Example:
        >>> int(lbp_histogram(np.zeros((8, 8, 3), np.uint8)).sum())
        64
    """

    gray = rgb_to_gray(np.ascontiguousarray(patch)) if patch.ndim == 3 else np.ascontiguousarray(patch)
    return np.asarray(lbp_histograms(gray, LBP_VARIANT), np.uint32)


def pixel_hash(patch: np.ndarray) -> str:
    """SHA-256 (hex, first 16 characters) of a patch's bytes, shape included.

    Example:
        >>> pixel_hash(np.zeros((2, 2), np.uint8))
        '660c5b93b24f779f'
    """
    return hashlib.sha256(repr(patch.shape).encode() + np.ascontiguousarray(patch).tobytes()).hexdigest()[:16]


@dataclass
class Dictionary:
    """Raw reference patches (N, S, S, 3) uint8, their classes (N,), names, and (after
    :meth:`compress`) their compressed twins and those twins' LBP histograms."""

    raw: np.ndarray
    classes: np.ndarray
    names: list[str]
    compressed: np.ndarray | None = None
    histograms: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.raw)

    def as_gray(self) -> "Dictionary":
        """The same patches made gray (BT.601 luma as three equal channels), not yet compressed: the references
        of a model trained on gray images (``enhance-train cache --gray``), at training and at inference alike.

        Example:
            >>> d = Dictionary(np.full((1, 4, 4, 3), (200, 100, 50), np.uint8), np.zeros(1, np.uint8), ["a:0,0"])
            >>> d.as_gray().raw[0, 0, 0].tolist(), d.as_gray().compressed is None
            ([124, 124, 124], True)
        """
        from dataclasses import replace

        from pymars.enhance.codecs import gray_rgb

        return replace(self, raw=np.stack([gray_rgb(p) for p in self.raw]), compressed=None, histograms=None)

    def compress(self, codec: Callable[[np.ndarray], np.ndarray]) -> None:
        """Fill the compressed twins with ``codec(raw patch) -> decoded patch`` and index their textures."""
        self.compressed = np.stack([codec(p) for p in self.raw])
        self.histograms = np.stack([lbp_histogram(p) for p in self.compressed])

    def match(self, patch: np.ndarray, cls: int) -> int:
        """Index (into the whole dictionary) of Eq. 4's reference for a compressed patch of class ``cls``.

        A class with no reference falls back to the whole dictionary, so that
        a reduced dictionary (the ablations) still answers.
        """

        if self.histograms is None:
            raise RuntimeError("call Dictionary.compress(codec) before matching")
        idx = np.flatnonzero(self.classes == cls)
        if len(idx) == 0:
            idx = np.arange(len(self))
        i, _ = nearest_histogram(lbp_histogram(patch), np.ascontiguousarray(self.histograms[idx]), "kl")
        return int(idx[i])

    def recipe(self) -> list[dict]:
        """What a model card and a weights folder store instead of pixels: name, class, hash.

        Example:
            >>> Dictionary(np.zeros((1, 2, 2, 3), np.uint8), np.array([3]), ["x.png:0,0"]).recipe()[0]["class"]
            'sky'
        """
        return [{"name": n, "class": CLASS_NAMES[int(k)], "sha256_16": pixel_hash(p)}
                for n, k, p in zip(self.names, self.classes, self.raw)]

    def save(self, path: str | os.PathLike) -> None:
        """Write the raw patches, classes and names to an .npz (under runs/: never commit it)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, raw=self.raw, classes=self.classes, names=np.array(self.names))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Dictionary":
        with np.load(path) as z:
            return cls(z["raw"], z["classes"], [str(s) for s in z["names"]])


def calinski_harabasz_by_size(histograms: np.ndarray, labels: np.ndarray, sizes=(3, 6, 9, 12),
                              limit: int = 240) -> tuple[dict[int, float], dict[int, dict[int, np.ndarray]]]:
    """CH index of the joint clustering (every class cut into N medoid clusters) for each N, and the medoids.

    ``limit`` candidates per class are kept (evenly spread) to bound the
    O(n^2) divergence matrix. Returns ({N: CH}, {N: {class: candidate indices of the medoids}}).

    Example:
        >>> rng = np.random.default_rng(1)
        >>> h = np.concatenate([rng.multinomial(500, p, 10) for p in np.eye(4) * 0.8 + 0.05]).astype(np.uint32)
        >>> ch, med = calinski_harabasz_by_size(h, np.repeat([0, 1], 20), sizes=(2,))
        >>> ch[2] > 10, sorted(len(m) for m in med[2].values())
        (True, [2, 2])
    """

    per_class = {}
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        if len(idx) > limit:
            idx = idx[np.linspace(0, len(idx) - 1, limit).round().astype(int)]
        per_class[int(k)] = (idx, js_matrix(histograms[idx]))
    points = np.sqrt(histograms / histograms.sum(1, keepdims=True))
    scores, medoids = {}, {}
    for n in sizes:
        all_idx, all_lab, meds = [], [], {}
        for k, (idx, dist) in per_class.items():
            lab, med = k_medoids(dist, n)
            meds[k] = idx[np.sort(med)]
            all_idx.append(idx)
            all_lab.append(lab + 1000 * k)
        scores[n] = calinski_harabasz(points[np.concatenate(all_idx)], np.concatenate(all_lab))
        medoids[n] = meds
    return scores, medoids


def choose_references(patches: np.ndarray, labels: np.ndarray, names: list[str],
                      sizes=(1, 3, 6, 9, 12)) -> tuple[dict[int, Dictionary], dict[int, float]]:
    """One dictionary per size N_k in ``sizes`` (the N_k medoids of every class) and the CH index of each.

    Each size is its own k-medoids run (not a prefix of a larger one), as
    the paper rebuilds its dictionary for every N_k it compares.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> p = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8); p[6:] //= 8
        >>> dicts, ch = choose_references(p, np.repeat([0, 3], 6), [str(i) for i in range(12)], sizes=(2,))
        >>> dicts[2].classes.tolist(), len(dicts[2])
        ([0, 0, 3, 3], 4)
    """
    hist = np.stack([lbp_histogram(p) for p in patches]).astype(np.uint32)
    scores, medoids = calinski_harabasz_by_size(hist, labels, sizes)
    out = {}
    for n, meds in medoids.items():
        pick, cls = [], []
        for k in sorted(meds):
            pick.extend(meds[k].tolist())
            cls.extend([k] * len(meds[k]))
        pick = np.array(pick)
        out[n] = Dictionary(patches[pick], np.array(cls, np.uint8), [names[i] for i in pick])
    return out, scores


def from_recipe(recipe: list[dict], root: Path | None = None) -> Dictionary:
    """Rebuild a shipped dictionary's pixels from ../shared, checking every hash.

    Each name is ``<panorama file>:<y>,<x>`` in a MarsScapes panorama at native
    resolution; the patch side is 128.
    """

    root = root or mars_data_dir()
    if root is None:

        raise FileNotFoundError(
            f"MarsQE rebuilds its reference dictionary from the shared data set, not found at {shared_dir()}/data/mars: "
            "set PYMARS_SHARED=/path/to/shared (the folder that holds data/mars), or pass --dictionary FILE.npz "
            "(written by `pymars enhance-train dictionary` in a checkout with the data, e.g. "
            "runs/enhance/dictionary-6.npz)")
    raw, classes, names = [], [], []
    cache: dict[str, np.ndarray] = {}
    for entry in recipe:
        file, pos = entry["name"].rsplit(":", 1)
        y, x = (int(v) for v in pos.split(","))
        if file not in cache:
            cache[file] = load_8bit(root / "marsscapes_msl_mastcam_pano" / "images" / file)
        patch = np.ascontiguousarray(cache[file][y: y + PATCH, x: x + PATCH])
        if pixel_hash(patch) != entry["sha256_16"]:
            raise ValueError(f"reference {entry['name']}: pixels differ from the shipped hash (different data?)")
        raw.append(patch)
        classes.append(CLASS_NAMES.index(entry["class"]))
        names.append(entry["name"])
    return Dictionary(np.stack(raw), np.array(classes, np.uint8), names)
