"""Export the ground synthesis g_s to ONNX (dynamic latent size), for ONNX Runtime / TensorRT.

Uses the TorchScript-based exporter (``dynamo=False``): it needs no onnxscript
and gives a plain graph of Conv / DepthToSpace / Abs / Mul / Add / LeakyRelu
that every runtime supports. The graph is checked with onnx.checker and
compared against PyTorch on a random latent before it is written.

Example:
    >>> import tempfile, torch
    >>> from pymars.train.codec.network import BaseConfig, Synthesis
    >>> g = Synthesis(BaseConfig(latent=8, synthesis=(8, 8, 8, 8)))
    >>> with torch.no_grad():  # shipped weights are float16 values (see round_to_fp16)
    ...     for t in g.state_dict().values(): _ = t.copy_(t.half().float())
    >>> p = tempfile.mktemp(suffix=".onnx")
    >>> export_synthesis(g, 8, p) < 1e-4
    True
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from pymars.clio import atomic_path

OPSET = 17


def store_initializers_fp16(model) -> None:
    """Store float32 weights as float16 plus a Cast back to float32 (halves the file).

    ONNX Runtime folds the Casts when the session is created, so inference
    still runs in float32 with the (already fp16-representable) weights.

    Example:
        >>> import onnx
        >>> from onnx import helper, TensorProto, numpy_helper
        >>> w = numpy_helper.from_array(np.ones((1, 1), np.float32), "w")
        >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])], [w])
        >>> m = helper.make_model(g); store_initializers_fp16(m)
        >>> [n.op_type for n in m.graph.node]
        ['Cast', 'MatMul']
    """
    from onnx import TensorProto, helper, numpy_helper

    casts, keep = [], []
    for init in model.graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            keep.append(init)
            continue
        arr = numpy_helper.to_array(init)
        half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16")
        keep.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def export_synthesis(synthesis: torch.nn.Module, latent: int, path: str | os.PathLike, reference: bool = False) -> float:
    """Write ``synthesis`` as ONNX with input ``y_hat`` (1, M, h, w); return the max |ONNX - PyTorch|.

    ``reference``: the REMAC ref-decoder, with a second input ``reference``
    (1, 3, 256, 256) in [0, 1] (pymars.train.remac.model.RefSynthesis).
    The weights must already be float16-representable (see
    pymars.train.export.bundle_writer.round_to_fp16) so that the half-size file is exact.
    """
    import onnx
    import onnxruntime as ort

    synthesis = synthesis.eval().cpu()
    gen = torch.Generator().manual_seed(0)
    ref_example = torch.rand(1, 3, 256, 256, generator=gen)
    example = (torch.randn(1, latent, 4, 5, generator=gen),) + ((ref_example,) if reference else ())
    names = ["y_hat"] + (["reference"] if reference else [])
    with atomic_path(path) as tmp:
        tmp = str(tmp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                synthesis,
                example,
                tmp,
                input_names=names,
                output_names=["x_hat"],
                dynamic_axes={"y_hat": {2: "hy", 3: "wy"}, "x_hat": {2: "height", 3: "width"}},
                opset_version=OPSET,
                dynamo=False,
            )
        graph = onnx.load(tmp)
        store_initializers_fp16(graph)
        onnx.checker.check_model(graph)
        onnx.save(graph, tmp)
        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        err = 0.0
        # Check a latent size other than the traced one (the graph must not have frozen it).
        for hy, wy in ((6, 3), (16, 16)):
            inputs = (torch.randn(1, latent, hy, wy, generator=gen),) + ((torch.rand(1, 3, 256, 256, generator=gen),) if reference else ())
            with torch.no_grad():
                ref = synthesis(*inputs).numpy()
            got = sess.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
            err = max(err, float(np.abs(ref - got).max()))
    return err
