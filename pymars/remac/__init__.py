"""REMAC: reference-based coding on top of the base codec (docs/remac.md).

* :mod:`pymars.remac.model`: the reference-guided integer h_s and the ref-decoder (training model);
* :mod:`pymars.remac.selection`: the rover's reference selection rules in NumPy (the C++ core runs them);
* :mod:`pymars.remac.train`: ``pymars remac train``;
* :mod:`pymars.remac.export`: checkpoint -> model bundle.

Coding with references goes through the public API: ``pymars.encode(img, refs=LIB)``,
``pymars.decode(data, refs=LIB)``.

Example:
    >>> from pymars.remac.selection import NO_REFERENCE
    >>> hex(NO_REFERENCE)
    '0xffff'
"""
