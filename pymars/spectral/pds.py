"""A small PDS3 reader for CRISM TRDR (TRR3) I/F cubes: label parsing and the image object.

What it is for: the real radiometric check of the spectral chain
(:mod:`pymars.spectral.realcube`) reads CRISM cubes straight from their PDS3
labels, without the ``pdr``/``planetaryimage`` dependencies. Only what CRISM
TRR3 products use is supported, and anything else is refused with a clear
error rather than misread:

* labels: ``KEY = value`` lines, ``/* comments */``, quoted strings spanning
  lines, ``{...}`` and ``(...)`` lists, ``<unit>`` suffixes, nested
  ``OBJECT = X ... END_OBJECT = X``; pointers ``^IMAGE = "FILE"`` or
  ``("FILE", record)`` (1-based records of ``RECORD_BYTES``);
* image: ``SAMPLE_TYPE`` ``PC_REAL`` (little-endian) or ``IEEE_REAL`` (big-endian)
  32-bit floats, or ``MSB/LSB_INTEGER``/``UNSIGNED_INTEGER`` of 8/16/32 bits;
  ``BAND_STORAGE_TYPE`` ``LINE_INTERLEAVED`` (line, band, sample),
  ``BAND_SEQUENTIAL`` or ``SAMPLE_INTERLEAVED``.

CRISM marks missing data with 65535.0; :func:`read_image` turns it (and any
value with magnitude >= 1e3, impossible for I/F) into NaN.

Example:
    >>> label = parse_label('A = 1\\nOBJECT = IMAGE\\n  LINES = 2 /* rows */\\n  NAME = "x\\n  y"\\n'
    ...                     'END_OBJECT = IMAGE\\nEND')
    >>> label["A"], label["IMAGE"]["LINES"], label["IMAGE"]["NAME"]
    (1, 2, 'x y')
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

FILL = 65535.0
_TOKEN = re.compile(r'\s*(?:"(?P<str>[^"]*)"|(?P<open>[({])|(?P<close>[)}])|(?P<comma>,)|(?P<atom>[^\s,(){}"]+))')


def _atom(text: str):
    text = re.sub(r"<[^>]*>$", "", text).strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    m = re.fullmatch(r"(\d+)#([0-9A-Fa-f]+)#", text)  # radix form, e.g. 16#0001458F#
    if m:
        return int(m.group(2), int(m.group(1)))
    return text


def _value(text: str):
    """Parse one label value: string, number, or a (nested) list."""
    text = re.sub(r"\s*<[^>]*>\s*$", "", text.strip())
    stack: list[list] = [[]]
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        if m.group("str") is not None:
            stack[-1].append(" ".join(m.group("str").split()))
        elif m.group("open"):
            stack.append([])
        elif m.group("close"):
            inner = stack.pop()
            stack[-1].append(inner)
        elif m.group("atom"):
            stack[-1].append(_atom(m.group("atom")))
    vals = stack[0]
    return vals[0] if len(vals) == 1 else vals


def parse_label(text: str) -> dict:
    """Parse PDS3 label text into nested dicts (an ``OBJECT = X`` block becomes key ``X``; repeats get ``X_2``...).

    Example:
        >>> parse_label('^IMAGE = ("F.IMG", 3)\\nR = 2#0000000111111111#\\nW = 1.5 <KM>\\nEND')
        {'^IMAGE': ['F.IMG', 3], 'R': 511, 'W': 1.5}
    """
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    root: dict = {}
    stack = [root]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if line == "END":
            break
        if "=" not in line:
            continue
        key, _, rest = line.partition("=")
        key, rest = key.strip(), rest.strip()
        # A value continues while its quotes or brackets are open.
        while (rest.count('"') % 2 or rest.count("(") > rest.count(")") or rest.count("{") > rest.count("}")) \
                and i < len(lines):
            rest += "\n" + lines[i]
            i += 1
        if key == "OBJECT":
            name = str(_value(rest))
            obj: dict = {}
            parent = stack[-1]
            slot, n = name, 1
            while slot in parent:
                n += 1
                slot = f"{name}_{n}"
            parent[slot] = obj
            stack.append(obj)
        elif key == "END_OBJECT":
            if len(stack) == 1:
                raise ValueError("PDS label: END_OBJECT without OBJECT")
            stack.pop()
        else:
            stack[-1][key] = _value(rest)
    if len(stack) != 1:
        raise ValueError("PDS label: OBJECT without END_OBJECT")
    return root


def _find(label: dict, key: str, where: str = ""):
    """First ``key`` in ``label`` or its nested objects (depth first), with its parent dict."""
    if key in label:
        return label[key], label
    for v in label.values():
        if isinstance(v, dict):
            found = _find(v, key)
            if found[0] is not None:
                return found
    return None, None


_DTYPES = {("PC_REAL", 32): "<f4", ("IEEE_REAL", 32): ">f4", ("PC_REAL", 64): "<f8", ("IEEE_REAL", 64): ">f8",
           ("MSB_INTEGER", 16): ">i2", ("LSB_INTEGER", 16): "<i2", ("MSB_UNSIGNED_INTEGER", 16): ">u2",
           ("LSB_UNSIGNED_INTEGER", 16): "<u2", ("MSB_INTEGER", 32): ">i4", ("LSB_INTEGER", 32): "<i4",
           ("UNSIGNED_INTEGER", 8): "u1", ("MSB_UNSIGNED_INTEGER", 8): "u1", ("LSB_UNSIGNED_INTEGER", 8): "u1"}


def read_image(label_path: str | Path, data_path: str | Path | None = None) -> tuple[np.ndarray, dict]:
    """Read the IMAGE object of a PDS3 product as float32 ``(lines, samples, bands)``; returns (cube, label).

    ``data_path`` defaults to the ``^IMAGE`` file name, looked up beside the
    label case-insensitively and also as the label's own name with ``.img``.

    Example:
        >>> import tempfile, os, numpy as np
        >>> d = tempfile.mkdtemp()
        >>> cube = np.arange(2 * 3 * 4, dtype="<f4").reshape(2, 3, 4)  # line, band, sample
        >>> cube[0, 0, 0] = 65535.0
        >>> cube.tofile(os.path.join(d, "x.img"))
        >>> _ = open(os.path.join(d, "x.lbl"), "w").write(
        ...     'RECORD_BYTES = 16\\n^IMAGE = "X.IMG"\\nOBJECT = IMAGE\\n LINES = 2\\n LINE_SAMPLES = 4\\n'
        ...     ' BANDS = 3\\n SAMPLE_TYPE = PC_REAL\\n SAMPLE_BITS = 32\\n BAND_STORAGE_TYPE = LINE_INTERLEAVED\\n'
        ...     'END_OBJECT = IMAGE\\nEND\\n')
        >>> out, _ = read_image(os.path.join(d, "x.lbl"))
        >>> out.shape, float(out[1, 2, 1]), bool(np.isnan(out[0, 0, 0]))
        ((2, 4, 3), 18.0, True)
    """
    label_path = Path(label_path)
    if not label_path.is_file():
        raise FileNotFoundError(f"{label_path}: file not found")
    label = parse_label(label_path.read_text(errors="replace"))
    pointer, holder = _find(label, "^IMAGE")
    image, _ = _find(label, "IMAGE")
    if pointer is None or not isinstance(image, dict):
        raise ValueError(f"{label_path}: no ^IMAGE pointer / IMAGE object")
    record_bytes = int((holder or label).get("RECORD_BYTES", label.get("RECORD_BYTES", 0)) or 0)
    fname, offset = (pointer[0], (int(pointer[1]) - 1) * record_bytes) if isinstance(pointer, list) else (pointer, 0)
    if isinstance(fname, int):  # ^IMAGE = 12: an attached label, record 12 of this file
        fname, offset = label_path.name, (fname - 1) * record_bytes
    if data_path is None:
        candidates = [p for p in label_path.parent.iterdir() if p.name.lower() == str(fname).lower()]
        stem = label_path.name.lower().split(".lbl")[0]
        candidates += [p for p in label_path.parent.iterdir() if p.name.lower() == stem + ".img"]
        if not candidates:
            raise FileNotFoundError(f"{label_path}: data file {fname} not found beside the label")
        data_path = candidates[0]
    lines, samples = int(image["LINES"]), int(image["LINE_SAMPLES"])
    bands = int(image.get("BANDS", 1))
    key = (str(image.get("SAMPLE_TYPE")), int(image.get("SAMPLE_BITS", 0)))
    if key not in _DTYPES:
        raise ValueError(f"{label_path}: unsupported SAMPLE_TYPE/SAMPLE_BITS {key}")
    storage = str(image.get("BAND_STORAGE_TYPE", "BAND_SEQUENTIAL"))
    shapes = {"LINE_INTERLEAVED": ((lines, bands, samples), (0, 2, 1)),
              "BAND_SEQUENTIAL": ((bands, lines, samples), (1, 2, 0)),
              "SAMPLE_INTERLEAVED": ((lines, samples, bands), (0, 1, 2))}
    if storage not in shapes:
        raise ValueError(f"{label_path}: unsupported BAND_STORAGE_TYPE {storage}")
    shape, axes = shapes[storage]
    count = lines * samples * bands
    raw = np.fromfile(data_path, dtype=_DTYPES[key], count=count, offset=offset)
    if raw.size != count:
        raise ValueError(f"{data_path}: {raw.size} values, label says {count}")
    cube = raw.reshape(shape).transpose(axes).astype(np.float32)
    if key[0].endswith("REAL"):
        cube[(cube == FILL) | ~(np.abs(cube) < 1e3)] = np.nan
    return cube, label
