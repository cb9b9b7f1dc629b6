"""Whole-image enhancement with ONNX Runtime (no PyTorch): tiling, classes, matching, MarsQE's two stages.

What it is for: ``pymars enhance IN -o OUT`` and the bench. An enhancer is a
weights folder (pymars/weights/enhance-<name>/) with ``model.json`` and ONNX
graphs:

* AR-CNN / DnCNN / the DnCNN cascade: ``model.onnx`` (compressed image -> enhanced image);
* an ensemble: no graph, ``model.json`` names other folders and the weights of
  the mean of their outputs;
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
    ``multiple``. :func:`tiled_many` is the same over several images, with
    windows batched per call.

    Example:
        >>> x = np.arange(2 * 40 * 50, dtype=np.float32).reshape(2, 40, 50)
        >>> out = tiled(lambda y0, y1, x0, x1, c: x[:, y0:y1, x0:x1], (40, 50), 2, tile=16, margin=4)
        >>> bool(np.allclose(out, x, atol=1e-3))
        True
    """
    return tiled_many(lambda ws: np.stack([fn(*w[1:]) for w in ws]), [tuple(shape)], channels, tile=tile,
                      margin=margin, blend=blend, multiple=multiple, progress=progress, desc=desc)[0]


def tiled_many(fn: Callable, shapes: list[tuple[int, int]], channels: int, tile: int = 256, margin: int = 16,
               blend: int = 8, multiple: int = 1, progress: bool = False, desc: str = "windows",
               batch: int = 1) -> list[np.ndarray]:
    """:func:`tiled` over several images at once: up to ``batch`` windows of equal size share one call.

    ``fn([(i, y0, y1, x0, x1, core), ...]) -> (n, channels, h, w)``: the
    outputs of n windows of one size, ``i`` the index of the image in
    ``shapes`` (one inference call for many windows is what a GPU wants; on a
    CPU it brings nothing, docs/ground-segment.md). Returns one (channels, H, W)
    float32 array per shape, the same as :func:`tiled` on each image (to the
    runtime's float rounding of batched calls).

    Example:
        >>> xs = [np.ones((1, 20, 30), np.float32), np.zeros((1, 40, 16), np.float32)]
        >>> out = tiled_many(lambda ws: np.stack([xs[i][:, a:b, c:d] for i, a, b, c, d, _ in ws]),
        ...                  [(20, 30), (40, 16)], 1, tile=16, margin=4, batch=8)
        >>> [o.shape for o in out], float(out[0].min()), float(out[1].max())
        ([(1, 20, 30), (1, 40, 16)], 1.0, 0.0)
    """
    from tqdm import tqdm

    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    acc, wsum, jobs = [], [], []
    for i, (h, w) in enumerate(shapes):
        if h % multiple or w % multiple:
            raise ValueError(f"image {h}x{w} must be padded to a multiple of {multiple}")
        acc.append(np.zeros((channels, h, w), np.float64))
        wsum.append(np.zeros((h, w), np.float64))

        def span(c: int, n: int):
            u0, u1 = max(0, c - blend), min(n, c + tile + blend)
            w0 = max(0, (u0 - margin) // multiple * multiple)
            w1 = min(n, -(-(u1 + margin) // multiple) * multiple)
            return u0, u1, w0, w1

        for cy in range(0, h, tile):
            for cx in range(0, w, tile):
                jobs.append((i, span(cy, h), span(cx, w), (cy, cx)))

    def add(job, out) -> None:
        i, (uy0, uy1, y0, y1), (ux0, ux1, x0, x1), _ = job
        h, w = shapes[i]
        out = np.asarray(out, np.float64)
        if out.shape != (channels, y1 - y0, x1 - x0):
            raise ValueError(f"window function returned {out.shape}, expected {(channels, y1 - y0, x1 - x0)}")
        wy = _ramp(h, uy0, uy1, uy0 > 0, uy1 < h, blend)
        wx = _ramp(w, ux0, ux1, ux0 > 0, ux1 < w, blend)
        weight = wy[:, None] * wx[None, :]
        acc[i][:, uy0:uy1, ux0:ux1] += out[:, uy0 - y0:uy1 - y0, ux0 - x0:ux1 - x0] * weight
        wsum[i][uy0:uy1, ux0:ux1] += weight

    # Windows of one size (the interior ones, nearly all of them) go together, in grid order; with
    # batch 1 every window is its own call, in grid order (the order the blend sums them in).
    by_size: dict[tuple[int, int], list] = {}
    for job in jobs:
        by_size.setdefault((job[1][3] - job[1][2], job[2][3] - job[2][2]), []).append(job)
    with tqdm(total=len(jobs), desc=desc, unit="win", disable=not progress) as bar:
        for group in (by_size.values() if batch > 1 else [jobs]):
            for k in range(0, len(group), batch):
                part = group[k:k + batch]
                outs = np.asarray(fn([(j[0], j[1][2], j[1][3], j[2][2], j[2][3], j[3]) for j in part]))
                if outs.ndim != 4 or len(outs) != len(part):
                    raise ValueError(f"batched window function returned {outs.shape} for {len(part)} windows")
                for job, out in zip(part, outs):
                    add(job, out)
                bar.update(len(part))
    return [(a / s).astype(np.float32) for a, s in zip(acc, wsum)]


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


def _to_uint8(chw: np.ndarray, gray_input: np.ndarray | None, gray_model: bool = False) -> np.ndarray:
    if gray_input is not None:  # the nets are RGB: a gray image went in as three equal channels
        gray = chw.astype(np.float64).mean(0) * 255.0
        if not gray_model:  # a colour-trained net shifts a gray image's level (keep_level); a gray one does not
            gray = keep_level(gray, gray_input)
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
    ``batch``: windows per inference call (1: one call per window; a GPU
    provider wants 8-32; on this CPU batching brings nothing, docs/ground-segment.md).
    """

    def __init__(self, folder: str | os.PathLike, dictionary=None, threads: int | None = None,
                 classifier=None, backend: str = "onnx", providers=None, batch: int = 1):
        folder = Path(folder)
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch (windows per inference call) must be an integer >= 1, got {batch!r}")
        self.batch = batch
        if not (folder / "model.json").is_file():
            raise FileNotFoundError(f"{folder}: not an enhancer weights folder (no model.json)")
        if backend not in ("onnx", "torch"):
            raise ValueError(f"backend must be 'onnx' or 'torch', not {backend!r}")
        self.folder = folder
        self.meta = json.loads((folder / "model.json").read_text())
        self.kind = self.meta["kind"]
        # Trained on gray images (enhance-train cache --gray): gray input only, no keep_level.
        self.gray = self.meta.get("input") == "gray"
        if self.kind == "ensemble":
            self._ensemble(dictionary, threads, classifier, backend, providers, batch)
            return
        # Plain nets (AR-CNN, DnCNN, the DnCNN cascade) are one graph on the compressed image alone.
        self.plain = (folder / "model.onnx").is_file()
        self.threads = threads
        net = None
        if backend == "torch":

            net = load_enhancer(folder)[0]
        if self.plain:
            self.net = session(folder / "model.onnx", threads, providers) if net is None else TorchGraph(net, 1)
            return
        from pymars.enhance.codecs import compressed_like_training
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
        if self.gray:  # its references were gray at training (patches.build_cache): the same here
            dictionary = dictionary.as_gray()
        if dictionary.histograms is None:
            spec = self.meta.get("reference_setting") or self.meta["setting"]
            if "," in spec:
                raise ValueError(f"{folder}: a blind MarsQE needs a reference_setting in model.json")
            dictionary.compress(lambda p: compressed_like_training(p, spec, self.gray))
        self.dictionary = dictionary

    # -- plain convolutional enhancers ------------------------------------------------------------

    def _plain(self, comps: list[np.ndarray], progress: bool) -> list[np.ndarray]:
        # A net that downsamples (the U-Net: sides multiples of 8) gets images edge-replicated to whole multiples
        # and windows on that grid; the pad is cut off at the end, as MarsQE's is.
        m = int(self.meta.get("multiple", 1))
        sizes = [c.shape[:2] for c in comps]
        padded = [(-(-h // m) * m, -(-w // m) * m) for h, w in sizes]
        xs = [_chw(c if (ph, pw) == (h, w) else np.pad(c, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge"))[0]
              for c, (h, w), (ph, pw) in zip(comps, sizes, padded)]

        def fn(ws):
            return self.net.run(None, {"comp": np.stack([xs[i][:, y0:y1, x0:x1] for i, y0, y1, x0, x1, _ in ws])})[0]

        # A wide net reads far (the U-Net 76 pixels): larger cores keep its context margin a smaller share.
        tile = int(self.meta.get("tile", 256))
        out = tiled_many(fn, padded, 3, tile=tile, margin=self.meta.get("margin", 16), blend=8, multiple=m,
                         progress=progress, desc="enhance", batch=self.batch)
        return [o[:, :h, :w] for o, (h, w) in zip(out, sizes)]

    # -- MarsQE -----------------------------------------------------------------------------------

    def patch_classes_and_refs(self, padded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per 128x128 patch of a padded compressed image: class (classifier) and Eq. 4 reference index."""

        grid = patch_grid(padded)
        rows, cols = grid.shape[:2]
        flat = grid.reshape(-1, PATCH, PATCH, 3)
        cls = np.asarray(self.classify(flat))
        refs = np.array([self.dictionary.match(p, int(k)) for p, k in zip(flat, cls)])
        return cls.reshape(rows, cols), refs.reshape(rows, cols)

    def _marsqe(self, comps: list[np.ndarray], progress: bool) -> list[np.ndarray]:
        sizes = [c.shape[:2] for c in comps]
        padded_sizes = [(-(-h // PATCH) * PATCH, -(-w // PATCH) * PATCH) for h, w in sizes]
        xs, refs, class_maps = [], [], []
        for comp, (ph, pw) in zip(comps, padded_sizes):
            h, w = comp.shape[:2]
            # Edge replication to whole patches: the pad is cut off at the end.
            padded = np.pad(comp, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
            cls, ref = self.patch_classes_and_refs(padded)
            xs.append(_chw(padded)[0])
            refs.append(ref)
            class_maps.append(np.repeat(np.repeat(cls, PATCH, 0), PATCH, 1).astype(np.float32)[None])
        d = self.dictionary
        ref_raw = [_chw(p)[0] for p in d.raw]
        ref_comp = [_chw(p)[0] for p in d.compressed]
        width = self.meta["width"]
        margin = self.meta.get("margin", 8)
        # The no-reference ablation's graph has no reference inputs (ONNX drops unused inputs).
        main_inputs = self.main.input_names if isinstance(self.main, TorchGraph) else \
            {i.name for i in self.main.get_inputs()}

        def main_fn(ws):
            r = [int(refs[i][core[0] // PATCH, core[1] // PATCH]) for i, _, _, _, _, core in ws]
            feeds = {"comp": np.stack([xs[i][:, y0:y1, x0:x1] for i, y0, y1, x0, x1, _ in ws]),
                     "ref_raw": np.stack([ref_raw[k] for k in r]), "ref_comp": np.stack([ref_comp[k] for k in r])}
            enh, feat = self.main.run(None, {k: v for k, v in feeds.items() if k in main_inputs})
            return np.concatenate([enh, feat], 1)

        both = tiled_many(main_fn, padded_sizes, 3 + width, tile=PATCH, margin=margin, blend=8, multiple=16,
                          progress=progress, desc="MarsQE patches", batch=self.batch)
        if self.post is None:
            return [b[:3, :h, :w] for b, (h, w) in zip(both, sizes)]
        enh = [b[:3] for b in both]
        feat = [b[3:] for b in both]

        def post_fn(ws):
            def cut(planes):
                return np.stack([planes[i][:, y0:y1, x0:x1] for i, y0, y1, x0, x1, _ in ws])

            return self.post.run(None, {"comp": cut(xs), "enh": cut(enh), "feat": cut(feat),
                                        "classes": cut(class_maps)})[0]

        plus = tiled_many(post_fn, padded_sizes, 3, tile=256, margin=margin, blend=16, multiple=16, progress=progress,
                          desc="post-enhancement", batch=self.batch)
        return [p[:, :h, :w] for p, (h, w) in zip(plus, sizes)]

    # -- ensembles ---------------------------------------------------------------------------------

    def _ensemble(self, dictionary, threads, classifier, backend, providers, batch) -> None:
        """An ``ensemble`` folder: a weighted mean of other shipped enhancers' outputs (model.json:
        ``members``, folder names beside it, and ``weights``). Nets trained apart err apart, so their
        mean is closer to the original than either (the pymars:50 pair: docs/enhance.md)."""
        members, weights = self.meta.get("members", []), self.meta.get("weights", [])
        if not members or len(members) != len(weights) or abs(sum(weights) - 1.0) > 1e-6:
            raise ValueError(f"{self.folder}: an ensemble needs members and as many weights summing to 1")
        self.weights = [float(w) for w in weights]
        self.members = [Enhancer(self.folder.parent / m, dictionary=dictionary, threads=threads,
                                 classifier=classifier, backend=backend, providers=providers, batch=batch)
                        for m in members]
        self.plain = False

    def _run(self, rgbs: list[np.ndarray], progress: bool) -> list[np.ndarray]:
        if self.kind == "ensemble":
            outs = [m._run(rgbs, progress) for m in self.members]
            return [sum(w * o[i] for w, o in zip(self.weights, outs)) for i in range(len(rgbs))]
        return self._plain(rgbs, progress) if self.plain else self._marsqe(rgbs, progress)

    def enhance_float(self, image: np.ndarray, progress: bool = False) -> np.ndarray:
        """(3, H, W) float32 output in [0, 1] units, unclipped (what the ONNX-vs-PyTorch checks compare)."""
        return self._run([_as_rgb(image)[0]], progress)[0]

    def enhance(self, image: np.ndarray, progress: bool = False) -> np.ndarray:
        """The enhanced uint8 image, same shape as ``image`` (HxW or HxWx3 uint8).

        Example:
            >>> enh = Enhancer(WEIGHTS / "enhance-arcnn-jpeg30", threads=1)
            >>> enh.enhance(np.full((40, 60, 3), 128, np.uint8)).shape
            (40, 60, 3)
        """
        return self.enhance_many([image], progress)[0]

    def enhance_many(self, images: list[np.ndarray], progress: bool = False) -> list[np.ndarray]:
        """:meth:`enhance` of several images; with ``batch`` > 1 their windows share inference calls.

        Example:
            >>> enh = Enhancer(WEIGHTS / "enhance-arcnn-jpeg30", threads=1, batch=4)
            >>> [o.shape for o in enh.enhance_many([np.full((40, 60, 3), 128, np.uint8), np.zeros((300, 20), np.uint8)])]
            [(40, 60, 3), (300, 20)]
        """
        pairs = [_as_rgb(im) for im in images]
        if self.gray and not all(gray for _, gray in pairs):
            raise ValueError(f"{self.folder.name} was trained on gray images and this image is RGB: use a colour "
                             "model (or --model auto, which picks by the image)")
        outs = self._run([rgb for rgb, _ in pairs], progress)
        return [_to_uint8(o, np.asarray(im) if gray else None, self.gray)
                for o, im, (_, gray) in zip(outs, images, pairs)]
