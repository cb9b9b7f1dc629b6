"""Whole-image enhancement with ONNX Runtime (no PyTorch): tiling, classes, matching, MarsQE's two stages.

What it is for: ``pymars enhance IN -o OUT`` and the bench. An enhancer is a
weights folder (pymars/weights/enhance-<name>/) with ``model.json`` and ONNX
graphs:

* AR-CNN / DnCNN: ``model.onnx`` (compressed image -> enhanced image);
* MarsQE / MarsQE-lite: ``main.onnx`` (one 128x128 patch with a margin, its raw
  and compressed reference -> ``I_enh`` and SAM features) and, for the full
  model, ``post.onnx`` (input, ``I_enh``, features, class map -> ``I+_enh``),
  plus the shared patch classifier (pymars/weights/enhance-classifier) and the
  reference dictionary (rebuilt from ../shared by its recipe, or given as an
  .npz built by ``pymars enhance-train dictionary``).

Images of any size are processed window by window (:func:`tiled`): every
window carries a context margin that is thrown away and neighbouring windows
overlap by ``2 * blend`` pixels where their outputs are cross-faded, so there
is no seam. For a purely convolutional net whose receptive-field radius is
at most the margin, the tiled result equals a single pass over the whole
image (tests/test_enhance.py checks it); for MarsQE, whose patches use
different references and whose post network attends within a window, the
cross-fade removes the seams.

What it must not do: import torch, or write anything (the CLI writes
atomically).

Example:
    >>> import numpy as np
    >>> img = np.random.default_rng(0).random((3, 50, 70)).astype(np.float32)
    >>> out = tiled(lambda y0, y1, x0, x1, core: img[:, y0:y1, x0:x1] * 2, (50, 70), 3, tile=32, margin=4, blend=4)
    >>> bool(np.allclose(out, img * 2))
    True
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from pymars.enhance.classes import PATCH, PatchClassifier
from pymars.enhance.patches import patch_grid
from pymars.enhance.training import load_enhancer

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
CLASSIFIER = WEIGHTS / "enhance-classifier"
#: Gray input: the output keeps its input's mean over boxes of this side (keep_level).
GRAY_LEVEL_BOX = 8


def _ramp(n: int, start: int, stop: int, lo_open: bool, hi_open: bool, blend: int) -> np.ndarray:
    """1-D cross-fade weights of a window's used span [start, stop) of an axis of length n."""
    pos = np.arange(start, stop, dtype=np.float64) + 0.5
    w = np.ones(stop - start)
    if blend > 0:
        if lo_open:
            w = np.minimum(w, (pos - start) / (2 * blend))
        if hi_open:
            w = np.minimum(w, (stop - pos) / (2 * blend))
    return w


def tiled(fn: Callable, shape: tuple[int, int], channels: int, tile: int = 256, margin: int = 16, blend: int = 8,
          multiple: int = 1, progress: bool = False, desc: str = "windows") -> np.ndarray:
    """Apply ``fn(y0, y1, x0, x1, core) -> (channels, y1-y0, x1-x0)`` window by window; blend into (channels, H, W).

    Cores are the ``tile`` x ``tile`` squares of a grid from the origin;
    ``core = (cy, cx)`` is the core's top-left corner. The used span of a
    window is its core grown by ``blend`` (cross-faded with its neighbours);
    the window adds ``margin`` of context on top, rounded outwards to a
    multiple of ``multiple`` and clipped to the image (at the image border
    there is neither context nor fade). ``H`` and ``W`` must be multiples of
    ``multiple``.
    """
    from tqdm import tqdm

    h, w = shape
    if h % multiple or w % multiple:
        raise ValueError(f"image {h}x{w} must be padded to a multiple of {multiple}")
    acc = np.zeros((channels, h, w), np.float64)
    wsum = np.zeros((h, w), np.float64)
    cores = [(cy, cx) for cy in range(0, h, tile) for cx in range(0, w, tile)]

    def span(c: int, n: int):
        u0, u1 = max(0, c - blend), min(n, c + tile + blend)
        w0 = max(0, (u0 - margin) // multiple * multiple)
        w1 = min(n, -(-(u1 + margin) // multiple) * multiple)
        return u0, u1, w0, w1

    for cy, cx in tqdm(cores, desc=desc, unit="win", disable=not progress):
        uy0, uy1, y0, y1 = span(cy, h)
        ux0, ux1, x0, x1 = span(cx, w)
        out = np.asarray(fn(y0, y1, x0, x1, (cy, cx)), np.float64)
        if out.shape != (channels, y1 - y0, x1 - x0):
            raise ValueError(f"window function returned {out.shape}, expected {(channels, y1 - y0, x1 - x0)}")
        wy = _ramp(h, uy0, uy1, uy0 > 0, uy1 < h, blend)
        wx = _ramp(w, ux0, ux1, ux0 > 0, ux1 < w, blend)
        weight = wy[:, None] * wx[None, :]
        acc[:, uy0:uy1, ux0:ux1] += out[:, uy0 - y0:uy1 - y0, ux0 - x0:ux1 - x0] * weight
        wsum[uy0:uy1, ux0:ux1] += weight
    return (acc / wsum).astype(np.float32)


def session(path: str | os.PathLike, threads: int | None = None, providers=None):
    """An ONNX Runtime session (``threads`` intra-op threads; None = runtime default).

    ``providers``: execution providers by short or full name (``"CUDA,CPU"``;
    pymars.ground.synthesis.onnx_providers, which refuses a missing one in one
    line); None: the CPU.

    Example:
        >>> [i.name for i in session(WEIGHTS / "enhance-arcnn-jpeg30" / "model.onnx", 1).get_inputs()]
        ['comp']
    """
    import onnxruntime as ort

    from pymars.ground.synthesis import onnx_providers

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=onnx_providers(providers))


def _chw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None].astype(np.float32) * (1 / 255))


def load_classifier(folder: str | os.PathLike = CLASSIFIER):
    """The shipped patch classifier (pymars.enhance.classes.PatchClassifier; NumPy + the C++ LBP).

    Example:
        >>> clf = load_classifier()
        >>> clf(np.zeros((1, 128, 128, 3), np.uint8)).shape
        (1,)
    """

    path = Path(folder) / "classifier.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: patch classifier not found")
    return PatchClassifier.from_json(json.loads(path.read_text()))


def _as_rgb(image: np.ndarray) -> tuple[np.ndarray, bool]:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"the enhancer works on 8-bit images, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, 2), True
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {image.shape}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image {image.shape[0]}x{image.shape[1]} is too small to enhance (8 px at least)")
    return image, False


def box_mean(img: np.ndarray, size: int) -> np.ndarray:
    """Mean of each pixel's size x size neighbourhood (mirrored at the edges), float64, same shape.

    Example:
        >>> box_mean(np.arange(12.0).reshape(3, 4), 1).tolist() == np.arange(12.0).reshape(3, 4).tolist()
        True
        >>> float(box_mean(np.full((5, 7), 3.0), 4)[2, 3])
        3.0
    """
    img = np.asarray(img, np.float64)
    lo, hi = size // 2, size - 1 - size // 2
    out = np.pad(img, ((lo, hi), (lo, hi)), mode="symmetric")
    for axis in (0, 1):  # separable: a running sum along each axis
        c = np.cumsum(out, axis=axis)
        c = np.concatenate([np.zeros_like(c.take([0], axis=axis)), c], axis=axis)
        n = c.shape[axis] - size
        out = (c.take(range(size, size + n), axis=axis) - c.take(range(0, n), axis=axis)) / size
    return out


def keep_level(enhanced: np.ndarray, original: np.ndarray, size: int = GRAY_LEVEL_BOX) -> np.ndarray:
    """``enhanced`` (HxW, float, 0..255) moved so that its local mean is ``original``'s: detail kept, level not.

    Why, for gray images only: the enhancers were trained on colour images. On a
    gray image (three equal channels) they still restore detail, but shift the
    level by 2-4 grey levels (dev Navcam tiles, JPEG QF 30), which costs more than
    the detail gains: AR-CNN and MarsQE made such images worse. The compressed
    image's own 8x8 means are a better estimate of the level (JPEG and pymars keep
    block means to within their coarsest step), so the output keeps them. Colour
    images do not get this: there the nets rightly correct the low-frequency
    colour errors of 4:2:0 chroma (locking the level costs 0.1-0.2 dB on them).

    Example:
        >>> orig = np.full((16, 16), 100.0); enh = orig - 3.0; enh[8, 8] += 10
        >>> out = keep_level(enh, orig)
        >>> round(float(out.mean()), 6), round(float(out[8, 8] - out[0, 0]), 1) > 5
        (100.0, True)
    """
    return enhanced + box_mean(original, size) - box_mean(enhanced, size)


def _to_uint8(chw: np.ndarray, gray_input: np.ndarray | None) -> np.ndarray:
    if gray_input is not None:  # the nets are RGB: a gray image went in as three equal channels
        gray = keep_level(chw.astype(np.float64).mean(0) * 255.0, gray_input)
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.clip(np.rint(chw * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0))


class TorchGraph:
    """The PyTorch twin of an ONNX session (same ``run(None, feeds)`` call), for the ONNX-vs-PyTorch check."""

    input_names = ("comp", "ref_raw", "ref_comp")

    def __init__(self, module, outputs: int):
        self.module, self.outputs = module, outputs

    def run(self, _names, feeds: dict):
        import torch

        with torch.no_grad():
            out = self.module(*(torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()))
        out = out if isinstance(out, tuple) else (out,)
        return [o.numpy() for o in out]


class Enhancer:
    """A shipped enhancer (weights folder) ready to run on whole images with ONNX Runtime.

    ``dictionary`` (MarsQE only): a pymars.enhance.dictionary.Dictionary, an
    .npz path, or None to rebuild the shipped recipe from ../shared.
    ``backend="torch"`` runs the same pipeline with the PyTorch modules
    loaded from ``model.safetensors`` (needs torch; for checks only).
    ``providers``: ONNX Runtime execution providers (``"CUDA,CPU"``; None: the CPU).
    """

    def __init__(self, folder: str | os.PathLike, dictionary=None, threads: int | None = None,
                 classifier=None, backend: str = "onnx", providers=None):
        folder = Path(folder)
        if not (folder / "model.json").is_file():
            raise FileNotFoundError(f"{folder}: not an enhancer weights folder (no model.json)")
        if backend not in ("onnx", "torch"):
            raise ValueError(f"backend must be 'onnx' or 'torch', not {backend!r}")
        self.folder = folder
        self.meta = json.loads((folder / "model.json").read_text())
        self.kind = self.meta["kind"]
        self.threads = threads
        net = None
        if backend == "torch":

            net = load_enhancer(folder)[0]
        if self.kind in ("arcnn", "dncnn"):
            self.net = session(folder / "model.onnx", threads, providers) if net is None else TorchGraph(net, 1)
            return
        from pymars.enhance.codecs import compress
        from pymars.enhance.dictionary import Dictionary, from_recipe

        if net is None:
            self.main = session(folder / "main.onnx", threads, providers)
            self.post = session(folder / "post.onnx", threads, providers) if (folder / "post.onnx").is_file() else None
        else:
            from pymars.enhance.export import _Main, _Post

            self.main = TorchGraph(_Main(net), 2)
            self.post = TorchGraph(_Post(net), 1) if net.post_enabled else None
        self.classify = classifier or load_classifier()
        if dictionary is None:
            dictionary = from_recipe(self.meta["dictionary"])
        elif not isinstance(dictionary, Dictionary):
            dictionary = Dictionary.load(dictionary)
        if dictionary.histograms is None:
            spec = self.meta.get("reference_setting") or self.meta["setting"]
            if "," in spec:
                raise ValueError(f"{folder}: a blind MarsQE needs a reference_setting in model.json")
            dictionary.compress(lambda p: compress(p, spec)[0])
        self.dictionary = dictionary

    # -- plain convolutional enhancers ------------------------------------------------------------

    def _plain(self, comp: np.ndarray, progress: bool) -> np.ndarray:
        x = _chw(comp)[0]
        h, w = comp.shape[:2]

        def fn(y0, y1, x0, x1, core):
            return self.net.run(None, {"comp": x[None, :, y0:y1, x0:x1]})[0][0]

        return tiled(fn, (h, w), 3, tile=256, margin=self.meta.get("margin", 16), blend=8, progress=progress,
                     desc="enhance")

    # -- MarsQE -----------------------------------------------------------------------------------

    def patch_classes_and_refs(self, padded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per 128x128 patch of a padded compressed image: class (classifier) and Eq. 4 reference index."""

        grid = patch_grid(padded)
        rows, cols = grid.shape[:2]
        flat = grid.reshape(-1, PATCH, PATCH, 3)
        cls = np.asarray(self.classify(flat))
        refs = np.array([self.dictionary.match(p, int(k)) for p, k in zip(flat, cls)])
        return cls.reshape(rows, cols), refs.reshape(rows, cols)

    def _marsqe(self, comp: np.ndarray, progress: bool) -> np.ndarray:
        h, w = comp.shape[:2]
        ph, pw = -(-h // PATCH) * PATCH, -(-w // PATCH) * PATCH
        # Edge replication to whole patches: the pad is cut off at the end.
        padded = np.pad(comp, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
        cls, refs = self.patch_classes_and_refs(padded)
        x = _chw(padded)[0]
        class_map = np.repeat(np.repeat(cls, PATCH, 0), PATCH, 1).astype(np.float32)[None]
        d = self.dictionary
        ref_raw = [_chw(p) for p in d.raw]
        ref_comp = [_chw(p) for p in d.compressed]
        width = self.meta["width"]
        margin = self.meta.get("margin", 8)
        # The no-reference ablation's graph has no reference inputs (ONNX drops unused inputs).
        main_inputs = self.main.input_names if isinstance(self.main, TorchGraph) else \
            {i.name for i in self.main.get_inputs()}

        def main_fn(y0, y1, x0, x1, core):
            r = int(refs[core[0] // PATCH, core[1] // PATCH])
            feeds = {"comp": x[None, :, y0:y1, x0:x1], "ref_raw": ref_raw[r], "ref_comp": ref_comp[r]}
            enh, feat = self.main.run(None, {k: v for k, v in feeds.items() if k in main_inputs})
            return np.concatenate([enh[0], feat[0]], 0)

        both = tiled(main_fn, (ph, pw), 3 + width, tile=PATCH, margin=margin, blend=8, multiple=16,
                     progress=progress, desc="MarsQE patches")
        enh, feat = both[:3], both[3:]
        if self.post is None:
            return enh[:, :h, :w]

        def post_fn(y0, y1, x0, x1, core):
            return self.post.run(None, {"comp": x[None, :, y0:y1, x0:x1], "enh": enh[None, :, y0:y1, x0:x1],
                                        "feat": feat[None, :, y0:y1, x0:x1],
                                        "classes": class_map[None, :, y0:y1, x0:x1]})[0][0]

        plus = tiled(post_fn, (ph, pw), 3, tile=256, margin=margin, blend=16, multiple=16, progress=progress,
                     desc="post-enhancement")
        return plus[:, :h, :w]

    def enhance_float(self, image: np.ndarray, progress: bool = False) -> np.ndarray:
        """(3, H, W) float32 output in [0, 1] units, unclipped (what the ONNX-vs-PyTorch checks compare)."""
        rgb, _ = _as_rgb(image)
        return self._plain(rgb, progress) if self.kind in ("arcnn", "dncnn") else self._marsqe(rgb, progress)

    def enhance(self, image: np.ndarray, progress: bool = False) -> np.ndarray:
        """The enhanced uint8 image, same shape as ``image`` (HxW or HxWx3 uint8).

        Example:
            >>> enh = Enhancer(WEIGHTS / "enhance-arcnn-jpeg30", threads=1)
            >>> enh.enhance(np.full((40, 60, 3), 128, np.uint8)).shape
            (40, 60, 3)
        """
        rgb, gray = _as_rgb(image)
        out = self._plain(rgb, progress) if self.kind in ("arcnn", "dncnn") else self._marsqe(rgb, progress)
        return _to_uint8(out, np.asarray(image) if gray else None)
