"""The classic codecs of the `mars-rd-1` protocol, with the exact settings it fixes.

Every RD figure of pymars is set against these codecs, so their settings are
part of the protocol (``../shared/EVALUATION.md`` §4) and live in one place:
the registry ``CLASSIC_CODECS``. Each entry is a :class:`Codec`: a name, its
8-point quality grid, an ``encode(tile, quality) -> bytes`` and a
``decode(data, shape) -> uint8 array`` function, and the settings written into
result files. :func:`code_tile` runs one codec on one tile and times the encode
and decode calls separately (``time.perf_counter``)::

    uint8 tile HxW or HxWx3 --encode(tile, q)--> bytes (the complete file)
        --decode(bytes, tile.shape)--> uint8 array of tile.shape
    Coded(n_bytes=len(bytes), decoded, encode_seconds, decode_seconds, stream_bytes)

``n_bytes`` is the size of the complete file as the library writes it (JFIF,
JP2, RIFF/WebP, AVIF/HEIF boxes, bare JPEG XL codestream). For HEVC,
``stream_bytes`` also gives the "bare HEVC stream" count of §5:
VPS/SPS/PPS from ``hvcC`` plus the slice NAL units of the primary item, each
with a 4-byte length (:func:`heic_layout`).

Which library codes what (versions go into every result file, see
:func:`library_versions`):

=========  ===================================================================
jpeg420    Pillow JPEG (libjpeg-turbo), 4:2:0, optimize; gray = 1 component
jpeg444    the same, 4:4:4 (same size and pixels as jpeg420 on gray tiles)
jpeg2000   imagecodecs OpenJPEG, fixed quality (q = target PSNR, dB), JP2
webp       Pillow WebP, method 6, always 4:2:0; gray replicated to RGB
avif       Pillow's own AVIF plugin (libavif, aom encoder, dav1d decoder)
jpegxl     imagecodecs libjxl, VarDCT, bare codestream
hevc444    pillow-heif (libheif + x265, libde265 decoder), 4:4:4 / 4:0:0
hevc420    optional: the same with 4:2:0 chroma (not in ``DEFAULT_CODECS``)
=========  ===================================================================

Everything runs single-threaded, encoders and decoders alike, so that the
timings compare across codecs. The module does not score or aggregate; that is
:mod:`pymars.evaluation.metrics` and :mod:`pymars.evaluation.bdrate`.

Example:
    >>> from pymars.data.synthetic import mars_like_scene
    >>> tile = mars_like_scene(64, 64, seed=0)
    >>> coded = jpeg420(tile, 75)
    >>> coded.decoded.shape, coded.decoded.dtype, coded.n_bytes > 0
    ((64, 64, 3), dtype('uint8'), True)
"""
from __future__ import annotations

import contextlib
import io
import struct
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, NamedTuple

import numpy as np

# ---------------------------------------------------------------------------
# The codec interface


class Coded(NamedTuple):
    """What coding one tile at one quality gives.

    ``n_bytes`` and ``decoded`` come first so that ``n_bytes, decoded = coded[:2]``.
    ``stream_bytes`` is a secondary byte count (the bare HEVC stream), else None.
    """

    n_bytes: int
    decoded: np.ndarray
    encode_seconds: float
    decode_seconds: float
    stream_bytes: int | None = None


@dataclass(frozen=True)
class Codec:
    """One entry of a codec registry: the protocol's unit of comparison.

    ``encode(tile, quality)`` gets a uint8 HxW (gray) or HxWx3 (RGB) tile and
    returns the complete file as bytes. ``decode(data, shape)`` gets those bytes
    and the tile's shape (so that a codec that must code gray as RGB, like WebP,
    knows to give one channel back) and returns a uint8 array of that shape.
    ``stream_bytes(data)``, when given, is a second byte count of the same file.
    ``settings`` is written verbatim into result files.

    Example:
        >>> c = CLASSIC_CODECS["jpeg420"]
        >>> c.name, c.qualities[0], c.qualities[-1]
        ('jpeg420', 5, 90)
    """

    name: str
    qualities: tuple
    encode: Callable[[np.ndarray, float], bytes]
    decode: Callable[[bytes, tuple], np.ndarray]
    settings: Mapping[str, object] = field(default_factory=dict)
    stream_bytes: Callable[[bytes], int] | None = None


def code_tile(codec: Codec, tile: np.ndarray, quality: float) -> Coded:
    """Encode and decode one tile with ``codec``, timing both calls separately.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> gray = mars_like_scene(48, 40, seed=2, channels=1)
        >>> out = code_tile(CLASSIC_CODECS["webp"], gray, 80)
        >>> out.decoded.shape == gray.shape, out.encode_seconds > 0
        (True, True)
    """
    tile = _checked_tile(tile)
    start = time.perf_counter()
    data = codec.encode(tile, quality)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decode(data, tile.shape)
    decode_seconds = time.perf_counter() - start
    decoded = np.asarray(decoded)
    if decoded.shape != tile.shape or decoded.dtype != np.uint8:
        raise RuntimeError(
            f"{codec.name} decoded {decoded.dtype}{decoded.shape}, expected uint8{tile.shape}"
        )
    stream = codec.stream_bytes(data) if codec.stream_bytes is not None else None
    return Coded(len(data), decoded, encode_seconds, decode_seconds, stream)


def _checked_tile(tile: np.ndarray) -> np.ndarray:
    tile = np.asarray(tile)
    if tile.dtype != np.uint8:
        raise TypeError(f"tiles are uint8, got {tile.dtype}")
    if not (tile.ndim == 2 or (tile.ndim == 3 and tile.shape[2] == 3)):
        raise ValueError(f"tiles are HxW (gray) or HxWx3 (RGB), got shape {tile.shape}")
    return np.ascontiguousarray(tile)


def _is_gray(shape: tuple) -> bool:
    return len(shape) == 2


# ---------------------------------------------------------------------------
# JPEG (Pillow, libjpeg-turbo)


def _jpeg_encoder(subsampling: int) -> Callable[[np.ndarray, float], bytes]:
    def encode(tile: np.ndarray, quality: float) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        # An HxW array becomes mode "L", which Pillow writes as a 1-component
        # JPEG; the subsampling setting then only changes one SOF byte.
        Image.fromarray(tile).save(buf, format="JPEG", quality=int(quality), subsampling=subsampling, optimize=True)
        return buf.getvalue()

    return encode


def _decode_with_pillow(data: bytes, shape: tuple) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.array(im)


# ---------------------------------------------------------------------------
# WebP (Pillow, libwebp)


def _encode_webp(tile: np.ndarray, quality: float) -> bytes:
    from PIL import Image

    # Lossy WebP has no gray mode: it always codes YUV 4:2:0, so gray tiles go in as R=G=B.
    rgb = tile if tile.ndim == 3 else np.repeat(tile[:, :, None], 3, axis=2)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="WEBP", quality=int(quality), method=6, lossless=False)
    return buf.getvalue()


def _decode_webp(data: bytes, shape: tuple) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"))
    if not _is_gray(shape):
        return np.array(rgb)
    # round(mean(R, G, B)) in integers: a sum of three integers divided by 3 is
    # never exactly half-way, so (s + 1) // 3 is the rounded mean.
    total = rgb.astype(np.uint16).sum(axis=2)
    return ((total + 1) // 3).astype(np.uint8)


# ---------------------------------------------------------------------------
# AVIF (Pillow's built-in plugin: libavif with aom to encode, dav1d to decode)


@contextlib.contextmanager
def _pillow_avif_threads(n: int) -> Iterator[None]:
    """Pillow's AVIF decoder takes its thread count from a module global; pin it for one call."""
    from PIL import AvifImagePlugin

    saved = AvifImagePlugin.DEFAULT_MAX_THREADS
    AvifImagePlugin.DEFAULT_MAX_THREADS = n
    try:
        yield
    finally:
        AvifImagePlugin.DEFAULT_MAX_THREADS = saved


def _encode_avif(tile: np.ndarray, quality: float) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(tile).save(
        buf,
        format="AVIF",
        quality=int(quality),
        speed=6,
        max_threads=1,
        codec="aom",
        subsampling="4:0:0" if tile.ndim == 2 else "4:4:4",
        range="full",
        advanced={"tune": "psnr"},
    )
    return buf.getvalue()


def _decode_avif(data: bytes, shape: tuple) -> np.ndarray:
    from PIL import Image

    with _pillow_avif_threads(1), Image.open(io.BytesIO(data)) as im:
        return np.array(im)


# ---------------------------------------------------------------------------
# JPEG 2000 and JPEG XL (imagecodecs: OpenJPEG, libjxl)


def _encode_jpeg2000(tile: np.ndarray, quality: float) -> bytes:
    import imagecodecs

    # `level` switches OpenJPEG to fixed-quality mode: a target PSNR in dB for
    # one quality layer. The other arguments spell out imagecodecs' defaults
    # (9/7 irreversible, MCT, JP2 container) so a changed default cannot move figures.
    return bytes(
        imagecodecs.jpeg2k_encode(tile, level=quality, codecformat="jp2", reversible=False, mct=True, numthreads=1)
    )


def _decode_jpeg2000(data: bytes, shape: tuple) -> np.ndarray:
    import imagecodecs

    return np.asarray(imagecodecs.jpeg2k_decode(data, numthreads=1))


def _encode_jpegxl(tile: np.ndarray, quality: float) -> bytes:
    import imagecodecs

    # usecontainer=False: the bare codestream, itself a complete .jxl file.
    return bytes(
        imagecodecs.jpegxl_encode(tile, distance=float(quality), effort=7, usecontainer=False, numthreads=1)
    )


def _decode_jpegxl(data: bytes, shape: tuple) -> np.ndarray:
    import imagecodecs

    return np.asarray(imagecodecs.jpegxl_decode(data, numthreads=1))


# ---------------------------------------------------------------------------
# HEVC in HEIF (pillow-heif: libheif + x265, libde265)

#: x265 settings of the protocol; "pools: none" and one frame thread make x265 single-threaded.
X265_PARAMS = {"preset": "slow", "tune": "psnr", "x265:pools": "none", "x265:frame-threads": "1"}


def _hevc_encoder(chroma: str) -> Callable[[np.ndarray, float], bytes]:
    def encode(tile: np.ndarray, quality: float) -> bytes:
        import pillow_heif

        h, w = tile.shape[:2]
        kwargs: dict = {
            "quality": int(quality),
            # libheif adds the chroma key to this dict, so every call gets a fresh one.
            "enc_params": dict(X265_PARAMS),
            # 0 = never split into a grid of tiles, whatever pillow_heif's global default.
            "tile_size": 0,
        }
        if tile.ndim == 3:
            kwargs["chroma"] = chroma
        # Mode "L" gives a monochrome (4:0:0) image, "RGB" a YCbCr one.
        mode = "L" if tile.ndim == 2 else "RGB"
        buf = io.BytesIO()
        pillow_heif.encode(mode, (w, h), tile.tobytes(), buf, **kwargs)
        return buf.getvalue()

    return encode


def _decode_hevc(data: bytes, shape: tuple) -> np.ndarray:
    import pillow_heif

    saved = pillow_heif.options.DECODE_THREADS
    pillow_heif.options.DECODE_THREADS = 1
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        return np.array(heif[0])
    finally:
        pillow_heif.options.DECODE_THREADS = saved


class HeicLayout(NamedTuple):
    """Where the bytes of a single-image HEIC file go (see :func:`heic_layout`)."""

    file_bytes: int
    parameter_set_bytes: int  # VPS/SPS/PPS from hvcC, 4 bytes of length each
    slice_bytes: int  # slice NAL units of the primary item, 4 bytes of length each
    chroma_format_idc: int  # 0 = 4:0:0, 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4
    nal_types: tuple  # NAL unit types of the primary item's data, in order

    @property
    def stream_bytes(self) -> int:
        """Bytes of the bare HEVC stream: what a BPG-like raw stream carries."""
        return self.parameter_set_bytes + self.slice_bytes


def heic_layout(data: bytes) -> HeicLayout:
    """Parse a single-image HEIC file into container, parameter-set and slice bytes.

    The bare stream count of the protocol is the VPS (32), SPS (33) and PPS (34)
    NAL units stored in ``hvcC`` plus the slice NAL units (types 0..31) of the
    primary item in ``mdat``, each counted with a 4-byte length field.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> heic = _hevc_encoder("444")(mars_like_scene(64, 64, seed=1), 30)
        >>> lay = heic_layout(heic)
        >>> lay.chroma_format_idc, lay.stream_bytes < lay.file_bytes == len(heic)
        (3, True)
    """
    top = dict((t, (s, e)) for t, s, e in _boxes(data, 0, len(data)))
    if b"meta" not in top:
        raise ValueError("not a HEIF file: no meta box")
    m_start, m_end = top[b"meta"]
    # meta is a FullBox: 4 bytes of version and flags precede its children.
    meta = {t: (s, e) for t, s, e in _boxes(data, m_start + 4, m_end)}
    for needed in (b"pitm", b"iloc", b"iprp"):
        if needed not in meta:
            raise ValueError(f"HEIF meta box has no {needed.decode()} box")
    primary = _parse_pitm(data, *meta[b"pitm"])
    extents = _parse_iloc(data, *meta[b"iloc"]).get(primary)
    if extents is None:
        raise ValueError(f"iloc does not locate the primary item {primary}")
    ipco = [(s, e) for t, s, e in _boxes(data, *meta[b"iprp"]) if t == b"ipco"]
    hvcc = [(s, e) for s0, e0 in ipco for t, s, e in _boxes(data, s0, e0) if t == b"hvcC"]
    if len(hvcc) != 1:
        # Thumbnails or several images would need ipma to pick the right one;
        # the codecs here never write them, so refuse rather than guess.
        raise ValueError(f"expected one hvcC box, found {len(hvcc)}")
    chroma, length_size, parameter_sets = _parse_hvcc(data, *hvcc[0])
    item = b"".join(_extent_bytes(data, off, n) for off, n in extents)
    nal_types = []
    slice_bytes = 0
    pos = 0
    while pos < len(item):
        n = int.from_bytes(item[pos : pos + length_size], "big")
        nal_type = (item[pos + length_size] >> 1) & 0x3F
        nal_types.append(nal_type)
        if nal_type < 32:  # VCL (slice) NAL units
            slice_bytes += 4 + n
        pos += length_size + n
    ps_bytes = sum(4 + len(nal) for t, nal in parameter_sets if t in (32, 33, 34))
    return HeicLayout(len(data), ps_bytes, slice_bytes, chroma, tuple(nal_types))


def hevc_stream_bytes(data: bytes) -> int:
    """Bytes of the bare HEVC stream inside a HEIC file (:attr:`HeicLayout.stream_bytes`).

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> heic = _hevc_encoder("444")(mars_like_scene(64, 64, seed=1), 30)
        >>> 0 < hevc_stream_bytes(heic) < len(heic)
        True
    """
    return heic_layout(data).stream_bytes


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """ISO-BMFF boxes in data[start:end] as (type, payload start, payload end)."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"damaged box {kind!r} at {pos}")
        yield kind, pos + header, pos + size
        pos += size


def _parse_pitm(data: bytes, start: int, end: int) -> int:
    version = data[start]
    fmt = ">H" if version == 0 else ">I"
    return struct.unpack_from(fmt, data, start + 4)[0]


def _uint(data: bytes, pos: int, size: int) -> tuple[int, int]:
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def _parse_iloc(data: bytes, start: int, end: int) -> dict[int, list[tuple[int, int]]]:
    """Item id -> [(file offset, length)] for items stored in this file (construction method 0)."""
    version = data[start]
    pos = start + 4
    offset_size, length_size = data[pos] >> 4, data[pos] & 15
    base_offset_size, index_size = data[pos + 1] >> 4, data[pos + 1] & 15
    pos += 2
    count, pos = _uint(data, pos, 2 if version < 2 else 4)
    items: dict[int, list[tuple[int, int]]] = {}
    for _ in range(count):
        item_id, pos = _uint(data, pos, 2 if version < 2 else 4)
        method = 0
        if version in (1, 2):
            method, pos = _uint(data, pos, 2)
            method &= 15
        _, pos = _uint(data, pos, 2)  # data_reference_index: 0 = this file
        base, pos = _uint(data, pos, base_offset_size)
        n_extents, pos = _uint(data, pos, 2)
        extents = []
        for _ in range(n_extents):
            if version in (1, 2) and index_size:
                _, pos = _uint(data, pos, index_size)
            off, pos = _uint(data, pos, offset_size)
            length, pos = _uint(data, pos, length_size)
            extents.append((base + off, length))
        if method == 0:
            items[item_id] = extents
    return items


def _extent_bytes(data: bytes, offset: int, length: int) -> bytes:
    # A length of 0 means "to the end of the file" in iloc.
    return data[offset:] if length == 0 else data[offset : offset + length]


def _parse_hvcc(data: bytes, start: int, end: int) -> tuple[int, int, list[tuple[int, bytes]]]:
    """(chroma_format_idc, NAL length size, [(NAL type, NAL bytes)]) of an hvcC box."""
    rec = data[start:end]
    chroma = rec[16] & 3
    length_size = (rec[21] & 3) + 1
    n_arrays = rec[22]
    pos = 23
    nals = []
    for _ in range(n_arrays):
        nal_type = rec[pos] & 0x3F
        n, pos = _uint(rec, pos + 1, 2)
        for _ in range(n):
            size, pos = _uint(rec, pos, 2)
            nals.append((nal_type, rec[pos : pos + size]))
            pos += size
    return chroma, length_size, nals


# ---------------------------------------------------------------------------
# The registry

_JPEG_Q = (5, 10, 20, 30, 45, 60, 75, 90)
_HEVC_Q = (5, 12, 20, 28, 35, 42, 50, 58)

#: Every classic codec of the protocol, by name, with its fixed quality grid.
CLASSIC_CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        Codec(
            "jpeg420",
            _JPEG_Q,
            _jpeg_encoder(2),
            _decode_with_pillow,
            {"library": "Pillow JPEG (libjpeg-turbo)", "subsampling": "4:2:0", "optimize": True,
             "gray": "1-component JPEG", "quality": "quality"},
        ),
        Codec(
            "jpeg444",
            _JPEG_Q,
            _jpeg_encoder(0),
            _decode_with_pillow,
            {"library": "Pillow JPEG (libjpeg-turbo)", "subsampling": "4:4:4", "optimize": True,
             "gray": "1-component JPEG", "quality": "quality"},
        ),
        Codec(
            "jpeg2000",
            (26, 28, 30, 32, 34, 36, 38, 40),
            _encode_jpeg2000,
            _decode_jpeg2000,
            {"library": "imagecodecs jpeg2k (OpenJPEG)", "mode": "fixed quality, level = target PSNR (dB)",
             "layers": 1, "wavelet": "9/7 irreversible", "mct": True, "container": "JP2", "numthreads": 1,
             "gray": "1 component"},
        ),
        Codec(
            "webp",
            (0, 10, 30, 50, 70, 80, 90, 95),
            _encode_webp,
            _decode_webp,
            {"library": "Pillow WebP (libwebp)", "lossless": False, "method": 6, "chroma": "4:2:0",
             "gray": "replicated to RGB, decoded as round(mean(R, G, B))", "quality": "quality"},
        ),
        Codec(
            "avif",
            (10, 20, 30, 40, 50, 60, 70, 80),
            _encode_avif,
            _decode_avif,
            {"library": "Pillow AVIF plugin (libavif)", "codec": "aom", "decoder": "dav1d (Pillow default)",
             "speed": 6, "max_threads": 1, "subsampling": "4:4:4 (RGB), 4:0:0 (gray)", "range": "full",
             "depth": 8, "advanced": {"tune": "psnr"}, "quality": "quality"},
        ),
        Codec(
            "jpegxl",
            (15, 10, 7, 5, 3.5, 2.5, 1.7, 1.0),
            _encode_jpegxl,
            _decode_jpegxl,
            {"library": "imagecodecs jpegxl (libjxl)", "quality": "distance", "effort": 7, "numthreads": 1,
             "mode": "lossy VarDCT", "container": "bare codestream", "gray": "1 channel"},
        ),
        Codec(
            "hevc444",
            _HEVC_Q,
            _hevc_encoder("444"),
            _decode_hevc,
            {"library": "pillow-heif (libheif, x265, libde265)", "quality": "quality (libheif -> x265 CRF)",
             "chroma": "4:4:4 (RGB, Main 4:4:4 RExt), 4:0:0 (gray)", "enc_params": X265_PARAMS,
             "grid": "none", "decode_threads": 1},
            hevc_stream_bytes,
        ),
        Codec(
            "hevc420",
            _HEVC_Q,
            _hevc_encoder("420"),
            _decode_hevc,
            {"library": "pillow-heif (libheif, x265, libde265)", "quality": "quality (libheif -> x265 CRF)",
             "chroma": "4:2:0 (RGB), 4:0:0 (gray)", "enc_params": X265_PARAMS, "grid": "none",
             "decode_threads": 1},
            hevc_stream_bytes,
        ),
    )
}

#: The codecs that "all" means in the protocol (hevc420 is optional and left out).
DEFAULT_CODECS = ("jpeg420", "jpeg444", "jpeg2000", "webp", "avif", "jpegxl", "hevc444")


# ---------------------------------------------------------------------------
# One function per codec, as the protocol names them


def jpeg420(tile: np.ndarray, quality: float) -> Coded:
    """JPEG 4:2:0 (the anchor): Pillow/libjpeg-turbo, ``optimize=True``.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> jpeg420(mars_like_scene(32, 32, seed=0), 75).decoded.shape
        (32, 32, 3)
    """
    return code_tile(CLASSIC_CODECS["jpeg420"], tile, quality)


def jpeg444(tile: np.ndarray, quality: float) -> Coded:
    """JPEG 4:4:4: as :func:`jpeg420` without chroma subsampling.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> t = mars_like_scene(32, 32, seed=0)
        >>> jpeg444(t, 75).n_bytes > jpeg420(t, 75).n_bytes
        True
    """
    return code_tile(CLASSIC_CODECS["jpeg444"], tile, quality)


def jpeg2000(tile: np.ndarray, quality: float) -> Coded:
    """JPEG 2000 (OpenJPEG via imagecodecs), ``quality`` = target PSNR in dB.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> jpeg2000(mars_like_scene(32, 32, seed=0), 34).decoded.dtype
        dtype('uint8')
    """
    return code_tile(CLASSIC_CODECS["jpeg2000"], tile, quality)


def webp(tile: np.ndarray, quality: float) -> Coded:
    """Lossy WebP (Pillow/libwebp), ``method=6``; gray tiles go through RGB.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> webp(mars_like_scene(32, 32, seed=0, channels=1), 70).decoded.shape
        (32, 32)
    """
    return code_tile(CLASSIC_CODECS["webp"], tile, quality)


def avif(tile: np.ndarray, quality: float) -> Coded:
    """AVIF (Pillow's libavif plugin, aom), speed 6, 4:4:4 or 4:0:0, ``tune=psnr``.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> avif(mars_like_scene(32, 32, seed=0), 50).decoded.shape
        (32, 32, 3)
    """
    return code_tile(CLASSIC_CODECS["avif"], tile, quality)


def jpegxl(tile: np.ndarray, quality: float) -> Coded:
    """JPEG XL (libjxl via imagecodecs), ``quality`` = Butteraugli distance, effort 7.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> jpegxl(mars_like_scene(32, 32, seed=0), 2.5).n_bytes > 0
        True
    """
    return code_tile(CLASSIC_CODECS["jpegxl"], tile, quality)


def hevc444(tile: np.ndarray, quality: float) -> Coded:
    """HEVC 4:4:4 in HEIF (x265 via pillow-heif), the "BPG-equivalent" anchor.

    ``stream_bytes`` is the bare HEVC stream count.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> c = hevc444(mars_like_scene(32, 32, seed=0), 35)
        >>> c.stream_bytes < c.n_bytes
        True
    """
    return code_tile(CLASSIC_CODECS["hevc444"], tile, quality)


def hevc420(tile: np.ndarray, quality: float) -> Coded:
    """HEVC 4:2:0 in HEIF: the optional variant of :func:`hevc444`.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> hevc420(mars_like_scene(32, 32, seed=0), 35).decoded.shape
        (32, 32, 3)
    """
    return code_tile(CLASSIC_CODECS["hevc420"], tile, quality)


def library_versions() -> dict[str, str]:
    """Versions of every library the classic codecs use, for result files.

    Example:
        >>> v = library_versions()
        >>> {"pillow", "libjpeg_turbo", "x265", "libjxl"} <= set(v)
        True
    """
    import imagecodecs
    import PIL
    import pillow_heif
    from PIL import features

    heif = pillow_heif.libheif_info()
    versions = {
        "pillow": PIL.__version__,
        "libjpeg_turbo": str(features.version_feature("libjpeg_turbo")),
        "libwebp": str(features.version("webp")),
        "libavif": str(features.version("avif")),
        "imagecodecs": imagecodecs.__version__,
        "openjpeg": imagecodecs.jpeg2k_version(),
        "libjxl": imagecodecs.jpegxl_version(),
        "pillow_heif": pillow_heif.__version__,
        "libheif": str(heif.get("libheif")),
        "x265": str(heif.get("encoders", {}).get("x265")),
        "libde265": str(heif.get("decoders", {}).get("libde265")),
    }
    try:
        from PIL import _avif

        versions["avif_codecs"] = str(_avif.codec_versions())
    except ImportError:  # an older Pillow without its own AVIF plugin
        pass
    return dict(sorted(versions.items()))
