"""Build the lossless / near-lossless bundles base-v2-nl (RGB) and base-v2-gray-nl (gray).

    python export/lossless_bundles.py [--crops 200] [--wavelet-crops 400] [--seed 0] [--out pymars/weights]

What ``pymars encode --lossless`` / ``--max-error K`` use when no model is named
(pymars.bundles.DEFAULT_NEAR_LOSSLESS_MODEL, DEFAULT_GRAY_NEAR_LOSSLESS_MODEL).
Each keeps its source's learned weights (shared files) and codes

* qualities 81..100 with the Arith2 near-lossless coder (docs/bitstream.md §4.8):
  every sample within k = 16 (quality 81) falling to 0 (lossless, quality 100);
  its NLPR priors are trained here on ``--crops`` random 256x256 crops of the
  training pools (every evaluation tile held out);
* qualities 1..80 with the wavelet coder (§4.9, steps 160 -> 4 levels RGB, 160 -> 5
  gray) and the WVPR priors of the wavelet defaults (``--wavelet-crops``, same seed).

The same arguments give the same files byte for byte.

Example:
    >>> LADDERS["base-v2-nl"]["nl_coder"]
    'arith2'
"""
from __future__ import annotations

import argparse
from pathlib import Path

LADDERS = {
    "base-v2-nl": dict(source="base-v1", channels=3, nl_from_quality=81, nl_max_error=16, nl_coder="arith2",
                       wv_from_quality=1, wv_max_step=160.0, wv_min_step=4.0),
    "base-v2-gray-nl": dict(source="base-v2-gray", channels=1, nl_from_quality=81, nl_max_error=16,
                            nl_coder="arith2", wv_from_quality=1, wv_max_step=160.0, wv_min_step=5.0),
}


def main(argv=None) -> None:
    from wavelet_bundles import build  # export/ is a folder of scripts, not a package

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=200, help="training crops for the near-lossless priors (NLPR)")
    ap.add_argument("--wavelet-crops", type=int, default=400, help="training crops for the wavelet priors (WVPR)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="pymars/weights", help="folder of the bundles (and of their sources)")
    ap.add_argument("--only", choices=sorted(LADDERS), help="build one bundle")
    args = ap.parse_args(argv)
    build(LADDERS, Path(args.out), args.wavelet_crops, args.seed, args.only, nl_crops=args.crops)


if __name__ == "__main__":
    main()
