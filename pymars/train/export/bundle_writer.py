"""Build a model bundle folder (see pymars.bundles) from a training checkpoint.

Writes, atomically per file: ``model.safetensors`` (the EMA weights),
``encoder.pmw`` (the C++ blob), ``synthesis.onnx`` and ``model.json``. The
model card is written by ``export/export_bundle.py`` from measured RD figures.

Example:
    >>> import tempfile, torch
    >>> from pymars.train.codec.network import BaseCodec, BaseConfig
    >>> cfg = BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8, synthesis=(8, 8, 8, 8))
    >>> out = tempfile.mkdtemp()
    >>> sorted(write_bundle(BaseCodec(cfg), out, {"steps": 0}))
    ['encoder.pmw', 'model.json', 'model.safetensors', 'synthesis.onnx']
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from pymars.bundles import INDEX_FILE, WEIGHTS_DIR, ModelBundle, model_index
from pymars.clio import atomic_path, atomic_write
from pymars.train.codec.network import BaseCodec, BaseConfig
from pymars.train.codec.torch_backend import torch_model
from pymars.train.export.blob import model_blob, model_id
from pymars.train.export.onnx_export import export_synthesis


def load_checkpoint_model(path: str | os.PathLike, which: str = "ema") -> tuple[BaseCodec, dict]:
    """The model of a training checkpoint (EMA weights by default) and the checkpoint dict.

    Example:
        >>> import tempfile
        >>> from pymars.train.codec.loop import TrainConfig, train
        >>> d = tempfile.mkdtemp()
        >>> _ = train(TrainConfig(out=d, steps=1, batch=1, crop=64, synthetic=True, model="tiny",
        ...                       validate_every=0, progress=False))
        >>> load_checkpoint_model(d + "/checkpoint.pt")[1]["step"]
        1
    """
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = BaseCodec(BaseConfig.from_dict(ck["model_config"]))
    model.load_state_dict(ck[which])
    return model.eval(), ck


def round_to_fp16(model: BaseCodec) -> BaseCodec:
    """Round every float parameter and buffer to the nearest float16 value (kept as float32).

    A shipped model *is* its fp16-rounded weights: model.safetensors stores them
    as float16 (half the size) and the blob and the ONNX graph are derived from
    the very same values, so every file of a bundle describes one model.

    Example:
        >>> from pymars.train.codec.network import BaseConfig
        >>> m = round_to_fp16(BaseCodec(BaseConfig(latent=4, hyper=2, analysis=(4, 4, 4), hs_hidden=4, synthesis=(4, 4, 4, 4))))
        >>> w = m.g_a.layers[0].weight
        >>> bool((w.half().float() == w).all())
        True
    """
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.dtype == torch.float32:
                t.copy_(t.half().float())
    return model


def write_bundle(model: BaseCodec, out: str | os.PathLike, provenance: dict) -> dict:
    """Export every bundle file for ``model`` into folder ``out``; returns {file: sha256}.

    ``provenance`` (training steps, data, hardware...) goes into model.json and
    the blob's META section.
    """
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = round_to_fp16(model.eval())
    blob = model_blob(model, {"provenance": provenance})
    atomic_write(out / "encoder.pmw", blob)
    state = {
        k: (v.detach().half() if v.dtype == torch.float32 else v.detach()).contiguous().clone()
        for k, v in model.state_dict().items()
    }
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"config": json.dumps(model.cfg.to_dict())})
    err = export_synthesis(model.g_s, model.cfg.latent, out / "synthesis.onnx")
    if err > 1e-3:
        raise RuntimeError(f"ONNX synthesis disagrees with PyTorch by {err}")
    files = {p: hashlib.sha256((out / p).read_bytes()).hexdigest() for p in ("encoder.pmw", "model.safetensors", "synthesis.onnx")}
    manifest = {
        "name": out.name,
        "architecture": model.cfg.name,
        "config": model.cfg.to_dict(),
        "model_id": model_id(blob).hex(),
        "files": files,
        "provenance": provenance,
    }
    atomic_write(out / "model.json", json.dumps(manifest, indent=2).encode())
    refresh_model_index(out)
    return {**files, "model.json": hashlib.sha256((out / "model.json").read_bytes()).hexdigest()}


def derive_bundle(source: str | os.PathLike, out: str | os.PathLike, *, tile_means: bool = True,
                  wavelet_priors=None, nl_priors=None, **options) -> dict:
    """A bundle with ``source``'s weights and other coding options, sharing its weight files.

    ``options``: other coding fields of the config (``nl_from_quality``,
    ``learned_top_level``, ``nl_max_error``, ``nl_coder``, ``wv_from_quality``,
    ``wv_max_step``, ``wv_min_step``); weights are never changed. ``wavelet_priors``:
    the wavelet coder's trained initial probabilities (WVPR,
    :func:`pymars.train.codec.wavelet_priors.train_priors`), or None. ``nl_priors``: the
    Arith2 near-lossless coder's (NLPR, :func:`pymars.train.codec.nl_priors.train_priors`;
    needs ``nl_coder="arith2"``), or None.

    Only the blob (a new model id) and model.json are written; model.json names
    ``source``'s ``synthesis.onnx`` and ``model.safetensors`` (``shared_files``),
    whose hashes it records. Used for base-v1-tm: base-v1 with tile means.

    Example:
        >>> import tempfile
        >>> from pymars.train.codec.network import BaseCodec, BaseConfig
        >>> cfg = BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8, synthesis=(8, 8, 8, 8))
        >>> root = Path(tempfile.mkdtemp())
        >>> _ = write_bundle(BaseCodec(cfg), root / "a", {"steps": 0})
        >>> sorted(derive_bundle(root / "a", root / "a-tm"))
        ['encoder.pmw', 'model.json']
    """

    src = ModelBundle(Path(source))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = torch_model(src)
    model.cfg.tile_means = tile_means
    coding = ("nl_from_quality", "learned_top_level", "nl_max_error", "nl_coder", "wv_from_quality", "wv_max_step",
              "wv_min_step")
    for key, value in options.items():
        if key not in coding:
            raise ValueError(f"derive_bundle changes coding options only ({', '.join(coding)}), not {key!r}")
        setattr(model.cfg, key, value)
    blob = model_blob(model, {"provenance": src.manifest.get("provenance", {})}, wavelet_priors=wavelet_priors,
                      nl_priors=nl_priors)
    atomic_write(out / "encoder.pmw", blob)
    rel = os.path.relpath(src.root.resolve(), out.resolve())
    shared = {name: f"{rel}/{name}" for name in ("synthesis.onnx", "model.safetensors")}
    files = {"encoder.pmw": hashlib.sha256(blob).hexdigest(),
             **{name: src.manifest["files"][name] for name in shared}}
    manifest = {
        "name": out.name,
        "architecture": src.manifest["architecture"],
        "config": model.cfg.to_dict(),
        "model_id": model_id(blob).hex(),
        "files": files,
        "shared_files": shared,
        "provenance": {**src.manifest.get("provenance", {}),
                       "derived_from": {"bundle": src.name, "model_id": src.manifest["model_id"],
                                        "change": ", ".join(f"{k}={v}" for k, v in {"tile_means": tile_means, **options}.items())
                                                  + " (docs/bitstream.md 4.6-4.9); same weights"}},
    }
    atomic_write(out / "model.json", json.dumps(manifest, indent=2).encode())
    refresh_model_index(out)
    return {"encoder.pmw": files["encoder.pmw"], "model.json": hashlib.sha256((out / "model.json").read_bytes()).hexdigest()}


def refresh_model_index(out: str | os.PathLike) -> None:
    """Rewrite ``weights/index.json`` (model id -> folder) when ``out`` is a folder of the installed weights.

    Example:
        >>> refresh_model_index("/tmp/not-in-weights")  # nothing to do outside pymars/weights
    """

    if Path(out).resolve().parent == WEIGHTS_DIR:
        atomic_write(WEIGHTS_DIR / INDEX_FILE, (json.dumps(model_index(), indent=1, sort_keys=True) + "\n").encode())
