"""pymars: a learned image codec for Mars missions.

A small deterministic C++ encoder for the rover (no PyTorch, no heap after
start-up, byte-identical output on every CPU), bit-exact integer entropy
parameters shared with the ground decoder, and a float ground synthesis run by
ONNX Runtime (default) or PyTorch.

Example:
    >>> import pymars
    >>> img = pymars.data.synthetic.mars_like_scene(64, 64)
    >>> data = pymars.encode(img, quality=75) if pymars.default_bundle().available else None
    >>> data is None or pymars.decode(data).shape == (64, 64, 3)
    True
"""
from . import data
from .api import DamagedTilesWarning, DecodeReport, decode, decode_with_report, encode, info
from .bundle import ModelBundle, default_bundle, open_bundle
from .errors import BitstreamError, InputImageError, ModelMismatchError, PymarsError

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
