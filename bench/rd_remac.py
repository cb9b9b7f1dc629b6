"""RD of REMAC on the development tiles against the base codec (`mars-rd-1`), with the mismatch cases.

Every figure comes from complete files of the C++ encoder (with the reference
library, selection on the rover's rules) decoded by the C++ entropy decoder
and ONNX Runtime, exactly as users run them. Variants:

* ``pymars``: the base codec (records read from ``bench/results/pymars_rd.json``,
  same tiles; run ``bench/rd_pymars.py`` first);
* ``remac-entropy``: the reference-guided entropy model alone: REMAC files
  decoded by the *base* synthesis g_s;
* ``remac``: the full model: the same files decoded by the ref-decoder;
* ``remac-unrelated``: every tile forced to the *least* similar references
  (largest descriptor distance, largest LBP KL): a deliberately unrelated
  reference;
* ``remac-nolib``: an empty library (every tile codes with "no reference").

Files are also checked for bit-exact entropy decoding: the decoder's
symbols, table indices and means equal the encoder's (once per tile and
variant, at its first quality, with the references the encoder used). BD-rates use the base codec
as anchor (and JPEG 4:2:0 for context). The encoder cost of REMAC (MACs per
pixel, selection included) is computed from the model's layer shapes and
printed with the measured encode-time ratio.

Run:  python bench/rd_remac.py --refs LIB.pmrl [--model remac-v1] [--quick]

Example:
    >>> remac_encoder_macs({"latent": 128, "hs_hidden": 128}, {"ref_channels": 16}, references=8)["total_extra"] > 0
    True
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling bench modules, also when loaded by path

import numpy as np
import rd_classic
from rd_pymars import DEFAULT_QUALITIES

from pymars.evaluation import bdrate
from pymars.evaluation.classic import Codec
from pymars.evaluation.protocol import GROUPS
from pymars.ground.synthesis import synthesis_backend

QUALITIES = DEFAULT_QUALITIES  # the base codec's grid, so the curves share their points
#: "remac" runs before "remac-entropy": both decode the same files, so the second reuses them
#: (its encode time is then not measured; the "remac" encode time stands for both).
VARIANTS = ("remac", "remac-entropy", "remac-unrelated", "remac-nolib")


def remac_encoder_macs(config: dict, remac: dict, references: int) -> dict:
    """Extra rover operations per pixel of REMAC over the base encoder (256x256 tiles).

    * reference branch of h_s: a 3x3 conv M -> R and R more input channels of
      the 3x3 ``mid`` conv, both at latent resolution (1/16 x 1/16 = 1/256 of the pixels);
    * entropy selection: |q| sums (M per latent position) and R x M distances per tile;
    * decoder selection: gray (3 MACs), LBP (8 compares) and histogram (1) per
      pixel, and R x 59 KL terms per tile.

    Example:
        >>> round(remac_encoder_macs({"latent": 128, "hs_hidden": 128}, {"ref_channels": 16}, 8)["hs_branch"], 1)
        144.0
    """
    m, hidden, r = int(config["latent"]), int(config["hs_hidden"]), int(remac["ref_channels"])
    per_latent = 9 * m * r + 9 * r * hidden
    out = {
        "hs_branch": per_latent / 256,
        "entropy_selection": (m + references * m / 256) / 256,
        "decoder_selection": 3 + 8 + 1 + references * 59 * 3 / 65536,
    }
    out["total_extra"] = sum(out.values())
    return out


def mismatch_loss(records: list[dict], qualities=(1, 29, 72, 100)) -> dict:
    """BD-rate (PSNR) of the mismatch variants against ``remac`` itself on their common qualities.

    The mismatch variants are coded at fewer qualities; comparing them with the
    base codec's 8-point curve would mix two BD ranges, so the RD loss of a
    wrong or missing reference is measured against the full model on the same points.

    Example:
        >>> recs = [dict(tile="t", codec=c, quality=q, bpp=q * s, psnr=30 + q / 10, ms_ssim=0.9)
        ...         for c, s in (("remac", 0.01), ("remac-nolib", 0.011)) for q in (1, 29, 72, 100)]
        >>> round(mismatch_loss(recs)["remac-nolib"]["bd_rate"], 1)
        10.0
    """
    keep = [r for r in records if r["quality"] in qualities and r["codec"] in ("remac", "remac-unrelated", "remac-nolib")]
    s = bdrate.summarize_group(keep, anchors=("remac",))
    return {n: s["bd"]["remac"]["psnr"][n] for n in ("remac-unrelated", "remac-nolib") if n in s["bd"]["remac"]["psnr"]}


def remac_codecs(bundle, library, base_bundle, qualities=QUALITIES) -> list[Codec]:
    import pymars
    from pymars import _core
    from pymars.remac import ReferenceLibrary
    from pymars.texture import lbp_histograms, rgb_to_gray

    core_lib = pymars.remac.library.core_library(bundle, library)
    empty = ReferenceLibrary(library.model_id, library.histograms[:0], library.descriptors[:0], library.latents[:0],
                             library.tiles[:0], [])
    core_empty = pymars.remac.library.core_library(bundle, empty)
    base_synth = synthesis_backend(base_bundle, "onnx")
    checked: set = set()
    files: dict = {}  # (library, forced, tile, quality) -> bytes: remac and remac-entropy share their files

    def unrelated(tile):
        # The least similar references by the selection's own measures.
        from pymars.remac.selection import latent_descriptor, quantise_latent
        from pymars.texture import kl_divergence

        y = _core.analyse_tile(bundle.core, tile)["y"]
        d = latent_descriptor(quantise_latent(y)).astype(np.int64)
        ent = int(np.argmax(np.abs(library.descriptors.astype(np.int64) - d).sum(1)))
        h = lbp_histograms(rgb_to_gray(tile if tile.ndim == 3 else np.repeat(tile[..., None], 3, 2)), "uniform")
        dec = int(np.argmax([kl_divergence(r, h) for r in library.histograms]))
        return ent, dec

    def check_exact(data, tile, q, lib_core, refs):
        """Decoder symbols and table indices of the (single) tile equal the encoder's."""
        dec = _core.decode_latents(bundle.core, data, None, 1, library=lib_core)
        assert all(t["status"] == "ok" for t in dec["tiles"]), "damaged tile"
        t = dec["tiles"][0]
        kw = {} if refs is None else {"entropy_ref": refs[0], "decoder_ref": refs[1]}
        enc = _core.analyse_tile(bundle.core, tile, int(q), library=lib_core, **kw)
        e = None if t["entropy_ref"] == 0xFFFF else t["entropy_ref"]
        got = _core.decode_tile_payload(bundle.core, enc["payload"], tile.shape[0], tile.shape[1], int(q),
                                        library=lib_core, entropy_ref=e)
        for k in ("symbols", "index", "mean_q4"):
            if not np.array_equal(enc[k], got[k]):
                raise AssertionError(f"entropy decoding is not bit-exact ({k})")

    def make(name, lib_core, lib, decoder, force):
        def encode(tile, q):
            import hashlib

            key = (id(lib_core), force, hashlib.sha1(tile.tobytes()).hexdigest(), tile.shape, int(q))
            if key in files:
                return files[key]
            refs = unrelated(tile) if force else None
            if refs is None:
                data = _core.encode(bundle.core, tile, int(q), 256, 0, 1, library=lib_core)
            else:
                data = _core.encode(bundle.core, tile, int(q), 256, 0, 1, None, [refs[0]], [refs[1]], lib_core)
            if (name, key[2]) not in checked:  # once per tile and variant (its first quality)
                check_exact(data, tile, q, lib_core, refs)
                checked.add((name, key[2]))
            files[key] = data
            return data

        def decode(data, shape):
            if decoder == "base":
                dec = _core.decode_latents(bundle.core, data, None, 1, library=lib_core)
                t = dec["tiles"][0]
                x = base_synth(t["y_hat"])[:, : t["height"], : t["width"]]
                img = pymars.ground.assemble.to_uint8(x).transpose(1, 2, 0)
                return (img if len(shape) == 3 else pymars.ground.assemble.gray_from_rgb(img)).reshape(shape)
            return pymars.decode(data, model=bundle, refs=lib).reshape(shape)

        settings = {"model": bundle.name, "model_id": bundle.model_id.hex(), "library": lib.library_hash.hex(),
                    "references": len(lib), "decoder": decoder, "forced_unrelated": force, "tile_size": 256}
        return Codec(name, tuple(qualities), encode=encode, decode=decode, settings=settings)

    return [
        make("remac", core_lib, library, "ref", False),
        make("remac-entropy", core_lib, library, "base", False),
        make("remac-unrelated", core_lib, library, "ref", True),
        make("remac-nolib", core_empty, empty, "ref", False),
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refs", required=True, help="reference library (LIB.pmrl + LIB.pmrg) built for the model")
    ap.add_argument("--model", default="remac-v1")
    ap.add_argument("--base", default=None, help="base bundle (default: the shipped one)")
    ap.add_argument("--pymars-rd", type=Path, default=Path("bench/results/pymars_rd.json"))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--groups", default=",".join(GROUPS), help="e.g. one group per process, merged by the card writer")
    ap.add_argument("--mismatch-qualities", default="1,29,72,100",
                    help="qualities of remac-unrelated / remac-nolib (a subset of the grid: 4 points give a BD-rate)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--summarize", type=Path, nargs="*", default=[],
                    help="only recompute the mismatch summary of existing result files (no coding)")
    args = ap.parse_args(argv)
    if args.summarize:
        for path in args.summarize:
            doc = json.loads(path.read_text())
            for group, entry in doc["groups"].items():
                entry["mismatch_vs_remac"] = mismatch_loss(entry["records"])
                print(group, {k: round(v["bd_rate"], 2) for k, v in entry["mismatch_vs_remac"].items()})
            path.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
        return 0

    import pymars
    from pymars.remac import ReferenceLibrary

    bundle = pymars.open_bundle(args.model)
    library = ReferenceLibrary.load(args.refs)
    base = pymars.open_bundle(args.base)
    names = [v for v in args.variants.split(",") if v]
    mismatch_q = tuple(int(q) for q in args.mismatch_qualities.split(","))
    for c in remac_codecs(bundle, library, base):
        if c.name in names:
            if c.name in ("remac-unrelated", "remac-nolib"):
                c = Codec(c.name, mismatch_q, encode=c.encode, decode=c.decode, settings=c.settings)
            rd_classic.register(c)
    groups = [g for g in args.groups.split(",") if g]
    doc = rd_classic.run(groups, names, quick=args.quick)
    base_doc = json.loads(args.pymars_rd.read_text())
    base_id = base_doc.get("settings", {}).get("pymars", {}).get("model_id")
    if base_id != base.model_id.hex():
        raise SystemExit(f"{args.pymars_rd} holds model {base_id}, not the base {base.name} ({base.model_id.hex()}): "
                         "re-run bench/rd_pymars.py")
    for group, entry in doc["groups"].items():
        b = base_doc["groups"][group]
        if b["tile_ids"] != entry["tile_ids"]:
            raise SystemExit(f"{group}: tile lists of {args.pymars_rd} and this run differ (use the same --quick)")
        keep = [r for r in b["records"] if r["codec"] in ("pymars", "jpeg420", "hevc444")]
        entry["records"] = keep + entry["records"]
        entry["summary"] = bdrate.summarize_group(entry["records"], anchors=("pymars", "jpeg420"))
        entry["mismatch_vs_remac"] = mismatch_loss(entry["records"], tuple(int(q) for q in args.mismatch_qualities.split(",")))
        for name in ["pymars", *names]:
            recs = [r for r in entry["records"] if r["codec"] == name]
            entry.setdefault("encode_ms_per_mp", {})[name] = 1e3 * float(
                np.median([r["encode_s"] / r["pixels"] * 1e6 for r in recs]))
    complexity = Path("bench/results/complexity.json")
    base_macs = json.loads(complexity.read_text())["rover_macs_per_px"] if complexity.exists() else None
    extra = remac_encoder_macs(bundle.config, bundle.manifest["remac"], len(library))
    doc["encoder_macs_per_pixel"] = {"base": base_macs, "remac_extra": extra,
                                     "remac": None if base_macs is None else base_macs + extra["total_extra"],
                                     "relative_increase": None if base_macs is None else extra["total_extra"] / base_macs}
    doc["library"] = {"hash": library.library_hash.hex(), "references": len(library), "rover_bytes": len(library.rover_bytes())}
    suffix = "" if groups == list(GROUPS) else "_" + "_".join(groups)
    out = args.out or Path("bench/results") / (f"remac_rd{suffix}_quick.json" if args.quick else f"remac_rd{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n")
    for group, entry in doc["groups"].items():
        print(f"{group}: RD loss of a mismatched reference against remac (same qualities):",
              {k: round(v["bd_rate"], 2) for k, v in entry["mismatch_vs_remac"].items()})
        bd = entry["summary"]["bd"]["pymars"]["psnr"]
        print(f"\n{group}: BD-rate (PSNR) against the base codec")
        for name in names:
            r = bd.get(name, {})
            print(f"  {name:16s} {r.get('bd_rate', float('nan')):+7.2f} %   BD-PSNR {r.get('bd_metric', float('nan')):+.3f} dB"
                  f"   encode {entry['encode_ms_per_mp'][name]:.0f} ms/MP (base {entry['encode_ms_per_mp']['pymars']:.0f})")
    print("\nencoder MACs per pixel:", json.dumps(doc["encoder_macs_per_pixel"]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
