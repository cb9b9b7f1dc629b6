"""Tests of the ground enhancer (pymars.enhance): they run without ../shared and without a GPU.

Synthetic scenes (pymars.data.synthetic) stand in for Mars images; weights
are random unless a test is about the committed ones.
"""
from __future__ import annotations

import io

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pymars.data.synthetic import mars_like_scene  # noqa: E402
from pymars.enhance import classes, gan, quality  # noqa: E402
from pymars.enhance.dictionary import Dictionary, choose_references  # noqa: E402
from pymars.enhance.inference import WEIGHTS, Enhancer, tiled  # noqa: E402
from pymars.enhance.networks import MarsQE, NonLocalAttention, TextureExtraction, build  # noqa: E402
from pymars.enhance.patches import TrainingCache  # noqa: E402


# --------------------------------------------------------------------------- TEM / network blocks


def naive_tem(q, k, v, d):
    """Eqs. 5-7 with explicit loops over blocks (the oracle)."""
    b, c, h, w = q.shape
    _, _, hr, wr = k.shape
    out = torch.zeros_like(q)
    for n in range(b):
        keys = [(y, x) for y in range(0, hr, d) for x in range(0, wr, d)]
        for y in range(0, h, d):
            for x in range(0, w, d):
                qb = q[n, :, y:y + d, x:x + d].flatten()
                best, arg = -2.0, None
                for (ky, kx) in keys:
                    kb = k[n, :, ky:ky + d, kx:kx + d].flatten()
                    s = float(torch.dot(qb / qb.norm(), kb / kb.norm()))
                    if s > best:
                        best, arg = s, (ky, kx)
                out[n, :, y:y + d, x:x + d] = v[n, :, arg[0]:arg[0] + d, arg[1]:arg[1] + d] * best
    return out


def test_tem_matches_a_naive_loop_over_blocks():
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(2, 3, 8, 12, generator=g), torch.randn(2, 3, 12, 8, generator=g), torch.randn(2, 3, 12, 8,
                                                                                                          generator=g)
    got = TextureExtraction(4)(q, k, v)
    assert torch.allclose(got, naive_tem(q, k, v, 4), atol=1e-5)


def test_tem_copies_the_raw_block_whose_compressed_twin_matches():
    # Key blocks: one equal to the query block's direction; the value there is distinctive.
    q = torch.zeros(1, 1, 4, 4)
    q[..., :2, :2] = 1.0  # only the first 2x2 block is non-zero... blocks are 4x4: a single block
    k = torch.cat([torch.rand(1, 1, 4, 4), q * 3.0], 3)  # block 1 is q scaled: cosine 1
    v = torch.cat([torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 7.0)], 3)
    out = TextureExtraction(4)(q, k, v)
    assert torch.allclose(out, torch.full((1, 1, 4, 4), 7.0), atol=1e-5)


def test_tem_margin_equals_the_arg_max_away_from_ties_and_blends_at_them():
    from pymars.enhance.networks import TIE_MARGIN, to_blocks

    g = torch.Generator().manual_seed(3)
    q, k, v = torch.randn(1, 3, 8, 8, generator=g), torch.randn(1, 3, 16, 8, generator=g), torch.randn(1, 3, 16, 8,
                                                                                                        generator=g)
    qn, kn = (torch.nn.functional.normalize(to_blocks(x, 4), dim=1) for x in (q, k))
    top2 = torch.bmm(qn.transpose(1, 2), kn).topk(2, dim=2).values
    gap = float((top2[..., 0] - top2[..., 1]).min())
    assert gap > 0
    # Below the smallest best/runner-up gap the margin changes nothing: Eq. 5 exactly.
    assert torch.allclose(TextureExtraction(4, margin=gap * 0.99)(q, k, v), naive_tem(q, k, v, 4), atol=1e-5)
    # At a near tie (two key blocks 1e-6 apart in cosine) the arg-max jumps between their values when the
    # query moves by rounding noise; the margin blend moves by about noise / margin.
    key = torch.zeros(1, 1, 4, 8)
    key[..., 0, :4], key[..., 1, 4:] = 1.0, 1.0
    val = torch.cat([torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)], 3)
    outs = {}
    for m in (0.0, TIE_MARGIN):
        tem = TextureExtraction(4, margin=m)
        outs[m] = []
        for eps in (-1e-6, 1e-6):
            query = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
            query[..., 0, :], query[..., 1, :] = 1.0 + eps, 1.0 - eps
            outs[m].append(tem(query.float(), key, val))
    assert float((outs[0.0][0] - outs[0.0][1]).abs().max()) > 0.5  # the literal arg-max flips
    assert float((outs[TIE_MARGIN][0] - outs[TIE_MARGIN][1]).abs().max()) < 1e-3
    assert abs(float(outs[TIE_MARGIN][0].mean()) / math.sqrt(0.5) - 0.5) < 1e-3  # half and half, times S_i


def test_non_local_attention_stays_within_a_class():
    torch.manual_seed(0)
    nla = NonLocalAttention(4)
    x = torch.rand(1, 4, 4, 4)
    cls = torch.zeros(1, 1, 4, 4)
    cls[..., 2:] = 2.0
    y = nla(x, cls)
    x2 = x.clone()
    x2[..., 2:] = torch.rand(1, 4, 4, 2) * 10
    assert torch.allclose(nla(x2, cls)[..., :2], y[..., :2], atol=1e-6)
    assert not torch.allclose(nla(x2, torch.zeros_like(cls))[..., :2], nla(x, torch.zeros_like(cls))[..., :2])


@pytest.mark.parametrize("kind", ["marsqe", "marsqe-lite", "marsqe-notfm", "marsqe-notem", "arcnn", "dncnn",
                                  "dncnn-cascade", "unet"])
def test_every_kind_runs_and_has_gradients(kind):
    from pymars.enhance.networks import PLAIN_KINDS

    torch.manual_seed(0)
    net = build(kind, 8)
    x = torch.rand(1, 3, 32, 32)
    out = net(x) if kind in PLAIN_KINDS else net(x, x, x, torch.zeros(1, 1, 32, 32))
    final = out[1] if isinstance(out, tuple) else out
    final.mean().backward()
    assert final.shape == x.shape
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_lite_has_no_post_network_and_ablations_drop_their_modules():
    assert not hasattr(build("marsqe-lite"), "p_nlm")
    assert build("marsqe-notfm").tfm is None and build("marsqe-notem").tfm is None
    assert sum(p.numel() for p in build("marsqe").parameters()) > sum(p.numel() for p in build("marsqe-lite").parameters())


# --------------------------------------------------------------------------- classes, dictionary


def test_class_mapping_of_every_marsscapes_colour():
    expected = {"soil": 1, "gravel": 1, "sand": 0, "bedrock": 2, "big rock": 2, "ridge": 2, "sky": 3}
    for colour, (name, k) in classes.COLOUR_TABLE.items():
        got = int(classes.class_map(np.array([[colour]], np.uint8))[0, 0])
        assert got == expected.get(name, classes.IGNORE), name
    assert classes.class_map(np.array([[[1, 2, 3]]], np.uint8))[0, 0] == classes.IGNORE


def test_patch_class_needs_half_labelled():
    m = np.full((10, 10), classes.IGNORE, np.uint8)
    m[:4] = classes.ROCK
    assert classes.patch_class(m) == classes.IGNORE
    m[:6] = classes.ROCK
    assert classes.patch_class(m) == classes.ROCK


def test_dictionary_matching_picks_the_same_texture_within_the_class():
    rng = np.random.default_rng(0)
    smooth = np.repeat(np.repeat(rng.integers(0, 256, (4, 4, 3)), 8, 0), 8, 1).astype(np.uint8)  # flat 8x8 blocks
    noisy = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[:, ::2] = 200
    d = Dictionary(np.stack([smooth, noisy, stripes, noisy]), np.array([1, 1, 1, 3]), ["s", "n", "t", "sky-n"])
    d.compress(lambda p: p)
    query = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)  # another noise patch
    assert d.match(query, 1) == 1
    assert d.match(query, 3) == 3  # only the class's references are candidates
    q2 = np.zeros((32, 32, 3), np.uint8)
    q2[:, 1::2] = 90
    assert d.match(q2, 1) == 2
    assert d.match(query, 0) in range(4)  # an empty class falls back to the whole dictionary


def test_choose_references_reports_calinski_harabasz_for_every_size():
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.integers(0, 256, (10, 32, 32, 3)), rng.integers(100, 110, (10, 32, 32, 3))]).astype(np.uint8)
    dicts, ch = choose_references(p, np.repeat([1, 2], 10), [str(i) for i in range(20)], sizes=(1, 3))
    assert set(ch) == {1, 3} and all(math.isfinite(v) for v in ch.values())
    assert len(dicts[3]) == 6 and sorted(dicts[3].classes.tolist()) == [1, 1, 1, 2, 2, 2]
    assert [e["class"] for e in dicts[1].recipe()] == ["soil", "rock"]


# --------------------------------------------------------------------------- metrics, bias triangle


def test_psnr_b_penalises_block_edges_and_equals_psnr_without_them():
    from pymars.evaluation.metrics import psnr

    a = np.full((16, 16, 3), 100, np.uint8)
    b = a.copy()
    b[:, 8:] = 104
    # MSE 8, D_B = 8 (16 of 32 boundary pairs differ by 4), D_B^c = 0, eta = 3/4 -> BEF 6.
    assert quality.psnr_b(a, b) == pytest.approx(10 * math.log10(255**2 / 14))
    c = a.copy()
    c[:, 4:] = 104  # the step is inside a block: no blocking term
    assert quality.psnr_b(a, c) == pytest.approx(psnr(a, c))


def test_ssim_agrees_with_pytorch_msssim():
    pm = pytest.importorskip("pytorch_msssim")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-25, 26, a.shape), 0, 255).astype(np.uint8)
    t = lambda x: torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float64))  # noqa: E731
    assert quality.ssim(a, b) == pytest.approx(float(pm.ssim(t(a), t(b), data_range=255)), abs=1e-6)


def test_bias_triangle_distances_and_deviation_on_constructed_features():
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((400, 2))
    comp = raw + np.array([3.0, 0.0])
    assert gan.frechet_distance(raw, comp) == pytest.approx(9.0, abs=0.05)
    # E at the midpoint: deviation 0; on C: -100 %; on R: +100 %.
    s_cr = gan.frechet_distance(comp, raw) ** 0.5
    mid = raw + np.array([1.5, 0.0])
    s_ce, s_re = gan.frechet_distance(comp, mid) ** 0.5, gan.frechet_distance(raw, mid) ** 0.5
    assert gan.deviation(s_cr, s_ce, s_re) == pytest.approx(0.0, abs=1.0)
    assert gan.deviation(s_cr, 0.0, s_cr) == -100.0


def test_domain_divergence_only_pushes_when_enhanced_is_closer_to_compressed():
    c, r = [torch.zeros(1, 2, 2, 2)], [torch.ones(1, 2, 2, 2)]
    e = [torch.full((1, 2, 2, 2), 0.5, requires_grad=True)]
    loss = gan.domain_divergence(r, c, e)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.5) and float(e[0].grad.sum()) < 0  # gradient moves E away from C
    assert float(gan.domain_divergence(r, c, [torch.full((1, 2, 2, 2), 1.5)])) == 0.0


# --------------------------------------------------------------------------- training


def synthetic_cache(n=3, seed=0) -> TrainingCache:
    from pymars.enhance.codecs import compress

    raw = np.stack([mars_like_scene(256, 256, seed=seed + i) for i in range(n)])
    comp = np.stack([compress(r, "jpeg:30")[0] for r in raw])
    d_raw = np.stack([mars_like_scene(128, 128, seed=50 + i) for i in range(2)])
    d_comp = np.stack([compress(r, "jpeg:30")[0] for r in d_raw])[None]
    return TrainingCache(raw, comp, np.array([[[3, 3], [1, 2]]] * n, np.uint8), np.zeros((n, 2, 2), np.int16),
                         np.zeros(n, np.int16), d_raw, d_comp, np.array([1, 2], np.uint8), ["jpeg:30"])


@pytest.mark.parametrize("variant", ["resumed", "drawn ahead"])
def test_training_weights_are_the_same_resumed_or_with_batches_drawn_ahead(tmp_path, variant):
    # A run stopped and resumed, and one whose batches are drawn in threads ahead of the step (the GPU runs,
    # scripts/gpu_enhance.py), must end with the uninterrupted in-loop run's weights.
    from pymars.enhance.training import EnhancerConfig, train_enhancer

    cache = tmp_path / "cache.npz"
    synthetic_cache().save(cache)
    common = dict(kind="marsqe", cache=str(cache), batch=2, crop=32, width=4, save_every=1, steps=3)
    train_enhancer(EnhancerConfig(out=str(tmp_path / "a"), **common), progress=False)
    if variant == "resumed":
        train_enhancer(EnhancerConfig(out=str(tmp_path / "b"), stop_at=2, **common), progress=False)  # interrupted
        train_enhancer(EnhancerConfig(out=str(tmp_path / "b"), **common), progress=False)
    else:
        train_enhancer(EnhancerConfig(out=str(tmp_path / "b"), prefetch=2, **common), progress=False)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 3
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_gan_recipe_refuses_a_gpu_in_one_line(tmp_path):
    from pymars.enhance.training import EnhancerConfig, train_enhancer

    cache = tmp_path / "cache.npz"
    synthetic_cache(1).save(cache)
    with pytest.raises(ValueError, match="CPU only"):
        train_enhancer(EnhancerConfig(cache=str(cache), out=str(tmp_path / "g"), gan="plain", device="meta"),
                       progress=False)


def test_gpu_pack_rebuilds_the_training_cache(tmp_path):
    # The device gets the cache as WebP + JPEG bytes (64 MiB limit); unpacked it must be the same cache.
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_enhance", Path(__file__).resolve().parents[1] / "scripts" / "gpu_enhance.py")
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    c = synthetic_cache(3)
    c.save(tmp_path / "cache.npz")
    pack = tmp_path / "pack.npz"
    gpu.main(["prepare", "--cache", str(tmp_path / "cache.npz"), "--regions", "2", "--out", str(pack)])
    assert gpu.unpack(pack, tmp_path / "back.npz").endswith("decode differently here: 0")
    back = TrainingCache.load(tmp_path / "back.npz")
    pick = np.sort(np.random.default_rng(0).permutation(3)[:2])
    assert np.array_equal(back.raw, c.raw[pick]) and np.array_equal(back.comp, c.comp[pick])
    assert np.array_equal(back.classes, c.classes[pick]) and np.array_equal(back.dict_comp, c.dict_comp)
    assert back.specs == ["jpeg:30"] and pack.stat().st_size < (tmp_path / "cache.npz").stat().st_size / 3


@pytest.mark.parametrize("kind", ["marsqe", "dncnn"])
def test_bf16_training_steps_lower_the_loss_and_save_fp32_weights(tmp_path, kind):
    from pymars.enhance.training import EnhancerConfig, train_enhancer

    cache = tmp_path / "cache.npz"
    synthetic_cache().save(cache)
    cfg = EnhancerConfig(kind=kind, cache=str(cache), batch=2, crop=32, width=4, save_every=5, lr=2e-3,
                         out=str(tmp_path / "r"), steps=30, precision="bf16")
    train_enhancer(cfg, progress=False)
    ck = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert ck["step"] == 30
    assert all(v.dtype == torch.float32 for v in ck["model"].values() if v.is_floating_point())
    losses = [h["loss"] for h in ck["history"] if h["loss"] is not None]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="precision"):
        train_enhancer(EnhancerConfig(kind=kind, cache=str(cache), out=str(tmp_path / "x"), precision="fp16"),
                       progress=False)


def test_cache_batch_gives_each_crop_the_reference_under_its_centre():
    c = synthetic_cache(1)
    c.refs[0] = np.array([[0, 1], [1, 1]])
    b = c.batch(np.random.default_rng(3), 16, 64)
    assert b["classes"].min() >= 0 and set(np.unique(b["classes"])) <= {1.0, 2.0, 3.0}
    raw_refs = c.dict_raw.astype(np.float32) / 255
    for i in range(16):
        crop = b["ref_raw"][i].transpose(1, 2, 0)
        found = [k for k in range(2) if any(np.array_equal(crop, raw_refs[k, y:y + 64, x:x + 64])
                                            for y in range(0, 65, 8) for x in range(0, 65, 8))]
        assert found  # every reference crop is a crop of a dictionary patch


# --------------------------------------------------------------------------- export, inference, CLI


def export_random(tmp_path: Path, kind: str, dictionary: Dictionary | None = None) -> Path:
    from pymars.enhance.export import export_enhancer, plain_layout
    from pymars.enhance.networks import PLAIN_KINDS

    torch.manual_seed(0)
    net = build(kind, 8)
    if kind.startswith("dncnn"):  # non-trivial batch-norm statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    if kind == "dncnn-cascade":  # a stage that is not the identity (it starts as one)
        torch.nn.init.normal_(net.second.body[-1].weight, std=0.05)
    if kind == "unet":  # its last convolution starts at zero too
        torch.nn.init.normal_(net.tail.weight, std=0.05)
    meta = {"setting": "jpeg:30", **(plain_layout(net) if kind in PLAIN_KINDS else {"margin": 8})}
    if dictionary is not None:
        meta["dictionary"] = dictionary.recipe()
    folder = tmp_path / kind
    errs = export_enhancer(net, kind, meta, folder)
    assert max(errs.values()) < 1e-4
    return folder


@pytest.mark.parametrize("kind", ["dncnn", "arcnn", "dncnn-cascade", "unet"])
def test_tiled_inference_equals_a_single_pass(tmp_path, kind):
    folder = export_random(tmp_path, kind)
    # Sides that are not multiples of 8, and (for the U-Net's 512-pixel cores) more than one core across.
    img = mars_like_scene(300, 530 if kind != "unet" else 1100, seed=2)
    enh = Enhancer(folder)
    tiled_out = enh.enhance_float(img)
    # One pass over the whole image, edge-replicated to the net's multiple (the U-Net's 8) and cut back.
    m = enh.meta.get("multiple", 1)
    padded = np.pad(img, ((0, -img.shape[0] % m), (0, -img.shape[1] % m), (0, 0)), mode="edge")
    single = enh.net.run(None, {"comp": padded.transpose(2, 0, 1)[None].astype(np.float32) / 255})[0][0]
    single = single[:, :img.shape[0], :img.shape[1]]
    assert np.abs(tiled_out - single).max() < 1e-5


def test_a_half_size_export_is_its_rounded_weights(tmp_path):
    """--half: float16 in safetensors and ONNX, half the bytes, and PyTorch and ONNX Runtime still agree."""
    import onnx
    from safetensors.numpy import load_file

    from pymars.enhance.export import export_enhancer, plain_layout, reexport

    torch.manual_seed(0)
    net = build("unet")
    torch.nn.init.normal_(net.tail.weight, std=0.05)
    meta = {"setting": "jpeg:30", **plain_layout(net)}
    export_enhancer(net, "unet", dict(meta), tmp_path / "full")
    errs = export_enhancer(net, "unet", dict(meta), tmp_path / "half", half=True)
    assert max(errs.values()) < 1e-5
    full, half = tmp_path / "full", tmp_path / "half"
    assert json.loads((half / "model.json").read_text())["weights"] == "float16"
    assert {v.dtype for v in load_file(str(half / "model.safetensors")).values()} == {np.dtype(np.float16)}
    graph = onnx.load(str(half / "model.onnx")).graph
    assert {i.data_type for i in graph.initializer if len(i.dims) > 1} == {onnx.TensorProto.FLOAT16}
    for f in ("model.onnx", "model.safetensors"):
        assert (half / f).stat().st_size < 0.55 * (full / f).stat().st_size
    img = mars_like_scene(40, 56, seed=3)
    onnx_out = Enhancer(half).enhance_float(img)
    assert np.abs(onnx_out - Enhancer(half, backend="torch").enhance_float(img)).max() < 1e-5
    # The rounding moves the output by far less than a grey level.
    assert np.abs(onnx_out - Enhancer(full).enhance_float(img)).max() < 0.5 / 255
    # A re-export keeps it half-size.
    reexport(half, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "model.json").read_text())["weights"] == "float16"


def test_a_cascade_starts_as_the_dncnn_it_extends(tmp_path):
    from pymars.enhance.export import export_enhancer
    from pymars.enhance.training import init_weights

    torch.manual_seed(0)
    dncnn = build("dncnn")
    for m in dncnn.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
    export_enhancer(dncnn, "dncnn", {"setting": "pymars:50", "margin": 16}, tmp_path / "d")
    cascade = build("dncnn-cascade")
    missing = cascade.load_state_dict(init_weights(tmp_path / "d", "dncnn-cascade"), strict=False).missing_keys
    assert missing and all(k.startswith("second.") for k in missing)
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(cascade.eval()(x), dncnn.eval()(x))
    # The other way round is refused with the usual one-line error.
    export_enhancer(cascade, "dncnn-cascade", {"setting": "pymars:50", "margin": 40}, tmp_path / "c")
    with pytest.raises(ValueError, match="cannot start a dncnn"):
        init_weights(tmp_path / "c", "dncnn")


def test_tiler_cross_fades_without_seams():
    # A window function that depends on the window (like MarsQE's per-patch references):
    # the blended result must stay continuous across window borders.
    def fn(y0, y1, x0, x1, core):
        return np.full((1, y1 - y0, x1 - x0), float(core[1] // 64), np.float32)

    out = tiled(fn, (64, 256), 1, tile=64, margin=8, blend=8)[0]
    assert np.abs(np.diff(out, axis=1)).max() <= 1.0 / 16 + 1e-6  # a 0 -> 1 step spread over 16 px
    assert out[0, 0] == 0.0 and out[0, -1] == 3.0


def marsqe_setup(tmp_path: Path, kind: str = "marsqe"):
    from pymars.enhance.codecs import compress

    raw = np.stack([mars_like_scene(128, 128, seed=70 + i) for i in range(4)])
    d = Dictionary(raw, np.array([0, 1, 2, 3], np.uint8), [f"synthetic{i}.png:0,0" for i in range(4)])
    npz = tmp_path / "dict.npz"
    d.save(npz)
    folder = export_random(tmp_path, kind, d)
    clf = classes.PatchClassifier.fit(raw, np.array([0, 1, 2, 3]), steps=50)
    d.compress(lambda p: compress(p, "jpeg:30")[0])
    return folder, d, npz, clf


@pytest.mark.parametrize("kind", ["marsqe", "marsqe-lite", "marsqe-notem"])
def test_marsqe_whole_image_onnx_equals_pytorch(tmp_path, kind):
    folder, d, _, clf = marsqe_setup(tmp_path, kind)
    img = mars_like_scene(200, 300, seed=5)
    onnx_out = Enhancer(folder, dictionary=d, classifier=clf).enhance_float(img)
    torch_out = Enhancer(folder, dictionary=d, classifier=clf, backend="torch").enhance_float(img)
    assert onnx_out.shape == (3, 200, 300)
    assert np.abs(onnx_out - torch_out).max() < 1e-3


@pytest.mark.parametrize("kind", ["dncnn", "marsqe", "marsqe-lite"])
def test_batched_windows_of_several_images_equal_one_window_per_call(tmp_path, kind):
    # --batch N (a GPU's batched inference) must give what one call per window gives, for
    # images of different sizes and for gray input (windows of several images share calls).
    if kind == "dncnn":
        folder, kw = export_random(tmp_path, kind), {}
    else:
        folder, d, _, clf = marsqe_setup(tmp_path, kind)
        kw = {"dictionary": d, "classifier": clf}
    images = [mars_like_scene(300, 530, seed=2), mars_like_scene(140, 200, seed=3)[..., 1],
              mars_like_scene(300, 530, seed=4)]
    one = [Enhancer(folder, **kw).enhance(im) for im in images]
    many = Enhancer(folder, batch=5, **kw).enhance_many(images)
    assert [m.shape for m in many] == [im.shape for im in images]
    for a, b in zip(one, many):
        assert np.abs(a.astype(int) - b).max() <= 1  # the runtime's float rounding of a batched call, at most
        assert np.mean(a != b) < 1e-3
    with pytest.raises(ValueError, match="batch"):
        Enhancer(folder, batch=0, **kw)


def committed_enhancers():
    """Folders with networks of their own (an ensemble folder only names other folders)."""
    return sorted(p for p in WEIGHTS.glob("enhance-*") if (p / "model.json").is_file()
                  and json.loads((p / "model.json").read_text())["kind"] != "ensemble")


def test_an_ensemble_is_the_weighted_mean_of_its_members(tmp_path):
    a, b = export_random(tmp_path, "dncnn"), export_random(tmp_path, "arcnn")
    folder = tmp_path / "pair"
    folder.mkdir()
    meta = {"setting": "jpeg:30", "kind": "ensemble", "members": ["dncnn", "arcnn"], "weights": [0.25, 0.75]}
    (folder / "model.json").write_text(json.dumps(meta))
    img = mars_like_scene(90, 130, seed=4)
    want = 0.25 * Enhancer(a).enhance_float(img) + 0.75 * Enhancer(b).enhance_float(img)
    assert np.abs(Enhancer(folder).enhance_float(img) - want).max() < 1e-6
    assert Enhancer(folder).enhance(img[..., 0]).shape == (90, 130)  # gray goes through the gray path
    (folder / "model.json").write_text(json.dumps(dict(meta, weights=[0.5, 0.6])))
    with pytest.raises(ValueError, match="summing to 1"):
        Enhancer(folder)
    (folder / "model.json").write_text(json.dumps(dict(meta, members=["dncnn", "missing"])))
    with pytest.raises(FileNotFoundError, match="missing"):
        Enhancer(folder)


def test_committed_ensembles_name_committed_members():
    for p in WEIGHTS.glob("enhance-*/model.json"):
        meta = json.loads(p.read_text())
        if meta["kind"] == "ensemble":
            assert abs(sum(meta["weights"]) - 1) < 1e-6
            assert all((WEIGHTS / m / "model.json").is_file() for m in meta["members"]), p


def test_export_records_the_tem_margin_and_a_re_export_keeps_the_record(tmp_path, capsys):
    from pymars.cli import main
    from pymars.enhance.networks import TIE_MARGIN
    from pymars.enhance.training import load_enhancer

    folder, d, npz, clf = marsqe_setup(tmp_path, "marsqe-lite")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["tem_margin"] == TIE_MARGIN and load_enhancer(folder)[0].tem.margin == TIE_MARGIN
    again = tmp_path / "hard"
    assert main(["enhance-export", str(folder), "-o", str(again), "--tem-margin", "0"]) == 0
    meta2 = json.loads((again / "model.json").read_text())
    assert meta2["tem_margin"] == 0.0 and load_enhancer(again)[0].tem.margin == 0.0
    assert {k: v for k, v in meta2.items() if k not in ("tem_margin", "onnx_check_max_abs")} == \
        {k: v for k, v in meta.items() if k not in ("tem_margin", "onnx_check_max_abs")}
    # Folders from before the margin existed (no tem_margin in model.json) ran, and still run, the arg-max.
    del meta["tem_margin"]
    (folder / "model.json").write_text(json.dumps(meta))
    assert load_enhancer(folder)[0].tem.margin == 0.0


def test_there_are_committed_enhancers():
    assert committed_enhancers(), "no enhancer weights committed under pymars/weights/enhance-*"


@pytest.mark.parametrize("folder", committed_enhancers(), ids=lambda p: p.name)
def test_committed_onnx_graphs_equal_pytorch(folder):
    import onnxruntime as ort

    from pymars.enhance.export import _Main, _Post
    from pymars.enhance.training import load_enhancer

    from pymars.enhance.networks import PLAIN_KINDS

    net, kind, meta = load_enhancer(folder)
    g = torch.Generator().manual_seed(1)
    if kind in PLAIN_KINDS:
        graphs = {"model.onnx": (net, {"comp": torch.rand(1, 3, 64, 80, generator=g)})}
    else:
        graphs = {"main.onnx": (_Main(net), {"comp": torch.rand(1, 3, 64, 80, generator=g),
                                             "ref_raw": torch.rand(1, 3, 128, 128, generator=g),
                                             "ref_comp": torch.rand(1, 3, 128, 128, generator=g)})}
        if net.post_enabled:
            graphs["post.onnx"] = (_Post(net), {"comp": torch.rand(1, 3, 64, 80, generator=g),
                                                "enh": torch.rand(1, 3, 64, 80, generator=g),
                                                "feat": torch.randn(1, meta["width"], 64, 80, generator=g),
                                                "classes": torch.randint(0, 4, (1, 1, 64, 80), generator=g).float()})
    for name, (module, feeds) in graphs.items():
        sess = ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
        got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})
        with torch.no_grad():
            ref = module(*feeds.values())
        ref = ref if isinstance(ref, tuple) else (ref,)
        assert max(float(np.abs(r.numpy() - o).max()) for r, o in zip(ref, got)) < 1e-3, name


def test_jpeg_quality_is_read_from_the_file_and_picks_the_model(tmp_path, capsys):
    # The enhancers make high-quality JPEGs worse (QF 30 MarsQE: -5.4 dB on gray QF 90 tiles), so the
    # default reads the QF from the file: nearest trained model, or the image unchanged above QF 60.
    from PIL import Image

    from pymars.cli import main
    from pymars.enhance.jpeg_quality import AUTO_GRAY_MODELS, AUTO_MAX_QUALITY, auto_model, choose_model, jpeg_quality

    scene = mars_like_scene(64, 96, seed=4)
    files = {}
    for q in (10, 20, 30, 47, 60, 61, 75, 95):
        for gray in (False, True):
            buf = io.BytesIO()
            Image.fromarray(scene[..., 0] if gray else scene).save(buf, format="JPEG", quality=q, optimize=True)
            assert jpeg_quality(buf.getvalue()) == q  # libjpeg's tables, colour or gray
            files[q] = buf.getvalue()
    assert jpeg_quality(b"\x89PNG\r\n\x1a\n garbage") is None
    assert [auto_model(q) for q in (10, 30, 47, 60, 75, AUTO_MAX_QUALITY)] == [
        "unet-jpeg30-10k", "unet-jpeg30-10k", "unet-jpeg30-10k", "marsqe-lite7-jpeg75-10k", "marsqe-lite7-jpeg75-10k",
        "marsqe-lite7-jpeg90-10k"]
    assert choose_model("auto", files[95])[0] is None and choose_model("auto", None)[0] == "unet-jpeg30-10k"
    assert choose_model("auto", files[61])[0] == "marsqe-lite7-jpeg75-10k"
    assert "may make the image worse" in choose_model("arcnn-jpeg30", files[75])[2]
    assert choose_model("arcnn-jpeg30", files[30])[2] == ""
    # A gray image gets the nets trained on gray images, over the same QF ranges.
    assert [auto_model(q, gray=True) for q in (10, 45, 46, 82, 83, 90)] == [
        AUTO_GRAY_MODELS[b] for b in (45, 45, 82, 82, 90, 90)]
    assert auto_model(None, gray=True) == AUTO_GRAY_MODELS[45] and auto_model(95, gray=True) is None
    assert choose_model("auto", files[61], gray=True)[0] == AUTO_GRAY_MODELS[82]
    # The CLI: a QF 95 JPEG is written unchanged, with one warning line.
    src, out = tmp_path / "high.jpg", tmp_path / "out.png"
    src.write_bytes(files[95])
    assert main(["enhance", str(src), "-o", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "quality 95" in err and "unchanged" in err
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(src)))


def test_auto_models_are_committed_and_gray_ones_take_gray_input():
    from pymars.enhance.jpeg_quality import AUTO_GRAY_MODELS, AUTO_MODELS

    assert max(AUTO_MODELS) == max(AUTO_GRAY_MODELS)  # the same top: above it, the image is left as it is
    for table, gray in ((AUTO_MODELS, False), (AUTO_GRAY_MODELS, True)):
        for name in table.values():
            meta = json.loads((WEIGHTS / f"enhance-{name}" / "model.json").read_text())
            assert (meta.get("input") == "gray") == gray, name


def test_cli_enhances_a_png_and_refuses_bad_input(tmp_path, capsys):
    from PIL import Image

    from pymars.cli import main

    folder = export_random(tmp_path, "arcnn")
    src = tmp_path / "in.png"
    Image.fromarray(mars_like_scene(100, 140, seed=3)).save(src)
    out = tmp_path / "out.png"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(folder), "--quiet"]) == 0
    res = np.asarray(Image.open(out))
    assert res.shape == (100, 140, 3) and res.dtype == np.uint8
    assert not list(tmp_path.glob("*.part*"))
    capsys.readouterr()
    assert main(["enhance", str(tmp_path / "missing.png"), "-o", str(out), "--model", str(folder)]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["enhance", str(src), "-o", str(tmp_path / "x.jpg"), "--model", str(folder)]) == 2
    assert "lossless" in capsys.readouterr().err
    assert main(["enhance", str(src), "-o", str(out), "--model", "no-such-model"]) == 2
    assert "not found" in capsys.readouterr().err
    Image.fromarray(np.zeros((20, 20), np.uint16)).save(tmp_path / "deep.png")
    assert main(["enhance", str(tmp_path / "deep.png"), "-o", str(out), "--model", str(folder)]) == 2
    assert "8-bit" in capsys.readouterr().err


def test_cli_runs_marsqe_with_a_dictionary_file_on_a_gray_image(tmp_path, monkeypatch):
    from PIL import Image

    from pymars.cli import main
    from pymars.enhance import inference

    folder, _, npz, clf = marsqe_setup(tmp_path)
    monkeypatch.setattr(inference, "load_classifier", lambda *a, **k: clf)
    src = tmp_path / "gray.png"
    Image.fromarray(mars_like_scene(90, 130, seed=4, channels=1)).save(src)
    out = tmp_path / "out.png"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(folder), "--dictionary", str(npz),
                 "--quiet"]) == 0
    assert np.asarray(Image.open(out)).shape == (90, 130)


@pytest.mark.parametrize("model", ["dncnn-jpeg30", "arcnn-jpeg30"])
def test_gray_input_keeps_its_level_and_is_improved(model):
    """The RGB nets shift a gray image's level by a few grey levels; the gray path keeps the input's 8x8 means."""
    import io

    from PIL import Image

    from pymars.enhance.inference import box_mean
    from pymars.evaluation.metrics import psnr

    enh = Enhancer(WEIGHTS / f"enhance-{model}", threads=1)
    gains = []
    for seed in range(3):
        raw = mars_like_scene(96, 128, seed=seed, channels=1)
        buf = io.BytesIO()
        Image.fromarray(raw).save(buf, "JPEG", quality=30)
        comp = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
        out = enh.enhance(comp)
        assert out.shape == comp.shape and out.dtype == np.uint8
        # Level kept: 8x8 means agree to rounding (clipping at 0/255 aside).
        assert float(np.abs(box_mean(out, 8) - box_mean(comp, 8)).mean()) < 0.5
        gains.append(psnr(raw, out) - psnr(raw, comp))
    assert min(gains) > 0.1, gains


def test_gray_cache_trains_a_gray_model_that_takes_gray_input_only(tmp_path, monkeypatch):
    """enhance-train cache --gray: regions compressed as gray JPEGs, stored as three equal channels; the model
    trained on it is marked gray on export, runs on gray input without keep_level and refuses RGB."""
    from pymars.cli import main
    from pymars.enhance import patches
    from pymars.enhance.codecs import compress, gray_rgb
    from pymars.enhance.inference import _to_uint8
    from pymars.train import dataset

    frames = [mars_like_scene(300, 320, seed=80 + i, channels=1) for i in range(2)]
    monkeypatch.setattr(dataset, "gray_training_pool", lambda crop, progress=True: dataset.GrayCropPool(frames, crop))
    colour = np.stack([mars_like_scene(128, 128, seed=70 + i) for i in range(2)])
    d = Dictionary(colour, np.array([0, 1], np.uint8), ["synthetic0.png:0,0", "synthetic1.png:0,0"])
    cache = patches.build_cache(["jpeg:30"], 3, lambda p: np.zeros(len(p), np.uint8), d, progress=False, gray=True)
    assert cache.gray and cache.raw.shape == (3, 256, 256, 3)
    for arr in (cache.raw, cache.comp, cache.dict_raw, cache.dict_comp[0]):
        assert np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])
    # Compressed as the gray image it is (one JPEG component), not as an RGB JPEG of three equal channels.
    assert np.array_equal(cache.comp[0, ..., 0], compress(cache.raw[0, ..., 0], "jpeg:30")[0])
    assert np.array_equal(cache.dict_raw[1, ..., 0], gray_rgb(colour[1])[..., 0])
    path = tmp_path / "cache-gray.npz"
    cache.save(path)
    assert TrainingCache.load(path).gray and not synthetic_cache(1).gray

    from pymars.enhance.training import EnhancerConfig, train_enhancer

    cfg = EnhancerConfig(kind="dncnn", cache=str(path), batch=2, crop=32, out=str(tmp_path / "run"), steps=2)
    assert train_enhancer(cfg, progress=False)["config"]["gray"] is True
    folder = tmp_path / "gray-model"
    assert main(["enhance-export", str(tmp_path / "run" / "checkpoint.pt"), "-o", str(folder)]) == 0
    assert json.loads((folder / "model.json").read_text())["input"] == "gray"
    enh = Enhancer(folder, threads=1)
    comp = compress(mars_like_scene(70, 90, seed=3, channels=1), "jpeg:30")[0]
    expect = _to_uint8(enh.enhance_float(comp), comp, gray_model=True)
    assert np.array_equal(enh.enhance(comp), expect)  # no keep_level: the net's own levels
    assert not np.array_equal(expect, _to_uint8(enh.enhance_float(comp), comp))
    with pytest.raises(ValueError) as e:
        enh.enhance(mars_like_scene(40, 40, seed=1))
    assert "\n" not in str(e.value) and "trained on gray images" in str(e.value)


def test_cache_command_writes_where_cache_says(tmp_path, monkeypatch, capsys):
    """`enhance-train cache --cache FILE` writes FILE (it once wrote the default path whatever --cache said)."""
    from pymars.cli import main
    from pymars.train import dataset

    frames = [mars_like_scene(300, 320, seed=90 + i, channels=1) for i in range(2)]
    monkeypatch.setattr(dataset, "gray_training_pool", lambda crop, progress=True: dataset.GrayCropPool(frames, crop))
    colour = np.stack([mars_like_scene(128, 128, seed=60 + i) for i in range(2)])
    npz = tmp_path / "dictionary.npz"
    Dictionary(colour, np.array([0, 1], np.uint8), ["synthetic0.png:0,0", "synthetic1.png:0,0"]).save(npz)
    target = tmp_path / "mine.npz"
    common = ["enhance-train", "cache", "--gray", "--setting", "jpeg:30", "--regions", "2", "--dictionary", str(npz)]
    assert main(common + ["--cache", str(target)]) == 0
    assert len(TrainingCache.load(target)) == 2
    capsys.readouterr()
    assert main(common + ["--cache", str(target), "--out", str(tmp_path / "other.npz")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "name two files" in err[0]
    assert not (tmp_path / "other.npz").exists()


def test_a_gray_marsqe_matches_against_gray_references_compressed_as_gray_images(tmp_path):
    from pymars.enhance.codecs import compressed_like_training, gray_rgb

    folder, _, npz, clf = marsqe_setup(tmp_path)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps(dict(meta, input="gray")))
    enh = Enhancer(folder, dictionary=npz, classifier=clf)
    colour = Dictionary.load(npz).raw
    assert np.array_equal(enh.dictionary.raw, np.stack([gray_rgb(p) for p in colour]))
    assert np.array_equal(enh.dictionary.compressed[0], compressed_like_training(enh.dictionary.raw[0], "jpeg:30", True))
    out = enh.enhance(mars_like_scene(64, 80, seed=2, channels=1))
    assert out.shape == (64, 80) and out.dtype == np.uint8


def test_shipped_classifier_file_is_valid():
    path = WEIGHTS / "enhance-classifier" / "classifier.json"
    assert path.is_file(), "the patch classifier is not committed"
    clf = classes.PatchClassifier.from_json(json.loads(path.read_text()))
    assert clf(np.full((2, 128, 128, 3), 120, np.uint8)).shape == (2,)


def test_gan_recipe_trains_from_an_mse_checkpoint(tmp_path):
    from pymars.enhance.training import EnhancerConfig, train_enhancer

    cache = tmp_path / "cache.npz"
    synthetic_cache(2).save(cache)
    common = dict(kind="arcnn", cache=str(cache), batch=2, crop=32, save_every=1, snapshot_every=0)
    train_enhancer(EnhancerConfig(out=str(tmp_path / "mse"), steps=1, **common), progress=False)
    s = train_enhancer(EnhancerConfig(out=str(tmp_path / "gan"), steps=2, gan="conditional+lr",
                                      init=str(tmp_path / "mse" / "checkpoint.pt"), **common), progress=False)
    assert s["steps"] == 2
    state = torch.load(tmp_path / "gan" / "checkpoint.pt", weights_only=False)
    assert "gan" in state and state["gan"]["disc"]["body.0.weight"].shape[1] == 6  # conditional: 3 + 3 channels


def test_fine_tune_starts_from_a_weights_folder_a_run_folder_or_a_snapshot(tmp_path):
    import argparse

    from pymars.enhance.cli import register
    from pymars.enhance.export import export_enhancer
    from pymars.enhance.training import EnhancerConfig, init_weights, load_enhancer, train_enhancer

    cache = tmp_path / "cache.npz"
    synthetic_cache(2).save(cache)
    common = dict(kind="marsqe-lite", cache=str(cache), batch=2, crop=32, width=4, save_every=1, snapshot_every=1)
    train_enhancer(EnhancerConfig(out=str(tmp_path / "base"), steps=1, **common), progress=False)
    net, kind, cfg = load_enhancer(tmp_path / "base" / "snapshot-1.pt")
    export_enhancer(net, kind, {"setting": "jpeg:30", "margin": 8}, tmp_path / "weights")
    base = {k: v.clone() for k, v in net.state_dict().items()}
    for i, src in enumerate((tmp_path / "weights", tmp_path / "base", tmp_path / "base" / "snapshot-1.pt")):
        # lr 0: the fine-tune's first step leaves the weights it started from unchanged.
        s = train_enhancer(EnhancerConfig(out=str(tmp_path / f"ft{i}"), steps=1, lr=0.0, init=str(src), **common),
                           progress=False)
        assert s["config"]["init"] == str(src) and s["steps"] == 1  # the step count starts afresh
        got = torch.load(tmp_path / f"ft{i}" / "checkpoint.pt", weights_only=False)["model"]
        assert all(torch.equal(got[k], base[k]) for k in base)
    # ... and with a real lr it moves away from them.
    train_enhancer(EnhancerConfig(out=str(tmp_path / "ft-lr"), steps=1, init=str(tmp_path / "weights"), **common),
                   progress=False)
    moved = torch.load(tmp_path / "ft-lr" / "checkpoint.pt", weights_only=False)["model"]
    assert any(not torch.equal(moved[k], base[k]) for k in base)
    with pytest.raises(ValueError, match="holds a marsqe-lite"):
        init_weights(tmp_path / "weights", "marsqe")
    with pytest.raises(ValueError, match="width 4"):
        init_weights(tmp_path / "weights", "marsqe-lite", 8)
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    for flag in ("--init-from", "--init"):
        assert p.parse_args(["enhance-train", "model", flag, "w"]).init == "w"


def test_blind_marsqe_compresses_its_references_at_its_reference_setting(tmp_path):
    import json as _json

    folder, _, npz, clf = marsqe_setup(tmp_path)
    meta = _json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(_json.dumps(dict(meta, setting="jpeg:20,jpeg:50")))
    with pytest.raises(ValueError, match="reference_setting"):
        Enhancer(folder, dictionary=Dictionary.load(npz), classifier=clf)
    (folder / "model.json").write_text(_json.dumps(dict(meta, setting="jpeg:20,jpeg:50", reference_setting="jpeg:30")))
    enh = Enhancer(folder, dictionary=Dictionary.load(npz), classifier=clf)
    from pymars.enhance.codecs import compress

    want = np.stack([compress(p, "jpeg:30")[0] for p in enh.dictionary.raw])
    assert np.array_equal(enh.dictionary.compressed, want)
    # the cache keeps the reference setting through save / load
    c = synthetic_cache(1)
    c.ref_spec = "jpeg:30"
    c.save(tmp_path / "c.npz")
    assert TrainingCache.load(tmp_path / "c.npz").ref_spec == "jpeg:30"
    synthetic_cache(1).save(tmp_path / "d.npz")
    assert TrainingCache.load(tmp_path / "d.npz").ref_spec == ""
