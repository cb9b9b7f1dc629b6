// nearlossless.cpp - see nearlossless.h. The modelling follows ITU-T T.87 (JPEG-LS)
// regular mode for 8-bit samples; identifiers name its quantities (A, B, C, N, Q,
// MErrval, LIMIT, RANGE, qbpp). Written from the standard's description. The Arith
// coder (docs/bitstream.md §4.8) keeps that modelling and replaces the Golomb
// codes by a binary range coder of the LZMA kind (11-bit probabilities, carry
// propagation through a cached byte), written from its published description.
#include "nearlossless.h"

#include <cstring>

#include "range_coder.h"

namespace pymars {

namespace {

constexpr int32_t kReset = 64;
constexpr int32_t kLimit = 32;  // 2 * (bpp + max(8, bpp)) for 8-bit samples

// Floor division by 2 for negative values too (no reliance on >> of negatives).
inline int32_t half_floor(int32_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

struct Params {
  int32_t k, range, qbpp, t1, t2, t3;
  int32_t maxval;      // 2^depth - 1
  int32_t mid;         // 2^(depth - 1): the sample left of (0, 0)
  uint32_t cross_shift;  // (depth - 8) / 2: the cross class's deviation scale
  uint32_t depth_shift;  // depth - 8: to 8-bit units (the linear predictor's texture class)
  uint32_t max_all;    // largest |error| - 1 a decoder accepts
  uint32_t escape;     // Exp-Golomb prefix bins of the escape
  // 8-bit samples: quantise_gradient for every gradient -510..510 (the colour
  // difference planes reach twice the sample range), looked up instead of compared.
  int8_t gradient_class[1021];
};

inline int32_t clamp_range(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

inline int32_t quantise_gradient_compare(int32_t d, const Params& p);  // below

// T.87 C.2.4.1.1 default thresholds for MAXVAL = 2^depth - 1 and NEAR = k
// (FACTOR = (min(MAXVAL, 4095) + 128) >> 8). For depth 8 (FACTOR 1) they are
// 3 + 3k, 7 + 5k, 21 + 7k, the §4.7 values.
Params params(uint32_t k, uint32_t depth = 8) {
  Params p;
  p.k = int32_t(k);
  p.maxval = int32_t((1u << depth) - 1u);
  p.mid = int32_t(1u << (depth - 1));
  p.range = (p.maxval + 2 * p.k) / (2 * p.k + 1) + 1;
  p.qbpp = 0;
  while ((1 << p.qbpp) < p.range) ++p.qbpp;
  const int32_t factor = ((p.maxval < 4095 ? p.maxval : 4095) + 128) >> 8;
  p.t1 = clamp_range(factor * (3 - 2) + 2 + 3 * p.k, p.k + 1, p.maxval);
  p.t2 = clamp_range(factor * (7 - 3) + 3 + 5 * p.k, p.t1, p.maxval);
  p.t3 = clamp_range(factor * (21 - 4) + 4 + 7 * p.k, p.t2, p.maxval);
  p.cross_shift = (depth - 8) / 2;
  p.depth_shift = depth - 8;
  p.max_all = uint32_t(p.maxval);
  p.escape = depth == 8 ? kNlEscape : kNlEscapeWide;
  if (p.maxval == 255)
    for (int32_t d = -510; d <= 510; ++d) p.gradient_class[d + 510] = int8_t(quantise_gradient_compare(d, p));
  return p;
}

void reset(NlState* s, const Params& p) {
  int32_t a = (p.range + 32) / 64;
  if (a < 2) a = 2;
  for (uint32_t i = 0; i <= kNlContexts; ++i) {
    s->A[i] = a;
    s->B[i] = 0;
    s->C[i] = 0;
    s->N[i] = 1;
  }
}

inline int32_t quantise_gradient_compare(int32_t d, const Params& p) {
  if (d <= -p.t3) return -4;
  if (d <= -p.t2) return -3;
  if (d <= -p.t1) return -2;
  if (d < -p.k) return -1;
  if (d <= p.k) return 0;
  if (d < p.t1) return 1;
  if (d < p.t2) return 2;
  if (d < p.t3) return 3;
  return 4;
}

// The table covers the gradients of 8-bit samples; a colour plane with a gain above 1
// (x_c - S(g, x_{c-1}), g <= 2) spans -510..255, so its gradients reach +-765: those
// take the comparisons (found by fuzzing; the table read outside its bounds).
inline int32_t quantise_gradient(int32_t d, const Params& p) {
  return p.maxval == 255 && d >= -510 && d <= 510 ? p.gradient_class[d + 510] : quantise_gradient_compare(d, p);
}

inline int32_t clamp_sample(int32_t v, const Params& p) { return v < 0 ? 0 : (v > p.maxval ? p.maxval : v); }

// Neighbours a (left), b (above), c (above-left), d (above-right) of (y, x) in the
// reconstructed plane, with the tile's own edge rule (no samples outside the tile).
template <typename S>
__attribute__((always_inline)) inline void neighbours(const S* rec, size_t stride, uint32_t ch, uint32_t channels, uint32_t y, uint32_t x,
                       uint32_t w, int32_t mid, int32_t* a, int32_t* b, int32_t* c, int32_t* d) {
  auto at = [&](uint32_t yy, uint32_t xx) { return int32_t(rec[size_t(yy) * stride + size_t(xx) * channels + ch]); };
  if (y == 0) {
    *a = x ? at(0, x - 1) : mid;
    *b = *c = *d = *a;
    return;
  }
  *b = at(y - 1, x);
  *a = x ? at(y, x - 1) : *b;
  *c = x ? at(y - 1, x - 1) : *b;
  *d = x + 1 < w ? at(y - 1, x + 1) : *b;
}

// As selects, so that the branch-free run-ahead forms (predict_inside_plane) can use it too.
inline int32_t med(int32_t a, int32_t b, int32_t c) {
  const int32_t mx = a > b ? a : b, mn = a < b ? a : b;
  return c >= mx ? mn : (c <= mn ? mx : a + b - c);
}

// Arith2 form 3 (docs/bitstream.md §4.8, "Linear prediction"): channel 0 predicted by
// a linear combination of nine causal neighbours, with weights the encoder fits to the
// tile (least squares) and sends with it, instead of MED plus the LOCO-I bias
// correction. Raw sensor frames carry noise that MED's single-neighbour choices pass
// on (a + b - c triples its variance); a fitted average of more neighbours predicts
// through it. Three weight sets, one per texture class of the sample (below): smooth
// ground wants a wide average, edges and rocks a narrow one. Each weight multiplies a
// neighbour's difference to b (the sample above), so the prediction keeps the local
// level exactly whatever the weights.
// 4: RGB, form 2's gains, then weights for channel 0 and for the two colour planes (each
// predicted from its own nine neighbours, as channel 0 is).
constexpr uint8_t kFormLinear = 3, kFormGainsLinear = 4;
constexpr uint32_t kNlLinTaps = 9;     // neighbours (dy, dx) below
constexpr uint32_t kNlLinClasses = 3;  // texture classes, one weight set each
constexpr uint32_t kNlLinWeights = kNlLinTaps * kNlLinClasses;  // bytes after form byte 3
constexpr int32_t kNlLinShift = 6;     // weights in 1/64
constexpr int32_t kNlMaxWeight = 127;  // |w|: one signed byte each (-128 is never written)
constexpr int32_t kNlLinDy[kNlLinTaps] = {0, -1, -1, 0, -2, -1, -1, -2, -2};
constexpr int32_t kNlLinDx[kNlLinTaps] = {-1, -1, 1, -2, 0, -2, 2, -1, 1};
// Class thresholds on |d - b| + |b - c| + |c - a| in 8-bit units (12/16-bit samples
// shifted down by depth - 8), + 4k and + 8k.
constexpr int32_t kNlLinSmooth = 8, kNlLinEdge = 30;

// Texture class 0..2 of a sample for the linear predictor: its local gradient
// against two thresholds, which grow with k as the quantisation step does.
__attribute__((always_inline)) inline uint32_t linear_class(int32_t a, int32_t b, int32_t c, int32_t d,
                                                           const Params& p) {
  const int32_t g = ((d > b ? d - b : b - d) + (b > c ? b - c : c - b) + (c > a ? c - a : a - c)) >> p.depth_shift;
  return g < kNlLinSmooth + 4 * p.k ? 0u : (g < kNlLinEdge + 8 * p.k ? 1u : 2u);
}

// The predictor's form in the coding loop: per class the nine weights, then b's own
// weight 64 - (their sum), so that 64 b + sum w_i (n_i - b) is sum w_i n_i + w_b b.
constexpr uint32_t kNlLinStride = kNlLinTaps + 1;
constexpr uint32_t kNlLinExpanded = kNlLinStride * kNlLinClasses;  // one channel's expanded weights
void expand_weights(const int32_t* sent, int32_t* full) {
  for (uint32_t c = 0; c < kNlLinClasses; ++c) {
    int32_t sum = 0;
    for (uint32_t i = 0; i < kNlLinTaps; ++i) sum += full[c * kNlLinStride + i] = sent[c * kNlLinTaps + i];
    full[c * kNlLinStride + kNlLinTaps] = (1 << kNlLinShift) - sum;
  }
}

// Row and column of neighbour i of (y, x) on the tile's border: a neighbour outside moves
// to the nearest sample inside, and one on the current row at or right of x to x - 1.
inline size_t neighbour_at(uint32_t y, uint32_t, uint32_t, uint32_t i) {
  const int32_t yy = int32_t(y) + kNlLinDy[i];
  return size_t(yy < 0 ? 0 : yy);
}
inline size_t neighbour_column(uint32_t y, uint32_t x, uint32_t w, uint32_t i) {
  int32_t xx = int32_t(x) + kNlLinDx[i];
  if (xx < 0) xx = 0;
  if (xx >= int32_t(w)) xx = int32_t(w) - 1;
  if (int32_t(y) + kNlLinDy[i] == int32_t(y) && xx >= int32_t(x)) xx = int32_t(x) - 1;
  return size_t(xx);
}
// floor(s / 64) without >> of a negative value.
inline int32_t floor_weighted(int32_t s) {
  return s >= 0 ? s >> kNlLinShift : -((-s + (1 << kNlLinShift) - 1) >> kNlLinShift);
}

// floor((64 b + sum w_i (n_i - b) + 32) / 64) for (y, x) with y, x >= 1, in int32:
// |w_i| <= 127, |w_b| <= 64 + 9 x 127 and samples below 2^16 keep it below 2^28.
// Inside the tile's border (two rows and columns; two columns on the right) the nine
// neighbours are read directly; on it, a neighbour outside moves to the nearest sample
// inside (and one on the current row to the left one). `lin`: one class's expanded
// weights.
template <typename S>
__attribute__((always_inline)) inline int32_t linear_predict(const S* rec, size_t stride, uint32_t ch,
                                                            uint32_t channels, uint32_t y, uint32_t x, uint32_t w,
                                                            int32_t b, const int32_t* lin) {
  int32_t s = (1 << (kNlLinShift - 1)) + lin[kNlLinTaps] * b;
  if (y >= 2 && x >= 2 && x + 2 < w) {
    const S* r1 = rec + size_t(y - 1) * stride + size_t(x) * channels + ch;  // the row above, at x
    const S* r0 = r1 + stride;
    const S* r2 = r1 - stride;
    const ptrdiff_t c1 = channels, c2 = 2 * ptrdiff_t(channels);
    s += lin[0] * int32_t(r0[-c1]) + lin[1] * int32_t(r1[-c1]) + lin[2] * int32_t(r1[c1]) +
         lin[3] * int32_t(r0[-c2]) + lin[4] * int32_t(r2[0]) + lin[5] * int32_t(r1[-c2]) +
         lin[6] * int32_t(r1[c2]) + lin[7] * int32_t(r2[-c1]) + lin[8] * int32_t(r2[c1]);
  } else {
    for (uint32_t i = 0; i < kNlLinTaps; ++i)
      s += lin[i] * int32_t(rec[neighbour_at(y, x, w, i) * stride + neighbour_column(y, x, w, i) * channels + ch]);
  }
  return floor_weighted(s);
}

// Context index 1..364 (0 is the all-zero context) and its sign.
__attribute__((always_inline)) inline int32_t context(int32_t a, int32_t b, int32_t c, int32_t d, const Params& p,
                                                     int32_t* sign) {
  int32_t q1 = quantise_gradient(d - b, p), q2 = quantise_gradient(b - c, p), q3 = quantise_gradient(c - a, p);
  *sign = 1;
  if (q1 < 0 || (q1 == 0 && q2 < 0) || (q1 == 0 && q2 == 0 && q3 < 0)) {
    q1 = -q1;
    q2 = -q2;
    q3 = -q3;
    *sign = -1;
  }
  return 81 * q1 + 9 * q2 + q3;  // 0..364 after sign folding
}

// The smallest kg (at most 24) with N << kg >= A: the Golomb parameter of T.87
// A.5.1, from bit lengths instead of a loop (N << L, L = the difference of the
// bit lengths, has A's bit length, so it is A or more, or one doubling short).
__attribute__((always_inline)) inline int32_t golomb_k(const NlState* s, int32_t q) {
  // Without a branch (A and N follow the residuals, so a branch on them mispredicts often):
  // where N >= A the bit-length difference is <= 0 and N << 0 < A fails, so 0 as before.
  // (N >= 1; where A is 0 its bit length read as 1 still leaves d <= 0 and the test false:
  // the same kg, without a zero test.)
  const uint32_t n = uint32_t(s->N[q]), a = uint32_t(s->A[q]);
  const int32_t d = int32_t(bit_length_or_one(a)) - int32_t(bit_length_or_one(n));
  int32_t kg = d > 0 ? d : 0;
  kg += int32_t((n << kg) < a);
  return kg < 24 ? kg : 24;
}

__attribute__((always_inline)) inline void update(NlState* s, int32_t q, int32_t err, const Params& p) {
  s->B[q] += err * (2 * p.k + 1);
  s->A[q] += err < 0 ? -err : err;
  if (s->N[q] == kReset) {
    s->A[q] = s->A[q] / 2;  // A >= 0
    s->B[q] = half_floor(s->B[q]);
    s->N[q] = s->N[q] / 2;
  }
  s->N[q] += 1;
  if (s->B[q] <= -s->N[q]) {
    s->B[q] += s->N[q];
    if (s->C[q] > -128) --s->C[q];
    if (s->B[q] <= -s->N[q]) s->B[q] = -s->N[q] + 1;
  } else if (s->B[q] > 0) {
    s->B[q] -= s->N[q];
    if (s->C[q] < 127) ++s->C[q];
    if (s->B[q] > 0) s->B[q] = 0;
  }
}

// update() for a channel predicted with fitted weights and no bias correction: only the
// magnitude statistics (A, N) are read again (the activity class and the low bits), so B
// and C, which feed only the correction, are left alone.
__attribute__((always_inline)) inline void update_magnitude(NlState* s, int32_t q, int32_t err) {
  s->A[q] += err < 0 ? -err : err;
  if (s->N[q] == kReset) {
    s->A[q] = s->A[q] / 2;
    s->N[q] = s->N[q] / 2;
  }
  s->N[q] += 1;
}

struct BitWriter {
  uint8_t* out;
  size_t cap, pos = 0;
  uint32_t acc = 0, n = 0;
  bool failed = false;
  void put(uint32_t bits, uint32_t count) {  // count <= 24
    for (uint32_t i = count; i-- > 0;) {
      acc = (acc << 1) | ((bits >> i) & 1u);
      if (++n == 8) flush_byte();
    }
  }
  void flush_byte() {
    if (pos >= cap) failed = true;
    else out[pos++] = uint8_t(acc);
    acc = 0;
    n = 0;
  }
  void zeros(uint32_t count) {
    while (count--) put(0, 1);
  }
  size_t finish() {
    if (n) put(0, 8 - n);  // pad the last byte with zeros
    return failed ? 0 : pos;
  }
};

struct BitReader {
  const uint8_t* data;
  size_t len, pos = 0;
  uint32_t bit = 0;
  bool failed = false;
  uint32_t get1() {
    if (pos >= len) {
      failed = true;
      return 0;
    }
    const uint32_t v = (data[pos] >> (7 - bit)) & 1u;
    if (++bit == 8) {
      bit = 0;
      ++pos;
    }
    return v;
  }
  uint32_t get(uint32_t count) {
    uint32_t v = 0;
    while (count--) v = (v << 1) | get1();
    return v;
  }
};

// One sample's quantised error in its context: shared by encoder and decoder.
inline int32_t map_error(int32_t err, int32_t kg, const NlState* s, int32_t q, const Params& p) {
  const bool special = p.k == 0 && kg == 0 && 2 * s->B[q] <= -s->N[q];
  if (special) return err >= 0 ? 2 * err + 1 : -2 * (err + 1);
  return err >= 0 ? 2 * err : -2 * err - 1;
}

inline int32_t unmap_error(int32_t m, int32_t kg, const NlState* s, int32_t q, const Params& p) {
  const bool special = p.k == 0 && kg == 0 && 2 * s->B[q] <= -s->N[q];
  if (special) return (m & 1) ? (m - 1) / 2 : -(m / 2) - 1;
  return (m & 1) ? -((m + 1) / 2) : m / 2;
}

// Prediction, with the context's bias correction, for sample (y, x) of channel ch.
template <typename S>
__attribute__((always_inline)) inline int32_t predict(const S* rec, size_t stride, uint32_t ch, uint32_t channels, uint32_t y, uint32_t x,
                       uint32_t w, const NlState* s, const Params& p, int32_t* q, int32_t* sign,
                       const int32_t* lin = nullptr) {
  int32_t a, b, c, d;
  neighbours(rec, stride, ch, channels, y, x, w, p.mid, &a, &b, &c, &d);
  *q = context(a, b, c, d, p, sign);
  // Form 3: the first row and column keep MED (their neighbours are copies); no bias
  // correction (a least-squares prediction has no mean error to correct, and the
  // correction, tuned to MED, costs 0.3-0.5 % on the development groups).
  if (lin)
    return clamp_sample(y && x ? linear_predict(rec, stride, ch, channels, y, x, w, b,
                                                lin + kNlLinStride * linear_class(a, b, c, d, p))
                               : med(a, b, c), p);
  return clamp_sample(med(a, b, c) + *sign * s->C[*q], p);
}

inline uint32_t cross_class(int32_t previous, int32_t previous_med, const Params& p);

// g/16 x v, rounded (v >= 0, 0 <= g <= kNlMaxGain): the previous channel's
// contribution to a colour-difference plane. g = 16 is v itself.
inline int32_t scaled(int32_t g, int32_t v) { return (g * v + 8) >> 4; }

// Form 4: the linear prediction of a colour plane x_ch - S(g, x_{ch-1}) at (y, x), y, x >= 1,
// from the plane's values at channel 0's nine neighbour positions (moved inside the tile as
// there); `b` is the plane's value above, `lin` one class's expanded weights.
template <typename S>
inline int32_t plane_predict(const S* rec, size_t stride, uint32_t ch, uint32_t channels, uint32_t y, uint32_t x,
                             uint32_t w, int32_t g, int32_t b, const int32_t* lin) {
  int32_t s = (1 << (kNlLinShift - 1)) + lin[kNlLinTaps] * b;
  if (y >= 2 && x >= 2 && x + 2 < w) {
    // Inside the border the nine neighbours are where kNlLinDy/Dx say (no moving): read
    // them straight from the rows, as linear_predict does for channel 0.
    const S* at = rec + size_t(y) * stride + size_t(x) * channels + ch;
    const ptrdiff_t row = ptrdiff_t(stride), col = ptrdiff_t(channels);
    for (uint32_t i = 0; i < kNlLinTaps; ++i) {
      const S* v = at + kNlLinDy[i] * row + kNlLinDx[i] * col;
      s += lin[i] * (int32_t(v[0]) - scaled(g, int32_t(v[-1])));
    }
    return floor_weighted(s);
  }
  for (uint32_t i = 0; i < kNlLinTaps; ++i) {
    const S* v = rec + neighbour_at(y, x, w, i) * stride + neighbour_column(y, x, w, i) * channels + ch;
    s += lin[i] * (int32_t(v[0]) - scaled(g, int32_t(v[-1])));
  }
  return floor_weighted(s);
}

// Arith prediction of channel ch > 0: the channel's difference to the previous
// channel is what is predicted (MED and gradient contexts on the difference plane
// of the reconstructions), then the previous channel's reconstruction at (y, x)
// is added back. Colour channels of a Mars scene share edges and texture, so the
// difference plane is smooth; the error stays a sample-domain error, so every
// channel keeps its +-k bound. Channel 0 (and gray) is predicted as in §4.7.
//
// V2 (Arith2, §4.8 "Arith2") differs in two ways:
//   * no LOCO-I bias correction below k = kNlChromaBiasFromK: colour difference
//     planes of real frames are piecewise flat (chroma that is smooth or was
//     subsampled), and a correction moves the prediction off the exact value that
//     MED usually finds; at larger k the quantised plane is no longer flat and the
//     correction pays again (measured, docs/base-v2.md);
//   * the previous-channel class of channel 2 is its predecessor's difference-plane
//     deviation (how hard channel 1 was to predict where it was coded), not the
//     sample-domain one.
template <bool V2, typename S>
__attribute__((always_inline)) inline int32_t predict_ac(const S* rec, size_t stride, uint32_t ch, uint32_t channels, uint32_t y, uint32_t x,
                          uint32_t w, const NlState* s, const Params& p, int32_t* q, int32_t* sign, uint32_t* cross,
                          const int32_t* gain, const int32_t* lin, const int32_t* plane_lin = nullptr) {
  if (ch == 0) {
    *cross = 0;
    return predict(rec, stride, ch, channels, y, x, w, s, p, q, sign, lin);
  }
  int32_t a, b, c, d, a0, b0, c0, d0;
  neighbours(rec, stride, ch, channels, y, x, w, p.mid, &a, &b, &c, &d);
  neighbours(rec, stride, ch - 1, channels, y, x, w, p.mid, &a0, &b0, &c0, &d0);
  const size_t at = size_t(y) * stride + size_t(x) * channels;
  const int32_t prev = rec[at + ch - 1];
  if (V2 && ch >= 2) {
    int32_t a1, b1, c1, d1;
    neighbours(rec, stride, ch - 2, channels, y, x, w, p.mid, &a1, &b1, &c1, &d1);
    const int32_t g = gain[ch - 2];
    *cross = cross_class(prev - scaled(g, int32_t(rec[at + ch - 2])),
                         med(a0 - scaled(g, a1), b0 - scaled(g, b1), c0 - scaled(g, c1)), p);
  } else {
    *cross = cross_class(prev, med(a0, b0, c0), p);  // from the neighbours just read, not a second fetch
  }
  // The plane predicted: channel ch minus (gain x channel ch - 1); gain 1 (16/16) but
  // in Arith2 tiles of form 2.
  const int32_t g = V2 ? gain[ch - 1] : 16;
  const int32_t base = scaled(g, prev);
  a -= scaled(g, a0);
  b -= scaled(g, b0);
  c -= scaled(g, c0);
  d -= scaled(g, d0);
  *q = context(a, b, c, d, p, sign);
  // Form 4: the plane's own fitted weights (channel 0's neighbour rule), no bias correction.
  if (plane_lin)
    return clamp_sample(base + (y && x ? plane_predict(rec, stride, ch, channels, y, x, w, g, b,
                                                       plane_lin + kNlLinStride * linear_class(a, b, c, d, p))
                                       : med(a, b, c)), p);
  const int32_t bias = (!V2 || p.k >= int32_t(kNlChromaBiasFromK)) ? *sign * s->C[*q] : 0;
  return clamp_sample(base + med(a, b, c) + bias, p);
}

// Quantised error -> modulo-RANGE representative in [-RANGE/2, (RANGE-1)/2].
inline int32_t modulo_range(int32_t e, const Params& p) {
  if (e < 0) e += p.range;
  if (e >= (p.range + 1) / 2) e -= p.range;
  return e;
}

inline int32_t reconstruct(int32_t px, int32_t sign, int32_t err, const Params& p) {
  int32_t v = px + sign * err * (2 * p.k + 1);
  // Wrap-around of the modular error (T.87 A.4.4), then clamp.
  const int32_t span = p.range * (2 * p.k + 1);
  if (v < -p.k) v += span;
  else if (v > p.maxval + p.k) v -= span;
  return clamp_sample(v, p);
}

size_t golomb_encode(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels,
                     uint32_t k, NlState* s, uint8_t* out, size_t cap, uint8_t* recon) {
  const Params p = params(k);
  BitWriter bw{out, cap};
  const size_t rstride = size_t(w) * channels;
  for (uint32_t ch = 0; ch < channels; ++ch) {
    reset(s, p);
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t x = 0; x < w; ++x) {
        int32_t q, sign;
        const int32_t px = predict(recon, rstride, ch, channels, y, x, w, s, p, &q, &sign);
        const int32_t xv = samples[size_t(y) * row_stride + size_t(x) * channels + ch];
        int32_t err = sign * (xv - px);
        if (p.k) err = err > 0 ? (err + p.k) / (2 * p.k + 1) : -((p.k - err) / (2 * p.k + 1));
        const int32_t rx = reconstruct(px, sign, err, p);
        recon[size_t(y) * rstride + size_t(x) * channels + ch] = uint8_t(rx);
        err = modulo_range(err, p);
        const int32_t kg = golomb_k(s, q);
        const uint32_t m = uint32_t(map_error(err, kg, s, q, p));
        const uint32_t hi = m >> kg;
        if (hi < uint32_t(kLimit - p.qbpp - 1)) {
          bw.zeros(hi);
          bw.put(1, 1);
          bw.put(m & ((1u << kg) - 1u), uint32_t(kg));
        } else {
          bw.zeros(uint32_t(kLimit - p.qbpp - 1));
          bw.put(1, 1);
          bw.put(m - 1, uint32_t(p.qbpp));
        }
        update(s, q, err, p);
      }
  }
  return bw.finish();
}

bool golomb_decode(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                   NlState* s, uint8_t* out) {
  const Params p = params(k);
  BitReader br{data, len};
  const size_t stride = size_t(w) * channels;
  for (uint32_t ch = 0; ch < channels; ++ch) {
    reset(s, p);
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t x = 0; x < w; ++x) {
        int32_t q, sign;
        const int32_t px = predict(out, stride, ch, channels, y, x, w, s, p, &q, &sign);
        const int32_t kg = golomb_k(s, q);
        uint32_t hi = 0;
        while (!br.get1()) {
          if (br.failed || ++hi > uint32_t(kLimit)) return false;
        }
        uint32_t m;
        if (hi < uint32_t(kLimit - p.qbpp - 1)) {
          m = (hi << kg) | br.get(uint32_t(kg));
        } else if (hi == uint32_t(kLimit - p.qbpp - 1)) {
          m = br.get(uint32_t(p.qbpp)) + 1;
        } else {
          return false;
        }
        if (br.failed || m >= uint32_t(2 * p.range)) return false;
        const int32_t err = unmap_error(int32_t(m), kg, s, q, p);
        out[size_t(y) * stride + size_t(x) * channels + ch] = uint8_t(reconstruct(px, sign, err, p));
        update(s, q, err, p);
      }
  }
  // Only the final byte's zero padding may follow.
  if (br.bit) {
    const uint32_t rest = br.get(8 - br.bit);
    if (rest) return false;
  }
  return br.pos == len;
}


// ---- Arith (§4.8) -----------------------------------------------------------

// §4.8's coder: 11-bit probabilities kept inside [32, 2016], so that neither
// outcome ever costs more than ~6 bits; adaptation rates 1/16 and 1/128.
using NlRangeEncoder = RangeEncoder<11, 32, 2016, 4, 7>;
using NlRangeDecoder = RangeDecoder<11, 32, 2016, 4, 7>;

void reset_arith(NlState* s) {
  const NlProb half = kAdaptiveHalf;
  for (uint32_t i = 0; i < kNlAcContexts; ++i) {
    s->p_zero[i] = s->p_sign[i] = half;
    for (uint32_t j = 0; j < kNlUnary; ++j) s->p_mag[i][j] = half;
  }
  for (uint32_t i = 0; i < kNlActivity; ++i) {
    for (uint32_t j = 0; j < kNlEscapeWide; ++j) s->p_esc[i][j] = half;
    for (uint32_t j = 0; j < 3; ++j) s->p_low[i][j] = half;
  }
}

// Arith2: the gradient-context probabilities of one channel from the priors of its
// kind and k class (1/2 without priors).
void reset_q(NlState* s, const NlPriors& priors, uint32_t kind, uint32_t k) {
  if (!priors.table) {
    for (uint32_t c = 0; c < kNlQContexts; ++c)
      for (uint32_t j = 0; j < kNlQBins; ++j) s->p_q[c][j] = kAdaptiveHalf;
    return;
  }
  const uint32_t kk = kind < priors.kinds ? kind : priors.kinds - 1;
  const uint16_t* t = priors.table + (size_t(kk) * kNlKClasses + nl_k_class(k)) * kNlQContexts * kNlQBins;
  for (uint32_t c = 0; c < kNlQContexts; ++c)
    for (uint32_t j = 0; j < kNlQBins; ++j) {
      const uint16_t v = t[c * kNlQBins + j];
      s->p_q[c][j] = AdaptiveBit{v, v};
    }
}

// Low bits of a magnitude, sent below its unary part: where the context's errors
// are large (lossless on texture) a unary code of the whole magnitude would be
// long, so, as a Golomb code does, the Golomb k - kNlShiftBelow lowest bits are
// split off; the top one of them is modelled, the others are sent as they are.
__attribute__((always_inline)) inline uint32_t low_bits(const NlState* s, int32_t q) {
  const int32_t kg = golomb_k(s, q) - kNlShiftBelow;
  return kg > 0 ? uint32_t(kg) : 0u;
}

// Activity class 0..kNlActivity-1: log2 of 8 x the context's mean absolute error.
// bit_length(8A / N) is the smallest m with N << m > 8A: found from bit lengths,
// without the division (the same integer on every CPU).
__attribute__((always_inline)) inline uint32_t activity(const NlState* s, int32_t q) {
  // Without a branch, as golomb_k: where N > 8A the difference is <= 0 and the test fails.
  const uint32_t v = 8u * uint32_t(s->A[q]), n = uint32_t(s->N[q]);
  const int32_t d = int32_t(bit_length_or_one(v)) - int32_t(bit_length_or_one(n));  // (as golomb_k's)
  uint32_t a = d > 0 ? uint32_t(d) : 0u;
  a += uint32_t((n << a) <= v);
  return a < kNlActivity ? a : kNlActivity - 1;
}

// The previous channel's local prediction error at (y, x), in units of 2k + 1,
// as a class 0..2 (0 for the first channel). Colour channels of a Mars scene share
// their edges and texture: where the previous channel was hard to predict, this
// one is too.
inline uint32_t cross_class(int32_t previous, int32_t previous_med, const Params& p) {
  int32_t dev = previous - previous_med;
  if (dev < 0) dev = -dev;
  dev >>= p.cross_shift;  // 0 for 8-bit samples
  const int32_t u = p.k ? (dev + p.k) / (2 * p.k + 1) : dev;
  return u >= 2 ? 2u : uint32_t(u);
}

inline uint32_t ac_context(uint32_t act, int32_t q, uint32_t cross) {
  return (act * 2 + (q == 0 ? 1u : 0u)) * kNlCross + cross;
}

// Form byte of an Arith payload: 0 = range-coded, 1 = the samples stored raw.
constexpr uint8_t kFormCoded = 0, kFormStored = 1;
// Arith2, RGB: coded, with the gains of channels 1 and 2 on their predecessors in
// the two bytes after the form byte (16 = 1: form 0).
constexpr uint8_t kFormGains = 2;
constexpr int32_t kNlUnitGain = 16, kNlMaxGain = 32;

// Stored form: one byte per 8-bit sample; two (little-endian) per 12/16-bit sample.
inline void store_sample(uint8_t* out, size_t i, uint8_t v) { out[i] = v; }
inline void store_sample(uint8_t* out, size_t i, uint16_t v) {
  out[2 * i] = uint8_t(v & 0xFF);
  out[2 * i + 1] = uint8_t(v >> 8);
}
inline void load_sample(const uint8_t* in, size_t i, uint8_t* v) { *v = in[i]; }
inline void load_sample(const uint8_t* in, size_t i, uint16_t* v) { *v = uint16_t(in[2 * i] | (in[2 * i + 1] << 8)); }

// Lossless channel 0 of a form 3/4 tile: its prediction, context and sign at (y, x)
// depend only on the original samples (the reconstruction is them), so a run of a row's
// samples is worked out ahead of its coding (the loop then holds only the coder's serial
// state). This is `predict` for the tile's inside (y >= 2, 2 <= x < w - 2) read
// straight from the rows; the border takes `predict` itself on the samples. Same
// numbers as the per-sample loop, so the same bytes. A run is a whole row of the default
// 256-sample tile: each run-ahead call sets up its weights and bounds (about 1,400
// instructions) and ends in a tail the vector loop does not cover, so runs of 128 cost the
// gray encoder 4 % (on the stack: 3 KB of run results, errors, contexts and cross classes,
// and the rows an RGB run copies out, at most 9 x (kNlAhead + 4) samples: 4.7 KB at 16 bits).
constexpr uint32_t kNlAhead = 256;

// What the branch-free run-ahead forms (predict_inside_gray, predict_inside_plane) share: the
// per-sample functions' arithmetic with selects for their branches, on values copied out of
// Params (locals, so that no store of a lane can alias them), hence the same numbers.
struct LaneParams {
  int32_t k, t1, t2, t3, maxval, range, smooth, edge;
  uint32_t depth_shift, cross_shift;
  explicit LaneParams(const Params& p)
      : k(p.k), t1(p.t1), t2(p.t2), t3(p.t3), maxval(p.maxval), range(p.range), smooth(kNlLinSmooth + 4 * p.k),
        edge(kNlLinEdge + 8 * p.k), depth_shift(p.depth_shift), cross_shift(p.cross_shift) {}
  // quantise_gradient as comparisons.
  int32_t quantise(int32_t g) const {
    return int32_t(g > k) + int32_t(g >= t1) + int32_t(g >= t2) + int32_t(g >= t3) - int32_t(g < -k) -
           int32_t(g <= -t1) - int32_t(g <= -t2) - int32_t(g <= -t3);
  }
  // linear_class from the gradients the context quantises: d - b, b - c, c - a.
  int32_t linear_class(int32_t g1, int32_t g2, int32_t g3) const {
    const int32_t g = ((g1 < 0 ? -g1 : g1) + (g2 < 0 ? -g2 : g2) + (g3 < 0 ? -g3 : g3)) >> depth_shift;
    return int32_t(g >= smooth) + int32_t(g >= edge);
  }
  // The coded error of sample v predicted as px: px clamped, the sign fold, modulo_range.
  int32_t error(int32_t v, int32_t px, int32_t sign) const {
    px = px < 0 ? 0 : (px > maxval ? maxval : px);
    int32_t e = sign * (v - px);
    e = e < 0 ? e + range : e;
    return e >= (range + 1) / 2 ? e - range : e;
  }
};
// sample(i) for i in 0..n-1, as blocks of a fixed 32 (whole vector steps, no remainder loop
// per call): the last block ends at n and may overlap the one before it, whose samples are
// then worked out and written again, to the same values (the run-ahead lanes are
// independent). The remainder loop GCC makes for a variable count ran two samples at a time
// and cost about as much as the vector part (gray inside: 60 -> 36 instructions per pixel).
template <typename Sample>
__attribute__((always_inline)) inline void in_blocks(uint32_t n, Sample sample) {
  constexpr ptrdiff_t kBlock = 32;
  const ptrdiff_t m = ptrdiff_t(n);
  if (m < kBlock) {
    for (ptrdiff_t i = 0; i < m; ++i) sample(i);
    return;
  }
  for (ptrdiff_t i0 = 0;; i0 += kBlock) {
    if (i0 + kBlock > m) i0 = m - kBlock;
    for (ptrdiff_t i = i0; i < i0 + kBlock; ++i) sample(i);
    if (i0 + kBlock == m) break;
  }
}

// A tile's expanded weights with the texture class chosen by a select.
struct ClassWeights {
  int32_t w[kNlLinStride][kNlLinClasses];
  explicit ClassWeights(const int32_t* lin) {
    for (uint32_t j = 0; j < kNlLinStride; ++j)
      for (uint32_t c = 0; c < kNlLinClasses; ++c) w[j][c] = lin[c * kNlLinStride + j];
  }
  int32_t operator()(uint32_t j, int32_t cls) const { return cls == 0 ? w[j][0] : (cls == 1 ? w[j][1] : w[j][2]); }
};
constexpr int32_t kNoWeights[kNlLinExpanded] = {};  // a MED plane's (ClassWeights unread)

// The inside of a gray row (contiguous samples) without a branch: the gradient quantiser
// as comparisons, the sign fold as the sign of 81 q1 + 9 q2 + q3 (|9 q2 + q3| < 81,
// |q3| < 9), the class as a choice of weights. Lanes are independent integer arithmetic,
// so vector code (x86-64: an AVX2 clone where the CPU has one) gives the per-sample
// loop's numbers.
template <typename S>
__attribute__((always_inline)) inline void predict_inside_gray(const S* __restrict t0, size_t row_stride, uint32_t n,
                                                               const Params& params, const int32_t* lin,
                                                               int32_t* __restrict err_out, int32_t* __restrict q_out) {
  const S* __restrict t1 = t0 - row_stride;
  const S* __restrict t2 = t1 - row_stride;
  const LaneParams p(params);
  const ClassWeights weight(lin);
  auto sample = [&](ptrdiff_t i) __attribute__((always_inline)) {
    const int32_t a = t0[i - 1], b = t1[i], c = t1[i - 1], d = t1[i + 1];
    const int32_t g1 = d - b, g2 = b - c, g3 = c - a;
    const int32_t v = 81 * p.quantise(g1) + 9 * p.quantise(g2) + p.quantise(g3);
    const int32_t cls = p.linear_class(g1, g2, g3);
    const int32_t sum = (1 << (kNlLinShift - 1)) + weight(kNlLinTaps, cls) * b + weight(0, cls) * a +
                        weight(1, cls) * c + weight(2, cls) * d + weight(3, cls) * int32_t(t0[i - 2]) +
                        weight(4, cls) * int32_t(t2[i]) + weight(5, cls) * int32_t(t1[i - 2]) +
                        weight(6, cls) * int32_t(t1[i + 2]) + weight(7, cls) * int32_t(t2[i - 1]) +
                        weight(8, cls) * int32_t(t2[i + 1]);
    // floor(sum / 64) by a shift of a non-negative value: |sum| < 2^28 (linear_predict).
    const int32_t px = ((sum + (1 << 30)) >> kNlLinShift) - (1 << (30 - kNlLinShift));
    err_out[i] = p.error(t0[i], px, v < 0 ? -1 : 1);
    q_out[i] = v < 0 ? -v : v;
  };
  in_blocks(n, sample);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYMARS_NO_CLONES)
#define PYMARS_NL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PYMARS_NL_CLONES
#endif
// The branch-free inside and the column fits pay where they become vector code; a CPU
// without a vector unit (a RAD750's PowerPC 750, the scalar reference build) runs fewer
// instructions with the per-sample branches of `predict` and the per-sample int64 sums of
// the fits: 786 instructions per pixel on the dev_navcam_pds tiles in the scalar build
// against 901 with the vector forms (RGB 3,997 against 4,173).
#if !defined(PYMARS_NO_CLONES) && (defined(__SSE2__) || defined(__ARM_NEON) || defined(__aarch64__) || \
                                   defined(__ALTIVEC__))
constexpr bool kNlVectorUnit = true;
#else
constexpr bool kNlVectorUnit = false;
#endif
PYMARS_NL_CLONES __attribute__((noinline, optimize("vect-cost-model=dynamic"))) void predict_inside_gray8(
    const uint8_t* __restrict t0, size_t row_stride, uint32_t n, const Params& p, const int32_t* lin,
    int32_t* __restrict err_out, int32_t* __restrict q_out) {
  predict_inside_gray(t0, row_stride, n, p, lin, err_out, q_out);
}
PYMARS_NL_CLONES __attribute__((noinline, optimize("vect-cost-model=dynamic"))) void predict_inside_gray16(
    const uint16_t* __restrict t0, size_t row_stride, uint32_t n, const Params& p, const int32_t* lin,
    int32_t* __restrict err_out, int32_t* __restrict q_out) {
  predict_inside_gray(t0, row_stride, n, p, lin, err_out, q_out);
}
inline void predict_inside(const uint8_t* t0, size_t row_stride, uint32_t n, const Params& p, const int32_t* lin,
                           int32_t* err_out, int32_t* q_out) {
  predict_inside_gray8(t0, row_stride, n, p, lin, err_out, q_out);
}
inline void predict_inside(const uint16_t* t0, size_t row_stride, uint32_t n, const Params& p, const int32_t* lin,
                           int32_t* err_out, int32_t* q_out) {
  predict_inside_gray16(t0, row_stride, n, p, lin, err_out, q_out);
}

template <typename S>
inline void predict_ahead(const S* samples, size_t row_stride, uint32_t channels, uint32_t y, uint32_t x0,
                          uint32_t x1, uint32_t w, const NlState* s, const Params& p, const int32_t* lin,
                          int32_t* err_out, int32_t* q_out) {
  const S* r0 = samples + size_t(y) * row_stride;  // this row, channel 0
  // `predict` on the samples themselves; inside the tile its four neighbours are read
  // straight from the rows (no edge rule), then its context and linear prediction.
  const ptrdiff_t c1 = channels;
  auto one_by_one = [&](uint32_t xa, uint32_t xb) {
    for (uint32_t x = xa; x < xb; ++x) {
      int32_t q, sign, px;
      if (y >= 2 && x >= 2 && x + 2 < w) {
        const S* t0 = r0 + ptrdiff_t(x) * c1;
        const S* t1 = t0 - row_stride;
        const int32_t a = t0[-c1], b = t1[0], c = t1[-c1], d = t1[c1];
        q = context(a, b, c, d, p, &sign);
        px = clamp_sample(linear_predict(samples, row_stride, 0, channels, y, x, w, b,
                                         lin + kNlLinStride * linear_class(a, b, c, d, p)), p);
      } else {
        px = predict(samples, row_stride, 0, channels, y, x, w, s, p, &q, &sign, lin);
      }
      err_out[x - x0] = modulo_range(sign * (int32_t(r0[size_t(x) * channels]) - px), p);
      q_out[x - x0] = q;
    }
  };
  const uint32_t xs = x0 > 2 ? x0 : 2, xe = x1 + 2 < w ? x1 : (w > 2 ? w - 2 : 0);
  if (kNlVectorUnit && channels == 1 && y >= 2 && xs < xe) {  // the border columns one by one, the inside at once
    one_by_one(x0, xs);
    predict_inside(r0 + xs, row_stride, xe - xs, p, lin, err_out + (xs - x0), q_out + (xs - x0));
    one_by_one(xe, x1);
  } else if (kNlVectorUnit && y >= 2 && xs < xe) {
    // Interleaved channels: channel 0 of the three rows the inside reads (x from xs - 2 to
    // xe + 2) copied into contiguous rows first, so that the gray vector form serves.
    const uint32_t len = xe - xs + 4;
    S rows[3 * (kNlAhead + 4)];
    for (uint32_t r = 0; r < 3; ++r) {
      const S* src = r0 - size_t(2 - r) * row_stride + size_t(xs - 2) * channels;
      for (uint32_t i = 0; i < len; ++i) rows[r * len + i] = src[size_t(i) * channels];
    }
    one_by_one(x0, xs);
    predict_inside(rows + 2 * len + 2, len, xe - xs, p, lin, err_out + (xs - x0), q_out + (xs - x0));
    one_by_one(xe, x1);
  } else {
    one_by_one(x0, x1);
  }
}

// Lossless colour plane ch (1 or 2) of a form 2 or 3 RGB tile, inside (y >= 1, 1 <= x <
// w - 1): `predict_ac`'s numbers (MED on the plane x_ch - S(g, x_ch-1), no bias correction
// below kNlChromaBiasFromK, the previous channel's class) without a branch, on contiguous
// copies of the rows: cur/up channel ch at rows y and y - 1, pcur/pup channel ch - 1, and
// for ch = 2 scur/sup channel 0 (its plane deviation gives channel 2's class).
template <bool Linear, typename S>
__attribute__((always_inline)) inline void predict_inside_plane(
    const S* __restrict cur, const S* __restrict up, const S* __restrict pcur, const S* __restrict pup,
    const S* __restrict scur, const S* __restrict sup, const S* __restrict up2, const S* __restrict pup2,
    const int32_t* plin, uint32_t n, int32_t g, int32_t g0, const Params& params, int32_t* __restrict err_out,
    int32_t* __restrict q_out, int32_t* __restrict cross_out) {
  const LaneParams p(params);
  const ClassWeights weight(Linear ? plin : kNoWeights);
  // The plane's value from a sample and its previous channel's (values, not pointers: GCC keeps
  // the rows' __restrict only on direct indexing, and vectorises only then).
  auto pl = [g](int32_t v, int32_t prev) { return v - scaled(g, prev); };
  auto pl0 = [g0](int32_t v, int32_t prev) { return v - scaled(g0, prev); };
  auto sample = [&](ptrdiff_t i) __attribute__((always_inline)) {
    const int32_t a = pl(cur[i - 1], pcur[i - 1]), b = pl(up[i], pup[i]);
    const int32_t c = pl(up[i - 1], pup[i - 1]), d = pl(up[i + 1], pup[i + 1]);
    const int32_t g1 = d - b, g2 = b - c, g3 = c - a;
    const int32_t v = 81 * p.quantise(g1) + 9 * p.quantise(g2) + p.quantise(g3);
    int32_t pred;
    if constexpr (Linear) {  // plane_predict inside the border
      const int32_t cls = p.linear_class(g1, g2, g3);
      const int32_t sum = (1 << (kNlLinShift - 1)) + weight(kNlLinTaps, cls) * b + weight(0, cls) * a +
                          weight(1, cls) * c + weight(2, cls) * d + weight(3, cls) * pl(cur[i - 2], pcur[i - 2]) +
                          weight(4, cls) * pl(up2[i], pup2[i]) + weight(5, cls) * pl(up[i - 2], pup[i - 2]) +
                          weight(6, cls) * pl(up[i + 2], pup[i + 2]) + weight(7, cls) * pl(up2[i - 1], pup2[i - 1]) +
                          weight(8, cls) * pl(up2[i + 1], pup2[i + 1]);
      pred = floor_weighted(sum);
    } else {
      pred = med(a, b, c);
    }
    err_out[i] = p.error(cur[i], scaled(g, int32_t(pcur[i])) + pred, v < 0 ? -1 : 1);
    q_out[i] = v < 0 ? -v : v;
    // The class of the previous channel's error where it was coded (cross_class at k = 0).
    int32_t dev = scur ? pl0(pcur[i], scur[i]) -
                             med(pl0(pcur[i - 1], scur[i - 1]), pl0(pup[i], sup[i]), pl0(pup[i - 1], sup[i - 1]))
                       : int32_t(pcur[i]) - med(pcur[i - 1], pup[i], pup[i - 1]);
    dev = (dev < 0 ? -dev : dev) >> p.cross_shift;
    cross_out[i] = dev >= 2 ? 2 : dev;
  };
  in_blocks(n, sample);
}
// One clone per sample type and predictor (MED: forms 2 and 3; fitted weights: form 4). The
// test of scur is taken once, outside the loop: each call below is the loop for one case.
#define PYMARS_PLANE_WRAPPER(NAME, S, LINEAR)                                                                    \
  PYMARS_NL_CLONES __attribute__((noinline, optimize("vect-cost-model=dynamic"))) void NAME(                     \
      const S* cur, const S* up, const S* pcur, const S* pup, const S* scur, const S* sup, const S* up2,          \
      const S* pup2, const int32_t* plin, uint32_t n, int32_t g, int32_t g0, const Params& p, int32_t* e,         \
      int32_t* q, int32_t* c) {                                                                                    \
    if (scur) predict_inside_plane<LINEAR>(cur, up, pcur, pup, scur, sup, up2, pup2, plin, n, g, g0, p, e, q, c); \
    else predict_inside_plane<LINEAR, S>(cur, up, pcur, pup, nullptr, nullptr, up2, pup2, plin, n, g, g0, p, e, q, c); \
  }
PYMARS_PLANE_WRAPPER(predict_inside_plane8_med, uint8_t, false)
PYMARS_PLANE_WRAPPER(predict_inside_plane8_lin, uint8_t, true)
PYMARS_PLANE_WRAPPER(predict_inside_plane16_med, uint16_t, false)
PYMARS_PLANE_WRAPPER(predict_inside_plane16_lin, uint16_t, true)
#undef PYMARS_PLANE_WRAPPER
inline void predict_inside_plane_any(const uint8_t* cur, const uint8_t* up, const uint8_t* pcur, const uint8_t* pup,
                                     const uint8_t* scur, const uint8_t* sup, const uint8_t* up2, const uint8_t* pup2,
                                     const int32_t* plin, uint32_t n, int32_t g, int32_t g0, const Params& p,
                                     int32_t* e, int32_t* q, int32_t* c) {
  if (plin) predict_inside_plane8_lin(cur, up, pcur, pup, scur, sup, up2, pup2, plin, n, g, g0, p, e, q, c);
  else predict_inside_plane8_med(cur, up, pcur, pup, scur, sup, up2, pup2, plin, n, g, g0, p, e, q, c);
}
inline void predict_inside_plane_any(const uint16_t* cur, const uint16_t* up, const uint16_t* pcur,
                                     const uint16_t* pup, const uint16_t* scur, const uint16_t* sup,
                                     const uint16_t* up2, const uint16_t* pup2, const int32_t* plin, uint32_t n,
                                     int32_t g, int32_t g0, const Params& p, int32_t* e, int32_t* q, int32_t* c) {
  if (plin) predict_inside_plane16_lin(cur, up, pcur, pup, scur, sup, up2, pup2, plin, n, g, g0, p, e, q, c);
  else predict_inside_plane16_med(cur, up, pcur, pup, scur, sup, up2, pup2, plin, n, g, g0, p, e, q, c);
}

// Lossless colour plane ch of an RGB tile, a run of row y ahead of its coding: the border by
// `predict_ac` on the samples (the reconstruction here), the inside by predict_inside_plane on
// the channels' rows copied out (at most kNlAhead + 4 samples per row). `plane_lin`: form 4's expanded
// weights of this plane (its inside starts at y = 2, x = 2), else null (MED: y, x >= 1).
template <bool V2, typename S>
inline void plane_ahead(const S* samples, size_t row_stride, uint32_t ch, uint32_t y, uint32_t x0, uint32_t x1,
                        uint32_t w, const NlState* s, const Params& p, const int32_t* gain, const int32_t* lin,
                        const int32_t* plane_lin, int32_t* err_out, int32_t* q_out, int32_t* cross_out) {
  auto one_by_one = [&](uint32_t xa, uint32_t xb) {
    for (uint32_t x = xa; x < xb; ++x) {
      int32_t q, sign;
      uint32_t cross;
      const int32_t px =
          predict_ac<V2>(samples, row_stride, ch, 3, y, x, w, s, p, &q, &sign, &cross, gain, lin, plane_lin);
      err_out[x - x0] = modulo_range(sign * (int32_t(samples[size_t(y) * row_stride + size_t(x) * 3 + ch]) - px), p);
      q_out[x - x0] = q;
      cross_out[x - x0] = int32_t(cross);
    }
  };
  const uint32_t m = plane_lin ? 2 : 1;  // the border's width
  const uint32_t xs = x0 > m ? x0 : m, xe = x1 + m < w ? x1 : (w > m ? w - m : 0);
  if (y < m || xs >= xe) {
    one_by_one(x0, x1);
    return;
  }
  const uint32_t len = xe - xs + 2 * m;  // x from xs - m to xe + m - 1
  S rows[9][kNlAhead + 4];
  const uint32_t chans = ch == 2 ? 3 : 2;
  for (uint32_t r = 0; r <= m; ++r)
    for (uint32_t k = 0; k < chans; ++k) {
      const S* src = samples + size_t(y - r) * row_stride + size_t(xs - m) * 3 + (ch - k);
      S* dst = rows[3 * k + r];
      for (uint32_t i = 0; i < len; ++i) dst[i] = src[size_t(i) * 3];
    }
  one_by_one(x0, xs);
  predict_inside_plane_any(rows[0] + m, rows[1] + m, rows[3] + m, rows[4] + m, ch == 2 ? rows[6] + m : nullptr,
                           ch == 2 ? rows[7] + m : nullptr, rows[2] + m, rows[5] + m, plane_lin, xe - xs,
                           gain[ch - 1], gain[0], p, err_out + (xs - x0), q_out + (xs - x0), cross_out + (xs - x0));
  one_by_one(xe, x1);
}

// V2: Arith2's context model (§4.8, "Arith2"); false: §4.8's, byte for byte.
// Lossless (k = 0) and Counting (counts given: training) are template parameters
// only so that the compiler drops the quantisation arithmetic and the counting
// test from the per-sample loop of the flight encoder; the bytes are the same.
template <bool V2, bool Lossless, bool Counting, typename S>
size_t arith_encode_impl(const S* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels,
                         uint32_t k, uint32_t depth, NlState* s, uint8_t* out, size_t cap, S* recon,
                         const NlPriors& priors, NlCounts* counts, const int32_t* gain, const int32_t* lin) {
  Params p = params(k, depth);
  if constexpr (Lossless) p.k = 0;  // (k is 0 here): a constant the compiler sees
  const size_t raw = size_t(h) * w * channels * sizeof(S);
  if (cap < raw + 1) return 0;
  const int32_t unit[2] = {kNlUnitGain, kNlUnitGain};
  if (!gain) gain = unit;
  const bool gains = V2 && channels == 3 && (gain[0] != kNlUnitGain || gain[1] != kNlUnitGain);
  if (!V2) lin = nullptr;  // forms 3 and 4 are Arith2's
  // Form 4 (gains and weights): `lin` holds channel 0's and both colour planes' weights.
  const bool planes = lin && gains;
  const uint32_t weight_sets = lin ? (planes ? 3u : 1u) : 0u;
  const size_t head = 1 + (gains ? 2 : 0) + weight_sets * kNlLinWeights;
  out[0] = gains ? (lin ? kFormGainsLinear : kFormGains) : (lin ? kFormLinear : kFormCoded);
  if (gains) {
    out[1] = uint8_t(gain[0]);
    out[2] = uint8_t(gain[1]);
  }
  int32_t expanded[3 * kNlLinExpanded];
  if (lin) {
    for (uint32_t j = 0; j < weight_sets; ++j) {
      for (uint32_t i = 0; i < kNlLinWeights; ++i)
        out[1 + (gains ? 2 : 0) + j * kNlLinWeights + i] = uint8_t(int8_t(lin[j * kNlLinWeights + i]));
      expand_weights(lin + j * kNlLinWeights, expanded + j * kNlLinExpanded);
    }
    lin = expanded;
  }
  NlRangeEncoder rc(out + head, raw + 1 - head);  // a coded tile must be smaller than a stored one
  const size_t rstride = size_t(w) * channels;
  for (uint32_t ch = 0; ch < channels; ++ch) {
    reset(s, p);
    reset_arith(s);
    const uint32_t kind = ch < 3 ? ch : 2;
    if (V2) reset_q(s, priors, kind, k);
    // Lossless channel 0 with fitted weights, and the colour planes of a lossless RGB tile
    // where there is a vector unit (no bias correction below kNlChromaBiasFromK: no adaptive
    // state read): predictions worked out a run ahead (predict_ahead, plane_ahead).
    const bool plane_run = Lossless && V2 && kNlVectorUnit && ch > 0 && channels == 3;
    const bool ahead = (Lossless && V2 && ch == 0 && lin) || plane_run;
    int32_t ahead_err[kNlAhead], ahead_q[kNlAhead], ahead_cross[kNlAhead];
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t x0 = 0; x0 < w; x0 += kNlAhead) {
      const uint32_t x1 = w - x0 > kNlAhead ? x0 + kNlAhead : w;
      if (plane_run) {
        plane_ahead<V2>(samples, row_stride, ch, y, x0, x1, w, s, p, gain, lin,
                        planes ? lin + ch * kNlLinExpanded : nullptr, ahead_err, ahead_q, ahead_cross);
      } else if (ahead) {
        predict_ahead(samples, row_stride, channels, y, x0, x1, w, s, p, lin, ahead_err, ahead_q);
        if (channels == 1)  // lossless: the reconstruction is the samples
          std::memcpy(recon + size_t(y) * rstride + x0, samples + size_t(y) * row_stride + x0, (x1 - x0) * sizeof(S));
      }
      for (uint32_t x = x0; x < x1; ++x) {
        int32_t q, err;
        uint32_t cross;
        if (ahead) {
          err = ahead_err[x - x0];
          q = ahead_q[x - x0];
          cross = plane_run ? uint32_t(ahead_cross[x - x0]) : 0u;
          if (channels > 1)  // (gray: the run is copied at once, above)
            recon[size_t(y) * rstride + size_t(x) * channels + ch] =
                samples[size_t(y) * row_stride + size_t(x) * channels + ch];
        } else {
          int32_t sign;
          const int32_t px = predict_ac<V2>(recon, rstride, ch, channels, y, x, w, s, p, &q, &sign, &cross, gain,
                                            lin, planes && ch ? lin + ch * kNlLinExpanded : nullptr);
          const int32_t xv = samples[size_t(y) * row_stride + size_t(x) * channels + ch];
          err = sign * (xv - px);
          if (p.k) err = err > 0 ? (err + p.k) / (2 * p.k + 1) : -((p.k - err) / (2 * p.k + 1));
          recon[size_t(y) * rstride + size_t(x) * channels + ch] = S(reconstruct(px, sign, err, p));
          err = modulo_range(err, p);
        }
        const uint32_t act = activity(s, q);
        const uint32_t ctx = ac_context(act, q, cross);
        const uint32_t qc = uint32_t(q) * kNlCross + cross;
        // One modelled bin: §4.8's context; Arith2 adds the gradient context's
        // probability (mixed on channel 0, alone on the difference planes).
        auto code = [&](NlProb* pa, uint32_t j, uint32_t b) {
          if (!V2) {
            rc.bit(pa, b);
            return;
          }
          if constexpr (Counting) ++counts->n[kind][qc][j][b];
          if (ch == 0) rc.bit2(pa, &s->p_q[qc][j], b);
          else rc.bit(&s->p_q[qc][j], b);
        };
        code(&s->p_zero[ctx], 0, err != 0);
        if (err != 0) {
          code(&s->p_sign[ctx], 1, err < 0);
          const uint32_t all = uint32_t(err < 0 ? -err : err) - 1, sh = low_bits(s, q);
          const uint32_t mag = all >> sh;
          uint32_t j = 0;
          for (; j < kNlUnary; ++j) {
            code(&s->p_mag[ctx][j], 2 + j, mag > j);
            if (mag == j) break;
          }
          if (j == kNlUnary) {  // escape: Exp-Golomb of mag - kNlUnary
            const uint32_t v = mag - kNlUnary + 1, n = bit_length(v) - 1;
            for (uint32_t i = 0; i < n; ++i) rc.bit(&s->p_esc[act][i], 1);
            if (n < p.escape) rc.bit(&s->p_esc[act][n], 0);
            rc.direct(v & ((1u << n) - 1u), n);
          }
          if (sh) {
            rc.bit(&s->p_low[act][mag < 2 ? mag : 2], (all >> (sh - 1)) & 1u);
            rc.direct(all & ((1u << (sh - 1)) - 1u), sh - 1);
          }
        }
        if (ahead) update_magnitude(s, q, err);
        else update(s, q, err, p);
      }
      }
  }
  const size_t n = rc.finish();
  if (n) return n + head;
  // Incompressible (noise, mostly at k = 0): store the samples, exact and so
  // within any k.
  out[0] = kFormStored;
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (uint32_t ch = 0; ch < channels; ++ch) {
        const S v = samples[size_t(y) * row_stride + size_t(x) * channels + ch];
        store_sample(out + 1, (size_t(y) * w + x) * channels + ch, v);
        recon[size_t(y) * rstride + size_t(x) * channels + ch] = v;
      }
  return raw + 1;
}

template <bool V2, typename S>
size_t arith_encode(const S* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels,
                    uint32_t k, uint32_t depth, NlState* s, uint8_t* out, size_t cap, S* recon,
                    const NlPriors& priors, NlCounts* counts, const int32_t* gain, const int32_t* lin = nullptr) {
  if (counts)
    return arith_encode_impl<V2, false, true>(samples, row_stride, h, w, channels, k, depth, s, out, cap, recon,
                                              priors, counts, gain, lin);
  if (k == 0)
    return arith_encode_impl<V2, true, false>(samples, row_stride, h, w, channels, k, depth, s, out, cap, recon,
                                              priors, nullptr, gain, lin);
  return arith_encode_impl<V2, false, false>(samples, row_stride, h, w, channels, k, depth, s, out, cap, recon,
                                             priors, nullptr, gain, lin);
}

template <bool V2, typename S>
bool arith_decode(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                  uint32_t depth, NlState* s, S* out, const NlPriors& priors) {
  const Params p = params(k, depth);
  const size_t n_samples = size_t(h) * w * channels, raw = n_samples * sizeof(S);
  if (len < 1) return false;
  if (data[0] == kFormStored) {
    if (len != raw + 1) return false;
    for (size_t i = 0; i < n_samples; ++i) {
      load_sample(data + 1, i, &out[i]);
      if (int32_t(out[i]) > p.maxval) return false;  // a 12-bit file with a sample above 4095
    }
    return true;
  }
  int32_t gain[2] = {kNlUnitGain, kNlUnitGain};
  int32_t weights[kNlLinWeights], expanded[3 * kNlLinExpanded];
  const int32_t* lin = nullptr;
  size_t head = 1;
  const uint8_t form = data[0];
  const bool with_gains = form == kFormGains || form == kFormGainsLinear;
  const uint32_t weight_sets = form == kFormGainsLinear ? 3u : (form == kFormLinear ? 1u : 0u);
  if (form != kFormCoded && !(V2 && with_gains && channels == 3) && !(V2 && form == kFormLinear)) return false;
  if (with_gains) {
    if (len < 3 || data[1] > kNlMaxGain || data[2] > kNlMaxGain) return false;
    gain[0] = data[1];
    gain[1] = data[2];
    head = 3;
  }
  for (uint32_t j = 0; j < weight_sets; ++j) {
    if (len < head + kNlLinWeights) return false;
    for (uint32_t i = 0; i < kNlLinWeights; ++i) {
      weights[i] = int8_t(data[head + i]);
      if (weights[i] < -kNlMaxWeight) return false;  // -128: never written
    }
    expand_weights(weights, expanded + j * kNlLinExpanded);
    lin = expanded;
    head += kNlLinWeights;
  }
  const bool planes = weight_sets == 3;
  if (len > raw + 1) return false;
  NlRangeDecoder rc(data + head, len - head);
  if (!rc.start()) return false;
  const size_t stride = size_t(w) * channels;
  const int32_t lo = -(p.range / 2), hi = (p.range - 1) / 2;  // modulo_range's interval
  for (uint32_t ch = 0; ch < channels; ++ch) {
    reset(s, p);
    reset_arith(s);
    if (V2) reset_q(s, priors, ch < 3 ? ch : 2, k);
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t x = 0; x < w; ++x) {
        int32_t q, sign;
        uint32_t cross;
        const int32_t px = predict_ac<V2>(out, stride, ch, channels, y, x, w, s, p, &q, &sign, &cross, gain, lin,
                                          planes && ch ? lin + ch * kNlLinExpanded : nullptr);
        const uint32_t act = activity(s, q);
        const uint32_t ctx = ac_context(act, q, cross);
        const uint32_t qc = uint32_t(q) * kNlCross + cross;
        auto bin = [&](NlProb* pa, uint32_t j) -> uint32_t {
          if (!V2) return rc.bit(pa);
          return ch == 0 ? rc.bit2(pa, &s->p_q[qc][j]) : rc.bit(&s->p_q[qc][j]);
        };
        int32_t err = 0;
        if (bin(&s->p_zero[ctx], 0)) {
          const bool negative = bin(&s->p_sign[ctx], 1) != 0;
          uint32_t mag = 0;
          while (mag < kNlUnary && bin(&s->p_mag[ctx][mag], 2 + mag)) ++mag;
          if (mag == kNlUnary) {
            uint32_t n = 0;
            while (n < p.escape && rc.bit(&s->p_esc[act][n])) ++n;
            if (n >= p.escape) return false;  // no error of this depth needs that many
            mag += ((1u << n) | rc.direct(n)) - 1;
          }
          const uint32_t sh = low_bits(s, q);
          uint32_t all = mag;
          if (sh) {
            all = (mag << 1) | rc.bit(&s->p_low[act][mag < 2 ? mag : 2]);
            all = (all << (sh - 1)) | rc.direct(sh - 1);
          }
          if (rc.failed || all > p.max_all) return false;
          err = negative ? -int32_t(all + 1) : int32_t(all + 1);
          if (err < lo || err > hi) return false;
        }
        if (rc.failed) return false;
        out[size_t(y) * stride + size_t(x) * channels + ch] = S(reconstruct(px, sign, err, p));
        update(s, q, err, p);
      }
  }
  // The decoder reads exactly the bytes the encoder wrote (5 at the start, one per
  // renormalisation): anything else is damage.
  return rc.exhausted_exactly();
}

// Arith2, RGB: the gains of channels 1 and 2 on their predecessors (in 1/16, 0..32)
// by least squares over the tile's samples, in integers: centred sums in int64 (at
// most 4096^2 samples of 16 bits: no overflow), rounded to the nearest 1/16. One pass
// for the three channel means, one for the two covariances and variances.
template <typename S>
void fit_gains(const S* samples, size_t row_stride, uint32_t h, uint32_t w, int32_t* gain) {
  const int64_t n = int64_t(h) * w;
  int64_t sum[3] = {0, 0, 0};
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      const S* v = samples + size_t(y) * row_stride + size_t(x) * 3;
      for (uint32_t c = 0; c < 3; ++c) sum[c] += v[c];
    }
  const int64_t mean[3] = {sum[0] / n, sum[1] / n, sum[2] / n};
  int64_t cov[2] = {0, 0}, var[2] = {0, 0};
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      const S* v = samples + size_t(y) * row_stride + size_t(x) * 3;
      const int64_t d[3] = {int64_t(v[0]) - mean[0], int64_t(v[1]) - mean[1], int64_t(v[2]) - mean[2]};
      for (uint32_t c = 0; c < 2; ++c) {
        cov[c] += d[c] * d[c + 1];
        var[c] += d[c] * d[c];
      }
    }
  for (uint32_t c = 0; c < 2; ++c) {
    int64_t g = kNlUnitGain;
    if (var[c] > 0) g = cov[c] <= 0 ? 0 : (2 * kNlUnitGain * cov[c] + var[c]) / (2 * var[c]);
    gain[c] = int32_t(g > kNlMaxGain ? kNlMaxGain : g);
  }
}

// Arith2 form 3: the 3 x 9 weights (1/64) of channel 0's linear predictor solving the
// normal equations R v = r of one texture class (R in lower-triangular storage). Solved
// in double by Gaussian elimination with partial pivoting in a fixed order: only +, -,
// *, / (correctly rounded IEEE operations), no libm, FMA contraction off for the core
// (CMakeLists.txt), so every CPU finds the same weights; the decoder only reads them.
// A light ridge keeps flat tiles and empty classes solvable (weights near 0: the
// prediction is b).
void solve_linear(const int64_t (&R)[kNlLinTaps][kNlLinTaps], const int64_t (&r)[kNlLinTaps], int32_t* lin) {
  constexpr uint32_t n = kNlLinTaps;
  double m[n][n + 1];
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < n; ++j) m[i][j] = double(j <= i ? R[i][j] : R[j][i]);
    m[i][i] += 1.0 + m[i][i] / 1024.0;
    m[i][n] = double(r[i]);
  }
  auto magnitude = [](double v) { return v < 0 ? -v : v; };
  for (uint32_t col = 0; col < n; ++col) {
    uint32_t best = col;
    for (uint32_t i = col + 1; i < n; ++i)
      if (magnitude(m[i][col]) > magnitude(m[best][col])) best = i;
    if (best != col)
      for (uint32_t j = 0; j <= n; ++j) {
        const double t = m[col][j];
        m[col][j] = m[best][j];
        m[best][j] = t;
      }
    for (uint32_t i = col + 1; i < n; ++i) {
      const double f = m[i][col] / m[col][col];  // the pivot is >= 1: the ridge
      for (uint32_t j = col; j <= n; ++j) m[i][j] -= f * m[col][j];
    }
  }
  double v[n];
  for (uint32_t i = n; i-- > 0;) {
    double acc = m[i][n];
    for (uint32_t j = i + 1; j < n; ++j) acc -= m[i][j] * v[j];
    v[i] = acc / m[i][i];
  }
  for (uint32_t i = 0; i < n; ++i) {
    double s = v[i] * double(1 << kNlLinShift);
    if (!(s > -kNlMaxWeight)) s = -kNlMaxWeight;  // NaN too
    if (s > kNlMaxWeight) s = kNlMaxWeight;
    lin[i] = s >= 0 ? int32_t(s + 0.5) : -int32_t(-s + 0.5);  // round half away, no libm
  }
}

// The least-squares sums of the three texture classes (exact, int64) and their solve:
// one per fit (channel 0, or a colour plane).
struct NormalEquations {
  int64_t R[kNlLinClasses][kNlLinTaps][kNlLinTaps] = {}, r[kNlLinClasses][kNlLinTaps] = {};
  void add(uint32_t cls, const int64_t (&f)[kNlLinTaps], int64_t t) {
    for (uint32_t i = 0; i < kNlLinTaps; ++i) {
      r[cls][i] += f[i] * t;
      for (uint32_t j = 0; j <= i; ++j) R[cls][i][j] += f[i] * f[j];
    }
  }
  void solve(int32_t* lin) const {
    for (uint32_t c = 0; c < kNlLinClasses; ++c) solve_linear(R[c], r[c], lin + c * kNlLinTaps);
  }
};

// Arith2 form 3: fits channel 0's weights to the tile (least squares per texture class
// on its original samples; at k > 0 the decoder predicts from reconstructions, close
// enough) and returns false (MED, form 0) for tiles too small to fit. The normal
// equations are summed exactly in int64 (differences of 16-bit samples: products below
// 2^34; a tile has at most 2^24 samples) over every second row of the interior, which
// halves the encoder's cost for +0.02 % bits (development groups).
//
// 8- and 12-bit samples take a faster route to the same sums: their differences fit int16
// and a product 2^16 (2^24), so a block of 128 (64) samples of one class sums exactly in int32.
// Each row is cut into blocks; a block's features go, class by class, into contiguous
// int16 columns (zero-padded to a multiple of 16) and every sum of the normal equations
// is a dot product of two columns, which compilers turn into SIMD multiply-adds
// (pmaddwd, vmlal, ...). Integer sums are the same in any order, so the weights, and the
// bytes, are those of the per-sample loop on every CPU; the fit's cost drops from about
// 190 to about 65 instructions per pixel.
constexpr uint32_t kFitBlock = 128;

inline int32_t dot_columns(const int16_t* a, const int16_t* b, uint32_t m) {
  // Exact: m <= 128 and |products| <= 765^2 (colour planes of 8-bit samples; 255^2 for
  // channel 0), or m <= 64 and |products| <= 4095^2 (12-bit): below 2^31.
  int32_t s = 0;
  for (uint32_t i = 0; i < m; ++i) s += int32_t(a[i]) * int32_t(b[i]);
  return s;
}

// Adds the columns of one block (used[cls] samples per class) to the normal equations.
inline void flush_columns(int16_t (*col)[kNlLinTaps + 1][kFitBlock], const uint32_t* used, NormalEquations* eq) {
  constexpr uint32_t n = kNlLinTaps;
  for (uint32_t cls = 0; cls < kNlLinClasses; ++cls) {
    if (!used[cls]) continue;
    const uint32_t m = (used[cls] + 15u) & ~15u;  // zero padding adds nothing to the sums
    for (uint32_t i = 0; i <= n; ++i)
      for (uint32_t u = used[cls]; u < m; ++u) col[cls][i][u] = 0;
    for (uint32_t i = 0; i < n; ++i) {
      eq->r[cls][i] += dot_columns(col[cls][i], col[cls][n], m);
      for (uint32_t j = 0; j <= i; ++j) eq->R[cls][i][j] += dot_columns(col[cls][i], col[cls][j], m);
    }
  }
}

// The rows of the fit (every second one, the interior), cut into blocks of Block samples;
// `features(y, x, f)` writes a sample's nine features and its target into f[0..9] and
// returns its class. Block x (largest |difference|)^2 must stay below 2^31.
template <uint32_t Block, typename Features>
__attribute__((always_inline)) inline void fit_blocks(uint32_t h, uint32_t w, Features features, NormalEquations* eq) {
  static_assert(Block <= kFitBlock && Block % 16 == 0, "a block fills at most the columns");
  constexpr uint32_t n = kNlLinTaps;
  // Per class: the nine features and the target (row n), kFitBlock samples each.
  alignas(64) int16_t col[kNlLinClasses][n + 1][kFitBlock];
  for (uint32_t y = 2; y < h; y += 2) {
    for (uint32_t x0 = 2; x0 + 2 < w; x0 += Block) {
      const uint32_t x1 = x0 + Block < w - 2 ? x0 + Block : w - 2;
      uint32_t used[kNlLinClasses] = {};
      for (uint32_t x = x0; x < x1; ++x) {
        int32_t f[n + 1];
        const uint32_t cls = features(y, x, f);
        const uint32_t u = used[cls]++;
        for (uint32_t i = 0; i <= n; ++i) col[cls][i][u] = int16_t(f[i]);
      }
      flush_columns(col, used, eq);
    }
  }
}

// Channel 0's features (fit_linear's, as int32).
template <uint32_t Block, typename S>
__attribute__((always_inline)) inline void fit_rows_columns(const S* samples, size_t row_stride, uint32_t h, uint32_t w,
                                                            uint32_t channels, const Params& p, NormalEquations* eq) {
  const ptrdiff_t c1 = channels, c2 = 2 * ptrdiff_t(channels);
  fit_blocks<Block>(h, w, [&](uint32_t y, uint32_t x, int32_t* f) {
    const S* r0 = samples + size_t(y) * row_stride + ptrdiff_t(x) * c1;
    const S* r1 = r0 - row_stride;
    const S* r2 = r1 - row_stride;
    const int32_t b = r1[0];
    f[0] = r0[-c1] - b, f[1] = r1[-c1] - b, f[2] = r1[c1] - b, f[3] = r0[-c2] - b, f[4] = r2[0] - b;
    f[5] = r1[-c2] - b, f[6] = r1[c2] - b, f[7] = r2[-c1] - b, f[8] = r2[c1] - b, f[kNlLinTaps] = r0[0] - b;
    return linear_class(f[0] + b, b, f[1] + b, f[2] + b, p);
  }, eq);
}

PYMARS_NL_CLONES __attribute__((noinline)) void fit_rows_8bit(const uint8_t* samples, size_t row_stride, uint32_t h,
                                                              uint32_t w, uint32_t channels, const Params& p,
                                                              NormalEquations* eq) {
  fit_rows_columns<kFitBlock>(samples, row_stride, h, w, channels, p, eq);  // 128 x 255^2
}
// 12-bit samples: differences fit int16 too, products 2^24, so blocks of 64 (64 x 4095^2 < 2^31).
PYMARS_NL_CLONES __attribute__((noinline)) void fit_rows_12bit(const uint16_t* samples, size_t row_stride, uint32_t h,
                                                               uint32_t w, uint32_t channels, const Params& p,
                                                               NormalEquations* eq) {
  fit_rows_columns<64>(samples, row_stride, h, w, channels, p, eq);
}

// fit_plane's sums for 8-bit RGB by the same columns: plane values x_ch - S(g, x_{ch-1})
// lie in -510..255, so their differences fit int16 (|d| <= 765; 128 x 765^2 < 2^31).
PYMARS_NL_CLONES __attribute__((noinline)) void fit_plane_rows_8bit(const uint8_t* samples, size_t row_stride,
                                                                    uint32_t h, uint32_t w, uint32_t ch, int32_t g,
                                                                    const Params& p, NormalEquations* eq) {
  fit_blocks<kFitBlock>(h, w, [&](uint32_t y, uint32_t x, int32_t* f) {
    const uint8_t* at = samples + size_t(y) * row_stride + size_t(x) * 3 + ch;
    auto plane = [&](int32_t dy, int32_t dx) {
      const uint8_t* v = at + ptrdiff_t(dy) * ptrdiff_t(row_stride) + ptrdiff_t(dx) * 3;
      return int32_t(v[0]) - scaled(g, int32_t(v[-1]));
    };
    const int32_t b = plane(-1, 0);
    for (uint32_t i = 0; i < kNlLinTaps; ++i) f[i] = plane(kNlLinDy[i], kNlLinDx[i]) - b;
    f[kNlLinTaps] = plane(0, 0) - b;
    return linear_class(f[0] + b, b, f[1] + b, f[2] + b, p);
  }, eq);
}

template <typename S>
bool fit_linear(const S* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                uint32_t depth, int32_t* lin) {
  constexpr uint32_t n = kNlLinTaps;
  if (h < 4 || w < 6) return false;
  const Params p = params(k, depth);
  NormalEquations eq;
  if constexpr (sizeof(S) == 1) {
    if (kNlVectorUnit) {
      fit_rows_8bit(samples, row_stride, h, w, channels, p, &eq);
      eq.solve(lin);
      return true;
    }
  } else if (kNlVectorUnit && p.maxval <= 4095) {
    fit_rows_12bit(samples, row_stride, h, w, channels, p, &eq);
    eq.solve(lin);
    return true;
  }
  const ptrdiff_t c1 = channels, c2 = 2 * ptrdiff_t(channels);
  for (uint32_t y = 2; y < h; y += 2) {
    const S* r0 = samples + size_t(y) * row_stride;
    const S* r1 = r0 - row_stride;
    const S* r2 = r1 - row_stride;
    for (uint32_t x = 2; x + 2 < w; ++x) {
      const ptrdiff_t o = ptrdiff_t(x) * c1;
      const int64_t b = r1[o];
      const int64_t f[n] = {r0[o - c1] - b, r1[o - c1] - b, r1[o + c1] - b, r0[o - c2] - b, r2[o] - b,
                            r1[o - c2] - b, r1[o + c2] - b, r2[o - c1] - b, r2[o + c1] - b};
      const int64_t t = r0[o] - b;
      eq.add(linear_class(int32_t(r0[o - c1]), int32_t(b), int32_t(r1[o - c1]), int32_t(r1[o + c1]), p), f, t);
    }
  }
  eq.solve(lin);
  return true;
}

// Form 4: the weights of colour plane x_ch - S(g, x_{ch-1}) of an RGB tile, fitted as
// fit_linear fits channel 0 (same rows, neighbours, classes and solve), on the planes of
// the original samples.
template <typename S>
void fit_plane(const S* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t ch, int32_t g, uint32_t k,
               uint32_t depth, int32_t* lin) {
  constexpr uint32_t n = kNlLinTaps;
  const Params p = params(k, depth);
  NormalEquations eq;
  if constexpr (sizeof(S) == 1) {
    if (kNlVectorUnit) {
      fit_plane_rows_8bit(samples, row_stride, h, w, ch, g, p, &eq);
      eq.solve(lin);
      return;
    }
  }
  auto plane = [&](uint32_t y, uint32_t x) {
    const S* v = samples + size_t(y) * row_stride + size_t(x) * 3 + ch;
    return int64_t(v[0]) - scaled(g, int32_t(v[-1]));
  };
  for (uint32_t y = 2; y < h; y += 2)
    for (uint32_t x = 2; x + 2 < w; ++x) {
      const int64_t b = plane(y - 1, x);
      int64_t f[n];
      for (uint32_t i = 0; i < n; ++i) f[i] = plane(uint32_t(int32_t(y) + kNlLinDy[i]), uint32_t(int32_t(x) + kNlLinDx[i])) - b;
      const int64_t t = plane(y, x) - b;
      eq.add(linear_class(int32_t(f[0] + b), int32_t(b), int32_t(f[1] + b), int32_t(f[2] + b), p), f, t);
    }
  eq.solve(lin);
}

// RGB with fitted gains: which form the tile wants, judged before any coding from its two
// colour planes on every second row, as the summed bit lengths of their prediction residuals
// under each form (3: the unit-gain differences by MED; 4: the gain planes by their fitted
// weights `plane_lin`, expanded, both planes, or by MED where it is null). 3 or 4 when one
// sum is below 7/8 of the other, 0 when they are closer. On the 77 development RGB tiles
// (JPEG-decoded and raw-like) the ratio of the sums is <= 0.65 where form 4 codes shorter
// losslessly and >= 1.24 where form 3 does: no tile changes form (docs/base-v2.md). At k > 0 the coder predicts from
// reconstructions the sums do not see (the guess was wrong on 15 of 77 tiles at k = 2), so
// there the guess only orders the two codings, which keeps the bytes.
constexpr uint64_t kNlGuessNum = 7, kNlGuessDen = 8;
template <typename S>
uint32_t form_guess(const S* samples, size_t row_stride, uint32_t h, uint32_t w, const int32_t* gain,
                    const int32_t* plane_lin, const Params& p) {
  uint64_t c3 = 0, c4 = 0;
  for (uint32_t ch = 1; ch < 3; ++ch) {
    const int32_t g = gain[ch - 1];
    const int32_t* lin = plane_lin ? plane_lin + (ch - 1) * kNlLinExpanded : nullptr;
    for (uint32_t y = 2; y < h; y += 2) {
      const S* r0 = samples + size_t(y) * row_stride + ch;
      const S* r1 = r0 - row_stride;
      for (uint32_t x = 2; x + 2 < w; ++x) {
        const ptrdiff_t o = ptrdiff_t(x) * 3;
        auto unit = [&](const S* r, ptrdiff_t at) { return int32_t(r[at]) - int32_t(r[at - 1]); };
        auto gained = [&](const S* r, ptrdiff_t at) { return int32_t(r[at]) - scaled(g, int32_t(r[at - 1])); };
        const int32_t e3 = unit(r0, o) - med(unit(r0, o - 3), unit(r1, o), unit(r1, o - 3));
        const int32_t a = gained(r0, o - 3), b = gained(r1, o), c = gained(r1, o - 3), d = gained(r1, o + 3);
        const int32_t e4 = gained(r0, o) - (plane_lin ? plane_predict(samples, row_stride, ch, 3, y, x, w, g, b,
                                                                      lin + kNlLinStride * linear_class(a, b, c, d, p))
                                                       : med(a, b, c));
        c3 += bit_length(uint32_t(e3 < 0 ? -e3 : e3));
        c4 += bit_length(uint32_t(e4 < 0 ? -e4 : e4));
      }
    }
  }
  if (kNlGuessDen * c4 < kNlGuessNum * c3) return 4;
  if (kNlGuessDen * c3 < kNlGuessNum * c4) return 3;
  return 0;
}

// Arith2 on an RGB tile: codes it with unit gains (the colour differences) and, when
// the fitted gains differ, with them too (form 2, or 4 with fitted weights), and keeps the
// shorter (the differences on a tie). Frames whose chroma is flat (JPEG-decoded ones) want
// the differences; raw colour frames, whose channels differ by a gain and carry their own
// noise, want the gains (docs/base-v2.md). Lossless tiles whose form form_guess can tell
// are coded once, in that form. Otherwise the second payload is written past the first
// inside `out` (nl_max_bytes leaves room for two), the form the guess favours last: at
// k > 0 the reconstruction left in `recon` is the last coding's, and must be the kept
// payload's, which takes a third coding only where the guess was wrong.
template <typename S>
size_t arith2_encode_rgb(const S* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t k, uint32_t depth,
                         NlState* s, uint8_t* out, size_t cap, S* recon, const NlPriors& priors, NlCounts* counts) {
  int32_t gain[2], weights[3 * kNlLinWeights];
  fit_gains(samples, row_stride, h, w, gain);
  const int32_t* lin = fit_linear(samples, row_stride, h, w, 3, k, depth, weights) ? weights : nullptr;
  const size_t raw = size_t(h) * w * 3 * sizeof(S);
  // One coding; the training counts are the differences' (form 3's) alone.
  auto code = [&](uint8_t* dst, size_t dst_cap, bool with_gains) {
    return arith_encode<true>(samples, row_stride, h, w, 3, k, depth, s, dst, dst_cap, recon, priors,
                              with_gains ? nullptr : counts, with_gains ? gain : nullptr, lin);
  };
  if ((gain[0] == kNlUnitGain && gain[1] == kNlUnitGain) || cap < 2 * (raw + 1)) return code(out, cap, false);
  // Lossless, a first look with MED on the gain planes too needs no fit of them: a tile whose
  // differences are clearly the better planes (JPEG-decoded colour: sums 1.15x and more apart
  // on the development tiles, where the fitted look gives 1.24x) is coded in form 3 at once.
  if (k == 0 && lin && !counts && form_guess(samples, row_stride, h, w, gain, nullptr, params(k, depth)) == 3)
    return code(out, cap, false);
  uint32_t guess = 0;
  if (lin) {
    // With the gains (raw colour: each channel its own noise), the colour planes are noisy
    // too: their own fitted weights (form 4) rather than MED.
    fit_plane(samples, row_stride, h, w, 1, gain[0], k, depth, weights + kNlLinWeights);
    fit_plane(samples, row_stride, h, w, 2, gain[1], k, depth, weights + 2 * kNlLinWeights);
    if (!counts) {
      int32_t expanded[2 * kNlLinExpanded];
      expand_weights(weights + kNlLinWeights, expanded);
      expand_weights(weights + 2 * kNlLinWeights, expanded + kNlLinExpanded);
      guess = form_guess(samples, row_stride, h, w, gain, expanded, params(k, depth));
    }
  }
  if (k == 0 && guess) return code(out, cap, guess == 4);
  const bool gains_first = guess == 3;
  uint8_t* second = out + raw + 1;
  const size_t n1 = code(out, raw + 1, gains_first);
  if (!n1) return 0;
  const size_t n2 = code(second, raw + 1, !gains_first);
  const size_t n3 = gains_first ? n2 : n1, n4 = gains_first ? n1 : n2;
  const bool keep_gains = n4 && n4 < n3;
  if (keep_gains != gains_first) {  // the second coding is kept: its reconstruction is in recon
    std::memmove(out, second, n2);
    return n2;
  }
  if (k == 0) return n1;  // lossless: both reconstructions are the samples
  return code(out, cap, gains_first);
}

// The range-coded coders (§4.8, Arith2) on 8- or 12/16-bit samples: the one dispatch
// of nl_encode and nl_encode16 (Arith2 RGB tiles try the fitted gains too).
template <typename S>
size_t range_encode(NlCoder coder, const S* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels,
                    uint32_t k, uint32_t depth, NlState* s, uint8_t* out, size_t cap, S* recon,
                    const NlPriors& priors, NlCounts* counts) {
  if (coder == NlCoder::Arith)
    return arith_encode<false>(samples, row_stride, h, w, channels, k, depth, s, out, cap, recon, priors, nullptr,
                               nullptr);
  if (channels == 3) return arith2_encode_rgb(samples, row_stride, h, w, k, depth, s, out, cap, recon, priors, counts);
  int32_t lin[kNlLinWeights];
  const bool linear = fit_linear(samples, row_stride, h, w, channels, k, depth, lin);
  return arith_encode<true>(samples, row_stride, h, w, channels, k, depth, s, out, cap, recon, priors, counts,
                            nullptr, linear ? lin : nullptr);
}

template <typename S>
bool range_decode(NlCoder coder, const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels,
                  uint32_t k, uint32_t depth, NlState* s, S* out, const NlPriors& priors) {
  if (coder == NlCoder::Arith2) return arith_decode<true>(data, len, h, w, channels, k, depth, s, out, priors);
  return arith_decode<false>(data, len, h, w, channels, k, depth, s, out, priors);
}

}  // namespace

size_t nl_max_bytes(uint32_t h, uint32_t w, uint32_t channels) {
  return (size_t(h) * w * channels * size_t(kLimit) + 7) / 8 + 8;
}

uint32_t nl_k_class(uint32_t k) { return k == 0 ? 0u : (k <= 2 ? 1u : (k <= 5 ? 2u : 3u)); }

size_t nl_encode(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                 NlCoder coder, NlState* state, uint8_t* out, size_t cap, uint8_t* recon, const NlPriors& priors,
                 NlCounts* counts) {
  if (k > kNlMaxError || !recon) return 0;
  if (coder == NlCoder::Golomb) return golomb_encode(samples, row_stride, h, w, channels, k, state, out, cap, recon);
  return range_encode(coder, samples, row_stride, h, w, channels, k, 8, state, out, cap, recon, priors, counts);
}

bool nl_decode(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t k, NlCoder coder,
               NlState* state, uint8_t* out, const NlPriors& priors) {
  if (k > kNlMaxError) return false;
  if (coder == NlCoder::Golomb) return golomb_decode(data, len, h, w, channels, k, state, out);
  return range_decode(coder, data, len, h, w, channels, k, 8u, state, out, priors);
}

size_t nl_encode16(const uint16_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                   uint32_t depth, NlState* state, uint8_t* out, size_t cap, uint16_t* recon, NlCoder coder,
                   const NlPriors& priors) {
  if (k > kNlMaxError || !recon || (depth != 12 && depth != 16) || coder == NlCoder::Golomb) return 0;
  return range_encode(coder, samples, row_stride, h, w, channels, k, depth, state, out, cap, recon, priors, nullptr);
}

bool nl_decode16(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                 uint32_t depth, NlState* state, uint16_t* out, NlCoder coder, const NlPriors& priors) {
  if (k > kNlMaxError || (depth != 12 && depth != 16) || coder == NlCoder::Golomb) return false;
  return range_decode(coder, data, len, h, w, channels, k, depth, state, out, priors);
}

}  // namespace pymars
