"""Export the ground synthesis g_s to ONNX (dynamic latent size), for ONNX Runtime / TensorRT.

Uses the TorchScript-based exporter (``dynamo=False``): it needs no onnxscript
and gives a plain graph of Conv / DepthToSpace / Abs / Mul / Add / LeakyRelu
that every runtime supports. The graph is checked with onnx.checker and
compared against PyTorch on a random latent before it is written.

Example:
    >>> import tempfile, torch
    >>> from pymars.models.codec import BaseConfig, Synthesis
    >>> g = Synthesis(BaseConfig(latent=8, synthesis=(8, 8, 8, 8)))
    >>> p = tempfile.mktemp(suffix=".onnx")
    >>> export_synthesis(g, 8, p) < 1e-4
    True
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import torch

OPSET = 17


def export_synthesis(synthesis: torch.nn.Module, latent: int, path: str | os.PathLike) -> float:
    """Write ``synthesis`` as ONNX with input ``y_hat`` (1, M, h, w); return the max |ONNX - PyTorch|."""
    import onnx
    import onnxruntime as ort

    synthesis = synthesis.eval().cpu()
    example = torch.randn(1, latent, 4, 5)
    tmp = str(path) + ".tmp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            synthesis,
            (example,),
            tmp,
            input_names=["y_hat"],
            output_names=["x_hat"],
            dynamic_axes={"y_hat": {2: "hy", 3: "wy"}, "x_hat": {2: "height", 3: "width"}},
            opset_version=OPSET,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(tmp))
    sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    y = torch.randn(1, latent, 6, 3)
    with torch.no_grad():
        ref = synthesis(y).numpy()
    got = sess.run(None, {"y_hat": y.numpy()})[0]
    err = float(np.abs(ref - got).max())
    os.replace(tmp, path)
    return err
