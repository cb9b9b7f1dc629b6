// test_texture.cpp - specification tests for the texture matcher (texture.h):
// neighbour order and code tables, edge replication, codes against a naive
// per-pixel implementation, patch histograms, riu2 rotation invariance, the
// integer log2, the fixed-point divergences against their double versions,
// the nearest-neighbour tie and direction rules, no heap use, and a golden
// test whose numbers must come out identical on every CPU (x86-64, aarch64,
// big-endian 32-bit PowerPC under qemu-ppc). The golden numbers were also
// reproduced independently by the NumPy reference and its integer twin
// (tests/test_texture.py::test_golden_values_match_the_cpp_test).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/texture.h"
#include "marsenc.h"
#include "tests/check.h"

using namespace pymars;
using pymars_test::TestRng;

// Counts every operator new of the process, to show the core never allocates.
// (GCC 12 mistakes the replaced pair for a mismatched new / free.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
static long g_allocations = 0;
void* operator new(size_t n) {
  ++g_allocations;
  void* p = std::malloc(n ? n : 1);
  if (!p) std::abort();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

// ---------------------------------------------------------------- helpers

const int kDy[8] = {0, -1, -1, -1, 0, 1, 1, 1};
const int kDx[8] = {1, 1, 0, -1, -1, -1, 0, 1};

int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// The definition, one pixel at a time, with clamped coordinates.
uint8_t naive_pattern(const std::vector<uint8_t>& img, int h, int w, int y, int x) {
  const uint8_t c = img[size_t(y) * w + x];
  uint32_t code = 0;
  for (int p = 0; p < 8; ++p) {
    const int yy = clampi(y + kDy[p], 0, h - 1), xx = clampi(x + kDx[p], 0, w - 1);
    if (img[size_t(yy) * w + xx] >= c) code |= 1u << p;
  }
  return uint8_t(code);
}

// The uniform / riu2 tables from the definition, independently of texture.cpp.
uint32_t transitions(uint32_t p) {
  uint32_t t = 0;
  for (int b = 0; b < 8; ++b) t += ((p >> b) & 1) != ((p >> ((b + 1) & 7)) & 1);
  return t;
}
uint32_t ones(uint32_t p) {
  uint32_t n = 0;
  for (int b = 0; b < 8; ++b) n += (p >> b) & 1;
  return n;
}

std::vector<uint8_t> random_image(TestRng& rng, int h, int w, uint32_t levels) {
  std::vector<uint8_t> img(size_t(h) * w);
  for (auto& v : img) v = uint8_t(rng.below(levels));
  return img;
}

// FNV-1a over the counts, each as 4 little-endian bytes (so the checksum
// never depends on the host byte order).
uint32_t checksum(const uint32_t* v, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i)
    for (int b = 0; b < 4; ++b) h = (h ^ ((v[i] >> (8 * b)) & 0xFFu)) * 16777619u;
  return h;
}

const LbpVariant kVariants[3] = {LbpVariant::kDefault, LbpVariant::kUniform, LbpVariant::kRotationInvariantUniform};

// ---------------------------------------------------------------- LBP

void neighbour_order_is_counter_clockwise_from_east() {
  // A 3x3 image whose centre is 100 and one neighbour is 200: only that bit is set.
  for (int p = 0; p < 8; ++p) {
    uint8_t img[9];
    for (auto& v : img) v = 50;
    img[4] = 100;
    img[(1 + kDy[p]) * 3 + 1 + kDx[p]] = 200;
    uint8_t codes[9];
    CHECK(lbp_codes(img, 3, 3, 3, LbpVariant::kDefault, codes, 3));
    CHECK(codes[4] == (1u << p));
  }
  // Equal counts as "greater or equal".
  uint8_t flat[9] = {7, 7, 7, 7, 7, 7, 7, 7, 7};
  uint8_t codes[9];
  CHECK(lbp_codes(flat, 3, 3, 3, LbpVariant::kDefault, codes, 3));
  for (uint8_t c : codes) CHECK(c == 255);
}

void uniform_tables_follow_the_definition() {
  int seen[59] = {0};
  for (uint32_t p = 0; p < 256; ++p) {
    const uint8_t u = lbp_map_pattern(uint8_t(p), LbpVariant::kUniform);
    const uint8_t r = lbp_map_pattern(uint8_t(p), LbpVariant::kRotationInvariantUniform);
    CHECK(lbp_map_pattern(uint8_t(p), LbpVariant::kDefault) == p);
    if (transitions(p) <= 2) {
      CHECK(u < 58);
      CHECK(r == ones(p));
    } else {
      CHECK(u == 58);
      CHECK(r == 9);
    }
    if (u < 59) ++seen[u];
  }
  for (int c = 0; c < 58; ++c) CHECK(seen[c] == 1);  // 58 uniform patterns, one code each
  CHECK(seen[58] == 256 - 58);
  // The documented order: run length first, then the start bit.
  CHECK(lbp_map_pattern(0x00, LbpVariant::kUniform) == 0);
  CHECK(lbp_map_pattern(0x01, LbpVariant::kUniform) == 1);
  CHECK(lbp_map_pattern(0x80, LbpVariant::kUniform) == 8);
  CHECK(lbp_map_pattern(0x03, LbpVariant::kUniform) == 9);
  CHECK(lbp_map_pattern(0x81, LbpVariant::kUniform) == 16);  // run of 2 starting at bit 7
  CHECK(lbp_map_pattern(0x7F, LbpVariant::kUniform) == 49);
  CHECK(lbp_map_pattern(0xFE, LbpVariant::kUniform) == 50);
  CHECK(lbp_map_pattern(0xFF, LbpVariant::kUniform) == 57);
  CHECK(lbp_map_pattern(0x05, LbpVariant::kUniform) == 58);
  CHECK(lbp_bins(LbpVariant::kDefault) == 256 && lbp_bins(LbpVariant::kUniform) == 59 &&
        lbp_bins(LbpVariant::kRotationInvariantUniform) == 10);
  CHECK(lbp_bins(LbpVariant(7)) == 0);
}

void codes_match_the_naive_definition_on_random_images() {
  TestRng rng(11);
  const int sizes[][2] = {{1, 1}, {1, 5}, {5, 1}, {2, 3}, {3, 2}, {2, 2}, {7, 9}, {16, 16}, {33, 300}, {20, 513}};
  for (const auto& s : sizes) {
    const int h = s[0], w = s[1];
    for (uint32_t levels : {2u, 5u, 256u}) {
      const std::vector<uint8_t> img = random_image(rng, h, w, levels);
      // Padded strides on both sides.
      const size_t in_stride = size_t(w) + 3, out_stride = size_t(w) + 5;
      std::vector<uint8_t> padded(in_stride * h, 0xAB);
      for (int y = 0; y < h; ++y) std::memcpy(&padded[y * in_stride], &img[size_t(y) * w], size_t(w));
      for (LbpVariant v : kVariants) {
        std::vector<uint8_t> codes(out_stride * h, 0xEE);
        CHECK(lbp_codes(padded.data(), uint32_t(h), uint32_t(w), in_stride, v, codes.data(), out_stride));
        bool same = true;
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x)
            same &= codes[y * out_stride + x] == lbp_map_pattern(naive_pattern(img, h, w, y, x), v);
        CHECK(same);
        bool padding_untouched = true;
        for (int y = 0; y < h; ++y)
          for (size_t x = size_t(w); x < out_stride; ++x) padding_untouched &= codes[y * out_stride + x] == 0xEE;
        CHECK(padding_untouched);
      }
    }
  }
}

void bad_arguments_are_refused_and_empty_images_accepted() {
  uint8_t img[4] = {1, 2, 3, 4}, codes[4];
  uint32_t hist[256];
  CHECK(!lbp_codes(img, 2, 2, 1, LbpVariant::kDefault, codes, 2));  // stride < width
  CHECK(!lbp_codes(img, 2, 2, 2, LbpVariant::kDefault, codes, 1));
  CHECK(!lbp_codes(img, 2, 2, 2, LbpVariant(9), codes, 2));
  CHECK(!lbp_codes(nullptr, 2, 2, 2, LbpVariant::kDefault, codes, 2));
  CHECK(lbp_codes(nullptr, 0, 5, 5, LbpVariant::kDefault, nullptr, 5));
  CHECK(!lbp_histograms(img, 2, 2, 1, LbpVariant::kDefault, 0, hist));
  CHECK(!lbp_histograms(nullptr, 2, 2, 2, LbpVariant::kDefault, 0, hist));
  CHECK(lbp_histogram_size(0, 5, 0, LbpVariant::kDefault) == 0);
  CHECK(lbp_histograms(nullptr, 0, 5, 5, LbpVariant::kDefault, 0, nullptr));
  CHECK(!rgb_to_gray(img, 1, 2, 5, codes, 2));  // stride < 3 * width
}

void patch_histograms_count_every_pixel_once() {
  TestRng rng(5);
  const int sizes[][2] = {{1, 1}, {2, 3}, {17, 23}, {64, 64}, {40, 700}};
  for (const auto& s : sizes) {
    const int h = s[0], w = s[1];
    const std::vector<uint8_t> img = random_image(rng, h, w, 7);
    for (LbpVariant v : kVariants) {
      const uint32_t bins = lbp_bins(v);
      std::vector<uint8_t> codes(size_t(h) * w);
      CHECK(lbp_codes(img.data(), uint32_t(h), uint32_t(w), size_t(w), v, codes.data(), size_t(w)));
      for (uint32_t patch : {0u, 1u, 4u, 16u, 300u}) {
        const PatchGrid g = lbp_patch_grid(uint32_t(h), uint32_t(w), patch);
        const uint32_t ph = patch ? patch : uint32_t(h), pw = patch ? patch : uint32_t(w);
        CHECK(g.patches_y == (uint32_t(h) + ph - 1) / ph && g.patches_x == (uint32_t(w) + pw - 1) / pw);
        const size_t n = lbp_histogram_size(uint32_t(h), uint32_t(w), patch, v);
        CHECK(n == size_t(g.patches_y) * g.patches_x * bins);
        std::vector<uint32_t> hist(n, 0xDEADBEEF), expect(n, 0);
        CHECK(lbp_histograms(img.data(), uint32_t(h), uint32_t(w), size_t(w), v, patch, hist.data()));
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x)
            ++expect[((size_t(y) / ph) * g.patches_x + size_t(x) / pw) * bins + codes[size_t(y) * w + x]];
        CHECK(hist == expect);
      }
    }
  }
}

void riu2_histogram_is_invariant_to_rotation_by_90_degrees() {
  TestRng rng(8);
  const int h = 37, w = 52;
  const std::vector<uint8_t> img = random_image(rng, h, w, 9);
  std::vector<uint8_t> rot(img.size());  // rotated 90 degrees clockwise: w rows of h
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) rot[size_t(x) * h + (h - 1 - y)] = img[size_t(y) * w + x];
  uint32_t a[10], b[10];
  CHECK(lbp_histograms(img.data(), h, w, w, LbpVariant::kRotationInvariantUniform, 0, a));
  CHECK(lbp_histograms(rot.data(), w, h, h, LbpVariant::kRotationInvariantUniform, 0, b));
  CHECK(std::memcmp(a, b, sizeof a) == 0);
}

void rgb_to_gray_uses_the_integer_formula() {
  TestRng rng(3);
  const uint32_t h = 5, w = 7, stride = 3 * w + 2;
  std::vector<uint8_t> rgb(size_t(stride) * h);
  for (auto& v : rgb) v = uint8_t(rng.below(256));
  std::vector<uint8_t> gray(size_t(w) * h);
  CHECK(rgb_to_gray(rgb.data(), h, w, stride, gray.data(), w));
  bool same = true;
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      const uint8_t* p = &rgb[y * stride + 3 * x];
      same &= gray[y * w + x] == ((77u * p[0] + 150u * p[1] + 29u * p[2] + 128u) >> 8);
    }
  CHECK(same);
  const uint8_t white[3] = {255, 255, 255};
  uint8_t g = 0;
  CHECK(rgb_to_gray(white, 1, 1, 3, &g, 1) && g == 255);
}

// ---------------------------------------------------------------- fixed point

void fixed_log2_is_exact_at_powers_of_two_and_close_elsewhere() {
  CHECK(fixed_log2_q24(0) == 0);
  for (uint32_t k = 0; k < 64; ++k) CHECK(fixed_log2_q24(uint64_t(1) << k) == (k << 24));
  // log2(3) = 1.5849625007211562 -> 26591258.06 in Q24; log2(10) -> 55732705.73.
  const int64_t l3 = fixed_log2_q24(3), l10 = fixed_log2_q24(10);
  CHECK(l3 >= 26591258 - 4 && l3 <= 26591258 + 4);
  CHECK(l10 >= 55732705 - 4 && l10 <= 55732705 + 4);
  // Monotone, never above and at most 5 units of 2^-24 below libm (test side only).
  uint32_t prev = 0;
  bool monotone = true, close = true;
  for (uint64_t x = 1; x < 70000; x += 7) {
    const uint32_t l = fixed_log2_q24(x);
    monotone &= l >= prev;
    prev = l;
    const double err = double(l) - std::log2(double(x)) * 16777216.0;
    close &= err <= 0.5 && err >= -5.0;
  }
  CHECK(monotone);
  CHECK(close);
  CHECK(std::fabs(double(fixed_log2_q24(0xFFFFFFFFFFFFFFFFull)) - 64.0 * 16777216.0) <= 8.0);
}

void divergences_of_equal_histograms_are_zero() {
  const uint32_t p[5] = {3, 0, 9, 1, 0};
  const uint32_t p10[5] = {30, 0, 90, 10, 0};  // the same distribution
  CHECK(kl_divergence_fixed(p, p, 5) == 0);
  CHECK(kl_divergence_fixed(p, p10, 5) == 0);
  CHECK(js_divergence_fixed(p, p10, 5) == 0);
  const uint32_t empty[5] = {0, 0, 0, 0, 0}, flat[5] = {2, 2, 2, 2, 2};
  CHECK(kl_divergence_fixed(empty, flat, 5) == 0);  // empty smooths to uniform
}

void divergences_are_bounded_symmetric_where_defined_and_refuse_bad_arguments() {
  const uint32_t a[2] = {1, 0}, b[2] = {0, 1};
  const uint32_t js = js_divergence_fixed(a, b, 2);
  CHECK(js <= 65536 && js > 65000);
  CHECK(js == js_divergence_fixed(b, a, 2));
  CHECK(kl_divergence_fixed(a, b, 2) > 15u * 65536u);  // about 16 bits: the eps floor
  CHECK(kl_divergence_fixed(a, b, 2) < 17u * 65536u);
  CHECK(kl_divergence_fixed(nullptr, b, 2) == kDivergenceInvalid);
  CHECK(kl_divergence_fixed(a, b, 0) == kDivergenceInvalid);
  CHECK(js_divergence_fixed(a, b, kMaxDivergenceBins + 1) == kDivergenceInvalid);
  CHECK(kl_divergence_f64(a, nullptr, 2) < 0.0);
}

void fixed_point_agrees_with_double_within_4e5_bits() {
  TestRng rng(21);
  double worst = 0.0;
  for (int t = 0; t < 300; ++t) {
    const size_t bins = t % 3 == 0 ? 10 : (t % 3 == 1 ? 59 : 256);
    std::vector<uint32_t> p(bins), q(bins);
    const uint32_t scale = 1u << rng.below(20);
    for (size_t i = 0; i < bins; ++i) {
      p[i] = rng.below(3) == 0 ? 0 : rng.below(scale) + 0;
      q[i] = rng.below(3) == 0 ? 0 : rng.below(scale);
    }
    const double kl = kl_divergence_f64(p.data(), q.data(), bins);
    const double js = js_divergence_f64(p.data(), q.data(), bins);
    const double dkl = std::fabs(kl_divergence_fixed(p.data(), q.data(), bins) / 65536.0 - kl);
    const double djs = std::fabs(js_divergence_fixed(p.data(), q.data(), bins) / 65536.0 - js);
    worst = dkl > worst ? dkl : worst;
    worst = djs > worst ? djs : worst;
  }
  std::printf("  worst |fixed - double| = %.3g bits\n", worst);
  CHECK(worst <= 4e-5);
}

// ---------------------------------------------------------------- matching

void nearest_prefers_the_lowest_index_on_ties() {
  const uint32_t query[3] = {5, 3, 2};
  const uint32_t dict[4 * 3] = {1, 1, 8, 10, 6, 4, 5, 3, 2, 1, 1, 8};  // rows 1 and 2 are the query's distribution
  size_t index = 99;
  uint32_t d = 99;
  CHECK(nearest_histogram(query, dict, 4, 3, Divergence::kKL, &index, &d));
  CHECK(index == 1 && d == 0);
  CHECK(nearest_histogram(query, dict, 4, 3, Divergence::kJS, &index, &d));
  CHECK(index == 1 && d == 0);
  CHECK(!nearest_histogram(query, dict, 0, 3, Divergence::kKL, &index, &d));
  CHECK(!nearest_histogram(query, dict, 4, 3, Divergence(5), &index, &d));
}

void nearest_uses_the_reference_as_the_first_kl_argument() {
  // The query lacks bin 2. Reference 0 has mass there (KL(ref || query) pays
  // ~16 bits per unit of it), reference 1 is broader elsewhere: the two KL
  // directions disagree, and MarsQE Eq. 4 (reference first) picks 1.
  const uint32_t query[3] = {50, 50, 0};
  const uint32_t dict[2 * 3] = {40, 40, 20, 90, 10, 0};
  size_t index = 99;
  uint32_t d = 0;
  CHECK(nearest_histogram(query, dict, 2, 3, Divergence::kKL, &index, &d));
  CHECK(index == 1);
  CHECK(d == kl_divergence_fixed(dict + 3, query, 3));
  // The other direction would have chosen 0.
  CHECK(kl_divergence_fixed(query, dict, 3) < kl_divergence_fixed(query, dict + 3, 3));
  double fd = 0.0;
  CHECK(nearest_histogram_f64(query, dict, 2, 3, Divergence::kKL, &index, &fd));
  CHECK(index == 1);
}

void the_core_never_allocates() {
  TestRng rng(2);
  const std::vector<uint8_t> img = random_image(rng, 40, 300, 256);
  std::vector<uint8_t> codes(img.size());
  std::vector<uint32_t> hist(lbp_histogram_size(40, 300, 16, LbpVariant::kDefault));
  const long before = g_allocations;
  lbp_codes(img.data(), 40, 300, 300, LbpVariant::kUniform, codes.data(), 300);
  lbp_histograms(img.data(), 40, 300, 300, LbpVariant::kDefault, 16, hist.data());
  size_t index;
  uint32_t d;
  nearest_histogram(hist.data(), hist.data(), hist.size() / 256, 256, Divergence::kJS, &index, &d);
  CHECK(g_allocations == before);
}

// ---------------------------------------------------------------- golden

// A fixed 53 x 71 image (ramp + splitmix64 noise). The numbers below were
// produced on x86-64 and reproduced by the NumPy reference and the Python
// integer twin; they must hold on every CPU.
void golden_values_hold_on_every_cpu() {
  const int h = 53, w = 71;
  TestRng rng(2024);
  std::vector<uint8_t> img(size_t(h) * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) img[size_t(y) * w + x] = uint8_t((3 * x + 5 * y + rng.below(48)) & 255);
  uint32_t all[256 * 20], uni[59 * 20], riu[10], riu_patches[10 * 20];
  CHECK(lbp_histograms(img.data(), h, w, w, LbpVariant::kDefault, 16, all));
  CHECK(lbp_histograms(img.data(), h, w, w, LbpVariant::kUniform, 16, uni));
  CHECK(lbp_histograms(img.data(), h, w, w, LbpVariant::kRotationInvariantUniform, 0, riu));
  CHECK(lbp_histograms(img.data(), h, w, w, LbpVariant::kRotationInvariantUniform, 16, riu_patches));
  const uint32_t c_all = checksum(all, 256 * 20), c_uni = checksum(uni, 59 * 20), c_riu = checksum(riu, 10);
  const uint32_t kl = kl_divergence_fixed(uni, uni + 19 * 59, 59);  // patch (0,0) vs patch (3,4)
  const uint32_t js = js_divergence_fixed(all, all + 7 * 256, 256);  // patch (0,0) vs patch (1,2)
  size_t index = 0;
  uint32_t nd = 0;
  CHECK(nearest_histogram(riu, riu_patches, 20, 10, Divergence::kKL, &index, &nd));
  std::printf("  golden: all=0x%08x uni=0x%08x riu=0x%08x kl=%u js=%u nearest=%u/%u\n", unsigned(c_all),
              unsigned(c_uni), unsigned(c_riu), unsigned(kl), unsigned(js), unsigned(index), unsigned(nd));
  CHECK(c_all == 0x4fe47798u);
  CHECK(c_uni == 0x57a83a6au);
  CHECK(c_riu == 0x49520696u);
  CHECK(kl == 191641u);  // 2.924 bits
  CHECK(js == 21523u);   // 0.328 bits
  CHECK(index == 8u && nd == 337u);
}

}  // namespace

// The C API (marsenc.h) is a thin wrapper: same histograms, same nearest
// reference, status codes instead of false.
void c_api_matches_the_core_and_refuses_bad_arguments() {
  pymars_test::TestRng rng(11);
  const uint32_t h = 37, w = 53;
  std::vector<uint8_t> gray(size_t(h) * w);
  for (auto& v : gray) v = uint8_t(rng.below(256));
  for (int variant = MARSENC_LBP_DEFAULT; variant <= MARSENC_LBP_RIU2; ++variant) {
    for (uint32_t patch : {0u, 16u}) {
      const size_t n = marsenc_lbp_histogram_size(h, w, patch, variant);
      CHECK(n == pymars::lbp_histogram_size(h, w, patch, pymars::LbpVariant(variant)));
      std::vector<uint32_t> a(n), b(n);
      CHECK(marsenc_lbp_histograms(gray.data(), h, w, w, variant, patch, a.data(), n) == MARSENC_OK);
      CHECK(pymars::lbp_histograms(gray.data(), h, w, w, pymars::LbpVariant(variant), patch, b.data()));
      CHECK(a == b);
      CHECK(marsenc_lbp_histograms(gray.data(), h, w, w, variant, patch, a.data(), n - 1) == MARSENC_ERR_OUTPUT_FULL);
    }
  }
  uint32_t hist[256];
  CHECK(marsenc_lbp_histogram_size(h, w, 0, 3) == 0);
  CHECK(marsenc_lbp_histograms(gray.data(), h, w, w, 3, 0, hist, 256) == MARSENC_ERR_ARGUMENT);
  CHECK(marsenc_lbp_histograms(nullptr, h, w, w, 0, 0, hist, 256) == MARSENC_ERR_ARGUMENT);
  CHECK(marsenc_lbp_histograms(gray.data(), h, w, w - 1, 0, 0, hist, 256) == MARSENC_ERR_ARGUMENT);

  const uint32_t dictionary[3 * 4] = {1, 9, 0, 0, 9, 1, 0, 0, 9, 1, 0, 0};
  const uint32_t query[4] = {9, 1, 0, 0};
  size_t index = 99;
  uint32_t bits = 99;
  for (int metric : {MARSENC_DIV_KL, MARSENC_DIV_JS}) {
    CHECK(marsenc_nearest_histogram(query, dictionary, 3, 4, metric, &index, &bits) == MARSENC_OK);
    CHECK(index == 1 && bits == 0);  // the tie between rows 1 and 2 goes to the lower index
  }
  CHECK(marsenc_nearest_histogram(query, dictionary, 0, 4, MARSENC_DIV_KL, &index, &bits) == MARSENC_ERR_ARGUMENT);
  CHECK(marsenc_nearest_histogram(query, dictionary, 3, 4, 2, &index, &bits) == MARSENC_ERR_ARGUMENT);
  CHECK(marsenc_nearest_histogram(query, nullptr, 3, 4, MARSENC_DIV_KL, &index, &bits) == MARSENC_ERR_ARGUMENT);
  CHECK(marsenc_nearest_histogram(query, dictionary, 3, 0, MARSENC_DIV_KL, &index, &bits) == MARSENC_ERR_ARGUMENT);
}

int main() {
  RUN_TEST(neighbour_order_is_counter_clockwise_from_east);
  RUN_TEST(uniform_tables_follow_the_definition);
  RUN_TEST(codes_match_the_naive_definition_on_random_images);
  RUN_TEST(bad_arguments_are_refused_and_empty_images_accepted);
  RUN_TEST(patch_histograms_count_every_pixel_once);
  RUN_TEST(riu2_histogram_is_invariant_to_rotation_by_90_degrees);
  RUN_TEST(rgb_to_gray_uses_the_integer_formula);
  RUN_TEST(fixed_log2_is_exact_at_powers_of_two_and_close_elsewhere);
  RUN_TEST(divergences_of_equal_histograms_are_zero);
  RUN_TEST(divergences_are_bounded_symmetric_where_defined_and_refuse_bad_arguments);
  RUN_TEST(fixed_point_agrees_with_double_within_4e5_bits);
  RUN_TEST(nearest_prefers_the_lowest_index_on_ties);
  RUN_TEST(nearest_uses_the_reference_as_the_first_kl_argument);
  RUN_TEST(the_core_never_allocates);
  RUN_TEST(golden_values_hold_on_every_cpu);
  RUN_TEST(c_api_matches_the_core_and_refuses_bad_arguments);
  const int failures = pymars_test::failure_count();
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
  return failures ? 1 : 0;
}
