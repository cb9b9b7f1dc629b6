"""Integer CDF tables: valid for the coder and close to the densities they stand for.

Specification:
* every count is >= 1 and the counts sum to 65536, whatever the pmf;
* a Gaussian table costs within 0.01 bit/symbol of the ideal entropy for sigma <= 20;
* the escape carries the tail: values far outside the table stay codable;
* the C++ coder spends what the tables say (ideal length within a few bytes).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from pymars import _core
from pymars.train.export.cdf_tables import TOTAL, gaussian_table, quantize_pmf


@pytest.mark.parametrize("pmf", [np.ones(3), np.r_[1.0, np.zeros(4000)], np.geomspace(1, 1e-30, 300)])
def test_quantized_counts_are_positive_and_sum_to_total(pmf):
    c = quantize_pmf(pmf)
    assert c.min() >= 1 and c.sum() == TOTAL


@pytest.mark.parametrize("sigma", [0.11, 0.6, 2.5, 20.0])
def test_gaussian_table_is_close_to_the_ideal_entropy(sigma):
    t = gaussian_table(sigma)
    v = np.arange(-t.half_width, t.half_width + 1)
    p = ndtr((v + 0.5) / sigma) - ndtr((v - 0.5) / sigma)
    ideal = -(p * np.log2(np.maximum(p, 1e-300))).sum()
    actual = sum(pi * t.code_length_bits(int(vi)) for vi, pi in zip(v, p))
    assert actual - ideal < 0.01


def test_values_far_outside_the_table_round_trip_through_the_escape():
    t = gaussian_table(0.5)
    values = np.array([0, 1, -1, 500, -70000, 2**20, -(2**20)], np.int32)
    idx = np.zeros(len(values), np.int32)
    data = _core.rans_encode_values(values, idx, [(t.half_width, t.cdf)])
    assert (_core.rans_decode_values(data, idx, [(t.half_width, t.cdf)]) == values).all()


def test_coder_spends_what_the_tables_say():
    rng = np.random.default_rng(0)
    tables = [gaussian_table(s) for s in (0.3, 1.0, 4.0, 30.0)]
    idx = rng.integers(0, 4, 20000).astype(np.int32)
    sig = np.array([0.3, 1.0, 4.0, 30.0])[idx]
    values = np.round(rng.normal(0, sig)).astype(np.int32)
    data = _core.rans_encode_values(values, idx, [(t.half_width, t.cdf) for t in tables])
    ideal_bits = sum(tables[i].code_length_bits(int(v)) for i, v in zip(idx, values))
    assert abs(len(data) - ideal_bits / 8) < 8
