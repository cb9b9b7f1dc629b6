"""The REMAC reference library: a versioned, hashed file shared by the rover and the ground.

What it is for: REMAC conditions the entropy model and the ground decoder on
reference tiles that both ends hold (docs/remac.md). The library has two parts
with one identity:

* the **rover part** ``LIB.pmrl`` (small, parsed by the encoder): per reference
  its uniform LBP histogram (59 x uint32, the texture selector's key), its
  latent ``q = round(8 * y)`` clamped to [-127, 127] (int8, M x 16 x 16, for
  the reference-guided entropy model) and its latent descriptor
  ``d_r[c] = (32 * sum |q_c| + 128) // 256`` (about 256 mean |y_c|; M x
  uint16, the deep selector's key, recycled from the analysis the encoder runs
  anyway); the exact rounding rules are in pymars/remac/selection.py. ``y`` is the base analysis output (before
  the rate gains) of the 256x256 reference tile;
* the **ground part** ``LIB.pmrg`` (an ``.npz``): the reference tiles
  themselves (uint8 RGB) and their names, plus the SHA-256 of the rover part
  it belongs to.

The library's identity is the SHA-256 of the rover part; its first 8 bytes are
the ``library_hash`` a bitstream header carries, so a decoder with another
library refuses the file. The rover part also records the model id whose
analysis produced the latents: a library built for another model is refused.

Rover part layout (all integers little-endian; normative)::

    offset size  field
    0      4     magic "PMRL"
    4      2     version (1)
    6      2     reference count R (1..4096)
    8      8     model id (first 8 bytes of SHA-256 of the encoder blob)
    16     2     latent channels M
    18     2     latent height (16)
    20     2     latent width (16)
    22     2     LBP bins (59, the uniform variant)
    24     2     tile size (256)
    26     2     reserved (0)
    28     ...   R x (59 x u32 histogram, M x u16 descriptor, M*16*16 x i8 latent)

What it must not do: hold any selection or entropy logic (the selection rules
live in pymars/remac/selection when they exist and in the C++ core), or write a
half-finished file (both parts go through pymars.clio.AtomicOutput: a hidden
temporary file each, renamed only when both are complete).

Example:
    >>> import numpy as np, tempfile, os
    >>> rng = np.random.default_rng(0)
    >>> lib = ReferenceLibrary(model_id=bytes(8),
    ...     histograms=rng.integers(0, 9, (2, 59)).astype(np.uint32),
    ...     descriptors=rng.integers(0, 99, (2, 4)).astype(np.uint16),
    ...     latents=rng.integers(-9, 9, (2, 4, 16, 16)).astype(np.int8),
    ...     tiles=np.zeros((2, 256, 256, 3), np.uint8), names=["a", "b"])
    >>> path = os.path.join(tempfile.mkdtemp(), "lib.pmrl")
    >>> lib.save(path)
    >>> again = ReferenceLibrary.load(path)
    >>> again.library_hash == lib.library_hash and len(again)
    2
"""
from __future__ import annotations

import hashlib
import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pymars import _core
from pymars.bundles import DEFAULT_REMAC_MODEL, ModelBundle, bundle_for_model_id
from pymars.clio import AtomicOutput
from pymars.errors import ModelMismatchError, PymarsError
from pymars.remac.selection import latent_descriptor, quantise_latent
from pymars.texture import lbp_histograms, rgb_to_gray

MAGIC = b"PMRL"
VERSION = 1
HEADER = struct.Struct("<4sHH8sHHHHHH")
LBP_BINS = 59
LATENT_SIZE = 16
TILE = 256
MAX_REFERENCES = 4096


class ReferenceLibraryError(PymarsError):
    """A reference library file is missing, damaged, or its parts do not belong together."""


def _model_name(model_id: bytes) -> str | None:
    """The name of the installed bundle with this model id, if any (for messages)."""
    try:

        b = bundle_for_model_id(bytes(model_id))
    except Exception:  # a message helper must never fail the check it explains
        return None
    return b.name if b is not None else None


def ground_path(path: str | os.PathLike) -> Path:
    """Where the ground part of the library ``path`` lives (``LIB.pmrg`` next to ``LIB.pmrl``).

    Example:
        >>> ground_path("refs/mars.pmrl").name
        'mars.pmrg'
    """
    return Path(path).with_suffix(".pmrg")


@dataclass
class ReferenceLibrary:
    """References for REMAC: rover arrays (always) and ground tiles (when loaded with the ground part)."""

    model_id: bytes
    histograms: np.ndarray  # (R, 59) uint32
    descriptors: np.ndarray  # (R, M) uint16
    latents: np.ndarray  # (R, M, 16, 16) int8
    tiles: np.ndarray | None = None  # (R, 256, 256, 3) uint8, ground only
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        r = len(self.histograms)
        # R = 0 is allowed: an empty library (every tile codes with "no reference").
        if not 0 <= r <= MAX_REFERENCES:
            raise ReferenceLibraryError(f"a library holds 0..{MAX_REFERENCES} references, not {r}")
        if len(self.model_id) != 8:
            raise ReferenceLibraryError("model_id must be 8 bytes")
        m = self.descriptors.shape[1] if self.descriptors.ndim == 2 else -1
        shapes = {
            "histograms": (self.histograms, (r, LBP_BINS), np.uint32),
            "descriptors": (self.descriptors, (r, m), np.uint16),
            "latents": (self.latents, (r, m, LATENT_SIZE, LATENT_SIZE), np.int8),
        }
        if self.tiles is not None:
            shapes["tiles"] = (self.tiles, (r, TILE, TILE, 3), np.uint8)
        for name, (arr, shape, dtype) in shapes.items():
            if arr.shape != shape or arr.dtype != dtype:
                raise ReferenceLibraryError(f"{name} must be {np.dtype(dtype).name} of shape {shape}, "
                                            f"got {arr.dtype.name} {arr.shape}")
        if self.names and len(self.names) != r:
            raise ReferenceLibraryError("one name per reference")

    def __len__(self) -> int:
        return len(self.histograms)

    @property
    def latent_channels(self) -> int:
        return self.descriptors.shape[1]

    def rover_bytes(self) -> bytes:
        """The rover part, exactly as written to ``LIB.pmrl`` (see the module docstring)."""
        out = [HEADER.pack(MAGIC, VERSION, len(self), self.model_id, self.latent_channels, LATENT_SIZE,
                           LATENT_SIZE, LBP_BINS, TILE, 0)]
        for h, d, y in zip(self.histograms, self.descriptors, self.latents):
            out += [h.astype("<u4").tobytes(), d.astype("<u2").tobytes(), y.tobytes()]
        return b"".join(out)

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the rover part: the library's identity."""
        return hashlib.sha256(self.rover_bytes()).digest()

    @property
    def library_hash(self) -> bytes:
        """The 8 bytes a bitstream header carries (first 8 of :attr:`sha256`)."""
        return self.sha256[:8]

    def check_model(self, model_id: bytes, model_name: str | None = None) -> None:
        """Refuse a model other than the one whose analysis made the latents; the message says how to
        build a library for ``model_id`` (``model_name``: how the user named that model).

        Example:
            >>> import numpy as np
            >>> lib = ReferenceLibrary(bytes(8), np.zeros((1, 59), np.uint32), np.zeros((1, 2), np.uint16),
            ...                        np.zeros((1, 2, 16, 16), np.int8))
            >>> lib.check_model(bytes(8))
            >>> lib.check_model(bytes(7) + b"\\1", "remac-v1")
            Traceback (most recent call last):
            ...
            pymars.errors.ModelMismatchError: reference library built for model 0000000000000000, not for model remac-v1 (0000000000000001): rebuild it for that model with `pymars refs build IMAGES/ --model remac-v1 -o LIB.pmrl`
        """
        if bytes(model_id) != self.model_id:
            want = model_name or _model_name(model_id) or "MODEL"
            made = _model_name(self.model_id)
            raise ModelMismatchError(
                f"reference library built for model {self.model_id.hex()}{f' ({made})' if made else ''}, "
                f"not for model {want} ({bytes(model_id).hex()}): rebuild it for that model with "
                f"`pymars refs build IMAGES/ --model {want} -o LIB.pmrl`")

    def ground_bytes(self) -> bytes:
        """The ground part (``LIB.pmrg``, an .npz): the tiles, their names and the rover part's SHA-256."""
        if self.tiles is None:
            raise ReferenceLibraryError("this library holds no reference tiles (rover part only)")
        buf = io.BytesIO()
        np.savez_compressed(buf, tiles=self.tiles, names=np.array(self.names or [""] * len(self), dtype=str),
                            rover_sha256=np.frombuffer(self.sha256, np.uint8))
        return buf.getvalue()

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path`` (rover part) and, when tiles are held, the ground part next to it; atomically."""
        import contextlib

        path = Path(path)
        parts = [(path, self.rover_bytes())]
        if self.tiles is not None:
            parts.append((ground_path(path), self.ground_bytes()))
        with contextlib.ExitStack() as stack:  # every part appears, or none
            for target, data in parts:
                stack.enter_context(AtomicOutput(target)).write(data)

    @classmethod
    def from_rover_bytes(cls, data: bytes) -> "ReferenceLibrary":
        """Parse a rover part; every size is checked before it is used.

        Example:
            >>> ReferenceLibrary.from_rover_bytes(b"PNG")
            Traceback (most recent call last):
            ...
            pymars.remac.library.ReferenceLibraryError: not a pymars reference library (3 bytes, shorter than its 28-byte header)
        """
        if len(data) < HEADER.size:
            raise ReferenceLibraryError(f"not a pymars reference library ({len(data)} bytes, shorter than its "
                                        f"{HEADER.size}-byte header)")
        magic, version, r, model_id, m, lh, lw, bins, tile, _ = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise ReferenceLibraryError("not a pymars reference library (bad magic)")
        if version != VERSION:
            raise ReferenceLibraryError(f"reference library version {version} is not supported (this pymars reads {VERSION})")
        if (lh, lw, bins, tile) != (LATENT_SIZE, LATENT_SIZE, LBP_BINS, TILE) or not (0 <= r <= MAX_REFERENCES) or m == 0:
            raise ReferenceLibraryError(f"reference library header is inconsistent (R={r}, M={m}, latent {lh}x{lw}, "
                                        f"{bins} bins, tile {tile})")
        record = 4 * LBP_BINS + 2 * m + m * LATENT_SIZE * LATENT_SIZE
        if len(data) != HEADER.size + r * record:
            raise ReferenceLibraryError(f"reference library is truncated or padded: {len(data)} bytes, "
                                        f"expected {HEADER.size + r * record} for {r} references")
        body = np.frombuffer(data, np.uint8, offset=HEADER.size).reshape(r, record)
        hist = body[:, : 4 * LBP_BINS].copy().view("<u4").astype(np.uint32)
        desc = body[:, 4 * LBP_BINS : 4 * LBP_BINS + 2 * m].copy().view("<u2").astype(np.uint16)
        lat = body[:, 4 * LBP_BINS + 2 * m :].copy().view(np.int8).reshape(r, m, LATENT_SIZE, LATENT_SIZE)
        return cls(model_id=model_id, histograms=hist, descriptors=desc, latents=lat)

    @classmethod
    def load(cls, path: str | os.PathLike, ground: bool = True) -> "ReferenceLibrary":
        """Read a library; with ``ground`` also its ground part, which must belong to this rover part."""
        path = Path(path)
        if not path.is_file():
            raise ReferenceLibraryError(f"no reference library at {path}")
        lib = cls.from_rover_bytes(path.read_bytes())
        if ground:
            gp = ground_path(path)
            if not gp.is_file():
                raise ReferenceLibraryError(f"the ground part {gp} of library {path} is missing")
            try:
                with np.load(gp, allow_pickle=False) as z:
                    tiles, names, owner = z["tiles"], [str(n) for n in z["names"]], z["rover_sha256"].tobytes()
            except (OSError, ValueError, KeyError) as e:
                raise ReferenceLibraryError(f"the ground part {gp} is damaged: {e}") from e
            if owner != lib.sha256:
                raise ReferenceLibraryError(f"the ground part {gp} belongs to library {owner[:8].hex()}, "
                                            f"not to {lib.library_hash.hex()} ({path})")
            lib = cls(lib.model_id, lib.histograms, lib.descriptors, lib.latents, tiles, names)
        return lib


def reference_entry(core_model, tile: np.ndarray, quality: int = 75) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rover arrays of one 256x256 RGB tile: (uniform LBP histogram, descriptor, int8 latent).

    ``core_model`` is a ``pymars._core.Model`` (``bundle.core``); the analysis is
    the C++ encoder's own, so the numbers equal what the rover computes. The
    analysis output does not depend on ``quality`` (the gains come after it).

    Example:
        >>> import numpy as np
        >>> from pymars.bundles import default_bundle
        >>> h, d, y = reference_entry(default_bundle().core, np.full((256, 256, 3), 90, np.uint8))
        >>> h.shape, h.sum(), y.dtype.name
        ((59,), np.uint64(65536), 'int8')
    """

    if tile.shape != (TILE, TILE, 3) or tile.dtype != np.uint8:
        raise ReferenceLibraryError(f"a reference tile is uint8 of shape ({TILE}, {TILE}, 3), got {tile.dtype} {tile.shape}")
    hist = lbp_histograms(rgb_to_gray(np.ascontiguousarray(tile)), "uniform")
    y = _core.analyse_tile(core_model, np.ascontiguousarray(tile), quality)["y"]
    lat = quantise_latent(y)
    return hist.astype(np.uint32), latent_descriptor(lat), lat


def open_library(refs, ground: bool = True):
    """A :class:`pymars.remac.ReferenceLibrary` from a path or an already loaded library.

    Example:
        >>> open_library("missing.pmrl")
        Traceback (most recent call last):
        ...
        pymars.remac.library.ReferenceLibraryError: no reference library at missing.pmrl
    """
    if isinstance(refs, ReferenceLibrary):
        return refs
    return ReferenceLibrary.load(refs, ground=ground)


def core_library(bundle: ModelBundle, library):
    """The C++ view of a library's rover part for a REMAC bundle (refuses base models and other models).

    Example:
        >>> import numpy as np
        >>> from pymars.remac import ReferenceLibrary
        >>> lib = ReferenceLibrary(bytes(8), np.zeros((1, 59), np.uint32), np.zeros((1, 128), np.uint16),
        ...                        np.zeros((1, 128, 16, 16), np.int8))
        >>> from pymars.bundles import open_bundle
        >>> core_library(open_bundle(), lib)
        Traceback (most recent call last):
        ...
        pymars.errors.ModelMismatchError: model 'base-v2-wv' has no reference branch: REMAC needs a REMAC bundle such as 'remac-v1'
    """

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
