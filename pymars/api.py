"""The public API: ``encode`` an image to bytes, ``decode`` bytes to an image, ``info`` about a file.

    image --encode (C++ rover encoder)--> bytes --decode (C++ entropy decoder + ONNX/PyTorch synthesis)--> image

The encoder is the C++ core (the same code as the flight C API); the decoder
entropy-decodes with the same C++ integer code and runs the synthesis in ONNX
Runtime (default; no PyTorch needed) or PyTorch. A damaged or missing tile is
filled with 0 and reported; every other tile decodes exactly.

Example:
    >>> import numpy as np, pymars
    >>> img = pymars.data.synthetic.mars_like_scene(64, 80, seed=2)
    >>> data = pymars.encode(img, quality=60) if pymars.default_bundle().available else None
    >>> data is None or pymars.decode(data).shape == (64, 80, 3)
    True
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .bundle import (DEFAULT_REMAC_MODEL, ModelBundle, bundle_for_model_id, gray_bundle, near_lossless_bundle,
                     open_bundle)
from .errors import BitstreamError, InputImageError, ModelMismatchError

MAX_SIDE = 65535
#: Decoding refuses images of more pixels than this unless asked (``max_pixels=``,
#: CLI ``--max-pixels``): a 40-byte header with a valid CRC can claim 65535 x 65535
#: pixels, whose output would need 4 to 24 GiB. 2^28 = 268 M pixels (16384 x 16384)
#: is 256 MiB of 8-bit gray output, 1.5 GiB of 16-bit RGB (docs/bitstream.md §3,
#: "Decoder limits").
DEFAULT_MAX_PIXELS = 1 << 28
#: Tiles entropy-decoded per call into the C++ core (times ``threads``): only the
#: latents of these tiles are held at once, whatever the image size.
DECODE_BATCH_TILES = 8


class DamagedTilesWarning(UserWarning):
    """Some tiles of a decoded file were damaged or missing and were filled with 0, or
    bytes of the file lay outside every valid tile record (trailing data, a concatenation)."""


@dataclass
class DecodeReport:
    """What happened while decoding: which tiles were not decoded, and why; which bytes were not used.

    ``bytes_skipped``: bytes outside the header and every accepted tile record;
    ``trailing_bytes``: those after the last accepted record (docs/bitstream.md
    §3, "Trailing data"); ``concatenated``: they hold another pymars file. A
    report is :attr:`ok` only when every tile decoded and every byte was used.

    Example:
        >>> r = DecodeReport(64, 64, 1, 50, 32, 4, trailing_bytes=7, bytes_skipped=7)
        >>> r.ok, r.describe()
        (False, '7 trailing bytes ignored')
        >>> DecodeReport(64, 64, 1, 50, 32, 4, missing=[3], trailing_bytes=30, bytes_skipped=30).describe()
        '0 damaged, 1 missing tile(s) filled with 0; 30 bytes outside valid tile records ignored'
    """

    width: int
    height: int
    channels: int
    quality: int
    tile_size: int
    tile_count: int
    damaged: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    bytes_skipped: int = 0
    trailing_bytes: int = 0
    concatenated: bool = False

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.missing and not self.bytes_skipped

    def describe(self) -> str:
        """One line for the user: ``ok``, or what was lost and what was ignored.

        Example:
            >>> DecodeReport(16, 16, 3, 75, 16, 1).describe()
            'ok'
            >>> DecodeReport(16, 16, 3, 75, 16, 1, bytes_skipped=99, trailing_bytes=99, concatenated=True).describe()
            '99 trailing bytes ignored (another pymars file follows: decode each file on its own)'
        """
        parts = []
        follows = " (another pymars file follows: decode each file on its own)" if self.concatenated else ""
        if self.damaged or self.missing:
            # The skipped bytes are then mostly the damaged records themselves (or a cut-off one).
            parts.append(f"{len(self.damaged)} damaged, {len(self.missing)} missing tile(s) filled with 0")
            if self.bytes_skipped:
                parts.append(f"{self.bytes_skipped} bytes outside valid tile records ignored{follows}")
        else:
            if self.trailing_bytes:
                parts.append(f"{self.trailing_bytes} trailing bytes ignored{follows}")
            if self.bytes_skipped > self.trailing_bytes:
                parts.append(f"{self.bytes_skipped - self.trailing_bytes} bytes between tile records ignored")
        return "; ".join(parts) or "ok"


def _check_image(image) -> tuple[np.ndarray, int]:
    if not isinstance(image, np.ndarray):
        raise InputImageError(f"image must be a NumPy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3):
        raise InputImageError(f"image must have shape (H, W) or (H, W, C); got shape {image.shape}")
    if image.ndim == 3 and image.shape[2] not in (1, 3):
        hint = " (drop the alpha channel: image[..., :3])" if image.shape[2] == 4 else ""
        raise InputImageError(f"image must have 1 or 3 channels, got {image.shape[2]}{hint}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputImageError(f"image is empty (shape {image.shape})")
    if image.shape[0] > MAX_SIDE or image.shape[1] > MAX_SIDE:
        raise InputImageError(f"image sides must be at most {MAX_SIDE} pixels, got {image.shape[:2]}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image), 8
    if image.dtype == np.uint16:
        return np.ascontiguousarray(image), 16
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise InputImageError("image contains NaN or infinite values")
        raise InputImageError(
            f"image dtype {image.dtype} is not supported: pass uint8 (or uint16), e.g. "
            "np.clip(np.round(x * 255), 0, 255).astype(np.uint8) for floats in [0, 1]"
        )
    raise InputImageError(f"image dtype {image.dtype} is not supported: pass uint8 or uint16")


def encode(
    image: np.ndarray,
    quality: int = 75,
    target_bytes: int | None = None,
    *,
    tile_size: int = 256,
    bit_depth: int | None = None,
    threads: int = 1,
    model: str | ModelBundle | None = None,
    refs=None,
    max_error: int | None = None,
) -> bytes:
    """Encode an (H, W) or (H, W, 3) uint8/uint16 image into a pymars file.

    ``quality`` 1..100 (higher: more bytes, better fidelity), or ``target_bytes``
    for the highest quality whose file fits a downlink budget, or ``max_error``
    k: the model's cheapest near-lossless quality whose every decoded sample is
    within +-k of the original (0: lossless; 8-bit images only). 16-bit input is
    coded at 8-bit precision (``bit_depth`` 12 or 16 tells how to scale it).
    The output bytes do not depend on ``threads``.

    ``refs``: a REMAC reference library (path of ``LIB.pmrl`` or a
    :class:`pymars.refs.ReferenceLibrary`); the model then defaults to the
    REMAC bundle, each tile's references are selected on the rover's rules and
    the file carries the library's hash. Without ``refs`` the base codec runs.

    Example:
        >>> import numpy as np
        >>> from pymars.data.synthetic import mars_like_scene
        >>> from pymars.bundle import default_bundle
        >>> data = encode(mars_like_scene(48, 48), quality=50) if default_bundle().available else b"PMRS"
        >>> data[:4]
        b'PMRS'
    """
    from . import _core

    img, depth = _check_image(image)
    if bit_depth is None:
        bit_depth = depth
    if depth == 8 and bit_depth != 8:
        raise InputImageError("uint8 images have bit_depth 8")
    if depth == 16 and bit_depth not in (12, 16):
        raise InputImageError("uint16 images need bit_depth 12 or 16")
    if depth == 16 and bit_depth == 12 and int(img.max(initial=0)) > 4095:
        raise InputImageError("bit_depth 12 but the image has values above 4095")
    if tile_size % 16 or not 16 <= tile_size <= 4096:
        raise ValueError("tile_size must be a multiple of 16 in 16..4096")
    if img.ndim == 3 and _channels_equal(img):
        # A gray image stored as RGB: coding it as RGB spends bits on two copies and
        # lets the colour model tint it; it is coded (and decoded) as one channel.
        img = np.ascontiguousarray(img[..., 0])
    if model is None and refs is None and max_error is not None:
        # The defaults' ladders have near-lossless k = 2 (gray) and 1 (RGB) at most.
        model = near_lossless_bundle(gray=img.ndim == 2)
    if model is None and refs is None and img.ndim == 2 and gray_bundle() is not None:
        model = gray_bundle()
    bundle = open_bundle(model if model is not None or refs is None else DEFAULT_REMAC_MODEL)
    if bundle.channels == 1 and img.ndim == 3:
        raise InputImageError(f"model {bundle.name!r} codes gray images only; this image has 3 different channels")
    library = None if refs is None else core_library(bundle, open_library(refs, ground=False))
    if max_error is not None:
        if target_bytes is not None:
            raise ValueError("give max_error or target_bytes, not both")
        quality = quality_for_max_error(bundle, max_error, depth)
    try:
        if target_bytes is not None:
            if int(target_bytes) <= 0:
                raise ValueError("target_bytes must be positive")
            data, _ = _core.encode_to_target(bundle.core, img, int(target_bytes), tile_size, bit_depth, threads,
                                             library=library)
            return data
        q = int(quality)
        if not 1 <= q <= 100:
            raise ValueError(f"quality must be in 1..100, got {quality}")
        return _core.encode(bundle.core, img, q, tile_size, bit_depth, threads, library=library)
    except ValueError as e:
        if isinstance(e, InputImageError) or "target_bytes" in str(e):
            raise
        raise InputImageError(str(e)) from None


def quality_for_max_error(bundle: ModelBundle, max_error: int, depth: int = 8) -> int:
    """The lowest quality of ``bundle`` whose near-lossless coder keeps every sample within ``max_error``.

    Raises a one-line error when the model has no such quality or the samples
    are not 8-bit (12/16-bit input is coded at 8-bit precision: never exact).

    Example:
        >>> from pymars.bundle import gray_bundle
        >>> b = gray_bundle()
        >>> b is None or b.core.near_lossless_error(quality_for_max_error(b, 0)) == 0
        True
    """
    k = int(max_error)
    if k < 0:
        raise ValueError(f"max_error must be 0 or more, got {max_error}")
    if depth != 8:
        raise InputImageError("max_error (lossless, near-lossless) needs 8-bit samples: 12/16-bit input is coded "
                              "at 8-bit precision")
    for q in range(1, 101):
        e = bundle.core.near_lossless_error(q)
        if e is not None and e <= k:
            return q
    raise ModelMismatchError(f"model {bundle.name!r} has no near-lossless quality; max_error needs a model "
                             "that has them")


def _channels_equal(img: np.ndarray) -> bool:
    """True when the three channels of an (H, W, 3) image are equal at every pixel.

    Example:
        >>> _channels_equal(np.full((2, 2, 3), 9, np.uint8)), _channels_equal(np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
        (True, False)
    """
    return bool(np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2]))


def open_library(refs, ground: bool = True):
    """A :class:`pymars.refs.ReferenceLibrary` from a path or an already loaded library.

    Example:
        >>> open_library("missing.pmrl")
        Traceback (most recent call last):
        ...
        pymars.refs.library.ReferenceLibraryError: no reference library at missing.pmrl
    """
    from .refs import ReferenceLibrary

    if isinstance(refs, ReferenceLibrary):
        return refs
    return ReferenceLibrary.load(refs, ground=ground)


def core_library(bundle: ModelBundle, library):
    """The C++ view of a library's rover part for a REMAC bundle (refuses base models and other models).

    Example:
        >>> import numpy as np
        >>> from pymars.refs import ReferenceLibrary
        >>> lib = ReferenceLibrary(bytes(8), np.zeros((1, 59), np.uint32), np.zeros((1, 128), np.uint16),
        ...                        np.zeros((1, 128, 16, 16), np.int8))
        >>> core_library(open_bundle(), lib)
        Traceback (most recent call last):
        ...
        pymars.errors.ModelMismatchError: model 'base-v2-wv' has no reference branch: REMAC needs a REMAC bundle such as 'remac-v1'
    """
    from . import _core

    if not bundle.is_remac:
        raise ModelMismatchError(f"model {bundle.name!r} has no reference branch: REMAC needs a REMAC bundle "
                                 f"such as {DEFAULT_REMAC_MODEL!r}")
    library.check_model(bundle.model_id)
    key = library.sha256
    cache = bundle.__dict__.setdefault("_libraries", {})
    if key not in cache:
        try:
            cache[key] = _core.ReferenceLibraryCore(bundle.core, library.rover_bytes())
        except ValueError as e:
            raise ModelMismatchError(str(e)) from None
    return cache[key]


def info(data: bytes) -> dict:
    """The file header as a dict (size, channels, quality, tiles, model id), without decoding.

    Example:
        >>> info(b"garbage")
        Traceback (most recent call last):
        ...
        pymars.errors.BitstreamError: not a valid pymars file: ...
    """
    from . import _core

    try:
        return _core.parse_file_header(bytes(data[:48]))  # the header is at most 48 bytes: no copy of the file
    except ValueError as e:
        raise BitstreamError(f"not a valid pymars file: {e}") from None


def decode_with_report(
    data: bytes,
    *,
    backend: str = "onnx",
    threads: int = 1,
    model: str | ModelBundle | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    refs=None,
) -> tuple[np.ndarray, DecodeReport]:
    """Decode a pymars file; also return which tiles were damaged or missing and which bytes were ignored.

    ``model`` defaults to the shipped bundle whose id the file names.
    ``refs``: the reference library a REMAC file was coded with (path or
    :class:`pymars.refs.ReferenceLibrary` with its ground part); a file whose
    header names a library cannot be decoded without it.

    Memory is bounded by the output (docs/bitstream.md §3, "Decoder limits"):
    a file is refused (:class:`BitstreamError`) before the image is allocated
    when it claims more than ``max_pixels`` pixels or holds no valid tile
    record; tiles are then decoded a few at a time and written straight into
    the output array (its final dtype and channels), so beyond the output only
    one batch of tiles is held.

    Example:
        >>> from pymars.bundle import default_bundle
        >>> from pymars.data.synthetic import mars_like_scene
        >>> if default_bundle().available:
        ...     img, rep = decode_with_report(encode(mars_like_scene(40, 40), 50))
        ...     print(img.shape, rep.ok)
        ... else:
        ...     print((40, 40, 3), True)
        (40, 40, 3) True
    """
    from . import _core

    data = data if isinstance(data, bytes) else bytes(data)
    header = info(data)
    check_pixel_limit(header, max_pixels)
    if model is None:
        model = bundle_for_model_id(header["model_id"])
        if model is None:
            raise ModelMismatchError(
                f"the file was encoded with model id {header['model_id'].hex()}, which no installed model has: "
                "pass model=FOLDER (CLI: --model) with the bundle that encoded it")
    bundle = open_bundle(model)
    if header["model_id"] != bundle.model_id:
        raise ModelMismatchError(
            f"the file was encoded with model id {header['model_id'].hex()}, but model {bundle.name!r} has id "
            f"{bundle.model_id.hex()}: decode with the model that encoded it"
        )
    library = core = None
    if refs is not None:
        library = open_library(refs, ground=True)
        if library.tiles is None:
            raise ModelMismatchError("decoding needs the library's ground part (LIB.pmrg with the reference tiles)")
        core = core_library(bundle, library)
    needed = header["library_hash"]
    if needed is not None and library is None:
        raise ModelMismatchError(f"the file was coded with reference library {needed.hex()}: pass refs=LIB (its .pmrl)")
    if library is not None and needed != library.library_hash:
        raise ModelMismatchError(
            f"the file was coded with reference library {needed.hex() if needed else '(none)'}, "
            f"but refs is library {library.library_hash.hex()}: decode with the library that encoded it")
    try:
        stream = _core.DecodeStream(bundle.core, data, None, library=core)
    except ValueError as e:
        raise BitstreamError(str(e)) from None
    found = stream.summary
    h, w, c, depth, n = header["height"], header["width"], header["channels"], header["bit_depth"], header["tile_count"]
    report = DecodeReport(w, h, c, header["quality"], header["tile_size"], n, bytes_skipped=found["bytes_skipped"],
                          trailing_bytes=found["trailing_bytes"],
                          concatenated=holds_another_file(data, len(data) - found["trailing_bytes"]))
    synth = None  # loaded at the first learned tile: sample-coded files (§4.7-4.9) need no ONNX session
    # The only image-sized allocation: zero pages cost nothing until a tile is written there.
    out = np.zeros((h, w) if c == 1 else (h, w, 3), np.uint8 if depth == 8 else np.uint16)
    from tqdm import tqdm

    batch = DECODE_BATCH_TILES * max(1, int(threads))
    with tqdm(total=n, desc="decode", disable=n < 16, leave=False) as bar:
        for first in range(0, n, batch):
            for t in stream.decode(first, min(batch, n - first), threads):
                if t["status"] != "ok":
                    (report.missing if t["status"] == "missing" else report.damaged).append(t["index"])
                    continue
                if t["pixels"] is not None:  # a near-lossless or wavelet tile: samples, no synthesis (§4.7-4.9)
                    tile = t["pixels"]
                else:
                    synth = synth or bundle.synthesis(backend)
                    ref = None
                    if library is not None and t["decoder_ref"] < len(library):
                        ref = library.tiles[t["decoder_ref"]].transpose(2, 0, 1) * np.float32(1 / 255)
                    x = (synth(t["y_hat"], ref) if bundle.is_remac else synth(t["y_hat"]))[:, : t["height"], : t["width"]]
                    if t["tile_mean"] is not None:
                        x = restore_tile_mean(x, t["tile_mean"])
                    tile = to_uint8(x).transpose(1, 2, 0)
                y0, x0 = t["y0"], t["x0"]
                out[y0 : y0 + t["height"], x0 : x0 + t["width"]] = output_samples(tile, c, depth)
            bar.update(min(batch, n - first))
    if not report.ok:
        warnings.warn(
            report.describe() + (f": damaged {report.damaged[:10]}, missing {report.missing[:10]}"
                                 if report.damaged or report.missing else ""),
            DamagedTilesWarning,
            stacklevel=2,
        )
    return out, report


def check_pixel_limit(header: dict, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse a header that claims more than ``max_pixels`` pixels (before anything is allocated for it).

    Example:
        >>> check_pixel_limit({"width": 16384, "height": 16385})
        Traceback (most recent call last):
        ...
        pymars.errors.BitstreamError: the file claims a 16384x16385 image (268451840 pixels), above the decoding limit max_pixels=268435456: pass a larger max_pixels (CLI: --max-pixels) to decode it
        >>> check_pixel_limit({"width": 16384, "height": 16384})
    """
    pixels = header["width"] * header["height"]
    if pixels > max_pixels:
        raise BitstreamError(
            f"the file claims a {header['width']}x{header['height']} image ({pixels} pixels), above the decoding "
            f"limit max_pixels={max_pixels}: pass a larger max_pixels (CLI: --max-pixels) to decode it"
        )


def holds_another_file(data: bytes, start: int) -> bool:
    """True when ``data[start:]`` holds the valid header of another pymars file (a concatenation).

    Example:
        >>> from pymars import _core
        >>> head = _core.write_file_header(16, 16)
        >>> holds_another_file(head + b"junk" + head, len(head)), holds_another_file(head + b"junk", len(head))
        (True, False)
    """
    from . import _core

    pos = data.find(b"PMRS", start)
    for _ in range(64):  # a bound: garbage full of "PMRS" costs 64 header checks, no more
        if pos < 0:
            return False
        try:
            _core.parse_file_header(data[pos : pos + 48])
            return True
        except ValueError:
            pos = data.find(b"PMRS", pos + 1)
    return False


def output_samples(tile: np.ndarray, channels: int, bit_depth: int) -> np.ndarray:
    """A decoded tile (h, w, C) uint8 in the model's channels -> the file's channels and bit depth.

    A gray file decoded by an RGB model is averaged to one channel
    (:func:`gray_from_rgb`); an RGB file decoded by a gray model repeats its one
    channel; 12- and 16-bit files are expanded by ``round(v * m / 255)``
    (docs/bitstream.md §5). Works on one tile, so no image-sized intermediate exists.

    Example:
        >>> output_samples(np.array([[[1, 2, 4]]], np.uint8), 1, 8).tolist()
        [[2]]
        >>> output_samples(np.array([[[255]]], np.uint8), 1, 12).tolist()
        [[4095]]
    """
    if channels == 1:
        tile = tile[..., 0] if tile.shape[-1] == 1 else gray_from_rgb(tile)
    if bit_depth != 8:
        scale = (1 << bit_depth) - 1
        tile = np.round(tile.astype(np.float64) * scale / 255).astype(np.uint16)
    return tile


def decode(
    data: bytes,
    *,
    backend: str = "onnx",
    threads: int = 1,
    model: str | ModelBundle | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    refs=None,
) -> np.ndarray:
    """Decode a pymars file to an (H, W) or (H, W, 3) array (uint8; uint16 for 12/16-bit sources).

    Example:
        >>> from pymars.bundle import default_bundle
        >>> from pymars.data.synthetic import mars_like_scene
        >>> img = mars_like_scene(32, 48, seed=5, channels=1)
        >>> default_bundle().available is False or decode(encode(img, 90)).shape == (32, 48)
        True
    """
    return decode_with_report(data, backend=backend, threads=threads, model=model, max_pixels=max_pixels, refs=refs)[0]


def restore_tile_mean(x: np.ndarray, mean16) -> np.ndarray:
    """Shift each channel of a synthesised tile (C, h, w) in [0, 1] to the mean the rover sent.

    ``mean16``: the tile's mean per channel in 1/16 of an 8-bit level
    (docs/bitstream.md §4.6). The synthesis pulls colours toward the training
    palette; the rover measures the true mean for 2 bytes per channel and tile, so
    the decoded tile's mean signed error is removed (up to clipping and rounding).

    Example:
        >>> x = restore_tile_mean(np.full((1, 2, 2), 0.5, np.float32), [16 * 102])
        >>> round(float(x.mean()) * 255, 3)
        102.0
    """
    target = np.asarray(mean16, np.float64)[: x.shape[0]] / (16.0 * 255.0)
    shift = target - x.reshape(x.shape[0], -1).mean(1, dtype=np.float64)
    return (x + shift[:, None, None]).astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8, rounded and clamped (docs/bitstream.md §4.5).

    Example:
        >>> to_uint8(np.array([-0.1, 0.5, 2.0])).tolist()
        [0, 128, 255]
    """
    return np.clip(np.floor(x * 255.0 + 0.5), 0, 255).astype(np.uint8)


def gray_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """Average of the three channels, rounded half up (gray files are coded as RGB).

    Example:
        >>> gray_from_rgb(np.array([[[1, 2, 4]]], np.uint8)).tolist()
        [[2]]
    """
    return ((rgb.astype(np.uint16).sum(-1) * 2 + 3) // 6).astype(np.uint8)
