"""Write the encoder weight blob (`*.pmw`, docs/model-blob.md) from a trained model.

The blob is what the C++ core runs: the float analysis ops (with the 1/255
input scaling folded into the first convolution), the integer hyper-synthesis,
per-quality gains and index offsets, and the integer CDF tables. Its SHA-256 is
the model id written into every bitstream.

Example:
    >>> from pymars.train.codec.network import BaseCodec, BaseConfig
    >>> m = BaseCodec(BaseConfig(latent=8, hyper=4, analysis=(8, 8, 8), hyper_analysis=8, hs_hidden=8, synthesis=(8, 8, 8, 8)))
    >>> blob = model_blob(m)
    >>> blob[:4]
    b'PMWB'
"""
from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import torch
from torch import nn

from pymars import _core
from pymars.train.codec.entropy_model import LOG_SCALE_STEP, SCALE_LEVELS, SCALES
from pymars.train.codec.integer import IntegerLayer
from pymars.train.codec.layers import SimplifiedGDN
from pymars.train.codec.network import Z_LIMIT, BaseCodec
from pymars.train.export.cdf_tables import CdfTable, factorized_tables, scale_tables

QUALITIES = 100
SYMBOL_LIMIT = 1 << 20
Z_SUPPORT = 127
OP_CONV, OP_SGDN, OP_RELU, OP_ICONV = 1, 2, 3, 4


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _f32(a) -> bytes:
    return np.ascontiguousarray(np.asarray(a, dtype="<f4")).tobytes()


def _i32(a) -> bytes:
    return np.ascontiguousarray(np.asarray(a, dtype="<i4")).tobytes()


def _u32(*v: int) -> bytes:
    return struct.pack("<" + "I" * len(v), *v)


def float_ops(layers: list[nn.Module], input_scale: float = 1.0) -> bytes:
    """Serialise Conv2d / SimplifiedGDN / ReLU modules as an op list.

    ``input_scale`` multiplies the first convolution's weights (1/255 for g_a:
    the C++ core feeds raw 0..255 samples).

    Example:
        >>> len(float_ops([nn.ReLU()])) == 8
        True
    """
    out = [_u32(len(layers))]
    first = True
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            k = layer.kernel_size[0]
            if layer.padding[0] != k // 2 or layer.kernel_size[0] != layer.kernel_size[1]:
                raise ValueError("only square convolutions with k//2 zero padding are supported")
            w = layer.weight.detach().double().numpy() * (input_scale if first else 1.0)
            first = False
            out += [_u32(OP_CONV, layer.in_channels, layer.out_channels, k, layer.stride[0]), _f32(w), _f32(layer.bias.detach())]
        elif isinstance(layer, SimplifiedGDN):
            if layer.inverse:
                raise ValueError("the rover runs forward GDN only")
            beta, gamma = layer.beta_gamma()
            out += [_u32(OP_SGDN, beta.numel()), _f32(beta.detach()), _f32(gamma.detach())]
        elif isinstance(layer, nn.ReLU):
            out.append(_u32(OP_RELU))
        else:
            raise TypeError(f"cannot export {type(layer).__name__} to the C++ core")
    return b"".join(out)


def int_ops(layers: list[IntegerLayer], input_limit: int) -> bytes:
    """Serialise integer layers, checking that no int32 accumulator can overflow.

    Example:
        >>> from pymars.train.codec.integer import IntegerHyperSynthesis
        >>> len(int_ops(IntegerHyperSynthesis(2, 4, 1, 80).export(), 127)) > 0
        True
    """
    out = [_u32(len(layers))]
    in_max = input_limit
    for layer in layers:
        w = layer.weight
        cout, cin, k, _ = w.shape
        if np.abs(w).max() > 127:
            raise ValueError("integer weights must lie in [-127, 127]")
        bound = np.abs(w).reshape(cout, -1).sum(1) * in_max + np.abs(layer.bias)
        if bound.max() >= 2**31:
            raise OverflowError(f"int32 accumulator could overflow (bound {int(bound.max())})")
        if layer.shift.min() < 0 or layer.shift.max() > 30:
            raise ValueError("shifts must lie in 0..30")
        out += [
            _u32(OP_ICONV, cin, cout, k, 1 if layer.depth_to_space else 0),
            _pad4(w.astype(np.int8).tobytes()),
            _i32(layer.bias),
            _pad4(layer.shift.astype(np.uint8).tobytes()),
            _i32(layer.out_min),
            _i32(layer.out_max),
        ]
        in_max = int(max(np.abs(layer.out_min).max(), np.abs(layer.out_max).max()))
    return b"".join(out)


def tables_section(tables: list[CdfTable]) -> bytes:
    """Serialise CDF tables (count, precision, then R and cdf per table).

    Example:
        >>> from pymars.train.export.cdf_tables import gaussian_table
        >>> len(tables_section([gaussian_table(1.0)]))
        72
    """
    out = [_u32(len(tables), 16)]
    for t in tables:
        out += [_u32(t.half_width), _i32(t.cdf.astype(np.int64))]
    return b"".join(out)


def quality_gains(model: BaseCodec) -> tuple[np.ndarray, np.ndarray]:
    """(gain float32 [100, M], index offset int32 [100, M]) for qualities 1..100.

    Quality q sits at rate-level position (q-1)/99 * (L-1); its log-gains are
    interpolated there and rounded to the scale-table step, so the gain is
    exactly ``exp(step * offset)`` (see pymars.train.codec.network).

    Example:
        >>> from pymars.train.codec.network import BaseConfig
        >>> g, k = quality_gains(BaseCodec(BaseConfig(latent=4, hyper=2, analysis=(4, 4, 4), hs_hidden=4, synthesis=(4, 4, 4, 4))))
        >>> g.shape, k.dtype
        ((100, 4), dtype('int32'))
    """
    q = torch.arange(1, QUALITIES + 1, dtype=torch.float32)
    cfg = getattr(model, "base_cfg", model.cfg)
    first_nl = first_sample_quality(cfg)
    if first_nl:
        # Learned qualities 1..first_nl-1 spread over levels 0..top; the rest are coded from the samples.
        top = float(cfg.learned_top_level) if getattr(cfg, "learned_top_level", -1) >= 0 else model.levels - 1
        level = ((q - 1) / max(1, first_nl - 2)).clamp(max=1.0) * top
    else:
        level = (q - 1) / (QUALITIES - 1) * (model.levels - 1)
    with torch.no_grad():
        k = model.gain_steps(level).round().to(torch.int64).numpy()
    k = np.clip(k, -SCALE_LEVELS, SCALE_LEVELS).astype(np.int32)
    gain = np.exp(LOG_SCALE_STEP * k.astype(np.float64)).astype(np.float32)
    return gain, k


#: Largest near-lossless error of an exported model by default (at its first near-lossless
#: quality): about 36.7 dB, where the learned path of base-v2-gray stops being better on the
#: smoother dev groups. A config's ``nl_max_error`` overrides it.
NL_MAX_ERROR = 6


def near_lossless_table(cfg) -> np.ndarray | None:
    """The NLQT section (uint8 [100]: 0xFF learned, else the maximum error k) of a config, or None.

    Qualities ``nl_from_quality``..100 are near-lossless, k falling linearly from
    ``cfg.nl_max_error`` (default ``NL_MAX_ERROR``) to 0 at quality 100 (lossless for
    8-bit input). One step of k is ~5 dB near lossless and ~0.5 dB at k = 16, so
    with a quality per k the ladder is dense where PSNR moves slowly.

    Example:
        >>> from pymars.train.codec.network import BaseConfig
        >>> t = near_lossless_table(BaseConfig(nl_from_quality=90))
        >>> int(t[88]), int(t[89]), int(t[99])
        (255, 6, 0)
        >>> [int(v) for v in near_lossless_table(BaseConfig(nl_from_quality=85, nl_max_error=15))[84:]]
        [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    """
    first = int(getattr(cfg, "nl_from_quality", 0) or 0)
    if not first:
        return None
    if not 2 <= first <= QUALITIES:
        raise ValueError(f"nl_from_quality must be in 2..{QUALITIES}, got {first}")
    top = int(getattr(cfg, "nl_max_error", NL_MAX_ERROR))
    if not 0 <= top <= 32:
        raise ValueError(f"nl_max_error must be in 0..32, got {top}")
    table = np.full(QUALITIES, 0xFF, np.uint8)
    span = max(1, QUALITIES - first)
    for q in range(first, QUALITIES + 1):
        table[q - 1] = int(round(top * (QUALITIES - q) / span))
    return table


def first_sample_quality(cfg) -> int:
    """The first quality coded from the samples (wavelet or near-lossless), 0: none.

    Example:
        >>> from pymars.train.codec.network import BaseConfig
        >>> first_sample_quality(BaseConfig(nl_from_quality=90, wv_from_quality=40)), first_sample_quality(BaseConfig())
        (40, 0)
    """
    firsts = [int(getattr(cfg, key, 0) or 0) for key in ("wv_from_quality", "nl_from_quality")]
    firsts = [f for f in firsts if f]
    return min(firsts) if firsts else 0


def wavelet_table(cfg) -> np.ndarray | None:
    """The WVQT section (uint16 [100]: 0 not wavelet, else the step in 1/16 level) of a config, or None.

    Qualities ``wv_from_quality`` up to the first near-lossless one (or 100) use
    the wavelet coder (docs/bitstream.md §4.9), the step falling geometrically from
    ``wv_max_step`` to ``wv_min_step``: equal quality steps are about equal PSNR
    steps (6 dB per halving of the step at high rates).

    Example:
        >>> from pymars.train.codec.network import BaseConfig
        >>> t = wavelet_table(BaseConfig(wv_from_quality=2, wv_max_step=32, wv_min_step=2, nl_from_quality=99))
        >>> int(t[0]), int(t[1]) / 16, int(t[97]) / 16, int(t[98])
        (0, 32.0, 2.0, 0)
    """
    first = int(getattr(cfg, "wv_from_quality", 0) or 0)
    if not first:
        return None
    last = (int(getattr(cfg, "nl_from_quality", 0) or 0) or QUALITIES + 1) - 1  # before the near-lossless ones
    if not 1 <= first <= last <= QUALITIES:
        raise ValueError(f"wv_from_quality must be in 1..{last}, got {first}")
    hi, lo = float(cfg.wv_max_step), float(cfg.wv_min_step)
    if not 1 / 16 <= lo <= hi <= 4095:
        raise ValueError(f"wavelet steps must satisfy 1/16 <= wv_min_step <= wv_max_step <= 4095, got {lo}, {hi}")
    table = np.zeros(QUALITIES, np.uint16)
    for q in range(first, last + 1):
        t = (q - first) / max(1, last - first)
        table[q - 1] = max(1, int(round(16 * hi * (lo / hi) ** t)))
    return table


def dims_flags(cfg) -> int:
    """DIMS flags of a config (docs/model-blob.md): bit 0 tile means, bit 1 range-coded near-lossless tiles,
    bit 2 (with bit 1) Arith2's learned context model.

    Example:
        >>> from pymars.train.codec.network import BaseConfig
        >>> dims_flags(BaseConfig()), dims_flags(BaseConfig(tile_means=True, nl_coder="arith"))
        (0, 3)
        >>> dims_flags(BaseConfig(nl_coder="arith2"))
        6
    """
    coder = getattr(cfg, "nl_coder", "golomb")
    if coder not in ("golomb", "arith", "arith2"):
        raise ValueError(f"nl_coder must be 'golomb', 'arith' or 'arith2', got {coder!r}")
    flags = 1 if getattr(cfg, "tile_means", False) else 0
    return flags | {"golomb": 0, "arith": 2, "arith2": 6}[coder]


def nl_priors_section(priors: np.ndarray, channels: int) -> bytes:
    """The NLPR section: u32 kinds, k classes, contexts, bins, then uint16 P(0) [kinds][classes][contexts][bins].

    Example:
        >>> from pymars import _core
        >>> shape = (1, _core.NL_K_CLASSES, _core.NL_CONTEXTS, _core.NL_BINS)
        >>> len(nl_priors_section(np.full(shape, 16384, np.uint16), 1)) == 16 + 2 * int(np.prod(shape))
        True
    """

    p = np.asarray(priors)
    want = (channels, _core.NL_K_CLASSES, _core.NL_CONTEXTS, _core.NL_BINS)
    if p.shape != want or p.min() < 1 or p.max() >= 1 << 15:
        raise ValueError(f"near-lossless priors must be uint16 {want} in 1..32767, got {p.shape}")
    return _u32(*p.shape) + p.astype("<u2").tobytes()


def wavelet_priors_section(priors: np.ndarray, channels: int) -> bytes:
    """The WVPR section: u32 kinds, classes, contexts, then uint16 P(0) [kinds][classes][contexts].

    Example:
        >>> len(wavelet_priors_section(np.full((1, 6, 504), 16384, np.uint16), 1))
        6060
    """

    p = np.asarray(priors)
    kinds = 2 if channels == 3 else 1
    want = (kinds, _core.WAVELET_STEP_CLASSES, _core.WAVELET_STATE_BITS)
    if p.shape != want or p.min() < 1 or p.max() >= 1 << 15:
        raise ValueError(f"wavelet priors must be uint16 {want} in 1..32767, got {p.shape}")
    return _u32(*p.shape) + p.astype("<u2").tobytes()


def model_blob(model: BaseCodec, meta: dict | None = None, wavelet_priors: np.ndarray | None = None,
               nl_priors: np.ndarray | None = None) -> bytes:
    """The complete blob for ``model`` (use the EMA weights of a checkpoint).

    Example:
        >>> from pymars.train.codec.network import BaseConfig
        >>> m = BaseCodec(BaseConfig(latent=4, hyper=2, analysis=(4, 4, 4), hyper_analysis=4, hs_hidden=4, synthesis=(4, 4, 4, 4)))
        >>> len(model_blob(m)) > 1000
        True
    """
    model = model.eval()
    # A REMAC model (pymars.train.remac.model.RemacCodec) keeps the base config as
    # base_cfg and exports its h_s as (layers, reference layer).
    cfg = getattr(model, "base_cfg", model.cfg)
    meta = {"name": model.cfg.name, "config": cfg.to_dict(), **(meta or {})}
    gain, offset = quality_gains(model)
    z_pmf = model.z_density.pmf(Z_SUPPORT)
    hs = model.h_s.export()
    ref_section = []
    if isinstance(hs, tuple):
        hs, ref_layer = hs
        # HSRF: the branch joins the input of h_s layer 2 (`mid`); latents in
        # units of 1/8 (3 fractional bits), 16 x 16 per reference.
        ref_section = [(b"HSRF", _u32(2, 3, 16) + int_ops([ref_layer], 127))]
    sections = [
        (b"META", json.dumps(meta, sort_keys=True).encode()),
        (b"DIMS", _u32(cfg.channels, cfg.latent, cfg.hyper, SCALE_LEVELS, QUALITIES, Z_LIMIT, SYMBOL_LIMIT,
                       dims_flags(cfg))),
        (b"GA  ", float_ops(list(model.g_a.layers), input_scale=1 / 255)),
        (b"HA  ", float_ops(list(model.h_a.layers))),
        *ref_section,
        (b"HS  ", int_ops(hs, Z_LIMIT)),
        (b"GAIN", _f32(gain) + _i32(offset)),
        (b"YTAB", tables_section(scale_tables(SCALES))),
        (b"ZTAB", tables_section(factorized_tables(z_pmf))),
    ]
    nl = near_lossless_table(cfg)
    if nl is not None:
        sections.append((b"NLQT", nl.tobytes()))
    wv = wavelet_table(cfg)
    if wv is not None:
        sections.append((b"WVQT", wv.astype("<u2").tobytes()))
    if wavelet_priors is not None:
        sections.append((b"WVPR", wavelet_priors_section(wavelet_priors, cfg.channels)))
    if nl_priors is not None:
        if getattr(cfg, "nl_coder", "golomb") != "arith2":
            raise ValueError("near-lossless priors (NLPR) need nl_coder='arith2'")
        sections.append((b"NLPR", nl_priors_section(nl_priors, cfg.channels)))
    out = [b"PMWB", struct.pack("<HHI", 1, 0, len(sections))]
    for tag, payload in sections:
        out += [tag, _u32(len(payload)), _pad4(payload)]
    return b"".join(out)


def model_id(blob: bytes) -> bytes:
    """The 8-byte model id of a blob: the first 8 bytes of its SHA-256.

    Example:
        >>> model_id(b"x").hex()
        '2d711642b726b044'
    """
    return hashlib.sha256(blob).digest()[:8]
