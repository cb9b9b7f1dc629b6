"""The cached training set of the enhancers: raw regions, their compressed versions, classes and references.

What it is for: making a training step cost only the network. A cache holds
``N`` raw 256x256 regions drawn from the training pool of the development set
(pymars.train.dataset.mars_training_pool: every evaluation tile, grown by 64
px, and every MarsData image that gives an evaluation tile are held out),
each region compressed whole under one setting (so the 8x8 JPEG grid is
aligned with the region, as it is with an image at inference), the class of
each of its four 128x128 patches (the patch classifier on the *compressed*
patch, as at inference) and each patch's Eq. 4 reference in the dictionary,
plus the dictionary's raw and compressed patches.

:meth:`TrainingCache.batch` cuts ``crop`` x ``crop`` crops at multiples of 8
(keeping the JPEG grid where inference has it) and gives each crop the
reference of the patch under its centre, a random crop of the same size of
that reference (raw and compressed, same place), and the per-pixel class
map (a crop can straddle patches of different classes, which is what the
post-network's class-restricted attention needs to see).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> c = TrainingCache(raw=rng.integers(0, 256, (2, 256, 256, 3), dtype=np.uint8),
    ...     comp=np.zeros((2, 256, 256, 3), np.uint8), classes=np.array([[[0, 1], [2, 3]]] * 2, np.uint8),
    ...     refs=np.zeros((2, 2, 2), np.int16), spec_index=np.zeros(2, np.int16),
    ...     dict_raw=np.zeros((1, 128, 128, 3), np.uint8), dict_comp=np.zeros((1, 1, 128, 128, 3), np.uint8),
    ...     dict_classes=np.zeros(1, np.uint8), specs=["jpeg:30"])
    >>> b = c.batch(rng, 3, 64)
    >>> b["raw"].shape, b["ref_raw"].shape, b["classes"].shape
    ((3, 3, 64, 64), (3, 3, 64, 64), (3, 1, 64, 64))
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from pymars.clio import atomic_path
from pymars.enhance.classes import PATCH
from pymars.enhance.codecs import compressed_like_training
from pymars.train.dataset import mars_training_pool

REGION = 256


@dataclass
class TrainingCache:
    raw: np.ndarray  # (N, R, R, 3) uint8
    comp: np.ndarray  # (N, R, R, 3) uint8
    classes: np.ndarray  # (N, R/S, R/S) uint8
    refs: np.ndarray  # (N, R/S, R/S) int16: dictionary index per patch
    spec_index: np.ndarray  # (N,) which setting of ``specs`` compressed the region
    dict_raw: np.ndarray  # (M, S, S, 3)
    dict_comp: np.ndarray  # (len(specs), M, S, S, 3)
    dict_classes: np.ndarray  # (M,)
    specs: list[str]
    # A blind model's references: compressed twins (and the Eq. 4 matching) at this one setting for every region,
    # since the model is not told the setting at inference. "" = each region's own setting (a per-setting model).
    ref_spec: str = ""
    # Gray regions (gray_training_pool: Navcam of the training sols, luma of the colour sets), compressed as gray
    # images and stored as three equal channels, with the dictionary's patches turned gray the same way: the
    # networks stay RGB, and a gray model sees at training what the gray path gives it at inference.
    gray: bool = False

    def __len__(self) -> int:
        return len(self.raw)

    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **{k: getattr(self, k) for k in ("raw", "comp", "classes", "refs", "spec_index", "dict_raw",
                                                           "dict_comp", "dict_classes")}, specs=np.array(self.specs),
                     ref_spec=np.array(self.ref_spec), gray=np.array(self.gray))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainingCache":
        with np.load(path) as z:
            d = {k: z[k] for k in z.files}
        d["specs"] = [str(s) for s in d["specs"]]
        d["ref_spec"] = str(d.get("ref_spec", ""))
        d["gray"] = bool(d.get("gray", False))
        return cls(**d)

    def batch(self, rng: np.random.Generator, batch: int, crop: int) -> dict[str, np.ndarray]:
        """A training batch of float32 NCHW arrays in [0, 1]: raw, comp, ref_raw, ref_comp, classes (indices)."""
        r = self.raw.shape[1]
        if crop % 8 or crop > PATCH or crop > r:
            raise ValueError(f"crop {crop} must be a multiple of 8 and at most {min(PATCH, r)}")
        out = {k: np.empty((batch, 3, crop, crop), np.float32) for k in ("raw", "comp", "ref_raw", "ref_comp")}
        out["classes"] = np.empty((batch, 1, crop, crop), np.float32)
        grid = np.arange(crop)
        for i in range(batch):
            n = int(rng.integers(len(self)))
            y, x = (int(v) * 8 for v in rng.integers(0, (r - crop) // 8 + 1, 2))
            cy, cx = (y + crop // 2) // PATCH, (x + crop // 2) // PATCH
            ref = int(self.refs[n, cy, cx])
            ry, rx = (int(v) * 8 for v in rng.integers(0, (PATCH - crop) // 8 + 1, 2))
            cmap = self.classes[n][(y + grid) // PATCH][:, (x + grid) // PATCH]
            raw = self.raw[n, y:y + crop, x:x + crop]
            comp = self.comp[n, y:y + crop, x:x + crop]
            if rng.random() < 0.5:  # horizontal flip: keeps the 8x8 grid since crop is a multiple of 8
                raw, comp, cmap = raw[:, ::-1], comp[:, ::-1], cmap[:, ::-1]
            out["raw"][i] = raw.transpose(2, 0, 1) * (1 / 255)
            out["comp"][i] = comp.transpose(2, 0, 1) * (1 / 255)
            out["classes"][i, 0] = cmap
            out["ref_raw"][i] = self.dict_raw[ref, ry:ry + crop, rx:rx + crop].transpose(2, 0, 1) * (1 / 255)
            out["ref_comp"][i] = self.dict_comp[self.spec_index[n], ref, ry:ry + crop, rx:rx + crop].transpose(
                2, 0, 1) * (1 / 255)
        return out


def patch_grid(image: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """(rows, cols, S, S, C) view-copy of the full S x S patches of an image whose sides are multiples of S.

    Example:
        >>> patch_grid(np.zeros((256, 384, 3), np.uint8)).shape
        (2, 3, 128, 128, 3)
    """
    h, w = image.shape[:2]
    if h % patch or w % patch:
        raise ValueError(f"image {h}x{w} is not a whole number of {patch}x{patch} patches")
    g = image.reshape(h // patch, patch, w // patch, patch, -1).swapaxes(1, 2)
    return np.ascontiguousarray(g)


def build_cache(specs: list[str], regions: int, classify: Callable[[np.ndarray], np.ndarray], dictionary,
                seed: int = 0, progress: bool = True, ref_spec: str = "", gray: bool = False) -> TrainingCache:
    """Draw ``regions`` raw regions from the training pool and prepare them (see the module docstring).

    ``specs`` are compression settings (pymars.enhance.codecs); with several
    (the blind model), region i uses ``specs[i % len(specs)]``.
    ``classify`` maps (n, 128, 128, 3) uint8 compressed patches to classes;
    ``dictionary`` is a pymars.enhance.dictionary.Dictionary (raw patches).
    ``ref_spec`` (a blind model): the dictionary's compressed twins, for the
    matching and the ``ref_comp`` input, are made at this one setting for
    every region, as they will be at inference where the setting is unknown.
    ``gray``: regions from pymars.train.dataset.gray_training_pool (Navcam frames
    of the training sols, 50 %; luma of MarsScapes and MarsData, every evaluation
    tile held out), each compressed as a gray image; the regions, their
    compressed versions and the dictionary are stored as three equal channels.
    """
    from dataclasses import replace

    from tqdm import tqdm

    if gray:
        from pymars.train.dataset import gray_training_pool

        pool = gray_training_pool(REGION, progress=progress)
        # Targets as they are: no sensor noise or JPEG history drawn on them (the base codec's augmentations),
        # only re-exposure, which keeps a target a possible image.
        pool.p_noise = pool.p_jpeg = 0.0
        dictionary = dictionary.as_gray()
    else:
        pool = mars_training_pool(REGION, progress=progress)
    rng = np.random.default_rng(seed)
    per_spec = []
    for spec in specs:
        d = replace(dictionary)
        d.compress(lambda p, s=ref_spec or spec: compressed_like_training(p, s, gray))
        per_spec.append(d)
    raw = np.empty((regions, REGION, REGION, 3), np.uint8)
    comp = np.empty_like(raw)
    g = REGION // PATCH
    classes = np.empty((regions, g, g), np.uint8)
    refs = np.empty((regions, g, g), np.int16)
    spec_index = np.arange(regions, dtype=np.int16) % len(specs)
    done = 0
    bar = tqdm(total=regions, desc="training regions", disable=not progress)
    while done < regions:
        n = min(64, regions - done)
        chunk = np.rint(pool.sample(rng, n) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
        for j in range(n):
            i = done + j
            raw[i] = np.repeat(chunk[j], 3, 2) if gray else chunk[j]  # gray: three equal channels
            comp[i] = compressed_like_training(raw[i], specs[spec_index[i]], gray)
            patches = patch_grid(comp[i]).reshape(-1, PATCH, PATCH, 3)
            cls = np.asarray(classify(patches)).reshape(g, g)
            classes[i] = cls
            d = per_spec[spec_index[i]]
            refs[i] = np.array([d.match(p, int(k)) for p, k in zip(patches, cls.ravel())]).reshape(g, g)
        done += n
        bar.update(n)
    bar.close()
    return TrainingCache(raw, comp, classes, refs, spec_index, dictionary.raw,
                         np.stack([d.compressed for d in per_spec]), dictionary.classes, list(specs), ref_spec, gray)
