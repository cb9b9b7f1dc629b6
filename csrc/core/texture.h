// texture.h - the texture matcher: LBP codes, LBP histograms, fixed-point
// KL / Jensen-Shannon divergences and nearest-neighbour search.
//
// What it is for: choosing a reference per tile on the rover (REMAC's shallow
// reference selector, MarsQE's semantic matching, Eq. 4 of MarsQE:
//   n = argmin_i D_KL( LBP(reference_i) || LBP(query) ) )
// and the same computation on the ground. The chosen reference id is written
// into the bitstream, so the *selection* must be identical on x86-64, aarch64
// and big-endian PowerPC: every function used for it is integer-only (no
// float, no libm, no host byte order, no 128-bit integers). The *_f64
// divergences are for ground tools only and must never decide a rover choice.
//
// What it must not do: allocate (all outputs are caller buffers, scratch is a
// small fixed stack array), throw, or depend on anything but its arguments.
// The full definitions, tables and fixed-point format are in
// docs/texture-matcher.md; pymars/texture/oracle.py is the NumPy oracle and
// a pure-integer Python twin of the fixed-point divergences.
//
// Example (whole-image riu2 histogram, then a match against a dictionary):
//     uint32_t h[10];
//     lbp_histograms(gray, H, W, W, LbpVariant::kRotationInvariantUniform, 0, h);
//     uint32_t best_div;
//     size_t best = 0;
//     nearest_histogram(h, dictionary, count, 10, Divergence::kKL, &best, &best_div);
#pragma once
#include <cstddef>
#include <cstdint>

namespace pymars {

// ------------------------------------------------------------------ LBP codes
//
// Neighbour order (bit p of the 8-bit pattern, dy = row offset, dx = column
// offset; rows grow downwards): counter-clockwise from east, so that a
// rotation of the image by a multiple of 45 degrees is a circular rotation of
// the bits:
//   p:  0    1     2    3     4    5     6    7
//       E    NE    N    NW    W    SW    S    SE
//  dy:  0   -1    -1   -1     0   +1    +1   +1
//  dx: +1   +1     0   -1    -1   -1     0   +1
// Bit p is set when neighbour >= centre. Border pixels read their neighbours
// with edge replication (coordinates clamped into the image), so every pixel
// has a code and a 1x1 image has code 255.
enum class LbpVariant : uint8_t {
  kDefault = 0,                   // the 8-bit pattern itself, 256 bins
  kUniform = 1,                   // 58 uniform patterns -> 0..57, others 58; 59 bins
  kRotationInvariantUniform = 2,  // riu2: set bits of a uniform pattern 0..8, others 9; 10 bins
};

// Bins of a variant's histogram (256, 59 or 10); 0 for an invalid variant.
uint32_t lbp_bins(LbpVariant variant);

// The code of an 8-bit pattern under a variant (the lookup table that
// lbp_codes applies). Uniform ordering: 0x00 -> 0; a circular run of k ones
// (1 <= k <= 7) starting at bit r, i.e. ((1 << k) - 1) rotated left by r,
// -> 1 + 8 (k - 1) + r; 0xFF -> 57; non-uniform (more than two 0/1
// transitions around the circle) -> 58.
uint8_t lbp_map_pattern(uint8_t pattern, LbpVariant variant);

// LBP codes of a gray image (height x width, `stride` bytes between rows,
// stride >= width) into `codes` (`codes_stride` >= width). Returns false (and
// writes nothing) for a null pointer, a short stride or an invalid variant.
// An empty image (height or width 0) is valid and writes nothing. `codes`
// must not overlap `gray` (rows below are read after rows above are written).
// Cost: 8 compares + shifts per pixel (vectorisable), plus one table lookup
// per pixel for the uniform variants.
bool lbp_codes(const uint8_t* gray, uint32_t height, uint32_t width, size_t stride, LbpVariant variant,
               uint8_t* codes, size_t codes_stride);

// Gray from interleaved 8-bit RGB with the exact integer formula
//   gray = (77 R + 150 G + 29 B + 128) >> 8
// (BT.601 luma weights scaled to 256, rounded to nearest; never above 255).
// `stride` and `gray_stride` are in bytes (stride >= 3 * width).
bool rgb_to_gray(const uint8_t* rgb, uint32_t height, uint32_t width, size_t stride, uint8_t* gray,
                 size_t gray_stride);

// ------------------------------------------------------------------ histograms
//
// Patch grid: non-overlapping patch x patch squares from the top-left corner;
// the last column / row of patches is narrower / shorter when patch does not
// divide the width / height (partial patches are kept, with their smaller
// pixel count). patch == 0 means one patch covering the whole image.
// Layout of the output: [patches_y][patches_x][bins] uint32 counts.
struct PatchGrid {
  uint32_t patches_y;
  uint32_t patches_x;
};
PatchGrid lbp_patch_grid(uint32_t height, uint32_t width, uint32_t patch);

// Number of uint32 counts lbp_histograms writes (patches_y * patches_x * bins);
// 0 for an invalid variant or an empty image.
size_t lbp_histogram_size(uint32_t height, uint32_t width, uint32_t patch, LbpVariant variant);

// Computes the codes row by row (a fixed stack buffer, no code image) and
// counts them into `histograms` (lbp_histogram_size entries, overwritten).
bool lbp_histograms(const uint8_t* gray, uint32_t height, uint32_t width, size_t stride, LbpVariant variant,
                    uint32_t patch, uint32_t* histograms);

// ------------------------------------------------------------------ divergences
//
// Inputs are count histograms (uint32 per bin, 1 <= bins <= kMaxDivergenceBins).
// Smoothing (both histograms, before anything else): with N = sum of counts,
//   a_i = (c_i / N + eps) / (1 + bins * eps),   eps = 2^-16
// (an empty histogram, N == 0, counts as one in every bin: the uniform
// distribution), so no bin is ever zero and a bin
// that one patch lacks costs at most ~16 bits instead of infinity.
// Fixed-point evaluation (bit-identical on every CPU):
//   A_i = round(c_i * 2^30 / N) + 2^14      (Q30 probability + eps in Q30;
//                                            round = (c 2^30 + floor(N/2)) div N)
//   log2 in Q24 from a 1025-entry table of log2(1 + j/1024), generated at
//   compile time by the integer square-and-compare algorithm, with linear
//   interpolation (fixed_log2_q24 below);
//   KL = (sum A_i L(A_i) - sum A_i L(B_i)) / S_A - L(S_A) + L(S_B)
//   with S_A = sum A_i (this normalises the smoothed histograms exactly).
// Output: bits in Q16 (value / 65536 = bits), rounded, negative rounding
// residue clamped to 0. Agrees with the *_f64 versions within 4e-5 bits
// (worst case: the Q30 rounding of a tiny bin against eps; the Q16 output
// rounding alone is 7.6e-6; random histograms stay below 1e-5).
constexpr uint32_t kMaxDivergenceBins = 65536;
constexpr uint32_t kDivergenceProbabilityBits = 30;  // Q30 probabilities
constexpr uint32_t kDivergenceEpsilonLog2 = 16;      // eps = 2^-16
constexpr uint32_t kDivergenceFractionBits = 16;     // output: bits in Q16
constexpr uint32_t kDivergenceInvalid = 0xFFFFFFFFu;  // returned for bad arguments

enum class Divergence : uint8_t {
  kKL = 0,  // D_KL(p || q)
  kJS = 1,  // Jensen-Shannon: (D_KL(p || m) + D_KL(q || m)) / 2, m the mixture
};

// log2(x) in Q24 for x >= 1 (0 for x == 0). Exact at powers of two, never
// above the true value, at most 5 units of 2^-24 below it elsewhere.
uint32_t fixed_log2_q24(uint64_t x);

// D_KL(p || q) in bits, Q16.
uint32_t kl_divergence_fixed(const uint32_t* p, const uint32_t* q, size_t bins);
// Jensen-Shannon divergence in bits, Q16 (at most 65536 = 1 bit). The mixture
// is M_i = A_i + B_i normalised by S_A + S_B (equal to (a + b) / 2 up to the
// Q30 rounding of the two totals).
uint32_t js_divergence_fixed(const uint32_t* p, const uint32_t* q, size_t bins);
uint32_t divergence_fixed(Divergence metric, const uint32_t* p, const uint32_t* q, size_t bins);

// Ground-only double versions of the same definitions (bits; libm log2).
// Negative values (bad arguments) are -1.
double kl_divergence_f64(const uint32_t* p, const uint32_t* q, size_t bins);
double js_divergence_f64(const uint32_t* p, const uint32_t* q, size_t bins);

// ------------------------------------------------------------------ matching
//
// Index of the dictionary histogram closest to `query` (dictionary: `count`
// histograms of `bins` counts, contiguous). The KL direction follows MarsQE
// Eq. 4: D_KL(dictionary[i] || query), i.e. the reference is p. Ties go to the
// lowest index. Returns false (outputs untouched) for count == 0 or bad
// arguments. Cost: count * bins * (2 log2 + 1 division) integer operations.
bool nearest_histogram(const uint32_t* query, const uint32_t* dictionary, size_t count, size_t bins,
                       Divergence metric, size_t* index, uint32_t* divergence_q16);
// Ground-only double version (same direction, same tie rule).
bool nearest_histogram_f64(const uint32_t* query, const uint32_t* dictionary, size_t count, size_t bins,
                           Divergence metric, size_t* index, double* divergence);

}  // namespace pymars
