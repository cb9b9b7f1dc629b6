"""The CaSSIS -> FAL PNG pairs: loading, validation and the documented scene split.

What it is for: the real training and evaluation data of the spectral models is
88 CRISM scenes, each a 256x256 8-bit pair ``original_image.png`` (CaSSIS-filter
composite, the input) and ``edited_image.png`` (FAL = R2529/R1506/R1080, the
target), per-image min-max stretched, black (0) outside the footprint
(``../shared/data/spectral/crism_cassis_fal_png_pairs``). This module loads them
with their repaired metadata (:mod:`pymars.spectral.metadata`) and splits them.

The split (normative for every figure of docs/spectral.md): by scene, stratified
by site, seeded (seed 0), about 70/15/15 train/val/test. Scenes whose footprints
overlap (scene-level coordinates within :data:`SAME_PLACE_DEG`) form one group
that never straddles two parts, so the test set holds no pixels seen in
training. Coordinates shared by many scenes of a site (the Jezero rows all give
the crater's centre) are a site placeholder, not a footprint, and do not group.
Every site keeps scenes in every part: the metadata conditioning is meant to
learn site priors, so a test site must be a known site.

Example:
    >>> import numpy as np
    >>> from pymars.spectral.metadata import SceneMeta
    >>> metas = {f"s{i}": SceneMeta(-13.0 + i, -60.0, "coprates") for i in range(20)}
    >>> parts = split_scenes(sorted(metas), metas, seed=0)
    >>> [len(parts[k]) for k in ("train", "val", "test")]
    [14, 3, 3]
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pymars.evaluation.protocol import shared_dir
from pymars.spectral.metadata import SceneMeta, great_circle_deg, read_metadata_csv

#: Two scene centres closer than this (degrees, ~6 km on Mars) are taken as overlapping footprints.
SAME_PLACE_DEG = 0.1
#: A coordinate repeated by more scenes than this is a site placeholder, not a scene footprint.
PLACEHOLDER_REPEATS = 2
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
SPLIT_SEED = 0


@dataclass
class ScenePair:
    """One scene: CaSSIS composite ``cassis`` and FAL composite ``fal`` (both HxWx3 uint8), and its metadata."""

    scene: str
    cassis: np.ndarray
    fal: np.ndarray
    meta: SceneMeta | None


def pairs_dir() -> Path | None:
    """Return ``<shared>/data/spectral/crism_cassis_fal_png_pairs`` if present, else None (tests then skip).

    Example:
        >>> d = pairs_dir()
        >>> d is None or d.name == "crism_cassis_fal_png_pairs"
        True
    """

    d = shared_dir() / "data" / "spectral" / "crism_cassis_fal_png_pairs"
    return d if d.is_dir() else None


def read_rgb8(path: str | Path) -> np.ndarray:
    """Read an 8-bit RGB PNG as HxWx3 uint8, refusing anything else with a clear error.

    Example:
        >>> import tempfile, os, PIL.Image
        >>> p = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> PIL.Image.new("RGB", (8, 4), (1, 2, 3)).save(p)
        >>> read_rgb8(p).shape
        (4, 8, 3)
        >>> PIL.Image.new("I;16", (8, 4)).save(p)
        >>> read_rgb8(p)
        Traceback (most recent call last):
        ...
        ValueError: ...a.png: expected an 8-bit RGB image, got mode I;16
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        im = Image.open(path)
        im.load()
    except Exception as e:  # PIL raises many types for a bad file
        raise ValueError(f"{path}: not a readable image ({e})") from None
    if im.mode not in ("RGB", "RGBA", "P", "L"):
        raise ValueError(f"{path}: expected an 8-bit RGB image, got mode {im.mode}")
    a = np.asarray(im.convert("RGB"))
    if a.size == 0:
        raise ValueError(f"{path}: empty image")
    return a


def load_pairs(folder: str | Path | None = None, metadata: str | Path | None = None) -> list[ScenePair]:
    """Load every ``<scene>/{original_image,edited_image}.png`` pair of ``folder`` (sorted by scene).

    ``metadata`` defaults to ``folder/metadata.csv`` (repaired on reading); a
    scene absent from it gets ``meta=None``.

    Example:
        >>> import tempfile, os, PIL.Image
        >>> root = tempfile.mkdtemp(); os.mkdir(os.path.join(root, "frt1"))
        >>> for n in ("original_image.png", "edited_image.png"):
        ...     PIL.Image.new("RGB", (16, 16), (9, 9, 9)).save(os.path.join(root, "frt1", n))
        >>> p = load_pairs(root)
        >>> (p[0].scene, p[0].cassis.shape, p[0].meta)
        ('frt1', (16, 16, 3), None)
    """
    folder = Path(folder) if folder is not None else pairs_dir()
    if folder is None or not folder.is_dir():
        raise FileNotFoundError(f"{folder}: PNG pair folder not found")
    meta_path = Path(metadata) if metadata is not None else folder / "metadata.csv"
    metas = read_metadata_csv(meta_path) if meta_path.is_file() else {}
    out = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        src, dst = d / "original_image.png", d / "edited_image.png"
        if not (src.is_file() and dst.is_file()):
            continue
        a, b = read_rgb8(src), read_rgb8(dst)
        if a.shape != b.shape:
            raise ValueError(f"{d}: input {a.shape} and target {b.shape} differ in shape")
        out.append(ScenePair(d.name, a, b, metas.get(d.name.lower())))
    if not out:
        raise ValueError(f"{folder}: no <scene>/original_image.png + edited_image.png pairs")
    return out


def _groups(scenes: list[str], metas: dict[str, SceneMeta]) -> list[list[str]]:
    """Union scenes whose footprint centres overlap (placeholder coordinates excepted)."""
    counts: dict[tuple[float, float], int] = defaultdict(int)
    for s in scenes:
        if s in metas:
            counts[(metas[s].lat, metas[s].lon)] += 1
    parent = {s: s for s in scenes}

    def root(s):
        while parent[s] != s:
            s = parent[s]
        return s

    located = [s for s in scenes if s in metas and counts[(metas[s].lat, metas[s].lon)] <= PLACEHOLDER_REPEATS]
    for i, a in enumerate(located):
        for b in located[i + 1:]:
            if great_circle_deg(metas[a].lat, metas[a].lon, metas[b].lat, metas[b].lon) < SAME_PLACE_DEG:
                parent[root(b)] = root(a)
    groups: dict[str, list[str]] = defaultdict(list)
    for s in scenes:
        groups[root(s)].append(s)
    return sorted(groups.values())


def split_scenes(scenes: list[str], metas: dict[str, SceneMeta | None], seed: int = SPLIT_SEED,
                 fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> dict[str, list[str]]:
    """Split scenes into ``{"train", "val", "test"}``: by site, overlapping footprints together, seeded.

    Within each site (scenes without metadata form their own stratum) the groups
    are shuffled with ``seed`` and dealt out so each part gets its share,
    rounded; val and test each get at least one group of every site with
    three or more groups.

    Example:
        >>> from pymars.spectral.metadata import SceneMeta
        >>> m = {"a": SceneMeta(0, 0, "coprates"), "b": SceneMeta(0, 0.01, "coprates"), "c": SceneMeta(5, 5, "coprates")}
        >>> parts = split_scenes(["a", "b", "c"], m)
        >>> any({"a", "b"} <= set(p) for p in parts.values())  # overlapping a and b stay together
        True
    """
    metas = {s: m for s, m in metas.items() if m is not None}
    strata: dict[str, list[str]] = defaultdict(list)
    for s in sorted(scenes):
        strata[metas[s].site if s in metas else "(no metadata)"].append(s)
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for site in sorted(strata):
        groups = _groups(strata[site], metas)
        rng = np.random.default_rng([seed, sum(map(ord, site))])
        order = [groups[i] for i in rng.permutation(len(groups))]
        n = len(order)
        n_val = max(1 if n >= 3 else 0, int(round(fractions[1] * n)))
        n_test = max(1 if n >= 3 else 0, int(round(fractions[2] * n)))
        for i, g in enumerate(order):
            part = "test" if i < n_test else "val" if i < n_test + n_val else "train"
            parts[part].extend(g)
    return {k: sorted(v) for k, v in parts.items()}
