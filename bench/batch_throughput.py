"""Throughput of ``pymars batch decode`` and ``batch enhance``: plain loop vs 1 vs 2 Dask workers (issue 21).

What it measures: images/s over N synthetic 256x256 scenes (``--images``,
default 50), for the plain in-process loop (``--workers 0``: the same per-item
code without Dask), a local cluster of 1 worker process and one of 2, in the
same run; the engine's overhead as the ratio plain / 1 worker (time), and the
cluster's start-up time alone. Decode inputs are the scenes encoded with the
default model at quality 75; enhance inputs are the scenes as JPEG quality 30
with the default enhancer of ``pymars enhance`` (marsqe-jpeg30; it rebuilds
its dictionary from ../shared, so without ../shared it falls back to
arcnn-jpeg30 and says so). Writes bench/results/batch_throughput.json.

Run: ``nice python bench/batch_throughput.py [--images 50]``. It must not
touch anything but a temporary folder and the result file.
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

from PIL import Image

import pymars
from pymars.batch import run_batch
from pymars.batch.engine import connect
from pymars.clio import write_json
from pymars.data.synthetic import mars_like_scene

RESULT = Path(__file__).resolve().parent / "results" / "batch_throughput.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--enhance-model", default="marsqe-jpeg30")
    ap.add_argument("--out", default=str(RESULT))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pymars-batch-bench-"))
    enc, jpg = tmp / "enc", tmp / "jpg"
    enc.mkdir(), jpg.mkdir()
    for i in range(a.images):
        img = mars_like_scene(a.size, a.size, seed=1000 + i)
        (enc / f"s{i:03d}.pmrs").write_bytes(pymars.encode(img, quality=75))
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=30)
        (jpg / f"s{i:03d}.jpg").write_bytes(buf.getvalue())
    model, note = a.enhance_model, ""
    try:
        from pymars.batch.work import enhancer

        enhancer(model, None, 1, None)
    except (OSError, ValueError) as e:
        model, note = "arcnn-jpeg30", f"{a.enhance_model} unavailable here ({e}); measured arcnn-jpeg30"
    t0 = time.perf_counter()
    client, cluster = connect(2, None)
    client.close(), cluster.close()
    startup = time.perf_counter() - t0
    doc = {"images": a.images, "size": a.size, "cpus": os.cpu_count(), "cluster_startup_2_workers_s": round(startup, 2),
           "enhance_model": model, "note": note, "runs": {}}
    for kind, src, opts in (("decode", enc, {}), ("enhance", jpg, {"model": model, "threads": 1})):
        res = {}
        for label, workers in (("plain", 0), ("workers_1", 1), ("workers_2", 2)):
            out = tmp / f"{kind}-{label}"
            r = run_batch(kind, src, out, workers=workers, options=opts, progress=False)
            assert r["ok"] == a.images and r["failed"] == 0, r
            res[label] = {"seconds": r["seconds"], "images_per_s": round(a.images / r["seconds"], 3)}
            print(kind, label, res[label], flush=True)
        res["engine_overhead_ratio_1_worker_vs_plain"] = round(res["workers_1"]["seconds"] / res["plain"]["seconds"], 3)
        res["speedup_2_workers_vs_plain"] = round(res["plain"]["seconds"] / res["workers_2"]["seconds"], 3)
        doc["runs"][kind] = res
    doc["what"] = ("seconds are wall time of run_batch, cluster start-up included (a fresh LocalCluster per run); "
                   "the plain loop is --workers 0, the same per-item code without Dask")
    write_json(a.out, doc)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
