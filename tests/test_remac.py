"""REMAC: reference-guided integer h_s, rover selection, bit-exact coding with references, refusals.

Runs on a tiny randomly initialised REMAC bundle and a library of synthetic
scenes (no ../shared, no GPU); the shipped remac-v1 bundle is checked where present.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_remac_library as _library

import pymars
from pymars import _core
from pymars.data.synthetic import mars_like_scene
from pymars.errors import ModelMismatchError
from pymars.ground.synthesis import synthesis_backend
from pymars.remac import ReferenceLibrary
from pymars.remac.selection import (
    NO_REFERENCE,
    decoder_reference,
    entropy_reference,
    latent_descriptor,
    quantise_latent,
)
from pymars.texture import rgb_to_gray
from pymars.train.codec.integer import run_integer_numpy


@pytest.fixture(scope="module")
def tiny(tiny_remac):
    return tiny_remac


@pytest.fixture(scope="module")
def library(remac_library):
    return remac_library


def test_reference_hs_in_cpp_equals_numpy_int64(tiny):
    bundle, model = tiny
    layers, ref_layer = model.h_s.export()
    rng = np.random.default_rng(0)
    for hz, wz, hy, wy in [(4, 4, 16, 16), (2, 3, 7, 12), (5, 6, 20, 24)]:
        z = rng.integers(-6, 7, (bundle.core.hyper_channels, hz, wz)).astype(np.int32)
        ref = rng.integers(-127, 128, (bundle.latent_channels, 16, 16)).astype(np.int8)
        a = run_integer_numpy(z, layers[:2])
        h, w = a.shape[1:]
        tiled = np.tile(ref.astype(np.int64), (1, -(-h // 16), -(-w // 16)))[:, :h, :w]
        want = run_integer_numpy(np.concatenate([a, run_integer_numpy(tiled, [ref_layer])]), layers[2:])
        mean, index = _core.entropy_parameters(bundle.core, z, hy, wy, ref)
        m = bundle.latent_channels
        assert np.array_equal(mean, want[:m, :hy, :wy]) and np.array_equal(index, want[m:, :hy, :wy])
        # "No reference" is an all-zero latent, and the reference changes the tables.
        none = _core.entropy_parameters(bundle.core, z, hy, wy)
        assert np.array_equal(none[0], _core.entropy_parameters(bundle.core, z, hy, wy, np.zeros_like(ref))[0])
        assert not np.array_equal(none[1], index)


def test_rover_selection_equals_numpy_rules(tiny, library):
    bundle, _ = tiny
    core_lib = pymars.remac.library.core_library(bundle, library)
    for seed, shape in [(21, (256, 256, 3)), (22, (200, 136, 3)), (23, (256, 256, 3))]:
        tile = mars_like_scene(*shape[:2], seed=seed)
        e, d, desc = _core.select_references(bundle.core, core_lib, tile)
        y = _core.analyse_tile(bundle.core, tile)["y"]
        want_desc = latent_descriptor(quantise_latent(y))
        assert np.array_equal(desc, want_desc)
        assert e == entropy_reference(want_desc, library.descriptors)
        assert d == decoder_reference(rgb_to_gray(tile), library.histograms)
    # A tile equal to a reference selects that reference for the decoder.
    assert _core.select_references(bundle.core, core_lib, library.tiles[1])[1] == 1


def test_quantise_latent_matches_core_rounding():
    y = np.array([0.0625, -0.0625, 0.1875, -0.1875, 20.0, -20.0, np.nan], np.float32)
    assert quantise_latent(y).tolist() == [1, 0, 2, -1, 127, -127, 0]


def test_coding_with_references_is_bit_exact_per_tile(tiny, library):
    bundle, _ = tiny
    core_lib = pymars.remac.library.core_library(bundle, library)
    tile = mars_like_scene(256, 256, seed=31)
    for forced in (None, 2, 0):
        enc = _core.analyse_tile(bundle.core, tile, 60, library=core_lib, entropy_ref=forced,
                                 decoder_ref=None if forced is None else 0)
        ref = enc["entropy_ref"]
        assert forced is None or ref == forced
        dec = _core.decode_tile_payload(bundle.core, enc["payload"], 256, 256, 60, library=core_lib,
                                        entropy_ref=None if ref == NO_REFERENCE else ref)
        for k in ("mean_q4", "raw_index", "index", "symbols", "z_hat"):
            assert np.array_equal(enc[k], dec[k]), k
    # Decoding with another entropy reference than the encoder used derails the tables.
    enc = _core.analyse_tile(bundle.core, tile, 60, library=core_lib, entropy_ref=0, decoder_ref=0)
    try:
        other = _core.decode_tile_payload(bundle.core, enc["payload"], 256, 256, 60, library=core_lib, entropy_ref=1)
        assert not np.array_equal(other["raw_index"], enc["raw_index"])
    except ValueError:
        pass  # or the payload no longer parses: either way the reference matters


def test_api_roundtrip_with_refs_threads_and_refusals(tiny, library, tmp_path):
    bundle, _ = tiny
    img = mars_like_scene(300, 420, seed=41)
    data = pymars.encode(img, 50, model=bundle, refs=library)
    assert data == pymars.encode(img, 50, model=bundle, refs=library, threads=2)
    hdr = pymars.info(data)
    assert hdr["library_hash"] == library.library_hash
    out, rep = pymars.decode_with_report(data, model=bundle, refs=library)
    assert out.shape == img.shape and rep.ok
    again = pymars.decode(data, model=bundle, refs=library, backend="torch")
    assert np.abs(again.astype(int) - out.astype(int)).max() <= 1
    # Every record names references the rover selected.
    dec = _core.decode_latents(bundle.core, data, None, 1, library=pymars.remac.library.core_library(bundle, library))
    assert all(t["entropy_ref"] < len(library) and t["decoder_ref"] < len(library) for t in dec["tiles"])
    with pytest.raises(ModelMismatchError, match="pass refs"):
        pymars.decode(data, model=bundle)
    with pytest.raises(ModelMismatchError, match="decode with the library that encoded it"):
        pymars.decode(data, model=bundle, refs=_library(bundle, seeds=(14, 15)))
    with pytest.raises(ModelMismatchError, match="no reference branch"):
        pymars.encode(img, 50, model="base-v1", refs=library)
    lib_path = tmp_path / "lib.pmrl"
    library.save(lib_path)
    assert np.array_equal(pymars.decode(data, model=bundle, refs=str(lib_path)), out)


def test_empty_library_and_unrelated_references_decode(tiny, library):
    bundle, _ = tiny
    img = mars_like_scene(256, 512, seed=51)
    empty = ReferenceLibrary(bytes(bundle.model_id), np.zeros((0, 59), np.uint32),
                             np.zeros((0, bundle.latent_channels), np.uint16),
                             np.zeros((0, bundle.latent_channels, 16, 16), np.int8), np.zeros((0, 256, 256, 3), np.uint8), [])
    data = pymars.encode(img, 40, model=bundle, refs=empty)
    dec = _core.decode_latents(bundle.core, data, None, 1, library=pymars.remac.library.core_library(bundle, empty))
    assert {(t["entropy_ref"], t["decoder_ref"]) for t in dec["tiles"]} == {(NO_REFERENCE, NO_REFERENCE)}
    assert pymars.decode(data, model=bundle, refs=empty).shape == img.shape
    # Forced ids (the mismatch experiment): still a valid, decodable file.
    core_lib = pymars.remac.library.core_library(bundle, library)
    forced = _core.encode(bundle.core, img, 40, 256, 0, 1, None, [2, 2], [0, 0], core_lib)
    dec = _core.decode_latents(bundle.core, forced, None, 1, library=core_lib)
    assert [(t["entropy_ref"], t["decoder_ref"], t["status"]) for t in dec["tiles"]] == [(2, 0, "ok")] * 2


def test_ref_decoder_onnx_equals_torch(tiny, library):
    bundle, _ = tiny
    y = np.random.default_rng(5).normal(0, 2, (bundle.latent_channels, 16, 16)).astype(np.float32)
    ref = library.tiles[0].transpose(2, 0, 1).astype(np.float32) / 255
    a, b = synthesis_backend(bundle, "onnx")(y, ref), synthesis_backend(bundle, "torch")(y, ref)
    assert a.shape == (3, 256, 256) and np.abs(a - b).max() < 1e-3
    # The reference reaches the output (the fusion weights are not zero here).
    assert np.abs(synthesis_backend(bundle, "onnx")(y, None) - a).max() > 1e-6


def test_cli_encode_decode_with_refs(tiny, library, tmp_path, capsys):
    from PIL import Image

    from pymars.cli import main

    bundle, _ = tiny
    lib_path = tmp_path / "lib.pmrl"
    library.save(lib_path)
    src = tmp_path / "in.png"
    Image.fromarray(mars_like_scene(100, 130, seed=61)).save(src)
    model = ["--model", str(bundle.root)]
    assert main(["encode", str(src), "-o", str(tmp_path / "x.pmrs"), "--refs", str(lib_path), *model]) == 0
    assert main(["decode", str(tmp_path / "x.pmrs"), "-o", str(tmp_path / "x.png"), "--refs", str(lib_path), *model]) == 0
    assert np.asarray(Image.open(tmp_path / "x.png")).shape == (100, 130, 3)
    capsys.readouterr()
    assert main(["decode", str(tmp_path / "x.pmrs"), "-o", str(tmp_path / "y.png"), *model]) == 2
    assert "reference library" in capsys.readouterr().err and not (tmp_path / "y.png").exists()


def test_protocol_library_holds_out_evaluation_tiles():
    from pymars.evaluation.protocol import mars_data_dir, selected_windows

    if mars_data_dir() is None:
        pytest.skip("needs ../shared/data/mars (the development set)")
    from pymars.remac.build import protocol_candidate_tiles

    tiles, names, _ = protocol_candidate_tiles(max_per_image=2)
    held = {(f"{g}/{p.relative_to(mars_data_dir())}", y, x) for g in ("dev_marsscapes", "dev_marsdata")
            for p, y, x in selected_windows(g)}
    for n in names:
        path, yx = n.rsplit(":", 1)
        y, x = map(int, yx.split(","))
        for hp, hy, hx in held:
            if hp == path:
                assert abs(y - hy) >= 256 + 64 or abs(x - hx) >= 256 + 64, n
        assert not any(hp == path for hp, _, _ in held if path.startswith("dev_marsdata"))


def test_shipped_remac_bundle_keeps_the_base_encoder():
    """remac-v1 must not change the rover's analysis (equal encoder cost and equal latents)."""
    from pymars.bundles import WEIGHTS_DIR, default_bundle, open_bundle

    if not (WEIGHTS_DIR / "remac-v1" / "model.json").is_file():
        pytest.skip("pymars/weights/remac-v1 is not exported in this checkout")
    remac, base = open_bundle("remac-v1"), default_bundle()
    assert remac.is_remac and not base.is_remac and remac.model_id != base.model_id
    tile = mars_like_scene(256, 256, seed=71)
    assert np.array_equal(_core.analyse_tile(remac.core, tile)["y"], _core.analyse_tile(base.core, tile)["y"])
    y = _core.analyse_tile(remac.core, tile)["y"]
    ref = tile.transpose(2, 0, 1).astype(np.float32) / 255
    assert np.abs(synthesis_backend(remac, "onnx")(y, ref) - synthesis_backend(remac, "torch")(y, ref)).max() < 1e-3


def test_corrupt_libraries_and_blobs_are_refused_clearly(tiny, library):
    bundle, _ = tiny
    rover = library.rover_bytes()
    for bad, why in [(rover[:-1], "truncated"), (b"XXXX" + rover[4:], "magic"), (rover[:8] + bytes(8) + rover[16:], "another model")]:
        with pytest.raises(ValueError, match=why):
            _core.ReferenceLibraryCore(bundle.core, bad)
    blob = bundle.blob_path.read_bytes()
    at = blob.index(b"HSRF")
    for cut in (at + 8, at + 20, len(blob) // 2):
        with pytest.raises(ValueError, match="invalid weight blob"):
            _core.Model(blob[:cut])
    # A REMAC blob whose reference branch claims the wrong latent side is rejected.
    bad = bytearray(blob)
    bad[at + 16 : at + 20] = (8).to_bytes(4, "little")
    with pytest.raises(ValueError, match="invalid weight blob"):
        _core.Model(bytes(bad))


def _code_one_tile(model, lib_core, tile):
    """Encode ``tile`` with the library and decode its latents: every tile must come back "ok"."""
    data = _core.encode(model, tile, 50, 64, 0, 1, None, None, None, lib_core)
    dec = _core.decode_latents(model, data, None, 1, library=lib_core)
    return [t["status"] for t in dec["tiles"]]


def test_random_library_and_hsrf_corruptions_are_refused_or_code_cleanly(tiny, library):
    """Seeded mutations (tests/fuzz_python.py's) of the library's rover part and of the blob's
    HSRF section: the C++ parsers refuse them with ValueError or load something that still
    codes and decodes every tile; nothing crashes and no other exception escapes."""
    from fuzz_python import mutate

    bundle, _ = tiny
    tile = mars_like_scene(64, 128, seed=81)
    rover = library.rover_bytes()
    rng = np.random.default_rng(7)
    outcomes = {"refused": 0, "coded": 0}
    for _ in range(150):
        bad = mutate(rover, rng)
        try:
            lib_core = _core.ReferenceLibraryCore(bundle.core, bad)
        except ValueError:
            outcomes["refused"] += 1
            continue
        assert _code_one_tile(bundle.core, lib_core, tile) == ["ok", "ok"]
        outcomes["coded"] += 1
    # Both classes occur (flips inside the latents load and code; truncations are refused).
    assert outcomes["refused"] > 0 and outcomes["coded"] > 0, outcomes

    blob = bundle.blob_path.read_bytes()
    at = blob.index(b"HSRF")
    end = blob.index(b"HS  ", at + 4)  # HSRF comes right before HS (docs/model-blob.md)
    section = blob[at:end]
    outcomes = {"refused": 0, "coded": 0}
    for _ in range(150):
        bad_blob = blob[:at] + mutate(section, rng) + blob[end:]
        try:
            model = _core.Model(bad_blob)
        except ValueError:
            outcomes["refused"] += 1
            continue
        # The library names the model it was built for: re-stamp it for the mutated blob.
        stamped = rover[:8] + bytes(model.model_id) + rover[16:]
        assert _code_one_tile(model, _core.ReferenceLibraryCore(model, stamped), tile) == ["ok", "ok"]
        outcomes["coded"] += 1
    assert outcomes["refused"] > 0 and outcomes["coded"] > 0, outcomes


def test_training_grows_a_model_and_trains_the_decoder_alone(tmp_path):
    """--init-from a run without refinement blocks, --refine-blocks 1 --decoder-only:
    the new blocks start at zero (the grown model equals its parent), the h_s stays frozen."""
    from pymars.train.remac.loop import RemacTrainConfig, train_remac

    common = dict(batch=2, crop=64, synthetic=True, progress=False, validate_every=0)
    train_remac(RemacTrainConfig(out=str(tmp_path / "a"), steps=1, **common))
    parent = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    train_remac(RemacTrainConfig(out=str(tmp_path / "b"), steps=2, refine_blocks=1, decoder_only=True,
                                 init_from=str(tmp_path / "a" / "checkpoint.pt"), lr=1e-3, **common))
    child = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert child["remac_config"]["refine_blocks"] == 1
    hs = [k for k in parent["ema"] if k.startswith("h_s.")]
    assert hs and all(torch.equal(parent["ema"][k], child["model"][k]) for k in hs)
    assert child["model"]["g_s.refine.0.conv2.weight"].abs().sum() > 0  # started at zero, trained
    assert any(not torch.equal(parent["ema"][k], child["model"][k]) for k in parent["ema"] if k.startswith("g_s."))
    # Weights the model does not have are an error, not silently dropped.
    bad = dict(parent, ema={**parent["ema"], "g_s.unknown.weight": torch.zeros(1)})
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not have"):
        train_remac(RemacTrainConfig(out=str(tmp_path / "c"), steps=1, init_from=str(tmp_path / "bad.pt"), **common))
