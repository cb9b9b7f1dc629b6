"""The quality a JPEG was written with, read from its quantisation table, and the enhancer that fits it.

What it is for: every enhancer is trained for one JPEG quality factor.
Applied to a JPEG of much higher quality it makes the image worse: the QF 30
MarsQE loses 0.9 dB on gray QF 75 Navcam tiles and 5.5 dB at QF 90, and
missions downlink at QF 75-95 (bench/results/enhance_jpeg_quality.json).
``pymars enhance`` and ``pymars batch enhance`` therefore read the QF of a
JPEG input here (:func:`jpeg_quality`) and, with ``--model auto`` (their
default), run the shipped model for that QF (:func:`auto_model`: QF 55 and
below the QF 30 U-Net, 56-77 and 78-90 MarsQE-lite nets trained at QF 75
and 90), or leave the image as it is above QF 90. A gray image (Navcam,
Hazcam) gets the nets trained on gray images, up to the same QF 90
(:data:`AUTO_GRAY_MODELS`). An image that is not a JPEG file (a PNG of a
decoded JPEG, a pymars file's decoded image) has no table to read: it gets
the QF 30 default (gray: the QF 30 gray net).

What it must not touch: pixels, PyTorch, the models themselves.

Example:
    >>> import io, numpy as np
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.fromarray(np.zeros((16, 16), np.uint8)).save(buf, format="JPEG", quality=85)
    >>> jpeg_quality(buf.getvalue()), auto_model(jpeg_quality(buf.getvalue())), auto_model(33)
    (85, 'marsqe-lite7-jpeg90-10k', 'unet-jpeg30-10k')
"""
from __future__ import annotations

import io
import json

import numpy as np

from pymars.enhance.cli import AUTO, DEFAULT_MODEL, resolve_model

#: The example luminance table of the JPEG standard (ITU-T T.81 Annex K, Table K.1), row by row;
#: libjpeg (and Pillow, GDAL, most cameras' firmware) scale it by the quality factor.
STANDARD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.int64)

#: The shipped enhancer run for a colour JPEG of quality up to each bound: the QF 30 U-Net up to QF 55, the QF 75
#: MarsQE-lite for 56-77, the QF 90 one for 78-90. Bounds from the colour development tiles (every 3rd, 23):
#: the U-Net gains +1.07 / +0.92 / +0.82 / +0.63 dB at QF 30 / 40 / 50 / 60
#: (bench/results/enhance_jpeg_quality_unet.json), the QF 75 net +0.65 at QF 50 and +0.69 at 60
#: (bench/results/enhance_jpeg_quality.json), so the switch falls between 50 and 60. (The bound was 40 while
#: gray images shared this table: the QF 30 nets lose more on gray tiles above it.)
AUTO_MODELS = {55: "unet-jpeg30-10k", 77: "marsqe-lite7-jpeg75-10k", 90: "marsqe-lite7-jpeg90-10k"}
#: Gray inputs (Navcam, Hazcam: most of the archive): nets trained on gray images (``enhance-train cache
#: --gray``: Navcam frames of the training sols and the luma of the colour sets), U-Nets at QF 30 and 75 and a
#: DnCNN at QF 90, each run up to where the next one gains more on the gray development tiles (QF 45 and 82:
#: between the QFs measured; bench/results/enhance_gray*.json, docs/enhance.md "Gray models"). The gray U-Nets
#: replaced the gray MarsQE (QF 30) and the gray DnCNN (QF 75): on held-out gray JPEG tiles / raw EDR tiles
#: +0.70-0.75 / +0.82-0.89 dB at QF 20-40 against +0.72-0.77 / +0.71-0.78, and +0.68-0.95 / +0.63-0.74 at QF
#: 50-80 against +0.63-0.90 / +0.59-0.63; the QF 30 one needs no reference dictionary (no ../shared) at
#: inference. Same top as the colour table.
AUTO_GRAY_MODELS = {45: "unet-gray-jpeg30", 82: "unet-gray-jpeg75", 90: "dncnn-gray-jpeg90-10k"}
#: The model for an input whose quality cannot be read (not a JPEG file): the QF 30 default.
UNKNOWN_QUALITY_MODEL = DEFAULT_MODEL
#: Above this QF no shipped model helps on average (the QF 90 model gains +0.12 dB on gray and +1.18 on
#: colour tiles at QF 90, and loses 2.9 dB on both at QF 95: bench/results/enhance_jpeg_quality.json).
AUTO_MAX_QUALITY = max(AUTO_MODELS)


def ijg_table(quality: int) -> np.ndarray:
    """The luminance table libjpeg writes at ``quality`` 1..100 (natural order, baseline-clipped to 1..255).

    Example:
        >>> ijg_table(50)[:4].tolist(), ijg_table(100)[:4].tolist(), int(ijg_table(1).max())
        ([16, 11, 10, 16], [1, 1, 1, 1], 255)
    """
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((STANDARD_LUMA * scale + 50) // 100, 1, 255)


def jpeg_quality(data: bytes) -> int | None:
    """The quality factor (1..100) whose libjpeg luminance table is nearest the file's; None if not a JPEG.

    Exact for files written by libjpeg-based encoders; for other tables the
    nearest libjpeg quality (what the enhancers' training JPEGs were).

    Example:
        >>> jpeg_quality(b"not a jpeg") is None
        True
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "JPEG":
                return None
            tables = getattr(im, "quantization", None) or {}
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if 0 not in tables or len(tables[0]) != 64:
        return None
    luma = np.asarray(tables[0], np.int64)
    errors = [int(np.abs(ijg_table(q) - luma).sum()) for q in range(1, 101)]
    return int(np.argmin(errors)) + 1


def auto_model(quality: int | None, gray: bool = False) -> str | None:
    """The shipped enhancer for a JPEG of ``quality`` (:data:`AUTO_MODELS`, or :data:`AUTO_GRAY_MODELS` for a
    ``gray`` image); None above :data:`AUTO_MAX_QUALITY` (leave the image as it is); the QF 30 model when the
    quality is unknown.

    Example:
        >>> [auto_model(q) for q in (5, 55, 56, 77, 78, 90, 91)]  # doctest: +NORMALIZE_WHITESPACE
        ['unet-jpeg30-10k', 'unet-jpeg30-10k', 'marsqe-lite7-jpeg75-10k', 'marsqe-lite7-jpeg75-10k',
         'marsqe-lite7-jpeg90-10k', 'marsqe-lite7-jpeg90-10k', None]
        >>> auto_model(None), auto_model(30, gray=True)
        ('unet-jpeg30-10k', 'unet-gray-jpeg30')
    """
    table = AUTO_GRAY_MODELS if gray else AUTO_MODELS
    if quality is None:
        return table[min(table)] if gray else UNKNOWN_QUALITY_MODEL
    if quality > AUTO_MAX_QUALITY:
        return None
    return table[min(bound for bound in table if quality <= bound)]


def setting_quality(setting: str) -> int | None:
    """The JPEG QF of an enhancer's ``setting`` (``"jpeg:30"`` -> 30), None for pymars or blind settings.

    Example:
        >>> setting_quality("jpeg:30"), setting_quality("pymars:50"), setting_quality("jpeg:20,jpeg:50")
        (30, None, None)
    """
    kind, _, q = setting.partition(":")
    return int(q) if kind == "jpeg" and q.isdigit() else None


def choose_model(model: str, data: bytes | None, gray: bool = False) -> tuple[str | None, int | None, str]:
    """What ``pymars enhance --model MODEL`` runs on an input of bytes ``data`` (None: not a file's bytes);
    ``gray``: the image is gray (HxW), so "auto" picks from :data:`AUTO_GRAY_MODELS`.

    Returns ``(model name or folder, or None to leave the image as it is; the
    JPEG quality read, or None; a note for the user, "" if none)``. ``model``
    "auto" picks by the quality (:func:`auto_model`); any other model runs as
    asked, with a note when the input's QF is far from the model's setting.

    Example:
        >>> import io, numpy as np
        >>> from PIL import Image
        >>> buf = io.BytesIO(); Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="JPEG", quality=95)
        >>> choose_model("auto", buf.getvalue())[:2], choose_model("auto", None)[0]
        ((None, 95), 'unet-jpeg30-10k')
        >>> choose_model("dncnn-jpeg30", buf.getvalue())[2][:60]
        'the input is a JPEG of quality 95 and dncnn-jpeg30 was train'
    """
    quality = jpeg_quality(data) if data is not None else None
    if model == AUTO:
        name = auto_model(quality, gray)
        if name is None:
            return None, quality, (f"the input is a JPEG of quality {quality}, above every shipped enhancer's reach "
                                   f"(of use up to QF {AUTO_MAX_QUALITY}): it is written unchanged "
                                   "(--model NAME runs one anyway)")
        return name, quality, ""
    note = ""
    if quality is not None:
        meta_path = resolve_model(model) / "model.json"  # the model's own setting
        trained = setting_quality(json.loads(meta_path.read_text()).get("setting", "")) if meta_path.is_file() else None
        if trained is not None and (quality > AUTO_MAX_QUALITY or abs(quality - trained) > 15):
            note = (f"the input is a JPEG of quality {quality} and {model} was trained for QF {trained}: it may "
                    f"make the image worse (--model auto picks by quality)")
    return model, quality, note
