"""Read and write the image files the CLI accepts: PNG and TIFF, 8 or 16-bit, gray or RGB.

Pillow reads 8-bit PNG/TIFF and 16-bit gray; 16-bit RGB (common for TIFF and
PNG from science pipelines) goes through tifffile / Pillow's raw modes so that
no sample is silently truncated. Alpha channels are dropped with a warning;
anything else that is not gray or RGB is refused with a clear message.

Example:
    >>> import tempfile, numpy as np
    >>> p = tempfile.mktemp(suffix=".png")
    >>> write_image(p, np.full((4, 5, 3), 7, np.uint8))
    >>> read_image(p).shape
    (4, 5, 3)
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .errors import InputImageError

SUFFIXES = {".png", ".tif", ".tiff"}


def _drop_alpha(arr: np.ndarray, path) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        warnings.warn(f"{path}: alpha channel dropped", stacklevel=3)
        arr = arr[..., :-1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An (H, W) or (H, W, 3) uint8/uint16 array from a PNG or TIFF file.

    Example:
        >>> read_image("no-such-file.png")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no-such-file.png
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(str(path))
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            arr = tifffile.imread(path)
        except Exception as e:  # tifffile raises many types for broken files
            raise InputImageError(f"{path}: not a readable TIFF ({e})") from None
        if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W) TIFF
    elif _png_bit_depth(path) == 16:
        # Pillow reads 16-bit RGB(A) PNG as 8-bit; imagecodecs keeps every bit.
        import imagecodecs

        arr = imagecodecs.png_decode(path.read_bytes())
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    arr = np.asarray(im).astype(np.uint16) if im.mode != "I" else np.asarray(im)
                elif im.mode == "P":
                    arr = np.asarray(im.convert("RGBA" if "transparency" in im.info else "RGB"))
                elif im.mode in ("1", "L", "LA", "RGB", "RGBA"):
                    arr = np.asarray(im.convert("L") if im.mode == "1" else im)
                else:
                    arr = np.asarray(im.convert("RGB"))
        except UnidentifiedImageError:
            raise InputImageError(f"{path}: not an image file (PNG or TIFF expected)") from None
    arr = _drop_alpha(np.asarray(arr), path)
    if arr.dtype == np.int32 and arr.min(initial=0) >= 0 and arr.max(initial=0) < 65536:
        arr = arr.astype(np.uint16)
    if arr.dtype not in (np.uint8, np.uint16):
        raise InputImageError(f"{path}: samples of type {arr.dtype} are not supported (8 or 16-bit expected)")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise InputImageError(f"{path}: shape {arr.shape} is neither gray nor RGB")
    return np.ascontiguousarray(arr)


def _png_bit_depth(path: Path) -> int:
    """Bit depth from a PNG's IHDR chunk (0 if the file is not a PNG)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return 0
    return head[24]


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write uint8/uint16 gray or RGB as PNG or TIFF (by suffix), atomically.

    Example:
        >>> import tempfile
        >>> p = tempfile.mktemp(suffix=".tif")
        >>> write_image(p, np.zeros((2, 2), np.uint16)); read_image(p).dtype
        dtype('uint16')
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: output must be .png, .tif or .tiff")
    tmp = path.with_name(path.name + ".part")
    if suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(tmp, image, photometric="rgb" if image.ndim == 3 else "minisblack")
    elif image.dtype == np.uint16 and image.ndim == 3:
        # Pillow cannot write 16-bit RGB PNG.
        import imagecodecs

        tmp.write_bytes(imagecodecs.png_encode(image))
    else:
        from PIL import Image

        Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)
