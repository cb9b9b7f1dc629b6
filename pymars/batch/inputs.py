"""The inputs of a batch job: a folder's files or a CSV manifest's ``input`` column, streamed, and their outputs.

What it is for: :func:`iter_inputs` yields absolute input paths one at a
time (a folder is listed by name only, a manifest is read row by row), so a
job over an archive never holds its images, only their names.
:func:`output_for` names the output after the input's stem. It must not read
images or import the codec.

Example:
    >>> output_for("encode", "/data/NLB_0001.LBL", "/out").name
    'NLB_0001.pmrs'
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterator

#: What each kind of job takes from a folder (lower-case suffixes).
SUFFIXES = {
    "encode": (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".lbl", ".img", ".xml"),
    "decode": (".pmrs",),
    "enhance": (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".lbl", ".img", ".xml"),
    "spectral": (".png", ".tif", ".tiff", ".lbl", ".img", ".xml"),
}
#: Columns of a CSV manifest that travel with their row's input to the work (per-item options).
ITEM_COLUMNS = {"spectral": ("lat", "lon", "site")}


def iter_items(source: str | os.PathLike, kind: str) -> Iterator[tuple[str, dict]]:
    """(input, per-item options) of a ``kind`` job: :func:`iter_inputs`, plus the row's :data:`ITEM_COLUMNS`.

    Only a CSV manifest has per-item options (its non-empty ``lat``, ``lon`` and
    ``site`` cells for a spectral job: the scene's metadata); a folder gives {}.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); m = d / "jobs.csv"
        >>> _ = m.write_text("input,lat,lon,site\\na.png,18.4,77.6,jezero\\nb.png,,,\\n")
        >>> [(Path(p).name, o) for p, o in iter_items(m, "spectral")]
        [('a.png', {'lat': 18.4, 'lon': 77.6, 'site': 'jezero'}), ('b.png', {})]
    """
    columns = ITEM_COLUMNS.get(kind, ())
    for path, row in _inputs(source, kind):
        extra = {}
        for c in columns:
            cell = (row.get(c) or "").strip()
            if not cell:
                continue
            try:
                extra[c] = cell if c == "site" else float(cell)
            except ValueError:
                raise ValueError(f"{source}: the {c} of {Path(path).name} is {cell!r}, not a number") from None
        yield path, extra


def iter_inputs(source: str | os.PathLike, kind: str) -> Iterator[str]:
    """Absolute paths of the inputs of a ``kind`` job from a folder or a CSV manifest with an ``input`` column.

    A folder gives its files with the kind's suffixes, sorted by name (not its
    sub-folders); a PDS product with a detached label (PDS3 ``X.LBL`` + ``X.IMG``,
    PDS4 ``X.xml`` + ``X.IMG``) is given once, by its label. Relative paths in a manifest are relative to
    the manifest's folder.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> for n in ("b.png", "a.LBL", "a.IMG", "c.xml", "c.IMG", "notes.txt"): _ = (d / n).write_bytes(b"")
        >>> [Path(p).name for p in iter_inputs(d, "encode")]
        ['a.LBL', 'b.png', 'c.xml']
        >>> next(iter_inputs(d / "none", "encode"))
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...none: input folder or manifest not found
    """
    for path, _ in _inputs(source, kind):
        yield path


def _inputs(source: str | os.PathLike, kind: str) -> Iterator[tuple[str, dict]]:
    """(absolute input path, its manifest row or {} for a folder): the one reader of a job's inputs."""
    src = Path(source)
    if src.is_dir():
        names = sorted(os.listdir(src))  # names only: an archive's listing, not its images
        present = set(names)
        for name in names:
            path = src / name
            suffix = path.suffix.lower()
            if suffix not in SUFFIXES[kind] or not path.is_file():
                continue
            if suffix == ".img" and any(path.stem + s in present for s in (".LBL", ".lbl", ".xml", ".XML")):
                continue  # read through its detached label
            yield os.path.abspath(path), {}
        return
    if src.is_file():
        if src.suffix.lower() != ".csv":
            raise ValueError(f"{source}: give a folder or a CSV manifest with an 'input' column")
        with open(src, newline="") as f:
            reader = csv.DictReader(f)
            if "input" not in (reader.fieldnames or []):
                raise ValueError(f"{source}: a CSV manifest needs an 'input' column (found {reader.fieldnames})")
            for row in reader:
                name = (row["input"] or "").strip()
                if name:
                    yield os.path.abspath(src.parent / name), row
        return
    raise FileNotFoundError(f"{source}: input folder or manifest not found")


def output_for(kind: str, input_path: str | os.PathLike, out_dir: str | os.PathLike, image_format: str = "png") -> Path:
    """OUT_DIR/<input stem>.pmrs (encode), .png or .tif (decode), .png (enhance, spectral).

    Example:
        >>> output_for("decode", "x/a.pmrs", "o", "tif").as_posix(), output_for("enhance", "x/a.jpg", "o").as_posix()
        ('o/a.tif', 'o/a.png')
    """
    suffix = {"encode": ".pmrs", "decode": f".{image_format}", "enhance": ".png", "spectral": ".png"}[kind]
    return Path(out_dir) / (Path(input_path).stem + suffix)
