"""REMAC's torch-free part: the reference library shared by rover and ground, and how references are chosen.

* :mod:`pymars.remac.library`: the versioned, hashed library file (rover part
  ``.pmrl``, ground part ``.pmrg``) and its C++ view for encoding and decoding;
* :mod:`pymars.remac.selection`: the rover's per-tile selection rules in NumPy
  (the C++ core runs them; this is their oracle);
* :mod:`pymars.remac.build`: ``pymars refs build`` (which tiles become references).

The reference-guided networks and their training are training code
(:mod:`pymars.train.remac`). Coding with references goes through the public API:
``pymars.encode(img, refs=LIB)``, ``pymars.decode(data, refs=LIB)``.

Example:
    >>> from pymars.remac import ReferenceLibrary, build_library, ground_path
    >>> ground_path("mars.pmrl").suffix
    '.pmrg'
"""
from pymars.remac.library import ReferenceLibrary, ReferenceLibraryError, ground_path, reference_entry


def __getattr__(name):
    # Building a library (image reading, clustering) is loaded when first asked for:
    # encoding and decoding with a library need only pymars.remac.library.
    if name in ("BuildReport", "build_library"):
        from pymars.remac import build

        return getattr(build, name)
    raise AttributeError(f"module 'pymars.remac' has no attribute {name!r}")


__all__ = ["BuildReport", "ReferenceLibrary", "ReferenceLibraryError", "build_library", "ground_path", "reference_entry"]
