"""The ground decoder: a pymars file in, the image and a report of damaged tiles out.

The walk of one file (docs/architecture.md): the header is parsed once
(``pymars._core``), the bundle is found by the model id it names
(:mod:`pymars.bundles`), the C++ core entropy-decodes a few tiles at a time
(the rover's own integer code), sample-coded tiles (wavelet, near-lossless)
come back as pixels and learned tiles go through a synthesis backend
(:mod:`pymars.ground.synthesis`, ONNX Runtime by default), and
:mod:`pymars.ground.assemble` writes each tile into the output.

What it must not touch: PyTorch and training code (the PyTorch backend is a
plug-in of ``pymars.train``, loaded by name only when asked for), encoding.

Example:
    >>> from pymars.rover import encode
    >>> from pymars.data.synthetic import mars_like_scene
    >>> decode(encode(mars_like_scene(40, 40), 50)).shape
    (40, 40, 3)
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from pymars import _core
from pymars.bundles import ModelBundle, bundle_for_model_id, open_bundle
from pymars.errors import BitstreamError, ModelMismatchError
from pymars.ground.assemble import output_samples, restore_tile_mean, to_uint8
from pymars.ground.synthesis import synthesis_backend
from pymars.remac.library import core_library, open_library

#: Decoding refuses images of more pixels than this unless asked (``max_pixels=``,
#: CLI ``--max-pixels``): a 40-byte header with a valid CRC can claim 65535 x 65535
#: pixels, whose output would need 4 to 24 GiB. 2^28 = 268 M pixels (16384 x 16384)
#: is 256 MiB of 8-bit gray output, 1.5 GiB of 16-bit RGB (docs/bitstream.md §3,
#: "Decoder limits").
DEFAULT_MAX_PIXELS = 1 << 28
#: Tiles entropy-decoded per call into the C++ core (times ``threads``): only the
#: latents of these tiles are held at once, whatever the image size.


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


def info(data: bytes) -> dict:
    """The file header as a dict (size, channels, quality, tiles, model id), without decoding.

    Example:
        >>> info(b"garbage")
        Traceback (most recent call last):
        ...
        pymars.errors.BitstreamError: not a valid pymars file: ...
    """
    try:
        return _core.parse_file_header(bytes(data[:56]))  # the header is at most 56 bytes: no copy of the file
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
    providers=None,
    reference=None,
) -> tuple[np.ndarray, DecodeReport]:
    """Decode a pymars file; also return which tiles were damaged or missing and which bytes were ignored.

    ``model`` defaults to the shipped bundle whose id the file names.
    ``refs``: the reference library a REMAC file was coded with (path or
    :class:`pymars.remac.ReferenceLibrary` with its ground part); a file whose
    header names a library cannot be decoded without it. ``providers``: ONNX
    Runtime execution providers of the learned synthesis (``"CUDA,CPU"``;
    :func:`pymars.ground.synthesis.onnx_providers`; None: the CPU).
    ``reference``: the earlier frame a sequence-coded file names (docs/bitstream.md
    §4.10): a :class:`pymars.sequence.Reference`, or that file's bytes or path; a
    file that names one cannot be decoded without it, nor with another.

    Memory is bounded by the output (docs/bitstream.md §3, "Decoder limits"):
    a file is refused (:class:`BitstreamError`) before the image is allocated
    when it claims more than ``max_pixels`` pixels or holds no valid tile
    record; tiles are then decoded a few at a time and written straight into
    the output array (its final dtype and channels), so beyond the output only
    one batch of tiles is held.

    Example:
        >>> from pymars.rover import encode
        >>> from pymars.data.synthetic import mars_like_scene
        >>> img, rep = decode_with_report(encode(mars_like_scene(40, 40), 50))
        >>> img.shape, rep.ok
        ((40, 40, 3), True)
    """
    data = data if isinstance(data, bytes) else bytes(data)
    try:
        parsed = _core.open_file(data)  # the one parse of the header: checks below, then the stream
    except ValueError as e:
        raise BitstreamError(f"not a valid pymars file: {e}") from None
    header = parsed.header
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
    seq = None
    needed_frame = header.get("sequence_id")
    if reference is not None:
        from pymars.sequence import as_reference  # decodes an earlier file given by bytes or path

        reference = as_reference(reference, bundle)
    if needed_frame is not None:
        if reference is None:
            raise ModelMismatchError(f"the file was coded against an earlier frame (file id {needed_frame.hex()}): "
                                     "pass reference=THAT_FILE (CLI: --reference, or decode --sequence)")
        if reference.id != needed_frame:
            raise ModelMismatchError(f"the file was coded against the frame of file id {needed_frame.hex()}, but the "
                                     f"reference given is {reference.describe()}: decode with the file it names")
        seq = reference.core()
    try:
        stream = parsed.decode_stream(bundle.core, None, library=core, reference=seq)
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
    from tqdm import tqdm  # here, not at the top: tqdm costs 40 ms at every `pymars` start

    batch = DECODE_BATCH_TILES * max(1, int(threads))
    # A bar for big files on a terminal only (tqdm's disable=None): logs, pipes and
    # batch workers stay free of carriage-return lines.
    with tqdm(total=n, desc="decode", disable=True if n < 16 else None, leave=False) as bar:
        for first in range(0, n, batch):
            for t in stream.decode(first, min(batch, n - first), threads):
                if t["status"] != "ok":
                    (report.missing if t["status"] == "missing" else report.damaged).append(t["index"])
                    continue
                if t["pixels"] is not None:  # a near-lossless or wavelet tile: samples, no synthesis (§4.7-4.9)
                    tile = t["pixels"]
                else:
                    synth = synth or synthesis_backend(bundle, backend, providers=providers)
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
    pos = data.find(b"PMRS", start)
    for _ in range(64):  # a bound: garbage full of "PMRS" costs 64 header checks, no more
        if pos < 0:
            return False
        try:
            _core.parse_file_header(data[pos : pos + 56])
            return True
        except ValueError:
            pos = data.find(b"PMRS", pos + 1)
    return False


def decode(
    data: bytes,
    *,
    backend: str = "onnx",
    threads: int = 1,
    model: str | ModelBundle | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    refs=None,
    providers=None,
    reference=None,
) -> np.ndarray:
    """Decode a pymars file to an (H, W) or (H, W, 3) array (uint8; uint16 for 12/16-bit sources).

    Example:
        >>> from pymars.rover import encode
        >>> from pymars.data.synthetic import mars_like_scene
        >>> decode(encode(mars_like_scene(32, 48, seed=5, channels=1), 90)).shape
        (32, 48)
    """
    return decode_with_report(data, backend=backend, threads=threads, model=model, max_pixels=max_pixels, refs=refs,
                              providers=providers, reference=reference)[0]
