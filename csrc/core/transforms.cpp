// transforms.cpp - float and integer ops of the codec transforms (see transforms.h).
#include "transforms.h"

namespace pymars {

Shape float_op_shape(const FloatOp& op, Shape in) {
  if (op.type != OpType::Conv) return in;
  return Shape{op.cout, (in.h + op.stride - 1) / op.stride, (in.w + op.stride - 1) / op.stride};
}

Shape int_op_shape(const IntOp& op, Shape in) {
  if (op.depth_to_space) return Shape{op.cout / 4, in.h * 2, in.w * 2};
  return Shape{op.cout, in.h, in.w};
}

namespace {

// Range of output indices o (in [0, n_out)) whose input index o*stride + d lies in [0, n_in).
inline void valid_range(int32_t n_out, int32_t n_in, int32_t stride, int32_t d, int32_t* lo, int32_t* hi) {
  int32_t a = d >= 0 ? 0 : (-d + stride - 1) / stride;
  int32_t b = (n_in - 1 - d) >= 0 ? (n_in - 1 - d) / stride + 1 : 0;
  if (b > n_out) b = n_out;
  *lo = a;
  *hi = b > a ? b : a;
}

}  // namespace

// x86-64: an AVX2 clone is picked at run time where the CPU has it. Lanes are
// independent and there is no FMA (-ffp-contract=off), so both clones give
// identical bits; other targets build the plain version.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(PYMARS_NO_CLONES)
#define PYMARS_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PYMARS_SIMD_CLONES
#endif

namespace {
// acc[0..n) += v * w[0..n), element by element (the vectorised inner loop).
inline __attribute__((always_inline)) void axpy(float* __restrict acc, const float* __restrict w, float v, uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) acc[i] = acc[i] + v * w[i];
}
}  // namespace

PYMARS_SIMD_CLONES void run_conv(const FloatOp& op, const float* in, Shape s, float* out) {
  const Shape o = float_op_shape(op, s);
  const int32_t k = int32_t(op.k), pad = k / 2, st = int32_t(op.stride);
  const uint32_t cin = op.cin, cout = op.cout;
  for (uint32_t oy = 0; oy < o.h; ++oy) {
    for (uint32_t ox = 0; ox < o.w; ++ox) {
      float* acc = out + (size_t(oy) * o.w + ox) * cout;
      for (uint32_t oc = 0; oc < cout; ++oc) acc[oc] = op.bias[oc];
      // Order per output element: kernel row, kernel column, input channel (normative).
      for (int32_t ky = 0; ky < k; ++ky) {
        const int32_t iy = int32_t(oy) * st + ky - pad;
        if (iy < 0 || iy >= int32_t(s.h)) continue;  // zero padding contributes nothing
        for (int32_t kx = 0; kx < k; ++kx) {
          const int32_t ix = int32_t(ox) * st + kx - pad;
          if (ix < 0 || ix >= int32_t(s.w)) continue;
          const float* px = in + (size_t(iy) * s.w + ix) * cin;
          const float* wt = op.weight + size_t(ky * k + kx) * cin * cout;
          for (uint32_t ic = 0; ic < cin; ++ic) axpy(acc, wt + size_t(ic) * cout, px[ic], cout);
        }
      }
    }
  }
}

PYMARS_SIMD_CLONES void run_sgdn(const FloatOp& op, float* x, Shape s, float* scratch) {
  const uint32_t c = op.cin;
  const size_t n = size_t(s.h) * s.w;
  for (size_t p = 0; p < n; ++p) {
    float* px = x + p * c;
    // Denominators: beta, then gamma_ij |x_j| for j ascending (normative).
    for (uint32_t i = 0; i < c; ++i) scratch[i] = op.beta[i];
    for (uint32_t j = 0; j < c; ++j) axpy(scratch, op.gamma + size_t(j) * c, px[j] < 0.0f ? -px[j] : px[j], c);
    for (uint32_t i = 0; i < c; ++i) px[i] = px[i] / scratch[i];
  }
}

void run_relu(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

float* run_float_ops(const FloatOp* ops, uint32_t n, float* a, float* b, Shape* s, float* row_scratch) {
  float* cur = a;
  float* other = b;
  for (uint32_t i = 0; i < n; ++i) {
    const FloatOp& op = ops[i];
    if (op.type == OpType::Conv) {
      run_conv(op, cur, *s, other);
      *s = float_op_shape(op, *s);
      float* t = cur;
      cur = other;
      other = t;
    } else if (op.type == OpType::SGDN) {
      run_sgdn(op, cur, *s, row_scratch);
    } else {
      run_relu(cur, s->size());
    }
  }
  return cur;
}

namespace {
// Floor division by 2^shift with round-half-up, in 64 bits (no overflow, no
// implementation-defined right shift of negative numbers).
inline int64_t rounding_shift(int64_t acc, uint32_t shift) {
  if (shift == 0) return acc;
  int64_t v = acc + (int64_t(1) << (shift - 1));
  int64_t d = int64_t(1) << shift;
  int64_t q = v / d;
  if ((v % d) != 0 && v < 0) --q;  // C++ division truncates; make it floor
  return q;
}
}  // namespace

void run_iconv(const IntOp& op, const int32_t* in, Shape s, int32_t* out, int32_t* d2s_scratch) {
  const int32_t k = int32_t(op.k), pad = k / 2;
  const size_t plane = size_t(s.h) * s.w;
  int32_t* acc_out = op.depth_to_space ? d2s_scratch : out;
  for (uint32_t oc = 0; oc < op.cout; ++oc) {
    int32_t* dst = acc_out + oc * plane;
    for (size_t i = 0; i < plane; ++i) dst[i] = op.bias[oc];
    const int8_t* wk = op.weight + size_t(oc) * op.cin * k * k;
    for (uint32_t ic = 0; ic < op.cin; ++ic) {
      const int32_t* src = in + ic * plane;
      for (int32_t ky = 0; ky < k; ++ky) {
        int32_t y0, y1;
        valid_range(int32_t(s.h), int32_t(s.h), 1, ky - pad, &y0, &y1);
        for (int32_t kx = 0; kx < k; ++kx) {
          const int32_t w = wk[(ic * k + ky) * k + kx];
          if (w == 0) continue;
          int32_t x0, x1;
          valid_range(int32_t(s.w), int32_t(s.w), 1, kx - pad, &x0, &x1);
          for (int32_t y = y0; y < y1; ++y) {
            const int32_t* row = src + size_t(y + ky - pad) * s.w;
            int32_t* drow = dst + size_t(y) * s.w;
            const int32_t off = kx - pad;
            // load_model() proved |acc| < 2^31 for every input in range.
            for (int32_t x = x0; x < x1; ++x) drow[x] += w * row[x + off];
          }
        }
      }
    }
    const int64_t lo = op.out_min[oc], hi = op.out_max[oc];
    for (size_t i = 0; i < plane; ++i) {
      int64_t v = rounding_shift(dst[i], op.shift[oc]);
      dst[i] = int32_t(v < lo ? lo : (v > hi ? hi : v));
    }
  }
  if (op.depth_to_space) {
    // Channel 4c + 2i + j at (y, x) -> channel c at (2y + i, 2x + j).
    const uint32_t cq = op.cout / 4, w2 = 2 * s.w;
    for (uint32_t c = 0; c < cq; ++c)
      for (uint32_t ij = 0; ij < 4; ++ij) {
        const int32_t* src = d2s_scratch + (4 * c + ij) * plane;
        const uint32_t di = ij >> 1, dj = ij & 1;
        for (uint32_t y = 0; y < s.h; ++y)
          for (uint32_t x = 0; x < s.w; ++x)
            out[size_t(c) * 4 * plane + size_t(2 * y + di) * w2 + 2 * x + dj] = src[size_t(y) * s.w + x];
      }
  }
}

int32_t* run_int_ops(const IntOp* ops, uint32_t n, int32_t* a, int32_t* b, Shape* s, int32_t* d2s_scratch) {
  int32_t* cur = a;
  int32_t* other = b;
  for (uint32_t i = 0; i < n; ++i) {
    run_iconv(ops[i], cur, *s, other, d2s_scratch);
    *s = int_op_shape(ops[i], *s);
    int32_t* t = cur;
    cur = other;
    other = t;
  }
  return cur;
}

int32_t round_to_int(float v, int32_t limit) {
  if (!(v == v)) return 0;  // NaN
  const float lim = float(limit);
  if (v > lim) v = lim;
  if (v < -lim) v = -lim;
  const float t = v + 0.5f;
  int32_t i = int32_t(t);  // truncation toward zero
  if (float(i) > t) --i;   // floor for negative non-integers
  return i;
}

}  // namespace pymars
