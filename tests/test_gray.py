"""The gray path: one-channel models (base-v2 gray) coded as one channel, end to end.

A tiny gray model is trained for two steps on synthetic scenes, exported as a
bundle (C++ blob + ONNX; tests/conftest.py `gray_bundle_dir`) and used by the real encoder and both decoders.
"""
from __future__ import annotations

import numpy as np
import pytest

import pymars
from pymars.data.synthetic import mars_like_scene
from pymars.errors import InputImageError
from pymars.ground.synthesis import synthesis_backend


def _gray(h=48, w=72, seed=3):
    return mars_like_scene(h, w, seed=seed, channels=1)


def test_gray_model_codes_one_channel_and_both_backends_decode_it(gray_bundle_dir):
    img = _gray()
    data = pymars.encode(img, quality=60, model=str(gray_bundle_dir))
    assert pymars.info(data)["channels"] == 1
    a = pymars.decode(data, model=str(gray_bundle_dir))
    b = pymars.decode(data, model=str(gray_bundle_dir), backend="torch")
    assert a.shape == img.shape == b.shape and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_gray_model_refuses_an_rgb_image_with_one_line(gray_bundle_dir):
    rgb = mars_like_scene(32, 32, seed=1)
    with pytest.raises(InputImageError, match="gray images only"):
        pymars.encode(rgb, quality=50, model=str(gray_bundle_dir))


def test_rgb_image_with_equal_channels_is_coded_as_gray(gray_bundle_dir):
    img = _gray()
    rgb = np.repeat(img[..., None], 3, 2)
    assert pymars.encode(rgb, quality=60, model=str(gray_bundle_dir)) == pymars.encode(img, quality=60, model=str(gray_bundle_dir))


def test_gray_model_target_bytes_and_qualities_are_monotone(gray_bundle_dir):
    img = _gray(64, 64)
    sizes = [len(pymars.encode(img, quality=q, model=str(gray_bundle_dir))) for q in (1, 50, 100)]
    assert sizes == sorted(sizes)
    data = pymars.encode(img, target_bytes=sizes[1], model=str(gray_bundle_dir))
    assert len(data) <= sizes[1]


def test_the_c_blob_records_one_input_channel(gray_bundle_dir):
    from pymars import _core

    model = _core.Model((gray_bundle_dir / "encoder.pmw").read_bytes())
    assert model.in_channels == 1


def test_a_file_of_an_unknown_model_fails_naming_the_model_id(gray_bundle_dir):
    from pymars.errors import ModelMismatchError

    data = pymars.encode(_gray(), quality=50, model=str(gray_bundle_dir))
    with pytest.raises(ModelMismatchError, match=pymars.info(data)["model_id"].hex()):
        pymars.decode(data)


def test_warm_start_from_rgb_keeps_the_rgb_models_behaviour_on_gray_input():
    torch = pytest.importorskip("torch")
    import tempfile

    from safetensors.torch import save_file

    from pymars.train.codec.loop import MODEL_PRESETS, warm_start
    from pymars.train.codec.network import BaseCodec

    torch.manual_seed(0)
    rgb = BaseCodec(MODEL_PRESETS["tiny"]).eval()
    d = tempfile.mkdtemp()
    save_file(rgb.state_dict(), d + "/model.safetensors")
    gray = BaseCodec(MODEL_PRESETS["tiny-gray"]).eval()
    warm_start(gray, d)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        y_rgb, y_gray = rgb.g_a(x.repeat(1, 3, 1, 1)), gray.g_a(x)
        assert torch.allclose(y_rgb, y_gray, atol=1e-5)
        assert torch.allclose(rgb.g_s(y_rgb).mean(1, keepdim=True), gray.g_s(y_gray), atol=1e-5)


def test_bf16_training_step_runs_and_matches_fp32_loss_roughly():
    torch = pytest.importorskip("torch")
    from pymars.train.codec.loop import MODEL_PRESETS
    from pymars.train.codec.network import BaseCodec, rd_loss

    torch.manual_seed(0)
    m = BaseCodec(MODEL_PRESETS["tiny-gray"]).to(memory_format=torch.channels_last)
    x = torch.rand(2, 1, 64, 64).contiguous(memory_format=torch.channels_last)
    lv = torch.tensor([1.0, 8.0])
    torch.manual_seed(1)
    loss32, _ = rd_loss(m, x, lv, m(x, lv))
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x, lv)
    assert out["x_hat"].dtype == torch.float32 and out["bpp"].dtype == torch.float32
    loss16, _ = rd_loss(m, x, lv, out)
    loss16.backward()
    assert abs(float(loss16.detach()) - float(loss32.detach())) < 0.05 * abs(float(loss32.detach())) + 0.05


def test_tile_means_travel_exactly_and_the_decoder_restores_them(gray_bundle_dir):
    from pymars import _core
    from pymars.bundles import open_bundle

    bundle = open_bundle(str(gray_bundle_dir))
    assert bundle.core.tile_means
    img = _gray(80, 100, seed=7)
    data = pymars.encode(img, quality=50, model=bundle, tile_size=32)
    dec = _core.decode_latents(bundle.core, data, None, 1)
    for t in dec["tiles"]:
        a = img[t["y0"] : t["y0"] + t["height"], t["x0"] : t["x0"] + t["width"]].astype(np.int64)
        assert t["tile_mean"] == [(16 * int(a.sum()) + a.size // 2) // a.size]
        # The synthesis output, shifted as decode() does, has the sent mean (before clipping).
        x = pymars.ground.assemble.restore_tile_mean(synthesis_backend(bundle, "onnx")(t["y_hat"])[:, : t["height"], : t["width"]],
                                         t["tile_mean"])
        assert abs(float(x.mean()) * 255 - a.mean()) < 1 / 16


def test_a_tile_mean_above_255_levels_makes_the_payload_damaged(gray_bundle_dir):
    from pymars import _core
    from pymars.bundles import open_bundle

    core = open_bundle(str(gray_bundle_dir)).core
    data = pymars.encode(_gray(32, 32, seed=2), quality=50, model=str(gray_bundle_dir), tile_size=32)
    payload = bytearray(data[40 + 24 :])  # one tile: header (40), record header (24), payload
    _core.decode_tile_payload(core, bytes(payload), 32, 32, 50, None, None)  # intact: decodes
    payload[0:2] = (16 * 255 + 1).to_bytes(2, "little")
    with pytest.raises(ValueError, match="damaged"):
        _core.decode_tile_payload(core, bytes(payload), 32, 32, 50, None, None)


def test_a_blob_without_tile_means_keeps_its_bytes():
    pytest.importorskip("torch")
    from pymars.train.codec.loop import MODEL_PRESETS
    from pymars.train.codec.network import BaseCodec, BaseConfig
    from pymars.train.export.blob import model_blob

    m = BaseCodec(MODEL_PRESETS["tiny"])
    assert "tile_means" not in m.cfg.to_dict()
    m2 = BaseCodec(BaseConfig.from_dict(m.cfg.to_dict()))
    m2.load_state_dict(m.state_dict())
    assert model_blob(m) == model_blob(m2)


@pytest.fixture(scope="module")
def nl_bundle_dir(tmp_path_factory, gray_bundle_dir):
    """The tiny gray model with qualities 90..100 near-lossless (max error 10 .. 0)."""
    pytest.importorskip("torch")
    from pymars.bundles import open_bundle
    from pymars.train.codec.torch_backend import torch_model
    from pymars.train.export.bundle_writer import write_bundle
    model = torch_model(open_bundle(str(gray_bundle_dir)))
    model.cfg.nl_from_quality = 90
    out = tmp_path_factory.mktemp("bundle") / "tiny-gray-nl"
    write_bundle(model, out, {"steps": 2})
    return out


@pytest.mark.parametrize("quality", [90, 95, 99, 100])
def test_near_lossless_qualities_keep_every_sample_within_k(nl_bundle_dir, quality):
    from pymars.bundles import open_bundle

    bundle = open_bundle(str(nl_bundle_dir))
    k = bundle.core.near_lossless_error(quality)
    img = _gray(70, 90, seed=quality)
    for tile_size in (32, 256):
        dec = pymars.decode(pymars.encode(img, quality=quality, model=bundle, tile_size=tile_size), model=bundle)
        assert dec.shape == img.shape
        assert int(np.abs(dec.astype(int) - img.astype(int)).max()) <= k
    assert (k == 0) == (quality == 100)


def test_quality_100_is_lossless_and_learned_qualities_still_decode(nl_bundle_dir):
    from pymars.bundles import open_bundle

    bundle = open_bundle(str(nl_bundle_dir))
    img = _gray(64, 64, seed=11)
    assert np.array_equal(pymars.decode(pymars.encode(img, quality=100, model=bundle), model=bundle), img)
    assert bundle.core.near_lossless_error(50) is None
    assert pymars.decode(pymars.encode(img, quality=50, model=bundle), model=bundle).shape == img.shape


def test_a_truncated_near_lossless_payload_is_damaged(nl_bundle_dir):
    from pymars import _core
    from pymars.bundles import open_bundle

    core = open_bundle(str(nl_bundle_dir)).core
    data = pymars.encode(_gray(32, 32, seed=4), quality=95, model=str(nl_bundle_dir), tile_size=32)
    payload = data[40 + 24 :]
    with pytest.raises(ValueError, match="damaged"):
        _core.decode_tile_payload(core, payload[:-2], 32, 32, 95, None, None)
    with pytest.raises(ValueError, match="damaged"):
        _core.decode_tile_payload(core, payload + b"\x01", 32, 32, 95, None, None)


def test_target_bytes_reaches_the_near_lossless_qualities(nl_bundle_dir):
    img = _gray(64, 64, seed=5)
    lossless = len(pymars.encode(img, quality=100, model=str(nl_bundle_dir)))
    data = pymars.encode(img, target_bytes=lossless, model=str(nl_bundle_dir))
    assert len(data) <= lossless and pymars.info(data)["quality"] >= 90
