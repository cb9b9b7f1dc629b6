"""Sequence coding: a frame coded against a frame already sent (docs/bitstream.md §4.10, docs/remac.md).

What it is for: rovers shoot mosaics, stereo pairs and repeated pointings, and a
frame already downlinked is known exactly on both sides (the rover keeps its
reconstruction, the ground decodes the same samples: the wavelet and
near-lossless coders are integer). :class:`Reference` is such a frame as both
sides hold it: its decoded samples and the 8-byte id of its file, which the new
file's header names, so that decoding with a missing or wrong reference is
refused, never garbage. :func:`encode_sequence` / :func:`decode_sequence` run a
list of frames, each free to reference the earlier ones of the list (the one it
overlaps most); ``pymars encode/decode --sequence`` are their CLI.

What it must not touch: PyTorch and training code. The tile coding itself is
the C++ core's (csrc/core/sequence.cpp and the wavelet coder's predicted mode);
this module only names frames, picks references and calls encode / decode.

Example:
    >>> import numpy as np
    >>> from pymars.data.synthetic import mars_like_scene
    >>> scene = mars_like_scene(200, 320, seed=3, channels=1)
    >>> frames = [np.ascontiguousarray(scene[:, :256]), np.ascontiguousarray(scene[:, 64:])]
    >>> files = encode_sequence(frames, quality=60)
    >>> [f is not None and len(f) > 0 for f in files]
    [True, True]
    >>> decoded = decode_sequence(files)
    >>> [d.shape for d in decoded]
    [(200, 256), (200, 256)]
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from pymars.errors import BitstreamError, ModelMismatchError

#: How many earlier frames of a sequence a new frame is compared with to pick its reference.
CANDIDATES = 4


def file_id(data: bytes) -> bytes:
    """The 8-byte id that names a file as a reference: the first 8 bytes of its SHA-256 (as marsenc_file_id).

    Example:
        >>> file_id(b"PMRS").hex()
        '35cddea057911295'
    """
    return hashlib.sha256(bytes(data)).digest()[:8]


@dataclass(frozen=True)
class Reference:
    """A frame already sent: its decoded 8-bit samples ((H, W) gray or (H, W, 3)) and its file's id.

    ``name`` only labels it in messages (the file it came from).

    Example:
        >>> import numpy as np
        >>> r = Reference(np.zeros((4, 4), np.uint8), b"12345678", "a.pmrs")
        >>> r.channels, r.describe()
        (1, 'a.pmrs (3132333435363738)')
    """

    samples: np.ndarray
    id: bytes
    name: str = ""

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 2 else int(self.samples.shape[2])

    def describe(self) -> str:
        return f"{self.name} ({self.id.hex()})" if self.name else self.id.hex()

    @classmethod
    def from_file(cls, data: bytes, *, name: str = "", model=None, refs=None, reference=None) -> "Reference":
        """The reference a file makes once decoded (the ground's decode; on the rover, the reconstruction).

        ``reference``: the earlier frame this file was itself coded against, if any.

        Only 8-bit files can be references (12/16-bit frames are coded by the
        near-lossless coder, which has no predicted mode).

        Example:
            >>> from pymars.rover import encode
            >>> from pymars.data.synthetic import mars_like_scene
            >>> r = Reference.from_file(encode(mars_like_scene(32, 32, seed=1, channels=1), 60), name="a")
            >>> r.samples.shape, len(r.id)
            ((32, 32), 8)
        """
        from pymars.ground.decode import decode_with_report  # the ground's decoder, not needed to encode

        data = bytes(data)
        image, report = decode_with_report(data, model=model, refs=refs, reference=reference)
        if image.dtype != np.uint8:
            raise ModelMismatchError(f"{name or 'the reference'} is a {report.channels}-channel 12/16-bit file: "
                                     "only 8-bit frames can be references")
        if not report.ok:
            raise BitstreamError(f"{name or 'the reference'} has damaged or missing tiles ({report.describe()}): "
                                 "a reference must decode whole")
        return cls(np.ascontiguousarray(image), file_id(data), name)

    def core(self) -> tuple[np.ndarray, bytes]:
        """(samples, id) as ``pymars._core`` takes a reference."""
        return np.ascontiguousarray(self.samples), bytes(self.id)


def overlap(registration: dict, image_shape, reference_shape) -> float:
    """The fraction of the new frame that the reference covers at the registered displacement (0 when unusable).

    Example:
        >>> overlap({"dy": 0, "dx": 50, "usable": True}, (100, 100), (100, 100))
        0.5
        >>> overlap({"dy": 0, "dx": 50, "usable": False}, (100, 100), (100, 100))
        0.0
    """
    if not registration["usable"]:
        return 0.0
    h, w = image_shape[:2]
    rh, rw = reference_shape[:2]
    dy, dx = registration["dy"], registration["dx"]
    rows = max(0, min(h, rh - dy) - max(0, -dy))
    cols = max(0, min(w, rw - dx) - max(0, -dx))
    return rows * cols / float(h * w)


def pick_reference(image: np.ndarray, earlier: list[Reference], *, model=None, tile_size: int = 256):
    """The earlier frame the image overlaps most (the rover's registration), or None when none is usable.

    Of the last :data:`CANDIDATES` frames; ties go to the most recent.

    Example:
        >>> import numpy as np
        >>> pick_reference(np.zeros((64, 64), np.uint8), []) is None
        True
    """
    from pymars import _core
    from pymars.bundles import open_bundle
    from pymars.rover.encode import default_bundle

    if not earlier:
        return None
    bundle = open_bundle(model) if model is not None else default_bundle(image)
    best, best_overlap = None, 0.0
    for ref in reversed(earlier[-CANDIDATES:]):
        if ref.channels != bundle.channels:
            continue
        reg = _core.sequence_registration(bundle.core, np.ascontiguousarray(image), ref.core(), tile_size)
        f = overlap(reg, image.shape, ref.samples.shape)
        if f > best_overlap:
            best, best_overlap = ref, f
    return best


def as_reference(reference, bundle=None) -> Reference:
    """A :class:`Reference` from a Reference, an earlier file's bytes or its path (decoded with ``bundle``).

    Example:
        >>> as_reference(3)
        Traceback (most recent call last):
        ...
        TypeError: reference must be a pymars.sequence.Reference, the earlier file's bytes or its path, got int
    """
    import os
    from pathlib import Path

    from pymars.errors import PymarsError

    if isinstance(reference, Reference):
        return reference
    if isinstance(reference, (bytes, bytearray, memoryview)):
        return Reference.from_file(bytes(reference), model=bundle)
    if isinstance(reference, (str, os.PathLike)):
        path = Path(reference)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise FileNotFoundError(f"reference {path}: {e.strerror or e}") from None
        try:
            return Reference.from_file(data, name=str(path), model=bundle)
        except PymarsError as e:  # e.g. the reference is itself coded against a frame not given
            raise type(e)(f"reference {path}: {e}") from None
    raise TypeError("reference must be a pymars.sequence.Reference, the earlier file's bytes or its path, "
                    f"got {type(reference).__name__}")


class SequenceEncoder:
    """Encodes frames one at a time, each against the earlier frame it overlaps most; keeps what it sent.

    The one loop of :func:`encode_sequence` and ``pymars encode --sequence`` (which
    reads one frame at a time). Only 8-bit frames are kept as references.

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> enc = SequenceEncoder(quality=70)
        >>> a = mars_like_scene(64, 64, seed=2, channels=1)
        >>> _, first = enc.encode(a, "a"); _, second = enc.encode(a, "b")
        >>> first is None, second.name
        (True, 'a')
    """

    def __init__(self, quality: int = 75, *, model=None, tile_size: int = 256, threads: int = 1):
        self.quality, self.model, self.tile_size, self.threads = quality, model, tile_size, threads
        self.earlier: list[Reference] = []

    def encode(self, image: np.ndarray, name: str, bit_depth: int | None = None) -> tuple[bytes, Reference | None]:
        """(the frame's file, the earlier frame it was coded against or None)."""
        from pymars.rover.encode import encode

        eight = np.asarray(image).dtype == np.uint8 and bit_depth in (None, 8)
        ref = pick_reference(image, self.earlier, model=self.model, tile_size=self.tile_size) if eight else None
        data = encode(image, self.quality, tile_size=self.tile_size, bit_depth=bit_depth, threads=self.threads,
                      model=self.model, reference=ref)
        if eight:  # the frame as the ground will decode it (the rover's reconstruction, bit for bit)
            self.earlier.append(Reference.from_file(data, name=name, model=self.model, reference=ref))
        return data, ref


class SequenceDecoder:
    """Decodes files one at a time; a file coded against an earlier frame finds it among the earlier files by id.

    The one loop of :func:`decode_sequence` and ``pymars decode --sequence``. A
    file that names a frame not decoded before it (or one that was damaged) is a
    one-line :class:`BitstreamError`.

    Example:
        >>> SequenceDecoder().known
        {}
    """

    def __init__(self, *, model=None, threads: int = 1, max_pixels: int = 1 << 28):
        self.model, self.threads, self.max_pixels = model, threads, max_pixels  # max_pixels: as pymars.decode's
        self.known: dict[bytes, Reference] = {}

    def decode(self, data: bytes, name: str):
        """(image, DecodeReport) of one file, as :func:`pymars.decode_with_report` gives them."""
        from pymars.ground.decode import decode_with_report, info

        data = bytes(data)
        needed = info(data)["sequence_id"]
        ref = None
        if needed is not None:
            ref = self.known.get(needed)
            if ref is None:
                raise BitstreamError(f"{name} was coded against the frame of file id {needed.hex()}, which is not "
                                     "earlier in the sequence (or was damaged): give that file first (or decode with "
                                     "reference=)")
        image, report = decode_with_report(data, model=self.model, threads=self.threads, max_pixels=self.max_pixels,
                                           reference=ref)
        if image.dtype == np.uint8 and report.ok:  # only a whole 8-bit frame can be a reference
            self.known[file_id(data)] = Reference(np.ascontiguousarray(image), file_id(data), name)
        return image, report


def encode_sequence(images, quality: int = 75, *, model=None, tile_size: int = 256, threads: int = 1,
                    names=None) -> list[bytes]:
    """Encode frames in order, each against the earlier frame of the list it overlaps most (or none).

    Example:
        >>> import numpy as np
        >>> from pymars.data.synthetic import mars_like_scene
        >>> a = mars_like_scene(64, 64, seed=2, channels=1)
        >>> files = encode_sequence([a, a], quality=70)
        >>> from pymars.ground.decode import info
        >>> info(files[0])["sequence_id"] is None, info(files[1])["sequence_id"] == file_id(files[0])
        (True, True)
    """
    enc = SequenceEncoder(quality, model=model, tile_size=tile_size, threads=threads)
    names = list(names) if names is not None else [f"frame {i}" for i in range(len(images))]
    return [enc.encode(image, name)[0] for image, name in zip(images, names)]


def decode_sequence(files, *, model=None, names=None, threads: int = 1) -> list[np.ndarray]:
    """Decode files in order; a file coded against an earlier frame finds it among the earlier files by id.

    Raises a one-line :class:`BitstreamError` naming the missing frame when a file
    references one that is not earlier in the list.

    Example:
        >>> import numpy as np
        >>> from pymars.data.synthetic import mars_like_scene
        >>> a = mars_like_scene(64, 64, seed=2, channels=1)
        >>> files = encode_sequence([a, a], quality=70)
        >>> decode_sequence(files[1:])
        Traceback (most recent call last):
        ...
        pymars.errors.BitstreamError: frame 0 was coded against the frame of file id ... which is not earlier in the sequence (or was damaged): give that file first (or decode with reference=)
    """
    dec = SequenceDecoder(model=model, threads=threads)
    names = list(names) if names is not None else [f"frame {i}" for i in range(len(files))]
    return [dec.decode(data, name)[0] for data, name in zip(files, names)]
