"""`pymars spectral ...`: predict, train, export, evaluate (registered onto the main CLI by :func:`register`).

What it is for: the ground-team entry points of the spectral tool. ``predict``
needs only numpy, Pillow and ONNX Runtime; ``train`` and ``export`` need torch
(the ``train`` extra) and import it only when run.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser(prog="pymars"); sub = p.add_subparsers(dest="command")
    >>> register(sub)
    >>> a = p.parse_args(["spectral", "predict", "in.png", "-o", "out.png", "--lat", "18.4", "--lon", "77.6",
    ...                   "--site", "jezero"])
    >>> (a.spectral_command, a.lat, a.site, a.model)
    ('predict', 18.4, 'jezero', 'diffusion')
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

#: Largest side ``spectral predict`` takes: the models were trained on 256x256 scenes, and a
#: diffusion prediction runs 40-60 full-image network evaluations (memory grows with the area).
MAX_PREDICT_SIDE = 2048


def read_cassis(path: str):
    """The CLI's input: an 8-bit RGB PNG of three bands (BLU, PAN, NIR), 8..2048 pixels a side, or one line
    saying what is wrong (gray, alpha, palette, 16-bit, size).

    A PDS3 or PDS4 product (``.IMG``/``.LBL``/``.xml``, read with ``pdr``; any
    sample type, calibrated floats included) of three bands in that order is
    brought to what the models were trained on: each band min-max stretched to
    8 bits over the valid pixels (finite and not 0 in every band), 0 outside
    (:func:`pds_cassis`).

    Example:
        >>> import os, tempfile, PIL.Image
        >>> p = os.path.join(tempfile.mkdtemp(), "gray.png"); PIL.Image.new("L", (16, 16)).save(p)
        >>> read_cassis(p)
        Traceback (most recent call last):
        ...
        ValueError: ...gray.png: expected an 8-bit RGB image of the three CaSSIS bands (BLU, PAN, NIR), got a gray image (mode L)
    """
    import io

    from PIL import Image

    from pymars.clio import read_input
    from pymars.imageio import is_pds
    from pymars.spectral.pairs import read_rgb8
    from pymars.spectral.predict import MIN_SIDE

    if is_pds(path):
        return pds_cassis(path)
    data = read_input(path)
    try:
        with Image.open(io.BytesIO(data)) as im:
            mode, size = im.mode, im.size
    except Exception:  # not an image: read_rgb8 below says so in its words
        mode, size = "RGB", (MIN_SIDE, MIN_SIDE)
    kinds = {"L": "a gray image", "LA": "a gray image with alpha", "1": "a 1-bit image", "P": "a palette image",
             "RGBA": "an RGB image with alpha (4 channels)", "I;16": "a 16-bit image", "I": "a 32-bit image"}
    if mode != "RGB":
        raise ValueError(f"{path}: expected an 8-bit RGB image of the three CaSSIS bands (BLU, PAN, NIR), got "
                         f"{kinds.get(mode, 'mode ' + mode)} (mode {mode})")
    if max(size) > MAX_PREDICT_SIDE:
        raise ValueError(f"{path}: {size[0]}x{size[1]} is larger than {MAX_PREDICT_SIDE} pixels a side (the models "
                         f"were trained on 256x256 scenes): crop or tile the image")
    return read_rgb8(path)


def pds_cassis(path: str) -> "np.ndarray":
    """A three-band PDS product (BLU, PAN, NIR) as the models' 8-bit input: per-band stretch over valid pixels.

    Example:
        >>> pds_cassis("missing.xml")
        Traceback (most recent call last):
        ...
        FileNotFoundError: missing.xml: file not found
    """
    import numpy as np

    from pymars.imageio import read_pds
    from pymars.spectral.synthesis import stretch8

    bands, _, identity = read_pds(path, any_type=True)
    if bands.ndim != 3:
        raise ValueError(f"{path}: a one-band PDS product; spectral predict needs the three CaSSIS bands "
                         "(BLU, PAN, NIR) in one product")
    if max(bands.shape[:2]) > MAX_PREDICT_SIDE:
        raise ValueError(f"{path}: {bands.shape[1]}x{bands.shape[0]} is larger than {MAX_PREDICT_SIDE} pixels a side "
                         "(the models were trained on 256x256 scenes): crop or tile the product")
    valid = np.isfinite(bands).all(axis=2) & (bands != 0).all(axis=2)
    if not valid.any():
        raise ValueError(f"{path}: no pixel has a finite, non-zero value in all three bands")
    if identity:
        print("product: " + ", ".join(f"{k} {v}" for k, v in identity.items()), file=sys.stderr)
    return stretch8(np.nan_to_num(bands), valid)


def cmd_predict(args) -> int:
    import numpy as np

    from pymars.clio import AtomicOutput, check_output
    from pymars.imageio import image_bytes
    from pymars.spectral.predict import SpectralPredictor

    out = check_output(args.output, "PNG image", [args.input])
    mask_out = check_output(args.carbonate_mask, "PNG image", [args.input, out]) if args.carbonate_mask else None
    img = read_cassis(args.input)
    predictor = SpectralPredictor(args.model, threads=args.threads)
    threshold = None
    if mask_out is not None:
        # The head's own detector (docs/spectral.md, "Carbonate detection head"): checked before any output.
        if predictor.kind != "unet" or not predictor.has_carbonate_head:
            raise ValueError(f"--carbonate-mask needs a UNet with the carbonate head; {predictor.folder} has none "
                             "(train with --carbonate-head)")
        threshold = predictor.config.get("carbonate_head", {}).get("threshold")
        if threshold is None:
            raise ValueError(f"{predictor.folder}: no carbonate threshold in config.json (choose one on the val part: "
                             "bench/spectral_eval.py --save-threshold)")
    with AtomicOutput(out) as sink:
        if mask_out is None:
            fal = predictor.predict(img, lat=args.lat, lon=args.lon, site=args.site, steps=args.steps,
                                    image_guidance=args.image_guidance, meta_guidance=args.meta_guidance,
                                    seed=args.seed, samples=args.samples, progress=not args.quiet)
        else:
            fal, logit = predictor.predict_with_carbonate(img, lat=args.lat, lon=args.lon, site=args.site)
            mask = np.where(logit >= threshold, 255, 0).astype(np.uint8)
            with AtomicOutput(mask_out) as mask_sink:
                mask_sink.write(image_bytes(mask, ".png"))
        sink.write(image_bytes(fal, ".png"))
    meta = "no metadata" if args.site is None else f"lat {args.lat}, lon {args.lon}, site {args.site}"
    print(f"{out}: FAL (R2529, R1506, R1080) {fal.shape[1]}x{fal.shape[0]}, {predictor.kind} model "
          f"{predictor.folder.name}, {meta}")
    if mask_out is not None:
        print(f"{mask_out}: carbonate mask of the detection head (logit >= {threshold:.3f}), "
              f"{int((mask > 0).sum())} of {int((img.max(axis=-1) > 0).sum())} footprint pixels")
    return 0


def cmd_train(args) -> int:
    from pymars.spectral.train import TrainConfig, train

    # Options left out take TrainConfig's defaults (the committed models' recipe).
    given = {k: getattr(args, k) for k in ("steps", "batch", "crop", "lr", "width", "seed", "synthetic_fraction",
                                           "precision", "init", "green_weight", "carbonate_head",
                                           "carb_weight", "carb_pos_weight", "device", "max_seconds", "workers",
                                           "snapshot", "save_every", "validate_every")
             if getattr(args, k) is not None}
    cfg = TrainConfig(out=args.out, model=args.model, threads=args.threads, data="toy" if args.toy else "shared",
                      **given)
    print(json.dumps(train(cfg), indent=2))
    return 0


def cmd_export(args) -> int:
    import torch

    from pymars.clio import AtomicFolder, check_output_folder
    from pymars.spectral.export import export_model
    from pymars.spectral.train import load_checkpoint

    out = check_output_folder(args.output, [args.checkpoint], marker="config.json", what="spectral weights folder")
    ck = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    with AtomicFolder(out) as folder:  # the folder appears complete or not at all
        info = export_model(load_checkpoint(args.checkpoint), folder, {**ck["train_config"], "step": ck["step"],
                                                                   **{k: ck[k] for k in ("hardware",) if k in ck}})
    print(f"{args.output}: {', '.join(info['files'])}; ONNX vs torch max |diff| {info['onnx_max_abs_diff']:.2e}")
    return 0


def cmd_evaluate(args) -> int:
    from pymars.spectral.evaluate import evaluate_weights, format_table, held_out_pairs

    pairs = held_out_pairs(args.part)
    rows = []
    for model in args.models:
        for with_meta in (False, True):
            rows.append(evaluate_weights(model, pairs, with_meta, f"{model} {'+' if with_meta else '-'} metadata",
                                         threads=args.threads, progress=True, steps=args.steps))
    print(f"{args.part} part of the split: {len(pairs)} scenes")
    print(format_table(rows))
    return 0


def register(sub) -> None:
    """Add the ``spectral`` command group to the main CLI's subparsers.

    Example:
        >>> import argparse
        >>> p = argparse.ArgumentParser(); s = p.add_subparsers(dest="command"); register(s)
        >>> p.parse_args(["spectral", "train", "--model", "unet", "--out", "runs/x"]).steps is None
        True
    """
    sp = sub.add_parser("spectral", help="CaSSIS-like bands -> CRISM FAL mineralogy composite (docs/spectral.md)")
    ssub = sp.add_subparsers(dest="spectral_command", required=True)

    p = ssub.add_parser("predict", help="predict the FAL composite (R2529, R1506, R1080) of a CaSSIS PNG")
    p.add_argument("input", help="8-bit RGB PNG (three bands, 8..2048 pixels a side): CaSSIS BLU, PAN, NIR, "
                                 "per-channel stretched, black outside; or a three-band PDS3/PDS4 product "
                                 "(.IMG/.LBL/.xml, any sample type), stretched the same way")
    p.add_argument("-o", "--output", required=True, help="output PNG")
    p.add_argument("--lat", type=float, help="latitude (deg N); with --lon and --site")
    p.add_argument("--lon", type=float, help="longitude (deg E)")
    p.add_argument("--site", help="site name (coprates, hale_crater, jezero_crater, marineris, nereidum, nili_fossae)")
    p.add_argument("--model", default="diffusion", help="weights: diffusion (default), unet, or a folder")
    p.add_argument("--steps", type=int, help="DDIM steps (default: the model's config, 20)")
    p.add_argument("--image-guidance", type=float, help="guidance scale on the image (default from config)")
    p.add_argument("--meta-guidance", type=float, help="guidance scale on the metadata (default from config)")
    p.add_argument("--seed", type=int, help="noise seed (default 0)")
    p.add_argument("--samples", type=int, help="diffusion: mean of this many samples (seeds seed, seed+1, ...; "
                                               "default from config, 1)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--carbonate-mask", metavar="MASK.png", default=None,
                   help="also write the carbonate detection head's mask (255 = carbonate; a UNet folder trained "
                        "with --carbonate-head whose threshold was chosen on val)")
    p.set_defaults(func=cmd_predict)

    t = ssub.add_parser("train", help="train or resume a spectral model on ../shared/data/spectral")
    t.add_argument("--model", choices=("unet", "diffusion"), required=True)
    t.add_argument("--out", required=True, help="run folder (checkpoint.pt, log.jsonl); rerun to resume")
    # No defaults here (they live in TrainConfig): registering the CLI must not import torch.
    t.add_argument("--steps", type=int, help="total steps (default: the committed models' recipe)")
    t.add_argument("--batch", type=int)
    t.add_argument("--crop", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--width", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--synthetic-fraction", type=float)
    t.add_argument("--precision", choices=("fp32", "bf16"),
                   help="bf16: autocast + channels_last (AMX CPUs, GPUs); default fp32, the committed recipe")
    t.add_argument("--init-from", dest="init", metavar="WEIGHTS",
                   help="start from a weights folder (e.g. pymars/weights/spectral-diffusion) or a checkpoint.pt")
    t.add_argument("--green-weight", type=float,
                   help="extra loss weight on carbonate-green target pixels (default 0)")
    t.add_argument("--carbonate-head", action="store_true", default=None,
                   help="unet: add the carbonate detection head (a 4th output, BCE on the target's green mask)")
    t.add_argument("--carb-weight", type=float, help="with --carbonate-head: weight of its BCE in the loss (1)")
    t.add_argument("--carb-pos-weight", type=float, help="with --carbonate-head: BCE weight of green pixels (10)")
    t.add_argument("--device", choices=("cpu", "cuda"), help="where to train (default cpu, the committed recipe)")
    t.add_argument("--max-seconds", type=float,
                   help="stop resumably (checkpoint saved) once this many seconds have passed (default: no limit)")
    t.add_argument("--workers", type=int, help="processes drawing batches ahead (default 0: in the training process)")
    t.add_argument("--snapshot", metavar="FILE.pt",
                   help="after each checkpoint also write FILE.pt: EMA weights (fp16), configs, step, hardware, "
                        "validation history; no optimiser (spectral export takes it)")
    t.add_argument("--save-every", type=int, help="checkpoint every N steps (250)")
    t.add_argument("--validate-every", type=int, help="validation loss every N steps (500)")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--toy", action="store_true", help="random synthetic data only (smoke test, no ../shared)")
    t.set_defaults(func=cmd_train)

    x = ssub.add_parser("export", help="export a checkpoint to a weights folder (safetensors, ONNX, config)")
    x.add_argument("checkpoint")
    x.add_argument("-o", "--output", required=True)
    x.set_defaults(func=cmd_export)

    e = ssub.add_parser("evaluate", help="the results table on a part of the split (needs ../shared)")
    e.add_argument("--models", nargs="+", default=["unet", "diffusion"])
    e.add_argument("--part", default="test", choices=("train", "val", "test"))
    e.add_argument("--steps", type=int, help="DDIM steps (default from config)")
    e.add_argument("--threads", type=int, default=1)
    e.set_defaults(func=cmd_evaluate)
