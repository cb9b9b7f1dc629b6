"""Export a trained enhancer to a weights folder: safetensors, ONNX graphs and model.json.

What it is for: turning ``runs/enhance/<name>/checkpoint.pt`` into
``pymars/weights/enhance-<name>/`` that pymars.enhance.inference runs with
ONNX Runtime alone. Plain enhancers get ``model.onnx`` (input ``comp``);
MarsQE gets ``main.onnx`` (``comp``, ``ref_raw``, ``ref_comp`` -> ``enh``,
``feat``) and, unless lite, ``post.onnx`` (``comp``, ``enh``, ``feat``,
``classes`` -> ``plus``). All spatial axes are dynamic (sides must be
multiples of 16 for MarsQE). Every graph is checked against PyTorch on random
inputs before it is written (the returned errors are max |ONNX - PyTorch|).

Export uses the TorchScript exporter (``dynamo=False``, opset 17), like
pymars.train.export.onnx_export, and keeps float32 weights (the files are small).

Example:
    >>> import tempfile, torch
    >>> from pymars.enhance.networks import build
    >>> d = tempfile.mkdtemp()
    >>> errs = export_enhancer(build("arcnn"), "arcnn", {"setting": "jpeg:30"}, d)
    >>> errs["model.onnx"] < 1e-4
    True
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from pymars.bundles import training_file
from pymars.clio import atomic_path, atomic_write
from pymars.enhance.networks import PLAIN_KINDS, TIE_MARGIN
from pymars.enhance.training import load_enhancer
from pymars.train.export.onnx_export import OPSET


class _Main(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, comp, ref_raw, ref_comp):
        return self.net.main(comp, ref_raw, ref_comp)


class _Post(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, comp, enh, feat, classes):
        return self.net.post(comp, enh, feat, classes)


def _export(module, inputs: dict, outputs: list[str], path: Path, check: dict, half: bool = False) -> float:
    import onnxruntime as ort

    module = module.eval()
    with atomic_path(path) as tmp:
        tmp = str(tmp)
        dyn = {name: {0: "batch", 2: f"h_{name}", 3: f"w_{name}"} for name in inputs}
        for o in outputs:
            dyn[o] = {0: "batch", 2: f"h_{o}", 3: f"w_{o}"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tuple(inputs.values()), tmp, input_names=list(inputs), output_names=outputs,
                              dynamic_axes=dyn, opset_version=OPSET, dynamo=False)
        if half:  # float16 initializers + Casts that ONNX Runtime folds at load: half the file, float32 compute
            import onnx

            from pymars.train.export.onnx_export import store_initializers_fp16

            graph = onnx.load(tmp)
            store_initializers_fp16(graph)
            onnx.save(graph, tmp)
        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            ref = module(*check.values())
        ref = ref if isinstance(ref, tuple) else (ref,)
        names = {i.name for i in sess.get_inputs()}  # an input the graph does not use (no-reference ablation) is dropped
        got = sess.run(None, {k: v.numpy() for k, v in check.items() if k in names})
        err = max(float(np.abs(r.numpy() - g).max()) for r, g in zip(ref, got))
    return err


def export_enhancer(net, kind: str, meta: dict, folder: str | os.PathLike,
                    tem_margin: float = TIE_MARGIN, half: bool = False) -> dict[str, float]:
    """Write ``model.safetensors``, the ONNX graph(s) and ``model.json`` into ``folder``; return the check errors.

    ``half``: the weights are rounded to float16 first and stored so (safetensors in float16, ONNX initializers
    in float16 with Casts back): half the size in git, and the shipped model *is* its rounded weights, so
    PyTorch and ONNX Runtime still agree to float32 rounding (``model.json``: ``"weights": "float16"``);
    ``net`` keeps the rounded weights afterwards, as it keeps the tie margin.

    A MarsQE network is exported with TEM's tie margin ``tem_margin`` (trained with
    the literal arg-max, margin 0): near-tied block matches are blended, so ONNX
    Runtime and PyTorch agree on whole images (see
    :class:`pymars.enhance.networks.TextureExtraction`). It is recorded in model.json,
    and ``net`` keeps that margin afterwards.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    if hasattr(net, "tem"):
        net.tem.margin = float(tem_margin)
    if half:
        with torch.no_grad():
            for t in list(net.parameters()) + list(net.buffers()):
                if t.is_floating_point():
                    t.copy_(t.half().float())
    g = torch.Generator().manual_seed(0)
    errors = {}
    if kind in PLAIN_KINDS:
        errors["model.onnx"] = _export(net, {"comp": torch.rand(1, 3, 32, 48)}, ["enhanced"], folder / "model.onnx",
                                       {"comp": torch.rand(1, 3, 40, 24, generator=g)}, half)
    else:
        ex = {"comp": torch.rand(1, 3, 32, 48), "ref_raw": torch.rand(1, 3, 32, 32), "ref_comp": torch.rand(1, 3, 32, 32)}
        chk = {"comp": torch.rand(1, 3, 48, 32, generator=g), "ref_raw": torch.rand(1, 3, 64, 48, generator=g),
               "ref_comp": torch.rand(1, 3, 64, 48, generator=g)}
        errors["main.onnx"] = _export(_Main(net), ex, ["enh", "feat"], folder / "main.onnx", chk, half)
        if net.post_enabled:
            c = net.width
            pex = {"comp": torch.rand(1, 3, 32, 48), "enh": torch.rand(1, 3, 32, 48), "feat": torch.rand(1, c, 32, 48),
                   "classes": torch.zeros(1, 1, 32, 48)}
            pchk = {"comp": torch.rand(1, 3, 48, 64, generator=g), "enh": torch.rand(1, 3, 48, 64, generator=g),
                    "feat": torch.rand(1, c, 48, 64, generator=g),
                    "classes": torch.randint(0, 4, (1, 1, 48, 64), generator=g).float()}
            errors["post.onnx"] = _export(_Post(net), pex, ["plus"], folder / "post.onnx", pchk, half)
        else:
            (folder / "post.onnx").unlink(missing_ok=True)
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file({k: (v.half() if half and v.is_floating_point() else v).contiguous()
                   for k, v in net.state_dict().items()}, str(tmp))
    meta = dict(meta, kind=kind, width=getattr(net, "width", None), onnx_check_max_abs=errors)
    if half:
        meta["weights"] = "float16"
    if hasattr(net, "tem"):
        meta["tem_margin"] = net.tem.margin
    atomic_write(folder / "model.json", json.dumps(meta, indent=1).encode())
    return errors


def plain_margin(net) -> int:
    """Context pixels each side of a 256-pixel inference window for a plain (one-input) net.

    16 for the 21 x 21 nets (AR-CNN, DnCNN, as their folders always had); a net
    that says how far it reads (``radius``, the DnCNN cascade) gets that, rounded
    up to 8, so that tiled inference equals one pass over the whole image.

    Example:
        >>> from pymars.enhance.networks import build
        >>> plain_margin(build("dncnn")), plain_margin(build("dncnn-cascade"))
        (16, 40)
    """
    return max(16, -(-int(getattr(net, "radius", 0)) // 8) * 8)


def plain_layout(net) -> dict:
    """model.json's window layout of a plain net: ``margin``, and for a net that downsamples ``multiple`` and ``tile``.

    A net whose input sides must be multiples of ``multiple`` (the U-Net: 8)
    is run on images edge-replicated to whole multiples, in 512-pixel cores
    (its 80-pixel margin would more than double the work of 256-pixel ones).

    Example:
        >>> from pymars.enhance.networks import build
        >>> plain_layout(build("dncnn")), plain_layout(build("unet"))
        ({'margin': 16}, {'margin': 80, 'multiple': 8, 'tile': 512})
    """
    layout = {"margin": plain_margin(net)}
    if getattr(net, "multiple", 1) > 1:
        layout.update(multiple=int(net.multiple), tile=512)
    return layout


def reexport(folder: str | os.PathLike, out: str | os.PathLike, tem_margin: float = TIE_MARGIN,
             setting: str | None = None) -> dict[str, float]:
    """Export a weights folder again (e.g. with another TEM margin) into ``out``, keeping its record.

    model.json's training record, dictionary recipe and settings stay as they
    were (``setting`` replaces the setting if given); the ONNX checks and the
    tie margin are the new export's. ``out`` may be ``folder`` itself.

    Example:
        >>> import tempfile, json
        >>> from pymars.enhance.inference import WEIGHTS
        >>> d = tempfile.mkdtemp()
        >>> errs = reexport(WEIGHTS / "enhance-arcnn-jpeg30", d)
        >>> json.loads((Path(d) / "model.json").read_text())["trained"]["steps"] > 0
        True
    """

    net, kind, meta = load_enhancer(folder)
    half = meta.get("weights") == "float16"  # a half-size folder stays half-size
    meta = {k: v for k, v in meta.items() if k not in ("kind", "width", "onnx_check_max_abs", "tem_margin", "weights")}
    meta["setting"] = setting or meta["setting"]
    return export_enhancer(net, kind, meta, out, tem_margin=tem_margin, half=half)


HARDWARE = ("x86_64, 2 shared CPU cores at nice 15 (other trainings ran at the same time), no GPU; "
            "PyTorch 2.13.0+cpu, one thread.")


GRAY_DATA = ("- **Training data (gray images; the model takes gray input only):** "
             "pymars.train.dataset.gray_training_pool, drawn 50 / 35 / 15 %: Curiosity Navcam frames of the training "
             "sols (every sol of ../shared/data/mars/curiosity_navcam_gray but the held-out 53, 372, 733, 995) at full "
             "resolution, 2x and 4x box-downsampled, and their 256x256 binned frames; the luma of the MarsScapes "
             "panoramas at 2x and 4x with every protocol window (+ 64 px) held out; the luma of the MarsData scenes "
             "that give no protocol tile. Regions re-exposed at random (gamma 0.8-1.25, gain 0.8-1.15), compressed "
             "as gray images (one JPEG component), stored as three equal channels")


def write_model_card(folder: str | os.PathLike, bench: dict | None = None, command: str = "",
                     notes: str = "", hardware: str = HARDWARE) -> Path:
    """Write ``MODEL_CARD.md`` of a weights folder from its model.json, the training record and bench results.

    ``bench`` is bench/results/enhance.json (the rows whose method is this
    folder's name are quoted); ``command`` the exact commands that made it.
    """
    folder = Path(folder)
    meta = json.loads((folder / "model.json").read_text())
    name = folder.name.removeprefix("enhance-")
    t = meta.get("trained", {})
    from safetensors.numpy import load_file

    params = sum(v.size for v in load_file(str(training_file(folder / "model.safetensors"))).values())
    lines = [f"# Model card: enhance-{name}", "",
             f"- **Architecture:** `{meta['kind']}` (pymars/enhance/networks.py)"
             + (f", width {meta['width']}" if meta.get("width") else "") + f", {params} parameters; ONNX graphs: {', '.join(sorted(p.name for p in folder.glob('*.onnx')))}.",
             f"- **Compression setting it enhances:** `{meta['setting']}` (pymars/enhance/codecs.py).",
             (GRAY_DATA if meta.get("input") == "gray" else
              "- **Training data:** ../shared/data/mars development set with every evaluation tile held out "
              "(pymars.train.dataset.mars_training_pool: the 38 MarsScapes evaluation windows grown by 64 px and the "
              "31 MarsData images that give evaluation tiles are excluded)")
             + f"; cache `{t.get('cache')}` of 256x256 regions compressed whole, {t.get('crop')}x{t.get('crop')} "
             "crops on the 8-px JPEG grid.",
             f"- **Training:** {t.get('step_trained', t.get('steps'))} steps (of a {t.get('steps')}-step schedule)"
             + (f" starting from `{t.get('init')}`" if t.get("init") else "") + f", batch {t.get('batch')}, crop {t.get('crop')}, Adam "
             f"(0.9, 0.999) lr {t.get('lr')} with cosine annealing to lr/100, grad-norm clip 1, seed {t.get('seed')}"
             + (f", adversarial recipe `{t.get('gan')}`" if t.get('gan') else "") + ".",
             f"- **Hardware:** {hardware}",
             f"- **ONNX check:** max |ONNX Runtime - PyTorch| on random inputs at export: "
             f"{max(meta.get('onnx_check_max_abs', {0: 0}).values()):.1e}."]
    if "dictionary" in meta:
        lines.append(f"- **Reference dictionary:** {len(meta['dictionary'])} raw 128x128 patches of MarsScapes "
                     "panoramas (recipe in model.json: file, window, class, pixel hash; the pixels are rebuilt from "
                     "../shared and never committed), compressed at the model's setting on load.")
    if command:
        lines += ["", "## Reproduce", "", "```bash", command.strip(), "```"]
    if bench:
        lines += ["", "## Development tiles (`mars-rd-1`, 38 + 31 tiles; bench/enhance_eval.py)", "",
                  "| setting | method | PSNR | PSNR-B | SSIM | MS-SSIM |", "|---|---|---|---|---|---|"]

        def own(m: str) -> bool:
            return Path(m.split(" ")[0]).name.removeprefix("enhance-") == name

        for s, per in bench.get("table", {}).items():
            if not any(own(m) for m in per):  # a setting this model was not run on
                continue
            for m, v in per.items():
                if m == "compressed" or own(m):
                    a = v["all"]
                    lines.append(f"| {s} | {m} | {a['psnr']:.2f} | {a['psnr_b']:.2f} | {a['ssim']:.4f} | "
                                 f"{a['ms_ssim']:.4f} |")
        # Checks are keyed as the models were named on the bench's command line (a name or a folder).
        chk = next((v for k, v in bench.get("checks", {}).items() if own(k)), {})
        if chk:
            lines += ["", "Checks (whole-image ONNX-vs-PyTorch on the first development tile; ONNX Runtime CPU "
                      "throughput in megapixels per second on a 512x768 image, 1 and 2 threads, where measured; "
                      "docs/enhance.md says how loaded the CPU was): "
                      + ", ".join(f"{k} {v:.3g}" for k, v in chk.items() if isinstance(v, float))]
    lines += ["", "## Limitations", "",
              "- Trained for a tiny fraction of the paper's budget (CPU only, shared cores): far from converged.",
              "- The training and evaluation images are themselves JPEG-derived (../shared PROVENANCE.md): the "
              "'raw' target already carries compression history.",
              "- One compression setting per model; applying it to another setting is reported separately."]
    if notes:
        lines += [f"- {n}" for n in notes.strip().split("\n")]
    path = folder / "MODEL_CARD.md"
    atomic_write(path, ("\n".join(lines) + "\n").encode())
    return path
