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
enum class NlCoder : uint8_t { Golomb = 0, Arith = 1 };

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
size_t nl_encode(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                 NlCoder coder, NlState* state, uint8_t* out, size_t cap, uint8_t* recon);

// The same coder (NlCoder::Arith only) on 12- or 16-bit samples (`depth`): the
// sample range is 0 .. 2^depth - 1, k is in units of those samples, and the
// stored form holds each sample as 2 bytes, little-endian (docs/bitstream.md
// §4.8, "Samples at the file's bit depth"). Samples above the range are a
// caller's error (load them clamped).
size_t nl_encode16(const uint16_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                   uint32_t depth, NlState* state, uint8_t* out, size_t cap, uint16_t* recon);
bool nl_decode16(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                 uint32_t depth, NlState* state, uint16_t* out);

// Decodes a payload written by nl_encode into out (h x w x channels interleaved).
// False when the payload is damaged (too short, a code past its end, a value out
// of range, or bytes left over that the coder did not write).
bool nl_decode(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t k, NlCoder coder,
               NlState* state, uint8_t* out);

}  // namespace pymars
