"""Decode and enhance throughput (images/s) per ONNX Runtime provider: CPU, CUDA, TensorRT (issue 21, item 3).

What it measures: learned decoding (``--decode-model``, default base-v1: its
tiles go through the ONNX synthesis, unlike the wavelet default whose tiles
never touch ONNX Runtime) of N synthetic 256x256 scenes, and enhancement of
the same scenes as JPEG quality 30 (``--enhance-model``, default
dncnn-jpeg30; MarsQE needs its dictionary from ../shared, give
``--enhance-model marsqe-jpeg30`` where it exists), once per window batch of
``--batches`` (windows per inference call: ``Enhancer(batch=N)``, ``pymars
enhance --batch N``; one 256x256 image is one window, so give ``--size 1024``
to batch the windows of a Navcam-sized frame). One warm-up image per
provider is not timed (TensorRT builds its engine there). A provider that
this onnxruntime lacks is skipped and recorded as such. Writes
bench/results/gpu_serving.json.

Run on a machine with a GPU (``pip install onnxruntime-gpu``):
``python bench/gpu_serving.py``; on a CPU-only machine it measures the CPU
and records the others as missing. It must not touch anything but the
result file.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

import pymars
from pymars.clio import write_json
from pymars.data.synthetic import mars_like_scene

RESULT = Path(__file__).resolve().parent / "results" / "gpu_serving.json"
PROVIDERS = ("CPU", "CUDA", "TensorRT")


def main() -> None:
    import onnxruntime as ort

    from pymars.enhance.cli import resolve_model
    from pymars.enhance.inference import Enhancer
    from pymars.ground.synthesis import onnx_providers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--decode-model", default="base-v1")
    ap.add_argument("--enhance-model", default="dncnn-jpeg30")
    ap.add_argument("--batches", default="1,8,16", help="windows per enhance inference call, comma-separated")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads of the CPU provider "
                                                                    "(default: all cores)")
    ap.add_argument("--out", default=str(RESULT))
    a = ap.parse_args()
    scenes = [mars_like_scene(a.size, a.size, seed=2000 + i) for i in range(a.images)]
    files = [pymars.encode(s, quality=50, model=a.decode_model) for s in scenes]
    jpegs = []
    for s in scenes:
        buf = io.BytesIO()
        Image.fromarray(s).save(buf, format="JPEG", quality=30)
        jpegs.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    doc = {"images": a.images, "size": a.size, "onnxruntime": ort.__version__,
           "available": ort.get_available_providers(), "machine": platform.machine(),
           "decode_model": a.decode_model, "enhance_model": a.enhance_model, "threads": a.threads,
           "cpus": os.cpu_count(), "providers": {}}
    for name in PROVIDERS:
        # The provider first, the CPU after it: nodes the GPU provider does not take run on the CPU.
        chain = [name] if name == "CPU" else [name, "CPU"]
        try:
            onnx_providers(chain)
        except ValueError as e:
            doc["providers"][name] = {"skipped": str(e)}
            print(f"{name}: skipped ({e})", flush=True)
            continue
        res = {}
        pymars.decode(files[0], model=a.decode_model, providers=chain)  # warm-up: session (and engine) build
        t0 = time.perf_counter()
        for f in files:
            pymars.decode(f, model=a.decode_model, providers=chain)
        res["decode_images_per_s"] = round(a.images / (time.perf_counter() - t0), 3)
        try:
            for b in (int(x) for x in a.batches.split(",")):
                enh = Enhancer(resolve_model(a.enhance_model), providers=chain, batch=b, threads=a.threads)
                enh.enhance(jpegs[0])
                t0 = time.perf_counter()
                for j in jpegs:
                    enh.enhance(j)
                res[f"enhance_images_per_s_batch{b}"] = round(a.images / (time.perf_counter() - t0), 3)
        except (OSError, ValueError) as e:
            res["enhance_skipped"] = str(e)
        doc["providers"][name] = res
        print(name, res, flush=True)
    write_json(a.out, doc)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
