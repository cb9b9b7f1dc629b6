"""Training augmentations of the thesis: rotation, flips and crops, applied identically to input and target.

What it is for: 57 training scenes are few; the thesis augments with a random
rotation in [-45, 45] degrees, vertical flips and crops. Everything here is
geometric and applied to both images of a pair with the same parameters. There
is deliberately no photometric change (brightness, contrast, colour jitter):
the FAL target's colours *are* the mineralogy, so changing them would teach
wrong minerals. Rotation resamples bilinearly and fills with 0, the value of
"outside the footprint" in the data.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = np.random.default_rng(1).integers(1, 255, (32, 32, 3), dtype=np.uint8)
    >>> x, y = augment_pair(a, a.copy(), rng, crop=16)
    >>> x.shape, bool((x == y).all())  # same geometry on both sides
    ((16, 16, 3), True)
"""
from __future__ import annotations

import numpy as np

#: Largest rotation (degrees) of the thesis' augmentation.
MAX_ROTATION_DEG = 45.0


def rotate(img: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate an HxWxC uint8 image about its centre (bilinear, same size, 0 outside).

    Example:
        >>> import numpy as np
        >>> a = np.zeros((5, 5, 3), np.uint8); a[0, 2] = 200
        >>> int(rotate(a, 180.0)[4, 2, 0])
        200
    """
    from PIL import Image

    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c])).rotate(
        angle_deg, resample=Image.Resampling.BILINEAR, fillcolor=0)) for c in range(img.shape[2])]
    return np.stack(chans, axis=-1)


def augment_pair(inp: np.ndarray, tgt: np.ndarray, rng: np.random.Generator, crop: int,
                 rotate_p: float = 0.5, min_footprint: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Random rotation (probability ``rotate_p``, angle in +-45 deg), flips and a ``crop`` x ``crop`` crop.

    The crop is drawn again (up to 8 times) while less than ``min_footprint``
    of it lies inside the footprint (input not all zero), so batches are not
    mostly black border.

    Example:
        >>> import numpy as np
        >>> a = np.ones((8, 8, 3), np.uint8)
        >>> augment_pair(a, a, np.random.default_rng(0), crop=16)
        Traceback (most recent call last):
        ...
        ValueError: crop 16 is larger than the 8x8 image
    """
    h, w = inp.shape[:2]
    if crop > h or crop > w:
        raise ValueError(f"crop {crop} is larger than the {h}x{w} image")
    if rng.random() < rotate_p:
        angle = float(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
        inp, tgt = rotate(inp, angle), rotate(tgt, angle)
    if rng.random() < 0.5:
        inp, tgt = inp[::-1], tgt[::-1]
    if rng.random() < 0.5:
        inp, tgt = inp[:, ::-1], tgt[:, ::-1]
    for _ in range(8):
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        a = inp[y:y + crop, x:x + crop]
        if (a.max(axis=-1) > 0).mean() >= min_footprint:
            break
    return np.ascontiguousarray(a), np.ascontiguousarray(tgt[y:y + crop, x:x + crop])
