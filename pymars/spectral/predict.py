"""Predict the FAL composite of a CaSSIS-like image with ONNX Runtime (no torch needed).

What it is for: the ground tool behind ``pymars spectral predict``. It loads a
weights folder written by :mod:`pymars.spectral.export` (the shipped ones are
``pymars/weights/spectral-unet`` and ``spectral-diffusion``) and maps a 3-band
8-bit CaSSIS composite (BLU, PAN, NIR, per-channel stretched, black outside the
footprint) to an 8-bit FAL composite (R2529, R1506, R1080).

* ``unet`` folders: one network evaluation. A UNet with the carbonate
  detection head also gives a per-pixel carbonate logit
  (:meth:`SpectralPredictor.predict_with_carbonate`); its decision threshold,
  once chosen on the val part, is ``config.json``'s
  ``carbonate_head.threshold`` (:func:`pymars.spectral.evaluate.save_carbonate_threshold`).
* ``diffusion`` folders: DDIM from seeded noise with classifier-free guidance
  on the image and, when the location is given, on the metadata
  (:func:`pymars.spectral.diffusion.ddim_sample`); the branches run as one
  ONNX batch per step.

Images whose sides are not a multiple of the network's 4 are padded by edge
replication and cropped back. Pixels outside the footprint are set to 0 in
the output, as in the data. Metadata is all or nothing: latitude, longitude
and a known site (:data:`~pymars.spectral.metadata.SITES`), or none.

Example:
    >>> import numpy as np
    >>> check_cassis(np.zeros((4, 4), np.uint8))
    Traceback (most recent call last):
    ...
    ValueError: CaSSIS input must be HxWx3, got shape (4, 4)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pymars.clio import atomic_path
from pymars.spectral.diffusion import Schedule, ddim_sample, guidance_combine
from pymars.spectral.metadata import SITES, normalise_site

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MIN_SIDE = 8


def check_cassis(img) -> np.ndarray:
    """Validate a CaSSIS composite: a non-empty HxWx3 uint8 array of sides >= 8.

    Example:
        >>> import numpy as np
        >>> check_cassis(np.zeros((8, 8, 3), np.float32))
        Traceback (most recent call last):
        ...
        ValueError: CaSSIS input must be uint8 (8-bit), got float32
    """
    if not isinstance(img, np.ndarray):
        raise ValueError(f"CaSSIS input must be a numpy array, got {type(img).__name__}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"CaSSIS input must be HxWx3, got shape {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"CaSSIS input must be uint8 (8-bit), got {img.dtype}")
    if min(img.shape[:2]) < MIN_SIDE:
        raise ValueError(f"CaSSIS input must be at least {MIN_SIDE}x{MIN_SIDE}, got {img.shape[0]}x{img.shape[1]}")
    return img


def check_metadata(lat, lon, site) -> tuple[float, float, int] | None:
    """``(lat, lon, site index)`` for complete metadata, None for none; ValueError for partial or bad values.

    Example:
        >>> check_metadata(18.4, 77.6, "Jezero crater")[2] == SITES.index("jezero_crater")
        True
        >>> check_metadata(None, None, None) is None
        True
        >>> check_metadata(100.0, 0.0, "coprates")
        Traceback (most recent call last):
        ...
        ValueError: latitude must be in [-90, 90], got 100.0
    """
    given = [v is not None for v in (lat, lon, site)]
    if not any(given):
        return None
    if not all(given):
        raise ValueError("give latitude, longitude and site together (or none of them)")
    lat, lon = float(lat), float(lon)
    if not (np.isfinite(lat) and np.isfinite(lon)):
        raise ValueError("latitude and longitude must be finite numbers")
    if abs(lat) > 90:
        raise ValueError(f"latitude must be in [-90, 90], got {lat}")
    lon = (lon + 180.0) % 360.0 - 180.0  # accept 0..360 E as well
    s = normalise_site(site)
    prefixed = [k for k in SITES[1:] if k.startswith(s)]
    s = prefixed[0] if s not in SITES and len(prefixed) == 1 else s  # "jezero" -> "jezero_crater"
    if s not in SITES[1:]:
        raise ValueError(f"unknown site {site!r}; known: {', '.join(SITES[1:])}")
    return lat, lon, SITES.index(s)


def resolve_weights(name_or_folder: str | Path) -> Path:
    """A weights folder from a path or a shipped name (``unet``, ``diffusion``, ``spectral-unet`` ...).

    Example:
        >>> resolve_weights("no-such-model")
        Traceback (most recent call last):
        ...
        FileNotFoundError: spectral weights 'no-such-model' not found (a folder with config.json and model.onnx, or one of: ...)
    """
    p = Path(name_or_folder)
    for cand in (p, WEIGHTS_DIR / str(name_or_folder), WEIGHTS_DIR / f"spectral-{name_or_folder}"):
        if (cand / "config.json").is_file() and (cand / "model.onnx").is_file():
            return cand
    shipped = sorted(d.name for d in WEIGHTS_DIR.glob("spectral-*") if (d / "model.onnx").is_file())
    raise FileNotFoundError(f"spectral weights {str(name_or_folder)!r} not found (a folder with config.json and "
                            f"model.onnx, or one of: {', '.join(shipped) or 'none shipped'})")


class SpectralPredictor:
    """An ONNX Runtime session on a spectral weights folder; :meth:`predict` maps CaSSIS to FAL (uint8)."""

    def __init__(self, weights: str | Path = "diffusion", threads: int = 1):
        import onnxruntime as ort

        self.folder = resolve_weights(weights)
        self.config = json.loads((self.folder / "config.json").read_text())
        self.kind = self.config["model"]["kind"]
        self.multiple = 2 ** (len(self.config["model"]["mults"]) - 1)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.folder / "model.onnx"), opts,
                                            providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.has_carbonate_head = len(self.session.get_outputs()) > 1
        self.schedule = Schedule()

    def _run(self, feeds: dict[str, np.ndarray], everything: bool = False):
        outs = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})
        return outs if everything else outs[0]

    def predict_with_carbonate(self, cassis: np.ndarray, lat: float | None = None, lon: float | None = None,
                               site: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """FAL composite (HxWx3 uint8) and carbonate logit map (HxW float32, -inf outside the footprint) of a
        UNet with the carbonate head, from one network evaluation.

        ``logit >= config["carbonate_head"]["threshold"]`` is the head's carbonate
        mask; it is a separate detector, not the FAL output's green rule.

        Example:
            >>> import numpy as np
            >>> p = SpectralPredictor.__new__(SpectralPredictor)
            >>> p.kind, p.has_carbonate_head = "unet", False
            >>> p.predict_with_carbonate(np.zeros((8, 8, 3), np.uint8))
            Traceback (most recent call last):
            ...
            ValueError: this model has no carbonate head (train with --carbonate-head)
        """
        if self.kind != "unet" or not self.has_carbonate_head:
            raise ValueError("this model has no carbonate head (train with --carbonate-head)")
        cassis = check_cassis(cassis)
        out, logit = self._run(self._unet_feeds(cassis, check_metadata(lat, lon, site)), everything=True)[:2]
        h, w = cassis.shape[:2]
        logit = logit[0, 0, :h, :w].astype(np.float32)
        logit[cassis.max(axis=-1) == 0] = -np.inf
        return self._to_fal(out[0], cassis), logit

    def _unet_feeds(self, cassis: np.ndarray, meta) -> dict[str, np.ndarray]:
        h, w = cassis.shape[:2]
        m = self.multiple
        padded = np.pad(cassis, ((0, -h % m), (0, -w % m), (0, 0)), mode="edge")
        x = (np.moveaxis(padded.astype(np.float32), -1, 0)[None] / 127.5 - 1.0).astype(np.float32)
        lat_v, lon_v, site_i = meta if meta is not None else (0.0, 0.0, 0)
        return {"cassis": x, "image_keep": np.ones(1, np.float32), "lat": np.array([lat_v], np.float32),
                "lon": np.array([lon_v], np.float32), "site": np.array([site_i], np.int64),
                "meta_keep": np.array([1.0 if meta else 0.0], np.float32)}

    @staticmethod
    def _to_fal(out: np.ndarray, cassis: np.ndarray) -> np.ndarray:
        h, w = cassis.shape[:2]
        fal = np.clip(np.round((np.moveaxis(out, 0, -1)[:h, :w] + 1.0) * 127.5), 0, 255).astype(np.uint8)
        fal[cassis.max(axis=-1) == 0] = 0
        return fal

    def predict(self, cassis: np.ndarray, lat: float | None = None, lon: float | None = None,
                site: str | None = None, steps: int | None = None, image_guidance: float | None = None,
                meta_guidance: float | None = None, seed: int | None = None, progress: bool = False,
                samples: int | None = None) -> np.ndarray:
        """FAL composite (HxWx3 uint8) of a CaSSIS composite (HxWx3 uint8); sampler settings default to config.json.

        ``samples`` (diffusion): the mean of that many DDIM samples from seeds
        ``seed, seed + 1, ...``. One sample is one draw of the model's posterior; their
        mean estimates the posterior mean, which is what RMSE and PCC reward (a
        single draw's own spread adds to its error), at ``samples`` times the cost.

        Example:
            >>> import numpy as np
            >>> p = SpectralPredictor.__new__(SpectralPredictor)
            >>> p.predict(np.zeros((2, 2, 3), np.uint8))
            Traceback (most recent call last):
            ...
            ValueError: CaSSIS input must be at least 8x8, got 2x2
        """
        cassis = check_cassis(cassis)
        meta = check_metadata(lat, lon, site)
        feeds = self._unet_feeds(cassis, meta)
        x = feeds["cassis"]
        lat_v, lon_v, site_i = meta if meta is not None else (0.0, 0.0, 0)
        if self.kind == "unet":
            out = self._run(feeds)[0]
        else:
            s = self.config.get("sampler", {})
            steps = int(steps if steps is not None else s.get("steps", 20))
            gi = float(image_guidance if image_guidance is not None else s.get("image_guidance", 1.5))
            gm = float(meta_guidance if meta_guidance is not None else s.get("meta_guidance", 2.0))
            # Branches: (no image, no meta), (image, no meta) [, (image, meta)].
            n = 3 if meta else 2
            feeds = {"cassis": np.repeat(x, n, axis=0), "image_keep": np.array([0, 1, 1][:n], np.float32),
                     "lat": np.full(n, lat_v, np.float32), "lon": np.full(n, lon_v, np.float32),
                     "site": np.full(n, site_i, np.int64), "meta_keep": np.array([0, 0, 1][:n], np.float32)}

            def denoise(x_t, t, _):
                f = dict(feeds, x_t=np.repeat(x_t, n, axis=0), t=np.repeat(t, n).astype(np.float32))
                return guidance_combine(self._run(f), gi, gm, meta is not None)[None]

            n_samples = int(samples if samples is not None else s.get("samples", 1))
            if n_samples < 1:
                raise ValueError(f"samples must be >= 1, got {n_samples}")
            first = int(seed if seed is not None else s.get("seed", 0))
            out = np.mean([ddim_sample(denoise, x.shape, self.schedule, steps, seed=first + i,
                                       progress=progress)[0] for i in range(n_samples)], axis=0)
        return self._to_fal(out, cassis)


def write_png_atomic(path: str | Path, img: np.ndarray) -> None:
    """Write an 8-bit image as PNG through a temporary file renamed at the end (no half-written output).

    Example:
        >>> import tempfile, os, numpy as np
        >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
        >>> write_png_atomic(p, np.zeros((2, 2, 3), np.uint8)); os.path.isfile(p)
        True
    """

    from PIL import Image

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")
