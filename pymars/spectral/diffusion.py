"""DDPM noise schedule, v-prediction algebra and the DDIM sampler with two-condition classifier-free guidance.

What it is for: training (DDPM: noise a clean FAL image to a random time, the
network predicts ``v``) and sampling (DDIM, deterministic, any number of steps)
share one schedule. The sampler is plain numpy around a ``denoise`` callable,
so the same loop drives PyTorch in tests and ONNX Runtime in production
(``pymars spectral predict`` needs no torch).

Guidance follows InstructPix2Pix, with the metadata in the place of the text:

    v = v(0, 0) + s_img * (v(I, 0) - v(0, 0)) + s_meta * (v(I, M) - v(I, 0))

where ``v(I, M)`` is the prediction with the CaSSIS image ``I`` and the
metadata ``M``, and 0 drops a condition. Without metadata (unknown location)
the last term is left out. The three (or two) branches run as one batch.

v-prediction (``v = sqrt(a) * eps - sqrt(1 - a) * x0``) is used rather than
epsilon because it stays well conditioned at both ends of the schedule, which
matters for few-step DDIM with a small network.

Example:
    >>> import numpy as np
    >>> s = Schedule()
    >>> steps = s.ddim_times(4)
    >>> steps.tolist()
    [999, 749, 499, 249]
    >>> x0 = np.full((1, 3, 4, 4), 0.5, np.float32)
    >>> oracle = lambda x, t, cond: s.v_from(x, x0, t)  # a denoiser that knows the answer
    >>> out = ddim_sample(oracle, (1, 3, 4, 4), s, steps=4, seed=0)
    >>> bool(np.allclose(out, 0.5, atol=1e-4))
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

T_TRAIN = 1000


@dataclass
class Schedule:
    """Cosine schedule (Nichol & Dhariwal) of ``T`` steps; ``alpha_bar[t]`` for t = 0..T-1."""

    T: int = T_TRAIN

    def __post_init__(self):
        s = 0.008
        x = np.arange(self.T + 1, dtype=np.float64) / self.T
        f = np.cos((x + s) / (1 + s) * np.pi / 2) ** 2
        betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
        self.alpha_bar = np.cumprod(1 - betas)

    def ddim_times(self, steps: int) -> np.ndarray:
        """The ``steps`` times visited by DDIM, from T-1 down, evenly spaced.

        Example:
            >>> Schedule().ddim_times(2).tolist()
            [999, 499]
        """
        if not 1 <= steps <= self.T:
            raise ValueError(f"DDIM steps must be in 1..{self.T}, got {steps}")
        return (np.arange(steps)[::-1] * (self.T // steps) + (self.T - 1 - (steps - 1) * (self.T // steps))).astype(
            np.int64)

    def coefs(self, t) -> tuple[np.ndarray, np.ndarray]:
        """``(sqrt(alpha_bar), sqrt(1 - alpha_bar))`` at integer times ``t``.

        Example:
            >>> a, b = Schedule().coefs(0)
            >>> bool(a > 0.99 and b < 0.1)
            True
        """
        ab = self.alpha_bar[np.asarray(t)]
        return np.sqrt(ab), np.sqrt(1 - ab)

    def v_from(self, x_t: np.ndarray, x0: np.ndarray, t) -> np.ndarray:
        """The v target of ``x_t`` when the clean image is ``x0`` (eps recovered from the two).

        Example:
            >>> import numpy as np
            >>> s = Schedule(); x0 = np.ones(3); eps = np.array([0.5, -1.0, 2.0])
            >>> a, b = s.coefs(300); xt = a * x0 + b * eps
            >>> bool(np.allclose(s.v_from(xt, x0, 300), a * eps - b * x0))
            True
        """
        a, b = self.coefs(t)
        a, b = _bcast(a, x_t), _bcast(b, x_t)
        eps = (x_t - a * x0) / b
        return a * eps - b * x0


def _bcast(c, like: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    return c.reshape(c.shape + (1,) * (like.ndim - c.ndim)) if c.ndim else c


def guidance_combine(v: np.ndarray, image_scale: float, meta_scale: float, with_meta: bool) -> np.ndarray:
    """Combine branch predictions stacked on axis 0 as ``[v(0,0), v(I,0), v(I,M)]`` (the last only ``with_meta``).

    Example:
        >>> import numpy as np
        >>> v = np.stack([np.zeros(2), np.ones(2), 3 * np.ones(2)])
        >>> guidance_combine(v, 1.5, 2.0, True).tolist()
        [5.5, 5.5]
        >>> guidance_combine(v[:2], 1.0, 2.0, False).tolist()
        [1.0, 1.0]
    """
    out = v[0] + image_scale * (v[1] - v[0])
    if with_meta:
        out = out + meta_scale * (v[2] - v[1])
    return out


def ddim_sample(denoise: Callable[[np.ndarray, np.ndarray, object], np.ndarray], shape: tuple[int, ...],
                schedule: Schedule, steps: int, seed: int = 0, cond: object = None,
                progress: bool = False) -> np.ndarray:
    """Deterministic DDIM (eta = 0) from seeded Gaussian noise; returns x0 in [-1, 1].

    ``denoise(x_t, t, cond)`` returns the (already guided) v prediction for the
    batch ``x_t`` at integer times ``t`` (one per sample). The same seed gives the
    same output bit for bit.

    Example:
        >>> import numpy as np
        >>> s = Schedule(); f = lambda x, t, c: np.zeros_like(x)
        >>> a = ddim_sample(f, (1, 3, 2, 2), s, 5, seed=3); b = ddim_sample(f, (1, 3, 2, 2), s, 5, seed=3)
        >>> bool((a == b).all()), a.dtype
        (True, dtype('float32'))
    """
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    times = schedule.ddim_times(steps)
    for i, t in enumerate(tqdm(times, desc="DDIM", disable=not progress, leave=False)):
        v = np.asarray(denoise(x, np.full(shape[0], t, np.int64), cond), np.float64)
        a, b = schedule.coefs(t)
        x0 = np.clip(a * x - b * v, -1.0, 1.0)
        eps = (x - a * x0) / b
        if i + 1 < len(times):
            a2, b2 = schedule.coefs(times[i + 1])
            x = (a2 * x0 + b2 * eps).astype(np.float32)
        else:
            x = x0.astype(np.float32)
    return x
