"""Build the wavelet bundles base-v2-gray-wv and base-v2-wv (the defaults) from the trained ones.

    python export/wavelet_bundles.py [--crops 400] [--seed 0] [--out pymars/weights]

Each bundle keeps its source's learned weights (shared files: base-v2-gray, base-v1)
and changes the coding of its qualities (docs/bitstream.md §4.9, §4.8):

* base-v2-gray-wv: qualities 1..97 wavelet, steps 160 -> 5 levels (geometric), 98..100
  near-lossless k = 2, 1, 0 (range coded);
* base-v2-wv (RGB): qualities 1..98 wavelet, steps 160 -> 4, 99..100 near-lossless k = 1, 0.

The wavelet coder's priors (WVPR) are trained here on ``--crops`` random 256x256
crops of the training pools (every evaluation tile held out), with ``--seed``;
the same arguments give the same files byte for byte.

Example:
    >>> LADDERS["base-v2-gray-wv"]["wv_min_step"]
    5.0
"""
from __future__ import annotations

import argparse
from pathlib import Path

#: Quality ladders of the two bundles. Where the near-lossless coder starts is
#: where it stops costing more than the wavelet coder at the same PSNR on the
#: development tiles: k = 2 (45 dB) on gray, k = 1 (50 dB) on colour (colour
#: k = 2 came out 0.7 dB below the wavelet's last quality at 30 % more bytes).
LADDERS = {
    "base-v2-gray-wv": dict(source="base-v2-gray", channels=1, nl_from_quality=98, nl_max_error=2, nl_coder="arith",
                            wv_from_quality=1, wv_max_step=160.0, wv_min_step=5.0),
    "base-v2-wv": dict(source="base-v1", channels=3, nl_from_quality=99, nl_max_error=1, nl_coder="arith",
                       wv_from_quality=1, wv_max_step=160.0, wv_min_step=4.0),
}


def build(ladders: dict, root: Path, wavelet_crops: int, seed: int, only: str | None = None,
          nl_crops: int = 0) -> None:
    """Derive every bundle of ``ladders`` (name -> options with ``source`` and ``channels``) in ``root``.

    WVPR priors from ``wavelet_crops`` training crops; NLPR priors (Arith2 bundles) from
    ``nl_crops`` when it is not 0. Same arguments, same files.

    Example:
        >>> build(LADDERS, Path("pymars/weights"), 400, 0, only="no-such-bundle")  # nothing to build
    """
    from pymars.train.codec import nl_priors, wavelet_priors
    from pymars.train.export.bundle_writer import derive_bundle

    for name, ladder in ladders.items():
        if only and name != only:
            continue
        opts = dict(ladder)
        source, channels = opts.pop("source"), opts.pop("channels")
        wv = wavelet_priors.train_priors(channels, n=wavelet_crops, seed=seed)
        nl = nl_priors.train_priors(channels, n=nl_crops, seed=seed) if nl_crops else None
        files = derive_bundle(root / source, root / name, wavelet_priors=wv, nl_priors=nl, **opts)
        what = f"WVPR from {wavelet_crops} crops" + (f", NLPR from {nl_crops}" if nl_crops else "")
        print(f"{name}: {files['encoder.pmw'][:16]}... ({what}, seed {seed})")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=400, help="training crops for the priors")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="pymars/weights", help="folder of the bundles (and of their sources)")
    ap.add_argument("--only", choices=sorted(LADDERS), help="build one bundle")
    args = ap.parse_args(argv)
    build(LADDERS, Path(args.out), args.crops, args.seed, args.only)


if __name__ == "__main__":
    main()
