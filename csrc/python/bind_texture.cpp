// bind_texture.cpp - Python access to the texture matcher (core/texture.h):
// LBP codes and histograms, RGB to gray, fixed-point and float divergences,
// nearest-neighbour search.
//
// What it is for: the ground tools and the tests (against the NumPy oracle in
// pymars/texture/oracle.py) call exactly the code the rover runs. It only
// checks and converts arrays; every definition lives in the C++ core, so
// nothing here may change a code, a count or a divergence. Wrong dtypes or
// shapes raise TypeError / ValueError instead of being cast silently (a float
// image quietly truncated to uint8 would give plausible, wrong codes).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/texture.h"

namespace py = pybind11;

namespace pymars {
namespace {

using U8Array = py::array_t<uint8_t, py::array::c_style>;
using U32Array = py::array_t<uint32_t, py::array::c_style>;

LbpVariant variant_from_name(const std::string& name) {
  if (name == "default") return LbpVariant::kDefault;
  if (name == "uniform") return LbpVariant::kUniform;
  if (name == "riu2") return LbpVariant::kRotationInvariantUniform;
  throw py::value_error("unknown LBP variant '" + name + "'; expected 'default', 'uniform' or 'riu2'");
}

Divergence metric_from_name(const std::string& name) {
  if (name == "kl") return Divergence::kKL;
  if (name == "js") return Divergence::kJS;
  throw py::value_error("unknown metric '" + name + "'; expected 'kl' or 'js'");
}

// Any array-like as an array (lists of counts are fine; the dtype checks
// below decide what is accepted).
py::array as_array(const py::object& obj, const char* what) {
  py::array a = py::array::ensure(obj);
  if (!a) throw py::type_error(std::string(what) + " must be an array");
  return a;
}

// A C-contiguous uint8 view of an (H, W) or (H, W, 3) image; other dtypes are
// refused rather than cast.
U8Array image_u8(const py::object& obj, int channels, const char* what) {
  const py::array a = as_array(obj, what);
  if (a.dtype().kind() != 'u' || a.itemsize() != 1)
    throw py::type_error(std::string(what) + " must be a uint8 array, got " + std::string(py::str(a.dtype())));
  U8Array c = U8Array::ensure(a);
  const bool shape_ok = channels == 1 ? c.ndim() == 2 : (c.ndim() == 3 && c.shape(2) == channels);
  if (!c || !shape_ok)
    throw py::value_error(std::string(what) + (channels == 1 ? " must have shape (H, W)" : " must have shape (H, W, 3)"));
  if (c.shape(0) > 0xFFFFFFFFll || c.shape(1) > 0xFFFFFFFFll) throw py::value_error("image too large");
  return c;
}

// Counts as uint32 from any integer array; negative or too large values are
// refused (a wrapped count would be a silently different histogram).
U32Array counts_u32(const py::object& obj, const char* what) {
  const py::array a = as_array(obj, what);
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u') throw py::type_error(std::string(what) + " must be an integer array of counts");
  if (a.dtype().is(py::dtype::of<uint32_t>())) return U32Array::ensure(a);
  auto wide = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  if (kind == 'u' && a.itemsize() == 8) {
    auto u = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    for (py::ssize_t i = 0; i < u.size(); ++i)
      if (u.data()[i] > 0xFFFFFFFFull) throw py::value_error(std::string(what) + " has a count above 2^32 - 1");
  } else {
    for (py::ssize_t i = 0; i < wide.size(); ++i)
      if (wide.data()[i] < 0 || wide.data()[i] > 0xFFFFFFFFll)
        throw py::value_error(std::string(what) + " has a count outside 0..2^32 - 1");
  }
  std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
  U32Array out(shape);
  for (py::ssize_t i = 0; i < wide.size(); ++i) out.mutable_data()[i] = uint32_t(wide.data()[i]);
  return out;
}

size_t histogram_bins(const U32Array& h, const char* what) {
  const size_t bins = size_t(h.shape(h.ndim() - 1));
  if (bins < 1 || bins > kMaxDivergenceBins)
    throw py::value_error(std::string(what) + " must have 1..65536 bins");
  return bins;
}

py::array_t<uint8_t> codes(const py::object& gray, const std::string& variant_name) {
  const LbpVariant variant = variant_from_name(variant_name);
  const U8Array g = image_u8(gray, 1, "gray");
  const uint32_t h = uint32_t(g.shape(0)), w = uint32_t(g.shape(1));
  py::array_t<uint8_t> out({size_t(h), size_t(w)});
  bool ok;
  {
    py::gil_scoped_release nogil;
    ok = lbp_codes(g.data(), h, w, w, variant, out.mutable_data(), w);
  }
  if (!ok) throw py::value_error("lbp_codes: invalid arguments");
  return out;
}

py::array_t<uint32_t> histograms(const py::object& gray, const std::string& variant_name, int64_t patch) {
  const LbpVariant variant = variant_from_name(variant_name);
  if (patch < 0 || patch > 0xFFFFFFFFll) throw py::value_error("patch must be >= 0 (0: whole image)");
  const U8Array g = image_u8(gray, 1, "gray");
  const uint32_t h = uint32_t(g.shape(0)), w = uint32_t(g.shape(1));
  const PatchGrid grid = lbp_patch_grid(h, w, uint32_t(patch));
  const size_t bins = lbp_bins(variant);
  py::array_t<uint32_t> out = patch == 0 ? py::array_t<uint32_t>(bins)
                                         : py::array_t<uint32_t>({size_t(grid.patches_y), size_t(grid.patches_x), bins});
  uint32_t* dst = out.mutable_data();
  if (patch == 0 && (h == 0 || w == 0)) {
    for (size_t i = 0; i < bins; ++i) dst[i] = 0;  // an empty image has an empty histogram
    return out;
  }
  bool ok;
  {
    py::gil_scoped_release nogil;
    ok = lbp_histograms(g.data(), h, w, w, variant, uint32_t(patch), dst);
  }
  if (!ok) throw py::value_error("lbp_histograms: invalid arguments");
  return out;
}

py::array_t<uint8_t> gray_from_rgb(const py::object& rgb) {
  const U8Array c = image_u8(rgb, 3, "rgb");
  const uint32_t h = uint32_t(c.shape(0)), w = uint32_t(c.shape(1));
  py::array_t<uint8_t> out({size_t(h), size_t(w)});
  {
    py::gil_scoped_release nogil;
    rgb_to_gray(c.data(), h, w, size_t(w) * 3, out.mutable_data(), w);
  }
  return out;
}

// A pair of equal-length 1-D count histograms.
std::pair<U32Array, U32Array> pair_of_histograms(const py::object& p, const py::object& q) {
  U32Array a = counts_u32(p, "p"), b = counts_u32(q, "q");
  if (a.ndim() != 1 || b.ndim() != 1) throw py::value_error("p and q must be one-dimensional histograms");
  if (a.shape(0) != b.shape(0)) throw py::value_error("p and q differ in length");
  histogram_bins(a, "p");
  return {a, b};
}

py::object divergence(const py::object& p, const py::object& q, bool fixed, Divergence metric) {
  auto [a, b] = pair_of_histograms(p, q);
  const size_t bins = size_t(a.shape(0));
  if (fixed) return py::int_(divergence_fixed(metric, a.data(), b.data(), bins));
  return py::float_(metric == Divergence::kKL ? kl_divergence_f64(a.data(), b.data(), bins)
                                              : js_divergence_f64(a.data(), b.data(), bins));
}

py::tuple nearest(const py::object& query, const py::object& dictionary, const std::string& metric_name, bool fixed) {
  const Divergence metric = metric_from_name(metric_name);
  const U32Array q = counts_u32(query, "query"), d = counts_u32(dictionary, "dictionary");
  if (q.ndim() != 1) throw py::value_error("query must be a one-dimensional histogram");
  if (d.ndim() != 2) throw py::value_error("dictionary must have shape (N, bins)");
  const size_t bins = histogram_bins(q, "query");
  if (size_t(d.shape(1)) != bins) throw py::value_error("dictionary histograms and query differ in bins");
  if (d.shape(0) == 0) throw py::value_error("dictionary is empty");
  const size_t count = size_t(d.shape(0));
  size_t index = 0;
  if (fixed) {
    uint32_t div = 0;
    {
      py::gil_scoped_release nogil;
      nearest_histogram(q.data(), d.data(), count, bins, metric, &index, &div);
    }
    return py::make_tuple(index, div);
  }
  double div = 0.0;
  {
    py::gil_scoped_release nogil;
    nearest_histogram_f64(q.data(), d.data(), count, bins, metric, &index, &div);
  }
  return py::make_tuple(index, div);
}

}  // namespace
}  // namespace pymars

// Global, as declared by bindings.cpp, which calls it while building the
// module pymars._core.
void bind_texture(py::module_& m) {
  using namespace pymars;
  m.def("lbp_codes", &codes, py::arg("gray"), py::arg("variant") = "default",
        "LBP codes (8 neighbours, radius 1, edge-replicated borders) of an (H, W) uint8 image.\n"
        "variant: 'default' (0..255), 'uniform' (0..58) or 'riu2' (0..9); see docs/texture-matcher.md.\n\n"
        ">>> import numpy as np\n>>> from pymars import _core\n"
        ">>> _core.lbp_codes(np.array([[10, 20], [30, 40]], np.uint8)).tolist()\n"
        "[[255, 231], [241, 193]]");
  m.def("lbp_histograms", &histograms, py::arg("gray"), py::arg("variant") = "default", py::arg("patch") = 0,
        "uint32 LBP histograms of an (H, W) uint8 image: (bins,) for patch=0, else\n"
        "(patches_y, patches_x, bins) over non-overlapping patch x patch squares (partial\n"
        "patches at the right and bottom edges kept).\n\n"
        ">>> import numpy as np\n>>> from pymars import _core\n"
        ">>> _core.lbp_histograms(np.zeros((5, 3), np.uint8), 'riu2', patch=2)[:, :, 8].tolist()\n"
        "[[4, 2], [4, 2], [2, 1]]");
  m.def("rgb_to_gray", &gray_from_rgb, py::arg("rgb"),
        "Gray = (77 R + 150 G + 29 B + 128) >> 8 from an (H, W, 3) uint8 image (exact integers).\n\n"
        ">>> import numpy as np\n>>> from pymars import _core\n"
        ">>> _core.rgb_to_gray(np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8)).tolist()\n"
        "[[77, 149]]");
  m.def(
      "kl_divergence",
      [](const py::object& p, const py::object& q, bool fixed) { return divergence(p, q, fixed, Divergence::kKL); },
      py::arg("p"), py::arg("q"), py::arg("fixed") = true,
      "D_KL(p || q) in bits of two count histograms, each smoothed by eps = 2^-16.\n"
      "fixed=True: int, bits in Q16 (bit-identical on every CPU); fixed=False: float (ground only).\n\n"
      ">>> from pymars import _core\n>>> _core.kl_divergence([1, 0], [1, 1])\n65519\n"
      ">>> round(_core.kl_divergence([1, 0], [1, 1], fixed=False), 4)\n0.9997");
  m.def(
      "js_divergence",
      [](const py::object& p, const py::object& q, bool fixed) { return divergence(p, q, fixed, Divergence::kJS); },
      py::arg("p"), py::arg("q"), py::arg("fixed") = true,
      "Jensen-Shannon divergence in bits (<= 1) of two smoothed count histograms;\n"
      "fixed=True: int in Q16, fixed=False: float.\n\n"
      ">>> from pymars import _core\n>>> _core.js_divergence([3, 1], [3, 1])\n0");
  m.def("nearest_histogram", &nearest, py::arg("query"), py::arg("dictionary"), py::arg("metric") = "kl",
        py::arg("fixed") = true,
        "(index, divergence) of the dictionary row (N, bins) closest to the query histogram:\n"
        "argmin_i D(dictionary[i] || query) (MarsQE Eq. 4), ties to the lowest index.\n"
        "metric 'kl' or 'js'; divergence is Q16 bits (fixed=True) or float bits.\n\n"
        ">>> from pymars import _core\n>>> _core.nearest_histogram([9, 1], [[1, 9], [9, 1], [9, 1]])\n(1, 0)");
}
