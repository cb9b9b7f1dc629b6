"""Latency and peak memory of pymars and the classic codecs, one thread, on Mars images.

What it measures (issue 4, item 3), every coder single-threaded:

=======================  =====================================================================
coder                    what is timed
=======================  =====================================================================
``pymars/encode``        ``pymars.encode(threads=1)``: the C++ rover encoder (flight code)
``pymars-torch/encode``  the same analysis in PyTorch eager: g_a, h_a, round, integer h_s
                         (fake-quantised), tile by tile, as bench/complexity.py runs it
``<classic>/encode``     every classic codec of the protocol registry (``CLASSIC_CODECS``)
``<classic>/decode``     ... and its decoder
``pymars-onnx/decode``   ``pymars.decode``: C++ entropy decoding + ONNX Runtime synthesis
                         (one intra-op thread)
``pymars-torch/decode``  the same with the PyTorch synthesis (``torch.set_num_threads(1)``)
=======================  =====================================================================

on two image sets:

* ``crops``: four native-resolution 448x1024 crops of development panoramas
  (``mars-rd-1`` §5 ``--speed``: per-call set-up does not dominate). The rule, so
  that anyone gets the same crops: walk the MarsScapes panoramas in sorted file
  order; in each, run the protocol's column rule with a 448-high, 1024-wide
  window (columns at x = 0, 1024, ...; walk down from y = 0, keep a window with
  fewer than 1 % pure-black pixels, else try y + 16); take the first kept window
  in raster order (y, x); stop after four panoramas that have one;
* ``tiles``: the protocol's development tiles (every 6th with ``--quick``).

Timings are seconds per megapixel: per (image, quality) the median over the
repeats (fast calls are repeated until 0.1 s are spent, so that a JPEG
figure is not one noisy sample), then the median over images and qualities. Each is also quoted as a
ratio to ``jpeg420`` (JPEG 4:2:0) measured in the same run, same role (encoders
against the JPEG encoder, decoders against the JPEG decoder), so a figure taken
on a loaded or slower machine still compares. Every coder gets one untimed call
first (library import, model load, ONNX session), so the timings are the
steady-state cost of one call, container writing and parsing included.

Peak resident memory: each coder runs once in a fresh Python process on the
first crop and reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` before the
call (the baseline: an idle interpreter with that coder's imports and the input
loaded) and after it. Model loading (weight blob, ONNX session, PyTorch module)
counts to the coder: on the rover the weights are part of the encoder's
footprint. The C API example ``build/c/encode_raw`` is also run under
``/usr/bin/time -v`` when present: its maximum RSS is the flight encoder's
real footprint (arena + weight blob + image + output buffer, no interpreter).

Results go to one JSON file (``bench/results/latency.json``, ``latency_quick.json``
with ``--quick``) and a table on stdout; ``bench/report.py`` puts them in the report.
The machine's load average is recorded: timings taken beside another job are
slower, but their ratios to JPEG much less so.

Run (single-threaded; ``nice`` it beside other work)::

    python bench/latency.py --quick          # about a minute on a free 2-core machine
    python bench/latency.py                  # 3 qualities x 3 repeats on crops, every tile
    python bench/latency.py --report bench/results/latency.json   # re-print the tables

Example:
    >>> import numpy as np
    >>> img = np.zeros((600, 1100, 3), np.uint8); img[40:] = 90
    >>> speed_windows(img)
    [(48, 0)]
"""
from __future__ import annotations

import os

# One thread everywhere: the BLAS/OpenMP pools must be pinned before NumPy or
# PyTorch load them, or "single thread" would only hold for the codecs.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import datetime
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def _import_pymars() -> None:
    """Import pymars, preferring an installed one (with its built C++ module) over the checkout.

    After ``pip install .`` the checkout's own ``pymars/`` has no ``_core``
    extension, so putting the checkout first on ``sys.path`` would hide the
    working installed package; a development checkout built in place is used
    when nothing is installed.
    """
    try:
        import pymars._core  # noqa: F401
        return
    except ImportError:
        for name in [m for m in sys.modules if m == "pymars" or m.startswith("pymars.")]:
            del sys.modules[name]
    sys.path.insert(0, str(REPO))
    import pymars._core  # noqa: F401


_import_pymars()
sys.path.insert(0, str(BENCH))

from pymars.evaluation.classic import CLASSIC_CODECS, DEFAULT_CODECS, Codec, library_versions  # noqa: E402
from pymars.evaluation.protocol import GROUPS, TILE, Tile, column_rule_windows, dev_tiles, group_files, load_8bit  # noqa: E402

CROP_HEIGHT, CROP_WIDTH = 448, 1024
N_CROPS = 4
#: Grid points timed (indices into each codec's 8-point grid): low, middle, high rate.
GRID_INDEX = (1, 4, 6)
#: --quick: the middle grid point only.
QUICK_GRID_INDEX = (4,)
REPEATS = {"crops": 3, "tiles": 1}
QUICK_REPEATS = {"crops": 1, "tiles": 1}
#: --quick: every QUICK_TILE_STEP-th development tile (the same subset as rd_classic --quick).
QUICK_TILE_STEP = 6
#: pymars' quality grid (the eight trained rate levels; as bench/rd_pymars.py).
PYMARS_QUALITIES = (1, 15, 29, 43, 58, 72, 86, 100)
ANCHOR = "jpeg420"
DEFAULT_OUT = REPO / "bench" / "results" / "latency.json"
QUICK_OUT = REPO / "bench" / "results" / "latency_quick.json"
ENCODE_RAW = REPO / "build" / "c" / "encode_raw"


# ---------------------------------------------------------------------------
# The images


def speed_windows(img: np.ndarray, height: int = CROP_HEIGHT, width: int = CROP_WIDTH) -> list[tuple[int, int]]:
    """Kept (y, x) windows of the column rule for a height x width window, in raster order.

    The protocol's rule (§2.3) with a rectangular window: columns at x = 0,
    width, ...; in each, walk down from y = 0, keep a window with fewer than
    1 % pure-black pixels and go on at y + height, else try y + 16.

    Example:
        >>> speed_windows(np.full((500, 2100), 7, np.uint8))
        [(0, 0), (0, 1024)]
    """
    return list(column_rule_windows(img, height, width))


def speed_crops(n: int = N_CROPS, root: Path | None = None) -> list[Tile]:
    """The ``n`` native-resolution 448x1024 speed crops (see the module docstring for the rule).

    Needs ``../shared/data/mars`` (or ``$PYMARS_SHARED``).

    Example:
        >>> from pymars.evaluation.protocol import mars_data_dir
        >>> mars_data_dir() is None or [c.tile_id for c in speed_crops(1)] == ["1162_2@y16x0"]
        True
    """
    crops = []
    for path in group_files("dev_marsscapes", root):
        img = load_8bit(path)
        windows = speed_windows(img)
        if not windows:
            continue
        y, x = windows[0]
        pixels = np.ascontiguousarray(img[y : y + CROP_HEIGHT, x : x + CROP_WIDTH])
        crops.append(Tile(f"{path.stem}@y{y}x{x}", "speed_marsscapes", path, y, x, pixels))
        if len(crops) == n:
            break
    if len(crops) < n:
        raise RuntimeError(f"only {len(crops)} panoramas have a {CROP_HEIGHT}x{CROP_WIDTH} window")
    return crops


def timing_tiles(quick: bool, root: Path | None = None) -> list[Tile]:
    """The development tiles of both groups (every 6th with ``quick``, like rd_classic --quick)."""
    tiles = []
    for group in GROUPS:
        t = dev_tiles(group, root)
        tiles += t[::QUICK_TILE_STEP] if quick else t
    return tiles


def grid_points(grid: Sequence, quick: bool) -> tuple:
    """The timed qualities of a codec's grid: low, middle and high (``quick``: the middle one).

    Example:
        >>> grid_points((5, 10, 20, 30, 45, 60, 75, 90), quick=False), grid_points(range(8), quick=True)
        ((10, 45, 75), (4,))
    """
    grid = tuple(grid)
    return tuple(dict.fromkeys(grid[i] for i in (QUICK_GRID_INDEX if quick else GRID_INDEX) if i < len(grid)))


# ---------------------------------------------------------------------------
# The coders


@dataclass(frozen=True)
class Coder:
    """One timed thing: ``key`` is ``"<name>/<role>"``; ``codec`` names the bytes it makes or reads."""

    key: str
    codec: str
    role: str
    label: str


def coder_list(classic: Sequence[str]) -> list[Coder]:
    """Every coder of a run, pymars first, in table order.

    Example:
        >>> [c.key for c in coder_list(["jpeg420"])]
        ['pymars/encode', 'pymars-torch/encode', 'jpeg420/encode', 'pymars-onnx/decode', 'pymars-torch/decode', 'jpeg420/decode']
    """
    enc = [Coder("pymars/encode", "pymars", "encode", "pymars C++ encoder (flight code)"),
           Coder("pymars-torch/encode", "pymars", "encode", "pymars analysis + h_s, PyTorch eager")]
    enc += [Coder(f"{n}/encode", n, "encode", f"{n} encoder") for n in classic]
    dec = [Coder("pymars-onnx/decode", "pymars", "decode", "pymars decoder, ONNX Runtime synthesis"),
           Coder("pymars-torch/decode", "pymars", "decode", "pymars decoder, PyTorch synthesis")]
    dec += [Coder(f"{n}/decode", n, "decode", f"{n} decoder") for n in classic]
    return enc + dec


def single_thread_bundle(model=None):
    """A private copy of a model bundle whose ONNX Runtime synthesis uses one intra-op thread.

    ``pymars.decode`` asks the bundle for ``synthesis("onnx")`` with ORT's default
    pool (one thread per core). The benchmark needs one thread, so a fresh
    bundle object (not the shared, cached one) gets a one-thread session under
    the key ``decode`` looks up.

    Example:
        >>> b = single_thread_bundle()
        >>> from pymars.ground.synthesis import synthesis_backend
        >>> not b.available or synthesis_backend(b, "onnx").session.get_session_options().intra_op_num_threads
        1
    """
    import pymars
    from pymars.bundles import ModelBundle

    bundle = ModelBundle(pymars.open_bundle(model).root)
    if bundle.available:
        from pymars.ground.synthesis import OnnxSynthesis

        bundle.__dict__["_synthesis"] = {("onnx", 0): OnnxSynthesis(bundle.synthesis_onnx, threads=1)}
    return bundle


def torch_analysis(bundle, tile: int = TILE) -> Callable[[np.ndarray], None]:
    """The rover's work in PyTorch eager: per tile g_a, h_a, round/clamp, integer h_s (one thread).

    Tiles are padded to a multiple of 16 by edge replication and gray is
    replicated to RGB, as the C++ encoder does, so the two do the same MACs.
    """
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    from pymars.train.codec.network import STRIDE, Z_LIMIT, BaseCodec, BaseConfig

    torch.set_num_threads(1)
    model = BaseCodec(BaseConfig.from_dict(bundle.config))
    model.load_state_dict(load_file(str(bundle.safetensors)))
    model.eval()

    def analyse(img: np.ndarray) -> None:
        rgb = img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div(255)[None]
        h, w = rgb.shape[:2]
        with torch.no_grad():
            for y0 in range(0, h, tile):
                for x0 in range(0, w, tile):
                    t = x[..., y0 : y0 + tile, x0 : x0 + tile]
                    ph, pw = -t.shape[2] % STRIDE, -t.shape[3] % STRIDE
                    if ph or pw:
                        t = F.pad(t, (0, pw, 0, ph), mode="replicate")
                    y = model.g_a(t)
                    z = torch.round(model.h_a(y)).clamp(-Z_LIMIT, Z_LIMIT)
                    model.h_s(z)

    return analyse


def pymars_codec(bundle, backend: str = "onnx") -> Codec:
    """pymars as a registry entry (C++ encoder, one thread; ``backend`` synthesis)."""
    import pymars

    return Codec("pymars", PYMARS_QUALITIES,
                 encode=lambda tile, q: pymars.encode(tile, int(q), threads=1, model=bundle),
                 decode=lambda data, shape: pymars.decode(data, backend=backend, threads=1, model=bundle).reshape(shape))


# ---------------------------------------------------------------------------
# Timing


#: Fast calls are repeated until this much time is spent (at most MAX_REPEATS calls):
#: a single JPEG call takes milliseconds, and one sample of it is mostly scheduler noise.
MIN_TIMED_S = 0.1
MAX_REPEATS = 25


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of at least ``repeats`` calls (``time.perf_counter``) and the last result.

    Example:
        >>> seconds, out = _timed(lambda: sum(range(100)), 1)
        >>> out, 0 < seconds < 0.01
        (4950, True)
    """
    times: list[float] = []
    out = None
    while len(times) < repeats or (sum(times) < MIN_TIMED_S and len(times) < MAX_REPEATS):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


@dataclass
class TimedCoders:
    """What :func:`time_coders` calls: the codecs (pymars first), the PyTorch decoder and analysis."""

    codecs: dict
    torch_decode: Callable
    analyse: Callable


def timed_coders(classic: Sequence[str], bundle, warm_up_on: np.ndarray) -> TimedCoders:
    """Build every coder once and warm each up with one untimed call (imports, model load, sessions).

    Example:
        >>> from pymars.data.synthetic import mars_like_scene
        >>> b = single_thread_bundle()
        >>> not b.available or list(timed_coders(["jpeg420"], b, mars_like_scene(64, 64)).codecs)
        ['pymars', 'jpeg420']
    """
    import torch

    torch.set_num_threads(1)
    codecs = {"pymars": pymars_codec(bundle, "onnx"), **{n: CLASSIC_CODECS[n] for n in classic}}
    coders = TimedCoders(codecs, pymars_codec(bundle, "torch").decode, torch_analysis(bundle))
    for name, codec in codecs.items():
        data = codec.encode(warm_up_on, codec.qualities[0])
        codec.decode(data, warm_up_on.shape)
        if name == "pymars":
            coders.torch_decode(data, warm_up_on.shape)
    coders.analyse(warm_up_on)
    return coders


def time_coders(images: Sequence[Tile], coders: TimedCoders, quick: bool, repeats: int,
                bar=None) -> dict[str, list[float]]:
    """Seconds per megapixel of every coder: one value per (image, quality), the median over repeats.

    Decoders decode what their own encoder made at that quality; the PyTorch
    analysis does not depend on the quality and is timed once per image.
    """
    samples: dict[str, list[float]] = {}
    for image in images:
        pix = image.pixels
        mpx = pix.shape[0] * pix.shape[1] / 1e6
        seconds, _ = _timed(lambda: coders.analyse(pix), repeats)
        samples.setdefault("pymars-torch/encode", []).append(seconds / mpx)
        _tick(bar)
        for name, codec in coders.codecs.items():
            for q in grid_points(codec.qualities, quick):
                if bar is not None:
                    bar.set_description(f"{image.tile_id} {name} q={q}")
                seconds, data = _timed(lambda: codec.encode(pix, q), repeats)
                samples.setdefault(f"{name}/encode", []).append(seconds / mpx)
                key = "pymars-onnx/decode" if name == "pymars" else f"{name}/decode"
                seconds, _ = _timed(lambda: codec.decode(data, pix.shape), repeats)
                samples.setdefault(key, []).append(seconds / mpx)
                if name == "pymars":
                    seconds, _ = _timed(lambda: coders.torch_decode(data, pix.shape), repeats)
                    samples.setdefault("pymars-torch/decode", []).append(seconds / mpx)
                _tick(bar)
    return samples


def _tick(bar) -> None:
    if bar is not None:
        bar.update()


def summarize_latency(samples: dict[str, list[float]], coders: Sequence[Coder]) -> dict:
    """Median s/Mpx per coder and its ratio to jpeg420's median (same role).

    Example:
        >>> cs = coder_list(["jpeg420"])
        >>> s = summarize_latency({"jpeg420/encode": [0.1, 0.3, 0.2], "pymars/encode": [2.0]}, cs)
        >>> s["pymars/encode"]
        {'s_per_mpx': 2.0, 'x_jpeg': 10.0, 'n': 1}
    """
    out = {}
    for c in coders:
        values = samples.get(c.key)
        if not values:
            continue
        med = float(statistics.median(values))
        anchor = samples.get(f"{ANCHOR}/{c.role}")
        ratio = med / float(statistics.median(anchor)) if anchor else None
        out[c.key] = {"s_per_mpx": med, "x_jpeg": ratio, "n": len(values)}
    return out


# ---------------------------------------------------------------------------
# Peak memory (one fresh process per coder)

#: Modules a coder's library needs, imported before the baseline is read so
#: that the baseline is "an idle interpreter with the same imports".
_PRELOAD = {
    "jpeg420": "from PIL import Image, JpegImagePlugin",
    "jpeg444": "from PIL import Image, JpegImagePlugin",
    "webp": "from PIL import Image, WebPImagePlugin",
    "avif": "from PIL import Image, AvifImagePlugin",
    "jpeg2000": "import imagecodecs; imagecodecs.jpeg2k_version()",
    "jpegxl": "import imagecodecs; imagecodecs.jpegxl_version()",
    "hevc444": "import pillow_heif",
    "hevc420": "import pillow_heif",
    "pymars/encode": "import pymars._core",
    "pymars-torch/encode": "import torch, safetensors.torch, pymars.train.codec.network",
    "pymars-onnx/decode": "import onnxruntime, pymars._core, pymars.ground.synthesis",
    "pymars-torch/decode": "import torch, safetensors.torch, pymars._core, pymars.train.codec.network, pymars.ground.synthesis",
}


def _maxrss_kib() -> int:
    import resource

    # Linux reports ru_maxrss in KiB (macOS in bytes; this benchmark assumes Linux).
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _vm_hwm_kib() -> int | None:
    """Peak RSS of this address space (``VmHWM``), a cross-check of ru_maxrss; None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None


#: Starts a memory child from a small process. Linux keeps a process's
#: ru_maxrss across execve, and a child forked from this (large) process starts
#: from a copy of its page tables, so a child started directly would report at
#: least this process's own peak. A grandchild of a fresh, small interpreter
#: only inherits that interpreter's few MiB, below any child's own baseline.
_SPAWNER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def memory_child(spec: dict) -> dict:
    """Run one coder once in this (fresh) process: ru_maxrss before and after, in KiB."""
    key = spec["coder"]
    codec_name = key.split("/")[0]
    exec(_PRELOAD.get(key, _PRELOAD.get(codec_name, "")), {})
    image = np.load(spec["image"])
    data = Path(spec["data"]).read_bytes() if spec.get("data") else None
    baseline = _maxrss_kib()
    q = spec["quality"]
    if key == "pymars/encode":
        import pymars

        pymars.encode(image, int(q), threads=1, model=pymars.open_bundle(spec.get("model")))
    elif key == "pymars-torch/encode":
        import pymars

        torch_analysis(pymars.open_bundle(spec.get("model")))(image)
    elif key in ("pymars-onnx/decode", "pymars-torch/decode"):
        backend = "onnx" if key.startswith("pymars-onnx") else "torch"
        pymars_codec(single_thread_bundle(spec.get("model")), backend).decode(data, image.shape)
    else:
        codec = CLASSIC_CODECS[codec_name]
        if key.endswith("/encode"):
            codec.encode(image, q)
        else:
            codec.decode(data, image.shape)
    return {"baseline_kib": baseline, "peak_kib": _maxrss_kib(), "vm_hwm_kib": _vm_hwm_kib()}


def measure_memory(image: Tile, coders: Sequence[Coder], qualities: dict, encoded: dict, model=None,
                   bar=None) -> dict:
    """Peak RSS of each coder in its own process, on ``image`` (decoders get ``encoded[codec]``)."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        npy = Path(d) / "image.npy"
        np.save(npy, image.pixels)
        for c in coders:
            spec = {"coder": c.key, "image": str(npy), "quality": qualities[c.codec], "model": model}
            if c.role == "decode":
                path = Path(d) / f"{c.codec}.bin"
                path.write_bytes(encoded[c.codec])
                spec["data"] = str(path)
            if bar is not None:
                bar.set_description(f"memory {c.key}")
            child = [sys.executable, str(Path(__file__).resolve()), "--memory-child", json.dumps(spec)]
            proc = subprocess.run([sys.executable, "-c", _SPAWNER, *child], capture_output=True, text=True)
            _tick(bar)
            if proc.returncode != 0:
                out[c.key] = {"error": f"exit status {proc.returncode}: "
                                       + (proc.stderr.strip().splitlines() or ["no message"])[-1]}
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            out[c.key] = {"baseline_mib": r["baseline_kib"] / 1024, "peak_mib": r["peak_kib"] / 1024,
                          "delta_mib": (r["peak_kib"] - r["baseline_kib"]) / 1024, "quality": qualities[c.codec],
                          "vm_hwm_mib": r["vm_hwm_kib"] / 1024 if r.get("vm_hwm_kib") else None}
    return out


def encode_raw_footprint(image: Tile, blob: Path, quality: int, encoder: Path = ENCODE_RAW) -> dict | None:
    """The C API example under ``/usr/bin/time -v``: max RSS, arena size, wall time; None if absent."""
    time_bin = Path("/usr/bin/time")
    if not encoder.exists() or not time_bin.exists():
        return None
    pix = image.pixels if image.pixels.ndim == 3 else image.pixels[:, :, None]
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "image.raw"
        raw.write_bytes(np.ascontiguousarray(pix).tobytes())
        cmd = [str(time_bin), "-v", str(encoder), str(blob), str(raw), str(pix.shape[1]), str(pix.shape[0]),
               str(pix.shape[2]), str(quality), str(Path(d) / "out.pmrs"), str(TILE)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr)
    arena = re.search(r"(\d+) bytes \(arena (\d+) bytes", proc.stdout)
    seconds = None
    if wall:
        parts = [float(p) for p in wall.group(1).split(":")]
        seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return {
        "binary": str(encoder),
        "max_rss_mib": int(rss.group(1)) / 1024 if rss else None,
        "arena_mib": int(arena.group(2)) / 2**20 if arena else None,
        "blob_mib": blob.stat().st_size / 2**20,
        "image_mib": pix.nbytes / 2**20,
        "file_bytes": int(arena.group(1)) if arena else None,
        "wall_s": seconds,
        "quality": quality,
    }


# ---------------------------------------------------------------------------
# The run


def run(quick: bool = False, classic: Sequence[str] = DEFAULT_CODECS, model=None, memory: bool = True,
        progress: bool = True, root: Path | None = None) -> dict:
    """Measure everything and return the result document (not yet written)."""
    from tqdm import tqdm

    import pymars

    classic = list(dict.fromkeys([ANCHOR, *classic]))  # the anchor is always timed: every ratio needs it
    coders = coder_list(classic)
    bundle = single_thread_bundle(model)
    if not bundle.available:
        raise SystemExit(f"model bundle {bundle.root} is missing")
    load_start = os.getloadavg()
    crops = speed_crops(N_CROPS, root)
    tiles = timing_tiles(quick, root)
    repeats = QUICK_REPEATS if quick else REPEATS
    sets = {"crops": crops, "tiles": tiles}
    per_image = 1 + sum(len(grid_points(CLASSIC_CODECS[n].qualities, quick)) for n in classic) \
        + len(grid_points(PYMARS_QUALITIES, quick))
    total = sum(len(v) for v in sets.values()) * per_image + (len(coders) if memory else 0)
    doc: dict = {
        "kind": "latency",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]) if sys.argv and sys.argv[0] else None,
        "quick": quick,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(), "nice": os.nice(0), "loadavg_start": list(load_start)},
        "versions": {**library_versions(), **_runtime_versions()},
        "model": {"name": bundle.name, "model_id": bundle.model_id.hex()},
        "settings": {
            "threads": 1,
            "repeats": repeats,
            "qualities": {"pymars": list(grid_points(PYMARS_QUALITIES, quick)),
                          **{n: list(grid_points(CLASSIC_CODECS[n].qualities, quick)) for n in classic}},
            "crops": [c.tile_id for c in crops],
            "crop_size": [CROP_HEIGHT, CROP_WIDTH],
            "tiles": {"count": len(tiles), "step": QUICK_TILE_STEP if quick else 1, "groups": list(GROUPS)},
            "statistic": "median over repeats per (image, quality), then median over images and qualities; "
                         f"calls repeated until {MIN_TIMED_S} s are spent (at most {MAX_REPEATS} calls)",
            "warm_up": "one untimed call per coder before timing",
        },
        "coders": {c.key: {"codec": c.codec, "role": c.role, "label": c.label} for c in coders},
        "latency": {},
    }
    with tqdm(total=total, disable=not progress, unit="step", dynamic_ncols=True) as bar:
        bar.set_description("loading coders")
        coders_impl = timed_coders(classic, bundle, crops[0].pixels)
        for name, images in sets.items():
            samples = time_coders(images, coders_impl, quick, repeats[name], bar)
            doc["latency"][name] = summarize_latency(samples, coders)
        if memory:
            mid = {"pymars": grid_points(PYMARS_QUALITIES, True)[0],
                   **{n: grid_points(CLASSIC_CODECS[n].qualities, True)[0] for n in classic}}
            encoded = {"pymars": pymars.encode(crops[0].pixels, int(mid["pymars"]), model=bundle),
                       **{n: CLASSIC_CODECS[n].encode(crops[0].pixels, mid[n]) for n in classic}}
            doc["memory"] = {
                "image": crops[0].tile_id,
                "coders": measure_memory(crops[0], coders, mid, encoded, model, bar),
                "encode_raw": encode_raw_footprint(crops[0], bundle.blob_path, int(mid["pymars"])),
            }
    doc["machine"]["loadavg_end"] = list(os.getloadavg())
    return doc


def _runtime_versions() -> dict:
    """Versions of the pymars runtimes (the classic libraries come from library_versions)."""
    import onnxruntime
    import torch

    import pymars

    return {"pymars": pymars.__version__, "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
            "numpy": np.__version__}


# ---------------------------------------------------------------------------
# Tables


def _num(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def latency_rows(doc: dict) -> list[list[str]]:
    """Table rows: coder, role, then s/Mpx and x JPEG per image set, then peak and baseline MiB.

    Example:
        >>> doc = {"coders": {"jpeg420/encode": {"role": "encode", "label": "jpeg420 encoder"}},
        ...        "latency": {"crops": {"jpeg420/encode": {"s_per_mpx": 0.02, "x_jpeg": 1.0, "n": 4}}}}
        >>> latency_rows(doc)[0][:4]
        ['jpeg420/encode', 'encode', '0.0200', '1.00']
    """
    sets = list(doc.get("latency", {}))
    mem = doc.get("memory", {}).get("coders", {})
    rows = []
    for key, c in doc["coders"].items():
        row = [key, c["role"]]
        for s in sets:
            v = doc["latency"][s].get(key, {})
            row += [_num(v.get("s_per_mpx"), ".4f"), _num(v.get("x_jpeg"), ".2f")]
        m = mem.get(key, {})
        row += [_num(m.get("peak_mib"), ".1f"), _num(m.get("baseline_mib"), ".1f")] if mem else []
        rows.append(row)
    return rows


def latency_headers(doc: dict) -> list[str]:
    """Column names matching :func:`latency_rows`.

    Example:
        >>> latency_headers({"latency": {"crops": {}}, "memory": {"coders": {"a": {}}}})
        ['coder', 'role', 'crops s/Mpx', 'crops x JPEG', 'peak MiB', 'baseline MiB']
    """
    head = ["coder", "role"]
    for s in doc.get("latency", {}):
        head += [f"{s} s/Mpx", f"{s} x JPEG"]
    if doc.get("memory", {}).get("coders"):
        head += ["peak MiB", "baseline MiB"]
    return head


def format_report(doc: dict) -> str:
    """The latency and memory tables as text.

    Example:
        >>> print(format_report({"quick": True, "coders": {}, "latency": {}, "settings": {}, "machine": {}}).splitlines()[0])
        Latency, one thread, median seconds per megapixel (x jpeg420 of this run) (quick)
    """
    head = latency_headers(doc)
    rows = latency_rows(doc)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    lines = ["Latency, one thread, median seconds per megapixel (x jpeg420 of this run)"
             + (" (quick)" if doc.get("quick") else "")]
    s = doc.get("settings", {})
    if s.get("crops"):
        lines.append(f"crops: {', '.join(s['crops'])} ({s['crop_size'][0]}x{s['crop_size'][1]}); "
                     f"tiles: {s['tiles']['count']} development tiles; repeats {s['repeats']}")
    m = doc.get("machine", {})
    if m.get("loadavg_start"):
        lines.append(f"load average at start {m['loadavg_start'][0]:.2f}, at end {m.get('loadavg_end', [0])[0]:.2f}"
                     f" on {m['cpu_count']} CPUs")
    lines.append("  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))))
    for r in rows:
        lines.append("  ".join(x.ljust(w) if i < 2 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths))))
    mem = doc.get("memory")
    if mem:
        lines.append(f"peak memory: a fresh process per coder on {mem['image']}; baseline = its imports + input")
        raw = mem.get("encode_raw")
        if raw and "error" not in raw:
            lines.append(f"C API encoder (build/c/encode_raw, /usr/bin/time -v): max RSS {raw['max_rss_mib']:.1f} MiB "
                         f"= arena {_num(raw['arena_mib'], '.1f')} MiB + blob {raw['blob_mib']:.1f} MiB "
                         f"+ image {raw['image_mib']:.2f} MiB + output buffer, libc and binary")
        elif raw:
            lines.append(f"C API encoder: {raw['error']}")
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="middle quality only, one repeat, every 6th tile")
    ap.add_argument("--out", type=Path, default=None, help=f"result JSON (default {DEFAULT_OUT.relative_to(REPO)})")
    ap.add_argument("--codecs", default="all", help="classic codecs: comma list or 'all' (jpeg420 is always timed)")
    ap.add_argument("--skip-classic", action="store_true", help="classic codecs: jpeg420 only (for the ratios)")
    ap.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--report", type=Path, default=None, help="only print the tables of an existing result JSON")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(None if argv is None else list(argv))

    if args.memory_child is not None:
        print(json.dumps(memory_child(json.loads(args.memory_child))))
        return 0
    if args.report is not None:
        print(format_report(json.loads(args.report.read_text())))
        return 0
    if args.skip_classic:
        classic = [ANCHOR]
    else:
        classic = []
        for part in (p.strip() for p in args.codecs.split(",") if p.strip()):
            for name in DEFAULT_CODECS if part == "all" else (part,):
                if name not in CLASSIC_CODECS:
                    raise SystemExit(f"unknown codec {name!r}; known: {', '.join(CLASSIC_CODECS)}")
                classic.append(name)
    doc = run(args.quick, classic, args.model, memory=not args.no_memory, progress=not args.no_progress)
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    print(format_report(doc))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
