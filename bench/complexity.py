"""Encoder complexity: MACs per pixel (analytic, cross-checked), instructions per pixel, parameters, speed.

Counts everything the rover runs for one tile: the analysis g_a, the
hyper-analysis h_a and the integer hyper-synthesis h_s (entropy parameters).
The ground synthesis g_s is listed separately. Per layer:

* analytic MACs = k*k*c_in*c_out*h_out*w_out for convolutions, c*c*h*w for the
  simplified-GDN matrix (the division is not a MAC), nothing for ReLU,
  clamping and depth-to-space; divided by the tile's input pixels;
* ``torch.utils.flop_counter`` on the PyTorch modules (FLOPs / 2), which must agree;
* valgrind callgrind instructions of ``marsenc_encode`` (the C API, build/c/encode_raw),
  deterministic, per input pixel;
* seconds per megapixel, single thread: the C++ encoder and the same analysis in PyTorch eager.

Run:  python bench/complexity.py [--tile 256] [--image-size 512x768] [--no-callgrind]

Example:
    >>> from pymars.train.codec.network import BaseCodec, BaseConfig
    >>> rows = analytic_macs(BaseCodec(BaseConfig()), 256, 256)
    >>> round(sum(r["macs"] for r in rows if r["part"] != "g_s") / 65536)
    13109
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from torch import nn

from pymars.train.codec.integer import FakeQuantConv
from pymars.train.codec.layers import SimplifiedGDN
from pymars.train.codec.network import BaseCodec

ROVER_PARTS = ("g_a", "h_a", "h_s")


def analytic_macs(model: BaseCodec, height: int, width: int) -> list[dict]:
    """Per-layer MACs for one height x width tile (all four parts), from recorded shapes."""
    rows: list[dict] = []
    hooks = []

    def hook(part, name):
        def fn(m, inp, out):
            x = inp[0]
            if isinstance(m, FakeQuantConv):
                m = m.conv  # integer conv: same MACs as its float shadow
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0] * m.kernel_size[1]
                macs = k * m.in_channels * m.out_channels * out.shape[2] * out.shape[3] // m.groups
                kind = f"conv{m.kernel_size[0]}x{m.kernel_size[1]}/s{m.stride[0]} {m.in_channels}->{m.out_channels}"
            else:
                c = x.shape[1]
                macs = c * c * x.shape[2] * x.shape[3]
                kind = f"{'inverse ' if m.inverse else ''}simplified GDN {c}"
            rows.append({"part": part, "layer": name, "kind": kind, "out": list(out.shape[1:]), "macs": int(macs)})

        return fn

    for part in ("g_a", "h_a", "h_s", "g_s"):
        for name, m in getattr(model, part).named_modules():
            if isinstance(m, (nn.Conv2d, SimplifiedGDN, FakeQuantConv)) and not name.endswith(".conv") or (
                isinstance(m, nn.Conv2d) and part != "h_s"
            ):
                # SimplifiedGDN's conv2d is functional and FakeQuantConv calls F.conv2d: no double count.
                hooks.append(m.register_forward_hook(hook(part, name)))
    with torch.no_grad():
        x = torch.zeros(1, model.cfg.channels, height, width)
        y = model.g_a(x)
        z = torch.round(model.h_a(y))
        model.h_s(z)
        model.g_s(y)
    for h in hooks:
        h.remove()
    return rows


def flop_counter_macs(model: BaseCodec, height: int, width: int) -> dict[str, int]:
    """MACs per part from torch.utils.flop_counter (FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    with torch.no_grad():
        x = torch.zeros(1, model.cfg.channels, height, width)
        y = model.g_a(x)
        z = torch.round(model.h_a(y))
        for part, fn in (("g_a", lambda: model.g_a(x)), ("h_a", lambda: model.h_a(y)),
                         ("h_s", lambda: model.h_s(z)), ("g_s", lambda: model.g_s(y))):
            with FlopCounterMode(display=False) as fc:
                fn()
            out[part] = fc.get_total_flops() // 2
    return out


def callgrind_instructions(encoder: Path, blob: Path, image: np.ndarray, quality: int, tile: int) -> int | None:
    """Instructions executed inside marsenc_encode (callgrind), or None without valgrind."""
    if shutil.which("valgrind") is None or not encoder.exists():
        return None
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "image.raw"
        raw.write_bytes(np.ascontiguousarray(image).tobytes())
        out_file = Path(d) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", "--toggle-collect=marsenc_encode",
               str(encoder), str(blob), str(raw), str(image.shape[1]), str(image.shape[0]),
               str(1 if image.ndim == 2 else image.shape[2]),
               str(quality), str(Path(d) / "out.pmrs"), str(tile)]
        subprocess.run(cmd, check=True, capture_output=True)
        for line in out_file.read_text().splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--image-size", default="512x768", help="HxW of the timed synthetic image")
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--model", default=None, help="bundle (default: the shipped one)")
    ap.add_argument("--encoder", default="build/c/encode_raw", help="C API example binary for callgrind")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)

    import pymars
    from pymars.data.synthetic import mars_like_scene

    torch.set_num_threads(1)
    bundle = pymars.open_bundle(args.model)
    from pymars.train.codec.torch_backend import torch_model
    model = torch_model(bundle)
    t = args.tile
    rows = analytic_macs(model, t, t)
    px = t * t
    print(f"Per-layer MACs per input pixel ({t}x{t} tile)")
    print(f"{'part':<5} {'layer':<16} {'kind':<34} {'output':<16} {'MACs/px':>9}")
    for r in rows:
        print(f"{r['part']:<5} {r['layer']:<16} {r['kind']:<34} {str(r['out']):<16} {r['macs'] / px:>9.1f}")
    fc = flop_counter_macs(model, t, t)
    parts = {p: sum(r["macs"] for r in rows if r["part"] == p) for p in ("g_a", "h_a", "h_s", "g_s")}
    params = {p: sum(q.numel() for q in getattr(model, p).parameters()) for p in parts}
    print(f"\n{'part':<6}{'analytic MACs/px':>18}{'flop_counter MACs/px':>22}{'params':>10}")
    for p in parts:
        print(f"{p:<6}{parts[p] / px:>18.1f}{fc[p] / px:>22.1f}{params[p]:>10}")
    rover = sum(parts[p] for p in ROVER_PARTS)
    print(f"rover total (g_a + h_a + h_s): {rover / px:.1f} MACs/px; ground g_s: {parts['g_s'] / px:.1f} MACs/px")
    mismatch = {p: (parts[p], fc[p]) for p in parts if parts[p] != fc[p]}
    if mismatch:
        print(f"WARNING: analytic and flop_counter disagree: {mismatch}")

    h, w = (int(v) for v in args.image_size.split("x"))
    img = mars_like_scene(h, w, seed=0, channels=model.cfg.channels)
    pymars.encode(img[:64, :64], args.quality, model=bundle)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        pymars.encode(img, args.quality, tile_size=t, model=bundle)
        times.append(time.perf_counter() - t0)
    cpp_s_per_mp = float(np.median(times)) / (h * w / 1e6)
    xt = torch.from_numpy((img[..., None] if img.ndim == 2 else img).transpose(2, 0, 1).copy()).float().div(255)[None]
    ptimes = []
    with torch.no_grad():
        for _ in range(3):
            t0 = time.perf_counter()
            for y0 in range(0, h, t):
                for x0 in range(0, w, t):
                    tile = xt[..., y0 : y0 + t, x0 : x0 + t]
                    yy = model.g_a(tile)
                    model.h_s(torch.round(model.h_a(yy)))
            ptimes.append(time.perf_counter() - t0)
    torch_s_per_mp = float(np.median(ptimes)) / (h * w / 1e6)
    print(f"\nencode time, one thread, {w}x{h} {'gray' if img.ndim == 2 else 'RGB'}, tiles {t}: C++ {cpp_s_per_mp:.3f} s/Mpx; "
          f"PyTorch eager analysis + h_s {torch_s_per_mp:.3f} s/Mpx (median of 3)")
    ipp = None
    if not args.no_callgrind:
        ins = callgrind_instructions(Path(args.encoder), bundle.blob_path, img[:t, :t], args.quality, t)
        if ins is None:
            print("callgrind: skipped (valgrind or the encoder binary missing: cmake -S . -B build/c && cmake --build build/c)")
        else:
            ipp = ins / px
            print(f"callgrind: {ins} instructions in marsenc_encode for one {t}x{t} {'gray' if img.ndim == 2 else 'RGB'} tile = {ipp:.0f} instructions/px")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "tile": t, "layers": rows, "macs_per_px": {p: parts[p] / px for p in parts},
            "flop_counter_macs_per_px": {p: fc[p] / px for p in fc}, "params": params,
            "rover_macs_per_px": rover / px, "cpp_s_per_mpx": cpp_s_per_mp, "torch_s_per_mpx": torch_s_per_mp,
            "instructions_per_px": ipp, "model": bundle.name, "model_id": bundle.model_id.hex(),
        }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
