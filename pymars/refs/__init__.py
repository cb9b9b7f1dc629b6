"""REMAC reference libraries: the file format shared by rover and ground, and how references are chosen.

Status (issue 3): the library format, its hash checks and ``pymars refs build``
exist; per-tile selection in the encoder, the reference-guided entropy model
and the ref-decoder do not yet (docs/remac.md).

Example:
    >>> from pymars.refs import ReferenceLibrary, build_library, ground_path
    >>> ground_path("mars.pmrl").suffix
    '.pmrg'
"""
from .build import BuildReport, build_library
from .library import ReferenceLibrary, ReferenceLibraryError, ground_path, reference_entry

__all__ = ["BuildReport", "ReferenceLibrary", "ReferenceLibraryError", "build_library", "ground_path", "reference_entry"]
