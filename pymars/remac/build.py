"""Building a reference library from a folder of images (``pymars refs build DIR -o LIB``).

What it is for: choosing which tiles become REMAC references. The rule
(docs/remac.md): cut every image into 256x256 candidate tiles by the
protocol's column rule (windows with < 1 % black no-data), describe each by
its uniform LBP histogram (the project's C++ matcher), cluster the candidates
by k-medoids on the Jensen-Shannon divergence (fixed point, from the C++
matcher), and keep the medoids. k is the one with the highest
Calinski-Harabasz index over ``k_range`` (computed on the Hellinger embedding
``sqrt(p)`` of the histograms, where the squared Euclidean distance is a
divergence close to JS); the report lists every k's index so the choice can be
checked. The default range, 8..64, is capped at a quarter of the candidates
(:data:`CANDIDATES_PER_REFERENCE`): the index keeps growing as k nears the
number of candidates, and a library of nearly every tile (52 of 53 for 12
images) is a copy of the folder, not a choice. Images are found in the folder
and all its sub-folders.

Everything is deterministic: candidates in sorted file order, k-medoids
initialised by a farthest-point walk from the candidate closest to the overall
mean, ties to the lowest index.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> h = np.concatenate([rng.multinomial(1000, p, 20) for p in np.eye(3) * 0.9 + 0.05]).astype(np.uint32)
    >>> labels, medoids = k_medoids(js_matrix(h), 3)
    >>> sorted(np.bincount(labels).tolist())
    [20, 20, 20]
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pymars.bundles import open_bundle
from pymars.errors import InputImageError
from pymars.evaluation.protocol import column_rule_windows, group_files, mars_data_dir, prepared_image, selected_windows
from pymars.imageio import read_image
from pymars.remac.library import TILE, ReferenceLibrary, reference_entry
from pymars.texture import lbp_histograms, rgb_to_gray
from pymars.texture.clustering import calinski_harabasz, js_matrix, k_medoids

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
#: The default k range ends at (candidates // this): each reference stands for several tiles.
CANDIDATES_PER_REFERENCE = 4
DEFAULT_K_RANGE = (8, 64)


@dataclass
class BuildReport:
    candidates: int
    images: int
    k: int
    calinski_harabasz: dict[int, float]
    names: list[str]
    how: str = ""  # how k was chosen, in words

    def summary(self) -> str:
        """One paragraph for the CLI: what was found, which k and why.

        Example:
            >>> print(BuildReport(6, 2, 1, {}, ["a"], "too few candidates to choose k").summary())
            6 candidate tiles from 2 images (sub-folders included); k = 1 reference (too few candidates to choose k)
        """
        ch = ", ".join(f"k={k}: {v:.1f}" for k, v in self.calinski_harabasz.items())
        how = self.how or "highest Calinski-Harabasz index"
        return (f"{self.candidates} candidate tiles from {self.images} images (sub-folders included); "
                f"k = {self.k} reference{'s' if self.k != 1 else ''} ({how}{'; ' + ch if ch else ''})")


def candidate_tiles(folder: str | os.PathLike, max_per_image: int = 8) -> tuple[list[np.ndarray], list[str], int]:
    """256x256 RGB candidate tiles of every image below ``folder``, in sorted order (at most ``max_per_image`` each,
    evenly spread over the image's kept windows). Sub-folders are read; an unreadable image is skipped with a
    warning.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> d = tempfile.mkdtemp(); Image.fromarray(np.full((300, 600, 3), 80, np.uint8)).save(d + "/a.png")
        >>> tiles, names, n = candidate_tiles(d)
        >>> len(tiles), names[0], n
        (2, 'a.png:0,0', 1)
    """

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    tiles, names = [], []
    for path in files:
        try:
            img = read_image(path)
        except InputImageError as e:  # one broken file in a folder of images must not stop the build
            warnings.warn(f"{e}: skipped")
            continue
        if img.dtype != np.uint8:  # 12/16-bit: references live in the 8-bit domain the codec codes
            img = (img.astype(np.float64) * 255.0 / img.max() if img.max() else img).round().astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        for y, x in _spread(list(column_rule_windows(img, TILE)), max_per_image):
            tiles.append(np.ascontiguousarray(img[y : y + TILE, x : x + TILE, :3]))
            names.append(f"{path.relative_to(folder)}:{y},{x}")
    return tiles, names, len(files)


def _spread(windows: list, count: int) -> list:
    if len(windows) <= count:
        return windows
    pick = np.linspace(0, len(windows) - 1, count).round().astype(int)
    return [windows[i] for i in pick]


def protocol_candidate_tiles(max_per_image: int = 8, margin: int = 64) -> tuple[list[np.ndarray], list[str], int]:
    """Candidate tiles of the development set (``../shared/data/mars``) with every evaluation tile held out.

    The images are prepared as the RD protocol prepares them (MarsData 2x
    downsampled), so references have the scale of the tiles they serve. Held
    out, as in training (pymars/train/dataset.py): every window overlapping an
    evaluation window of ``dev_marsscapes`` grown by ``margin`` pixels, and every
    ``dev_marsdata`` image that gives an evaluation tile; otherwise a reference
    could be the very tile it is measured on.

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or len(protocol_candidate_tiles(1)[0]) > 10
        True
    """

    root = mars_data_dir()
    if root is None:
        raise FileNotFoundError("--protocol needs ../shared/data/mars (or set PYMARS_SHARED)")
    tiles, names, n_images = [], [], 0
    for group in ("dev_marsscapes", "dev_marsdata"):
        held: dict = {}
        for path, y, x in selected_windows(group, root):
            held.setdefault(path, []).append((y, x))
        for path in group_files(group, root):
            if group == "dev_marsdata" and path in held:
                continue
            img = prepared_image(group, path)
            ok = [
                (y, x) for y, x in column_rule_windows(img, TILE)
                if all(abs(y - hy) >= TILE + margin or abs(x - hx) >= TILE + margin for hy, hx in held.get(path, []))
            ]
            n_images += 1
            for y, x in _spread(ok, max_per_image):
                tiles.append(np.ascontiguousarray(img[y : y + TILE, x : x + TILE, :3]))
                names.append(f"{group}/{path.relative_to(root)}:{y},{x}")
    return tiles, names, n_images


def choose_k_range(candidates: int, k_range=None) -> tuple[int, int, str]:
    """(lo, hi, how): the k tried for ``candidates`` tiles (none when lo > hi), and the reason in words.

    A given ``k_range`` is clipped to ``2..candidates - 1`` only. The default
    one, 8..64, is capped at ``candidates // CANDIDATES_PER_REFERENCE``; below
    8 the index chooses among 2..cap.

    Example:
        >>> choose_k_range(53)
        (8, 13, 'highest Calinski-Harabasz index for k in 8..13; k is capped at a quarter of the 53 candidates')
        >>> choose_k_range(24)[:2], choose_k_range(10, (2, 4))[:2]
        ((2, 6), (2, 4))
        >>> choose_k_range(7)
        (2, 1, '7 candidate tiles allow 1 reference (a quarter of them): too few to choose k by the Calinski-Harabasz index')
    """
    if k_range is not None:
        lo, hi = max(2, k_range[0]), min(k_range[1], candidates - 1)
        if lo > hi:
            return lo, hi, f"{candidates} candidate tiles are too few to choose k in {k_range[0]}..{k_range[1]}"
        return lo, hi, f"highest Calinski-Harabasz index for k in {lo}..{hi}"
    cap = max(1, candidates // CANDIDATES_PER_REFERENCE)
    hi = min(DEFAULT_K_RANGE[1], cap, candidates - 1)
    lo = DEFAULT_K_RANGE[0] if hi >= DEFAULT_K_RANGE[0] else 2
    if lo > hi:
        return lo, hi, (f"{candidates} candidate tiles allow {max(hi, 1)} reference{'s' if hi > 1 else ''} (a quarter "
                        "of them): too few to choose k by the Calinski-Harabasz index")
    why = f"; k is capped at a quarter of the {candidates} candidates" if cap < DEFAULT_K_RANGE[1] else ""
    return lo, hi, f"highest Calinski-Harabasz index for k in {lo}..{hi}{why}"


def build_library(folder: str | os.PathLike | None, model=None, k: int | None = None, k_range=None,
                  max_per_image: int = 8, progress: bool = True) -> tuple[ReferenceLibrary, BuildReport]:
    """Choose references among the images of ``folder`` (sub-folders included) and compute their rover and
    ground parts.

    ``folder=None`` takes the development set with its evaluation tiles held
    out (:func:`protocol_candidate_tiles`).

    ``k`` fixes the number of references; otherwise it is chosen by the
    Calinski-Harabasz index over ``k_range`` (inclusive, clipped to the
    number of candidates); the default range :data:`DEFAULT_K_RANGE` is also
    capped at a quarter of the candidates. ``model`` is a bundle name, folder or
    :class:`pymars.bundles.ModelBundle` (default: the shipped base model).
    """

    bundle = open_bundle(model)
    if folder is None:
        tiles, names, n_images = protocol_candidate_tiles(max_per_image)
    else:
        tiles, names, n_images = candidate_tiles(folder, max_per_image)
    if not tiles:
        raise FileNotFoundError(f"no image with a 256x256 window of valid pixels below {folder} "
                                f"({n_images} image file(s) found, sub-folders included)")
    hist = np.stack([lbp_histograms(rgb_to_gray(t), "uniform") for t in tiles]).astype(np.uint32)
    dist = js_matrix(hist)
    points = np.sqrt(hist / hist.sum(1, keepdims=True))
    scores: dict[int, float] = {}
    how = ""
    if k is None:
        lo, hi, how = choose_k_range(len(tiles), k_range)
        best = None
        for kk in range(lo, hi + 1):
            labels, med = k_medoids(dist, kk)
            scores[kk] = calinski_harabasz(points, labels)
            if best is None or scores[kk] > scores[best[0]]:
                best = (kk, med)
        if best is None:  # too few candidates: as many references as the cap allows
            kk = max(1, min(hi, len(tiles)))
            best = (kk, k_medoids(dist, kk)[1])
        k, medoids = best
    else:
        medoids = k_medoids(dist, k)[1]
        k = len(medoids)
        how = "k given"
    medoids = np.sort(medoids)
    entries = []
    it = medoids
    if progress:
        from tqdm import tqdm

        it = tqdm(medoids, desc="references", unit="tile")
    for i in it:
        entries.append(reference_entry(bundle.core, tiles[i]))
    lib = ReferenceLibrary(
        model_id=bytes(bundle.model_id),
        histograms=np.stack([e[0] for e in entries]),
        descriptors=np.stack([e[1] for e in entries]),
        latents=np.stack([e[2] for e in entries]),
        tiles=np.stack([tiles[i] for i in medoids]),
        names=[names[i] for i in medoids],
    )
    return lib, BuildReport(len(tiles), n_images, int(k), scores, lib.names, how)
