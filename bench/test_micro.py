"""Micro-benchmarks (pytest-benchmark): the rANS coder, the LBP/KL texture matcher, one tile encode.

What they are for: the speed of the pieces the rover runs, in isolation, with
a correctness check after every benchmark, so that a fast but wrong coder
cannot look good. They live in ``bench/``, outside the project's test paths
(``testpaths = ["tests"]``), so plain ``pytest`` never collects them; timing
asserts never appear in tests.

* rANS: 100 000 symbols through ``pymars._core.rans_encode_values`` /
  ``rans_decode_values`` and through constriction's ``stream.stack.AnsCoder``
  with the same categorical models (each pymars integer CDF table becomes a
  ``Categorical`` of the same probabilities; constriction re-quantises them
  to its own precision). Two cases: one table for every symbol (i.i.d., the
  fastest path of both coders) and 24 Gaussian tables chosen per symbol, as in
  the codec (constriction codes each table's symbols as one batch, the fastest
  way it offers for mixed models). ``extra_info`` carries symbols per second
  and the coded size;
* one 256x256 tile through ``pymars.encode`` (the C++ encoder, one thread);
* the texture matcher: LBP codes and histograms of a 256x256 tile and the
  nearest of 1024 reference histograms by KL divergence (Q16 fixed point).

Run::

    nice -n 19 python -m pytest bench/test_micro.py --benchmark-only           # timings
    python -m pytest bench/test_micro.py --benchmark-disable -q                # check mode: each once
    python -m pytest bench/test_micro.py --benchmark-only --benchmark-json out.json   # with extra_info

Example (the symbol source, outside pytest):
    >>> tables, index, values = rans_case("mixed", n=1000)
    >>> len(tables), index.shape, values.dtype
    (24, (1000,), dtype('int32'))
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
from pathlib import Path

import numpy as np
import pytest

try:  # an installed pymars (with its built C++ module) first, else this checkout
    import pymars._core  # noqa: F401
except ImportError:
    for _name in [m for m in sys.modules if m == "pymars" or m.startswith("pymars.")]:
        del sys.modules[_name]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymars  # noqa: E402
from pymars import _core  # noqa: E402

N_SYMBOLS = 100_000
#: Scales of the mixed case: geometric, like the codec's scale table (0.11 .. 64).
MIXED_SCALES = np.geomspace(0.11, 64.0, 24)
IID_SCALE = 2.0
LIBRARY_SIZE = 1024


def rans_case(kind: str, n: int = N_SYMBOLS, seed: int = 7):
    """``(tables, table_index, values)``: pymars tables ``[(half_width, cdf)]`` and symbols drawn from them.

    ``kind`` is ``"iid"`` (one Gaussian table, sigma 2) or ``"mixed"`` (24
    tables, one chosen uniformly per symbol). Values stay inside each table's
    range (no escapes), so constriction can code the same symbols.
    """
    from pymars.train.export.cdf_tables import gaussian_table

    scales = [IID_SCALE] if kind == "iid" else list(MIXED_SCALES)
    tables = [gaussian_table(float(s)) for s in scales]
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(tables), size=n).astype(np.int32)
    values = np.empty(n, np.int32)
    for t, table in enumerate(tables):
        where = np.flatnonzero(index == t)
        p = table.freqs[:-1].astype(np.float64)  # the last symbol is the escape: never drawn
        values[where] = rng.choice(p.size, size=where.size, p=p / p.sum()) - table.half_width
    return [(t.half_width, t.cdf) for t in tables], index, values


@pytest.fixture(scope="module", params=["iid", "mixed"])
def case(request):
    return request.param, *rans_case(request.param)


def _symbols_per_second(benchmark, n: int) -> None:
    # benchmark.stats is None in check mode (--benchmark-disable): nothing was timed.
    if benchmark.stats is not None:
        benchmark.extra_info["symbols_per_s"] = n / benchmark.stats.stats.median


# ---------------------------------------------------------------------------
# rANS: pymars


def test_rans_encode_pymars(benchmark, case):
    kind, tables, index, values = case
    stream = benchmark(_core.rans_encode_values, values, index, tables)
    assert np.array_equal(_core.rans_decode_values(stream, index, tables), values)
    benchmark.extra_info.update(case=kind, symbols=values.size, bytes=len(stream))
    _symbols_per_second(benchmark, values.size)


def test_rans_decode_pymars(benchmark, case):
    kind, tables, index, values = case
    stream = _core.rans_encode_values(values, index, tables)
    decoded = benchmark(_core.rans_decode_values, stream, index, tables)
    assert np.array_equal(decoded, values)
    benchmark.extra_info.update(case=kind, symbols=values.size, bytes=len(stream))
    _symbols_per_second(benchmark, values.size)


# ---------------------------------------------------------------------------
# rANS: constriction, same models


@pytest.fixture(scope="module")
def constriction_case(case):
    """The same symbols as constriction batches: (model, symbols) per table, in table order."""
    constriction = pytest.importorskip("constriction", reason="constriction is not installed (pip install constriction)")
    kind, tables, index, values = case
    batches = []
    for t, (half_width, cdf) in enumerate(tables):
        pmf = np.diff(cdf.astype(np.float64)) / float(cdf[-1])
        model = constriction.stream.model.Categorical(pmf, perfect=False)
        batches.append((model, (values[index == t] + half_width).astype(np.int32)))
    return constriction, kind, batches, values


def _constriction_encode(constriction, batches):
    coder = constriction.stream.stack.AnsCoder()
    # A stack codes last-in first-out: push the batches in reverse so they decode in order.
    for model, symbols in reversed(batches):
        coder.encode_reverse(symbols, model)
    return coder.get_compressed()


def _constriction_decode(constriction, compressed, batches):
    coder = constriction.stream.stack.AnsCoder(compressed)
    return [coder.decode(model, symbols.size) for model, symbols in batches]


def test_rans_encode_constriction(benchmark, constriction_case, case):
    constriction, kind, batches, values = constriction_case
    compressed = benchmark(_constriction_encode, constriction, batches)
    decoded = _constriction_decode(constriction, compressed, batches)
    assert all(np.array_equal(d, s) for d, (_, s) in zip(decoded, batches))
    ours = len(_core.rans_encode_values(values, case[2], case[1]))
    # Same models, same symbols: the sizes must agree closely (both are near the entropy).
    assert abs(compressed.nbytes - ours) <= 0.01 * ours + 16
    benchmark.extra_info.update(case=kind, symbols=values.size, bytes=int(compressed.nbytes), pymars_bytes=ours)
    _symbols_per_second(benchmark, values.size)


def test_rans_decode_constriction(benchmark, constriction_case):
    constriction, kind, batches, values = constriction_case
    compressed = _constriction_encode(constriction, batches)
    decoded = benchmark(_constriction_decode, constriction, compressed, batches)
    assert all(np.array_equal(d, s) for d, (_, s) in zip(decoded, batches))
    benchmark.extra_info.update(case=kind, symbols=values.size, bytes=int(compressed.nbytes))
    _symbols_per_second(benchmark, values.size)


# ---------------------------------------------------------------------------
# One tile through the C++ encoder


def test_tile_encode(benchmark):
    from pymars.data.synthetic import mars_like_scene

    bundle = pymars.default_bundle()
    if not bundle.available:
        pytest.skip(f"model bundle {bundle.root} is missing")
    tile = mars_like_scene(256, 256, seed=0)
    pymars.encode(tile[:32, :32], 58, model=bundle)  # load the model outside the timing
    data = benchmark(pymars.encode, tile, 58, threads=1, model=bundle)
    head = pymars.info(data)
    assert (head["width"], head["height"], head["tile_count"]) == (256, 256, 1)
    assert pymars.encode(tile, 58, threads=1, model=bundle) == data  # deterministic
    benchmark.extra_info.update(bytes=len(data), bpp=8 * len(data) / 65536)
    if benchmark.stats is not None:
        benchmark.extra_info["s_per_mpx"] = benchmark.stats.stats.median / 0.065536


# ---------------------------------------------------------------------------
# The LBP/KL texture matcher


def _matcher(name: str):
    fn = getattr(_core, name, None)
    if fn is None:
        pytest.skip(f"pymars._core.{name} is missing: this build has no texture matcher (rebuild the C++ module)")
    return fn


@pytest.fixture(scope="module")
def gray_tile():
    from pymars.data.synthetic import mars_like_scene

    return mars_like_scene(256, 256, seed=3, channels=1)


@pytest.mark.parametrize("variant", ["default", "riu2"])
def test_lbp_codes(benchmark, gray_tile, variant):
    lbp_codes = _matcher("lbp_codes")
    codes = benchmark(lbp_codes, gray_tile, variant)
    assert codes.shape == gray_tile.shape and codes.dtype == np.uint8
    assert int(codes.max()) < {"default": 256, "riu2": 10}[variant]
    if benchmark.stats is not None:
        benchmark.extra_info["mpx_per_s"] = gray_tile.size / 1e6 / benchmark.stats.stats.median


@pytest.mark.parametrize("patch", [0, 32])
def test_lbp_histograms(benchmark, gray_tile, patch):
    lbp_histograms = _matcher("lbp_histograms")
    hist = benchmark(lbp_histograms, gray_tile, "default", patch=patch)
    # Every pixel lands in exactly one bin (of one patch).
    assert int(hist.sum()) == gray_tile.size
    assert hist.shape == ((256,) if patch == 0 else (256 // patch, 256 // patch, 256))


@pytest.fixture(scope="module")
def reference_library(gray_tile):
    """LIBRARY_SIZE reference histograms (random texture patches); row 617 is the query's own."""
    lbp_histograms = _matcher("lbp_histograms")
    rng = np.random.default_rng(5)
    patches = rng.integers(0, 256, size=(LIBRARY_SIZE, 64, 64), dtype=np.uint8)
    library = np.stack([lbp_histograms(p, "default") for p in patches]).astype(np.uint32)
    query = lbp_histograms(gray_tile, "default")
    library[617] = query
    return query, library


def test_nearest_histogram_kl(benchmark, reference_library):
    nearest_histogram = _matcher("nearest_histogram")
    query, library = reference_library
    index, divergence = benchmark(nearest_histogram, query, library, "kl")
    assert (index, divergence) == (617, 0)  # its own histogram is at divergence 0
    benchmark.extra_info["references"] = LIBRARY_SIZE
    if benchmark.stats is not None:
        benchmark.extra_info["references_per_s"] = LIBRARY_SIZE / benchmark.stats.stats.median


def test_match_one_tile(benchmark, gray_tile, reference_library):
    """The whole rover-side step for one tile: LBP histogram, then the nearest reference."""
    lbp_histograms = _matcher("lbp_histograms")
    nearest_histogram = _matcher("nearest_histogram")
    _, library = reference_library

    def match():
        return nearest_histogram(lbp_histograms(gray_tile, "default"), library, "kl")

    assert benchmark(match)[0] == 617
