"""Scene metadata (latitude, longitude, site) for the CaSSIS -> FAL pairs, with the lat/lon repair.

What it is for: the diffusion model and the UNet are conditioned on where a
scene is (the thesis removed false carbonate predictions that way). The
``metadata.csv`` shipped with the PNG pairs has three defects this module
repairs, so that the conditioning sees true coordinates:

* for most rows the ``Latitude`` column holds the longitude and vice versa
  (the values were copied from a KML ``lon,lat,alt`` string);
* the Jezero rows also carry the wrong signs (Jezero is at 18.4 N, 77.6 E), and the
  Nereidum rows a longitude in degrees west;
* site names come in variants (``coprates2``, ``nili_fossae2``, ``jezero crater``).

The repair is a detection, not a blanket swap: for each row every reading of the
two numbers (as given or swapped, each coordinate with either sign) is compared to a
published centre of the row's site (:data:`SITE_CENTRES`), and the nearest
reading wins when it lies within :data:`MAX_SITE_DISTANCE_DEG` of the centre.
Rows of unknown sites, or whose every reading is far from the centre, are kept
as given and flagged, never guessed. Duplicate rows (the CSV repeats some scenes)
collapse to one; scenes absent from the CSV simply have no metadata (the
models then use their learned "no metadata" embedding).

Example:
    >>> m = fix_lat_lon(-77.58, -18.36, "jezero crater")
    >>> (round(m.lat, 2), round(m.lon, 2), m.fix)
    (18.36, 77.58, 'swapped+sign')
    >>> fix_lat_lon(-68.8, -10.2, "coprates").fix
    'swapped'
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

#: Published approximate centres (latitude N, longitude E, degrees) of the sites named in the CSV.
#: Sources: IAU/USGS Gazetteer of Planetary Nomenclature (Jezero, Nili Fossae, Coprates Chasma,
#: Hale, Nereidum Montes); "marineris" is Valles Marineris' central trough (Ius/Melas Chasma).
SITE_CENTRES: dict[str, tuple[float, float]] = {
    "coprates": (-13.4, -61.4),
    "hale_crater": (-35.7, -36.4),
    "jezero_crater": (18.4, 77.6),
    "marineris": (-9.0, -75.0),
    "nereidum": (-37.6, -42.6),
    "nili_fossae": (22.6, 76.8),
}
#: Sites the models know, in embedding order; index 0 is "unknown / no metadata".
SITES: tuple[str, ...] = ("unknown",) + tuple(sorted(SITE_CENTRES))
#: A reading farther than this (great-circle degrees) from the site centre is not trusted.
MAX_SITE_DISTANCE_DEG = 30.0


@dataclass(frozen=True)
class SceneMeta:
    """Location of one scene: latitude (deg N), longitude (deg E, -180..180], site, and how it was repaired."""

    lat: float
    lon: float
    site: str
    fix: str = "as-is"

    @property
    def site_index(self) -> int:
        """Index of the site in :data:`SITES` (0 = unknown).

        Example:
            >>> SceneMeta(0.0, 0.0, "coprates").site_index == SITES.index("coprates")
            True
        """
        return SITES.index(self.site) if self.site in SITES else 0


def normalise_site(name: str) -> str:
    """Canonical site name: lower case, underscores, trailing digit variants dropped.

    Example:
        >>> normalise_site(" Jezero crater"), normalise_site("nili_fossae2"), normalise_site("Nereidum")
        ('jezero_crater', 'nili_fossae', 'nereidum')
    """
    s = re.sub(r"\s+", "_", name.strip().lower())
    return re.sub(r"\d+$", "", s)


def great_circle_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Angular distance in degrees between two points on a sphere.

    Example:
        >>> round(great_circle_deg(0, 0, 0, 90), 6), round(great_circle_deg(10, 170, 10, -170), 2)
        (90.0, 19.69)
    """
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    c = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def fix_lat_lon(lat: float, lon: float, site: str) -> SceneMeta:
    """Repair one row: pick the reading of (lat, lon) nearest to the site's published centre.

    ``fix`` says what was done: ``as-is``, ``swapped``, ``sign``, ``swapped+sign``, or
    ``unverified`` (unknown site, or no reading within :data:`MAX_SITE_DISTANCE_DEG`; kept as given).

    Example:
        >>> fix_lat_lon(74.25, 21.15, "nili_fossae")
        SceneMeta(lat=21.15, lon=74.25, site='nili_fossae', fix='swapped')
        >>> fix_lat_lon(-35.3, -36.0, "hale_crater").fix
        'as-is'
        >>> fix_lat_lon(5.0, 5.0, "atlantis").fix
        'unverified'
    """
    site = normalise_site(site)
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"latitude/longitude must be finite numbers, got {lat!r}, {lon!r}")
    centre = SITE_CENTRES.get(site)
    if centre is None:
        return SceneMeta(lat, lon, site, "unverified")
    best = None
    # Sign conventions differ between tools (deg W vs deg E, S vs N), so each coordinate may also
    # flip sign. Order matters on ties: prefer the reading that changes least.
    for swapped in (False, True):
        a, b = (lon, lat) if swapped else (lat, lon)
        for sa, sb in ((1.0, 1.0), (-1.0, 1.0), (1.0, -1.0), (-1.0, -1.0)):
            la, lo = sa * a, sb * b
            if abs(la) > 90:
                continue
            d = great_circle_deg(la, lo, *centre)
            if best is None or d < best[0] - 1e-9:
                fix = ("swapped" if swapped else "") + ("+sign" if min(sa, sb) < 0 else "")
                best = (d, la, lo, fix.lstrip("+") or "as-is")
    if best is None or best[0] > MAX_SITE_DISTANCE_DEG:
        return SceneMeta(lat, lon, site, "unverified")
    return SceneMeta(best[1], best[2], site, best[3])


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_metadata_csv(path: str | Path) -> dict[str, SceneMeta]:
    """Read ``metadata.csv`` into ``{scene: SceneMeta}``, repaired by :func:`fix_lat_lon`.

    A cell that is not a number (the CSV has ``#NAME?``) is taken from the row's
    ``Coordinates`` string, which holds the same two numbers in the same order.
    Repeated scenes keep their first row.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "metadata.csv")
        >>> _ = open(p, "w").write('Name,Latitude,Longitude,Altitude,Coordinates,Location_name\\n'
        ...     'frt1,-60.0,-13.5,1,"-60.0,-13.5,100",coprates\\nfrt2,-54.3,#NAME?,1,"-54.3,-15.8,100",coprates\\n')
        >>> m = read_metadata_csv(p)
        >>> (m["frt1"].lat, m["frt1"].lon, m["frt2"].lat, m["frt2"].fix)
        (-13.5, -60.0, -15.8, 'swapped')
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    out: dict[str, SceneMeta] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            name = (row.get("Name") or "").strip().lower()
            if not name or name in out:
                continue
            coords = [_number(v) for v in (row.get("Coordinates") or "").replace("\n", " ").split(",")]
            lat, lon = _number(row.get("Latitude")), _number(row.get("Longitude"))
            if lat is None and len(coords) >= 1:
                lat = coords[0]
            if lon is None and len(coords) >= 2:
                lon = coords[1]
            if lat is None or lon is None:
                continue
            out[name] = fix_lat_lon(lat, lon, row.get("Location_name") or "")
    return out
