// wavelet.cpp - see wavelet.h. The transform follows the lifting factorisation of
// the CDF 9/7 filters (Daubechies & Sweldens; JPEG 2000 Part 1 annex F) with the
// scaling step left out: the scale of each band is folded into its quantiser
// step instead, which keeps the transform exactly invertible in integers.
#include "wavelet.h"

namespace pymars {

namespace {

// Samples are (v - 128) << kFracBits in the transform, so that the rounding of
// the lifting steps stays far below the finest quantiser step.
constexpr int32_t kFracBits = 2;
// Lifting coefficients of CDF 9/7 in Q12.
constexpr int64_t kAlpha = -6497, kBeta = -217, kGamma = 3616, kDelta = 1817;
constexpr uint32_t kLiftShift = 12;
// A hostile payload can ask for huge coefficients; every lifting result is kept
// inside +-kLiftLimit so that no int32 overflows (valid tiles stay below 2^20).
constexpr int64_t kLiftLimit = int64_t(1) << 28;
// Largest quantised magnitude a decoder accepts (the encoder's are far smaller).
constexpr uint32_t kMaxMagnitude = 1u << 24;

// 1/sqrt(synthesis energy) of each band in Q12, for the integer transform (no
// scaling step) on a 2^kFracBits-scaled signal: band (level j = 1 finest, o = HL,
// LH, HH) and the LL band after L levels. Measured on the float lifting
// (impulse in the middle of a 512 x 512 transform); a quantiser step of s levels
// in the pixel domain is s * 2^kFracBits * weight / 4096 in the band.
constexpr int64_t kBandWeight[kWvMaxLevels + 1][3] = {
    {4096, 4096, 4096},  // unused (level 0)
    {4050, 4050, 5203}, {3104, 3104, 4235}, {2242, 2242, 2981}, {1663, 1663, 2181}, {1251, 1251, 1634}};
constexpr int64_t kLLWeight[kWvMaxLevels + 1] = {4096, 3153, 2275, 1687, 1269, 958};
// Colour planes after YCoCg-R, in Q8: 1/sqrt of the energy one unit of Y (3), Co
// (1/2) and Cg (3/4) puts into R, G and B. (JPEG 2000's RCT, Y = (R + 2G + B) / 4
// with B - G and R - G, cost 1.1-1.5 BD-rate points on the colour development tiles.)
constexpr int64_t kPlaneWeightRgb[3] = {148, 362, 296};
constexpr int64_t kPlaneWeightGray = 256;

// The decoder reconstructs level q at (|q| + kBias / 16) * step (a bias of -2/16
// or +2/16 cost 1-5 % BD-rate on the development tiles). The LL band is rounded
// to the nearest level; the high bands' levels are chosen by choose_level().
constexpr int64_t kRoundLL = 8;
constexpr int64_t kBias = 0;

constexpr uint8_t kFormCoded = 0, kFormStored = 1;

inline int64_t floor_shift(int64_t v, uint32_t s) {
  return v >= 0 ? v >> s : -((-v + (int64_t(1) << s) - 1) >> s);
}

inline int32_t clamp_lift(int64_t v) {
  return int32_t(v < -kLiftLimit ? -kLiftLimit : (v > kLiftLimit ? kLiftLimit : v));
}

inline int32_t lift_term(int64_t coef, int32_t a, int32_t b) {
  return int32_t(floor_shift(coef * (int64_t(a) + b) + (int64_t(1) << (kLiftShift - 1)), kLiftShift));
}

// One lifting step over the n_out outputs: out[i] += coef * (in[left(i)] + in[right(i)])
// (sign = -1 undoes it). `odd`: out are the odd samples (d), whose neighbours are
// s[i] and s[i + 1]; else out are the even samples (s), neighbours d[i - 1] and d[i].
// Whole-sample symmetric extension at both ends.
void lift(int32_t* out, uint32_t n_out, const int32_t* in, uint32_t n_in, int64_t coef, bool odd, int sign) {
  for (uint32_t i = 0; i < n_out; ++i) {
    int32_t a, b;
    if (odd) {
      a = in[i];
      b = in[i + 1 < n_in ? i + 1 : n_in - 1];
    } else {
      a = in[i ? i - 1 : 0];
      b = in[i < n_in ? i : n_in - 1];
    }
    const int32_t t = lift_term(coef, a, b);
    out[i] = clamp_lift(sign > 0 ? int64_t(out[i]) + t : int64_t(out[i]) - t);
  }
}

// Forward 1-D transform of n samples at `stride`: low band first, high band after.
void forward_1d(int32_t* v, size_t stride, uint32_t n, int32_t* scratch) {
  if (n < 2) return;
  const uint32_t ns = (n + 1) / 2, nd = n / 2;
  int32_t *s = scratch, *d = scratch + ns;
  for (uint32_t i = 0; i < ns; ++i) s[i] = v[size_t(2 * i) * stride];
  for (uint32_t i = 0; i < nd; ++i) d[i] = v[size_t(2 * i + 1) * stride];
  lift(d, nd, s, ns, kAlpha, true, 1);
  lift(s, ns, d, nd, kBeta, false, 1);
  lift(d, nd, s, ns, kGamma, true, 1);
  lift(s, ns, d, nd, kDelta, false, 1);
  for (uint32_t i = 0; i < n; ++i) v[size_t(i) * stride] = scratch[i];
}

void inverse_1d(int32_t* v, size_t stride, uint32_t n, int32_t* scratch) {
  if (n < 2) return;
  const uint32_t ns = (n + 1) / 2, nd = n / 2;
  int32_t *s = scratch, *d = scratch + ns;
  for (uint32_t i = 0; i < n; ++i) scratch[i] = v[size_t(i) * stride];
  lift(s, ns, d, nd, kDelta, false, -1);
  lift(d, nd, s, ns, kGamma, true, -1);
  lift(s, ns, d, nd, kBeta, false, -1);
  lift(d, nd, s, ns, kAlpha, true, -1);
  for (uint32_t i = 0; i < ns; ++i) v[size_t(2 * i) * stride] = s[i];
  for (uint32_t i = 0; i < nd; ++i) v[size_t(2 * i + 1) * stride] = d[i];
}

// Decomposition levels of an h x w tile: while the low band is at least 8 x 8, up to 5.
uint32_t levels(uint32_t h, uint32_t w) {
  uint32_t l = 0;
  while (l < kWvMaxLevels && h >= 8 && w >= 8) {
    h = (h + 1) / 2;
    w = (w + 1) / 2;
    ++l;
  }
  return l;
}

// Size of the region level j (1 = finest) transforms.
void region(uint32_t h, uint32_t w, uint32_t j, uint32_t* rh, uint32_t* rw) {
  for (uint32_t i = 1; i < j; ++i) {
    h = (h + 1) / 2;
    w = (w + 1) / 2;
  }
  *rh = h;
  *rw = w;
}

struct Band {
  uint32_t y0, x0, h, w;
};

// Band o (0 HL, 1 LH, 2 HH) of level j in the Mallat layout.
Band band(uint32_t h, uint32_t w, uint32_t j, uint32_t o) {
  uint32_t rh, rw;
  region(h, w, j, &rh, &rw);
  const uint32_t lh = (rh + 1) / 2, lw = (rw + 1) / 2;
  if (o == 0) return Band{0, lw, lh, rw - lw};
  if (o == 1) return Band{lh, 0, rh - lh, lw};
  return Band{lh, lw, rh - lh, rw - lw};
}

// A band's step at (y, x): 3/4 of it on a row or column at a seam side.
inline int64_t seam_step(int64_t st, const Band& b, uint32_t y, uint32_t x, uint32_t seams) {
  const bool at_seam = ((seams & kWvSeamLeft) && x == 0) || ((seams & kWvSeamTop) && y == 0) ||
                       ((seams & kWvSeamRight) && x + 1 == b.w) || ((seams & kWvSeamBottom) && y + 1 == b.h);
  if (!at_seam) return st;
  const int64_t s3 = st * 3 / 4;
  return s3 < 1 ? 1 : s3;
}

// Calls fn(band, orientation, level, parent or null) for every high band, coarse
// to fine (levels L..1, orientations HL, LH, HH): the coding order of §4.9.
template <class Fn>
void for_each_high_band(uint32_t h, uint32_t w, uint32_t L, Fn fn) {
  for (uint32_t j = L; j >= 1; --j)
    for (uint32_t o = 0; o < 3; ++o) {
      const Band b = band(h, w, j, o);
      Band parent{};
      const Band* pb = nullptr;
      if (j < L) {
        parent = band(h, w, j + 1, o);
        pb = &parent;
      }
      fn(b, o, j, pb);
    }
}

void forward_2d(int32_t* p, uint32_t h, uint32_t w, uint32_t L, int32_t* scratch) {
  uint32_t rh = h, rw = w;
  for (uint32_t l = 0; l < L; ++l) {
    for (uint32_t y = 0; y < rh; ++y) forward_1d(p + size_t(y) * w, 1, rw, scratch);
    for (uint32_t x = 0; x < rw; ++x) forward_1d(p + x, w, rh, scratch);
    rh = (rh + 1) / 2;
    rw = (rw + 1) / 2;
  }
}

void inverse_2d(int32_t* p, uint32_t h, uint32_t w, uint32_t L, int32_t* scratch) {
  for (uint32_t j = L; j >= 1; --j) {
    uint32_t rh, rw;
    region(h, w, j, &rh, &rw);
    for (uint32_t x = 0; x < rw; ++x) inverse_1d(p + x, w, rh, scratch);
    for (uint32_t y = 0; y < rh; ++y) inverse_1d(p + size_t(y) * w, 1, rw, scratch);
  }
}

// Quantiser step of a band in Q8 coefficient units (>= 1).
int64_t band_step(uint32_t step_q4, int64_t band_weight_q12, int64_t plane_weight_q8) {
  const int64_t s = (int64_t(step_q4) * band_weight_q12 * plane_weight_q8 * (int64_t(1) << kFracBits) +
                     (int64_t(1) << 15)) >> 16;
  return s < 1 ? 1 : s;
}

// The LL band's step: kLLFiner times finer than the MSE-balanced one. Each LL
// coefficient sets the mean of a block of 2^L x 2^L pixels; at coarse steps its
// rounding error moved a 64x64 tile's mean colour by more than half a level. The LL
// band is 1/1024 of a tile's coefficients, so the finer step costs ~0.002 bpp.
constexpr int64_t kLLFiner = 8;
int64_t ll_band_step(uint32_t step_q4, int64_t band_weight_q12, int64_t plane_weight_q8) {
  const int64_t s = band_step(step_q4, band_weight_q12, plane_weight_q8) / kLLFiner;
  return s < 1 ? 1 : s;
}

inline int32_t quantise(int32_t c, int64_t step_q8, int64_t round) {
  const int64_t a = c < 0 ? -int64_t(c) : int64_t(c);
  const int64_t q = (a * 4096 + round * step_q8) / (16 * step_q8);
  return int32_t(c < 0 ? -q : q);
}

inline int32_t dequantise(int32_t q, int64_t step_q8) {
  if (q == 0) return 0;
  const int64_t a = q < 0 ? -int64_t(q) : int64_t(q);
  const int64_t v = ((16 * a + kBias) * step_q8 + 2048) / 4096;
  return clamp_lift(q < 0 ? -v : v);
}

// Neighbourhood-magnitude class 0..kWvContexts-1 (about 2 log2 of a).
inline uint32_t magnitude_class(uint32_t a) {
  if (a < 2) return a;
  const uint32_t bl = bit_length(a);
  const uint32_t c = 2 * bl - 2 + ((a >> (bl - 2)) & 1u);
  return c < kWvContexts ? c : kWvContexts - 1;
}

inline uint32_t absu(int32_t v) { return v < 0 ? uint32_t(-int64_t(v)) : uint32_t(v); }
inline uint32_t sign_class(int32_t v) { return v == 0 ? 0u : (v > 0 ? 1u : 2u); }

inline int32_t med(int32_t a, int32_t b, int32_t c) {
  const int32_t mx = a > b ? a : b, mn = a < b ? a : b;
  if (c >= mx) return mn;
  if (c <= mn) return mx;
  return a + b - c;
}

// The LL band's DPCM prediction and context of (y, x) (row stride w).
inline int32_t ll_predict(const int32_t* p, uint32_t w, uint32_t y, uint32_t x, uint32_t* ctx) {
  if (y == 0 && x == 0) {
    *ctx = 0;
    return 0;
  }
  if (y == 0) {
    *ctx = magnitude_class(x >= 2 ? absu(p[x - 1] - p[x - 2]) : 0);
    return p[x - 1];
  }
  const int32_t n = p[size_t(y - 1) * w + x];
  if (x == 0) {
    *ctx = magnitude_class(y >= 2 ? absu(n - p[size_t(y - 2) * w]) : 0);
    return n;
  }
  const int32_t wv = p[size_t(y) * w + x - 1], nw = p[size_t(y - 1) * w + x - 1];
  *ctx = magnitude_class(absu(wv - nw) + absu(n - nw));
  return med(wv, n, nw);
}

struct Neighbourhood {
  uint32_t ctx, sign_ctx;
};

// Context of (y, x) in band b of plane p (row stride w), parent band `pb` (null: none):
// the class of a weighted sum of the quantised magnitudes around it (west and north
// count double, as does the parent, the coefficient at the same place one level
// coarser), and the signs of its west and north neighbours. Adding WW and NN,
// splitting the parent into its own context dimension, the luma level at the same
// place for colour planes, or zero flags by orientation and magnitude bins by
// level (938 bins with priors) each moved BD-rate by < 0.4 points on the
// development tiles.
inline Neighbourhood neighbourhood(const int32_t* p, uint32_t w, const Band& b, const Band* pb, uint32_t o,
                                   uint32_t y, uint32_t x) {
  auto at = [&](uint32_t yy, uint32_t xx) { return p[size_t(b.y0 + yy) * w + b.x0 + xx]; };
  const int32_t W = x ? at(y, x - 1) : 0, N = y ? at(y - 1, x) : 0;
  const int32_t NW = x && y ? at(y - 1, x - 1) : 0, NE = y && x + 1 < b.w ? at(y - 1, x + 1) : 0;
  uint32_t a = 2 * absu(W) + 2 * absu(N) + absu(NW) + absu(NE);
  if (pb && pb->h && pb->w) {
    const uint32_t py = y / 2 < pb->h ? y / 2 : pb->h - 1, px = x / 2 < pb->w ? x / 2 : pb->w - 1;
    a += 2 * absu(p[size_t(pb->y0 + py) * w + pb->x0 + px]);
  }
  return Neighbourhood{magnitude_class(a), o * 9 + 3 * sign_class(W) + sign_class(N)};
}

inline uint32_t level_class(uint32_t j) { return j == 1 ? 0u : (j == 2 ? 1u : 2u); }

// 15-bit probabilities kept inside [32, 32736]: a well-predicted zero costs ~0.0014 bits.
// Adaptation rates 1/16 and 1/64: a tile's bands are short and their statistics
// move (1/128 for the slow estimate, as §4.8 uses, cost 0.5 % BD-rate on smooth tiles).
using WvRangeEncoder = RangeEncoder<15, 32, 32736, 4, 6>;
using WvRangeDecoder = RangeDecoder<15, 32, 32736, 4, 6>;

// Plane kind of plane c: 0 gray or Y, 1 a colour difference.
inline uint32_t plane_kind(uint32_t channels, uint32_t c) { return channels == 3 && c > 0 ? 1u : 0u; }

void reset_state(WvState* s, const WvPriors& priors, uint32_t kind, uint32_t step_q4) {
  if (!priors.table) {
    for (auto& b : s->bit) b = kAdaptiveHalf;
    return;
  }
  const uint32_t k = kind < priors.kinds ? kind : priors.kinds - 1;
  const uint16_t* t = priors.table + (size_t(k) * kWvStepClasses + wv_step_class(step_q4)) * kWvStateBits;
  for (uint32_t i = 0; i < kWvStateBits; ++i) s->bit[i] = AdaptiveBit{t[i], t[i]};
}

// The encoder's coder with optional bin counting (training the priors).
struct CountingEncoder {
  WvRangeEncoder rc;
  WvState* s;
  uint32_t (*n)[2] = nullptr;  // counts of the current plane kind, or null
  void bit(uint32_t at, uint32_t b) {
    if (n) ++n[at][b];
    rc.bit(&s->bit[at], b);
  }
};


// |q| - 1 >= 0 after the zero flag: unary bins (contexts unary + j), then an
// Exp-Golomb escape (prefix contexts kWvEsc + i, suffix bits sent as they are).
void put_magnitude(CountingEncoder& e, uint32_t unary, uint32_t m) {
  uint32_t j = 0;
  for (; j < kWvUnary; ++j) {
    e.bit(unary + j, m > j);
    if (m == j) return;
  }
  const uint32_t v = m - kWvUnary + 1, n = bit_length(v) - 1;
  for (uint32_t i = 0; i < n; ++i) e.bit(kWvEsc + i, 1);
  e.bit(kWvEsc + n, 0);
  e.rc.direct(v & ((1u << n) - 1u), n);
}

bool get_magnitude(WvRangeDecoder& rc, WvState* s, uint32_t unary, uint32_t* m) {
  uint32_t j = 0;
  while (j < kWvUnary && rc.bit(&s->bit[unary + j])) ++j;
  if (j < kWvUnary) {
    *m = j;
    return true;
  }
  uint32_t n = 0;
  while (rc.bit(&s->bit[kWvEsc + n])) {
    if (++n >= kWvEscape - 1) return false;  // longer than any encoder writes
  }
  if (n > 24) return false;
  *m = ((1u << n) | rc.direct(n)) - 1 + kWvUnary;
  return *m < kMaxMagnitude;
}

// ---- Rate-distortion choice of a quantised level (encoder only) ---------------
//
// Not part of the format: any level decodes. The encoder rounds |c| / step to the
// nearest level v and keeps v or v - 1 (toward zero), whichever costs less in
// D + lambda R, the rate taken from the coder's current probabilities (greedy:
// the effect on later contexts is ignored). Integers only, so the choice, and the
// bytes, are the same on every CPU.

// -log2(p / 2^15) in 1/256 bit for p in 1..32768: integer squaring, no libm.
inline uint32_t cost_q8(uint32_t p15) {
  uint64_t x = p15;
  uint32_t k = 0;
  while (x < 32768) {
    x <<= 1;
    ++k;
  }
  uint32_t frac = 0;  // log2(x / 2^15) in [0, 1), 8 bits
  for (int i = 0; i < 8; ++i) {
    x = (x * x) >> 15;
    frac <<= 1;
    if (x >= 65536) {
      x >>= 1;
      frac |= 1;
    }
  }
  return k * 256 - frac;
}

inline uint32_t bin_cost(const AdaptiveBit& p, uint32_t b) {
  const uint32_t p0 = coder_prob<15, 32, 32736>(p);
  return cost_q8(b ? 32768 - p0 : p0);
}

// Bits (1/256) of level v >= 0 in the given contexts, sign included; the escape's
// adaptive prefix is priced at one bit a bin.
inline uint32_t level_cost(const WvState& s, uint32_t v, uint32_t zero_at, uint32_t sign_at, uint32_t unary) {
  if (v == 0) return bin_cost(s.bit[zero_at], 0);
  uint32_t r = bin_cost(s.bit[zero_at], 1) + bin_cost(s.bit[sign_at], 0) / 2 + bin_cost(s.bit[sign_at], 1) / 2;
  const uint32_t m = v - 1;
  for (uint32_t j = 0; j < kWvUnary && j <= m; ++j) r += bin_cost(s.bit[unary + j], m > j);
  if (m >= kWvUnary) r += 256 * (2 * bit_length(m - kWvUnary + 1) - 1);
  return r;
}

// lambda in 1/256 of step^2 per bit. High-rate theory gives ln 2 / 6 = 0.116 (30);
// 22 measured best on the development gray tiles (BD-rate against AVIF -2.3 % on
// Navcam, -0.6 % on MarsScapes luma; 15 and 30 are 0.3-0.5 points worse, and the
// dead-zone quantiser without this choice 2.5-3.6 points worse).
constexpr int64_t kLambda = 22;

// The level coded for coefficient c of a band with step step_q8 (Q8).
inline int32_t choose_level(int32_t c, int64_t step_q8, const WvState& s, uint32_t zero_at, uint32_t sign_at,
                            uint32_t unary) {
  const int32_t v = quantise(c, step_q8, 8);  // nearest level
  if (v == 0) return v;
  const uint32_t a = absu(v);
  // |c| / step in Q4, and the squared errors (Q8 of step^2) of levels a and a - 1.
  const int64_t t = (int64_t(absu(c)) * 4096) / step_q8;
  const int64_t d_hi = (t - 16 * int64_t(a)) * (t - 16 * int64_t(a)), d_lo = (t - 16 * int64_t(a - 1)) * (t - 16 * int64_t(a - 1));
  const int64_t r_hi = level_cost(s, a, zero_at, sign_at, unary), r_lo = level_cost(s, a - 1, zero_at, sign_at, unary);
  // D in step^2 / 256, R in bits / 256: keep a - 1 when D_lo + lambda R_lo < D_hi + lambda R_hi.
  if ((d_lo - d_hi) * 256 < kLambda * (r_hi - r_lo)) return c < 0 ? -int32_t(a - 1) : int32_t(a - 1);
  return v;
}

// Colour transform and scaling into the transform's planes.
void load_planes(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels,
                 int32_t* planes) {
  const size_t n = size_t(h) * w;
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      const uint8_t* s = samples + size_t(y) * row_stride + size_t(x) * channels;
      const size_t i = size_t(y) * w + x;
      if (channels == 1) {
        planes[i] = (int32_t(s[0]) - 128) * (1 << kFracBits);
      } else {
        // YCoCg-R (Malvar & Sullivan): reversible lifting, floor shifts.
        const int32_t r = s[0], g = s[1], b = s[2];
        const int32_t co = r - b, t = b + int32_t(floor_shift(co, 1)), cg = g - t, y = t + int32_t(floor_shift(cg, 1));
        planes[i] = (y - 128) * (1 << kFracBits);
        planes[n + i] = co * (1 << kFracBits);
        planes[2 * n + i] = cg * (1 << kFracBits);
      }
    }
}

inline int32_t to_level(int32_t v) {
  return int32_t(floor_shift(int64_t(v) + (int64_t(1) << (kFracBits - 1)), kFracBits));
}
inline uint8_t clamp8(int32_t v) { return uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v)); }

void store_planes(const int32_t* planes, uint32_t h, uint32_t w, uint32_t channels, uint8_t* out) {
  const size_t n = size_t(h) * w;
  for (size_t i = 0; i < n; ++i) {
    if (channels == 1) {
      out[i] = clamp8(to_level(planes[i]) + 128);
    } else {
      const int32_t Y = to_level(planes[i]) + 128, co = to_level(planes[n + i]), cg = to_level(planes[2 * n + i]);
      const int32_t t = Y - int32_t(floor_shift(cg, 1)), g = cg + t, b = t - int32_t(floor_shift(co, 1));
      out[3 * i] = clamp8(b + co);
      out[3 * i + 1] = clamp8(g);
      out[3 * i + 2] = clamp8(b);
    }
  }
}

int64_t plane_weight(uint32_t channels, uint32_t c) { return channels == 1 ? kPlaneWeightGray : kPlaneWeightRgb[c]; }

}  // namespace

uint32_t wv_step_class(uint32_t step_q4) {
  const uint32_t bl = bit_length(step_q4);  // steps of 2, 4, 8, 16, 32 levels are 2^6 .. 2^10 in Q4
  const uint32_t c = bl > 6 ? bl - 6 : 0;
  return c < kWvStepClasses ? c : kWvStepClasses - 1;
}

size_t wv_work_ints(uint32_t h, uint32_t w, uint32_t channels) {
  return size_t(h) * w * channels + (h > w ? h : w) + 8;
}

size_t wv_max_bytes(uint32_t h, uint32_t w, uint32_t channels) { return size_t(h) * w * channels + 1; }

namespace {

// ---- Prediction from a frame already sent (§4.10) ------------------------------

// Levels of the prediction tile: its planes transformed like the tile's and
// rounded to the nearest level of each band's step (the seam steps included),
// in pred.work (the caller's `scratch` serves the transform).
void predict_levels(const WvPrediction& pred, uint32_t h, uint32_t w, uint32_t channels, uint32_t L,
                    uint32_t step_q4, uint32_t seams, int32_t* scratch) {
  const size_t n = size_t(h) * w;
  load_planes(pred.samples, size_t(w) * channels, h, w, channels, pred.work);
  for (uint32_t c = 0; c < channels; ++c) {
    int32_t* p = pred.work + n * c;
    const int64_t pw = plane_weight(channels, c);
    forward_2d(p, h, w, L, scratch);
    uint32_t lh, lw;
    region(h, w, L + 1, &lh, &lw);
    const int64_t ll_step = ll_band_step(step_q4, kLLWeight[L], pw);
    for (uint32_t y = 0; y < lh; ++y)
      for (uint32_t x = 0; x < lw; ++x) p[size_t(y) * w + x] = quantise(p[size_t(y) * w + x], ll_step, kRoundLL);
    for_each_high_band(h, w, L, [&](const Band& b, uint32_t o, uint32_t j, const Band*) {
      const int64_t st = band_step(step_q4, kBandWeight[j][o], pw);
      for (uint32_t y = 0; y < b.h; ++y)
        for (uint32_t x = 0; x < b.w; ++x) {
          int32_t& v = p[size_t(b.y0 + y) * w + b.x0 + x];
          v = quantise(v, seam_step(st, b, y, x, seams), 8);
        }
    });
  }
}

// True when coefficient (y, x) of a band of level j (L for the LL band) lies
// inside the rectangle the earlier frame covers: its 2^j x 2^j block of pixels
// and a margin of 2^j around it, except at a tile side (where the tile and its
// prediction are extended alike).
inline bool covered(const WvPrediction& pred, uint32_t h, uint32_t w, uint32_t j, uint32_t y, uint32_t x) {
  const int64_t m = int64_t(1) << j, y0 = int64_t(y) << j, x0 = int64_t(x) << j;
  if (pred.vy0 > 0 && y0 - m < int64_t(pred.vy0)) return false;
  if (pred.vx0 > 0 && x0 - m < int64_t(pred.vx0)) return false;
  if (pred.vy1 < h && y0 + 2 * m > int64_t(pred.vy1)) return false;
  if (pred.vx1 < w && x0 + 2 * m > int64_t(pred.vx1)) return false;
  return true;
}

// gain g / 4 of prediction level r.
inline int32_t gained(int32_t r, uint32_t g) { return int32_t(floor_shift(int64_t(r) * g + 2, 2)); }

// The gain of a band: adaptive bins, one per plane set (g != 0, then g - 1 in two bits).
struct GainBits {
  AdaptiveBit b[4];
  void reset() {
    for (auto& x : b) x = kAdaptiveHalf;
  }
};

// The level of a predicted coefficient: the nearest level, or one level toward
// the prediction pr when that is cheaper in D + lambda R (choose_level()'s rule,
// whose "toward zero" becomes "toward the prediction"; with pr = 0 they agree).
inline int32_t choose_level_predicted(int32_t c, int64_t step_q8, int32_t pr, const WvState& s, uint32_t zero_at,
                                      uint32_t sign_at, uint32_t unary) {
  const int32_t v = quantise(c, step_q8, 8);
  if (v == pr) return v;
  const int32_t v1 = v + (pr > v ? 1 : -1);
  const int64_t ta = (int64_t(absu(c)) * 4096) / step_q8, t = c < 0 ? -ta : ta;
  const int64_t d0 = (t - 16 * int64_t(v)) * (t - 16 * int64_t(v)), d1 = (t - 16 * int64_t(v1)) * (t - 16 * int64_t(v1));
  const int64_t r0 = level_cost(s, absu(v - pr), zero_at, sign_at, unary),
                r1 = level_cost(s, absu(v1 - pr), zero_at, sign_at, unary);
  if ((d1 - d0) * 256 < kLambda * (r0 - r1)) return v1;
  return v;
}

// Sum of the LL band's DPCM residuals |d - MED(W, N, NW)| for d = q - gained(r, g)
// (ll_predict()'s predictor): the encoder's measure for choosing the LL gain.
uint64_t ll_cost(const int32_t* p, const int32_t* r, uint32_t w, uint32_t lh, uint32_t lw, uint32_t g,
                 const WvPrediction& pred, uint32_t h, uint32_t L) {
  auto d = [&](uint32_t y, uint32_t x) {
    const size_t i = size_t(y) * w + x;
    return p[i] - (covered(pred, h, w, L, y, x) ? gained(r[i], g) : 0);
  };
  uint64_t sum = 0;
  for (uint32_t y = 0; y < lh; ++y)
    for (uint32_t x = 0; x < lw; ++x) {
      int32_t pr = 0;
      if (y == 0 && x > 0) pr = d(0, x - 1);
      else if (x == 0 && y > 0) pr = d(y - 1, 0);
      else if (x > 0 && y > 0) pr = med(d(y, x - 1), d(y - 1, x), d(y - 1, x - 1));
      sum += absu(d(y, x) - pr);
    }
  return sum;
}

void put_gain(WvRangeEncoder& rc, GainBits& gb, uint32_t g) {
  rc.bit(&gb.b[0], g != 0);
  if (!g) return;
  const uint32_t hi = (g - 1) >> 1, lo = (g - 1) & 1;
  rc.bit(&gb.b[1], hi);
  rc.bit(&gb.b[2 + hi], lo);
}

uint32_t get_gain(WvRangeDecoder& rc, GainBits& gb) {
  if (!rc.bit(&gb.b[0])) return 0;
  const uint32_t hi = rc.bit(&gb.b[1]);
  const uint32_t lo = rc.bit(&gb.b[2 + hi]);
  return 1 + (hi << 1 | lo);  // 1..4
}

// Codes the planes of `work` (loaded samples, not yet transformed) into e;
// with a prediction (pred.work holds its levels), each band first codes its
// gain and then the levels minus the gained prediction where covered.
void encode_planes(CountingEncoder& e, uint32_t h, uint32_t w, uint32_t channels, uint32_t step_q4,
                   const WvPriors& priors, WvCounts* counts, uint32_t seams, int32_t* work, const WvPrediction* pred) {
  WvState* s = e.s;
  const size_t n = size_t(h) * w;
  int32_t* scratch = work + n * channels;
  const uint32_t L = levels(h, w);
  GainBits gb;
  for (uint32_t c = 0; c < channels; ++c) {
    int32_t* p = work + n * c;
    const int32_t* r = pred ? pred->work + n * c : nullptr;
    const int64_t pw = plane_weight(channels, c);
    forward_2d(p, h, w, L, scratch);
    reset_state(s, priors, plane_kind(channels, c), step_q4);
    gb.reset();
    e.n = counts ? counts->n[plane_kind(channels, c)] : nullptr;
    // LL: quantise (rounding), then DPCM in raster order.
    uint32_t lh, lw;
    region(h, w, L + 1, &lh, &lw);  // the LL band after L levels
    const int64_t ll_step = ll_band_step(step_q4, kLLWeight[L], pw);
    for (uint32_t y = 0; y < lh; ++y)
      for (uint32_t x = 0; x < lw; ++x) p[size_t(y) * w + x] = quantise(p[size_t(y) * w + x], ll_step, kRoundLL);
    if (r) {
      uint32_t best = 0;
      uint64_t best_cost = 0;
      for (uint32_t g = 0; g < kWvGains; ++g) {
        const uint64_t cost = ll_cost(p, r, w, lh, lw, g, *pred, h, L);
        if (g == 0 || cost < best_cost) best = g, best_cost = cost;
      }
      put_gain(e.rc, gb, best);
      for (uint32_t y = 0; y < lh; ++y)
        for (uint32_t x = 0; x < lw; ++x)
          if (covered(*pred, h, w, L, y, x)) p[size_t(y) * w + x] -= gained(r[size_t(y) * w + x], best);
    }
    for (uint32_t y = 0; y < lh; ++y)
      for (uint32_t x = 0; x < lw; ++x) {
        uint32_t ctx;
        const int32_t pred_ll = ll_predict(p, w, y, x, &ctx);
        const int32_t d = p[size_t(y) * w + x] - pred_ll;
        e.bit(kWvLLZero + ctx, d != 0);
        if (d) {
          e.bit(kWvLLSign, d < 0);
          put_magnitude(e, kWvLLMag + ctx * kWvUnary, absu(d) - 1);
        }
      }
    // High bands, coarse to fine, each in raster order. A coefficient is quantised
    // when it is reached: its context reads only coefficients already decided
    // (west, north, north-west, north-east, and the parent one level coarser),
    // so the rate-distortion choice below can use the coder's current state.
    // With a prediction the plane holds the coded symbols (level minus gained
    // prediction), and the contexts are those of the symbols.
    for_each_high_band(h, w, L, [&](const Band& b, uint32_t o, uint32_t j, const Band* pb) {
      const int64_t st = band_step(step_q4, kBandWeight[j][o], pw);
      const uint32_t lc = level_class(j);
      uint32_t g = 0;
      if (r) {
        uint64_t cost[kWvGains] = {};
        for (uint32_t y = 0; y < b.h; ++y)
          for (uint32_t x = 0; x < b.w; ++x) {
            if (!covered(*pred, h, w, j, y, x)) continue;
            const size_t i = size_t(b.y0 + y) * w + b.x0 + x;
            const int32_t v0 = quantise(p[i], seam_step(st, b, y, x, seams), 8);
            for (uint32_t k = 0; k < kWvGains; ++k) cost[k] += absu(v0 - gained(r[i], k));
          }
        for (uint32_t k = 1; k < kWvGains; ++k)
          if (cost[k] < cost[g]) g = k;
        put_gain(e.rc, gb, g);
      }
      for (uint32_t y = 0; y < b.h; ++y)
        for (uint32_t x = 0; x < b.w; ++x) {
          const size_t i = size_t(b.y0 + y) * w + b.x0 + x;
          int32_t& at = p[i];
          const Neighbourhood nb = neighbourhood(p, w, b, pb, o, y, x);
          const uint32_t zero_at = kWvZero + lc * kWvContexts + nb.ctx, mag_at = kWvMag + nb.ctx * kWvUnary;
          const int64_t sst = seam_step(st, b, y, x, seams);
          const int32_t pr = (g && covered(*pred, h, w, j, y, x)) ? gained(r[i], g) : 0;
          const int32_t v = pr ? choose_level_predicted(at, sst, pr, *s, zero_at, kWvSign + nb.sign_ctx, mag_at)
                               : choose_level(at, sst, *s, zero_at, kWvSign + nb.sign_ctx, mag_at);
          const int32_t sym = v - pr;
          at = sym;
          e.bit(zero_at, sym != 0);
          if (sym) {
            e.bit(kWvSign + nb.sign_ctx, sym < 0);
            put_magnitude(e, mag_at, absu(sym) - 1);
          }
        }
    });
  }
}

// Decodes the planes into work and the samples into out (wv_decode's body after the form byte).
bool decode_planes(WvRangeDecoder& rc, uint32_t h, uint32_t w, uint32_t channels, uint32_t step_q4,
                   const WvPriors& priors, WvState* s, int32_t* work, uint8_t* out, uint32_t seams,
                   const WvPrediction* pred) {
  const size_t n = size_t(h) * w;
  int32_t* scratch = work + n * channels;
  const uint32_t L = levels(h, w);
  GainBits gb;
  uint32_t gains[3 * kWvMaxLevels] = {};  // per high band, in coding order
  for (uint32_t c = 0; c < channels; ++c) {
    int32_t* p = work + n * c;
    const int32_t* r = pred ? pred->work + n * c : nullptr;
    const int64_t pw = plane_weight(channels, c);
    reset_state(s, priors, plane_kind(channels, c), step_q4);
    gb.reset();
    uint32_t lh, lw;
    region(h, w, L + 1, &lh, &lw);  // the LL band after L levels
    const uint32_t ll_gain = r ? get_gain(rc, gb) : 0;
    for (uint32_t y = 0; y < lh; ++y)
      for (uint32_t x = 0; x < lw; ++x) {
        uint32_t ctx;
        const int32_t pred_ll = ll_predict(p, w, y, x, &ctx);
        int32_t d = 0;
        if (rc.bit(&s->bit[kWvLLZero + ctx])) {
          const bool negative = rc.bit(&s->bit[kWvLLSign]) != 0;
          uint32_t m;
          if (!get_magnitude(rc, s, kWvLLMag + ctx * kWvUnary, &m)) return false;
          d = negative ? -int32_t(m + 1) : int32_t(m + 1);
        }
        const int64_t v = int64_t(pred_ll) + d;
        if (rc.failed || v < -int64_t(kMaxMagnitude) || v > int64_t(kMaxMagnitude)) return false;
        p[size_t(y) * w + x] = int32_t(v);
      }
    bool ok = true;
    uint32_t band_no = 0;
    for_each_high_band(h, w, L, [&](const Band& b, uint32_t o, uint32_t j, const Band* pb) {
      const uint32_t lc = level_class(j);
      gains[band_no++] = (r && ok) ? get_gain(rc, gb) : 0;
      for (uint32_t y = 0; y < b.h && ok; ++y)
        for (uint32_t x = 0; x < b.w && ok; ++x) {
          const Neighbourhood nb = neighbourhood(p, w, b, pb, o, y, x);
          int32_t v = 0;
          if (rc.bit(&s->bit[kWvZero + lc * kWvContexts + nb.ctx])) {
            const bool negative = rc.bit(&s->bit[kWvSign + nb.sign_ctx]) != 0;
            uint32_t m = 0;
            ok = get_magnitude(rc, s, kWvMag + nb.ctx * kWvUnary, &m);
            v = negative ? -int32_t(m + 1) : int32_t(m + 1);
          }
          ok = ok && !rc.failed;
          p[size_t(b.y0 + y) * w + b.x0 + x] = v;
        }
    });
    if (!ok) return false;
    // Every symbol of the plane is known: add the gained prediction back (the
    // contexts needed the symbols until now), dequantise and invert the transform.
    const int64_t ll_step = ll_band_step(step_q4, kLLWeight[L], pw);
    for (uint32_t y = 0; y < lh; ++y)
      for (uint32_t x = 0; x < lw; ++x) {
        int32_t& v = p[size_t(y) * w + x];
        if (r && ll_gain && covered(*pred, h, w, L, y, x)) v = clamp_lift(int64_t(v) + gained(r[size_t(y) * w + x], ll_gain));
        v = dequantise(v, ll_step);
      }
    band_no = 0;
    for_each_high_band(h, w, L, [&](const Band& b, uint32_t o, uint32_t j, const Band*) {
      const int64_t st = band_step(step_q4, kBandWeight[j][o], pw);
      const uint32_t g = gains[band_no++];
      for (uint32_t y = 0; y < b.h; ++y)
        for (uint32_t x = 0; x < b.w; ++x) {
          const size_t i = size_t(b.y0 + y) * w + b.x0 + x;
          int32_t& v = p[i];
          if (g && covered(*pred, h, w, j, y, x)) v = clamp_lift(int64_t(v) + gained(r[i], g));
          v = dequantise(v, seam_step(st, b, y, x, seams));
        }
    });
    inverse_2d(p, h, w, L, scratch);
  }
  if (!rc.exhausted_exactly()) return false;
  store_planes(work, h, w, channels, out);
  return true;
}

bool valid_prediction(const WvPrediction& pred, uint32_t h, uint32_t w) {
  return pred.samples && pred.work && pred.vy0 < pred.vy1 && pred.vy1 <= h && pred.vx0 < pred.vx1 && pred.vx1 <= w;
}

}  // namespace

size_t wv_encode(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels,
                 uint32_t step_q4, const WvPriors& priors, WvState* s, int32_t* work, uint8_t* out, size_t cap,
                 WvCounts* counts, uint32_t seams) {
  const size_t raw = size_t(h) * w * channels;
  if (step_q4 == 0 || (channels != 1 && channels != 3) || cap < raw + 1) return 0;
  load_planes(samples, row_stride, h, w, channels, work);
  out[0] = kFormCoded;
  CountingEncoder e{WvRangeEncoder(out + 1, raw), s};  // a coded tile must be smaller than a stored one
  encode_planes(e, h, w, channels, step_q4, priors, counts, seams, work, nullptr);
  const size_t written = e.rc.finish();
  if (written) return written + 1;
  out[0] = kFormStored;  // incompressible at this step: the samples, exact
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (uint32_t c = 0; c < channels; ++c)
        out[1 + (size_t(y) * w + x) * channels + c] = samples[size_t(y) * row_stride + size_t(x) * channels + c];
  return raw + 1;
}

size_t wv_encode_predicted(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels,
                           uint32_t step_q4, const WvPriors& priors, WvState* s, int32_t* work,
                           const WvPrediction& pred, uint8_t* out, size_t cap, uint32_t seams) {
  if (step_q4 == 0 || (channels != 1 && channels != 3) || !valid_prediction(pred, h, w)) return 0;
  const uint32_t L = levels(h, w);
  predict_levels(pred, h, w, channels, L, step_q4, seams, work + size_t(h) * w * channels);
  load_planes(samples, row_stride, h, w, channels, work);
  CountingEncoder e{WvRangeEncoder(out, cap), s};
  encode_planes(e, h, w, channels, step_q4, priors, nullptr, seams, work, &pred);
  return e.rc.finish();
}

bool wv_decode(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t step_q4,
               const WvPriors& priors, WvState* s, int32_t* work, uint8_t* out, uint32_t seams) {
  const size_t raw = size_t(h) * w * channels;
  if (len < 1 || step_q4 == 0 || (channels != 1 && channels != 3)) return false;
  if (data[0] == kFormStored) {
    if (len != raw + 1) return false;
    for (size_t i = 0; i < raw; ++i) out[i] = data[1 + i];
    return true;
  }
  if (data[0] != kFormCoded || len > raw + 1) return false;
  WvRangeDecoder rc(data + 1, len - 1);
  if (!rc.start()) return false;
  return decode_planes(rc, h, w, channels, step_q4, priors, s, work, out, seams, nullptr);
}

bool wv_decode_predicted(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels,
                         uint32_t step_q4, const WvPriors& priors, WvState* s, int32_t* work,
                         const WvPrediction& pred, uint8_t* out, uint32_t seams) {
  if (step_q4 == 0 || (channels != 1 && channels != 3) || !valid_prediction(pred, h, w)) return false;
  if (len > size_t(h) * w * channels) return false;  // the encoder keeps only streams below a stored tile
  WvRangeDecoder rc(data, len);
  if (!rc.start()) return false;
  predict_levels(pred, h, w, channels, levels(h, w), step_q4, seams, work + size_t(h) * w * channels);
  return decode_planes(rc, h, w, channels, step_q4, priors, s, work, out, seams, &pred);
}

}  // namespace pymars
