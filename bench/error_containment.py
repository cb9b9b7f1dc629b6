"""Error containment: corrupt encoded files at random and check that damage stays in the damaged tiles.

For each trial one encoded file gets one random corruption (kinds below). The
corrupted file is decoded with ``pymars.decode_with_report`` and every tile is
classified from the corruption's byte positions in the clean file:

* untouched: every byte of its record (24-byte record header + payload) is
  intact, though possibly shifted by an insertion or deletion elsewhere. It
  must decode, and bit-exactly to the clean decode (same pixels);
* touched: some byte of its record changed or was cut off. It must be
  reported (``report.damaged`` or ``report.missing``), never silently decoded
  into different pixels.

A violation is an untouched tile that is reported or differs, or a touched tile
that decodes into different pixels without being reported. Corruptions of
the 40-byte file header make the file refuse to decode as a whole (by design,
docs/bitstream.md §1); that kind is counted apart and must always be refused.

Kinds: ``payload_bit`` (one bit flip in a tile payload), ``record_header_bit``
(one bit flip in a record header), ``multi_bit`` (2..16 flips anywhere after the
file header), ``burst`` (a run of 1..300 bytes overwritten, a lost packet),
``truncate`` (cut at a random offset), ``insert`` / ``delete`` (1..64 random
bytes inserted or deleted), ``file_header_bit`` (one flip in the file header).

Run:  python bench/error_containment.py [--trials 500] [--seed 0] [--model BUNDLE] [--json out.json]

Without --model a random-weight micro codec is exported to a temporary folder
(the property does not depend on the weights, and its decoder is fast); pass
--model base-v1 for the shipped model (slower: its synthesis is 46 k MACs/px).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

KINDS = ("payload_bit", "record_header_bit", "multi_bit", "burst", "truncate", "insert", "delete", "file_header_bit")


def micro_bundle(folder: Path):
    """A random-weight micro codec (latent 8) exported as a bundle: a fixture, not a codec."""
    import torch

    from pymars.bundles import ModelBundle
    from pymars.train.codec.network import BaseCodec, BaseConfig
    from pymars.train.export.bundle_writer import write_bundle

    torch.manual_seed(0)
    cfg = BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8, synthesis=(8, 8, 8, 8))
    write_bundle(BaseCodec(cfg).eval(), folder, {"purpose": "error-containment fixture: random weights"})
    return ModelBundle(folder)


def encoded_files(bundle) -> list[dict]:
    """Multi-tile encodings: RGB and gray, 8 and 12 bit, partial edge tiles, 32/64-pixel tiles."""
    import pymars
    from pymars import _core
    from pymars.data.synthetic import mars_like_scene

    specs = [
        ("rgb256x384_t64", mars_like_scene(256, 384, seed=21), 64, 8, 60),
        ("gray200x296_t64", mars_like_scene(200, 296, seed=22, channels=1), 64, 8, 40),
        ("rgb12bit160x224_t32", mars_like_scene(160, 224, seed=23).astype(np.uint16) * 16 + 7, 32, 12, 85),
    ]
    files = []
    for name, img, tile, depth, q in specs:
        data = pymars.encode(img, q, tile_size=tile, bit_depth=depth, model=bundle)
        h = _core.parse_file_header(data)
        spans = _core.scan_tile_records(data, h["header_length"], h["tile_count"])
        records = [(off - 24, off + length) for off, length in spans]  # [start, end) of each record
        clean, rep = decode(data, bundle)
        assert rep.ok, f"{name}: the clean file must decode without damage"
        boxes = []
        for i in range(h["tile_count"]):
            tx, ty = i % -(-h["width"] // tile), i // -(-h["width"] // tile)
            boxes.append((ty * tile, min(h["height"], ty * tile + tile), tx * tile, min(h["width"], tx * tile + tile)))
        files.append(dict(name=name, data=data, header_length=h["header_length"], records=records, clean=clean,
                          boxes=boxes))
    return files


def decode(data: bytes, bundle):
    from pymars.ground.decode import DamagedTilesWarning, decode_with_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DamagedTilesWarning)
        return decode_with_report(data, model=bundle)


def corrupt(f: dict, kind: str, rng: np.random.Generator) -> tuple[bytes, set[int]]:
    """Returns the corrupted bytes and the indices of the tiles whose records were touched."""
    data, records, hl = f["data"], f["records"], f["header_length"]
    n = len(data)
    b = bytearray(data)
    if kind in ("payload_bit", "record_header_bit"):
        t = int(rng.integers(0, len(records)))
        start, end = records[t]
        pos = int(rng.integers(start + 24, end)) if kind == "payload_bit" else int(rng.integers(start, start + 24))
        b[pos] ^= 1 << int(rng.integers(0, 8))
        return bytes(b), {t}
    if kind in ("multi_bit", "burst", "file_header_bit"):
        if kind == "multi_bit":
            positions = rng.integers(hl, n, int(rng.integers(2, 17)))
            for pos in positions:
                b[int(pos)] ^= 1 << int(rng.integers(0, 8))
        elif kind == "burst":
            start = int(rng.integers(hl, n))
            length = min(int(rng.integers(1, 301)), n - start)
            fill = rng.integers(0, 256, length, dtype=np.uint8) if rng.random() < 0.5 else np.zeros(length, np.uint8)
            b[start : start + length] = fill.tobytes()
        else:
            b[int(rng.integers(0, hl))] ^= 1 << int(rng.integers(0, 8))
        changed = np.flatnonzero(np.frombuffer(bytes(b), np.uint8) != np.frombuffer(data, np.uint8))
        touched = {t for t, (s, e) in enumerate(records) if np.any((changed >= s) & (changed < e))}
        return bytes(b), touched
    if kind == "truncate":
        cut = int(rng.integers(hl, n))
        return bytes(b[:cut]), {t for t, (s, e) in enumerate(records) if e > cut}
    if kind == "insert":
        pos = int(rng.integers(hl, n + 1))
        b[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
        return bytes(b), {t for t, (s, e) in enumerate(records) if s < pos < e}
    if kind == "delete":
        pos = int(rng.integers(hl, n))
        k = int(rng.integers(1, 65))
        del b[pos : pos + k]
        return bytes(b), {t for t, (s, e) in enumerate(records) if pos < e and pos + k > s}
    raise ValueError(kind)


def run(trials: int, seed: int, bundle) -> dict:
    from pymars.errors import BitstreamError

    rng = np.random.default_rng(seed)
    files = encoded_files(bundle)
    stats = {k: dict(trials=0, untouched_tiles=0, untouched_exact=0, touched_tiles=0, touched_reported=0,
                     touched_intact=0, refused=0, violations=0) for k in KINDS}
    violations = []
    for trial in range(trials):
        f = files[trial % len(files)]
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        bad, touched = corrupt(f, kind, rng)
        s = stats[kind]
        s["trials"] += 1
        try:
            out, rep = decode(bad, bundle)
        except BitstreamError as e:
            s["refused"] += 1
            # docs/bitstream.md §3, "Decoder limits": a file left without a single valid tile record
            # (e.g. cut inside its first record) is refused as a whole; that is no violation.
            no_record_left = len(touched) == len(f["records"]) and "tile record" in str(e)
            if kind != "file_header_bit" and not no_record_left:
                s["violations"] += 1
                violations.append(dict(trial=trial, file=f["name"], kind=kind, problem=f"refused: {e}"))
            continue
        if kind == "file_header_bit":
            # Every header byte is under the header CRC: a flip must never be accepted.
            s["violations"] += 1
            violations.append(dict(trial=trial, file=f["name"], kind=kind, problem="damaged header accepted"))
            continue
        reported = set(rep.damaged) | set(rep.missing)
        for t, (y0, y1, x0, x1) in enumerate(f["boxes"]):
            same = np.array_equal(out[y0:y1, x0:x1], f["clean"][y0:y1, x0:x1])
            if t not in touched:
                s["untouched_tiles"] += 1
                if t not in reported and same:
                    s["untouched_exact"] += 1
                else:
                    s["violations"] += 1
                    violations.append(dict(trial=trial, file=f["name"], kind=kind, tile=t,
                                           problem="untouched tile " + ("reported" if t in reported else "differs")))
            else:
                s["touched_tiles"] += 1
                if t in reported:
                    s["touched_reported"] += 1
                elif same:
                    s["touched_intact"] += 1  # e.g. a CRC collision would land here; so far never seen
                else:
                    s["violations"] += 1
                    violations.append(dict(trial=trial, file=f["name"], kind=kind, tile=t,
                                           problem="touched tile decoded silently into different pixels"))
    return dict(trials=trials, seed=seed, files=[f["name"] for f in files],
                tiles=[len(f["records"]) for f in files], per_kind=stats, violations=violations)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=None, help="bundle name or folder (default: a random micro codec)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        if args.model:
            from pymars.bundles import open_bundle

            bundle = open_bundle(args.model)
        else:
            bundle = micro_bundle(Path(d))
        res = run(args.trials, args.seed, bundle)
    res["model"] = args.model or "random micro codec (latent 8)"
    res["seconds"] = round(time.time() - t0, 1)
    print(f"error containment: {res['trials']} corruptions of {len(res['files'])} files "
          f"({', '.join(f'{n}: {t} tiles' for n, t in zip(res['files'], res['tiles']))}), model {res['model']}")
    print(f"{'kind':18s} {'trials':>6s} {'untouched':>9s} {'exact':>7s} {'touched':>7s} {'reported':>8s} "
          f"{'refused':>7s} {'violations':>10s}")
    total = dict(trials=0, untouched_tiles=0, untouched_exact=0, touched_tiles=0, touched_reported=0, refused=0,
                 violations=0)
    for kind, s in res["per_kind"].items():
        print(f"{kind:18s} {s['trials']:6d} {s['untouched_tiles']:9d} {s['untouched_exact']:7d} {s['touched_tiles']:7d} "
              f"{s['touched_reported']:8d} {s['refused']:7d} {s['violations']:10d}")
        for k in total:
            total[k] += s[k]
    print(f"{'all':18s} {total['trials']:6d} {total['untouched_tiles']:9d} {total['untouched_exact']:7d} "
          f"{total['touched_tiles']:7d} {total['touched_reported']:8d} {total['refused']:7d} {total['violations']:10d}")
    for v in res["violations"][:20]:
        print("VIOLATION", v)
    print(f"{len(res['violations'])} violations in {res['seconds']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 1 if res["violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
