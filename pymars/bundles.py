"""Model bundles: the files of one trained model, and the default one shipped in the package.

A bundle is a folder::

    model.json          architecture, model id, file hashes, rate levels
    encoder.pmw         the C++ weight blob (rover encoder + shared entropy path)
    synthesis.onnx      the ground synthesis for ONNX Runtime
    model.safetensors   all trained weights (PyTorch path, fine-tuning, re-export)
    MODEL_CARD.md       data, steps, hardware, RD on the development set

Example:
    >>> b = default_bundle()
    >>> b.name
    'base-v2-wv'
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pymars import _core

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The RGB default: qualities 1..98 coded by the integer wavelet coder (docs/bitstream.md
#: §4.9), 99 and 100 near-lossless (k = 1, lossless). It beat every learned RGB model on
#: the development tiles at every rate (docs/base-v2.md); base-v1's weights ride along
#: (shared files) but no default quality uses them. Files of base-v1 and base-v1-tm
#: still decode with those bundles (the file names its model).
DEFAULT_MODEL = "base-v2-wv"
#: The bundle that codes gray images (and RGB images whose three channels are equal)
#: when no model is named: wavelet qualities 1..97, near-lossless 98..100 (k = 2, 1, 0).
#: The RGB default codes them when this bundle is not installed.
DEFAULT_GRAY_MODEL = "base-v2-gray-wv"
#: The bundles ``encode(..., max_error=k)`` (``--lossless``, ``--max-error``) uses when no
#: model is named: near-lossless qualities 81..100 with every k from 16 to 0, range
#: coded with Arith2's trained contexts (docs/bitstream.md §4.8), so a loose bound
#: does not pay for a tight one. Files of the earlier ones (base-v1-nl, base-v2-gray-rc)
#: still decode with those bundles.
DEFAULT_NEAR_LOSSLESS_MODEL = "base-v2-nl"
DEFAULT_GRAY_NEAR_LOSSLESS_MODEL = "base-v2-gray-nl"
#: The REMAC bundle ``encode(..., refs=LIB)`` uses when no model is named.
DEFAULT_REMAC_MODEL = "remac-v1"


@dataclass
class ModelBundle:
    """Paths and lazily loaded parts of a model bundle folder."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def available(self) -> bool:
        """True when the blob and the manifest exist (the bundle can encode and decode)."""
        return (self.root / "model.json").is_file() and (self.root / "encoder.pmw").is_file()

    @property
    def blob_path(self) -> Path:
        return self.root / "encoder.pmw"

    def _file(self, name: str) -> Path:
        # A derived bundle (same weights, another coding option) names the folder
        # whose copy of a file it uses, instead of shipping a second copy.
        shared = self.manifest.get("shared_files", {}) if (self.root / "model.json").is_file() else {}
        return (self.root / shared[name]).resolve() if name in shared else self.root / name

    @property
    def synthesis_onnx(self) -> Path:
        return self._file("synthesis.onnx")

    @property
    def safetensors(self) -> Path:
        """The training weights (``model.safetensors``): in the bundle, else in the source checkout.

        The wheel carries what inference needs (blob, ONNX graphs, model.json,
        cards); training weights stay in the repository (pyproject.toml,
        ``wheel.exclude``). An installed bundle without them finds them in the
        checkout named by ``PYMARS_CHECKOUT``, or the one the current folder is in.

        Example:
            >>> open_bundle("base-v1").safetensors.name
            'model.safetensors'
        """
        path = training_file(self._file("model.safetensors"))
        if path.is_file():
            return path
        raise FileNotFoundError(
            f"{path}: the training weights of {self.name!r} are not installed with the package (they live in the "
            "source repository): run from a pymars checkout or set PYMARS_CHECKOUT=/path/to/checkout")

    @cached_property
    def manifest(self) -> dict:
        path = self.root / "model.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"model bundle {self.root} has no model.json; run `python export/export_bundle.py` or pass another model"
            )
        return json.loads(path.read_text())

    @property
    def config(self) -> dict:
        return self.manifest["config"]

    @property
    def is_remac(self) -> bool:
        """True for a REMAC bundle (reference-guided h_s and ref-decoder; pymars/remac)."""
        return self.manifest.get("architecture") == "pymars-remac"

    @property
    def channels(self) -> int:
        """Image channels the model codes: 3 (RGB; gray input is replicated) or 1 (gray only)."""
        return int(self.config.get("channels", 3))

    @property
    def latent_channels(self) -> int:
        return int(self.config["latent"])

    @cached_property
    def core(self):
        """The parsed C++ model (pymars._core.Model)."""

        return _core.Model(self.blob_path.read_bytes())

    @property
    def model_id(self) -> bytes:
        return self.core.model_id


def open_bundle(model: str | os.PathLike | ModelBundle | None = None) -> ModelBundle:
    """A bundle by name (in the package), by folder path, or the default one.

    Example:
        >>> open_bundle().name == DEFAULT_MODEL
        True
    """
    if isinstance(model, ModelBundle):
        return model
    if model is None:
        model = DEFAULT_MODEL
    path = Path(model)
    if not path.is_dir():
        path = WEIGHTS_DIR / str(model)
    if not path.is_dir():
        known = sorted(p.name for p in WEIGHTS_DIR.iterdir() if p.is_dir()) if WEIGHTS_DIR.is_dir() else []
        raise FileNotFoundError(f"no model bundle {model!r} (known: {known})")
    return _cached_bundle(path.resolve())


def bundle_for_model_id(model_id: bytes) -> ModelBundle | None:
    """The installed bundle whose model id is ``model_id`` (None if no installed bundle has it).

    One small file answers for the shipped bundles (``weights/index.json``:
    model id -> folder, written by :func:`model_index` when bundles are exported;
    tests/test_architecture.py checks it against every model.json). A bundle
    added to the folder since (``pymars export ... -o pymars/weights/NAME``) is
    found by reading the manifests.

    Example:
        >>> bundle_for_model_id(default_bundle().model_id).name
        'base-v2-wv'
    """
    want = bytes(model_id).hex()
    index = WEIGHTS_DIR / INDEX_FILE
    if index.is_file():
        name = json.loads(index.read_text()).get(want)
        if name is not None and (WEIGHTS_DIR / name).is_dir():
            return _cached_bundle((WEIGHTS_DIR / name).resolve())
    name = model_index().get(want)
    return None if name is None else _cached_bundle((WEIGHTS_DIR / name).resolve())


#: The model-id index of the installed bundles, in WEIGHTS_DIR.
INDEX_FILE = "index.json"


def model_index() -> dict[str, str]:
    """{model id (hex): folder name} of every bundle in the weights folder, from their manifests.

    Example:
        >>> model_index()[default_bundle().model_id.hex()]
        'base-v2-wv'
    """
    found = {}
    for path in sorted(WEIGHTS_DIR.iterdir()) if WEIGHTS_DIR.is_dir() else []:
        if not path.name.startswith(".") and (path / "model.json").is_file() and (path / "encoder.pmw").is_file():
            found.setdefault(json.loads((path / "model.json").read_text()).get("model_id"), path.name)
    found.pop(None, None)
    return found


def gray_bundle() -> ModelBundle | None:
    """The installed gray bundle (``DEFAULT_GRAY_MODEL``), or None.

    Example:
        >>> b = gray_bundle()
        >>> b is None or b.channels == 1
        True
    """
    b = _cached_bundle((WEIGHTS_DIR / DEFAULT_GRAY_MODEL).resolve())
    return b if b.available else None


def near_lossless_bundle(gray: bool = False) -> ModelBundle | None:
    """The installed bundle of ``max_error`` for RGB (``DEFAULT_NEAR_LOSSLESS_MODEL``) or gray images, or None.

    Example:
        >>> b = near_lossless_bundle()
        >>> b is None or b.core.near_lossless_error(100) == 0
        True
        >>> g = near_lossless_bundle(gray=True)
        >>> g is None or (g.channels, g.core.near_lossless_error(81)) == (1, 16)
        True
    """
    name = DEFAULT_GRAY_NEAR_LOSSLESS_MODEL if gray else DEFAULT_NEAR_LOSSLESS_MODEL
    b = _cached_bundle((WEIGHTS_DIR / name).resolve())
    return b if b.available else None


def training_file(path: str | os.PathLike) -> Path:
    """``path`` (a file in a weights folder), or its copy in the source checkout when the install lacks it.

    Training weights (``model.safetensors``, ``*.pt``) are not in the wheel;
    fine-tuning, re-export and the PyTorch paths find them in the checkout named
    by ``PYMARS_CHECKOUT`` or the one the current folder is in. Returns ``path``
    unchanged when no copy exists (the caller reports the missing file).

    Example:
        >>> training_file(WEIGHTS_DIR / "base-v1" / "model.safetensors").name
        'model.safetensors'
    """
    path = Path(path)
    if path.is_file() or path.parent.parent.resolve() != WEIGHTS_DIR:
        return path
    for checkout in _checkouts():
        other = checkout / "pymars" / "weights" / path.parent.name / path.name
        if other.is_file():
            return other
    return path


def _checkouts():
    """Source checkouts that may hold training weights: $PYMARS_CHECKOUT, then the folders above the cwd."""
    if os.environ.get("PYMARS_CHECKOUT"):
        yield Path(os.environ["PYMARS_CHECKOUT"])
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "pymars" / "weights").is_dir():
            yield folder
            return


_BUNDLES: dict[Path, ModelBundle] = {}


def _cached_bundle(path: Path) -> ModelBundle:
    if path not in _BUNDLES:
        _BUNDLES[path] = ModelBundle(path)
    return _BUNDLES[path]


def default_bundle() -> ModelBundle:
    """The RGB bundle shipped with the package (``pymars/weights/base-v2-wv``).

    Example:
        >>> default_bundle().root.name
        'base-v2-wv'
    """
    return _cached_bundle((WEIGHTS_DIR / DEFAULT_MODEL).resolve())
