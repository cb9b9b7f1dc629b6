"""Image assembly on the ground: a decoded tile -> the file's samples (channels, bit depth, mean).

What it is for: the last float-to-integer steps of a learned tile (rounding,
the tile mean the rover sent) and the conversion of any decoded tile to the
file's channels and bit depth, one tile at a time (no image-sized
intermediate). NumPy only.

Example:
    >>> import numpy as np
    >>> output_samples(to_uint8(np.full((2, 2, 1), 0.5)), 1, 8).tolist()
    [[128, 128], [128, 128]]
"""
from __future__ import annotations

import numpy as np


def output_samples(tile: np.ndarray, channels: int, bit_depth: int) -> np.ndarray:
    """A decoded tile (h, w, C) in the model's channels -> the file's channels and bit depth.

    A gray file decoded by an RGB model is averaged to one channel
    (:func:`gray_from_rgb`); an RGB file decoded by a gray model repeats its one
    channel; uint8 tiles of 12- and 16-bit files are expanded by ``round(v * m / 255)``
    (docs/bitstream.md §5). A uint16 tile already holds samples at the file's bit
    depth (source-depth near-lossless tiles, header flag bit 1, §4.8) and is not
    rescaled. Works on one tile, so no image-sized intermediate exists.

    Example:
        >>> output_samples(np.array([[[1, 2, 4]]], np.uint8), 1, 8).tolist()
        [[2]]
        >>> output_samples(np.array([[[255]]], np.uint8), 1, 12).tolist()
        [[4095]]
        >>> output_samples(np.array([[[4000]]], np.uint16), 1, 12).tolist()
        [[4000]]
    """
    if channels == 1:
        tile = tile[..., 0] if tile.shape[-1] == 1 else gray_from_rgb(tile)
    if tile.dtype == np.uint16:
        return tile  # already at the file's bit depth
    if bit_depth != 8:
        scale = (1 << bit_depth) - 1
        tile = np.round(tile.astype(np.float64) * scale / 255).astype(np.uint16)
    return tile


def restore_tile_mean(x: np.ndarray, mean16) -> np.ndarray:
    """Shift each channel of a synthesised tile (C, h, w) in [0, 1] to the mean the rover sent.

    ``mean16``: the tile's mean per channel in 1/16 of an 8-bit level
    (docs/bitstream.md §4.6). The synthesis pulls colours toward the training
    palette; the rover measures the true mean for 2 bytes per channel and tile, so
    the decoded tile's mean signed error is removed (up to clipping and rounding).

    Example:
        >>> x = restore_tile_mean(np.full((1, 2, 2), 0.5, np.float32), [16 * 102])
        >>> round(float(x.mean()) * 255, 3)
        102.0
    """
    target = np.asarray(mean16, np.float64)[: x.shape[0]] / (16.0 * 255.0)
    shift = target - x.reshape(x.shape[0], -1).mean(1, dtype=np.float64)
    return (x + shift[:, None, None]).astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8, rounded and clamped (docs/bitstream.md §4.5).

    Example:
        >>> to_uint8(np.array([-0.1, 0.5, 2.0])).tolist()
        [0, 128, 255]
    """
    return np.clip(np.floor(x * 255.0 + 0.5), 0, 255).astype(np.uint8)


def gray_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """Average of the three channels, rounded half up (gray files are coded as RGB).

    Example:
        >>> gray_from_rgb(np.array([[[1, 2, 4]]], np.uint8)).tolist()
        [[2]]
    """
    if rgb.dtype == np.uint16:  # source-depth samples (§4.8)
        return ((rgb.astype(np.uint32).sum(-1) * 2 + 3) // 6).astype(np.uint16)
    return ((rgb.astype(np.uint16).sum(-1) * 2 + 3) // 6).astype(np.uint8)
