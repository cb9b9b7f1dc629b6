"""A stand-in for pymars' C++ extension on a machine that has no build of it (the lent GPU).

What it is for: `import pymars` loads ``pymars._core``; the device's python3 (another
version, no build tools run there) cannot load this machine's build, and training never
calls it. :func:`install` registers a module whose every name is a function that raises,
so the package imports and any call into the C core fails loudly. Used by
scripts/gpu_enhance.py and scripts/gpu_spectral.sh only; it must never be imported by
pymars itself.

Example:
    >>> install()  # here the real extension imports, so nothing is replaced
    False
"""
from __future__ import annotations

import sys
import types


class _Absent(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):  # __file__, __spec__, ...: as a plain module has none
            raise AttributeError(name)
        if name.isupper():  # module constants read at import time
            return 0

        def absent(*args, **kwargs):
            raise RuntimeError(f"pymars._core.{name}: the C++ extension is not built on this machine")

        return absent


def install() -> bool:
    """Import pymars; where its C core cannot load, put the stand-in in its place. True when it did."""
    try:
        import pymars._core  # noqa: F401
        return False
    except ImportError as e:
        if "_core" not in str(e):
            raise
    for m in [m for m in sys.modules if m == "pymars" or m.startswith("pymars.")]:
        del sys.modules[m]
    sys.modules["pymars._core"] = _Absent("pymars._core")
    print("pymars._core not importable here: running with a stand-in", flush=True)
    return True
