"""Exceptions raised by pymars' public API (all are ValueError subclasses).

Example:
    >>> issubclass(BitstreamError, PymarsError) and issubclass(PymarsError, ValueError)
    True
"""


class PymarsError(ValueError):
    """Base class of pymars errors: bad input, bad bitstream, wrong model."""


class InputImageError(PymarsError):
    """The image cannot be encoded (dtype, shape, size, NaN, channels)."""


class BitstreamError(PymarsError):
    """The data is not a decodable pymars file (garbage, bad header, unknown version)."""


class ModelMismatchError(PymarsError):
    """The file was encoded with another model or reference library than the decoder holds."""
