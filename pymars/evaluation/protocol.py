"""The `mars-rd-1` evaluation protocol: how development tiles are made.

This module is the single place that turns the images under
``../shared/data/mars`` into the exact tiles that every rate-distortion
figure of the project is measured on (``../shared/EVALUATION.md``):

    file --load_8bit--> uint8 HxWxC --box_downsample_2x (not panoramas)-->
         --column_rule_tiles / top-left crop--> candidates --every k-th--> tiles

It must not change pixels in any other way (no colour conversion beyond the
protocol's gray detection, no resampling other than the integer 2x box), so that
figures stay comparable with measurements made by other tools.

Example:
    >>> import numpy as np
    >>> img = np.full((600, 600, 3), 90, np.uint8)
    >>> [t for t in column_rule_windows(img, 256)]
    [(0, 0), (0, 256), (256, 0), (256, 256)]
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

PROTOCOL = "mars-rd-1"
TILE = 256

#: Where the shared development data lives, relative to the project checkout.
DEFAULT_SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def shared_dir() -> Path:
    """Return the shared data folder: ``$PYMARS_SHARED``, else the first ``shared`` folder beside the
    checkout (found from this file, which works for an editable install, or from the current
    directory and its parents, which works for a ``pip install .`` into a virtual environment
    inside the checkout), else ``DEFAULT_SHARED``.

    Example:
        >>> isinstance(shared_dir(), Path)
        True
    """
    env = os.environ.get("PYMARS_SHARED")
    if env:
        return Path(env)
    cwd = Path.cwd().resolve()
    for candidate in (DEFAULT_SHARED, *(folder.parent / "shared" for folder in (cwd, *cwd.parents) if
                                        (folder / "pyproject.toml").is_file())):
        if candidate.is_dir():
            return candidate
    return DEFAULT_SHARED


def mars_data_dir() -> Path | None:
    """Return ``<shared>/data/mars`` if it exists, else None (tests then skip).

    Example:
        >>> d = mars_data_dir()
        >>> d is None or d.name == "mars"
        True
    """
    d = shared_dir() / "data" / "mars"
    return d if d.is_dir() else None


def load_8bit(path: str | os.PathLike) -> np.ndarray:
    """Load an image as the protocol says: uint8, HxW (1 channel) or HxWx3.

    Modes ``1``, ``L``, ``LA`` give one channel; everything else is converted
    to RGB; an RGB image with R==G==B everywhere becomes one channel. 16/32-bit
    integer images are refused (ValueError).

    Example:
        >>> import tempfile, PIL.Image
        >>> p = tempfile.mktemp(suffix=".png")
        >>> PIL.Image.new("RGB", (4, 3), (7, 7, 7)).save(p)
        >>> load_8bit(p).shape
        (3, 4)
    """
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            raise ValueError(f"{path}: {im.mode} images are not 8-bit; the protocol refuses them")
        if im.mode in ("1", "L", "LA"):
            arr = np.asarray(im.convert("L"))
            return np.ascontiguousarray(arr)
        arr = np.asarray(im.convert("RGB"))
    if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
        return np.ascontiguousarray(arr[..., 0])
    return np.ascontiguousarray(arr)


def box_downsample_2x(img: np.ndarray) -> np.ndarray:
    """Exact integer 2x2 box average, rounded half up; odd last row/column dropped.

    Example:
        >>> box_downsample_2x(np.array([[1, 2, 9], [3, 4, 9]], np.uint8)).tolist()
        [[3]]
    """
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    a = img[:h:2, :w:2].astype(np.uint16)
    b = img[1:h:2, :w:2].astype(np.uint16)
    c = img[:h:2, 1:w:2].astype(np.uint16)
    d = img[1:h:2, 1:w:2].astype(np.uint16)
    return ((a + b + c + d + 2) // 4).astype(np.uint8)


def black_mask(img: np.ndarray) -> np.ndarray:
    """True where every channel is 0 (stitching no-data).

    Example:
        >>> bool(black_mask(np.zeros((2, 2, 3), np.uint8)).all())
        True
    """
    return (img == 0).all(axis=-1) if img.ndim == 3 else img == 0


def column_rule_windows(img: np.ndarray, tile: int = TILE, width: int | None = None) -> Iterator[tuple[int, int]]:
    """Yield kept (y, x) windows of the column rule, in raster order.

    A window (``tile`` high, ``width`` wide; square when ``width`` is None) is
    kept when fewer than 1 % of its pixels are pure black; after a kept window
    the walk continues at y + height, otherwise at y + 16. Columns start at
    x = 0, width, 2 width, ... The benchmarks reuse the rule with rectangular
    windows (bench/latency.py's speed crops).

    Example:
        >>> img = np.zeros((300, 256), np.uint8); img[20:] = 50
        >>> list(column_rule_windows(img, 256))
        [(32, 0)]
        >>> list(column_rule_windows(np.full((500, 2100), 7, np.uint8), 448, 1024))
        [(0, 0), (0, 1024)]
    """
    height, width = tile, tile if width is None else width
    black = black_mask(img).astype(np.int32)
    h, w = black.shape
    # Integral image: the black count of any window in O(1).
    ii = np.zeros((h + 1, w + 1), np.int64)
    ii[1:, 1:] = black.cumsum(0).cumsum(1)
    limit = 0.01 * height * width
    kept = []
    for x in range(0, w - width + 1, width):
        y = 0
        while y + height <= h:
            n = ii[y + height, x + width] - ii[y, x + width] - ii[y + height, x] + ii[y, x]
            if n < limit:
                kept.append((y, x))
                y += height
            else:
                y += 16
    kept.sort()
    return iter(kept)


@dataclass(frozen=True)
class Tile:
    """One development tile: its id, group, source file and pixels (uint8)."""

    tile_id: str
    group: str
    source: Path
    y: int
    x: int
    pixels: np.ndarray


GROUPS = ("dev_marsscapes", "dev_marsdata")

#: Gray groups (EVALUATION.md §1: "other images get the 2x downsample and the column
#: rule, and are reported as their own groups"). ``dev_navcam``: full 1024x1024
#: Curiosity Navcam frames of the held-out sols below; ``dev_navcam_pds``: the four
#: 12-bit PDS3 EDRs (ICER-downlinked, never JPEG), scaled to 8 bits; ``*_gray``: the
#: luma of the colour protocol tiles. None of their pixels is ever trained on.
GRAY_GROUPS = ("dev_navcam", "dev_navcam_pds", "dev_marsscapes_gray", "dev_marsdata_gray")
#: Navcam sols held out of gray training (neighbouring frames of one sol overlap, so
#: the split is by sol): 4 of the 9 sols with full frames, spread over the mission.
NAVCAM_HELD_SOLS = frozenset({53, 372, 733, 995})


def navcam_sol(path: Path) -> int:
    """The sol of a ``curiosity_navcam_gray`` file (``sol0053_NLA_...jpg`` -> 53).

    Example:
        >>> navcam_sol(Path("sol0053_NLA_402200516EDR_F0043212NCAM00315M_.jpg"))
        53
    """
    return int(path.name[3:7])


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in integers, rounded half up: ``(299 R + 587 G + 114 B + 500) // 1000``.

    Example:
        >>> luma(np.array([[[255, 255, 255], [10, 20, 30]]], np.uint8)).tolist()
        [[255, 18]]
    """
    if rgb.ndim == 2:
        return rgb
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    return ((299 * r + 587 * g + 114 * b + 500) // 1000).astype(np.uint8)


def load_pds_8bit(path: str | os.PathLike) -> np.ndarray:
    """A PDS3 image product (label path) read with ``pdr``, scaled to 8 bits.

    Integer samples are scaled by ``round(v * 255 / max)`` where max is the largest
    value of the sample bit depth (4095 for 12-bit Navcam EDRs), as the codec's own
    12/16-bit path does.

    Example:
        >>> root = mars_data_dir()
        >>> root is None or load_pds_8bit(sorted((root / "curiosity_navcam_pds").glob("*.LBL"))[0]).shape == (1024, 1024)
        True
    """
    import pdr

    data = pdr.read(str(path))
    img = np.asarray(data["IMAGE"])
    if img.ndim == 3:
        img = img[0] if img.shape[0] in (1, 3) and img.shape[0] < img.shape[-1] else img
    bits = int(data.metadata.get("IMAGE", {}).get("SAMPLE_BITS", 16) or 16)
    bits = 12 if int(img.max()) < 4096 and bits >= 12 else bits
    top = (1 << bits) - 1
    return np.round(img.astype(np.float64) * 255 / top).clip(0, 255).astype(np.uint8)


def group_files(group: str, root: Path | None = None) -> list[Path]:
    """Sorted source files of a development group.

    Example:
        >>> root = mars_data_dir()
        >>> root is None or len(group_files("dev_marsdata", root)) == 122
        True
    """
    root = root or mars_data_dir()
    if root is None:
        raise FileNotFoundError("../shared/data/mars is not available (set PYMARS_SHARED)")
    if group == "dev_marsscapes":
        return sorted((root / "marsscapes_msl_mastcam_pano" / "images").glob("*.png"))
    if group == "dev_marsdata":
        return sorted((root / "marsdata_msl_mastcam_mars32k_jpeg").glob("*.jpg"))
    if group == "dev_navcam":
        full = sorted((root / "curiosity_navcam_gray" / "full_1024").glob("*.jpg"))
        return [p for p in full if navcam_sol(p) in NAVCAM_HELD_SOLS]
    if group == "dev_navcam_pds":
        return sorted((root / "curiosity_navcam_pds").glob("*.LBL"))
    if group in ("dev_marsscapes_gray", "dev_marsdata_gray"):
        return group_files(group[: -len("_gray")], root)
    raise ValueError(f"unknown group {group!r}; known: {GROUPS + GRAY_GROUPS}")


def prepared_image(group: str, path: Path) -> np.ndarray:
    """The image of ``path`` after the protocol's loading and down-sampling.

    Example:
        >>> root = mars_data_dir()
        >>> root is None or prepared_image("dev_marsdata", group_files("dev_marsdata")[0]).shape == (250, 280, 3)
        True
    """
    if group.endswith("_gray"):
        return luma(prepared_image(group[: -len("_gray")], path))
    img = load_pds_8bit(path) if group == "dev_navcam_pds" else load_8bit(path)
    return img if group == "dev_marsscapes" else box_downsample_2x(img)


def candidates(group: str, root: Path | None = None) -> list[tuple[Path, int, int]]:
    """All candidate windows (file, y, x) of a group before the every-k-th selection.

    Example:
        >>> root = mars_data_dir()
        >>> root is None or len(candidates("dev_marsdata", root)) == 122
        True
    """
    out = []
    for path in group_files(group, root):
        img = prepared_image(group, path)
        if group.startswith("dev_marsdata"):
            crop = img[0:240, 0:256]
            if black_mask(crop).sum() < 0.01 * TILE * TILE:
                out.append((path, 0, 0))
        else:
            out.extend((path, y, x) for y, x in column_rule_windows(img, TILE))
    return out


def selected_windows(group: str, root: Path | None = None) -> list[tuple[Path, int, int]]:
    """The windows a group reports on: every k-th candidate, k = ceil(N/40).

    Example:
        >>> root = mars_data_dir()
        >>> root is None or len(selected_windows("dev_marsdata", root)) == 31
        True
    """
    cands = candidates(group, root)
    k = math.ceil(len(cands) / 40)
    return cands[::k]


def dev_tiles(group: str, root: Path | None = None) -> list[Tile]:
    """The development tiles of a group, with pixels, in protocol order.

    Example:
        >>> root = mars_data_dir()
        >>> root is None or [t.pixels.shape for t in dev_tiles("dev_marsdata")[:1]] == [(240, 256, 3)]
        True
    """
    tiles = []
    cache: dict[Path, np.ndarray] = {}
    for path, y, x in selected_windows(group, root):
        if path not in cache:
            cache.clear()
            cache[path] = prepared_image(group, path)
        img = cache[path]
        h, w = (240, 256) if group.startswith("dev_marsdata") else (TILE, TILE)
        pix = np.ascontiguousarray(img[y : y + h, x : x + w])
        tiles.append(Tile(f"{path.stem}@y{y}x{x}", group, path, y, x, pix))
    return tiles
