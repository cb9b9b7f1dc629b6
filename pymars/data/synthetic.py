"""Procedural Mars-like scenes: the built-in default image and the test data.

Tests must run without ``../shared`` and the demo must run with no arguments,
so pymars carries a deterministic scene generator (NumPy only): a fractal
(fBm) terrain, lit by a low sun, seen in perspective below a dusty butterscotch
sky, with scattered shaded rocks and fine sand grain. It is not real data and
is never used for reported RD figures; it only has the statistics that matter
for exercising a codec (smooth sky, textured ground, sharp rock edges).

Example:
    >>> img = mars_like_scene(64, 96, seed=1)
    >>> img.shape, img.dtype
    ((64, 96, 3), dtype('uint8'))
"""
from __future__ import annotations

import numpy as np


def fractal_noise(h: int, w: int, rng: np.random.Generator, octaves: int = 6, persistence: float = 0.55) -> np.ndarray:
    """Sum of bilinearly upsampled random grids, roughly in [-1, 1].

    Example:
        >>> fractal_noise(8, 8, np.random.default_rng(0)).shape
        (8, 8)
    """
    out = np.zeros((h, w), np.float64)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = 2 ** (o + 2)
        grid = rng.standard_normal((cells + 1, cells + 1))
        ys = np.linspace(0, cells, h, endpoint=False)
        xs = np.linspace(0, cells, w, endpoint=False)
        y0, x0 = ys.astype(int), xs.astype(int)
        fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
        # Smoothstep weights hide the lattice that plain bilinear blending shows.
        fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
        g00 = grid[y0][:, x0]
        g01 = grid[y0][:, x0 + 1]
        g10 = grid[y0 + 1][:, x0]
        g11 = grid[y0 + 1][:, x0 + 1]
        out += amp * ((1 - fy) * ((1 - fx) * g00 + fx * g01) + fy * ((1 - fx) * g10 + fx * g11))
        total += amp
        amp *= persistence
    return out / total


def mars_like_scene(height: int = 512, width: int = 768, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A deterministic Mars-like RGB (or gray) uint8 scene.

    Example:
        >>> a = mars_like_scene(32, 32, seed=3); b = mars_like_scene(32, 32, seed=3)
        >>> bool((a == b).all())
        True
    """
    if height < 1 or width < 1:
        raise ValueError("scene size must be positive")
    rng = np.random.default_rng(seed)
    horizon = int(height * rng.uniform(0.2, 0.35))
    yy = np.arange(height)[:, None].astype(np.float64)
    xx = np.arange(width)[None, :].astype(np.float64)
    # Ground: height field with perspective (texture frequency grows toward the horizon).
    terrain = fractal_noise(height, width, rng, octaves=7)
    grad_y, grad_x = np.gradient(terrain * 40)
    sun = np.array([0.6, -0.5, 0.62])
    normal_z = 1.0 / np.sqrt(1 + grad_x**2 + grad_y**2)
    shade = np.clip(sun[0] * -grad_x * normal_z + sun[1] * -grad_y * normal_z + sun[2] * normal_z, 0, 1)
    grain = rng.standard_normal((height, width)) * 0.04
    albedo = 0.55 + 0.25 * fractal_noise(height, width, rng, octaves=4) + grain
    ground = np.clip(albedo * (0.35 + 0.75 * shade), 0, 1)
    # Rocks: shaded discs with a cast shadow, larger near the camera.
    for _ in range(int(width * height / 9000) + 3):
        cy = rng.uniform(horizon + 5, height)
        cx = rng.uniform(0, width)
        r = (2 + 18 * ((cy - horizon) / max(1, height - horizon)) ** 1.5) * rng.uniform(0.5, 1.5)
        d = np.sqrt((yy - cy) ** 2 + ((xx - cx) / 1.3) ** 2)
        rock = d < r
        lit = np.clip(0.5 + 0.5 * ((xx - cx) * sun[0] - (yy - cy) * sun[1]) / max(r, 1), 0.15, 1)
        shadow = (np.sqrt((yy - cy - 0.4 * r) ** 2 + ((xx - cx - 0.8 * r) / 1.6) ** 2) < r) & ~rock
        ground = np.where(shadow, ground * 0.55, ground)
        ground = np.where(rock, 0.3 + 0.5 * lit * (0.8 + 0.2 * rng.standard_normal()), ground)
    # Sky: smooth vertical gradient, brighter near the horizon, faint haze noise.
    t = np.clip(yy / max(1, horizon), 0, 1)
    sky = 0.55 + 0.25 * t + 0.02 * fractal_noise(height, width, rng, octaves=3)
    ridge = horizon + 6 * fractal_noise(1, width, rng, octaves=5)[0]
    is_sky = yy < ridge[None, :]
    lum = np.where(is_sky, sky, ground)
    tint_ground = np.array([1.0, 0.68, 0.45])
    tint_sky = np.array([0.95, 0.78, 0.62])
    rgb = np.where(is_sky[..., None], lum[..., None] * tint_sky, lum[..., None] * tint_ground)
    img = np.clip(np.round(rgb * 235), 0, 255).astype(np.uint8)
    if channels == 1:
        return np.ascontiguousarray(np.round(img.astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8))
    if channels != 3:
        raise ValueError("channels must be 1 or 3")
    return img
