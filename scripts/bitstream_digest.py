"""SHA-256 of every bitstream of a fixed encode corpus: proof that a refactor changed no byte.

Encodes synthetic scenes (colour, gray, 12/16-bit, odd sizes, several tile
sizes) with every installed encoder bundle at a spread of qualities, the
lossless / max_error / target_bytes modes, threads, and, when
../shared is present, the `--quick` RD tiles of both development groups (the
bitstreams of ``bench/rd_pymars.py --quick``). Prints one digest of all and
writes ``name -> sha256`` to a JSON file, so two runs (before and after a
change) compare with ``diff``.

Run:  python scripts/bitstream_digest.py OUT.json [--no-shared]

It imports only the public API (``pymars.encode``, ``open_bundle``,
``pymars.data``), so it runs unchanged across internal moves.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np


def corpus(shared: bool):
    import pymars
    from pymars.data.synthetic import mars_like_scene

    yield "rgb_96x130", mars_like_scene(96, 130, seed=1)
    yield "rgb_300x270", mars_like_scene(300, 270, seed=2)
    rgb = mars_like_scene(200, 180, seed=3)
    yield "gray_200x180", rgb.mean(axis=2).astype(np.uint8)
    yield "gray3_130x77", np.repeat(rgb[:130, :77].mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    yield "rgb16_80x96", (mars_like_scene(80, 96, seed=4).astype(np.uint16) * 257)
    yield "gray12_100x90", (mars_like_scene(100, 90, seed=5)[..., 1].astype(np.uint16) * 16 + 7)
    if shared:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
        import rd_classic

        from pymars.evaluation import protocol

        for group in protocol.GROUPS:
            tiles = protocol.dev_tiles(group)[:: rd_classic.QUICK_TILE_STEP]
            for i, t in enumerate(tiles):
                yield f"{group}_{i}", t.pixels


def cases(shared: bool):
    import pymars

    weights = Path(pymars.__file__).parent / "weights"
    bundles = sorted(p.name for p in weights.iterdir() if (p / "encoder.pmw").exists())
    for name, img in corpus(shared):
        gray = img.ndim == 2
        for b in bundles:
            bundle = pymars.open_bundle(b)
            if not bundle.available:
                continue
            for q in (1, 15, 50, 75, 86, 98, 100):
                yield f"{name}/{b}/q{q}", (img, dict(quality=q, model=bundle))
        yield f"{name}/default/q60", (img, dict(quality=60))
        yield f"{name}/default/q90/tile64", (img, dict(quality=90, tile_size=64))
        if name.startswith(("rgb_", "gray_")):
            yield f"{name}/lossless", (img, dict(max_error=0))
            yield f"{name}/max_error2", (img, dict(max_error=2))
            yield f"{name}/target", (img, dict(target_bytes=img.size // 6))
            yield f"{name}/threads2", (img, dict(quality=70, threads=2, tile_size=64))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--no-shared", action="store_true")
    args = ap.parse_args(argv)
    import pymars
    from pymars.evaluation import protocol

    shared = not args.no_shared and protocol.mars_data_dir() is not None
    digests = {}
    for key, (img, kw) in cases(shared):
        try:
            data = pymars.encode(img, **kw)
        except Exception as e:  # the refusal is part of the behaviour too
            data = f"{type(e).__name__}: {e}".encode()
        digests[key] = hashlib.sha256(data).hexdigest()
    total = hashlib.sha256("".join(f"{k}={v}\n" for k, v in sorted(digests.items())).encode()).hexdigest()
    args.out.write_text(json.dumps({"total": total, "count": len(digests), "digests": digests}, indent=1))
    print(f"{len(digests)} bitstreams, digest {total[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
