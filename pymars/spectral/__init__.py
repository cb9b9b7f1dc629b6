"""Spectral-channel prediction: CaSSIS-like bands in, CRISM FAL mineralogy composite (R2529, R1506, R1080) out.

What it is for: ground teams predict where CRISM would have seen carbonates
(green in FAL) from CaSSIS-like colour, next to the decoder. Concepts, one
module each: scene ``metadata`` (with the lat/lon repair), the PNG ``pairs`` and
their split, ``augment``, the PDS ``pds`` cube reader, spectral-library
``synthesis``, ``metrics``, the torch ``models`` and ``diffusion`` training
(``train``), ONNX ``export``, ONNX Runtime ``predict`` (no torch needed),
``evaluate`` and the ``cli``. Design and results: docs/spectral.md.

Example:
    >>> from pymars.spectral.metadata import SITES
    >>> SITES[0]
    'unknown'
"""
