"""The ``pymars`` command line: encode, decode, info, demo, train, export, bench, refs.

Every command keeps the promises of :mod:`pymars.clio`: it never overwrites an
input, refuses a folder or a mislabelled name as output, writes atomically (a
hidden temporary file renamed at the end, removed on every failure, Ctrl-C and
SIGTERM included), and reports an expected failure as one line
``pymars: error: ...`` on stderr with exit status 2 instead of a traceback
(``--debug`` shows it). ``-`` reads standard input (encode, decode, info) or
writes standard output (encode, decode). Large encodes show a progress bar on
stderr (``--quiet``: none) and stop within one tile on Ctrl-C.

Example:
    >>> main(["info", "no-such-file.pmrs"])
    2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

#: Encodes of at least this many tiles show a progress bar (smaller ones take a second or two).
PROGRESS_TILES = 16
#: pymars.ground.decode.DEFAULT_MAX_PIXELS, repeated so that building the parser does not import the codec.
DEFAULT_MAX_PIXELS = 1 << 28


def _report(text: str, output) -> None:
    """The command's summary line: stdout, or stderr when stdout carries the output (``-o -``)."""
    from pymars.clio import STDIO

    print(text, file=sys.stderr if output == STDIO else sys.stdout)


def _sequence_outputs(paths, output, suffix: str, content: str) -> list[Path]:
    """OUT_DIR/<stem><suffix> for each input of a --sequence call, checked before any work."""
    from pymars.clio import CommandError, check_output

    if output is None or output == "-":
        raise CommandError("--sequence needs -o OUT_DIR (a folder: one output per frame, named after its input)")
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"{folder}: --sequence writes one file per frame into a folder, and this is a file")
    stems = [Path(p).stem for p in paths]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise CommandError(f"two inputs of the sequence have the same name {dup[0]!r}: their outputs would collide")
    return [check_output(folder / (stem + suffix), content, paths) for stem in stems]


def cmd_encode_sequence(args) -> int:
    """``pymars encode --sequence F1 F2 ... -o OUT_DIR``: each frame against the earlier one it overlaps most."""
    from pymars.clio import AtomicOutput, CommandError
    from pymars.imageio import read_source
    from pymars.sequence import SequenceEncoder

    if args.input is not None:
        raise CommandError("give the frames after --sequence, not as a separate input")
    if args.target_bytes is not None or args.max_error is not None or args.lossless or args.refs:
        raise CommandError("--sequence codes at a quality (-q): not with --target-bytes, --max-error, --lossless "
                           "or --refs")
    outs = _sequence_outputs(args.sequence, args.output, ".pmrs", "pymars file")
    from tqdm import tqdm

    enc = SequenceEncoder(args.quality, model=args.model, tile_size=args.tile_size, threads=args.threads)
    for path, out in tqdm(list(zip(args.sequence, outs)), desc="sequence", unit="frame",
                          disable=args.quiet or len(outs) < 2):
        img, depth, _ = read_source(path)
        t0 = time.perf_counter()
        data, ref = enc.encode(img, out.name, bit_depth=args.bit_depth or depth)
        dt = time.perf_counter() - t0
        with AtomicOutput(out) as sink:
            sink.write(data)
        bpp = 8 * len(data) / (img.shape[0] * img.shape[1])
        against = f"against {ref.name}" if ref is not None else "on its own"
        tqdm.write(f"{out}: {len(data)} bytes, {bpp:.4f} bpp, {against}, {dt:.2f} s")
    return 0


def cmd_encode(args) -> int:
    import pymars
    from pymars.clio import STDIO, AtomicOutput, CommandError, check_output, read_input, tile_progress
    from pymars.imageio import image_from_bytes, read_source

    if args.sequence:
        return cmd_encode_sequence(args)
    if args.input is None:
        raise CommandError("give an input image (or --sequence F1 F2 ... -o OUT_DIR)")
    if args.output is None and args.input == STDIO:
        raise CommandError("reading standard input (-) needs -o FILE.pmrs (or -o - for standard output)")
    out = check_output(args.output or Path(args.input).with_suffix(".pmrs"), "pymars file", [args.input],
                       default=args.output is None, allow_stdout=True)
    if args.input == STDIO:
        img, depth, identity = image_from_bytes(read_input(args.input), "standard input"), None, {}
    else:  # an image file, or a planetary product coded at its own depth (a 12-bit EDR as 12-bit)
        img, depth, identity = read_source(args.input)
    bit_depth = args.bit_depth or depth
    if identity and not args.quiet:
        print("product: " + ", ".join(f"{k} {v}" for k, v in identity.items()), file=sys.stderr)
    tiles = -(-img.shape[0] // args.tile_size) * -(-img.shape[1] // args.tile_size) if args.tile_size > 0 else 0
    with AtomicOutput(out) as sink:  # a folder that cannot take the file fails here, before the encode
        t0 = time.perf_counter()
        with tile_progress(tiles, "encode", enabled=tiles >= PROGRESS_TILES and not args.quiet):
            data = pymars.encode(
                img,
                quality=args.quality,
                target_bytes=args.target_bytes,
                tile_size=args.tile_size,
                bit_depth=bit_depth,
                threads=args.threads,
                model=args.model,
                refs=args.refs,
                max_error=0 if args.lossless else args.max_error,
                reference=args.reference,
            )
        dt = time.perf_counter() - t0
        sink.write(data)
    h = pymars.info(data)
    bpp = 8 * len(data) / (img.shape[0] * img.shape[1])
    _report(f"{out}: {len(data)} bytes, {bpp:.4f} bpp, quality {h['quality']}, {h['tile_count']} tile(s), "
            f"{dt:.2f} s", out)
    return 0


def cmd_decode_sequence(args) -> int:
    """``pymars decode --sequence A.pmrs B.pmrs ... -o OUT_DIR``: each file with the earlier frame it names."""
    from pymars.clio import AtomicOutput, CommandError, read_input
    from pymars.imageio import image_bytes
    from pymars.sequence import SequenceDecoder

    if args.input is not None:
        raise CommandError("give the files after --sequence, not as a separate input")
    outs = _sequence_outputs(args.sequence, args.output, ".png", "image")
    dec = SequenceDecoder(model=args.model, threads=args.threads, max_pixels=args.max_pixels)
    status = 0
    for path, out in zip(args.sequence, outs):
        t0 = time.perf_counter()
        img, report = dec.decode(read_input(path), str(path))
        dt = time.perf_counter() - t0
        with AtomicOutput(out) as sink:
            sink.write(image_bytes(img, out.suffix))
        status = status or (0 if report.ok else 1)
        print(f"{out}: {img.shape[1]}x{img.shape[0]}x{1 if img.ndim == 2 else 3}, {dt:.2f} s, {report.describe()}")
    return status


def cmd_decode(args) -> int:
    import pymars
    from pymars.clio import STDIO, AtomicOutput, CommandError, check_output, read_input
    from pymars.imageio import image_bytes

    if args.sequence:
        return cmd_decode_sequence(args)
    if args.input is None:
        raise CommandError("give an input .pmrs file (or --sequence A.pmrs B.pmrs ... -o OUT_DIR)")
    if args.output is None and args.input == STDIO:
        raise CommandError("reading standard input (-) needs -o FILE.png (or -o - for standard output)")
    out = check_output(args.output or Path(args.input).with_suffix(".png"), "image", [args.input],
                       default=args.output is None, allow_stdout=True)
    providers = None
    if args.providers:
        from pymars.ground.synthesis import onnx_providers

        providers = onnx_providers(args.providers)  # a missing provider: one line, before any work
    data = read_input(args.input)
    with AtomicOutput(out) as sink:
        t0 = time.perf_counter()
        img, report = pymars.decode_with_report(data, backend=args.backend, threads=args.threads, model=args.model,
                                                refs=args.refs, max_pixels=args.max_pixels, providers=providers,
                                                reference=args.reference)
        dt = time.perf_counter() - t0
        sink.write(image_bytes(img, ".png" if out == STDIO else out.suffix))
    _report(f"{out}: {img.shape[1]}x{img.shape[0]}x{1 if img.ndim == 2 else 3}, {dt:.2f} s, {report.describe()}", out)
    return 0 if report.ok else 1


def cmd_info(args) -> int:
    import pymars
    from pymars import _core
    from pymars.clio import read_input

    data = read_input(args.input)
    h = pymars.info(data)
    # The per-tile scan allocates by the header's tile count: only within the decoding pixel limit,
    # and only once the file has shown a valid tile record (docs/bitstream.md §3, "Decoder limits").
    scan = (h["width"] * h["height"] <= args.max_pixels
            and _core.has_valid_tile_record(data, h["header_length"], h["tile_count"]))
    spans = _core.scan_tile_records(data, h["header_length"], h["tile_count"]) if scan else None
    h = dict(h)
    h["model_id"] = h["model_id"].hex()
    if h["library_hash"] is not None:
        h["library_hash"] = h["library_hash"].hex()
    if h["sequence_id"] is not None:
        h["sequence_id"] = h["sequence_id"].hex()
    h["file_bytes"] = len(data)
    h["bpp"] = 8 * len(data) / (h["width"] * h["height"])
    if spans is not None:
        h["tiles_present"] = sum(s is not None for s in spans)
        if h["sequence_id"] is not None:  # wavelet payloads of form 2 are predicted from the earlier frame (§4.10)
            h["tiles_predicted"] = sum(s is not None and s[1] > 0 and data[s[0]] == 2 for s in spans)
        h["tiles_missing_or_damaged"] = [i for i, s in enumerate(spans) if s is None]
    elif h["width"] * h["height"] > args.max_pixels:
        h["tiles_present"] = f"not scanned: more than --max-pixels {args.max_pixels} pixels"
    else:
        h["tiles_present"] = 0  # no valid tile record: every tile is missing or damaged
    h["mode"] = _coding_mode(bytes.fromhex(h["model_id"]), h["quality"])
    if h["bit_depth"] != 8 and h["mode"].startswith(("lossless", "near-lossless", "wavelet")):
        # The depth the samples were coded at: the file's own (flags bit 1, §4.8) or the 8-bit reduction (§5).
        h["mode"] += (f", {h['sample_depth']}-bit samples" if h["sample_depth"] != 8
                      else f", 8-bit samples (reduced from {h['bit_depth']}-bit)")
    if args.json:
        print(json.dumps(h, indent=2))
    else:
        for k, v in h.items():
            print(f"{k:>26}: {v}")
    return 0


def _coding_mode(model_id: bytes, quality: int) -> str:
    """How a file's tiles are coded, from its model's table for its quality (or "unknown model")."""
    from pymars.bundles import bundle_for_model_id

    bundle = bundle_for_model_id(model_id)
    if bundle is None:
        return "unknown model (not installed)"
    return _bundle_mode(bundle, quality)


def _bundle_mode(bundle, quality: int) -> str:
    """The coding mode of ``quality`` in ``bundle``: learned, wavelet (its step), near-lossless (k) or lossless."""
    k = bundle.core.near_lossless_error(quality)
    if k is None:
        step = bundle.core.wavelet_step(quality)
        if step is not None:
            return f"wavelet, step {step:g} ({bundle.name})"
        return f"learned ({bundle.name})"
    return f"lossless ({bundle.name})" if k == 0 else f"near-lossless, max error {k} ({bundle.name})"


def cmd_demo(args) -> int:
    import contextlib

    import pymars
    from pymars.clio import AtomicOutput, OutputRefused, check_output
    from pymars.data.synthetic import mars_like_scene
    from pymars.evaluation import metrics
    from pymars.imageio import image_bytes, read_image

    outputs = {}
    if args.out:
        folder = Path(args.out)
        if folder.exists() and not folder.is_dir():
            raise OutputRefused(f"{args.out}: is a file; --out names a folder")
        inputs = [args.image] if args.image else []
        outputs = {name: check_output(folder / name, content, inputs) for name, content in
                   (("original.png", "image"), ("decoded.png", "image"), ("image.pmrs", "pymars file"))}
    if args.image:
        img = read_image(args.image)
        name = args.image
    else:
        img = mars_like_scene(512, 768, seed=args.seed)
        name = f"built-in procedural Mars-like scene (seed {args.seed}, 768x512 RGB)"
    bundle = pymars.open_bundle(args.model)
    if not bundle.available:
        raise FileNotFoundError(f"model bundle {bundle.root} is missing; see the README")
    with contextlib.ExitStack() as stack:
        sinks = {k: stack.enter_context(AtomicOutput(p)) for k, p in outputs.items()}
        print(f"image:   {name}")
        print(f"model:   {bundle.name} (id {bundle.model_id.hex()})")
        pymars.encode(img[:16, :16], quality=args.quality, model=bundle)  # warm-up: model load, not codec time
        pymars.decode(pymars.encode(img[:16, :16], quality=args.quality, model=bundle), model=bundle)
        t0 = time.perf_counter()
        data = pymars.encode(img, quality=args.quality, threads=1, model=bundle)
        t1 = time.perf_counter()
        out = pymars.decode(data, model=bundle)
        t2 = time.perf_counter()
        peak = float((1 << pymars.info(data)["bit_depth"]) - 1) if img.dtype == np.uint16 else 255.0
        psnr = metrics.psnr(img, out, peak=peak)
        mpx = img.shape[0] * img.shape[1] / 1e6
        print(f"quality: {args.quality}")
        print(f"bytes:   {len(data)}  ({8 * len(data) / (img.shape[0] * img.shape[1]):.4f} bpp)")
        print(f"PSNR:    {psnr:.2f} dB")
        print(f"encode:  {t1 - t0:.2f} s  ({(t1 - t0) / mpx:.2f} s/Mpx, C++ encoder, 1 thread)")
        mode = _bundle_mode(bundle, int(args.quality))
        how = "C++ entropy decoding + ONNX Runtime synthesis" if mode.startswith("learned") else "C++ core"
        print(f"mode:    {mode}")
        print(f"decode:  {t2 - t1:.2f} s  ({how})")
        if sinks:
            sinks["original.png"].write(image_bytes(img, ".png"))
            sinks["decoded.png"].write(image_bytes(out, ".png"))
            sinks["image.pmrs"].write(data)
    if sinks:
        print(f"wrote:   {args.out}/original.png, decoded.png, image.pmrs")
    return 0


def cmd_train(args) -> int:
    from pymars.train.codec.loop import TrainConfig, train

    cfg = TrainConfig(
        out=args.out,
        steps=args.steps,
        batch=args.batch,
        crop=args.crop,
        lr=args.lr,
        lr_final=args.lr_final,
        decay_from=args.decay_from,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        model=args.model,
        synthetic=args.synthetic,
        validate_every=args.validate_every,
        init_from=args.init_from or "",
        warm_start=args.warm_start or "",
        precision=args.precision,
        channels_last=not args.no_channels_last,
        save_every=args.save_every,
        pool_cache=args.pool_cache or "",
    )
    print(json.dumps(train(cfg), indent=2))
    return 0


def cmd_export(args) -> int:
    from pymars.clio import AtomicFolder, check_output_folder
    from pymars.train.export.bundle_writer import load_checkpoint_model, write_bundle

    out = check_output_folder(args.output, [args.checkpoint])
    model, ck = load_checkpoint_model(args.checkpoint)
    prov = {"steps": ck["step"], "train_config": ck.get("train_config", {})}
    with AtomicFolder(out) as folder:  # the bundle appears complete or not at all
        files = write_bundle(model, folder, prov)
    for k, v in files.items():
        print(f"{args.output}/{k}  sha256 {v}")
    return 0


def cmd_refs_build(args) -> int:
    import contextlib

    from pymars.bundles import DEFAULT_REMAC_MODEL
    from pymars.clio import AtomicOutput, CommandError, check_output
    from pymars.remac import build_library, ground_path

    if (args.folder is None) == (not args.protocol):
        raise CommandError("refs build: give a FOLDER of images or --protocol (not both)")
    if args.folder is not None and not Path(args.folder).is_dir():
        raise FileNotFoundError(f"{args.folder}: " + ("is a file; refs build takes a folder of images"
                                                      if Path(args.folder).exists() else "folder not found"))
    rover = check_output(args.output, "reference library")
    ground = ground_path(rover)
    k_range = None if args.k_min is None and args.k_max is None else (args.k_min or 8, args.k_max or 64)
    with contextlib.ExitStack() as stack:  # both parts appear, or neither
        sinks = [stack.enter_context(AtomicOutput(p)) for p in (rover, ground)]
        lib, report = build_library(None if args.protocol else args.folder, model=args.model or DEFAULT_REMAC_MODEL,
                                    k=args.k, k_range=k_range, max_per_image=args.max_per_image)
        sinks[0].write(lib.rover_bytes())
        sinks[1].write(lib.ground_bytes())
    print(report.summary())
    print(f"wrote {rover} (rover part, {len(lib.rover_bytes())} bytes) and {ground}; "
          f"library hash {lib.library_hash.hex()}, model {args.model or DEFAULT_REMAC_MODEL} ({lib.model_id.hex()})")
    return 0


def cmd_refs_info(args) -> int:
    from pymars.remac import ReferenceLibrary

    lib = ReferenceLibrary.load(args.library, ground=not args.rover_only)
    info = {"references": len(lib), "library_hash": lib.library_hash.hex(), "sha256": lib.sha256.hex(),
            "model_id": lib.model_id.hex(), "latent_channels": lib.latent_channels,
            "rover_bytes": len(lib.rover_bytes()), "names": lib.names}
    print(json.dumps(info, indent=2))
    return 0


def cmd_remac_train(args) -> int:
    from pymars.train.remac.loop import RemacTrainConfig, train_remac

    cfg = RemacTrainConfig(out=args.out, base=args.base or "", library=args.library, steps=args.steps, batch=args.batch,
                           crop=args.crop, lr=args.lr, lr_final=args.lr_final, decay_from=args.decay_from,
                           threads=args.threads, device=args.device, seed=args.seed, ref_lr_scale=args.ref_lr_scale,
                           init_from=args.init_from or "", refine_blocks=args.refine_blocks,
                           decoder_only=args.decoder_only, validate_every=args.validate_every)
    print(json.dumps(train_remac(cfg)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pymars", description="Learned image codec for Mars missions")
    # main() takes --debug out of the arguments wherever it stands; listed here for --help.
    p.add_argument("--debug", action="store_true", help="show the traceback of an error (also PYMARS_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="encode a PNG/TIFF image (8/16-bit, gray/RGB) into a .pmrs file")
    e.add_argument("input", nargs="?", help="PNG or TIFF image (- reads standard input)")
    e.add_argument("-o", "--output", help="output .pmrs file (default: input with .pmrs, never replacing a file; "
                                          "- writes standard output)")
    g = e.add_mutually_exclusive_group()
    g.add_argument("-q", "--quality", type=int, default=75, help="1..100 (default 75)")
    g.add_argument("--target-bytes", type=int, help="largest quality whose file fits this many bytes")
    g.add_argument("--max-error", type=int, metavar="K",
                   help="near-lossless: every decoded sample within +-K of the original (in the image's units: "
                        "12/16-bit images keep their depth with a range-coded model)")
    g.add_argument("--lossless", action="store_true", help="every sample exact (--max-error 0; 8, 12 or 16-bit images)")
    e.add_argument("--tile-size", type=int, default=256)
    e.add_argument("--bit-depth", type=int, choices=(8, 12, 16), help="bit depth of 16-bit samples (default 16; a PDS product's own depth)")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--model", help="model bundle name or folder (default: the shipped one; remac-v1 with --refs)")
    e.add_argument("--refs", help="REMAC reference library (LIB.pmrl): reference-based coding")
    e.add_argument("--reference", metavar="EARLIER.pmrs",
                   help="sequence coding: code the image against this frame already sent (decoding will need it)")
    e.add_argument("--sequence", nargs="+", metavar="FRAME",
                   help="encode these frames in order into -o OUT_DIR/<stem>.pmrs, each against the earlier frame "
                        "of the list it overlaps most (docs/remac.md)")
    e.add_argument("--quiet", action="store_true", help=f"no progress bar (shown from {PROGRESS_TILES} tiles on)")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", help="decode a .pmrs file to PNG or TIFF")
    d.add_argument("input", nargs="?", help=".pmrs file (- reads standard input)")
    d.add_argument("-o", "--output", help="output .png/.tif (default: input with .png, never replacing a file; "
                                          "- writes PNG to standard output)")
    d.add_argument("--backend", choices=("onnx", "torch"), default="onnx")
    d.add_argument("--threads", type=int, default=1)
    d.add_argument("--model", help="model bundle (default: the shipped one the file names)")
    d.add_argument("--refs", help="the REMAC reference library the file was coded with (LIB.pmrl + LIB.pmrg)")
    d.add_argument("--reference", metavar="EARLIER.pmrs",
                   help="the frame a sequence-coded file was coded against (pymars info shows its id)")
    d.add_argument("--sequence", nargs="+", metavar="FILE",
                   help="decode these files in order into -o OUT_DIR/<stem>.png, each with the earlier file it names")
    d.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse files that claim more pixels (default {DEFAULT_MAX_PIXELS} = 16384 x 16384; "
                        "docs/bitstream.md, Decoder limits)")
    d.add_argument("--providers", metavar="LIST",
                   help="ONNX Runtime execution providers of learned tiles, in order, e.g. TensorRT,CUDA,CPU "
                        "(default: CPU; docs/ground-segment.md)")
    d.set_defaults(func=cmd_decode)

    i = sub.add_parser("info", help="print a .pmrs file's header and tiles")
    i.add_argument("input", help=".pmrs file (- reads standard input)")
    i.add_argument("--json", action="store_true")
    i.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="scan the tile records only of files that claim at most this many pixels")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("demo", help="encode + decode a built-in scene (or IMAGE) and print bpp, PSNR and times")
    m.add_argument("image", nargs="?")
    m.add_argument("-q", "--quality", type=int, default=75)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--model")
    m.add_argument("--out", help="folder for the original, decoded image and the file")
    m.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="train (or resume) the base codec on ../shared/data/mars")
    t.add_argument("--out", default="runs/base")
    # Defaults = the recipe of the shipped base-v1 weights (its MODEL_CARD.md).
    t.add_argument("--steps", type=int, default=19000)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--crop", type=int, default=128)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--lr-final", type=float, default=2e-5)
    t.add_argument("--decay-from", type=float, default=0.7,
                   help="fraction of --steps after which the LR follows a cosine down to --lr-final")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--model", default="base", choices=("base", "wide", "gray", "gray-wide", "tiny", "tiny-gray"),
                   help="base: RGB (base-v1); gray: one-channel base-v2 gray with the high-rate levels")
    t.add_argument("--synthetic", action="store_true", help="procedural scenes instead of ../shared (smoke test)")
    t.add_argument("--validate-every", type=int, default=1000)
    t.add_argument("--save-every", type=int, default=250, help="checkpoint interval in steps (a kill loses at most this)")
    t.add_argument("--init-from", help="start from another checkpoint's EMA weights")
    t.add_argument("--warm-start", help="start from a shipped weights folder, adapted (e.g. pymars/weights/base-v1 for --model gray)")
    t.add_argument("--precision", default="bf16", choices=("bf16", "fp32"),
                   help="bf16: transforms under bfloat16 autocast (entropy model and loss stay fp32)")
    t.add_argument("--no-channels-last", action="store_true", help="keep NCHW activations (slower on CPU)")
    t.add_argument("--pool-cache", help="crop pool .npz: read if it exists, else built from ../shared and written "
                                        "(lets a machine without ../shared train; scripts/gpu_train.sh)")
    t.set_defaults(func=cmd_train)

    x = sub.add_parser("export", help="export a training checkpoint as a model bundle")
    x.add_argument("checkpoint")
    x.add_argument("-o", "--output", required=True)
    x.set_defaults(func=cmd_export)

    r = sub.add_parser("refs", help="REMAC reference libraries (build, info)")
    rsub = r.add_subparsers(dest="refs_command", required=True)
    rb = rsub.add_parser("build", help="choose references among the images of a folder and write LIB.pmrl + LIB.pmrg")
    rb.add_argument("folder", nargs="?", help="folder of PNG/TIFF/JPEG images to choose from, sub-folders "
                                              "included (omit with --protocol)")
    rb.add_argument("--protocol", action="store_true",
                    help="choose from ../shared/data/mars as the RD protocol prepares it, evaluation tiles held out")
    rb.add_argument("-o", "--output", required=True, help="library file (LIB.pmrl; the ground part goes to LIB.pmrg)")
    rb.add_argument("--k", type=int, help="number of references (default: best Calinski-Harabasz index)")
    rb.add_argument("--k-min", type=int, help="smallest k tried (default 8)")
    rb.add_argument("--k-max", type=int, help="largest k tried (default 64, and at most a quarter of the candidate "
                                              "tiles unless --k-min/--k-max are given)")
    rb.add_argument("--max-per-image", type=int, default=8, help="candidate tiles per image")
    rb.add_argument("--model", help="model bundle whose analysis makes the latents (default: remac-v1, the model "
                                    "`pymars encode --refs` uses; base-v1 for `pymars remac train --library`)")
    rb.set_defaults(func=cmd_refs_build)
    rt = sub.add_parser("remac", help="REMAC reference-based model (train)")
    rtsub = rt.add_subparsers(dest="remac_command", required=True)
    t2 = rtsub.add_parser("train", help="train the reference branch of h_s and the ref-decoder on a base model (resumable)")
    t2.add_argument("--library", required=True, help="reference library built for the base model (LIB.pmrl + LIB.pmrg)")
    t2.add_argument("--out", default="runs/remac")
    t2.add_argument("--base", help="base model bundle (default: the shipped one)")
    t2.add_argument("--steps", type=int, default=3000)  # the remac-v1 recipe
    t2.add_argument("--batch", type=int, default=8)
    t2.add_argument("--crop", type=int, default=128)
    t2.add_argument("--lr", type=float, default=1e-4)
    t2.add_argument("--lr-final", type=float, default=1e-5)
    t2.add_argument("--decay-from", type=float, default=0.6)
    t2.add_argument("--threads", type=int, default=0)
    t2.add_argument("--device", default="auto")
    t2.add_argument("--seed", type=int, default=0)
    t2.add_argument("--ref-lr-scale", type=float, default=1.0, help="learning-rate factor of the reference parts")
    t2.add_argument("--init-from", help="start from another REMAC checkpoint's EMA weights")
    t2.add_argument("--refine-blocks", type=int, default=0,
                    help="ref-decoder residual blocks at 1/2 resolution (0 in remac-v1; docs/remac.md tried 4)")
    t2.add_argument("--decoder-only", action="store_true", help="freeze the entropy model; train the ref-decoder alone")
    t2.add_argument("--validate-every", type=int, default=500)
    t2.set_defaults(func=cmd_remac_train)
    ri = rsub.add_parser("info", help="print a library's size, hash and model")
    ri.add_argument("library")
    ri.add_argument("--rover-only", action="store_true", help="read only the rover part")
    ri.set_defaults(func=cmd_refs_info)
    from pymars.enhance.cli import register as register_enhance

    register_enhance(sub)  # enhance, enhance-train, enhance-export (pymars/enhance/cli.py)
    from pymars.spectral.cli import register as register_spectral

    register_spectral(sub)  # spectral predict, train, export, evaluate (pymars/spectral/cli.py)
    from pymars.batch.cli import register as register_batch

    register_batch(sub)  # batch encode, decode, enhance over folders on Dask (pymars/batch/cli.py)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (0 ok, 1 decoded with damaged tiles, 2 refused input,
    70 a bug, 130 interrupted, 143 terminated). ``--debug`` anywhere (or PYMARS_DEBUG=1) shows tracebacks."""
    from pymars.clio import cli_warnings, error_boundary, termination_as_interrupt

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("PYMARS_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    with termination_as_interrupt(), cli_warnings():
        return error_boundary(lambda _: _run(argv), None, debug=debug)


def _run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
