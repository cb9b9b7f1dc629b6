"""How many bits could reference latents save at most? A retrieval bound for REMAC's entropy model.

REMAC-v1 conditions h_s on the entropy reference's latent laid over the tile
without alignment, and the references did not help (docs/remac.md). This
script asks the question behind that result on the development tiles: if the
entropy model could *retrieve*, for every latent position, the best matching
latent vector of the references (M = 128 channels, int8 with 3 fractional
bits, as the library stores them) and use it as the mean of the Gaussian,
how many bits of y would it save against the hyperprior's mean?

Three cases per rate level (ideal code length of y, the base model's scales,
the tile's own rounding):

* ``hyperprior``: the base model's mean (what pymars codes with);
* ``oracle``: per position the better of the hyperprior mean and the
  reference vector nearest to y itself (L2), paying 1 flag bit per position
  and log2(N) bits for the index when a reference wins. The ground cannot
  find that vector without being told, so this is an upper bound for any
  position-wise reuse of reference latents (with side information);
* ``decoder``: the reference vector nearest to the hyperprior mean (which
  the ground knows), averaged with it: no side information.

for two libraries: the 8 references of ``pymars refs build --protocol``
(``--refs LIB``) and every candidate tile of the protocol pool (467 tiles,
evaluation windows held out, 120 k vectors), the largest library the
development set allows. ``oracle_free`` is the oracle without its side
information: not achievable, the ceiling of what the vectors hold (and
inflated by picking the best of up to 120 k candidates per position).
Distortion is not counted: these are rate bounds only.

It also prints the autoencoder ceiling: the PSNR of g_s(y) with y not
quantised: the limit that finer quantisation of this analysis/synthesis pair approaches.

Run:  python bench/remac_retrieval_bound.py --refs runs/refs/protocol.pmrl [--levels 0 3 7] [--max-tiles N]

Example:
    >>> import torch
    >>> bits_per_position(torch.zeros(1, 2, 1, 1), torch.zeros(1, 2, 1, 1), torch.ones(1, 2, 1, 1)).shape
    torch.Size([1, 1, 1])
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch


def bits_per_position(sym_plus_mean: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Ideal code length (bits) of each latent position, summed over channels: (B, M, H, W) -> (B, H, W)."""
    from pymars.train.codec.entropy_model import discretized_gaussian

    return -torch.log2(discretized_gaussian(sym_plus_mean, mean, scale)).sum(1)


def nearest(queries: torch.Tensor, bank: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """For each row of ``queries`` (P, M) the row of ``bank`` (N, M) nearest in L2."""
    out = []
    bn = bank.square().sum(1)
    for i in range(0, len(queries), chunk):
        q = queries[i : i + chunk]
        d = bn[None, :] - 2 * q @ bank.T
        out.append(bank[d.argmin(1)])
    return torch.cat(out)


def latent_bank(model, tiles: list[np.ndarray]) -> torch.Tensor:
    """Library-format latent vectors (int8 q = round(8 y), stored /8) of every position of ``tiles``: (N, M)."""
    vecs = []
    with torch.no_grad():
        for t in tiles:
            x = torch.from_numpy(t.transpose(2, 0, 1).copy()).float().div(255)[None]
            q = torch.round(model.g_a(x) * 8).clamp(-127, 127) / 8
            vecs.append(q[0].flatten(1).T)
    return torch.cat(vecs)


def measure(model, tiles: list[np.ndarray], banks: dict[str, torch.Tensor], levels: list[int]) -> dict:
    """bpp of y per level for the hyperprior mean and, per bank, the oracle and decoder-side retrieval."""
    from pymars.train.codec.entropy_model import LOG_SCALE_STEP, scale_from_index
    from pymars.train.codec.estimate import pad_to_stride
    from pymars.train.codec.integer import ACT_FRAC_BITS

    res: dict = {}
    pixels = sum(t.shape[0] * t.shape[1] for t in tiles)
    with torch.no_grad():
        for lv in levels:
            acc = {"hyperprior": 0.0}
            for t in tiles:
                x = torch.from_numpy(t.transpose(2, 0, 1).copy()).float().div(255)[None]
                y = model.g_a(pad_to_stride(x))
                z_hat = torch.round(model.h_a(y)).clamp(-127, 127)
                mean_q4, index = model.h_s(z_hat)
                mean = (mean_q4 * 2.0**-ACT_FRAC_BITS)[..., : y.shape[2], : y.shape[3]]
                index = index[..., : y.shape[2], : y.shape[3]]
                k = model.gain_steps(torch.tensor([float(lv)]))[:, :, None, None]
                gain = torch.exp(LOG_SCALE_STEP * k)
                scale = scale_from_index(index + k)

                def bits_with(m):
                    sym = torch.round(y * gain - m * gain)
                    return bits_per_position(sym + m * gain, m * gain, scale)[0]

                base = bits_with(mean)
                acc["hyperprior"] += float(base.sum())
                m_ch, h, w = y.shape[1:]
                yv, mv = y[0].flatten(1).T, mean[0].flatten(1).T
                for name, bank in banks.items():
                    side = 1 + math.log2(len(bank))
                    oracle = nearest(yv, bank).T.reshape(1, m_ch, h, w)
                    alt = bits_with(oracle) + side
                    acc[f"oracle/{name}"] = acc.get(f"oracle/{name}", 0.0) + float(torch.minimum(base + 1, alt).sum())
                    # Without any side information: not achievable, the ceiling of the ceiling.
                    free = torch.minimum(base, alt - side)
                    acc[f"oracle_free/{name}"] = acc.get(f"oracle_free/{name}", 0.0) + float(free.sum())
                    acc[f"oracle_wins/{name}"] = acc.get(f"oracle_wins/{name}", 0.0) + float((alt < base + 1).float().mean()) / len(tiles)
                    dec = nearest(mv, bank).T.reshape(1, m_ch, h, w)
                    acc[f"decoder/{name}"] = acc.get(f"decoder/{name}", 0.0) + float(bits_with(0.5 * (mean + dec)).sum())
            res[f"level{lv}"] = {k: (v if k.startswith("oracle_wins") else v / pixels) for k, v in acc.items()}
    return res


def autoencoder_ceiling(model, tiles: list[np.ndarray]) -> float:
    """Mean PSNR (dB) of g_s(y) with the *unquantised* y: the best any rate of this analysis/synthesis pair gives."""
    from pymars.train.codec.estimate import pad_to_stride

    ps = []
    with torch.no_grad():
        for t in tiles:
            x = torch.from_numpy(t.transpose(2, 0, 1).copy()).float().div(255)[None]
            h, w = x.shape[2:]
            x_hat = torch.round(model.g_s(model.g_a(pad_to_stride(x)))[..., :h, :w].clamp(0, 1) * 255) / 255
            ps.append(10 * math.log10(1 / max(float((x_hat - x).square().mean()), 1e-12)))
    return float(np.mean(ps))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refs", required=True, help="the protocol library (LIB.pmrl; its 8 references)")
    ap.add_argument("--levels", type=int, nargs="*", default=[0, 3, 7])
    ap.add_argument("--max-tiles", type=int, default=0, help="first N development tiles per group (0: all)")
    ap.add_argument("--out", default="bench/results/remac_retrieval_bound.json")
    args = ap.parse_args(argv)

    from pymars.evaluation.protocol import dev_tiles
    from pymars.remac import ReferenceLibrary
    from pymars.remac.build import protocol_candidate_tiles
    from pymars.train.remac.loop import load_base_model

    torch.set_num_threads(1)
    model = load_base_model("").eval()
    lib = ReferenceLibrary.load(args.refs, ground=False)
    banks = {f"library{len(lib)}": torch.from_numpy(lib.latents.astype(np.float32) / 8).flatten(2).permute(0, 2, 1).reshape(-1, lib.latents.shape[1])}
    pool, _, _ = protocol_candidate_tiles()
    banks[f"pool{len(pool)}"] = latent_bank(model, pool)
    doc = {"references": {k: len(v) for k, v in banks.items()}, "groups": {}}
    for group in ("dev_marsscapes", "dev_marsdata"):
        tiles = [t.pixels for t in dev_tiles(group)]
        tiles = tiles[: args.max_tiles] if args.max_tiles else tiles
        doc["groups"][group] = {"tiles": len(tiles), "autoencoder_psnr": autoencoder_ceiling(model, tiles),
                                "bpp_y": measure(model, tiles, banks, args.levels)}
        print(group, json.dumps(doc["groups"][group], indent=1))
    for group, g in doc["groups"].items():
        print(f"{group}: autoencoder ceiling (unquantised y) {g['autoencoder_psnr']:.2f} dB")
        for lv, r in g["bpp_y"].items():
            h = r["hyperprior"]
            print(f"{group} {lv}: y {h:.4f} bpp; " + ", ".join(
                f"{k} {100 * (v / h - 1):+.2f} %" for k, v in r.items() if k != "hyperprior" and not k.startswith("oracle_wins")))
    Path(args.out).write_text(json.dumps(doc, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
