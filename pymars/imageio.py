"""Read and write the image files the CLI accepts: PNG and TIFF, 8 or 16-bit, gray or RGB; read PDS3 and PDS4 products.

Pillow reads 8-bit PNG/TIFF and 16-bit gray; 16-bit RGB (common for TIFF and
PNG from science pipelines) goes through tifffile / Pillow's raw modes so that
no sample is silently truncated. Alpha channels are dropped with a warning;
anything else that is not gray or RGB is refused with a clear message, and so
is a file the decoders cannot read (truncated, not an image, a header that
claims more pixels than Pillow's decompression-bomb limit): always an
:class:`~pymars.errors.InputImageError` naming the file, never a library's own
exception. The format is told by the file's first bytes, not by its name.

:func:`image_from_bytes` and :func:`image_bytes` work on bytes (standard input
and output of the CLI); :func:`read_image` and :func:`write_image` on files,
the latter atomically (:class:`pymars.clio.AtomicOutput`). :func:`read_pds` reads a
planetary image product with the field's reader, ``pdr``: PDS3 (attached or
detached ``.LBL`` label, as MSL's EDRs) and PDS4 (``.xml`` label, as Mars 2020's
products): its samples at their bit depth and the product's identity.

Example:
    >>> import tempfile, numpy as np
    >>> p = tempfile.mktemp(suffix=".png")
    >>> write_image(p, np.full((4, 5, 3), 7, np.uint8))
    >>> read_image(p).shape
    (4, 5, 3)
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np

from pymars.clio import AtomicOutput, read_input
from pymars.errors import InputImageError

SUFFIXES = {".png", ".tif", ".tiff"}
#: File names read as PDS products (PDS3 label or image file, PDS4 label): :func:`read_pds`.
PDS_SUFFIXES = {".lbl", ".img", ".xml"}
#: Label keywords carried as the product's identity (instrument, sol, sequence, product id).
PDS_IDENTITY = ("INSTRUMENT_HOST_NAME", "INSTRUMENT_ID", "PLANET_DAY_NUMBER", "SEQUENCE_ID", "PRODUCT_ID")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIFF_MAGICS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF, both byte orders


def _drop_alpha(arr: np.ndarray, path) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        warnings.warn(f"{path}: alpha channel dropped", stacklevel=3)
        arr = arr[..., :-1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An (H, W) or (H, W, 3) uint8/uint16 array from a PNG or TIFF file.

    Example:
        >>> read_image("no-such-file.png")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no-such-file.png: file not found
    """

    return image_from_bytes(read_input(path), "standard input" if str(path) == "-" else str(path))


def image_from_bytes(data: bytes, name: str = "image") -> np.ndarray:
    """An (H, W) or (H, W, 3) uint8/uint16 array from the bytes of a PNG or TIFF file (``name``: for messages).

    Example:
        >>> image_from_bytes(b"hello", "notes.png")
        Traceback (most recent call last):
        ...
        pymars.errors.InputImageError: notes.png: not an image file (PNG or TIFF expected)
    """
    if not data:
        raise InputImageError(f"{name}: empty file (PNG or TIFF expected)")
    if data[:4] in TIFF_MAGICS:
        import tifffile

        try:
            arr = tifffile.imread(io.BytesIO(data))
        except Exception as e:  # tifffile raises many types for broken files
            raise InputImageError(f"{name}: not a readable TIFF ({_first_line(e)})") from None
        if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)  # planar (C, H, W) TIFF
    elif data[:8] == PNG_MAGIC and len(data) >= 26 and data[24] == 16:
        # Pillow reads 16-bit RGB(A) PNG as 8-bit; imagecodecs keeps every bit.
        import imagecodecs

        _check_png_size(data, name)
        try:
            arr = imagecodecs.png_decode(data)
        except Exception as e:  # imagecodecs.PngError and friends
            raise InputImageError(f"{name}: not a readable PNG ({_first_line(e)})") from None
    else:
        arr = _read_with_pillow(data, name)
    arr = _drop_alpha(np.asarray(arr), name)
    if arr.dtype == np.int32 and arr.min(initial=0) >= 0 and arr.max(initial=0) < 65536:
        arr = arr.astype(np.uint16)
    if arr.dtype not in (np.uint8, np.uint16):
        raise InputImageError(f"{name}: samples of type {arr.dtype} are not supported (8 or 16-bit expected)")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise InputImageError(f"{name}: shape {arr.shape} is neither gray nor RGB")
    return np.ascontiguousarray(arr)


def _read_with_pillow(data: bytes, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Between Pillow's two limits it only warns; nobody codes such an image on purpose.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    return np.asarray(im).astype(np.uint16) if im.mode != "I" else np.asarray(im)
                if im.mode == "P":
                    return np.asarray(im.convert("RGBA" if "transparency" in im.info else "RGB"))
                if im.mode in ("1", "L", "LA", "RGB", "RGBA"):
                    return np.asarray(im.convert("L") if im.mode == "1" else im)
                return np.asarray(im.convert("RGB"))
    except UnidentifiedImageError:
        raise InputImageError(f"{name}: not an image file (PNG or TIFF expected)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputImageError(f"{name}: the file claims {_claimed_size(data)} pixels, more than this reader "
                              f"accepts ({Image.MAX_IMAGE_PIXELS} pixels; a damaged or hostile header?)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated or damaged data
        raise InputImageError(f"{name}: not a readable image ({_first_line(e)})") from None


def _check_png_size(data: bytes, name: str) -> None:
    from PIL import Image

    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if w * h > Image.MAX_IMAGE_PIXELS:
        raise InputImageError(f"{name}: the file claims {w}x{h} pixels, more than this reader accepts "
                              f"({Image.MAX_IMAGE_PIXELS} pixels; a damaged or hostile header?)")


def _claimed_size(data: bytes) -> str:
    if data[:8] == PNG_MAGIC and len(data) >= 24:
        return f"{int.from_bytes(data[16:20], 'big')}x{int.from_bytes(data[20:24], 'big')}"
    return "too many"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write uint8/uint16 gray or RGB as PNG or TIFF (by suffix), atomically.

    Example:
        >>> import tempfile
        >>> p = tempfile.mktemp(suffix=".tif")
        >>> write_image(p, np.zeros((2, 2), np.uint16)); read_image(p).dtype
        dtype('uint16')
    """

    path = Path(path)
    data = image_bytes(image, path.suffix)  # refuses a bad suffix before any file is made
    with AtomicOutput(path) as out:
        out.write(data)


def image_bytes(image: np.ndarray, suffix: str = ".png") -> bytes:
    """The bytes of a PNG (``.png``) or TIFF (``.tif``, ``.tiff``) file of a uint8/uint16 gray or RGB image.

    Example:
        >>> image_bytes(np.zeros((2, 2), np.uint8))[:4]
        b'\\x89PNG'
        >>> image_bytes(np.zeros((2, 2), np.uint8), ".jpg")
        Traceback (most recent call last):
        ...
        ValueError: output must be .png, .tif or .tiff, not .jpg
    """
    suffix = suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"output must be .png, .tif or .tiff, not {suffix or 'a name without a suffix'}")
    if suffix in (".tif", ".tiff"):
        import tifffile

        buf = io.BytesIO()
        tifffile.imwrite(buf, image, photometric="rgb" if image.ndim == 3 else "minisblack")
        return buf.getvalue()
    if image.dtype == np.uint16 and image.ndim == 3:
        # Pillow cannot write 16-bit RGB PNG.
        import imagecodecs

        return bytes(imagecodecs.png_encode(image))
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def is_pds(path: str | os.PathLike) -> bool:
    """True for a PDS label or image file name (``.LBL``, ``.IMG``, PDS4's ``.xml``; either case).

    Example:
        >>> is_pds("NLB_516721703EDR_F0540992CCAM15900M1.LBL"), is_pds("ZL0_0100_EBY_N0030000ZCAM05000_110085J01.xml")
        (True, True)
        >>> is_pds("frame.png")
        False
    """
    return Path(str(path)).suffix.lower() in PDS_SUFFIXES


def _pds_image(data) -> np.ndarray:
    """The product's image: PDS3's IMAGE object, else (PDS4) its first 2-D or 3-D array."""
    keys = list(data.keys())
    if "IMAGE" in keys:
        return np.asarray(data["IMAGE"])
    for key in keys:
        if key.lower() == "label":
            continue
        value = data[key]
        if isinstance(value, np.ndarray) and value.ndim in (2, 3) and value.dtype.fields is None:
            return value
    raise ValueError("no image array in the product")


def _label_values(node, key: str):
    """Every value of ``key`` anywhere in a nested label (mappings and lists), in label order."""
    if hasattr(node, "items"):
        for k, v in node.items():
            if k == key or str(k).endswith(":" + key):  # PDS4 mission dictionaries: "msn:sol_number"
                yield v
            yield from _label_values(v, key)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _label_values(v, key)


def _pds4_identity(meta, name: str) -> dict:
    """PDS3's identity keys, filled from a PDS4 label (Mars 2020 style) where it has them."""
    identity = {}
    for component in _label_values(meta, "Observing_System_Component"):
        if not hasattr(component, "get"):
            continue
        kind, what = str(component.get("type", "")).lower(), component.get("name")
        if what and kind in ("host", "spacecraft") and "instrument_host_name" not in identity:
            identity["instrument_host_name"] = str(what)
        if what and kind == "instrument" and "instrument_id" not in identity:
            identity["instrument_id"] = str(what)
    for key, names in (("planet_day_number", ("sol_number", "sol")), ("sequence_id", ("sequence_id",))):
        value = next((v for n in names for v in _label_values(meta, n) if v is not None), None)
        if value is not None:  # PDS4 values are text: a sol is a number, as in PDS3 labels
            identity[key] = int(value) if key == "planet_day_number" and str(value).strip().isdigit() else value
    lid = next(_label_values(meta, "logical_identifier"), None)
    identity["product_id"] = str(lid).rsplit(":", 1)[-1] if lid else Path(name).stem
    return identity


def read_pds(path: str | os.PathLike, *, any_type: bool = False) -> tuple[np.ndarray, int, dict]:
    """(samples, bit depth, identity) of a PDS3 or PDS4 image product, read with ``pdr``.

    ``any_type``: also take float and signed samples (calibrated products such as
    CaSSIS I/F cubes, for ``pymars spectral predict``): they come back as float64
    with bit depth 0, NaN where the product marks no data is kept.

    The samples keep their precision: uint8 for 8-bit products, uint16 for
    12/16-bit ones. PDS3: the depth is the number of bits of ``SAMPLE_BIT_MASK``
    (e.g. 12 for Navcam EDRs stored in 16-bit words), else ``SAMPLE_BITS``.
    PDS4 labels carry no bit mask: 1-byte elements are 8-bit, 2-byte ones 12-bit
    when every sample fits in 12 bits (Mars 2020's 12-bit cameras), else 16.
    Band-first RGB becomes (H, W, 3). ``identity`` holds the instrument host and
    instrument, sol, sequence and product id (PDS4: the logical identifier's last
    part) where the label has them.

    Example:
        >>> read_pds("missing.LBL")
        Traceback (most recent call last):
        ...
        FileNotFoundError: missing.LBL: file not found
    """
    name = str(path)
    if not Path(name).is_file():
        raise FileNotFoundError(f"{name}: file not found")
    try:
        import pdr
    except ImportError:
        raise InputImageError(f"{name}: reading PDS products needs pdr (pip install 'pymars[pds]')") from None
    with warnings.catch_warnings(record=True) as said:  # pdr only warns (and gives an empty array) for short data
        warnings.simplefilter("always")
        try:
            data = pdr.read(name)
            img = _pds_image(data)
        except Exception as e:  # pdr raises many types for broken or foreign products
            raise InputImageError(f"{name}: not a readable PDS image product ({_first_line(e)})") from None
    if img.ndim < 2 or img.size == 0:
        why = next((_first_line(w.message) for w in said), "no samples")
        raise InputImageError(f"{name}: not a readable PDS image product (truncated or missing image data: {why})")
    meta = data.metadata
    image = meta.get("IMAGE")  # PDS3: the label's IMAGE object; a PDS4 label has none at its top
    pds4 = not (hasattr(image, "get") and "LINES" in image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[0] < img.shape[-1]:
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)  # band-first
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise InputImageError(f"{name}: a PDS image of shape {img.shape} is neither gray nor RGB")
    if any_type:
        if not np.issubdtype(img.dtype, np.number):
            raise InputImageError(f"{name}: PDS samples of type {img.dtype} are not numbers")
        identity = _pds4_identity(meta, name) if pds4 else {k.lower(): meta.get(k) for k in PDS_IDENTITY
                                                                if meta.get(k) is not None}
        return np.ascontiguousarray(img.astype(np.float64)), 0, identity
    if not np.issubdtype(img.dtype, np.integer) or int(img.min(initial=0)) < 0 or int(img.max(initial=0)) > 65535:
        raise InputImageError(f"{name}: PDS samples of type {img.dtype} are not 8 to 16-bit unsigned integers")
    top = int(img.max(initial=0))
    if pds4:
        bits = 8 if img.dtype.itemsize == 1 else 12 if top <= 4095 else 16
        identity = _pds4_identity(meta, name)
    else:
        mask = image.get("SAMPLE_BIT_MASK")
        bits = int(mask).bit_count() if isinstance(mask, int) and mask > 0 else int(image.get("SAMPLE_BITS", 8) or 8)
        bits = 8 if bits <= 8 else 12 if bits <= 12 else 16
        identity = {k.lower(): meta.get(k) for k in PDS_IDENTITY if meta.get(k) is not None}
    if bits == 8 and top > 255:
        bits = 16
    elif bits == 12 and top > 4095:
        bits = 16
    arr = np.ascontiguousarray(img.astype(np.uint8 if bits == 8 else np.uint16))
    return arr, bits, identity


def read_source(path: str | os.PathLike) -> tuple[np.ndarray, int | None, dict]:
    """(samples, bit depth to code them at, PDS identity) of what ``pymars encode`` takes: an image file or a PDS product.

    The bit depth is a 12/16-bit PDS product's own (None otherwise: the
    encoder's default for the array's dtype); the identity is {} for an image file.

    Example:
        >>> import tempfile
        >>> p = tempfile.mktemp(suffix=".png")
        >>> write_image(p, np.full((4, 5), 7, np.uint8))
        >>> img, depth, identity = read_source(p)
        >>> img.shape, depth, identity
        ((4, 5), None, {})
    """
    if is_pds(path):
        img, depth, identity = read_pds(path)
        return img, (depth if img.dtype == np.uint16 else None), identity
    return read_image(path), None, {}
