"""REMAC training (a model family of the training engine; docs/remac.md).

* :mod:`pymars.train.remac.model`: the reference-guided integer h_s and the ref-decoder (PyTorch);
* :mod:`pymars.train.remac.loop`: ``pymars remac train``;
* :mod:`pymars.train.remac.export`: checkpoint -> model bundle.

The library format and the selection rules the rover runs are torch-free:
:mod:`pymars.remac`.

Example:
    >>> from pymars.remac.selection import NO_REFERENCE
    >>> hex(NO_REFERENCE)
    '0xffff'
"""
