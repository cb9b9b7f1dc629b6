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

void run_conv(const FloatOp& op, const float* in, Shape s, float* out) {
  const Shape o = float_op_shape(op, s);
  const int32_t k = int32_t(op.k), pad = k / 2, st = int32_t(op.stride);
  const size_t plane_in = size_t(s.h) * s.w, plane_out = size_t(o.h) * o.w;
  for (uint32_t oc = 0; oc < op.cout; ++oc) {
    float* dst = out + oc * plane_out;
    const float b = op.bias[oc];
    for (size_t i = 0; i < plane_out; ++i) dst[i] = b;
    const float* wk = op.weight + size_t(oc) * op.cin * k * k;
    // Order per output element: input channel, kernel row, kernel column (normative).
    for (uint32_t ic = 0; ic < op.cin; ++ic) {
      const float* src = in + ic * plane_in;
      for (int32_t ky = 0; ky < k; ++ky) {
        int32_t y0, y1;
        valid_range(int32_t(o.h), int32_t(s.h), st, ky - pad, &y0, &y1);
        for (int32_t kx = 0; kx < k; ++kx) {
          const float w = wk[(ic * k + ky) * k + kx];
          int32_t x0, x1;
          valid_range(int32_t(o.w), int32_t(s.w), st, kx - pad, &x0, &x1);
          for (int32_t y = y0; y < y1; ++y) {
            const float* row = src + size_t(y * st + ky - pad) * s.w;
            float* drow = dst + size_t(y) * o.w;
            const int32_t off = kx - pad;
            if (st == 1) {
              for (int32_t x = x0; x < x1; ++x) drow[x] = drow[x] + w * row[x + off];
            } else {
              for (int32_t x = x0; x < x1; ++x) drow[x] = drow[x] + w * row[2 * x + off];
            }
          }
        }
      }
    }
  }
}

void run_sgdn(const FloatOp& op, float* x, Shape s, float* row_scratch) {
  const uint32_t c = op.cin;
  const size_t plane = size_t(s.h) * s.w;
  for (uint32_t y = 0; y < s.h; ++y) {
    // Denominators of one image row for all channels: beta, then gamma_ij |x_j| for j ascending.
    for (uint32_t i = 0; i < c; ++i) {
      float* d = row_scratch + size_t(i) * s.w;
      for (uint32_t xx = 0; xx < s.w; ++xx) d[xx] = op.beta[i];
    }
    for (uint32_t j = 0; j < c; ++j) {
      const float* xj = x + j * plane + size_t(y) * s.w;
      for (uint32_t i = 0; i < c; ++i) {
        const float g = op.gamma[size_t(i) * c + j];
        if (g == 0.0f) continue;  // adds exactly +0: skipping keeps the result bit-identical
        float* d = row_scratch + size_t(i) * s.w;
        for (uint32_t xx = 0; xx < s.w; ++xx) {
          const float v = xj[xx];
          d[xx] = d[xx] + g * (v < 0.0f ? -v : v);
        }
      }
    }
    for (uint32_t i = 0; i < c; ++i) {
      float* xi = x + i * plane + size_t(y) * s.w;
      const float* d = row_scratch + size_t(i) * s.w;
      for (uint32_t xx = 0; xx < s.w; ++xx) xi[xx] = xi[xx] / d[xx];
    }
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
