"""CRISM TRDR (TRR3) I/F cubes, read with the field's PDS reader ``pdr``.

What it is for: the real radiometric check of the spectral chain
(:mod:`pymars.spectral.realcube`) reads CRISM cubes from their PDS3 labels.
``pdr`` parses the label and de-interleaves the IMAGE object (line, band or
sample interleaved; any byte order); this module only checks what ``pdr``
would let through quietly and returns the cube the spectral code wants:

* the IMAGE object's ``SAMPLE_TYPE`` must be one of :data:`SAMPLE_TYPES`
  (``pdr`` reads e.g. ``VAX_REAL`` as something else without a word);
* the data file must hold ``LINES x LINE_SAMPLES x BANDS`` values (``pdr`` only
  warns and returns an empty array for a truncated file);
* the cube comes back as float32 ``(lines, samples, bands)``, and CRISM's
  missing-data value 65535.0 (and any value with magnitude >= 1e3, impossible
  for I/F) becomes NaN.

Every refusal is one ``ValueError`` line naming the file. It must not touch
anything but the files it is given (no cache, no writes).

Example:
    >>> read_image("missing.lbl")
    Traceback (most recent call last):
    ...
    FileNotFoundError: missing.lbl: file not found
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

FILL = 65535.0
#: IMAGE sample types read (PDS3 names; the REAL ones are IEEE floats).
SAMPLE_TYPES = frozenset({"PC_REAL", "IEEE_REAL", "REAL", "MSB_INTEGER", "LSB_INTEGER", "INTEGER",
                          "MSB_UNSIGNED_INTEGER", "LSB_UNSIGNED_INTEGER", "UNSIGNED_INTEGER"})


def read_image(label_path: str | Path) -> tuple[np.ndarray, object]:
    """The IMAGE object of a PDS3 product as float32 ``(lines, samples, bands)``, and the label (pdr's metadata).

    The data file is the one the label's ``^IMAGE`` pointer names (an attached
    label works too); ``pdr`` finds it beside the label whatever its case.
    The label is ``pdr``'s metadata object: ``label["PRODUCT_ID"]`` for top-level
    keys, ``label.metaget("LINES")`` for keys inside objects.

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
    try:
        import pdr
    except ImportError:
        raise ValueError(f"{label_path}: reading PDS products needs pdr (pip install 'pymars[spectral]')") from None
    with warnings.catch_warnings():  # pdr warns about what it could not load; we say it as an error below
        warnings.simplefilter("ignore")
        try:
            data = pdr.read(str(label_path))
            label = data.metadata
            image = label.metaget("IMAGE")
        except Exception as e:  # a label pdr cannot parse
            raise ValueError(f"{label_path}: not a readable PDS3 label ({str(e).splitlines()[0][:120]})") from None
        if not hasattr(image, "get") or "IMAGE" not in data.keys():
            raise ValueError(f"{label_path}: no ^IMAGE pointer / IMAGE object")
        stype = str(image.get("SAMPLE_TYPE", ""))
        if stype not in SAMPLE_TYPES:
            raise ValueError(f"{label_path}: unsupported SAMPLE_TYPE/SAMPLE_BITS {(stype, image.get('SAMPLE_BITS'))}")
        try:
            lines, samples, bands = int(image["LINES"]), int(image["LINE_SAMPLES"]), int(image.get("BANDS", 1))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{label_path}: the IMAGE object lacks LINES / LINE_SAMPLES") from None
        try:
            raw = np.asarray(data["IMAGE"])
        except Exception as e:
            raise ValueError(f"{label_path}: the image data cannot be read ({str(e).splitlines()[0][:120]})") from None
    count = lines * samples * bands
    if raw.size != count:
        raise ValueError(f"{label_path}: {raw.size} values, label says {count} (truncated or foreign data file)")
    # pdr gives (bands, lines, samples) whatever the storage order (2-D for one band).
    cube = raw.reshape(bands, lines, samples).transpose(1, 2, 0).astype(np.float32)
    if stype.endswith("REAL"):
        cube[(cube == FILL) | ~(np.abs(cube) < 1e3)] = np.nan
    return cube, label
