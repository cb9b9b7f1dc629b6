"""Train the Arith2 near-lossless coder's prior tables (blob section NLPR, docs/model-blob.md).

The Arith2 coder (csrc/core/nearlossless.h, docs/bitstream.md §4.8) gives every
binary decision a probability per gradient context (365 LOCO-I contexts x 3
previous-channel classes x 16 bins: 17,520 per channel). A 256 x 256 tile is far
too short to learn that many from 1/2; a training set is not. The priors are each
context's P(0) on training crops, per channel (gray: one; RGB: R, G - R, B - G
planes) and per k class (k = 0, 1..2, 3..5, 6+), counted by the C++ coder itself
(``_core.nl_bin_counts``) so that the contexts cannot disagree.

Training data: the crop pools of the learned models (``gray_training_pool``,
``mars_training_pool``), which hold every evaluation tile out.
This module trains; it must not be imported by the encoder or decoder paths.
"""
from __future__ import annotations

import numpy as np

from pymars import _core
from pymars.train.codec.wavelet_priors import priors_from_counts, training_tiles

#: The maximum errors counted for each k class of nearlossless.h (nl_k_class):
#: 0; 1..2; 3..5; 6 and above (6, 8 and 16, the ladders' loose end).
CLASS_ERRORS = ((0,), (1, 2), (3, 4, 5), (6, 8, 16))


def count_bins(tiles, channels: int) -> np.ndarray:
    """Bin counts [channels][k classes][contexts][bins][2] of ``tiles`` (uint8 HxW or HxWx3) at every k counted.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> c = count_bins([mars_like_scene(48, 48)[..., 0]], 1)
        >>> c.shape == (1, 4, _core.NL_CONTEXTS, _core.NL_BINS, 2), bool(c.sum() > 0)
        (True, True)
    """
    out = np.zeros((channels, len(CLASS_ERRORS), _core.NL_CONTEXTS, _core.NL_BINS, 2), np.uint64)
    for tile in tiles:
        for c, errors in enumerate(CLASS_ERRORS):
            for k in errors:
                counts, _ = _core.nl_bin_counts(np.ascontiguousarray(tile), k)
                out[:, c] += counts[:channels]
    return out


def train_priors(channels: int, n: int = 200, seed: int = 0, progress: bool = True) -> np.ndarray:
    """The NLPR table uint16 [channels][4][contexts][bins] of a gray (1) or colour (3) model.

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or train_priors(1, n=1, progress=False).shape[:2] == (1, 4)
        True
    """
    from tqdm import tqdm

    tiles = training_tiles(channels, n, seed, progress=progress)
    counts = count_bins(tqdm(tiles, desc="near-lossless priors", disable=not progress), channels)
    return priors_from_counts(counts)
