// transforms.h - the rover's float ops and the shared integer ops, on C x H x W planes.
//
// Float ops work on interleaved H x W x C tensors and follow the normative
// evaluation order of docs/model-blob.md (bias first, then kernel row, kernel
// column, input channel; no FMA: the build uses -ffp-contract=off) so that the
// encoder gives the same bits on every CPU. Integer ops work on C x H x W planes.
// Vectorising across output channels does not change any element's arithmetic,
// so SIMD and scalar builds give identical bits.
// Integer ops are exact by construction. Nothing here allocates: callers pass
// every buffer (see workspace sizes in tile_codec.h).
#pragma once
#include <cstddef>
#include <cstdint>

#include "model.h"

namespace pymars {

struct Shape {
  uint32_t c = 0, h = 0, w = 0;
  size_t size() const { return size_t(c) * h * w; }
};

// Output shape of a float op (Conv: ceil(n / stride)).
Shape float_op_shape(const FloatOp& op, Shape in);
// Output shape of an integer op (depth-to-space doubles the sides).
Shape int_op_shape(const IntOp& op, Shape in);

// out = conv(in), both H x W x C; `out` must not alias `in`.
void run_conv(const FloatOp& op, const float* in, Shape s, float* out);
// In-place simplified GDN on H x W x C; `scratch` holds op.cin floats.
void run_sgdn(const FloatOp& op, float* x, Shape s, float* scratch);
void run_relu(float* x, size_t n);

// Runs a float op list with ping-pong buffers a/b (each large enough for every
// intermediate); returns the buffer holding the result and its shape.
float* run_float_ops(const FloatOp* ops, uint32_t n, float* a, float* b, Shape* s, float* scratch);

// out = integer conv (with depth-to-space if flagged); `out` must not alias `in`.
void run_iconv(const IntOp& op, const int32_t* in, Shape s, int32_t* out, int32_t* d2s_scratch);
int32_t* run_int_ops(const IntOp* ops, uint32_t n, int32_t* a, int32_t* b, Shape* s, int32_t* d2s_scratch);

// floor(v + 0.5) after clamping v to [-limit, limit]; NaN gives 0. No libm.
int32_t round_to_int(float v, int32_t limit);

}  // namespace pymars
