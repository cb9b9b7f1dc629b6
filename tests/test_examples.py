"""Every docstring example of the pymars package runs and prints what it shows.

The style asks for a runnable example on every public function; running them
here keeps them true as the code changes (a stale example is worse than none).
Examples that need real data are written to pass without ../shared.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import pymars

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(pymars.__path__, prefix="pymars.") if not m.name.endswith("__main__")
)


def test_the_package_has_modules_to_check():
    assert len(MODULES) >= 30 and "pymars.ground.decode" in MODULES and "pymars.remac.library" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_of(name, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # examples that write files must not touch the checkout
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (see above)"
