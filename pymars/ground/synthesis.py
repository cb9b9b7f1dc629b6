"""Synthesis backends: y_hat (M x hy x wy) -> RGB tile in [0, 1].

The reconstruction path needs no bit-exactness (DESIGN.md), so it runs in
float wherever is convenient: ONNX Runtime by default (no PyTorch needed to
decode), PyTorch as a second path (and the one used in training). Both take
and return NumPy arrays so the decoder does not care which one runs.

Example:
    >>> import numpy as np
    >>> class Zero:
    ...     def __call__(self, y): return np.zeros((3, y.shape[1] * 16, y.shape[2] * 16), np.float32)
    >>> Zero()(np.zeros((8, 2, 3), np.float32)).shape
    (3, 32, 48)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class OnnxSynthesis:
    """g_s through ONNX Runtime (CPU by default; CUDA/TensorRT providers if asked and present).

    Example:
        >>> from pymars.bundle import default_bundle
        >>> b = default_bundle()
        >>> s = OnnxSynthesis(b.synthesis_onnx) if b.available else None
        >>> s is None or s(np.zeros((b.latent_channels, 1, 1), np.float32)).shape == (3, 16, 16)
        True
    """

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None, threads: int = 0):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers or ["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        # A REMAC ref-decoder has a second input: the decoder reference tile.
        self.reference_name = self.session.get_inputs()[1].name if len(self.session.get_inputs()) > 1 else None

    def __call__(self, y_hat: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """``reference``: (3, 256, 256) float32 in [0, 1] for a ref-decoder (None: no reference, zeros)."""
        feeds = {self.input_name: np.ascontiguousarray(y_hat[None], np.float32)}
        if self.reference_name:
            feeds[self.reference_name] = _reference_input(reference)[None]
        return self.session.run(None, feeds)[0][0]


def _reference_input(reference: np.ndarray | None) -> np.ndarray:
    if reference is None:
        return np.zeros((3, 256, 256), np.float32)
    return np.ascontiguousarray(reference, np.float32)


class TorchSynthesis:
    """g_s through PyTorch, from the bundle's safetensors (imports torch lazily).

    Example:
        >>> from pymars.bundle import default_bundle
        >>> b = default_bundle()
        >>> s = TorchSynthesis(b.safetensors, b.config) if b.available else None
        >>> s is None or s(np.zeros((b.latent_channels, 1, 1), np.float32)).shape == (3, 16, 16)
        True
    """

    def __init__(self, safetensors_path: str | os.PathLike, config: dict, device: str = "cpu", remac: dict | None = None):
        import torch
        from safetensors.torch import load_file

        from ..models.codec import BaseConfig, Synthesis

        self.torch = torch
        self.device = torch.device(device)
        self.module = Synthesis(BaseConfig.from_dict(config))
        self.remac = remac is not None
        if self.remac:  # the REMAC ref-decoder, built around a base g_s
            from ..remac.model import RefSynthesis, RemacConfig

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
                x = self.module(y, t.from_numpy(_reference_input(reference))[None].to(self.device))
            else:
                x = self.module(y)
        return x[0].float().cpu().numpy()
