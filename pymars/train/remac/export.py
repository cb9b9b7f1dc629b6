"""Export a trained REMAC model as a model bundle (encoder blob with the reference branch, ref-decoder ONNX).

What it is for: turning a ``pymars remac train`` checkpoint into the folder
the codec runs (pymars/bundles.py): ``encoder.pmw`` (the base rover analysis,
the reference-guided integer h_s: an ``HSRF`` section before ``HS``, see
docs/model-blob.md), ``synthesis.onnx`` (the ref-decoder, inputs ``y_hat`` and
``reference``), ``model.safetensors`` (every weight, float16) and
``model.json`` (``architecture: pymars-remac``, the base model it extends).
Like the base export it rounds every weight to float16 first, so all files
describe one model, and refuses to write an ONNX graph that disagrees with
PyTorch.

Example:
    >>> import tempfile
    >>> from pymars.train.remac.loop import load_base_model
    >>> m = RemacCodec(load_base_model(synthetic=True), RemacConfig(ref_channels=2, tem_channels=4, value_channels=4))
    >>> files = write_remac_bundle(m, tempfile.mkdtemp(), {"steps": 0})
    >>> sorted(files)
    ['encoder.pmw', 'model.json', 'model.safetensors', 'synthesis.onnx']
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from pymars.clio import atomic_path, atomic_write
from pymars.train.codec.network import BaseCodec, BaseConfig
from pymars.train.export.blob import model_blob, model_id
from pymars.train.export.bundle_writer import refresh_model_index, round_to_fp16
from pymars.train.export.onnx_export import export_synthesis
from pymars.train.remac.model import RemacCodec, RemacConfig

ARCHITECTURE = "pymars-remac"


def load_remac_checkpoint(path: str | os.PathLike, which: str = "ema") -> tuple[RemacCodec, dict]:
    """The REMAC model of a training checkpoint (EMA weights by default) and the checkpoint dict.

    Example:
        >>> import tempfile
        >>> from pymars.train.remac.loop import RemacTrainConfig, train_remac
        >>> d = tempfile.mkdtemp()
        >>> _ = train_remac(RemacTrainConfig(out=d, steps=1, batch=1, crop=64, synthetic=True, progress=False))
        >>> load_remac_checkpoint(d + "/checkpoint.pt")[1]["step"]
        1
    """

    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = RemacCodec(BaseCodec(BaseConfig.from_dict(ck["base_config"])), RemacConfig.from_dict(ck["remac_config"]))
    model.load_state_dict(ck[which])
    return model.eval(), ck


def write_remac_bundle(model: RemacCodec, out: str | os.PathLike, provenance: dict) -> dict:
    """Every bundle file for ``model`` into folder ``out``; returns {file: sha256}."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = round_to_fp16(model.eval())
    blob = model_blob(model, {"provenance": provenance, "remac": model.cfg.to_dict()})
    err = export_synthesis(model.g_s, model.base_cfg.latent, out / "synthesis.onnx", reference=True)
    if err > 1e-3:
        (out / "synthesis.onnx").unlink()
        raise RuntimeError(f"ONNX ref-decoder disagrees with PyTorch by {err}")
    atomic_write(out / "encoder.pmw", blob)
    state = {k: (v.detach().half() if v.dtype == torch.float32 else v.detach()).contiguous().clone()
             for k, v in model.state_dict().items()}
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"config": json.dumps(model.base_cfg.to_dict()),
                                             "remac": json.dumps(model.cfg.to_dict())})
    files = {p: hashlib.sha256((out / p).read_bytes()).hexdigest() for p in ("encoder.pmw", "model.safetensors", "synthesis.onnx")}
    manifest = {
        "name": out.name,
        "architecture": ARCHITECTURE,
        "config": model.base_cfg.to_dict(),
        "remac": model.cfg.to_dict(),
        "model_id": model_id(blob).hex(),
        "onnx_vs_torch_max_abs": err,
        "files": files,
        "provenance": provenance,
    }
    atomic_write(out / "model.json", json.dumps(manifest, indent=2).encode())
    refresh_model_index(out)
    return {**files, "model.json": hashlib.sha256((out / "model.json").read_bytes()).hexdigest()}
