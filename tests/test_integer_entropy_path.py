"""The entropy-parameter path is integer arithmetic that encoder and decoder compute identically.

Specification:
* the C++ integer hyper-synthesis equals an independent int64 NumPy implementation, exactly;
* the float training mirror differs from it by at most one unit of rounding;
* decoding a tile re-derives every table index, mean and z value the encoder used;
* the exporter refuses integer layers whose int32 accumulator could overflow.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pymars import _core
from pymars.train.codec.integer import IntegerHyperSynthesis, run_integer_numpy
from pymars.train.export.blob import int_ops


def _exported_layers(bundle):
    from pymars.train.codec.torch_backend import torch_model
    return torch_model(bundle)


def test_cpp_hyper_synthesis_matches_numpy_reference_exactly(tiny_bundle):
    model = _exported_layers(tiny_bundle)
    layers = model.h_s.export()
    rng = np.random.default_rng(1)
    for hz, wz in [(1, 1), (2, 3), (4, 4), (3, 5)]:
        z = rng.integers(-40, 41, size=(model.cfg.hyper, hz, wz)).astype(np.int32)
        z[:, 0, 0] = 127  # extremes of the allowed range
        z[:, -1, -1] = -127
        mean, idx = _core.entropy_parameters(tiny_bundle.core, z, 4 * hz, 4 * wz)
        ref = run_integer_numpy(z.astype(np.int64), layers)
        m = model.cfg.latent
        np.testing.assert_array_equal(mean, ref[:m])
        np.testing.assert_array_equal(idx, ref[m:])


def test_float_training_mirror_is_within_one_rounding_unit(tiny_bundle):
    model = _exported_layers(tiny_bundle)
    z = np.random.default_rng(2).integers(-20, 21, size=(1, model.cfg.hyper, 3, 3))
    with torch.no_grad():
        mean_f, idx_f = model.h_s(torch.from_numpy(z).float())
    mean, idx = _core.entropy_parameters(tiny_bundle.core, z[0].astype(np.int32), 12, 12)
    # Ties round differently (half-to-even vs half-up) and may propagate by one step.
    assert np.abs(mean_f[0].numpy() - mean).max() <= 4
    assert np.abs(idx_f[0].numpy() - idx).max() <= 1


def test_decoder_rederives_every_entropy_table_index(tiny_bundle, scene_rgb):
    tile = scene_rgb[:96, :112]
    for quality in (1, 37, 100):
        enc = _core.analyse_tile(tiny_bundle.core, tile, quality)
        dec = _core.decode_tile_payload(tiny_bundle.core, enc["payload"], 96, 112, quality)
        for key in ("z_hat", "mean_q4", "raw_index", "index", "symbols"):
            np.testing.assert_array_equal(dec[key], enc[key], err_msg=key)


def test_exporter_refuses_overflowing_integer_layers():
    hs = IntegerHyperSynthesis(4, 8, 2, 80)
    layers = hs.export()
    layers[0].bias[:] = 2**31 - 10
    with pytest.raises(OverflowError):
        int_ops(layers, 127)


def test_core_refuses_a_blob_whose_accumulator_could_overflow(tiny_bundle):
    blob = bytearray(tiny_bundle.blob_path.read_bytes())
    # Find the HS section and saturate the first layer's first bias.
    pos = blob.index(b"HS  ")
    n_ops_at = pos + 8
    cin, cout, k = (int.from_bytes(blob[n_ops_at + 8 + 4 * i : n_ops_at + 12 + 4 * i], "little") for i in range(3))
    w_bytes = cout * cin * k * k
    bias_at = n_ops_at + 8 + 16 + w_bytes + (-w_bytes % 4)
    blob[bias_at : bias_at + 4] = (2**31 - 1).to_bytes(4, "little")
    with pytest.raises(ValueError, match="overflow"):
        _core.Model(bytes(blob))
