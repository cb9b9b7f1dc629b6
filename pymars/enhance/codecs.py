"""The compression settings an enhancer is trained for and evaluated on, as short names.

What it is for: one spelling for "what made this compressed image" across
training caches, model cards, the CLI and the bench: ``jpeg:30`` is the
protocol's JPEG anchor (Pillow, 4:2:0, ``optimize=True``) at QF 30,
``pymars:50`` is the pymars codec (shipped base model) at quality 50.
:func:`compress` returns the decoded image and the file size in bytes.

Example:
    >>> from pymars.data.synthetic import mars_like_scene
    >>> img = mars_like_scene(32, 32, seed=0)
    >>> dec, size = compress(img, "jpeg:30")
    >>> dec.shape, size > 0
    ((32, 32, 3), True)
"""
from __future__ import annotations

import numpy as np

from pymars.evaluation.classic import jpeg420

KINDS = ("jpeg", "pymars")


def parse(spec: str) -> tuple[str, int]:
    """``"jpeg:30"`` -> ("jpeg", 30), with a clear error for anything else.

    Example:
        >>> parse("pymars:50")
        ('pymars', 50)
    """
    kind, _, q = spec.partition(":")
    if kind not in KINDS or not q.isdigit() or not 1 <= int(q) <= 100:
        raise ValueError(f"compression setting {spec!r}: expected jpeg:Q or pymars:Q with Q in 1..100")
    return kind, int(q)


def compress(image: np.ndarray, spec: str) -> tuple[np.ndarray, int]:
    """(decoded uint8 image, bytes) of ``image`` under the setting ``spec``."""
    kind, q = parse(spec)
    if kind == "jpeg":

        coded = jpeg420(image, q)
        return coded.decoded, coded.n_bytes
    import pymars

    data = pymars.encode(image, quality=q)
    return np.asarray(pymars.decode(data)), len(data)


def gray_rgb(image: np.ndarray) -> np.ndarray:
    """A gray image (H, W) or an RGB one made gray (its BT.601 luma) as three equal channels (H, W, 3).

    Example:
        >>> gray_rgb(np.full((2, 2, 3), (200, 100, 50), np.uint8))[0, 0].tolist()
        [124, 124, 124]
    """
    from pymars.evaluation.protocol import luma

    return np.repeat(luma(image)[:, :, None], 3, 2)


def compressed_like_training(patch: np.ndarray, spec: str, gray: bool) -> np.ndarray:
    """A region or dictionary patch (H, W, 3) compressed under ``spec`` as a model's training saw it: as the gray image
    it is (one JPEG component, a gray pymars file) and back to three equal channels for a gray model.

    Example:
        >>> p = gray_rgb(np.full((16, 16), 90, np.uint8))
        >>> compressed_like_training(p, "jpeg:30", gray=True).shape
        (16, 16, 3)
    """
    if not gray:
        return compress(patch, spec)[0]
    return np.repeat(compress(np.ascontiguousarray(patch[:, :, 0]), spec)[0][:, :, None], 3, 2)
