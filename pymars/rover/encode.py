"""``encode``: an image in, a complete pymars file out, by the rover's C++ encoder.

What it is for: the checks a user needs before the core sees the image (one
line per bad input), the choice of bundle (gray, near-lossless and REMAC
defaults), then one call into ``pymars._core`` (encode, or the rate control of
``encode_to_target``). The tile loop, record assembly and rate search are the
core's (csrc/core/encoder.cpp), shared with the C API.

What it must not touch: PyTorch, training code, decoding.

Example:
    >>> import numpy as np
    >>> from pymars.data.synthetic import mars_like_scene
    >>> data = encode(mars_like_scene(40, 56), quality=60)
    >>> data[:4], len(data) < 40 * 56 * 3
    (b'PMRS', True)
"""
from __future__ import annotations

import numpy as np

from pymars import _core
from pymars.bundles import DEFAULT_REMAC_MODEL, ModelBundle, gray_bundle, near_lossless_bundle, open_bundle
from pymars.errors import InputImageError, ModelMismatchError
from pymars.remac.library import core_library, open_library

#: The largest image side the container describes (csrc/core/limits.h, the one definition).
MAX_SIDE = _core.MAX_SIDE


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
    reference=None,
) -> bytes:
    """Encode an (H, W) or (H, W, 3) uint8/uint16 image into a pymars file.

    ``quality`` 1..100 (higher: more bytes, better fidelity), or ``target_bytes``
    for the highest quality whose file fits a downlink budget, or ``max_error``
    k: the model's cheapest near-lossless quality whose every decoded sample is
    within +-k of the original (0: lossless). With ``max_error`` a 12/16-bit image
    (``bit_depth`` 12 or 16) is coded at its own bit depth, k in its units, when the
    model's near-lossless coder is the range coder (the defaults'; docs/bitstream.md
    §4.8); otherwise, and at a ``quality`` or ``target_bytes``, 16-bit input is coded
    at 8-bit precision (``bit_depth`` tells how to scale it).
    The output bytes do not depend on ``threads``.

    ``refs``: a REMAC reference library (path of ``LIB.pmrl`` or a
    :class:`pymars.remac.ReferenceLibrary`); the model then defaults to the
    REMAC bundle, each tile's references are selected on the rover's rules and
    the file carries the library's hash. Without ``refs`` the base codec runs.

    ``reference``: a frame already sent (sequence coding, docs/bitstream.md
    §4.10): a :class:`pymars.sequence.Reference`, or the earlier file's bytes or
    path (decoded here). At wavelet qualities of an 8-bit image every tile that
    overlaps it is also coded predicted from it and the shorter code is kept;
    the file names the earlier file's id, and decoding needs it.

    Example:
        >>> import numpy as np
        >>> from pymars.data.synthetic import mars_like_scene
        >>> data = encode(mars_like_scene(48, 48), quality=50)
        >>> data[:4]
        b'PMRS'
    """
    img, depth = _check_image(image)
    if bit_depth is None:
        bit_depth = depth
    if depth == 8 and bit_depth != 8:
        raise InputImageError("uint8 images have bit_depth 8")
    if depth == 16 and bit_depth not in (12, 16):
        raise InputImageError("uint16 images need bit_depth 12 or 16")
    if depth == 16 and bit_depth == 12 and int(img.max(initial=0)) > 4095:
        raise InputImageError("bit_depth 12 but the image has values above 4095")
    if tile_size % _core.TILE_SIZE_STEP or not _core.MIN_TILE_SIZE <= tile_size <= _core.MAX_TILE_SIZE:
        raise ValueError(f"tile_size must be a multiple of {_core.TILE_SIZE_STEP} in "
                         f"{_core.MIN_TILE_SIZE}..{_core.MAX_TILE_SIZE}")
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
    core_reference = None
    if reference is not None:
        from pymars.sequence import as_reference  # decodes an earlier file given by bytes or path

        reference = as_reference(reference, bundle)
        if bundle.channels == 3 and img.ndim == 2:
            # The reference is the decoded frame in the model's channels, so the frame is coded as RGB too.
            img = np.ascontiguousarray(np.repeat(img[..., None], 3, axis=2))
        if reference.channels != bundle.channels:
            raise InputImageError(f"the reference {reference.describe()} has {reference.channels} channel(s), "
                                  f"model {bundle.name!r} codes {bundle.channels}")
        core_reference = reference.core()
    library = None if refs is None else core_library(bundle, open_library(refs, ground=False))
    source_depth = False
    if max_error is not None:
        if target_bytes is not None:
            raise ValueError("give max_error or target_bytes, not both")
        quality = quality_for_max_error(bundle, max_error, depth)
        source_depth = depth != 8  # samples at their own bit depth (header flag bit 1, §4.8)
    try:
        if target_bytes is not None:
            if int(target_bytes) <= 0:
                raise ValueError("target_bytes must be positive")
            data, _ = _core.encode_to_target(bundle.core, img, int(target_bytes), tile_size, bit_depth, threads,
                                             library=library, reference=core_reference)
            return data
        q = int(quality)
        if not _core.MIN_QUALITY <= q <= _core.MAX_QUALITY:
            raise ValueError(f"quality must be in {_core.MIN_QUALITY}..{_core.MAX_QUALITY}, got {quality}")
        return _core.encode(bundle.core, img, q, tile_size, bit_depth, threads, library=library,
                            source_depth=source_depth, reference=core_reference)
    except ValueError as e:
        if isinstance(e, InputImageError) or "target_bytes" in str(e):
            raise
        raise InputImageError(str(e)) from None


def default_bundle(image) -> ModelBundle:
    """The bundle ``encode`` picks for an image without ``model``, ``refs`` or ``max_error``.

    Example:
        >>> import numpy as np
        >>> default_bundle(np.zeros((8, 8), np.uint8)).channels in (1, 3)
        True
    """
    gray = np.asarray(image).ndim == 2 or (np.asarray(image).ndim == 3 and np.asarray(image).shape[2] == 1)
    return open_bundle(gray_bundle() if gray and gray_bundle() is not None else None)


def quality_for_max_error(bundle: ModelBundle, max_error: int, depth: int = 8) -> int:
    """The lowest quality of ``bundle`` whose near-lossless coder keeps every sample within ``max_error``.

    Raises a one-line error when the model has no such quality, or for 12/16-bit
    samples (``depth`` 16) when its near-lossless coder cannot code them at their
    own depth (Golomb codes, §4.7: only the range coder of §4.8 can).

    Example:
        >>> from pymars.bundles import gray_bundle
        >>> b = gray_bundle()
        >>> b is None or b.core.near_lossless_error(quality_for_max_error(b, 0)) == 0
        True
    """
    k = int(max_error)
    if k < 0:
        raise ValueError(f"max_error must be 0 or more, got {max_error}")
    if depth != 8 and bundle.core.near_lossless_coder == "golomb":
        raise ModelMismatchError(f"model {bundle.name!r} codes near-lossless tiles with Golomb codes (8-bit samples "
                                 "only): max_error on 12/16-bit images needs a range-coded model such as "
                                 "base-v2-gray-nl or base-v2-nl")
    q = bundle.core.quality_for_max_error(k, 8 if depth == 8 else 16)
    if q is not None:
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
