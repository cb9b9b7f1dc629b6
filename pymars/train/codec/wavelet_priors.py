"""Train the wavelet coder's prior tables (blob section WVPR, docs/model-blob.md).

The wavelet tile coder (csrc/core/wavelet.h, docs/bitstream.md §4.9) codes every
binary decision with an adaptive probability. A 256x256 tile's bands are short:
starting every context at 1/2 costs the bits it takes to learn the statistics,
most on smooth tiles and at low rates. The priors are each context's mean P(0)
on training crops, per plane kind (gray or Y; colour differences) and per step
class (steps below 2, 4, 8, 16, 32 levels and above), counted by the C++ coder
itself (``_core.wavelet_bin_counts``) so that the contexts cannot disagree.

Training data: the crop pools of the learned models (``gray_training_pool``,
``mars_training_pool``), which hold every evaluation tile out.
This module trains; it must not be imported by the encoder or decoder paths.
"""
from __future__ import annotations

import numpy as np

from pymars import _core
from pymars.train.dataset import gray_training_pool, mars_training_pool

#: Steps (8-bit levels) counted for each step class of wavelet.h (wv_step_class):
#: the class's geometric middle; the open top class gets two.
CLASS_STEPS = ((1.4,), (2.8,), (5.7,), (11.3,), (22.6,), (45.0, 110.0))
PROB_ONE = 1 << 15


def priors_from_counts(counts: np.ndarray) -> np.ndarray:
    """uint16 P(0) (15-bit, clamped to the coder's [32, 32736]) from bin counts [..., 2].

    Example:
        >>> priors_from_counts(np.array([[3, 1], [0, 0]])).tolist()
        [21845, 16384]
    """
    n0, n1 = counts[..., 0].astype(np.float64), counts[..., 1].astype(np.float64)
    p = (n0 + 1) / (n0 + n1 + 2)  # Laplace: an unseen context stays at 1/2
    return np.clip(np.round(p * PROB_ONE), 32, 32736).astype(np.uint16)


def count_bins(tiles, channels: int) -> np.ndarray:
    """Bin counts [kinds][classes][contexts][2] of ``tiles`` (uint8 HxW or HxWx3) over every step class.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> c = count_bins([mars_like_scene(64, 64)[..., 0]], 1)
        >>> c.shape, bool(c.sum() > 0)
        ((1, 6, 504, 2), True)
    """

    kinds = 2 if channels == 3 else 1
    out = np.zeros((kinds, len(CLASS_STEPS), _core.WAVELET_STATE_BITS, 2), np.uint64)
    for tile in tiles:
        for c, steps in enumerate(CLASS_STEPS):
            for step in steps:
                counts, _ = _core.wavelet_bin_counts(np.ascontiguousarray(tile), int(round(16 * step)))
                out[:, c] += counts[:kinds]
    return out


def training_tiles(channels: int, n: int, seed: int = 0, size: int = 256, progress: bool = True) -> list[np.ndarray]:
    """``n`` random size x size uint8 crops of the training pool (gray: HxW, colour: HxWx3).

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or training_tiles(1, 2, progress=False)[0].shape == (256, 256)
        True
    """

    pool = gray_training_pool(size, progress=progress) if channels == 1 else mars_training_pool(size, progress=progress)
    rng = np.random.default_rng(seed)
    tiles = []
    for k in rng.choice(len(pool.images), size=n, p=pool.weights):
        pos = pool.positions[k]
        y, x = pos[rng.integers(len(pos))]
        t = pool.images[k][y : y + size, x : x + size]
        tiles.append(np.ascontiguousarray(t if channels == 3 or t.ndim == 2 else t[..., 0]))
    return tiles


def train_priors(channels: int, n: int = 400, seed: int = 0, progress: bool = True) -> np.ndarray:
    """The WVPR table uint16 [kinds][6][504] of a gray (1) or colour (3) model (504 binary contexts).

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or train_priors(1, n=2, progress=False).shape == (1, 6, 504)
        True
    """
    from tqdm import tqdm

    tiles = training_tiles(channels, n, seed, progress=progress)
    counts = count_bins(tqdm(tiles, desc="wavelet priors", disable=not progress), channels)
    return priors_from_counts(counts)
