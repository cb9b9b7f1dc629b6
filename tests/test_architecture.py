"""The dependency rules of docs/architecture.md, checked on the source (AST) and in a fresh interpreter.

Rules (every import counts, function-level ones included, so a lazy import
cannot hide a dependency):

1. The codec runtime (rover, ground, bundles, remac, texture, data, errors,
   imageio, clio, evaluation and the package itself) never imports PyTorch,
   training code or a product.
2. Training (``pymars.train``) never imports a product.
3. The products (``pymars.enhance``, ``pymars.spectral``) never import each other.
4. No module imports an underscore name from another top-level package, and
   only the codec runtime and training use the C++ binding ``pymars._core``.
5. The installed package never loads files from the checkout's bench/.
6. The composition roots (``pymars.cli`` and the ``pymars.batch`` package) import
   only the codec runtime at module level; their commands and per-item work
   functions import training and products when run. ``pymars.batch`` never
   imports PyTorch, not even there.

Example:
    >>> owner("pymars.ground.decode"), owner("pymars.train.codec.loop"), owner("pymars")
    ('runtime', 'train', 'runtime')
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pymars"
RUNTIME = {"rover", "ground", "bundles", "remac", "texture", "data", "errors", "imageio", "clio", "evaluation",
           "sequence", "__init__", "__main__", "cli", "batch"}
#: Composition roots: runtime at module level, products (and, for cli only, training and torch) inside functions.
COMPOSITION = ("pymars.cli", "pymars.batch")
PRODUCTS = {"enhance", "spectral"}
TORCH = ("torch", "safetensors.torch", "torchvision", "onnxscript")


def owner(module: str) -> str:
    """'runtime', 'train', a product name, or 'core' (the binding) for a dotted module name."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top == "_core":
        return "core"
    if top in PRODUCTS:
        return top
    if top == "train":
        return "train"
    return "runtime"


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        yield name, path


def imports(path: Path):
    """(imported module, imported name or None, line, at module level) of every import in a file."""
    tree = ast.parse(path.read_text())
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None, node.lineno, id(node) in top_level
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}:{node.lineno}: relative import (the project uses absolute ones)"
            for a in node.names:
                yield node.module, a.name, node.lineno, id(node) in top_level


def violations():
    found = []
    for name, path in modules():
        me = owner(name)
        for mod, item, line, module_level in imports(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            target = owner(mod) if mod.startswith("pymars") else None
            full = f"{mod}.{item}" if item else mod
            if me == "runtime":
                root = name in COMPOSITION or name.startswith(tuple(c + "." for c in COMPOSITION))
                if mod.split(".")[0] in ("torch", "torchvision", "onnxscript") or mod == "safetensors.torch":
                    if name != "pymars.cli":
                        found.append(f"{where}: the codec runtime imports {mod} (rule 1)")
                if target in ("train", *PRODUCTS) and (not root or module_level
                                                       or (target == "train" and name != "pymars.cli")):
                    found.append(f"{where}: {name} imports {full} (rule 1{' / 6' if root else ''})")
            if me == "train" and target in PRODUCTS:
                found.append(f"{where}: training imports the product {full} (rule 2)")
            if me in PRODUCTS and target in PRODUCTS and target != me:
                found.append(f"{where}: product {me} imports product {full} (rule 3)")
            if target == "core" and me not in ("runtime", "train"):
                found.append(f"{where}: {name} uses the binding pymars._core directly (rule 4)")
            if mod.startswith("pymars") and target not in ("core", me):
                private = [p for p in full.split(".")[1:] if p.startswith("_") and p not in ("__init__", "_core")]
                if private:
                    found.append(f"{where}: {name} imports the private {full} of another package (rule 4)")
            if mod.startswith("pymars") and me == "runtime" and target == "runtime" and item and item.startswith("_") \
                    and mod.split(".")[:2] != name.split(".")[:2] and item != "_core":
                found.append(f"{where}: {name} imports the private {full} (rule 4)")
        text = path.read_text()
        if "spec_from_file_location" in text or "bench/" in text and "sys.path" in text:
            found.append(f"{path.relative_to(PACKAGE.parent)}: loads files by path (rule 5: bench/ is not installed)")
    return found


def test_dependency_rules_hold():
    assert violations() == []


def test_rules_catch_a_violation(tmp_path, monkeypatch):
    # The check must be able to fail: a runtime module importing training code is reported.
    fake = tmp_path / "pymars"
    (fake / "ground").mkdir(parents=True)
    (fake / "ground" / "bad.py").write_text("def f():\n    from pymars.train.codec.network import BaseCodec\n")
    (fake / "enhance").mkdir()
    (fake / "enhance" / "worse.py").write_text("import torch\nfrom pymars.spectral.models import _private\n")
    (fake / "batch").mkdir()  # a composition root: products inside functions only, never at module level
    (fake / "batch" / "ok.py").write_text("def f():\n    from pymars.enhance.cli import resolve_model\n")
    (fake / "batch" / "eager.py").write_text("from pymars.enhance.cli import resolve_model\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = violations()
    assert any("eager.py" in f and "rule 1 / 6" in f for f in found) and not any("ok.py" in f for f in found)
    assert any("rule 1" in f and "bad.py" in f for f in found)
    assert any("rule 3" in f for f in found) and any("rule 4" in f for f in found)


def test_decode_path_imports_no_torch():
    # `import pymars`, then encode and decode with every default (wavelet, near-lossless)
    # and a learned model through ONNX Runtime: no PyTorch, no training code loaded.
    code = (
        "import sys, numpy as np, pymars\n"
        "from pymars.data.synthetic import mars_like_scene\n"
        "img = mars_like_scene(48, 64, seed=1)\n"
        "for kw in ({'quality': 50}, {'quality': 50, 'model': 'base-v1'}, {'max_error': 0}):\n"
        "    pymars.decode(pymars.encode(img, **kw))\n"
        "pymars.decode(pymars.encode(img[..., 0], 40))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')\n"
        "             or m.startswith(('pymars.train', 'pymars.enhance', 'pymars.spectral')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout


def test_import_of_pymars_is_light():
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pymars; pymars.decode"],
                         capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "onnxruntime", "scipy", "matplotlib")}, loaded


def test_model_index_matches_the_manifests():
    from pymars.bundles import INDEX_FILE, WEIGHTS_DIR, model_index

    path = WEIGHTS_DIR / INDEX_FILE
    if not path.is_file():
        pytest.skip("no installed weights index (a package built without weights)")
    assert json.loads(path.read_text()) == model_index(), "run refresh_model_index (pymars.train.export.bundle_writer)"
