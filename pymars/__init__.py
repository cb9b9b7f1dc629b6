"""pymars: an image codec for Mars missions.

A small deterministic C++ encoder for the rover (no PyTorch, no heap after
start-up, byte-identical output on every CPU), entropy coding shared bit for
bit by rover and ground, and a ground decoder that needs no PyTorch. The
package is laid out as the system is (docs/architecture.md):

* codec: :mod:`pymars.rover` (encode, via the C++ core), :mod:`pymars.ground`
  (decode), :mod:`pymars.bundles` (installed models), :mod:`pymars.remac`
  (reference libraries), :mod:`pymars.texture` (the LBP/KL matcher);
* :mod:`pymars.train`: one training engine and the model families it trains;
* products on top of the codec: :mod:`pymars.enhance`, :mod:`pymars.spectral`;
* :mod:`pymars.evaluation`: the RD protocol, metrics and classic codecs.

Example:
    >>> import pymars
    >>> img = pymars.data.synthetic.mars_like_scene(64, 64)
    >>> pymars.decode(pymars.encode(img, quality=75)).shape
    (64, 64, 3)
"""
from pymars import data
from pymars.bundles import ModelBundle, default_bundle, open_bundle
from pymars.errors import BitstreamError, InputImageError, ModelMismatchError, PymarsError
from pymars.ground.decode import DamagedTilesWarning, DecodeReport, decode, decode_with_report, info
from pymars.rover.encode import encode

__version__ = "0.1.0"

__all__ = [
    "encode",
    "decode",
    "decode_with_report",
    "info",
    "default_bundle",
    "open_bundle",
    "ModelBundle",
    "DecodeReport",
    "DamagedTilesWarning",
    "PymarsError",
    "InputImageError",
    "BitstreamError",
    "ModelMismatchError",
    "data",
]
