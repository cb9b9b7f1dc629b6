"""The PyTorch side of a model bundle: the full trained model and the PyTorch synthesis backend.

What it is for: fine-tuning, re-export, the benches that compare the float
model with the integer path, and the ``"torch"`` synthesis plug-in of the
ground decoder (entry point ``pymars.synthesis`` -> :func:`torch_synthesis`),
which checks ONNX Runtime's reconstructions against PyTorch. Both read the
bundle's ``model.safetensors`` (training weights: in a checkout, not in the
wheel; :attr:`pymars.bundles.ModelBundle.safetensors`).

What it must not touch: the decoder itself (it only plugs a backend into it).

Example:
    >>> from pymars.bundles import open_bundle
    >>> b = open_bundle("base-v1")
    >>> torch_model(b).cfg.latent == b.latent_channels
    True
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from pymars.ground.synthesis import reference_input
from pymars.train.codec.network import BaseCodec, BaseConfig, Synthesis
from pymars.train.remac.model import RefSynthesis, RemacCodec, RemacConfig


def torch_model(bundle):
    """The full trained PyTorch model of ``bundle`` (BaseCodec, or RemacCodec for REMAC) in eval mode.

    Example:
        >>> from pymars.bundles import open_bundle
        >>> torch_model(open_bundle("remac-v1")).__class__.__name__
        'RemacCodec'
    """
    model = BaseCodec(BaseConfig.from_dict(bundle.config))
    if bundle.is_remac:
        model = RemacCodec(model, RemacConfig.from_dict(bundle.manifest["remac"]))
    # Weights are stored as float16 (pymars.train.export.bundle_writer.round_to_fp16); compute in float32.
    state = load_file(str(bundle.safetensors))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def torch_synthesis(bundle, threads: int = 0) -> "TorchSynthesis":
    """The ``"torch"`` synthesis plug-in: ``factory(bundle, threads)`` of the ``pymars.synthesis`` entry point.

    Example:
        >>> from pymars.bundles import open_bundle
        >>> b = open_bundle("base-v1")
        >>> torch_synthesis(b)(np.zeros((b.latent_channels, 1, 1), np.float32)).shape
        (3, 16, 16)
    """
    return TorchSynthesis(bundle.safetensors, bundle.config, remac=bundle.manifest.get("remac"))


class TorchSynthesis:
    """g_s through PyTorch, from the bundle's safetensors .

    Example:
        >>> from pymars.bundles import open_bundle
        >>> b = open_bundle("base-v1")
        >>> s = TorchSynthesis(b.safetensors, b.config)
        >>> s(np.zeros((b.latent_channels, 1, 1), np.float32)).shape
        (3, 16, 16)
    """

    def __init__(self, safetensors_path: str | os.PathLike, config: dict, device: str = "cpu", remac: dict | None = None):
        self.torch = torch
        self.device = torch.device(device)
        self.module = Synthesis(BaseConfig.from_dict(config))
        self.remac = remac is not None
        if self.remac:  # the REMAC ref-decoder, built around a base g_s
            self.module = RefSynthesis(self.module.layers, RemacConfig.from_dict(remac))
        state = load_file(str(Path(safetensors_path)))
        prefix = "g_s."
        self.module.load_state_dict(
            {k[len(prefix) :]: v.float() for k, v in state.items() if k.startswith(prefix)}  # stored as float16
        )
        self.module.eval().to(self.device)

    def __call__(self, y_hat: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        t = self.torch
        with t.no_grad():
            y = t.from_numpy(np.ascontiguousarray(y_hat, np.float32))[None].to(self.device)
            if self.remac:
                x = self.module(y, t.from_numpy(reference_input(reference))[None].to(self.device))
            else:
                x = self.module(y)
        return x[0].float().cpu().numpy()
