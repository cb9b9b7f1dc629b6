"""The ``enhance`` commands of the pymars CLI.

What it is for: ``pymars enhance IN -o OUT`` (ONNX Runtime, progress bar,
atomic write that never replaces the input: pymars.clio) and the commands that make a shipped enhancer, in order:

    pymars enhance-train classifier            # patch classifier -> pymars/weights/enhance-classifier
    pymars enhance-train dictionary            # N_k = 1, 3, 6, 9, 12 dictionaries + CH index -> runs/enhance
    pymars enhance-train cache --setting jpeg:30 --regions 800
    pymars enhance-train model --kind unet --setting jpeg:30 --steps 10000 --precision bf16 \\
        --out runs/enhance/unet-jpeg30-c48
    pymars enhance-export runs/enhance/unet-jpeg30-c48/checkpoint.pt --half -o pymars/weights/enhance-unet-jpeg30-10k
    # another setting, fine-tuned from the QF 30 model:
    pymars enhance-train model --kind marsqe --setting jpeg:20 --steps 200 --lr 1e-4 \\
        --init-from pymars/weights/enhance-marsqe-jpeg30

:func:`register` adds them to the main parser (pymars/cli.py); each returns
an exit status, and bad input gives a one-line error (the main CLI turns
exceptions into ``pymars: error: ...`` and status 2).

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command")
    >>> register(sub)
    >>> p.parse_args(["enhance", "in.jpg", "-o", "out.png"]).model  # the model for the JPEG's quality
    'auto'
"""
from __future__ import annotations

import json
from pathlib import Path

from pymars.bundles import training_file
from pymars.clio import positive_int

DEFAULT_MODEL = "unet-jpeg30-10k"
#: What ``pymars enhance`` runs by default: the shipped enhancer for the JPEG's quality (pymars.enhance.jpeg_quality).
AUTO = "auto"
RUNS = Path("runs/enhance")


def resolve_model(name: str) -> Path:
    """A weights folder from a name (``marsqe-jpeg30`` -> pymars/weights/enhance-marsqe-jpeg30) or a path.

    Example:
        >>> resolve_model("no-such-model")
        Traceback (most recent call last):
        ...
        FileNotFoundError: enhancer 'no-such-model' not found (neither a folder nor pymars/weights/enhance-no-such-model)
    """
    from pymars.enhance.inference import WEIGHTS

    p = Path(name)
    if p.is_dir():
        return p
    q = WEIGHTS / f"enhance-{name}"
    if q.is_dir():
        return q
    raise FileNotFoundError(f"enhancer {name!r} not found (neither a folder nor pymars/weights/enhance-{name})")


def cmd_enhance(args) -> int:
    import time

    from pymars.clio import AtomicOutput, check_output, read_input
    from pymars.enhance.inference import Enhancer
    from pymars.imageio import image_bytes, image_from_bytes, is_pds, read_source

    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".tif", ".tiff") and not out.is_dir():
        raise ValueError(f"{args.output}: write a lossless .png or .tif (an enhanced image saved as JPEG "
                         "would be compressed again)")
    out = check_output(out, "image", [args.input])
    from pymars.ground.synthesis import onnx_providers

    providers = onnx_providers(getattr(args, "providers", None))  # a missing provider: one line, before any work
    import warnings

    from pymars.enhance.jpeg_quality import choose_model

    data = None
    if is_pds(args.input):  # a PDS3 / PDS4 product (pdr), e.g. an 8-bit browse or JPEG-history product
        img = read_source(args.input)[0]
    else:
        data = read_input(args.input)
        img = image_from_bytes(data, args.input)
    if img.dtype != "uint8":
        raise ValueError(f"{args.input}: the enhancers work on 8-bit images (JPEG/pymars output), got {img.dtype}")
    model, quality, note = choose_model(args.model, data, gray=img.ndim == 2)
    if note:
        warnings.warn(note)
    if model is None:  # a JPEG above every model's reach: enhancing would make it worse
        with AtomicOutput(out) as sink:
            sink.write(image_bytes(img, out.suffix))
        print(f"{out}: {img.shape[1]}x{img.shape[0]}, unchanged (JPEG quality {quality})")
        return 0
    enh = Enhancer(resolve_model(model), dictionary=args.dictionary, threads=args.threads, providers=providers,
                   batch=args.batch)
    with AtomicOutput(out) as sink:
        t0 = time.perf_counter()
        res = enh.enhance(img, progress=not args.quiet)
        dt = time.perf_counter() - t0
        sink.write(image_bytes(res, out.suffix))
    mp = img.shape[0] * img.shape[1] / 1e6
    read = f", JPEG quality {quality}" if quality is not None else ""
    print(f"{out}: {img.shape[1]}x{img.shape[0]}, {Path(model).name.removeprefix('enhance-')}: {enh.kind} "
          f"({enh.meta.get('setting')}{read}), {dt:.2f} s, {mp / dt:.3f} MP/s")
    return 0


def cmd_train(args) -> int:
    import numpy as np

    RUNS.mkdir(parents=True, exist_ok=True)
    if args.what == "classifier":
        from pymars.enhance.training import train_patch_classifier

        clf, rep = train_patch_classifier(str(_labelled_patches("labelled_train")),
                                          str(_labelled_patches("labelled_dev")))
        from pymars.enhance.inference import CLASSIFIER

        CLASSIFIER.mkdir(parents=True, exist_ok=True)
        (CLASSIFIER / "classifier.json").write_text(json.dumps(clf.to_json(), indent=1))
        (RUNS / "classifier_report.json").write_text(json.dumps(rep, indent=1))
        print(json.dumps(rep))
        return 0
    if args.what == "dictionary":
        from pymars.enhance.dictionary import choose_references

        # The dictionary's patches are the classifier's training patches (built here on a fresh checkout).
        with np.load(_labelled_patches("labelled_train")) as z:
            dicts, ch = choose_references(z["patches"], z["labels"], [str(s) for s in z["names"]],
                                          sizes=(1, 3, 6, 9, 12))
        for n, d in dicts.items():
            d.save(RUNS / f"dictionary-{n}.npz")
        (RUNS / "dictionary.json").write_text(json.dumps(
            {"calinski_harabasz": {str(k): v for k, v in ch.items()}, "recipe6": dicts[6].recipe()}, indent=1))
        print("Calinski-Harabasz by N_k:", {k: round(v, 1) for k, v in ch.items()})
        return 0
    if args.what == "cache":
        from pymars.enhance.dictionary import Dictionary
        from pymars.enhance.inference import load_classifier
        from pymars.enhance.patches import build_cache

        specs = args.setting.split(",")
        ref = args.reference_setting or ""
        if args.out and args.cache and Path(args.out) != Path(args.cache):
            raise ValueError(f"cache: --out {args.out} and --cache {args.cache} name two files; give one")
        cache = build_cache(specs, args.regions, load_classifier(), Dictionary.load(args.dictionary), seed=args.seed,
                            ref_spec=ref, gray=args.gray)
        # --cache names the file as it does for `model` (which reads it); --out is its older spelling here.
        out = Path(args.cache or args.out or RUNS / (f"cache-{'gray-' if args.gray else ''}"
                                       f"{'+'.join(s.replace(':', '') for s in specs)}"
                                       f"{'-ref' + ref.replace(':', '') if ref else ''}.npz"))
        cache.save(out)
        print(f"{out}: {len(cache)} regions, settings {specs}, class shares "
              f"{np.bincount(cache.classes.ravel(), minlength=4).tolist()}")
        return 0
    from pymars.enhance.training import EnhancerConfig, train_enhancer

    tag = args.setting.replace(":", "").replace(",", "+")
    gray = "gray-" if args.gray else ""
    cfg = EnhancerConfig(kind=args.kind, cache=args.cache or str(RUNS / f"cache-{gray}{tag}.npz"),
                         out=args.out or str(RUNS / f"{args.kind}-{gray}{tag}{'-' + args.gan if args.gan else ''}"),
                         steps=args.steps, batch=args.batch, crop=args.crop, lr=args.lr, seed=args.seed,
                         width=args.width, threads=args.threads, gan=args.gan or "", init=args.init or "",
                         stop_at=args.stop_at, precision=args.precision,
                         **{k: v for k, v in (("gan_weight", args.gan_weight), ("lr_weight", args.lr_weight))
                            if v is not None})
    print(json.dumps(train_enhancer(cfg)["history"][-1:]))
    return 0


def cmd_export(args) -> int:
    from pymars.clio import AtomicFolder, check_output_folder
    from pymars.enhance.dictionary import Dictionary
    from pymars.enhance.export import export_enhancer, plain_layout
    from pymars.enhance.training import load_enhancer

    if args.tem_margin is None:
        from pymars.enhance.networks import TIE_MARGIN

        args.tem_margin = TIE_MARGIN
    in_place = Path(args.output).resolve() == Path(args.checkpoint).resolve()
    # A weights folder may be re-exported in place: the old one stays until the new one is complete.
    out = check_output_folder(args.output, [] if in_place else [args.checkpoint], what="weights folder")
    if training_file(Path(args.checkpoint) / "model.safetensors").is_file():
        # Re-export of a weights folder (e.g. with another TEM margin): its record stays as it was.
        from pymars.enhance.export import reexport

        with AtomicFolder(out) as folder:
            errs = reexport(args.checkpoint, folder, tem_margin=args.tem_margin, setting=args.setting)
        kind = json.loads((Path(args.output) / "model.json").read_text())["kind"]
        print(f"{args.output}: {kind}, re-exported, ONNX vs PyTorch max abs {max(errs.values()):.2e}")
        return 0
    net, kind, cfg = load_enhancer(args.checkpoint)
    meta = {"setting": args.setting or _setting_of(cfg), "trained": {k: cfg.get(k) for k in
                                                                      ("steps", "step_trained", "batch", "crop", "lr", "seed", "cache", "gan",
                                                                       "init")}}
    if cfg.get("gray"):
        meta["input"] = "gray"  # trained on gray images: the gray path runs it without keep_level, RGB is refused
    from pymars.enhance.networks import PLAIN_KINDS

    if kind not in PLAIN_KINDS:
        meta["dictionary"] = Dictionary.load(args.dictionary).recipe()
        ref = args.reference_setting or _reference_setting_of(cfg)
        if "," in meta["setting"] and not ref:
            raise ValueError("a blind MarsQE needs one setting for its references' compressed twins: train on a "
                             "cache built with --reference-setting, or pass --reference-setting")
        if ref:
            meta["reference_setting"] = ref
        meta["margin"] = 8
    else:
        meta.update(plain_layout(net))
    with AtomicFolder(out) as folder:
        errs = export_enhancer(net, kind, meta, folder, tem_margin=args.tem_margin, half=args.half)
    print(f"{args.output}: {kind}, ONNX vs PyTorch max abs {max(errs.values()):.2e}")
    return 0


def _labelled_patches(name: str):
    """runs/enhance/NAME.npz, the labelled patches of the training images ("labelled_train", every
    evaluation tile held out, stride 64) or of the development images ("labelled_dev", stride 128);
    built from ../shared/data/mars the first time (the classifier and the dictionary both read them)."""
    import numpy as np

    from pymars.enhance.classes import labelled_patches

    held, stride = {"labelled_train": (True, 64), "labelled_dev": (False, 128)}[name]
    f = RUNS / f"{name}.npz"
    if not f.is_file():
        p, lab, n = labelled_patches(stride=stride, held_out=held)
        np.savez(f, patches=p, labels=lab, names=np.array(n))
    return f


def _reference_setting_of(cfg: dict) -> str:
    from pymars.enhance.patches import TrainingCache

    cache = cfg.get("cache", "")
    return TrainingCache.load(cache).ref_spec if Path(cache).is_file() else ""


def _setting_of(cfg: dict) -> str:
    from pymars.enhance.patches import TrainingCache

    cache = cfg.get("cache", "")
    if Path(cache).is_file():
        return ",".join(TrainingCache.load(cache).specs)
    raise ValueError("cannot tell the training setting: pass --setting")


def register(sub) -> None:
    """Add ``enhance``, ``enhance-train`` and ``enhance-export`` to the main parser's subparsers."""
    e = sub.add_parser("enhance", help="enhance a compressed (JPEG / pymars) image with a U-Net, MarsQE or a baseline "
                                       "(ONNX Runtime)")
    e.add_argument("input")
    e.add_argument("-o", "--output", required=True, help="output .png or .tif")
    e.add_argument("--model", default=AUTO,
                   help="enhancer name (pymars/weights/enhance-NAME) or folder; default auto: the shipped one "
                        "for the JPEG's quality, read from the file (above QF 90 the image is left as it is; "
                        f"not a JPEG file: {DEFAULT_MODEL})")
    e.add_argument("--dictionary", default=None, help="MarsQE reference dictionary .npz, e.g. runs/enhance/"
                                                      "dictionary-6.npz of `pymars enhance-train dictionary` "
                                                      "(default: rebuild the shipped recipe from the shared data: "
                                                      "../shared/data/mars, or $PYMARS_SHARED/data/mars)")
    e.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all)")
    e.add_argument("--providers", default=None, metavar="LIST",
                   help="ONNX Runtime execution providers in order, e.g. TensorRT,CUDA,CPU (default: CPU)")
    e.add_argument("--batch", type=positive_int, default=1, metavar="N",
                   help="windows per inference call (default 1; 8-32 for a GPU provider)")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_enhance)

    t = sub.add_parser("enhance-train", help="train the enhancer's parts (classifier, dictionary, cache, model)")
    t.add_argument("what", choices=("classifier", "dictionary", "cache", "model"))
    t.add_argument("--setting", default="jpeg:30", help="compression setting(s), comma-separated for a blind "
                                                        "model: jpeg:Q or pymars:Q")
    t.add_argument("--regions", type=int, default=800, help="cache: 256x256 training regions")
    t.add_argument("--reference-setting", default=None,
                   help="cache, blind model: compress the references at this one setting (e.g. jpeg:30) for every "
                        "region, as inference must when the setting is unknown")
    t.add_argument("--gray", action="store_true",
                   help="cache: gray regions (Navcam of the training sols, luma of the colour sets) for a model of "
                        "gray images; model: its default cache is then runs/enhance/cache-gray-SETTING.npz")
    t.add_argument("--dictionary", default=str(RUNS / "dictionary-6.npz"))
    t.add_argument("--kind", default="marsqe", help="model: arcnn, dncnn, dncnn-cascade, unet, marsqe, marsqe-lite, marsqe-notfm, "
                                                    "marsqe-notem")
    t.add_argument("--cache", default=None, help="the training cache: cache writes it, model reads it "
                                                  "(default runs/enhance/cache-[gray-]SETTING.npz)")
    t.add_argument("--out", default=None)
    # Defaults = the recipe of the shipped QF 30 models (their MODEL_CARD.md).
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--stop-at", type=int, default=0,
                   help="model: stop (resumably) at this step of the --steps schedule; run again with a later "
                        "--stop-at (or none) to go on")
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--crop", type=int, default=48)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="model: bf16 autocast + channels_last (AMX CPUs, GPUs) or fp32 (the shipped recipe)")
    t.add_argument("--init-from", "--init", dest="init", default=None,
                   help="model: start from these weights (fine-tune): a weights folder such as "
                        "pymars/weights/enhance-marsqe-jpeg30, a run folder or a checkpoint/snapshot .pt of the "
                        "same kind; the step count and lr schedule start afresh")
    t.add_argument("--gan", default=None, help="adversarial recipe: plain, conditional, plain+lr, conditional+lr")
    t.add_argument("--gan-weight", type=float, default=None, help="weight of the adversarial term (default 1e-3)")
    t.add_argument("--lr-weight", type=float, default=None, help="weight of L_R, the domain-divergence term (default 1e-2)")
    t.set_defaults(func=cmd_train)

    x = sub.add_parser("enhance-export", help="export an enhancer checkpoint to a weights folder (ONNX)")
    x.add_argument("checkpoint")
    x.add_argument("-o", "--output", required=True)
    x.add_argument("--setting", default=None)
    x.add_argument("--reference-setting", default=None, help="blind MarsQE: the setting of its references' "
                                                              "compressed twins (default: the cache's)")
    x.add_argument("--dictionary", default=str(RUNS / "dictionary-6.npz"))
    x.add_argument("--tem-margin", type=float, default=None,
                   help="MarsQE: TEM's tie margin in the exported graphs (default pymars.enhance.networks."
                        "TIE_MARGIN; 0 = the literal arg-max it was trained "
                        "with); near-tied block matches are blended so ONNX Runtime and PyTorch agree")
    x.add_argument("--half", action="store_true", help="round the weights to float16 and store them so (half the "
                                                       "folder; inference still computes in float32)")
    x.set_defaults(func=cmd_export)
