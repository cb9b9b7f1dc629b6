"""The real radiometric check: a CRISM VNIR+IR cube pair through the whole chain.

What it is for: the PNG pairs are 8-bit stretched products of someone else's
pipeline; ``frt0001458f_01`` is the one real CRISM TRR3 frame in
``../shared/data/spectral/crism_trr3_epf_cutouts`` with both detectors for the
same 15 x 64 pixels. Here the CaSSIS BLU/PAN/NIR bands are computed from the
S (VNIR) cube with the CaSSIS filter curves
(:func:`pymars.spectral.synthesis.filter_bands`), the true FAL bands are read
from the L (IR) cube at 2.529, 1.506 and 1.080 um, both are stretched to 8 bits
per channel as the training pairs were, and a model's prediction from the
CaSSIS composite is compared with the true FAL composite. A least-squares
linear map from the four CaSSIS bands (fitted on these very pixels, so an
optimistic reference) gives the per-channel R^2 a simple model reaches.

Caveats (stated with every result): the frame is spectrally bland (FAL
standard deviation about 0.01 I/F), not atmospherically corrected, and tiny;
it tests the chain end to end, not carbonate detection.

Example:
    >>> import numpy as np
    >>> wl = np.linspace(0.36, 1.06, 50); cube = np.ones((2, 3, 50), np.float32)
    >>> spectra_to_bands(cube, wl, {"BLU": (np.array([500.0]), np.array([1.0]))}, ("BLU",)).shape
    (2, 3, 1)
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pymars.spectral.metrics import image_metrics
from pymars.spectral.pds import read_image
from pymars.spectral.predict import SpectralPredictor
from pymars.spectral.synthesis import FAL_WAVELENGTHS_UM, INPUT_FILTERS, filter_bands, read_filter_curves, stretch8

PAIR = "frt0001458f_01"


def spectra_to_bands(cube: np.ndarray, wl_um: np.ndarray, curves: dict, filters: tuple[str, ...]) -> np.ndarray:
    """Filter bands ``(lines, samples, len(filters))`` of a cube ``(lines, samples, bands)``; NaN where a spectrum has NaN.

    Example:
        >>> import numpy as np
        >>> c = np.full((1, 2, 3), 0.2, np.float32); c[0, 1, 0] = np.nan
        >>> out = spectra_to_bands(c, np.array([0.4, 0.5, 0.6]), {"B": (np.array([500.0]), np.array([1.0]))}, ("B",))
        >>> out.round(3).tolist()
        [[[0.2], [nan]]]
    """
    flat = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
    ok = np.isfinite(flat).all(axis=1)
    out = np.full((flat.shape[0], len(filters)), np.nan)
    if ok.any():
        out[ok] = filter_bands(wl_um, flat[ok], curves, filters)
    return out.reshape(cube.shape[:2] + (len(filters),))


def _wavelengths(csv_path: Path) -> np.ndarray:
    with csv_path.open() as f:
        return np.array([float(r["wavelength_um"]) for r in csv.DictReader(f)])


def load_real_pair(spectral_dir: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cassis_bands (15, 64, 4) BLU/PAN/RED/NIR, fal_bands (15, 64, 3) R2529/R1506/R1080, valid mask)`` in I/F.

    Example:
        >>> from pymars.spectral.pairs import pairs_dir
        >>> pairs_dir() is None or load_real_pair(pairs_dir().parent)[1].shape == (15, 64, 3)
        True
    """
    d = Path(spectral_dir)
    cubes = d / "crism_trr3_epf_cutouts"
    s_cube, _ = read_image(cubes / f"{PAIR}_if156s_trr3.lbl.txt")
    l_cube, _ = read_image(cubes / f"{PAIR}_if156l_trr3.lbl.txt")
    s_wl = _wavelengths(d / "crism_wavelengths" / "crism_trr3_S_107_wavelengths.csv")
    l_wl = _wavelengths(d / "crism_wavelengths" / "crism_trr3_L_438_wavelengths.csv")
    s_order, l_order = np.argsort(s_wl), np.argsort(l_wl)
    s_cube, s_wl = s_cube[..., s_order], s_wl[s_order]
    l_cube, l_wl = l_cube[..., l_order], l_wl[l_order]
    curves = read_filter_curves(d / "cassis_filter_curves" / "cassis-response-mtrdr.txt")
    # Only the S bands under the CaSSIS curves must be valid (the blue end below 0.45 um is noisy but weighted 0).
    lo, hi = min(c[0][c[1] > 0].min() for c in curves.values()) / 1000, max(c[0][c[1] > 0].max() for c in curves.values()) / 1000
    used = (s_wl >= lo - 0.01) & (s_wl <= hi + 0.01)
    bands = spectra_to_bands(s_cube[..., used], s_wl[used], curves, ("BLU", "PAN", "RED", "NIR"))
    fal = np.stack([_read_at(l_cube, l_wl, w) for w in FAL_WAVELENGTHS_UM], axis=-1)
    valid = np.isfinite(bands).all(axis=-1) & np.isfinite(fal).all(axis=-1)
    return bands, fal, valid


def _read_at(cube: np.ndarray, wl: np.ndarray, w: float) -> np.ndarray:
    """The cube at wavelength ``w``: linear interpolation between the two neighbouring bands (NaN propagates)."""
    i = int(np.clip(np.searchsorted(wl, w), 1, len(wl) - 1))
    f = (w - wl[i - 1]) / (wl[i] - wl[i - 1])
    return cube[..., i - 1] * (1 - f) + cube[..., i] * f


def real_cube_check(weights, spectral_dir: str | Path, with_linear: bool = True) -> dict:
    """Run a weights folder on the real cube pair; metrics of the 8-bit FAL prediction and the linear reference.

    Example:
        >>> from pymars.spectral.pairs import pairs_dir
        >>> pairs_dir() is None or "model" in real_cube_check("unet", pairs_dir().parent, with_linear=False)
        True
    """

    bands, fal, valid = load_real_pair(spectral_dir)
    idx = [("BLU", "PAN", "RED", "NIR").index(f) for f in INPUT_FILTERS]
    cassis8 = stretch8(np.nan_to_num(bands[..., idx]), valid)
    fal8 = stretch8(np.nan_to_num(fal), valid)
    pred = SpectralPredictor(weights).predict(cassis8)
    out = {"pixels": int(valid.sum()), "shape": list(valid.shape),
           "model": image_metrics(pred, fal8, valid),
           "model_channel_pcc": [float(np.corrcoef(pred[..., c][valid], fal8[..., c][valid])[0, 1]) for c in range(3)],
           "fal_std_if": [float(np.std(fal[..., c][valid])) for c in range(3)]}
    if with_linear:
        x = np.concatenate([bands[valid], np.ones((valid.sum(), 1))], axis=1)
        y = fal[valid]
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        res = y - x @ coef
        out["linear_r2"] = [float(1 - res[:, c].var() / y[:, c].var()) for c in range(3)]
    return out
