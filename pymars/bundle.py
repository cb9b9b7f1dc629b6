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
#: model is named: near-lossless qualities with every k from 16 (RGB) or 6 (gray) to 0,
#: range coded, so a loose bound does not pay for a tight one.
DEFAULT_NEAR_LOSSLESS_MODEL = "base-v1-nl"
DEFAULT_GRAY_NEAR_LOSSLESS_MODEL = "base-v2-gray-rc"
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
        return self._file("model.safetensors")

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
        from . import _core

        return _core.Model(self.blob_path.read_bytes())

    def torch_model(self):
        """The full trained PyTorch model (BaseCodec, or RemacCodec for REMAC) in eval mode, from model.safetensors.

        Example:
            >>> b = default_bundle()
            >>> not b.available or b.torch_model().cfg.latent == b.latent_channels
            True
        """
        from safetensors.torch import load_file

        from .models.codec import BaseCodec, BaseConfig

        model = BaseCodec(BaseConfig.from_dict(self.config))
        if self.is_remac:
            from .remac.model import RemacCodec, RemacConfig

            model = RemacCodec(model, RemacConfig.from_dict(self.manifest["remac"]))
        # Weights are stored as float16 (pymars.export.bundle.round_to_fp16); compute in float32.
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(self.safetensors)).items()})
        return model.eval()

    @property
    def model_id(self) -> bytes:
        return self.core.model_id

    def synthesis(self, backend: str = "onnx", threads: int = 0):
        """A synthesis callable: ``"onnx"`` (ONNX Runtime, default) or ``"torch"``.

        Example:
            >>> b = default_bundle()
            >>> not b.available or callable(b.synthesis("onnx"))
            True
        """
        from .ground.synthesis import OnnxSynthesis, TorchSynthesis

        key = (backend, threads)
        cache = self.__dict__.setdefault("_synthesis", {})
        if key not in cache:
            if backend == "onnx":
                cache[key] = OnnxSynthesis(self.synthesis_onnx, threads=threads)
            elif backend == "torch":
                cache[key] = TorchSynthesis(self.safetensors, self.config, remac=self.manifest.get("remac"))
            else:
                raise ValueError(f"unknown synthesis backend {backend!r}: use 'onnx' or 'torch'")
        return cache[key]


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
    """The shipped bundle whose model id is ``model_id`` (None if no installed bundle has it).

    Example:
        >>> bundle_for_model_id(default_bundle().model_id).name if default_bundle().available else "base-v2-wv"
        'base-v2-wv'
    """
    # model.json records each bundle's id, so no blob is parsed to find the one (the caller
    # still checks the id against the parsed blob before decoding).
    want = bytes(model_id).hex()
    for path in sorted(WEIGHTS_DIR.iterdir()) if WEIGHTS_DIR.is_dir() else []:
        b = _cached_bundle(path.resolve())
        if path.is_dir() and b.available and b.manifest.get("model_id") == want:
            return b
    return None


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
        >>> g is None or (g.channels, g.core.near_lossless_error(81)) == (1, 6)
        True
    """
    name = DEFAULT_GRAY_NEAR_LOSSLESS_MODEL if gray else DEFAULT_NEAR_LOSSLESS_MODEL
    b = _cached_bundle((WEIGHTS_DIR / name).resolve())
    return b if b.available else None


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
