#!/usr/bin/env python3
"""Train the enhancers on a lent GPU (the `device` tool) in one prepared, time-budgeted command.

What it is for: issue 19's MarsQE at JPEG QF 30 had plateaued on this 2-core CPU (batch 8,
48 px crops, +1.0 dB at 10,000-30,000 steps, width 16). A lent GPU gets a few minutes;
this script spends them on one comparison at equal GPU time: MarsQE at width 32 and 16,
MarsQE-lite, DnCNN and AR-CNN, all from scratch on the same regions, batch 32 of 64 px
crops, cosine schedule sized to the time left. It must not touch anything but its own
pack (.gpu_pack/, git-ignored) and $OUT; the training loop is pymars.enhance.training's.

    python scripts/gpu_enhance.py prepare [--regions 440]      # here: .gpu_pack/enhance_jpeg30.npz
    python3 scripts/gpu_enhance.py remote SECONDS              # there: trains, writes $OUT/enh_*.pt + enh.log
    python scripts/gpu_enhance.py import DIR                   # here: DIR/enh_*.pt -> runs/enhance/gpu/<job>/snapshot-N.pt

The device gets the working tree only (no ../shared) and at most 64 MiB of it, so `prepare`
stores the training cache compactly: raw regions as lossless WebP, their compressed twins
as the JPEG bytes that made them (checked to decode to the cached pixels; WebP where not),
plus the classes, references and dictionary (small). `remote` unpacks it once, starts one
process per job (each `torch.set_num_threads(2)`, batches drawn three steps ahead), probes
each job's speed for 300 steps, sizes its cosine schedule to the time left, and keeps four
snapshots (25/50/75/100 %) as float16 in one file per job, rewritten as snapshots appear so
that a run cut short still returns weights. `import` turns those into the checkpoints that
`pymars enhance-export` reads (the config's cache pointing at the local cache again).

The device's python3 (3.12) cannot load this machine's C extension, and training never
calls it: `remote` registers an empty ``pymars._core`` before importing pymars.

Example (a CPU check of the whole path, tiny budget):
    DEVICE=cpu OUT=/tmp/enh_out JOBS=dncnn python scripts/gpu_enhance.py remote 60
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts"):  # the device runs the checkout with its own python3: nothing is installed
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Training never calls pymars' C core, and the device's Python cannot load this machine's build of it.
from core_standin import install  # noqa: E402
PACK = ROOT / ".gpu_pack"
PACK_FILE = PACK / "enhance_jpeg30.npz"
SETTING = "jpeg:30"

#: name -> (kind, width); every job: batch 32, 64 px crops, lr 5e-4, seed 0, bf16 on the GPU.
JOBS = {
    "marsqe-w32": ("marsqe", 32),
    "marsqe-w16": ("marsqe", 16),
    "lite-w16": ("marsqe-lite", 16),
    "dncnn": ("dncnn", 16),
    "arcnn": ("arcnn", 16),
    "unet": ("unet", 16),  # width unused: the U-Net's widths are fixed (32, 64, 128, 128)
}
BATCH, CROP, LR, PROBE = 32, 64, 5e-4, 300
FRACTIONS = (0.25, 0.5, 0.75)  # snapshots kept besides the final weights


def _digest(a: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=8).digest()


def _jpeg_bytes(region: np.ndarray, quality: int) -> bytes:
    # The bytes of pymars.evaluation.classic.jpeg420 (Pillow, 4:2:0, optimize): the cache's compressed twin.
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(region).save(buf, format="JPEG", quality=quality, subsampling=2, optimize=True)
    return buf.getvalue()


def _webp_bytes(region: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(region).save(buf, format="WEBP", lossless=True, quality=100, method=4)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _join(chunks: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(c) for c in chunks]).astype(np.int64)
    return np.frombuffer(b"".join(chunks), np.uint8), offsets


def prepare(args) -> int:
    """Write the compact pack of ``--regions`` regions of the QF 30 cache (a seeded draw, sorted)."""
    from tqdm import tqdm

    from pymars.clio import atomic_path
    from pymars.enhance.patches import TrainingCache

    cache = TrainingCache.load(args.cache)
    if cache.specs != [SETTING]:
        raise SystemExit(f"{args.cache}: holds {cache.specs}, this pack is for {SETTING}")
    pick = np.sort(np.random.default_rng(0).permutation(len(cache))[: min(args.regions, len(cache))])
    raw, comp, comp_is_jpeg, digests = [], [], [], []
    for n in tqdm(pick, desc="packing regions"):
        raw.append(_webp_bytes(cache.raw[n]))
        jpeg = _jpeg_bytes(cache.raw[n], 30)
        same = np.array_equal(_decode(jpeg), cache.comp[n])
        comp.append(jpeg if same else _webp_bytes(cache.comp[n]))
        comp_is_jpeg.append(same)
        digests.append(_digest(cache.comp[n]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    exclude = ROOT / ".git" / "info" / "exclude"
    if Path(args.out).resolve().parent == PACK.resolve() and exclude.parent.is_dir() and "/.gpu_pack/" not in (exclude.read_text() if exclude.is_file() else ""):
        with open(exclude, "a") as f:
            f.write("/.gpu_pack/\n")
    raw_bytes, raw_off = _join(raw)
    comp_bytes, comp_off = _join(comp)
    with atomic_path(args.out) as tmp, open(tmp, "wb") as f:
        np.savez(f, raw_bytes=raw_bytes, raw_off=raw_off, comp_bytes=comp_bytes, comp_off=comp_off,
                 comp_is_jpeg=np.array(comp_is_jpeg), comp_digest=np.frombuffer(b"".join(digests), np.uint8),
                 classes=cache.classes[pick], refs=cache.refs[pick], spec_index=cache.spec_index[pick],
                 dict_raw=cache.dict_raw, dict_comp=cache.dict_comp, dict_classes=cache.dict_classes,
                 specs=np.array(cache.specs), ref_spec=np.array(cache.ref_spec), regions=pick)
    size = Path(args.out).stat().st_size
    print(f"{args.out}: {len(pick)} regions, {size / 2**20:.1f} MiB, "
          f"{int(np.sum(comp_is_jpeg))} compressed twins as JPEG bytes")
    return 0


def unpack(pack: str | os.PathLike, out: str | os.PathLike) -> str:
    """Rebuild a TrainingCache file from the compact pack; returns a one-line account of the check."""
    from pymars.enhance.patches import TrainingCache

    with np.load(pack) as z:
        d = {k: z[k] for k in z.files}
    n = len(d["raw_off"]) - 1
    raw = np.stack([_decode(d["raw_bytes"][d["raw_off"][i]:d["raw_off"][i + 1]].tobytes()) for i in range(n)])
    comp = np.stack([_decode(d["comp_bytes"][d["comp_off"][i]:d["comp_off"][i + 1]].tobytes()) for i in range(n)])
    # Another libjpeg build may decode a few pixels differently: count it, do not stop (a +-1 twin still trains).
    digests = d["comp_digest"].reshape(n, 8)
    differ = sum(_digest(comp[i]) != digests[i].tobytes() for i in range(n))
    TrainingCache(raw=raw, comp=comp, classes=d["classes"], refs=d["refs"], spec_index=d["spec_index"],
                  dict_raw=d["dict_raw"], dict_comp=d["dict_comp"], dict_classes=d["dict_classes"],
                  specs=[str(s) for s in d["specs"]], ref_spec=str(d["ref_spec"])).save(out)
    return f"{n} regions unpacked; compressed twins that decode differently here: {differ}"


def _slim(state: dict) -> dict:
    import torch

    return {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.cpu()) for k, v in state.items()}


def collect(name: str, run: Path, out: Path, hardware: str) -> int:
    """Write $OUT/enh_<name>.pt from the run's snapshots (float16) and final checkpoint; returns steps saved."""
    import torch

    from pymars.clio import atomic_path

    snaps = {}
    for p in sorted(run.glob("snapshot-*.pt")):
        try:
            ck = torch.load(p, map_location="cpu", weights_only=False)
        except Exception:  # a snapshot being written right now: taken next time
            continue
        snaps[int(ck["step"])] = _slim(ck["model"])
        config = ck["config"]
    final = run / "checkpoint.pt"
    history = []
    if final.is_file():
        try:
            ck = torch.load(final, map_location="cpu", weights_only=False)
            snaps[int(ck["step"])] = _slim(ck["model"])
            config, history = ck["config"], ck.get("history", [])
        except Exception:
            pass
    if not snaps:
        return 0
    with atomic_path(out / f"enh_{name}.pt") as tmp:
        torch.save({"snapshots": snaps, "config": config, "history": history, "hardware": hardware}, tmp)
    return max(snaps)


def train_one(args) -> int:
    """One job: probe the speed, size the schedule to the deadline, train, keep snapshots."""
    install()
    import torch

    from pymars.enhance.training import EnhancerConfig, train_enhancer

    kind, width = JOBS[args.job]
    device = os.environ.get("DEVICE", "cuda")
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    base = dict(kind=kind, width=width, cache=args.cache, batch=int(os.environ.get("BATCH", BATCH)), crop=CROP,
                lr=LR, seed=0, threads=2, precision="bf16", device=device, prefetch=3)
    probe = EnhancerConfig(**base, out=f"/tmp/enh_probe_{args.job}", steps=PROBE, save_every=100, snapshot_every=0)
    train_enhancer(probe, progress=False)
    hist = torch.load(f"/tmp/enh_probe_{args.job}/checkpoint.pt", map_location="cpu", weights_only=False)["history"]
    # Steps 100-300 (the first hundred hold cuDNN's autotuning and the pool's start).
    t = {h["step"]: h["seconds"] for h in hist}
    rate = (PROBE - 100) / max(1e-3, t[PROBE] - t[100])
    left = args.deadline - time.time()
    steps = max(200, int(rate * left * 0.9) // 100 * 100)
    print(f"{args.job}: {rate:.1f} steps/s in the probe, {left:.0f} s left: {steps} steps", flush=True)
    every = max(1, steps // 4)
    cfg = EnhancerConfig(**base, out=f"/tmp/enh_run_{args.job}", steps=steps, save_every=every,
                         snapshot_every=every, max_seconds=max(10.0, left - 5))
    summary = train_enhancer(cfg, progress=False)
    print(f"{args.job}: trained {summary['steps']} of {steps} steps; last losses {summary['history'][-2:]}",
          flush=True)
    return 0


def remote(args) -> int:
    """There: unpack, start every job, collect their snapshots into $OUT until they end."""
    out = Path(os.environ.get("OUT", "/tmp/enh_out"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    deadline = start + args.seconds
    device = os.environ.get("DEVICE", "cuda")
    hardware = "cpu"
    install()
    if device == "cuda":
        import torch

        hardware = torch.cuda.get_device_name(0)
    cache = "/tmp/enh_cache_jpeg30.npz"
    print(unpack(args.pack, cache), f"({time.time() - start:.0f} s)", flush=True)
    jobs = [j for j in os.environ.get("JOBS", ",".join(JOBS)).split(",") if j]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS="2")
    procs = {j: subprocess.Popen([sys.executable, __file__, "train-one", j, "--cache", cache,
                                  "--deadline", str(deadline)], env=env) for j in jobs}
    while any(p.poll() is None for p in procs.values()):
        time.sleep(20)
        for j in jobs:
            collect(j, Path(f"/tmp/enh_run_{j}"), out, hardware)
        print(f"[{time.time() - start:.0f} s] running: {[j for j, p in procs.items() if p.poll() is None]}",
              flush=True)
    done = {j: collect(j, Path(f"/tmp/enh_run_{j}"), out, hardware) for j in jobs}
    print("steps returned:", json.dumps(done), "exit codes:", {j: p.returncode for j, p in procs.items()},
          f"({time.time() - start:.0f} s)", flush=True)
    return 0 if all(p.returncode == 0 for p in procs.values()) else 1


def import_(args) -> int:
    """Here: every DIR/enh_<job>.pt -> runs/enhance/gpu/<job>/snapshot-<step>.pt (+ checkpoint.pt = the last)."""
    import torch

    from pymars.clio import atomic_path

    found = sorted(Path(args.dir).glob("enh_*.pt"))
    if not found:
        raise SystemExit(f"{args.dir}: no enh_*.pt from the device")
    for f in found:
        job = f.stem[len("enh_"):]
        ck = torch.load(f, map_location="cpu", weights_only=False)
        config = dict(ck["config"], cache=args.cache, device=f"cuda ({ck['hardware']})", prefetch=3)
        folder = Path(args.out) / job
        folder.mkdir(parents=True, exist_ok=True)
        last = max(ck["snapshots"])
        for step, state in sorted(ck["snapshots"].items()):
            doc = {"model": {k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                   "step": step, "config": config}
            for name in [f"snapshot-{step}.pt"] + (["checkpoint.pt"] if step == last else []):
                with atomic_path(folder / name) as tmp:
                    torch.save(doc, tmp)
        (folder / "gpu_history.json").write_text(json.dumps({"history": ck["history"], "hardware": ck["hardware"],
                                                             "steps": sorted(ck["snapshots"])}, indent=1))
        print(f"{folder}: steps {sorted(ck['snapshots'])} ({ck['hardware']})")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--cache", default="runs/enhance/cache-jpeg30.npz")
    p.add_argument("--regions", type=int, default=440)
    p.add_argument("--out", default=str(PACK_FILE))
    r = sub.add_parser("remote")
    r.add_argument("seconds", type=float)
    r.add_argument("--pack", default=str(PACK_FILE))
    o = sub.add_parser("train-one")
    o.add_argument("job", choices=sorted(JOBS))
    o.add_argument("--cache", required=True)
    o.add_argument("--deadline", type=float, required=True)
    i = sub.add_parser("import")
    i.add_argument("dir")
    i.add_argument("--out", default="runs/enhance/gpu")
    i.add_argument("--cache", default="runs/enhance/cache-jpeg30.npz")
    args = ap.parse_args(argv)
    return {"prepare": prepare, "remote": remote, "train-one": train_one, "import": import_}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
