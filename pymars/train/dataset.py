"""Training crops from the Mars development set, with the evaluation tiles held out.

EVALUATION.md allows training on any development tile, but figures reported on
tiles the model has seen would flatter it. So this sampler never returns a
pixel of a protocol tile: it excludes

* every selected ``dev_marsscapes`` window, grown by ``margin`` pixels, and
* every ``dev_marsdata`` source image that contributes a selected tile.

Crops come from the panoramas at native resolution and 2x box-downsampled (a
scale augmentation), and from the remaining MarsData images after the
protocol's 2x downsample; no crop holds more than 1 % pure-black pixels.

Example:
    >>> import numpy as np
    >>> pool = CropPool([np.full((200, 300, 3), 120, np.uint8)], crop=64)
    >>> pool.sample(np.random.default_rng(0), 4).shape
    (4, 3, 64, 64)
"""
from __future__ import annotations

import numpy as np

from pymars.clio import atomic_path
from pymars.data.synthetic import mars_like_scene
from pymars.evaluation.protocol import (
    NAVCAM_HELD_SOLS,
    black_mask,
    box_downsample_2x,
    dev_tiles,
    group_files,
    load_8bit,
    luma,
    mars_data_dir,
    navcam_sol,
    prepared_image,
    selected_windows,
)


def _integral(mask: np.ndarray) -> np.ndarray:
    ii = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    ii[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    return ii


def valid_positions(image: np.ndarray, crop: int, excluded: np.ndarray | None = None, stride: int = 8) -> np.ndarray:
    """Top-left corners (y, x) on a ``stride`` grid of crops with <1 % black and no excluded pixel.

    Example:
        >>> img = np.full((64, 64), 50, np.uint8); img[:, :8] = 0
        >>> len(valid_positions(img, 32))  # x = 0 would hold 25 % black: 4 columns x 5 rows remain
        20
    """
    h, w = image.shape[:2]
    if h < crop or w < crop:
        return np.zeros((0, 2), np.int32)
    ib = _integral(black_mask(image))
    ys, xs = np.meshgrid(np.arange(0, h - crop + 1, stride), np.arange(0, w - crop + 1, stride), indexing="ij")
    ys, xs = ys.ravel(), xs.ravel()

    def count(ii):
        return ii[ys + crop, xs + crop] - ii[ys, xs + crop] - ii[ys + crop, xs] + ii[ys, xs]

    ok = count(ib) < 0.01 * crop * crop
    if excluded is not None:
        ok &= count(_integral(excluded)) == 0
    return np.stack([ys[ok], xs[ok]], 1).astype(np.int32)


class CropPool:
    """Uniform random crops over a list of uint8 images (HxWx3 or HxW), horizontal flips.

    Grayscale images are replicated to 3 channels (the base model is RGB).
    """

    def __init__(
        self,
        images: list[np.ndarray],
        crop: int,
        excluded: list[np.ndarray | None] | None = None,
    ):
        self.crop = crop
        self.images = [self._prepare(im) for im in images]
        excluded = excluded or [None] * len(images)
        self.positions = [valid_positions(im, crop, ex) for im, ex in zip(self.images, excluded)]
        counts = np.array([len(p) for p in self.positions], np.float64)
        if counts.sum() == 0:
            raise ValueError(f"no valid {crop}x{crop} crop in {len(images)} images")
        # Every valid crop equally likely; callers may re-weight whole images via .weights.
        self.weights = counts / counts.sum()

    @staticmethod
    def _prepare(image: np.ndarray) -> np.ndarray:
        """How an image is stored: RGB (a gray image replicated to 3 channels)."""
        return image if image.ndim == 3 else np.repeat(image[..., None], 3, 2)

    def __len__(self) -> int:
        return int(sum(len(p) for p in self.positions))

    #: Channels of a sample (the stored form, see _prepare).
    channels = 3

    def _chw(self, rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
        """One stored crop (uint8) -> channels x crop x crop samples, before scaling."""
        return patch.transpose(2, 0, 1)

    def sample(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """A float32 batch (B, channels, crop, crop) in [0, 1]."""
        out = np.empty((batch, self.channels, self.crop, self.crop), np.float32)
        which = rng.choice(len(self.images), size=batch, p=self.weights)
        for i, k in enumerate(which):
            y, x = self.positions[k][rng.integers(len(self.positions[k]))]
            patch = self.images[k][y : y + self.crop, x : x + self.crop]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            out[i] = self._chw(rng, patch) * (1 / 255)
        return out


def mars_training_pool(crop: int, margin: int = 64, progress: bool = True, marsdata_share: float = 0.2,
                       augment: bool = False, scales: int = 2) -> CropPool:
    """The training pool over ``../shared/data/mars`` with every evaluation tile held out.

    ``augment``: a :class:`ColourCropPool` (white balance, tone, noise, JPEG history)
    instead of plain crops; ``scales``: the panoramas at native, 2x (and 4x, ...)
    box-downsampled resolution.

    Example:
        >>> mars_data_dir() is None or len(mars_training_pool(128, progress=False)) > 10000
        True
    """
    from tqdm import tqdm

    root = mars_data_dir()
    if root is None:
        raise FileNotFoundError("training needs ../shared/data/mars (or set PYMARS_SHARED)")
    images, excluded = [], []
    held = {}
    for path, y, x in selected_windows("dev_marsscapes", root):
        held.setdefault(path, []).append((y, x))
    files = group_files("dev_marsscapes", root)
    for path in tqdm(files, desc="panoramas", disable=not progress):
        img = prepared_image("dev_marsscapes", path)
        ex = np.zeros(img.shape[:2], bool)
        for y, x in held.get(path, []):
            ex[max(0, y - margin) : y + 256 + margin, max(0, x - margin) : x + 256 + margin] = True
        images.append(img)
        excluded.append(ex)
        # Box-downsampled copies: a scale augmentation (and the scale of the other groups;
        # downsampling also restores the sharpness that resampling removed).
        for _ in range(scales - 1):
            small = box_downsample_2x(img)
            ex = ex[: small.shape[0] * 2 : 2, : small.shape[1] * 2 : 2] | ex[1 : small.shape[0] * 2 : 2, 1 : small.shape[1] * 2 : 2]
            images.append(small)
            excluded.append(ex)
            img = small
    n_pano = len(images)
    held_files = {p for p, _, _ in selected_windows("dev_marsdata", root)}
    for path in tqdm(group_files("dev_marsdata", root), desc="marsdata", disable=not progress):
        if path not in held_files:
            images.append(prepared_image("dev_marsdata", path))
            excluded.append(None)
    pool = (ColourCropPool if augment else CropPool)(images, crop, excluded)
    # The panoramas hold ~97 % of all crop positions; give the MarsData scenes (the
    # other evaluation group, different optics and JPEG history) a fixed share.
    share = np.array([len(p) for p in pool.positions], np.float64)
    pano, data = share[:n_pano].sum(), share[n_pano:].sum()
    w = np.where(np.arange(len(images)) < n_pano, (1 - marsdata_share) / pano, marsdata_share / max(data, 1))
    pool.weights = share * w / (share * w).sum()
    return pool


class GrayCropPool(CropPool):
    """Gray crops (B, 1, crop, crop) with the augmentations of the gray model family.

    Real downlinks differ from our training images in exposure, sensor noise and
    compression history, so each crop is, independently:

    * re-exposed (probability ``p_tone``): gamma in [0.8, 1.25] and gain in [0.8, 1.15];
    * given sensor-like noise (``p_noise``): Gaussian, sigma up to 2 levels;
    * re-compressed (``p_jpeg``): one JPEG pass at quality 75..98 (JPEG history);

    and always rounded back to 8-bit levels, since the codec only ever sees integers.

    Example:
        >>> import numpy as np
        >>> pool = GrayCropPool([np.full((100, 120), 80, np.uint8)], crop=32)
        >>> b = pool.sample(np.random.default_rng(0), 3)
        >>> b.shape, float(b.min()) >= 0.0, float(b.max()) <= 1.0
        ((3, 1, 32, 32), True, True)
    """

    def __init__(self, images, crop, excluded=None, p_tone=0.5, p_noise=0.3, p_jpeg=0.2):
        super().__init__(images, crop, excluded)
        self.p_tone, self.p_noise, self.p_jpeg = p_tone, p_noise, p_jpeg

    @staticmethod
    def _prepare(image: np.ndarray) -> np.ndarray:
        """How an image is stored: gray (the luma of an RGB image)."""
        return image if image.ndim == 2 else _luma(image)

    def augment(self, rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
        """One crop (uint8 HxW) -> augmented uint8 HxW (see the class docstring)."""
        x = patch.astype(np.float32)
        if rng.random() < self.p_tone:
            gamma, gain = rng.uniform(0.8, 1.25), rng.uniform(0.8, 1.15)
            x = 255.0 * np.power(x / 255.0, gamma) * gain
        if rng.random() < self.p_noise:
            x = x + rng.normal(0.0, rng.uniform(0.3, 2.0), x.shape)
        out = np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)
        if rng.random() < self.p_jpeg:
            import io

            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(out).save(buf, "JPEG", quality=int(rng.integers(75, 99)))
            out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
        return out

    channels = 1

    def _chw(self, rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
        return self.augment(rng, patch)[None]


class ColourCropPool(CropPool):
    """RGB crops (B, 3, crop, crop) with the augmentations of the wide colour model.

    base-v1 learned one palette (Mastcam panoramas) and pulled every image toward
    it; other cameras differ in white balance, exposure, noise and compression
    history, so each crop is, independently:

    * white-balanced differently (probability ``p_balance``): per-channel gains in
      [0.8, 1.2], then a saturation change in [0.5, 1.5] about the pixel's gray;
    * re-exposed (``p_tone``): gamma in [0.8, 1.25] and gain in [0.8, 1.15];
    * given sensor-like noise (``p_noise``): Gaussian per channel, sigma up to 2 levels;
    * re-compressed (``p_jpeg``): one JPEG 4:4:4 pass at quality 75..98;

    and rounded back to 8-bit levels.

    Example:
        >>> import numpy as np
        >>> pool = ColourCropPool([np.full((100, 120, 3), 80, np.uint8)], crop=32)
        >>> b = pool.sample(np.random.default_rng(0), 3)
        >>> b.shape, float(b.min()) >= 0.0, float(b.max()) <= 1.0
        ((3, 3, 32, 32), True, True)
    """

    def __init__(self, images, crop, excluded=None, p_balance=0.5, p_tone=0.4, p_noise=0.3, p_jpeg=0.2):
        super().__init__(images, crop, excluded)
        self.p_balance, self.p_tone, self.p_noise, self.p_jpeg = p_balance, p_tone, p_noise, p_jpeg

    def augment(self, rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
        """One crop (uint8 HxWx3) -> augmented uint8 HxWx3 (see the class docstring)."""
        x = patch.astype(np.float32)
        if rng.random() < self.p_balance:
            x = x * rng.uniform(0.8, 1.2, 3).astype(np.float32)
            g = x.mean(2, keepdims=True)
            x = g + (x - g) * np.float32(rng.uniform(0.5, 1.5))
        if rng.random() < self.p_tone:
            gamma, gain = rng.uniform(0.8, 1.25), rng.uniform(0.8, 1.15)
            x = 255.0 * np.power(np.clip(x, 0, 255) / 255.0, gamma) * gain
        if rng.random() < self.p_noise:
            x = x + rng.normal(0.0, rng.uniform(0.3, 2.0), x.shape)
        out = np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)
        if rng.random() < self.p_jpeg:
            import io

            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(out).save(buf, "JPEG", quality=int(rng.integers(75, 99)), subsampling=0)
            out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        return out

    def _chw(self, rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
        return self.augment(rng, patch).transpose(2, 0, 1)


def _luma(rgb: np.ndarray) -> np.ndarray:

    return luma(rgb)


def gray_training_pool(crop: int, margin: int = 64, progress: bool = True,
                       shares: tuple[float, float, float] = (0.5, 0.35, 0.15)) -> GrayCropPool:
    """Gray training crops: Navcam (training sols), luma of the colour sets, at several scales.

    * Navcam full frames of the training sols at native resolution, 2x and 4x
      box-downsampled (the evaluation scale is 2x; downsampling also restores the
      sharpness that JPEG history removed), and the 256x256 on-board binned frames
      of every sol not held out (``NAVCAM_HELD_SOLS``);
    * luma of the MarsScapes panoramas at 2x and 4x (native resolution is resampled
      and soft) with every protocol window held out;
    * luma of the MarsData scenes not used by a protocol tile.

    ``shares``: the fraction of crops drawn from (Navcam, MarsScapes, MarsData).

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or len(gray_training_pool(128, progress=False)) > 10000
        True
    """
    from tqdm import tqdm

    root = mars_data_dir()
    if root is None:
        raise FileNotFoundError("training needs ../shared/data/mars (or set PYMARS_SHARED)")
    images, excluded, source = [], [], []
    nav = root / "curiosity_navcam_gray"
    for path in tqdm(sorted((nav / "full_1024").glob("*.jpg")), desc="navcam", disable=not progress):
        if navcam_sol(path) in NAVCAM_HELD_SOLS:
            continue
        img = load_8bit(path)
        img = img if img.ndim == 2 else _luma(img)
        for _ in range(3):
            images.append(img)
            excluded.append(None)
            source.append(0)
            img = box_downsample_2x(img)
    for path in sorted((nav / "binned_256").glob("*.jpg")):
        if navcam_sol(path) not in NAVCAM_HELD_SOLS:
            img = load_8bit(path)
            images.append(img if img.ndim == 2 else _luma(img))
            excluded.append(None)
            source.append(0)
    held = {}
    for path, y, x in selected_windows("dev_marsscapes", root):
        held.setdefault(path, []).append((y, x))
    for path in tqdm(group_files("dev_marsscapes", root), desc="panoramas", disable=not progress):
        img = _luma(prepared_image("dev_marsscapes", path))
        ex = np.zeros(img.shape[:2], bool)
        for y, x in held.get(path, []):
            ex[max(0, y - margin) : y + 256 + margin, max(0, x - margin) : x + 256 + margin] = True
        for _ in range(2):
            h2, w2 = img.shape[0] // 2, img.shape[1] // 2
            ex = ex[: 2 * h2 : 2, : 2 * w2 : 2] | ex[1 : 2 * h2 : 2, 1 : 2 * w2 : 2]
            img = box_downsample_2x(img)
            images.append(img)
            excluded.append(ex)
            source.append(1)
    held_files = {p for p, _, _ in selected_windows("dev_marsdata", root)}
    for path in group_files("dev_marsdata", root):
        if path not in held_files:
            images.append(_luma(prepared_image("dev_marsdata", path)))
            excluded.append(None)
            source.append(2)
    pool = GrayCropPool(images, crop, excluded)
    counts = np.array([len(p) for p in pool.positions], np.float64)
    source = np.array(source)
    w = np.zeros(len(images))
    for s, share in enumerate(shares):
        tot = counts[source == s].sum()
        if tot:
            w[source == s] = share / tot
    pool.weights = counts * w / (counts * w).sum()
    return pool


def save_pool(pool: CropPool, path) -> None:
    """Store a crop pool's images, valid positions and weights in one ``.npz`` (written atomically).

    A pool saved here trains on a machine without ``../shared`` (a lent GPU gets
    the working tree only): ``scripts/gpu_train.sh`` carries it.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "pool.npz")
        >>> save_pool(GrayCropPool([np.full((80, 90), 9, np.uint8)], 32), p)
        >>> type(load_pool(p)).__name__, len(load_pool(p))
        ('GrayCropPool', 56)
    """
    from pathlib import Path

    path = Path(path)
    kind = "gray" if isinstance(pool, GrayCropPool) else "rgb-aug" if isinstance(pool, ColourCropPool) else "rgb"
    arrays = {"kind": np.array(kind), "crop": np.array(pool.crop),
              "weights": pool.weights}
    for i, (im, pos) in enumerate(zip(pool.images, pool.positions)):
        arrays[f"image_{i}"], arrays[f"positions_{i}"] = im, pos
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_pool(path) -> CropPool:
    """The pool :func:`save_pool` wrote (same images, positions and weights)."""
    with np.load(path) as f:
        n = sum(1 for k in f.files if k.startswith("image_"))
        images = [f[f"image_{i}"] for i in range(n)]
        positions = [f[f"positions_{i}"] for i in range(n)]
        kind, crop, weights = str(f["kind"]), int(f["crop"]), f["weights"]
    cls = {"gray": GrayCropPool, "rgb-aug": ColourCropPool}.get(kind, CropPool)
    pool = object.__new__(cls)
    pool.crop, pool.images, pool.positions, pool.weights = crop, images, positions, weights
    if kind == "gray":
        pool.p_tone, pool.p_noise, pool.p_jpeg = 0.5, 0.3, 0.2
    elif kind == "rgb-aug":
        pool.p_balance, pool.p_tone, pool.p_noise, pool.p_jpeg = 0.5, 0.4, 0.3, 0.2
    return pool


def synthetic_pool(crop: int, gray: bool = False) -> CropPool:
    """A crop pool over eight procedural Mars-like scenes (tests and smoke runs: no ``../shared``).

    Example:
        >>> synthetic_pool(64, gray=True).sample(np.random.default_rng(0), 2).shape
        (2, 1, 64, 64)
    """

    scenes = [mars_like_scene(256, 384, seed=s) for s in range(8)]
    return GrayCropPool(scenes, crop) if gray else CropPool(scenes, crop)


def validation_tiles(count: int = 6, gray: bool = False) -> list[np.ndarray]:
    """A fixed, evenly spaced subset of ``count`` development tiles per group ([] without ``../shared``).

    Training validates on them (monitoring only: they are never trained on).

    Example:
        >>> tiles = validation_tiles(2)
        >>> mars_data_dir() is None and tiles == [] or len(tiles) == 4
        True
    """

    if mars_data_dir() is None:
        return []
    tiles = []
    for group in ("dev_navcam", "dev_marsscapes_gray") if gray else ("dev_marsscapes", "dev_marsdata"):
        all_tiles = dev_tiles(group)
        step = max(1, len(all_tiles) // count)
        tiles += [t.pixels for t in all_tiles[::step][:count]]
    return tiles
