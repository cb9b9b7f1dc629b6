// wavelet.h - the wavelet tile coder (docs/bitstream.md §4.9).
//
// Middle and high qualities of a model's range (its blob's WVQT section) code a
// tile's 8-bit samples with an integer wavelet transform: the CDF 9/7 filters of
// JPEG 2000 as four integer lifting steps (Q12 coefficients, rounding shifts),
// up to five levels, a dead-zone quantiser whose step per band makes the error of
// every band count the same in the pixel domain, and context-modelled coding of
// the quantised coefficients with the adaptive binary range coder (range_coder.h):
// zero / sign / magnitude, contexts from the magnitudes of the already-coded
// neighbours and of the parent in the next coarser band. RGB tiles go through the
// reversible YCoCg-R colour transform first.
//
// Why it exists: on the development tiles the learned transforms (rover analysis
// capped at 15,000 MACs per pixel) stop near 29 dB on Navcam and 33-37 dB on
// smooth frames, and the near-lossless coder spends more bits than a transform
// coder below ~45 dB. Rover spacecraft have flown wavelet coders for the same
// reason (ICER on MER and MSL). Everything here is integer arithmetic with a fixed
// order, so the bytes are identical on every CPU; no heap (the caller passes the
// workspace); a few dozen integer operations per sample on the rover.
#pragma once
#include <cstddef>
#include <cstdint>

#include "range_coder.h"

namespace pymars {

constexpr uint32_t kWvMaxLevels = 5;
constexpr uint32_t kWvContexts = 14;    // neighbourhood-magnitude classes
constexpr uint32_t kWvLevelClasses = 3;  // finest level, second finest, coarser
constexpr uint32_t kWvUnary = 14;       // magnitude bins coded in unary before the escape
constexpr uint32_t kWvEscape = 28;      // Exp-Golomb prefix bins of the escape
constexpr uint32_t kWvSignContexts = 3 * 9;  // orientation x signs of the west and north neighbours

// Adaptive state of one plane (set from the model's priors for every plane of
// every tile): one AdaptiveBit per binary context, at these offsets.
constexpr uint32_t kWvZero = 0;                                         // [level class][context]
constexpr uint32_t kWvMag = kWvZero + kWvLevelClasses * kWvContexts;    // [context][unary bin]
constexpr uint32_t kWvSign = kWvMag + kWvContexts * kWvUnary;           // [sign context]
constexpr uint32_t kWvEsc = kWvSign + kWvSignContexts;                  // [prefix bin]
constexpr uint32_t kWvLLZero = kWvEsc + kWvEscape;                      // [context]
constexpr uint32_t kWvLLSign = kWvLLZero + kWvContexts;                 // one
constexpr uint32_t kWvLLMag = kWvLLSign + 1;                            // [context][unary bin]
constexpr uint32_t kWvStateBits = kWvLLMag + kWvContexts * kWvUnary;    // 504
struct WvState {
  AdaptiveBit bit[kWvStateBits];
};

// Prior tables (blob section WVPR): the initial P(bin = 0) of every context, 15-bit,
// per plane kind (gray or Y; Co and Cg) and step class, trained on images
// outside the evaluation tiles (pymars/train/codec/wavelet_priors.py). Without them every
// context starts at 1/2, and a tile's short bands pay to learn their statistics.
constexpr uint32_t kWvStepClasses = 6;

// Tile sides that touch another tile (TileDims::seams). Coefficients on a band's
// row or column at such a side are quantised with 3/4 of the band's step: the
// symmetric extension at a tile edge leaves larger errors on its edge pixels,
// visible as a seam where two tiles meet (an image border has no seam).
constexpr uint32_t kWvSeamLeft = 1, kWvSeamTop = 2, kWvSeamRight = 4, kWvSeamBottom = 8;
struct WvPriors {
  const uint16_t* table = nullptr;  // [kinds][kWvStepClasses][kWvStateBits]; null: all 1/2
  uint32_t kinds = 0;               // 1 (gray models) or 2 (colour)
};

// Step class of a quantiser step: steps below 2, 4, 8, 16, 32 levels, and the rest.
uint32_t wv_step_class(uint32_t step_q4);

// Counts of coded 0 and 1 bins per context (training the priors; encoder only).
struct WvCounts {
  uint32_t n[2][kWvStateBits][2];  // [plane kind][context][bin]
};

// int32 workspace entries the coder needs for an h x w x channels tile.
size_t wv_work_ints(uint32_t h, uint32_t w, uint32_t channels);

// Largest payload wv_encode writes for an h x w x channels tile (a tile the coder
// would not shrink below its raw size is stored, form byte 1).
size_t wv_max_bytes(uint32_t h, uint32_t w, uint32_t channels);

// Prediction of a tile from a frame already sent (sequence coding, docs/bitstream.md
// §4.10). `samples` is the prediction tile (h x w x channels, row stride w *
// channels): the earlier frame's decoded samples at the tile's displacement plus
// the per-channel offset, edge-replicated outside the earlier frame. Rows
// [vy0, vy1) and columns [vx0, vx1) of the tile are the ones the earlier frame
// covers. The prediction is transformed and quantised like the tile itself;
// each band then codes its levels minus gain x the prediction's levels, with
// one gain per band (0, 1/4, 1/2, 3/4 or 1, the encoder's choice) for the
// coefficients whose support lies inside the covered rectangle, and the levels
// themselves elsewhere. The levels, and so the reconstruction, are those of the
// tile alone: only their coding changes. `work`: wv_work_ints() more ints.
struct WvPrediction {
  const uint8_t* samples = nullptr;
  uint32_t vy0 = 0, vy1 = 0, vx0 = 0, vx1 = 0;
  int32_t* work = nullptr;
};
constexpr uint32_t kWvGains = 5;  // gain g / 4, g = 0..4

// Codes `channels` (1 or 3) interleaved 8-bit planes (row_stride samples per row)
// of an h x w tile with the quality's step (`step_q4`: 1/16 of an 8-bit level,
// >= 1) into out. Returns the bytes written (0: cap too small).
// `counts` (null: none) accumulates the bins coded; `seams`: kWvSeam* bits.
size_t wv_encode(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels,
                 uint32_t step_q4, const WvPriors& priors, WvState* state, int32_t* work, uint8_t* out, size_t cap,
                 WvCounts* counts = nullptr, uint32_t seams = 0);

// The same with a prediction (sequence coding): writes the range-coded stream only
// (no form byte, never stored), returns its length, 0 when it does not fit `cap`.
size_t wv_encode_predicted(const uint8_t* samples, size_t row_stride, uint32_t h, uint32_t w, uint32_t channels,
                           uint32_t step_q4, const WvPriors& priors, WvState* state, int32_t* work,
                           const WvPrediction& pred, uint8_t* out, size_t cap, uint32_t seams = 0);

// Decodes a payload written by wv_encode into out (h x w x channels interleaved).
// False when the payload is damaged (too short, a value out of range, or bytes
// left over that the coder did not write).
bool wv_decode(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels, uint32_t step_q4,
               const WvPriors& priors, WvState* state, int32_t* work, uint8_t* out, uint32_t seams = 0);

// Decodes a stream written by wv_encode_predicted with the same prediction.
bool wv_decode_predicted(const uint8_t* data, size_t len, uint32_t h, uint32_t w, uint32_t channels,
                         uint32_t step_q4, const WvPriors& priors, WvState* state, int32_t* work,
                         const WvPrediction& pred, uint8_t* out, uint32_t seams = 0);

}  // namespace pymars
