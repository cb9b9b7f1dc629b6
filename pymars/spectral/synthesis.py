"""Synthetic CaSSIS -> FAL training patches from lab spectra and the CaSSIS filter curves.

What it is for: 57 real training scenes hold few carbonate pixels. Lab spectra
(USGS splib07, convolved to AVIRIS-95, 0.38-2.5 um) give the whole chain
from first principles: the CaSSIS band value of a spectrum ``s`` for a filter
with response ``r`` on wavelengths ``l`` is the response-weighted mean
``sum(r * s(l)) / sum(r)``; the FAL targets are ``s`` read at 1.080, 1.506 and
2.529 um (the library stops at 2.498 um, so R2529 is a straight-line
extrapolation fitted on 2.40-2.50 um, about 30 nm out).

Because every step is linear in the spectrum, a linear mixture of spectra has
the mixture of their band values: the library is reduced once to a
``(n_spectra, 6)`` table (:func:`band_table`) and patches are mixed in that
6-number space (:func:`synth_patch`), thousands of times faster than mixing
224-band spectra. A patch is a few endmembers with smooth random abundance
maps (carbonates drawn on purpose in a fraction of the patches, since they are
the rare class that matters), a shading field, an optional black
out-of-footprint region, then the per-channel min-max stretch to 8 bits that
the real PNG pairs went through.

The CRISM MICA exemplars (``crism_mica_exemplars_ir``) are IR-only, so they
cannot make CaSSIS inputs; :func:`read_envi_sli` reads them, but the patches
use the USGS library only.

Example:
    >>> import numpy as np
    >>> wl = np.linspace(0.4, 2.5, 211)
    >>> spectra = np.stack([0.1 + 0.1 * wl, 0.3 - 0.05 * wl])
    >>> curves = {"BLU": (np.array([500., 510, 520]), np.array([0., 1, 0])),
    ...           "PAN": (np.array([650., 700, 750]), np.array([0., 1, 0])),
    ...           "NIR": (np.array([900., 950, 1000]), np.array([0., 1, 0]))}
    >>> t = band_table(wl, spectra, curves)
    >>> np.round(t[0], 4).tolist()  # BLU, PAN, NIR, R2529, R1506, R1080 of 0.1 + 0.1*wl
    [0.151, 0.17, 0.195, 0.3529, 0.2506, 0.208]
    >>> x, y = synth_patch(t, np.random.default_rng(0), size=32)
    >>> x.shape, y.dtype
    ((32, 32, 3), dtype('uint8'))
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

#: The CaSSIS filters used as model input, in channel order (the PNG pairs are most likely BLU, PAN, NIR).
INPUT_FILTERS = ("BLU", "PAN", "NIR")
#: FAL composite channels (um), in R, G, B order.
FAL_WAVELENGTHS_UM = (2.529, 1.506, 1.080)
#: Words that mark a carbonate in a library name (the class FAL shows green).
CARBONATE_WORDS = ("calcite", "magnesite", "siderite", "dolomite", "ankerite", "aragonite", "rhodochrosite",
                   "hydromagnesite", "smithsonite", "carbonate")
DELETED = -1.0e30


def read_filter_curves(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read ``cassis-response-mtrdr.txt`` (wavelength_nm, BLU, PAN, RED, NIR) into ``{filter: (nm, response)}``.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "c.txt")
        >>> _ = open(p, "w").write("500\\t0.1\\t0\\t0\\t0\\n510\\t0.3\\t0\\t0\\t0\\n")
        >>> c = read_filter_curves(p)
        >>> sorted(c), c["BLU"][1].tolist()
        (['BLU', 'NIR', 'PAN', 'RED'], [0.1, 0.3])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    a = np.loadtxt(path, ndmin=2)
    if a.shape[1] != 5:
        raise ValueError(f"{path}: expected 5 columns (wavelength_nm, BLU, PAN, RED, NIR), got {a.shape[1]}")
    return {name: (a[:, 0].copy(), a[:, i + 1].copy()) for i, name in enumerate(("BLU", "PAN", "RED", "NIR"))}


def _hdr_value(text: str, key: str) -> str | None:
    m = re.search(rf"^\s*{re.escape(key)}\s*=\s*(\{{.*?\}}|[^\n]*)", text, re.S | re.M | re.I)
    return m.group(1).strip() if m else None


def read_envi_sli(sli: str | Path, hdr: str | Path | None = None) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """Read an ENVI spectral library: ``(spectra [lines, samples] float32, names, wavelengths or None)``.

    Only float32 (data type 4) is supported; byte order comes from the header.

    Example:
        >>> import tempfile, os, numpy as np
        >>> d = tempfile.mkdtemp(); np.arange(6, dtype="<f4").tofile(os.path.join(d, "a.sli"))
        >>> _ = open(os.path.join(d, "a.hdr"), "w").write("ENVI\\nsamples = 3\\nlines = 2\\ndata type = 4\\n"
        ...     "byte order = 0\\nspectra names = {x, y}\\nwavelength = {1.0, 1.5, 2.0}\\n")
        >>> s, names, wl = read_envi_sli(os.path.join(d, "a.sli"))
        >>> s.tolist(), names, wl.tolist()
        ([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], ['x', 'y'], [1.0, 1.5, 2.0])
    """
    sli = Path(sli)
    if hdr is None:
        for cand in (sli.with_suffix(".hdr"), Path(str(sli) + ".hdr")):
            if cand.is_file():
                hdr = cand
                break
    if hdr is None or not Path(hdr).is_file() or not sli.is_file():
        raise FileNotFoundError(f"{sli}: library or its .hdr not found")
    text = Path(hdr).read_text(errors="replace")
    samples, lines = int(_hdr_value(text, "samples")), int(_hdr_value(text, "lines"))
    if int(_hdr_value(text, "data type") or 4) != 4:
        raise ValueError(f"{hdr}: only float32 (data type 4) libraries are supported")
    order = ">" if int(_hdr_value(text, "byte order") or 0) == 1 else "<"
    data = np.fromfile(sli, dtype=order + "f4")
    if data.size != samples * lines:
        raise ValueError(f"{sli}: {data.size} values, header says {lines} x {samples}")
    names_raw = _hdr_value(text, "spectra names") or "{}"
    names = [n.strip() for n in names_raw.strip("{}").split(",")]
    wl_raw = _hdr_value(text, "wavelength")
    wl = np.array([float(v) for v in wl_raw.strip("{}").split(",")]) if wl_raw else None
    return data.reshape(lines, samples).astype(np.float32), names, wl


def load_usgs_library(folder: str | Path, min_valid: float = 0.95) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """USGS splib07 AV95 absolute-reflectance spectra: ``(wavelength_um [224], spectra [n, 224], names)``.

    Keeps AREF rows (RREF is valid only beyond 1.3 um, useless for CaSSIS) with
    at least ``min_valid`` valid bands; deleted bands are filled by linear
    interpolation in wavelength (nearest value at the ends).

    Example:
        >>> from pymars.spectral.pairs import pairs_dir
        >>> folder = pairs_dir() and pairs_dir().parent / "usgs_splib07_av95"
        >>> folder is None or load_usgs_library(folder)[1].shape[1] == 224
        True
    """
    folder = Path(folder)
    raw, names, _ = read_envi_sli(folder / "s07_AV95_envi.sli", folder / "s07_AV95_envi.hdr")
    wl = raw[0].astype(np.float64)
    keep, out = [], []
    for i in range(2, raw.shape[0]):
        if not names[i].endswith("AREF"):
            continue
        s = raw[i].astype(np.float64)
        ok = (s > DELETED) & np.isfinite(s) & (s >= 0) & (s < 2)
        if ok.mean() < min_valid:
            continue
        out.append(np.interp(wl, wl[ok], s[ok]))
        keep.append(names[i])
    return wl, np.array(out), keep


def band_table(wl_um: np.ndarray, spectra: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray]],
               filters: tuple[str, ...] = INPUT_FILTERS) -> np.ndarray:
    """Reduce spectra ``[n, bands]`` on ``wl_um`` to ``[n, 6]``: the filter bands then R2529, R1506, R1080.

    A filter band is the response-weighted mean of the spectrum interpolated
    onto the response's wavelengths (nm); R2529 is extrapolated linearly from
    the 2.40-2.50 um samples when the spectra stop short of it.

    Example:
        >>> import numpy as np
        >>> wl = np.array([0.4, 1.0, 2.0, 2.45, 2.5])
        >>> c = {"BLU": (np.array([400., 1000.]), np.array([1., 1.]))}
        >>> band_table(wl, np.array([[1., 2., 3., 4., 5.]]), c, filters=("BLU",)).round(3).tolist()
        [[1.5, 5.58, 2.506, 2.08]]
    """
    return np.concatenate([filter_bands(wl_um, spectra, curves, filters), fal_bands(wl_um, spectra)], axis=1)


def filter_bands(wl_um: np.ndarray, spectra: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray]],
                 filters: tuple[str, ...] = INPUT_FILTERS) -> np.ndarray:
    """``[n, len(filters)]`` response-weighted means of spectra ``[n, bands]`` sampled on ``wl_um``.

    Example:
        >>> import numpy as np
        >>> c = {"BLU": (np.array([500., 600.]), np.array([1., 3.]))}
        >>> filter_bands(np.array([0.4, 0.7]), np.array([[0.0, 3.0]]), c, ("BLU",)).round(3).tolist()
        [[1.75]]
    """
    wl_um = np.asarray(wl_um, np.float64)
    spectra = np.atleast_2d(np.asarray(spectra, np.float64))
    cols = []
    for f in filters:
        nm, r = curves[f]
        on_curve = np.stack([np.interp(nm / 1000.0, wl_um, s) for s in spectra])
        cols.append(on_curve @ r / r.sum())
    return np.stack(cols, axis=1)


def fal_bands(wl_um: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """``[n, 3]`` R2529, R1506, R1080 of spectra ``[n, bands]`` (R2529 extrapolated from 2.40-2.50 um if needed).

    Example:
        >>> import numpy as np
        >>> fal_bands(np.array([1.0, 1.5, 2.4, 2.6]), np.array([[1.0, 2.0, 3.0, 4.0]])).round(3).tolist()
        [[3.645, 2.007, 1.16]]
    """
    wl_um = np.asarray(wl_um, np.float64)
    spectra = np.atleast_2d(np.asarray(spectra, np.float64))
    cols = []
    for w in FAL_WAVELENGTHS_UM:
        if w <= wl_um[-1]:
            cols.append(np.stack([np.interp(w, wl_um, s) for s in spectra]))
        else:
            sel = (wl_um >= 2.40) & (wl_um <= 2.50)
            slope, icpt = np.polyfit(wl_um[sel], spectra[:, sel].T, 1)
            cols.append(icpt + slope * w)
    return np.stack(cols, axis=1)


def is_carbonate(name: str) -> bool:
    """Whether a library name is a carbonate mineral.

    Example:
        >>> is_carbonate("Calcite WS272 BECKa AREF"), is_carbonate("Olivine GDS70 AREF")
        (True, False)
    """
    n = name.lower()
    return any(w in n for w in CARBONATE_WORDS)


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field: coarse normal noise upsampled bilinearly to ``size`` x ``size``."""
    g = rng.standard_normal((cells + 1, cells + 1))
    t = np.linspace(0, cells, size)
    i = np.minimum(t.astype(int), cells - 1)
    f = t - i
    rows = g[i] * (1 - f)[:, None] + g[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def stretch8(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-channel min-max stretch of HxWxC to uint8 0..255 (over ``mask`` pixels; 0 outside), as the PNG pairs.

    Example:
        >>> import numpy as np
        >>> stretch8(np.array([[[1.0], [2.0], [3.0]]]))[..., 0].tolist()
        [[0, 128, 255]]
    """
    if mask is None:
        mask = np.ones(x.shape[:2], bool)
    out = np.zeros(x.shape, np.uint8)
    if not mask.any():
        return out
    v = x[mask]
    lo, hi = v.min(axis=0), v.max(axis=0)
    y = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    out[mask] = np.clip(np.round(255 * y[mask]), 0, 255).astype(np.uint8)
    return out


def synth_patch(table: np.ndarray, rng: np.random.Generator, size: int = 64,
                carbonate_rows: np.ndarray | None = None, carbonate_p: float = 0.4,
                border_p: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic ``(cassis, fal)`` pair of ``size`` x ``size`` x 3 uint8 from a :func:`band_table`.

    2-4 endmembers mix with softmax-normalised smooth abundance maps; with
    probability ``carbonate_p`` one endmember is a carbonate (rows
    ``carbonate_rows``). Shading multiplies all bands alike (topography/albedo);
    with probability ``border_p`` a half-plane is black, like the footprint edge.

    Example:
        >>> import numpy as np
        >>> t = np.random.default_rng(0).uniform(0.1, 0.5, (10, 6))
        >>> a, b = synth_patch(t, np.random.default_rng(1), size=16, border_p=0.0)
        >>> int(a.min()), int(a.max()), int(b.max())
        (0, 255, 255)
    """
    k = int(rng.integers(2, 5))
    rows = rng.integers(0, len(table), k)
    if carbonate_rows is not None and len(carbonate_rows) and rng.random() < carbonate_p:
        rows[-1] = carbonate_rows[rng.integers(0, len(carbonate_rows))]
    logits = np.stack([_smooth_field(rng, size, int(rng.integers(2, 6))) for _ in range(k)], axis=-1)
    logits *= rng.uniform(1.0, 4.0)
    ab = np.exp(logits - logits.max(axis=-1, keepdims=True))
    ab /= ab.sum(axis=-1, keepdims=True)
    shade = 1.0 + 0.15 * _smooth_field(rng, size, 8)
    bands = (ab @ table[rows]) * shade[..., None]
    mask = np.ones((size, size), bool)
    if rng.random() < border_p:
        yy, xx = np.mgrid[:size, :size] - size / 2
        theta = rng.uniform(0, 2 * np.pi)
        mask = (np.cos(theta) * xx + np.sin(theta) * yy) < rng.uniform(0, size / 3)
    return stretch8(bands[..., :3], mask), stretch8(bands[..., 3:], mask)


class SyntheticSource:
    """Endless synthetic patches from the USGS library and the CaSSIS curves of ``<shared>/data/spectral``.

    Example:
        >>> from pymars.spectral.pairs import pairs_dir
        >>> pairs_dir() is None or SyntheticSource(pairs_dir().parent).table.shape[1] == 6
        True
    """

    def __init__(self, spectral_dir: str | Path):
        spectral_dir = Path(spectral_dir)
        wl, spectra, names = load_usgs_library(spectral_dir / "usgs_splib07_av95")
        curves = read_filter_curves(spectral_dir / "cassis_filter_curves" / "cassis-response-mtrdr.txt")
        self.table = band_table(wl, spectra, curves)
        self.names = names
        self.carbonates = np.array([i for i, n in enumerate(names) if is_carbonate(n)], int)

    def patch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """One ``(cassis, fal)`` uint8 patch (see :func:`synth_patch`).

        Example:
            >>> from pymars.spectral.pairs import pairs_dir
            >>> import numpy as np
            >>> pairs_dir() is None or SyntheticSource(pairs_dir().parent).patch(np.random.default_rng(0), 8)[0].shape == (8, 8, 3)
            True
        """
        return synth_patch(self.table, rng, size, self.carbonates)
