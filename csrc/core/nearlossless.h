// nearlossless.h - the near-lossless / lossless tile coder (docs/bitstream.md §4.7).
//
// Qualities at the top of a model's range (its blob's NLQT section) code a tile's
// 8-bit samples directly with a LOCO-I style predictive coder, every sample within
// +-k of the original (k = 0: lossless): median edge predictor, 365 gradient
// contexts with bias correction, adaptive Golomb-Rice codes (the JPEG-LS
// algorithm without its run mode). The learned transforms stop near 31-33 dB on
// textured gray tiles; this coder covers ~33 dB to lossless at the cost of a
// classic near-lossless coder, in integers only: identical on every CPU, no heap
// (the caller passes the state), a few operations per sample on the rover.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pymars {

constexpr uint32_t kNlContexts = 365;
constexpr uint32_t kNlMaxError = 32;  // largest k a blob may ask for

// Per-context adaptive state (reset for every channel of every tile).
struct NlState {
  int32_t A[kNlContexts + 1];
  int32_t B[kNlContexts + 1];
  int32_t C[kNlContexts + 1];
  int32_t N[kNlContexts + 1];
};

// Worst-case payload bytes for an h x w x channels tile (every sample at the
// escape code length), used to size the encoder's stream buffer.
size_t nl_max_bytes(uint32_t h, uint32_t w, uint32_t channels);

// Codes `channels` interleaved 8-bit planes (row_stride samples per row) of an
// h x w tile with maximum error k into out. Returns the bytes written, or 0 when
// cap is too small. `recon` (h*w*channels, may be null) receives the decoded samples.
size_t nl_encode(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
                 NlState* state, uint8_t* out, size_t cap, uint8_t* recon);

// Decodes a payload written by nl_encode into out (h x w x channels interleaved).
// False when the payload is damaged (too short, a code past its end, or bytes left
// over that are not the final zero padding).
bool nl_decode(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t k,
               NlState* state, uint8_t* out);

}  // namespace pymars
