"""Synthesis backends: y_hat (M x hy x wy) -> RGB tile in [0, 1].

The reconstruction path needs no bit-exactness (DESIGN.md), so it runs in
float wherever is convenient: ONNX Runtime here (no PyTorch needed to decode).
Other backends are plug-ins registered under the entry-point group
``pymars.synthesis`` (pyproject.toml): the PyTorch one (``"torch"``) lives with
the training code it needs (:mod:`pymars.train.codec.torch_backend`), so this
module never imports PyTorch or training code; :func:`synthesis_backend` loads
a plug-in by name only when a caller asks for it. Every backend takes and
returns NumPy arrays, so the decoder does not care which one runs.

Example:
    >>> import numpy as np
    >>> class Zero:
    ...     def __call__(self, y): return np.zeros((3, y.shape[1] * 16, y.shape[2] * 16), np.float32)
    >>> Zero()(np.zeros((8, 2, 3), np.float32)).shape
    (3, 32, 48)
"""
from __future__ import annotations

import os

import numpy as np


class OnnxSynthesis:
    """g_s through ONNX Runtime (CPU by default; CUDA/TensorRT providers if asked and present).

    Example:
        >>> from pymars.bundles import open_bundle
        >>> b = open_bundle("base-v1")
        >>> OnnxSynthesis(b.synthesis_onnx)(np.zeros((b.latent_channels, 1, 1), np.float32)).shape
        (3, 16, 16)
    """

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None, threads: int = 0):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        # Checked here, not left to ONNX Runtime: it falls back to the CPU with a warning when a
        # provider is missing, and a GPU run silently on the CPU is the failure to report.
        self.providers = onnx_providers(providers)
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=self.providers)
        self.input_name = self.session.get_inputs()[0].name
        # A REMAC ref-decoder has a second input: the decoder reference tile.
        self.reference_name = self.session.get_inputs()[1].name if len(self.session.get_inputs()) > 1 else None

    def __call__(self, y_hat: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """``reference``: (3, 256, 256) float32 in [0, 1] for a ref-decoder (None: no reference, zeros)."""
        feeds = {self.input_name: np.ascontiguousarray(y_hat[None], np.float32)}
        if self.reference_name:
            feeds[self.reference_name] = reference_input(reference)[None]
        return self.session.run(None, feeds)[0][0]


#: Short provider names (``--providers CUDA,TensorRT,CPU``) -> ONNX Runtime's names.
PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
}


def onnx_providers(providers: str | list[str] | tuple[str, ...] | None = None) -> list[str]:
    """ONNX Runtime execution providers from short or full names, in order; each must be available here.

    ``providers``: ``"CUDA,CPU"``, ``["TensorRT", "CUDA"]`` or full names
    (``CUDAExecutionProvider``); None or empty: the CPU. A provider this
    onnxruntime build lacks raises a one-line ValueError naming the ones it has.

    Example:
        >>> onnx_providers("cpu"), onnx_providers(None)
        (['CPUExecutionProvider'], ['CPUExecutionProvider'])
        >>> onnx_providers("TPU")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown ONNX Runtime provider 'TPU': use CPU, CUDA, TensorRT, ... or a full name such as CUDAExecutionProvider
    """
    import onnxruntime as ort

    if isinstance(providers, str):
        providers = [p for p in (q.strip() for q in providers.split(",")) if p]
    if not providers:
        return ["CPUExecutionProvider"]
    known = set(PROVIDER_NAMES.values())
    available = ort.get_available_providers()
    out = []
    for name in providers:
        full = PROVIDER_NAMES.get(name.lower(), name if name in known or name.endswith("ExecutionProvider") else None)
        if full is None:
            raise ValueError(f"unknown ONNX Runtime provider {name!r}: use CPU, CUDA, TensorRT, ... or a full name "
                             "such as CUDAExecutionProvider")
        if full not in available:
            raise ValueError(f"ONNX Runtime provider {name} ({full}) is not available in this onnxruntime "
                             f"{ort.__version__}: available are {', '.join(available)}")
        if full not in out:
            out.append(full)
    return out


def reference_input(reference: np.ndarray | None) -> np.ndarray:
    """A ref-decoder's reference input: the decoded reference tile, or zeros when the tile has none.

    Example:
        >>> reference_input(None).shape, float(reference_input(None).max())
        ((3, 256, 256), 0.0)
    """
    if reference is None:
        return np.zeros((3, 256, 256), np.float32)
    return np.ascontiguousarray(reference, np.float32)


#: The entry-point group of synthesis plug-ins: name -> ``factory(bundle, threads)``.
PLUGIN_GROUP = "pymars.synthesis"


def synthesis_backend(bundle, backend: str = "onnx", threads: int = 0, providers=None):
    """The synthesis callable of ``bundle`` for ``backend`` (cached on the bundle, per threads and providers).

    ``"onnx"`` is built in; any other name is looked up in the ``pymars.synthesis``
    entry points (``"torch"``: installed with pymars, needs PyTorch).
    ``providers``: ONNX Runtime execution providers for ``"onnx"``
    (:func:`onnx_providers`; None: the CPU); other backends ignore them.

    Example:
        >>> from pymars.bundles import open_bundle
        >>> callable(synthesis_backend(open_bundle("base-v1")))
        True
        >>> synthesis_backend(open_bundle("base-v1"), "tpu")
        Traceback (most recent call last):
        ...
        ValueError: unknown synthesis backend 'tpu': use 'onnx' or one of the installed plug-ins ['torch']
    """
    if isinstance(providers, str):
        providers = providers.split(",")
    key = (backend, threads, tuple(providers) if providers and backend == "onnx" else None)
    cache = bundle.__dict__.setdefault("_synthesis", {})
    if key not in cache:
        if backend == "onnx":
            cache[key] = OnnxSynthesis(bundle.synthesis_onnx, providers=providers, threads=threads)
        else:
            from importlib.metadata import entry_points  # here: reading the metadata costs ~20 ms at start

            plugins = {e.name: e for e in entry_points(group=PLUGIN_GROUP)}
            if backend not in plugins:
                raise ValueError(f"unknown synthesis backend {backend!r}: use 'onnx' or one of the installed "
                                 f"plug-ins {sorted(plugins)}")
            cache[key] = plugins[backend].load()(bundle, threads)
    return cache[key]
