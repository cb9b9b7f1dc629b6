"""The rover side of the codec, as Python sees it: ``encode`` an image into a pymars file.

The rover encoder is the C++ core (csrc/core, the same code as the flight C API
in csrc/include/marsenc.h); :mod:`pymars.rover.encode` checks the input, picks
the bundle and calls it through the thin binding ``pymars._core``. Nothing here
imports PyTorch or training code, and nothing here decodes (that is
:mod:`pymars.ground`).

Example:
    >>> from pymars.rover import encode
    >>> from pymars.data.synthetic import mars_like_scene
    >>> encode(mars_like_scene(32, 32), 50)[:4]
    b'PMRS'
"""
from pymars.rover.encode import encode, quality_for_max_error

__all__ = ["encode", "quality_for_max_error"]
