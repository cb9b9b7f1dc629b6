"""Enhancement table on the development tiles (MarsQE Table III style), BD-rate, ablations, throughput.

For every development tile of `mars-rd-1` (../shared/EVALUATION.md: 38
MarsScapes + 31 MarsData tiles) and every compression setting (JPEG QF
20/30/40/50 with the protocol's JPEG anchor, pymars at a mid quality), the
tile is compressed whole and scored (PSNR, PSNR-B, SSIM, MS-SSIM) as
decoded and after each enhancer trained for that setting, run through ONNX
Runtime exactly as ``pymars enhance`` runs it. ``--cross`` also applies the
models of one setting to the other JPEG settings (reported as such, never as
per-QF models), which gives a BD-rate curve when only one QF is trained.

Also: BD-rate of JPEG + enhancer against JPEG (PSNR, per group and pooled
over all tiles), MarsQE's dictionary-size ablation at inference
(``--dict-sizes``), MarsQE with references of another class or all-zero
references (``--ref-ablation``), the whole-image ONNX-vs-PyTorch max abs error on a tile,
and ONNX Runtime CPU throughput in megapixels per second (``--throughput``).
Writes bench/results/enhance.json (or ``--out``) atomically and prints the
tables.

Run:  python bench/enhance_eval.py --models arcnn-jpeg30,dncnn-jpeg30,marsqe-lite-jpeg30,marsqe-jpeg30 \\
          --settings jpeg:20,jpeg:30,jpeg:40,jpeg:50,pymars:50 --cross --throughput

Example:
    >>> summarize([{"psnr": 30.0, "psnr_b": 29.0, "ssim": 0.9, "ms_ssim": 0.95, "bpp": 0.5}])["psnr"]
    30.0
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from pymars.clio import write_json

METRICS = ("psnr", "psnr_b", "ssim", "ms_ssim")


def score(raw: np.ndarray, img: np.ndarray) -> dict:
    from pymars.enhance.quality import psnr_b, ssim
    from pymars.evaluation.metrics import ms_ssim, psnr

    return {"psnr": psnr(raw, img), "psnr_b": psnr_b(raw, img), "ssim": ssim(raw, img), "ms_ssim": ms_ssim(raw, img)}


def summarize(records: list[dict]) -> dict:
    """Means of the metrics (and bpp) over records."""
    keys = [k for k in (*METRICS, "bpp") if k in records[0]]
    return {k: float(np.mean([r[k] for r in records])) for k in keys} | {"tiles": len(records)}


def main(argv=None) -> int:
    from tqdm import tqdm

    from pymars.enhance.cli import resolve_model
    from pymars.enhance.codecs import compress
    from pymars.enhance.dictionary import Dictionary
    from pymars.enhance.inference import Enhancer, load_classifier
    from pymars.evaluation.protocol import GROUPS, dev_tiles

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="arcnn-jpeg30,dncnn-jpeg30,marsqe-lite-jpeg30,marsqe-jpeg30")
    ap.add_argument("--settings", default="jpeg:20,jpeg:30,jpeg:40,jpeg:50,pymars:50")
    ap.add_argument("--cross", action="store_true", help="apply each model to every JPEG setting")
    ap.add_argument("--dictionary", default="runs/enhance/dictionary-6.npz")
    ap.add_argument("--dict-sizes", default="", help="MarsQE dictionary-size ablation, e.g. 1,3,6,9")
    ap.add_argument("--ref-ablation", action="store_true",
                    help="MarsQE at inference with other references: the best match of another class "
                         "(class + 2 mod 4), and all-zero references (TEM then transfers nothing)")
    ap.add_argument("--throughput", action="store_true")
    ap.add_argument("--bias", action="store_true", help="bias triangle (psi = frozen base-v1 g_a) per model")
    ap.add_argument("--quick", action="store_true", help="every 4th tile")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/results/enhance.json")
    ap.add_argument("--no-checks", action="store_true", help="skip the whole-image ONNX-vs-PyTorch check")
    ap.add_argument("--merge", default="", help="comma-separated partial result files to merge into --out")
    ap.add_argument("--vs-applied", default="", help="with --table: a results JSON with the QF 30 models applied "
                                                     "(--cross); compares the PSNR gains on the tiles both have")
    ap.add_argument("--plot", default="", help="draw the RD plots (PSNR and PSNR-B against bpp, JPEG and JPEG + each "
                                               "per-QF model family) of a results JSON into --plot-dir and exit")
    ap.add_argument("--plot-dir", default="bench/results/enhance_plots")
    ap.add_argument("--table", default="", help="print MarsQE's Table III (markdown) from a results JSON and exit")
    args = ap.parse_args(argv)
    if args.table:
        result = json.loads(Path(args.table).read_text())
        print(table3(result))
        if args.vs_applied:
            print(vs_applied(result, json.loads(Path(args.vs_applied).read_text())))
        return 0
    if args.plot:
        for path in plot_rd(json.loads(Path(args.plot).read_text()), Path(args.plot_dir)):
            print(f"wrote {path}")
        return 0
    if args.merge:
        return merge(args.merge.split(","), args.out)

    settings = [s for s in args.settings.split(",") if s]
    # A throughput-only run (no settings, no checks) needs no tile.
    tiles = [t for g in GROUPS for t in dev_tiles(g)] if settings or not args.no_checks else []
    if args.quick:
        tiles = tiles[::4]
    clf = load_classifier()
    models = {}
    for name in [m for m in args.models.split(",") if m]:
        try:
            folder = resolve_model(name)
        except FileNotFoundError as e:
            print(f"skipping {name}: {e}")
            continue
        d = Dictionary.load(args.dictionary) if Path(args.dictionary).is_file() else None
        models[name] = Enhancer(folder, dictionary=d, threads=args.threads, classifier=clf)
    variants = []  # (label, enhancer, setting it runs on)
    for name, enh in models.items():
        own = enh.meta["setting"]
        for s in settings:
            if s in own.split(","):  # its own setting (a blind model owns several)
                variants.append((name, enh, s))
            elif args.cross and s.startswith("jpeg") and own.startswith("jpeg"):
                variants.append((f"{name} (applied to {s})", enh, s))
    for n in [int(v) for v in args.dict_sizes.split(",") if v]:
        for name, enh in models.items():
            if enh.kind.startswith("marsqe") and Path(f"runs/enhance/dictionary-{n}.npz").is_file():
                e2 = Enhancer(enh.folder, dictionary=Dictionary.load(f"runs/enhance/dictionary-{n}.npz"),
                              threads=args.threads, classifier=clf)
                variants.append((f"{name} N_k={n}", e2, enh.meta["setting"]))

    if args.ref_ablation:
        for name, enh in models.items():
            if enh.kind.startswith("marsqe") and enh.kind != "marsqe-notem":
                for mode in ("other-class", "zero"):
                    variants.append((f"{name} refs={mode}", reference_variant(enh, mode, clf), enh.meta["setting"]))

    records: dict[str, dict[str, list]] = {}
    images: dict[str, list] = {}  # for the bias triangle: raw / compressed / enhanced tiles per (setting, method)
    comp_cache = {}
    for t in tqdm(tiles, desc="tiles"):
        raw = t.pixels if t.pixels.ndim == 3 else np.repeat(t.pixels[:, :, None], 3, 2)
        for s in settings:
            dec, nbytes = compress(raw, s)
            bpp = 8 * nbytes / (raw.shape[0] * raw.shape[1])
            comp_cache[(t.tile_id, s)] = bpp
            if args.bias:
                images.setdefault(f"{s}|raw", []).append(raw)
                images.setdefault(f"{s}|compressed", []).append(dec)
            records.setdefault(s, {}).setdefault("compressed", []).append(
                {"tile": t.tile_id, "group": t.group, "bpp": bpp, **score(raw, dec)})
            for label, enh, vs in variants:
                if vs != s:
                    continue
                out = enh.enhance(dec)
                if args.bias:
                    images.setdefault(f"{s}|{label}", []).append(out)
                records[s].setdefault(label, []).append({"tile": t.tile_id, "group": t.group, "bpp": bpp,
                                                         **score(raw, out)})
    bias = {}
    if args.bias:
        from pymars.enhance.gan import FeatureNet, bias_triangle

        psi = FeatureNet()
        for key, enhanced in images.items():
            s, label = key.split("|", 1)
            if label in ("raw", "compressed"):
                continue
            bias.setdefault(s, {})[label] = bias_triangle(images[f"{s}|raw"], images[f"{s}|compressed"], enhanced,
                                                          psi)

    extra = {}
    for name, enh in models.items():
        extra.setdefault(name, {})
        try:
            if args.no_checks:
                raise ImportError
            dec, _ = compress(tiles[0].pixels, enh.meta["setting"].split(",")[0])  # a blind model: its first setting
            torch_enh = Enhancer(enh.folder, dictionary=getattr(enh, "dictionary", None), classifier=clf,
                                 backend="torch")
            err = float(np.abs(torch_enh.enhance_float(dec) - enh.enhance_float(dec)).max())
        except ImportError:
            err = None
        if err is not None:
            extra[name]["onnx_vs_torch_max_abs"] = err
        if args.throughput:
            from pymars.data.synthetic import mars_like_scene

            img, _ = compress(mars_like_scene(512, 768, seed=1), enh.meta["setting"].split(",")[0])
            for threads in (1, 2):
                e2 = Enhancer(enh.folder, dictionary=getattr(enh, "dictionary", None), threads=threads,
                              classifier=clf)
                e2.enhance(img)  # warm-up
                t0 = time.perf_counter()
                e2.enhance(img)
                dt = time.perf_counter() - t0
                extra[name][f"mp_per_s_threads{threads}"] = img.shape[0] * img.shape[1] / 1e6 / dt

    return finish(records, bias, extra, {n: e.meta for n, e in models.items()}, settings, len(tiles), args.quick,
                  args.out)


def reference_variant(enh, mode: str, classifier):
    """A copy of a MarsQE Enhancer that gets other references than Eq. 4's match (``--ref-ablation``).

    ``other-class``: each patch keeps its class map but gets the best Eq. 4 match
    among the references of class (k + 2) mod 4; ``zero``: every reference is
    black, so TEM's cosine similarities are all 0 and it transfers nothing.
    """
    import copy

    from pymars.enhance.inference import Enhancer

    class OtherClass(Enhancer):
        def patch_classes_and_refs(self, padded):
            from pymars.enhance.patches import patch_grid

            cls, _ = super().patch_classes_and_refs(padded)
            flat = patch_grid(padded).reshape(-1, 128, 128, padded.shape[2])
            refs = np.array([self.dictionary.match(p, (int(k) + 2) % 4) for p, k in zip(flat, cls.ravel())])
            return cls, refs.reshape(cls.shape)

    if mode == "other-class":
        return OtherClass(enh.folder, dictionary=enh.dictionary, threads=enh.threads, classifier=classifier)
    if mode == "zero":
        d = copy.copy(enh.dictionary)
        d.raw, d.compressed = np.zeros_like(d.raw), np.zeros_like(d.compressed)
        return Enhancer(enh.folder, dictionary=d, threads=enh.threads, classifier=classifier)
    raise ValueError(f"unknown reference mode {mode!r}")


def finish(records: dict, bias: dict, extra: dict, models: dict, settings: list, n_tiles: int, quick: bool,
           out: str) -> int:
    """Table, BD-rate, JSON and printout from per-tile records (also used by ``--merge``)."""
    from pymars.evaluation.bdrate import bd
    from pymars.evaluation.protocol import GROUPS

    table = {s: {m: {"all": summarize(r), **{g: summarize([x for x in r if x["group"] == g]) for g in GROUPS}}
                 for m, r in per.items()} for s, per in records.items()}

    # BD-rate of JPEG + enhancer vs JPEG over the JPEG settings (per group and pooled).
    jpeg = [s for s in settings if s.startswith("jpeg")]
    bdr = {}
    labels = {lab.split(" (applied")[0] for s in jpeg for lab in table[s] if lab != "compressed" and "N_k" not in lab}
    for name in sorted(labels):
        for grp in ("all", *GROUPS):
            pts = []
            for s in jpeg:
                lab = next((lab for lab in table[s] if lab == name or lab == f"{name} (applied to {s})"), None)
                if lab is not None:
                    pts.append((table[s]["compressed"][grp]["bpp"], table[s]["compressed"][grp]["psnr"],
                                table[s][lab][grp]["psnr"]))
            if len(pts) >= 2:
                pts.sort()
                r = bd([p[0] for p in pts], [p[1] for p in pts], [p[0] for p in pts], [p[2] for p in pts])
                bdr.setdefault(name, {})[grp] = {"bd_rate_percent": r.bd_rate, "bd_psnr_db": r.bd_metric,
                                                 "points": len(pts), "warnings": list(r.warnings)}

    # The same, for a family of per-QF models (marsqe-jpeg20, marsqe-jpeg30, ...: each on its own QF).
    per_qf = {f"{base} (one model per QF)": {s: lab for s, lab in per.items() if s in jpeg}
                for base, per in own_setting_families(table).items()}
    for fam, per in sorted(per_qf.items()):
        if len(per) < 2:
            continue
        for grp in ("all", *GROUPS):
            pts = sorted((table[s]["compressed"][grp]["bpp"], table[s]["compressed"][grp]["psnr"],
                          table[s][lab][grp]["psnr"]) for s, lab in per.items())
            r = bd([p[0] for p in pts], [p[1] for p in pts], [p[0] for p in pts], [p[2] for p in pts])
            bdr.setdefault(fam, {})[grp] = {"bd_rate_percent": r.bd_rate, "bd_psnr_db": r.bd_metric,
                                            "points": len(pts), "warnings": list(r.warnings)}

    result = {"protocol": "mars-rd-1", "tiles": n_tiles, "quick": quick, "settings": settings,
              "table": table, "bd_rate_vs_jpeg": bdr, "bias_triangle": bias, "models": models,
              "checks": extra, "records": records}
    write_json(out, result)

    print(f"\n{n_tiles} development tiles; mean over all tiles (PSNR / PSNR-B in dB)")
    print(f"| setting | method | bpp | PSNR | PSNR-B | SSIM | MS-SSIM |\n|---|---|---|---|---|---|---|")
    for s, per in table.items():
        base = per["compressed"]["all"]["psnr"]
        for m, v in per.items():
            a = v["all"]
            gain = "" if m == "compressed" else f" ({a['psnr'] - base:+.2f})"
            print(f"| {s} | {m} | {a['bpp']:.3f} | {a['psnr']:.2f}{gain} | {a['psnr_b']:.2f} | {a['ssim']:.4f} | "
                  f"{a['ms_ssim']:.4f} |")
    for name, g in bdr.items():
        print(f"BD-rate vs JPEG, {name}: " + ", ".join(f"{k} {v['bd_rate_percent']:.2f} % ({v['points']} pts)"
                                                       for k, v in g.items()))
    for s, per in bias.items():
        for label, tri in per.items():
            print(f"bias triangle {s} {label}: " + "; ".join(
                f"{k}: S_CR {v['S_CR']:.4g}, S_CE {v['S_CE']:.4g}, S_RE {v['S_RE']:.4g}, deviation "
                f"{v['deviation_percent']:+.1f} %" for k, v in tri.items()))
    for name, v in extra.items():
        print(f"{name}: " + ", ".join(f"{k} {x:.3g}" if isinstance(x, float) else f"{k} {x}" for k, x in v.items()))
    print(f"wrote {out}")
    return 0


NAMES = {"arcnn": "AR-CNN", "dncnn": "DnCNN", "dncnn-cascade": "DnCNN + dilated stage", "marsqe-lite": "MarsQE-lite", "marsqe": "MarsQE"}


def table3(result: dict) -> str:
    """MarsQE's Table III (markdown) from a results JSON: per setting, the compressed input then every model
    evaluated on its own setting (a blind model on each of its settings); models applied to another setting
    are left out.

    Example:
        >>> row = {"all": {"psnr": 30.0, "psnr_b": 29.0, "ssim": 0.8, "ms_ssim": 0.95, "bpp": 0.5}}
        >>> r = {"table": {"jpeg:30": {"compressed": row, "m": row}}, "models": {"m": {"kind": "arcnn",
        ...      "setting": "jpeg:30"}}, "tiles": 69}
        >>> print(table3(r).splitlines()[-1])
        | jpeg:30 | AR-CNN (`m`) | 30.00 (+0.00) | 29.00 | 0.8000 | 0.9500 |
    """
    lines = [f"| setting | method | PSNR (dB) | PSNR-B (dB) | SSIM | MS-SSIM |", "|---|---|---|---|---|---|"]
    order = list(NAMES)
    for s, per in result["table"].items():
        base = per["compressed"]["all"]
        lines.append(f"| {s} | compressed ({base['bpp']:.3f} bpp) | {base['psnr']:.2f} | {base['psnr_b']:.2f} | "
                     f"{base['ssim']:.4f} | {base['ms_ssim']:.4f} |")
        rows = []
        for m, v in per.items():
            meta = result.get("models", {}).get(m)
            if m == "compressed" or meta is None or s not in meta["setting"].split(","):
                continue
            blind = "," in meta["setting"]
            name = NAMES.get(meta["kind"], meta["kind"]) + (" blind" if blind else "")
            rows.append(((blind, order.index(meta["kind"]) if meta["kind"] in order else 9), name, m, v["all"]))
        for _, name, m, a in sorted(rows, key=lambda r: r[0]):
            lines.append(f"| {s} | {name} (`{Path(m).name}`) | {a['psnr']:.2f} ({a['psnr'] - base['psnr']:+.2f}) | "
                         f"{a['psnr_b']:.2f} | {a['ssim']:.4f} | {a['ms_ssim']:.4f} |")
    return "\n".join(lines)


def vs_applied(result: dict, applied: dict) -> str:
    """PSNR gain of each per-setting model against the QF 30 model of its kind applied to that setting, on the
    tiles both results hold (e.g. the 18 of a ``--quick --cross`` run)."""
    lines = ["| setting | method | tiles | QF 30 model applied | fine-tuned for the setting |", "|---|---|---|---|---|"]
    for s, per in result["records"].items():
        if s not in applied["records"] or s == "jpeg:30":
            continue
        base = {r["tile"]: r["psnr"] for r in applied["records"][s]["compressed"]}
        for m, rows in per.items():
            meta = result.get("models", {}).get(m)
            if m == "compressed" or meta is None or meta["setting"] != s:
                continue
            app = applied["records"][s].get(f"{meta['kind']}-jpeg30 (applied to {s})")
            if not app:
                continue
            own = [r["psnr"] - base[r["tile"]] for r in rows if r["tile"] in base]
            lines.append(f"| {s} | {NAMES.get(meta['kind'], meta['kind'])} | {len(own)} | "
                         f"{np.mean([r['psnr'] - base[r['tile']] for r in app]):+.2f} | {np.mean(own):+.2f} |")
    return "\n".join(lines)


def own_setting_families(table: dict) -> dict[str, dict[str, str]]:
    """Per model base name, the labels of its per-setting models that ran on their own setting.

    ``marsqe-jpeg20`` on jpeg:20 and ``marsqe-pymars50`` on pymars:50 both belong to ``marsqe``; a model
    applied to another setting, or an ablation run, belongs to none.

    Example:
        >>> own_setting_families({"jpeg:20": {"compressed": {}, "marsqe-jpeg20": {}, "dncnn-jpeg30 (applied to jpeg:20)": {}}})
        {'marsqe': {'jpeg:20': 'marsqe-jpeg20'}}
    """
    import re

    out: dict[str, dict[str, str]] = {}
    for s, per in table.items():
        for lab in per:
            m = re.fullmatch(r"(.+)-((?:jpeg|pymars)\d+)", Path(lab).name.removeprefix("enhance-"))
            if m and m.group(2) == s.replace(":", ""):
                out.setdefault(m.group(1), {})[s] = lab
    return out


def families(result: dict) -> dict[str, dict[str, str]]:
    """Per method (display name), its per-setting model labels in a results JSON, the blind MarsQE included.

    Example:
        >>> families({"table": {"jpeg:20": {"compressed": {}, "marsqe-jpeg20": {}, "marsqe-blind": {}}}})
        {'MarsQE': {'jpeg:20': 'marsqe-jpeg20'}, 'MarsQE blind': {'jpeg:20': 'marsqe-blind'}}
    """
    out = {NAMES.get(base, base): per for base, per in own_setting_families(result["table"]).items()}
    for s, per in result["table"].items():
        for lab in per:
            if Path(lab).name.removeprefix("enhance-") == "marsqe-blind":
                out.setdefault("MarsQE blind", {})[s] = lab
    return out


def plot_rd(result: dict, out_dir: Path) -> list[Path]:
    """RD plots of JPEG and JPEG + enhancer (one curve per method, each QF enhanced by its own model).

    One PNG per metric (PSNR, PSNR-B) and tile group; pymars quality 50 and its enhanced versions are
    drawn as single points. Returns the paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pymars.evaluation.protocol import GROUPS

    out_dir.mkdir(parents=True, exist_ok=True)
    table, fams = result["table"], families(result)
    jpeg = sorted((s for s in table if s.startswith("jpeg")), key=lambda s: int(s.split(":")[1]))
    palette = plt.get_cmap("tab10").colors
    paths = []
    for group in ("all", *GROUPS):
        for metric, label in (("psnr", "PSNR"), ("psnr_b", "PSNR-B")):
            fig, ax = plt.subplots(figsize=(6.4, 4.6), dpi=110)
            x = [table[s]["compressed"][group]["bpp"] for s in jpeg]
            ax.plot(x, [table[s]["compressed"][group][metric] for s in jpeg], "o-", color="black", lw=2,
                    label="JPEG (QF " + "/".join(s.split(":")[1] for s in jpeg) + ")")
            for i, (name, per) in enumerate(fams.items()):
                pts = [(table[s]["compressed"][group]["bpp"], table[s][per[s]][group][metric]) for s in jpeg if s in per]
                if len(pts) >= 2:
                    ax.plot(*zip(*pts), "o-", ms=3.5, lw=1.3, color=palette[i % 10], label=f"JPEG + {name}")
                for s in per:
                    if not s.startswith("jpeg"):
                        ax.plot(table[s]["compressed"][group]["bpp"], table[s][per[s]][group][metric], "^",
                                color=palette[i % 10], ms=6)
            for s in table:
                if not s.startswith("jpeg"):
                    ax.plot(table[s]["compressed"][group]["bpp"], table[s]["compressed"][group][metric], "^",
                            color="black", ms=7, label=f"{s} (triangles: + each enhancer)")
            ax.set_xlabel("bits per pixel (mean over tiles)")
            ax.set_ylabel(f"{label} (dB, mean over tiles)")
            ax.set_title(f"{group}: {result.get('tiles', '?')} tiles" if group == "all" else group)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8, loc="lower right")
            fig.tight_layout()
            path = out_dir / f"rd_{group}_{metric}.png"
            fig.savefig(path)
            plt.close(fig)
            paths.append(path)
    return paths


def merge(parts: list[str], out: str) -> int:
    """Merge the JSON files of several partial runs (e.g. one per setting, run in parallel)."""
    records, bias, extra, models, settings, n_tiles, quick = {}, {}, {}, {}, [], 0, False
    for p in parts:
        r = json.loads(Path(p).read_text())
        for s, per in r["records"].items():
            for m, rows in per.items():
                records.setdefault(s, {}).setdefault(m, rows)
        for s, per in r.get("bias_triangle", {}).items():
            bias.setdefault(s, {}).update(per)
        for m, v in r.get("checks", {}).items():
            extra.setdefault(m, {}).update(v)
        models.update(r.get("models", {}))
        settings += [s for s in r["settings"] if s not in settings]
        n_tiles = max(n_tiles, r["tiles"])
        quick = quick or r["quick"]
    return finish(records, bias, extra, models, settings, n_tiles, quick, out)


if __name__ == "__main__":
    sys.exit(main())
