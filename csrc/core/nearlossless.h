// nearlossless.h - the near-lossless / lossless tile coder (docs/bitstream.md §4.7, §4.8).
//
// Qualities at the top of a model's range (its blob's NLQT section) code a tile's
// 8-bit samples directly with a LOCO-I style predictive coder, every sample within
// +-k of the original (k = 0: lossless): median edge predictor, 365 gradient
// contexts with bias correction. Two entropy coders for the quantised errors:
//   * Golomb (§4.7): adaptive Golomb-Rice codes, the JPEG-LS algorithm without its
//     run mode; at least one bit per sample, so costly on smooth tiles at large k;
//   * Arith (§4.8, DIMS flag bit 1): an adaptive binary range coder over a
//     zero / sign / magnitude binarisation, contexts from the LOCO-I activity, the
//     gradient context and (RGB) the previous channel's local prediction error. A
//     smooth tile at large k costs a few hundredths of a bit per sample.
//   * Arith2 (§4.8, DIMS flag bits 1 and 2): the same binarisation and range coder
//     with a richer, learned context model. Every bin also has a probability per
//     gradient context (365) x previous-channel class (3), started from trained
//     priors (blob section NLPR) instead of 1/2: a 256 x 256 tile is too short to
//     learn 17,520 probabilities, a training set is not. Channel 0 codes with the
//     mean of that probability and §4.8's activity-context one; the colour
//     difference planes use the gradient-context one alone, skip the LOCO-I bias
//     correction at k <= 2 (their planes are piecewise flat: a correction moves the
//     prediction off the exact value), and the last channel takes its previous-
//     channel class from the previous difference plane.
// The learned transforms stop near 29-33 dB on textured gray tiles; this coder
// covers the qualities above in integers only: identical on every CPU, no heap
// (the caller passes the state), a few operations per sample on the rover.
#pragma once
#include <cstddef>
#include <cstdint>

#include "range_coder.h"

namespace pymars {

constexpr uint32_t kNlContexts = 365;
constexpr uint32_t kNlMaxError = 32;  // largest k a blob may ask for

// The entropy coder of a model's near-lossless tiles (DIMS flag bit 1 picks Arith).
enum class NlCoder : uint8_t { Golomb = 0, Arith = 1, Arith2 = 2 };

// Arith contexts: activity class x flat-gradient flag x previous-channel class.
constexpr uint32_t kNlActivity = 14;
constexpr uint32_t kNlCross = 3;
constexpr uint32_t kNlAcContexts = kNlActivity * 2 * kNlCross;
constexpr uint32_t kNlUnary = 14;   // magnitude bins coded in unary before the escape
constexpr uint32_t kNlEscape = 9;   // Exp-Golomb prefix bins of the escape (values < 512), 8-bit samples
constexpr uint32_t kNlEscapeWide = 17;  // the same for 12/16-bit samples (values < 2^17)
constexpr int32_t kNlShiftBelow = 1;  // low bits of a magnitude: the context's Golomb k minus this

// One adaptive binary probability (Arith), range_coder.h.
using NlProb = AdaptiveBit;

// Arith2: gradient context (0..364) x previous-channel class, and the bins each one
// has: zero, sign, then the kNlUnary magnitude bins.
constexpr uint32_t kNlQContexts = kNlContexts * kNlCross;
constexpr uint32_t kNlQBins = 2 + kNlUnary;
// Arith2 priors are trained per k class: k = 0, 1..2, 3..5, 6 and above.
constexpr uint32_t kNlKClasses = 4;
constexpr uint32_t kNlChromaBiasFromK = 3;  // difference planes use the bias correction from this k
uint32_t nl_k_class(uint32_t k);

// Arith2's initial probabilities (blob section NLPR): u16 P(0) in 1..32767 for
// [kind][k class][context][bin]; kind = the channel (gray: 0; RGB: 0, 1, 2). A null
// table starts every probability at 1/2.
struct NlPriors {
  const uint16_t* table = nullptr;
  uint32_t kinds = 0;
};

// Counts of coded 0 and 1 bins per Arith2 context (training the priors; encoder only).
struct NlCounts {
  uint32_t n[3][kNlQContexts][kNlQBins][2];
};

// Per-context adaptive state (reset for every channel of every tile).
struct NlState {
  int32_t A[kNlContexts + 1];
  int32_t B[kNlContexts + 1];
  int32_t C[kNlContexts + 1];
  int32_t N[kNlContexts + 1];
  // Arith: probabilities of a 0 bin.
  NlProb p_zero[kNlAcContexts];
  NlProb p_sign[kNlAcContexts];
  NlProb p_mag[kNlAcContexts][kNlUnary];
  NlProb p_esc[kNlActivity][kNlEscapeWide];
  NlProb p_low[kNlActivity][3];
  // Arith2: the gradient-context probabilities of the channel being coded.
  NlProb p_q[kNlQContexts][kNlQBins];
};

// Worst-case payload bytes for an h x w x channels tile (every sample at the
// escape code length), used to size the encoder's stream buffer. 4 bytes per
// sample: it also covers the Arith coder at 12/16 bits (nl_encode16), whose
// payload never exceeds the stored form's 1 + 2 h w channels bytes.
size_t nl_max_bytes(uint32_t h, uint32_t w, uint32_t channels);

// Codes `channels` interleaved 8-bit planes (row_stride samples per row) of an
// h x w tile with maximum error k into out. Returns the bytes written, or 0 when
// cap is too small. `recon` (h*w*channels) receives the decoded samples. With
// NlCoder::Arith a tile the range coder would not shrink below its raw size is
// stored (form byte 1, §4.8), so nl_max_bytes always suffices.
// Arith2 reads `priors` (none: 1/2) and, when `counts` is given, adds its bins to it.
size_t nl_encode(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                 NlCoder coder, NlState* state, uint8_t* out, size_t cap, uint8_t* recon,
                 const NlPriors& priors = NlPriors{}, NlCounts* counts = nullptr);

// The same coders (NlCoder::Arith or Arith2) on 12- or 16-bit samples (`depth`): the
// sample range is 0 .. 2^depth - 1, k is in units of those samples, and the
// stored form holds each sample as 2 bytes, little-endian (docs/bitstream.md
// §4.8, "Samples at the file's bit depth"). Samples above the range are a
// caller's error (load them clamped).
size_t nl_encode16(const uint16_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                   uint32_t depth, NlState* state, uint8_t* out, size_t cap, uint16_t* recon,
                   NlCoder coder = NlCoder::Arith, const NlPriors& priors = NlPriors{});
bool nl_decode16(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                 uint32_t depth, NlState* state, uint16_t* out, NlCoder coder = NlCoder::Arith,
                 const NlPriors& priors = NlPriors{});

// Decodes a payload written by nl_encode into out (h x w x channels interleaved).
// False when the payload is damaged (too short, a code past its end, a value out
// of range, or bytes left over that the coder did not write).
bool nl_decode(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t k, NlCoder coder,
               NlState* state, uint8_t* out, const NlPriors& priors = NlPriors{});

}  // namespace pymars
