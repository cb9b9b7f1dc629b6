"""What the integer entropy path costs in rate, measured on the development tiles.

For each tile and quality, three rates in bits per pixel:

* ``float``: ideal code length with the *unquantised* float twin of h_s
  (float weights and activations, continuous scales: no table grid);
* ``integer``: ideal code length of the symbols the C++ encoder actually coded,
  under the blob's integer CDF tables (quantised h_s, 80-entry scale table);
* ``file``: the complete file (coder overhead, tile record and header included).

``integer - float`` is the price of bit-exactness for this model (trained with
fake quantisation); ``file - integer`` is the rANS and container overhead.

Run:  python bench/integer_cost.py [--quick]

Example:
    >>> round(float(ideal_bits_gaussian(np.zeros(4), np.zeros(4), np.ones(4))), 2)
    5.54
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
import argparse
import math

import numpy as np
import torch

from pymars.train.codec.entropy_model import LOG_SCALE_STEP, SCALE_MAX, SCALE_MIN


def ideal_bits_gaussian(sym: np.ndarray, mean_frac: np.ndarray, scale: np.ndarray) -> float:
    """-log2 of the discretised Gaussian mass of integer symbols (float64)."""
    from scipy.special import ndtr

    v = np.abs(sym - mean_frac)
    p = ndtr((0.5 - v) / scale) - ndtr((-0.5 - v) / scale)
    return float(-np.log2(np.maximum(p, 1e-12)).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--qualities", default="1,29,58,86,100")
    ap.add_argument("--quick", action="store_true", help="every 6th tile")
    args = ap.parse_args(argv)

    import pymars
    from pymars import _core
    from pymars.evaluation.protocol import GROUPS, dev_tiles
    from pymars.train.codec.entropy_model import SCALES
    from pymars.train.export.cdf_tables import gaussian_table

    torch.set_num_threads(1)
    bundle = pymars.open_bundle(args.model)
    from pymars.train.codec.torch_backend import torch_model
    model = torch_model(bundle)
    tables = [gaussian_table(float(s)) for s in SCALES]
    qualities = [int(q) for q in args.qualities.split(",")]
    print(f"{'group':<16}{'q':>4}{'float bpp':>11}{'integer bpp':>13}{'file bpp':>10}{'int/float':>11}{'file/int':>10}")
    for group in GROUPS:
        tiles = dev_tiles(group)[:: 6 if args.quick else 1]
        for q in qualities:
            fl, it, fi = [], [], []
            for t in tiles:
                h, w = t.pixels.shape[:2]
                enc = _core.analyse_tile(bundle.core, t.pixels, q)
                data = pymars.encode(t.pixels, q, model=bundle)
                # integer: ideal bits of the coded y symbols and z values under the blob's tables
                idx, sym = enc["index"], enc["symbols"]
                bits_int = sum(tables[i].code_length_bits(int(s)) for i, s in zip(idx.ravel(), sym.ravel()))
                z = torch.from_numpy(enc["z_hat"]).float()[None]
                with torch.no_grad():
                    bits_z = float(-torch.log2(model.z_density.likelihood(z)).sum())
                    model.h_s.set_quantized(False)
                    mean_q4, index = model.h_s(z)
                    model.h_s.set_quantized(True)
                hy, wy = sym.shape[1:]
                level = torch.tensor([(q - 1) / 99 * (model.levels - 1)])
                k = model.gain_steps(level)[0].numpy()[:, None, None]
                g = np.exp(LOG_SCALE_STEP * k)
                mean = mean_q4[0, :, :hy, :wy].numpy() / 16
                scale = np.clip(np.exp(math.log(SCALE_MIN) + LOG_SCALE_STEP * (index[0, :, :hy, :wy].numpy() + k)),
                                SCALE_MIN, SCALE_MAX)
                y = enc["y"]
                sym_f = np.round(y * g - mean * g)
                bits_float = ideal_bits_gaussian(sym_f, 0 * sym_f, scale) + bits_z
                fl.append(bits_float / (h * w))
                it.append((bits_int + bits_z) / (h * w))
                fi.append(8 * len(data) / (h * w))
            f, i, b = np.mean(fl), np.mean(it), np.mean(fi)
            print(f"{group:<16}{q:>4}{f:>11.4f}{i:>13.4f}{b:>10.4f}{(i / f - 1) * 100:>10.2f}%{(b / i - 1) * 100:>9.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
