"""Aggregation of per-tile RD results and Bjontegaard deltas, as `mars-rd-1` §5 fixes them.

From per-tile records (one per tile x codec x quality) this module builds the
figures every report of pymars quotes:

    records --rd_curves--> mean curves per codec: mean bpp, mean PSNR, mean MS-SSIM
            --bd--> BD-rate / BD-PSNR of a test curve against an anchor curve
            --per_tile_median_bd_rate--> median over tiles of per-tile BD-rates
            --metric_at_rate--> PSNR at 0.5 bpp (PCHIP in log bpp)
    summarize_group(records) = all of the above against jpeg420, hevc444 and
                               the bare HEVC stream, plus speed medians

The Bjontegaard integrals are those of ``bjontegaard`` 1.3.0
(``method="pchip"``, ``require_matching_points=False``). Before calling it the
points are sorted by bpp and only the strictly increasing part is kept, since
PCHIP needs a monotone curve. The package's overlap warnings are caught and
stored next to the value, with the overlapping PSNR interval and the overlap
fractions, so a reader can judge how far a BD figure reaches.

A record is a mapping with at least ``tile``, ``codec``, ``quality``, ``bpp``,
``psnr`` and ``ms_ssim``; optional ``stream_bpp`` (bare HEVC stream),
``encode_s``, ``decode_s``, ``pixels`` and ``channels`` (for speed medians).
A codec with ``stream_bpp`` also yields a curve named ``"<codec>:stream"``.

BD on MS-SSIM uses MS-SSIM in dB, ``-10 log10(1 - MS-SSIM)`` (a choice this
module makes; EVALUATION.md does not fix it): on raw MS-SSIM values near 1 the
integral would weigh the high-rate end far less than the low-rate end.

This module only aggregates: it never codes a tile or reads an image.

Example:
    >>> r = bd([0.1, 0.2, 0.4, 0.8], [28, 31, 34, 37], [0.05, 0.1, 0.2, 0.4], [28, 31, 34, 37])
    >>> round(r.bd_rate, 6)
    -50.0
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

#: The protocol fixes PCHIP; bjontegaard 1.3.0 has no default method.
BD_METHOD = "pchip"
#: Anchors of the protocol; ``hevc444:stream`` is hevc444 counted without the HEIF container.
ANCHORS = ("jpeg420", "hevc444", "hevc444:stream")
#: Rate at which the PSNR of every curve is read off (§5).
REFERENCE_BPP = 0.5
#: Distortion metrics on which BD values are computed.
BD_METRICS = ("psnr", "ms_ssim_db")


def ms_ssim_db(ms_ssim: float | np.ndarray) -> float | np.ndarray:
    """MS-SSIM in dB, ``-10 log10(1 - MS-SSIM)``; infinite at 1.

    Example:
        >>> round(float(ms_ssim_db(0.99)), 6)
        20.0
    """
    with np.errstate(divide="ignore"):
        return -10.0 * np.log10(1.0 - np.asarray(ms_ssim, dtype=np.float64))


def increasing_part(bpp: Sequence[float], metric: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sort points by bpp and keep those where both bpp and metric strictly increase.

    Walking up from the lowest rate, a point is kept only when its bpp and its
    metric both exceed those of the last kept point; non-finite points are
    dropped. PCHIP needs this monotone curve; on near-featureless tiles it can
    drop a point whose quality saturates.

    Example:
        >>> b, m = increasing_part([0.4, 0.1, 0.2, 0.8], [34, 28, 31, 33.5])
        >>> b.tolist(), m.tolist()
        ([0.1, 0.2, 0.4], [28.0, 31.0, 34.0])
    """
    bpp = np.asarray(bpp, dtype=np.float64)
    metric = np.asarray(metric, dtype=np.float64)
    finite = np.isfinite(bpp) & np.isfinite(metric) & (bpp > 0)
    bpp, metric = bpp[finite], metric[finite]
    # A stable sort keeps the grid order among equal rates, so results do not
    # depend on NumPy's choice of algorithm.
    order = np.argsort(bpp, kind="stable")
    keep_b, keep_m = [], []
    for b, m in zip(bpp[order], metric[order]):
        if not keep_b or (b > keep_b[-1] and m > keep_m[-1]):
            keep_b.append(b)
            keep_m.append(m)
    return np.asarray(keep_b), np.asarray(keep_m)


@dataclass(frozen=True)
class BDResult:
    """One Bjontegaard comparison of a test curve against an anchor curve.

    ``bd_rate`` is in percent (negative = fewer bits for the same quality),
    ``bd_metric`` in the metric's unit (dB for PSNR: BD-PSNR). ``metric_range``
    is the overlapping quality interval the BD-rate integral runs over
    (``psnr_range`` of the protocol), ``overlap`` its fraction of the union of
    both quality ranges, ``rate_overlap`` the same along log bpp (for BD-PSNR).
    ``warnings`` holds the messages the bjontegaard package (or this module)
    raised, instead of printing them.
    """

    bd_rate: float
    bd_metric: float
    metric_range: tuple[float, float]
    overlap: float
    rate_overlap: float
    anchor_points: int
    test_points: int
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """A JSON-ready dict (NaN becomes None).

        Example:
            >>> bd([0.1, 1], [30, 40], [0.1, 1], [30, 40]).to_dict()["bd_rate"]
            0.0
        """
        return {k: _jsonable(v) for k, v in asdict(self).items()}


def bd(
    anchor_bpp: Sequence[float],
    anchor_metric: Sequence[float],
    test_bpp: Sequence[float],
    test_metric: Sequence[float],
) -> BDResult:
    """BD-rate and BD-metric of a test curve against an anchor, per the protocol.

    Both curves are first reduced to their strictly increasing part
    (:func:`increasing_part`). A curve left with fewer than two points, or
    curves that do not overlap, give NaN with a recorded warning.

    Example:
        >>> a_b, a_q = [0.1, 0.2, 0.4, 0.8], [28.0, 31.0, 34.0, 37.0]
        >>> r = bd(a_b, a_q, a_b, a_q)
        >>> r.bd_rate, r.bd_metric, r.metric_range, r.overlap
        (0.0, 0.0, (28.0, 37.0), 1.0)
    """
    import bjontegaard

    ab, am = increasing_part(anchor_bpp, anchor_metric)
    tb, tm = increasing_part(test_bpp, test_metric)
    if len(ab) < 2 or len(tb) < 2:
        return BDResult(math.nan, math.nan, (math.nan, math.nan), math.nan, math.nan, len(ab), len(tb),
                        ("fewer than 2 increasing RD points on a curve",))
    lo, hi = max(am[0], tm[0]), min(am[-1], tm[-1])
    overlap = max(hi - lo, 0.0) / (max(am[-1], tm[-1]) - min(am[0], tm[0]))
    la, lt = np.log10(ab), np.log10(tb)
    rate_lo, rate_hi = max(la[0], lt[0]), min(la[-1], lt[-1])
    rate_overlap = max(rate_hi - rate_lo, 0.0) / (max(la[-1], lt[-1]) - min(la[0], lt[0]))
    with warnings.catch_warnings(record=True) as caught:
        # "always": a warning seen once before (same text and line) must still be recorded here.
        warnings.simplefilter("always")
        kwargs = dict(method=BD_METHOD, require_matching_points=False)
        rate = float(bjontegaard.bd_rate(ab, am, tb, tm, **kwargs))
        metric = float(bjontegaard.bd_psnr(ab, am, tb, tm, **kwargs))
    messages = tuple(dict.fromkeys(str(w.message) for w in caught))
    return BDResult(rate, metric, (float(lo), float(hi)), float(overlap), float(rate_overlap), len(ab), len(tb),
                    messages)


def metric_at_rate(bpp: Sequence[float], metric: Sequence[float], target_bpp: float = REFERENCE_BPP) -> float:
    """Quality at ``target_bpp`` by PCHIP in (log bpp, metric); NaN outside the curve (no extrapolation).

    Example:
        >>> round(metric_at_rate([0.25, 1.0], [30.0, 36.0], 0.5), 6)
        33.0
        >>> metric_at_rate([1.0, 2.0], [30.0, 36.0], 0.5)
        nan
    """
    from scipy.interpolate import PchipInterpolator

    b, m = increasing_part(bpp, metric)
    if len(b) < 2 or not (b[0] <= target_bpp <= b[-1]):
        return math.nan
    return float(PchipInterpolator(np.log10(b), m)(math.log10(target_bpp)))


@dataclass(frozen=True)
class Curve:
    """Mean RD curve of one codec over the tiles of a group, in grid order.

    ``tile_bpp`` / ``tile_psnr`` / ``tile_ms_ssim`` are (tiles x qualities)
    arrays in ``tiles`` order, kept for per-tile BD-rates.
    """

    codec: str
    qualities: tuple
    tiles: tuple
    tile_bpp: np.ndarray
    tile_psnr: np.ndarray
    tile_ms_ssim: np.ndarray

    @property
    def bpp(self) -> np.ndarray:
        """Arithmetic mean of bpp over tiles, per quality."""
        return self.tile_bpp.mean(axis=0)

    @property
    def psnr(self) -> np.ndarray:
        """Arithmetic mean of per-tile PSNR (not the PSNR of the pooled MSE)."""
        return self.tile_psnr.mean(axis=0)

    @property
    def ms_ssim(self) -> np.ndarray:
        """Arithmetic mean of per-tile MS-SSIM."""
        return self.tile_ms_ssim.mean(axis=0)

    def metric(self, name: str) -> np.ndarray:
        """Mean curve of ``psnr``, ``ms_ssim`` or ``ms_ssim_db`` (dB of the mean MS-SSIM)."""
        if name == "ms_ssim_db":
            return np.asarray(ms_ssim_db(self.ms_ssim))
        return getattr(self, name)

    def tile_metric(self, name: str) -> np.ndarray:
        """Per-tile (tiles x qualities) values of ``psnr``, ``ms_ssim`` or ``ms_ssim_db``."""
        if name == "ms_ssim_db":
            return np.asarray(ms_ssim_db(self.tile_ms_ssim))
        return {"psnr": self.tile_psnr, "ms_ssim": self.tile_ms_ssim}[name]


def rd_curves(records: Iterable[Mapping]) -> dict[str, Curve]:
    """Mean curves per codec (and ``<codec>:stream`` where records carry ``stream_bpp``).

    Every codec must have every one of its qualities on every tile of the
    group, and all codecs the same tiles: a mean over different tile sets
    would not compare.

    Example:
        >>> recs = [dict(tile=t, codec="c", quality=q, bpp=q * (1 + i), psnr=30 + q, ms_ssim=0.9)
        ...         for i, t in enumerate("ab") for q in (1, 2)]
        >>> rd_curves(recs)["c"].bpp.tolist()
        [1.5, 3.0]
    """
    by_codec: dict[str, dict[tuple, Mapping]] = {}
    for r in records:
        by_codec.setdefault(r["codec"], {})[(r["tile"], r["quality"])] = r
        if r.get("stream_bpp") is not None:
            by_codec.setdefault(r["codec"] + ":stream", {})[(r["tile"], r["quality"])] = {**r, "bpp": r["stream_bpp"]}
    curves = {}
    tile_set = None
    for codec, cells in by_codec.items():
        tiles = tuple(dict.fromkeys(t for t, _ in cells))
        qualities = tuple(dict.fromkeys(q for _, q in cells))
        if len(cells) != len(tiles) * len(qualities):
            raise ValueError(f"{codec}: not every tile has every quality ({len(cells)} records)")
        if tile_set is not None and set(tiles) != tile_set:
            raise ValueError(f"{codec}: tiles differ from the other codecs'")
        tile_set = set(tiles)
        grid = [[cells[(t, q)] for q in qualities] for t in tiles]
        curves[codec] = Curve(
            codec,
            qualities,
            tiles,
            np.array([[c["bpp"] for c in row] for row in grid], dtype=np.float64),
            np.array([[c["psnr"] for c in row] for row in grid], dtype=np.float64),
            np.array([[c["ms_ssim"] for c in row] for row in grid], dtype=np.float64),
        )
    return curves


def bd_curves(anchor: Curve, test: Curve, metric: str = "psnr") -> BDResult:
    """:func:`bd` on the mean curves of two codecs.

    Example:
        >>> recs = [dict(tile="t", codec=c, quality=q, bpp=q * s, psnr=30 + q, ms_ssim=0.9)
        ...         for c, s in (("a", 1.0), ("b", 0.5)) for q in (1, 2, 4)]
        >>> cur = rd_curves(recs)
        >>> round(bd_curves(cur["a"], cur["b"]).bd_rate, 6)
        -50.0
    """
    return bd(anchor.bpp, anchor.metric(metric), test.bpp, test.metric(metric))


def per_tile_median_bd_rate(anchor: Curve, test: Curve, metric: str = "psnr") -> tuple[float, int]:
    """Median over tiles of the BD-rate of each tile's own curve against the anchor on that tile.

    Returns (median in percent, number of tiles with a finite BD-rate); tiles
    whose curves do not overlap are left out of the median.

    Example:
        >>> recs = [dict(tile=t, codec=c, quality=q, bpp=q * s * k, psnr=30 + q, ms_ssim=0.9)
        ...         for t, k in (("x", 1), ("y", 3)) for c, s in (("a", 1.0), ("b", 0.5)) for q in (1, 2, 4)]
        >>> cur = rd_curves(recs)
        >>> med, n = per_tile_median_bd_rate(cur["a"], cur["b"])
        >>> round(med, 6), n
        (-50.0, 2)
    """
    index = {t: i for i, t in enumerate(test.tiles)}
    values = []
    a_metric, t_metric = anchor.tile_metric(metric), test.tile_metric(metric)
    for i, tile in enumerate(anchor.tiles):
        j = index[tile]
        r = bd(anchor.tile_bpp[i], a_metric[i], test.tile_bpp[j], t_metric[j])
        if math.isfinite(r.bd_rate):
            values.append(r.bd_rate)
    return (float(np.median(values)) if values else math.nan), len(values)


def speed_medians(records: Iterable[Mapping]) -> dict[str, dict[str, dict[str, float]]]:
    """Median ms per megapixel of encode and decode, per codec, RGB and gray tiles separately.

    Example:
        >>> recs = [dict(codec="c", channels=3, pixels=10**6, encode_s=s, decode_s=s / 2) for s in (0.1, 0.3)]
        >>> speed_medians(recs)["c"]["rgb"]
        {'encode_ms_per_mp': 200.0, 'decode_ms_per_mp': 100.0, 'n': 2}
    """
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for r in records:
        if r.get("encode_s") is None or not r.get("pixels"):
            continue
        kind = "gray" if r["channels"] == 1 else "rgb"
        mp = r["pixels"] / 1e6
        samples.setdefault(r["codec"], {}).setdefault(kind, []).append(
            (1e3 * r["encode_s"] / mp, 1e3 * r["decode_s"] / mp)
        )
    out: dict[str, dict[str, dict[str, float]]] = {}
    for codec, kinds in samples.items():
        for kind, pairs in kinds.items():
            enc, dec = np.median(np.asarray(pairs), axis=0)
            out.setdefault(codec, {})[kind] = {
                "encode_ms_per_mp": float(enc),
                "decode_ms_per_mp": float(dec),
                "n": len(pairs),
            }
    return out


def summarize_group(
    records: Sequence[Mapping],
    anchors: Sequence[str] = ANCHORS,
    metrics: Sequence[str] = BD_METRICS,
) -> dict:
    """Everything §5 reports for one group, as a JSON-ready dict.

    ``curves``: per codec the qualities, mean bpp / PSNR / MS-SSIM, and PSNR at
    0.5 bpp. ``bd``: per anchor, per metric, per codec, the :class:`BDResult`
    fields plus ``per_tile_median_bd_rate`` and ``per_tile_n`` (and, for PSNR,
    ``psnr_range``, the protocol's name for ``metric_range``). ``speed``: see
    :func:`speed_medians`. Anchors absent from the records are skipped.

    Example:
        >>> recs = [dict(tile="t", codec=c, quality=q, bpp=q * s, psnr=30 + q, ms_ssim=1 - 0.1 / q)
        ...         for c, s in (("jpeg420", 1.0), ("x", 0.5)) for q in (1, 2, 4)]
        >>> s = summarize_group(recs)
        >>> round(s["bd"]["jpeg420"]["psnr"]["x"]["bd_rate"], 6)
        -50.0
    """
    curves = rd_curves(records)
    summary: dict = {"tiles": len(next(iter(curves.values())).tiles) if curves else 0, "curves": {}, "bd": {}}
    for name, c in curves.items():
        summary["curves"][name] = {
            "qualities": list(c.qualities),
            "bpp": c.bpp.tolist(),
            "psnr": c.psnr.tolist(),
            "ms_ssim": c.ms_ssim.tolist(),
            f"psnr_at_{REFERENCE_BPP}_bpp": _jsonable(metric_at_rate(c.bpp, c.psnr, REFERENCE_BPP)),
        }
    for anchor in anchors:
        if anchor not in curves:
            continue
        per_metric = summary["bd"].setdefault(anchor, {})
        for metric in metrics:
            table = per_metric.setdefault(metric, {})
            for name, c in curves.items():
                row = bd_curves(curves[anchor], c, metric).to_dict()
                if metric == "psnr":
                    # The protocol's name for the interval the BD-rate integral runs over.
                    row["psnr_range"] = row["metric_range"]
                median, n = per_tile_median_bd_rate(curves[anchor], c, metric)
                row["per_tile_median_bd_rate"] = _jsonable(median)
                row["per_tile_n"] = n
                table[name] = row
    summary["speed"] = speed_medians(records)
    return summary


def _jsonable(v):
    """Floats as floats, NaN as None, tuples as lists: what json.dump accepts strictly."""
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(v) else float(v)
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    return v
