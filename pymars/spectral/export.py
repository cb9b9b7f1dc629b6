"""Export a trained spectral model to a weights folder: safetensors, one-step ONNX, config.json.

What it is for: ``pymars spectral predict`` runs on ground GPUs/CPUs through
ONNX Runtime without torch. The ONNX graph is *one* network evaluation (for the
denoiser: one denoising step, with a batch axis so the guidance branches run
together); the DDIM loop stays in Python (:mod:`pymars.spectral.diffusion`).
The folder holds:

* ``model.safetensors``: the EMA weights (what the ONNX graph was made from);
* ``model.onnx``: inputs ``x_t, cassis, image_keep, t, lat, lon, site,
  meta_keep`` with free batch, height and width; output ``out`` (the FAL image
  for ``unet``, v for ``diffusion``); a UNet with the carbonate head has a
  second output ``carb_logit`` (N, 1, H, W), the per-pixel carbonate logit, in
  the same graph (one evaluation gives both);
* ``config.json``: architecture, sites, default sampler settings, the
  training recipe, and the measured ONNX-vs-torch difference.

Example:
    >>> import tempfile, torch
    >>> from pymars.spectral.models import SpectralConfig, SpectralUNet
    >>> torch.manual_seed(0) and None
    >>> info = export_model(SpectralUNet(SpectralConfig(kind="diffusion", width=8)), tempfile.mkdtemp())
    >>> sorted(info["files"]), info["onnx_max_abs_diff"] < 1e-3
    (['config.json', 'model.onnx', 'model.safetensors'], True)
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from pymars.bundles import training_file
from pymars.clio import atomic_path
from pymars.spectral.metadata import SITES
from pymars.spectral.models import SpectralConfig, SpectralUNet

INPUT_NAMES = ["x_t", "cassis", "image_keep", "t", "lat", "lon", "site", "meta_keep"]
CARB_OUTPUT = "carb_logit"


class _SplitOutputs(torch.nn.Module):
    """Export view of a model with the carbonate head: its 4 channels as ``out`` (FAL) and ``carb_logit``,
    so the FAL output keeps the name, shape and meaning it has in every other weights folder."""

    def __init__(self, model: SpectralUNet):
        super().__init__()
        self.model = model

    def forward(self, *args):
        y = self.model(*args)
        return y[:, :3], y[:, 3:]


def output_names(model: SpectralUNet) -> list[str]:
    """Names of the exported graph's outputs.

    Example:
        >>> output_names(SpectralUNet(SpectralConfig(kind="unet", width=8, carbonate_head=True)))
        ['out', 'carb_logit']
    """
    return ["out", CARB_OUTPUT] if model.cfg.carbonate_head else ["out"]
#: Sampler defaults written into a diffusion model's config.json (what predict and the results table use).
DEFAULT_SAMPLER = {"steps": 20, "image_guidance": 1.5, "meta_guidance": 2.0, "seed": 0}


def example_inputs(batch: int = 3, size: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the exported graph, as numpy arrays keyed by input name.

    Example:
        >>> sorted(example_inputs(1, 8))[:3]
        ['cassis', 'image_keep', 'lat']
    """
    rng = np.random.default_rng(seed)
    return {"x_t": rng.standard_normal((batch, 3, size, size)).astype(np.float32),
            "cassis": rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32),
            "image_keep": np.ones(batch, np.float32), "t": np.full(batch, 500.0, np.float32),
            "lat": rng.uniform(-30, 30, batch).astype(np.float32), "lon": rng.uniform(-90, 90, batch).astype(np.float32),
            "site": (np.arange(batch) % len(SITES)).astype(np.int64), "meta_keep": np.ones(batch, np.float32)}


def _write_with(path: Path, write) -> None:
    """``write(tmp)`` into the temporary file of :func:`pymars.clio.atomic_path` (the project's one atomic write)."""
    with atomic_path(path) as tmp:
        write(tmp)


def export_model(model: SpectralUNet, out_dir: str | Path, train_config: dict | None = None) -> dict:
    """Write the weights folder for ``model`` (see the module docstring) and check ONNX against torch.

    Raises ValueError when ONNX Runtime and PyTorch differ by 1e-3 or more on random inputs.
    """
    import onnxruntime as ort
    from safetensors.torch import save_file

    model = model.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    _write_with(out / "model.safetensors", lambda p: (save_file(state, str(p)), os.chmod(p, 0o644)))
    ex = example_inputs()
    args = tuple(torch.from_numpy(ex[n]) for n in INPUT_NAMES)
    dyn = {n: {0: "batch"} for n in INPUT_NAMES}
    for n in ("x_t", "cassis"):
        dyn[n] = {0: "batch", 2: "height", 3: "width"}
    outputs = output_names(model)
    for n in outputs:
        dyn[n] = {0: "batch", 2: "height", 3: "width"}
    graph = _SplitOutputs(model) if model.cfg.carbonate_head else model

    def write_onnx(p):
        torch.onnx.export(graph, args, str(p), input_names=INPUT_NAMES, output_names=outputs,
                          dynamic_axes=dyn, opset_version=17, dynamo=False)

    _write_with(out / "model.onnx", write_onnx)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    diff = 0.0
    for size in (32, 48):  # two sizes: the dynamic axes must really be dynamic
        ex = example_inputs(3, size, seed=size)
        with torch.no_grad():
            ref = model(*(torch.from_numpy(ex[n]) for n in INPUT_NAMES)).numpy()
        names = {i.name for i in sess.get_inputs()}  # the UNet's graph has no x_t / t inputs
        got = np.concatenate(sess.run(None, {k: v for k, v in ex.items() if k in names}), axis=1)
        diff = max(diff, float(np.abs(ref - got).max()))
    if not diff < 1e-3:
        raise ValueError(f"ONNX Runtime and PyTorch disagree by {diff:.2e} (>= 1e-3)")
    config = {"format": "pymars-spectral-1", "model": model.cfg.to_dict(), "sites": list(SITES),
              "inputs": INPUT_NAMES, "value_range": "[-1, 1] <-> 0..255", "onnx_max_abs_diff": diff,
              "train": train_config or {}}
    if model.cfg.kind == "diffusion":
        config["sampler"] = dict(DEFAULT_SAMPLER)
    if model.cfg.carbonate_head:  # the decision threshold is chosen later, on the val part (evaluate.py)
        config["outputs"] = outputs
    _write_with(out / "config.json", lambda p: p.write_text(json.dumps(config, indent=2)))
    return {"files": ["config.json", "model.onnx", "model.safetensors"], "onnx_max_abs_diff": diff}


def load_torch_model(folder: str | Path) -> SpectralUNet:
    """The PyTorch model of a weights folder (config.json + model.safetensors).

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = export_model(SpectralUNet(SpectralConfig(kind="unet", width=8)), d)
        >>> load_torch_model(d).cfg.kind
        'unet'
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    model = SpectralUNet(SpectralConfig.from_dict(cfg["model"]))
    model.load_state_dict(load_file(str(training_file(folder / "model.safetensors"))))
    return model.eval()
