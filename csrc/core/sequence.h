// sequence.h - coding a frame against a frame already sent (docs/bitstream.md §4.10).
//
// Rovers shoot mosaics, stereo pairs and repeated pointings: a new frame often
// shows what an earlier one showed, and both sides hold that earlier frame
// exactly (the rover its reconstruction, the ground the decoded file; the
// wavelet and near-lossless coders are integer, so the two are the same
// bytes). This module is everything the two sides need besides the wavelet
// coder's own predicted mode (wavelet.h, WvPrediction):
//
// * the reference (SequenceRef): the earlier frame's decoded samples and the
//   8-byte id that names it in the new file's header (the first 8 bytes of
//   the SHA-256 of the earlier *file*), so that a missing or wrong reference is
//   refused, never mis-decoded;
// * the rover's alignment: an integer translation of the whole frame
//   (register_frame(): exhaustive block matching of box-downsampled luma at two
//   scales, the mean difference removed) refined per tile at full resolution
//   (refine_tile()), and a per-channel offset per tile for exposure changes;
// * the prediction tile both sides build from the reference, the displacement
//   and the offsets (build_prediction()), and the side information at the
//   start of a predicted tile's payload (form byte 2).
//
// Integers only, fixed order: the same choices and bytes on every CPU. No heap:
// the scratch comes from the caller's workspace (kRegistrationScratchInts).
// It must not know about files, records or Python: those are the callers'.
#pragma once
#include <cstddef>
#include <cstdint>

#include "wavelet.h"

namespace pymars {

// An earlier frame as both sides hold it.
struct SequenceRef {
  const uint8_t* samples = nullptr;  // height x width x channels, 8-bit, interleaved
  uint32_t width = 0, height = 0;
  uint32_t channels = 0;  // the model's input channels (1 gray model, 3 colour)
  size_t row_stride = 0;  // samples per row; 0: width * channels
  uint8_t id[8] = {};     // first 8 bytes of the SHA-256 of the earlier file
  size_t stride() const { return row_stride ? row_stride : size_t(width) * channels; }
};

// The frame-level translation: new(y, x) ~ ref(y + dy, x + dx) + luma_offset.
struct FrameRegistration {
  int32_t dy = 0, dx = 0;
  int32_t luma_offset = 0;  // mean of new - ref over the overlap (8-bit levels)
  int32_t search = 0;       // the radius refine_tile() searches around (dy, dx)
  bool usable = false;      // the overlap matches well enough to predict from
};

// What a predicted tile carries besides its wavelet stream, and what the
// encoder decided for a tile.
struct TileSequence {
  bool predict = false;  // try the predicted mode for this tile
  int32_t dy = 0, dx = 0;
  int32_t offset[3] = {0, 0, 0};  // added to the reference's samples, per channel
};

constexpr uint8_t kFormPredicted = 2;
// Form byte, dy and dx (int32), one int16 offset per channel, little-endian.
inline size_t sequence_side_bytes(uint32_t channels) { return 1 + 4 + 4 + 2 * size_t(channels); }
constexpr int32_t kMaxSequenceOffset = 255;

// int32 scratch register_frame() needs (two 128 x 128 grids and two 32 x 32).
constexpr size_t kRegistrationScratchInts = 2 * 128 * 128 + 2 * 32 * 32;

// Registers an 8-bit frame (`channels` 1 or 3, interleaved, `row_stride`
// samples per row) against the reference. Luma is the gray channel or G.
FrameRegistration register_frame(const SequenceRef& ref, const uint8_t* pixels, uint32_t width, uint32_t height,
                                 uint32_t channels, size_t row_stride, int32_t* scratch);

// The tile at (y0, x0) of the new frame, h x w x channels samples (`stride`
// per row, channels = ref.channels): its displacement within +-reg.search of
// the frame's, the per-channel offsets there, and whether it overlaps the
// reference enough (1/16 of its samples) to try the predicted mode.
TileSequence refine_tile(const SequenceRef& ref, const FrameRegistration& reg, const uint8_t* tile, size_t stride,
                         uint32_t y0, uint32_t x0, uint32_t h, uint32_t w);

// Builds the prediction tile (h x w x ref.channels, row stride w * channels)
// into `pred` and fills wp's samples and covered rectangle (wp.work is the
// caller's). False when the displaced tile does not overlap the reference.
bool build_prediction(const SequenceRef& ref, const TileSequence& t, uint32_t y0, uint32_t x0, uint32_t h,
                      uint32_t w, uint8_t* pred, WvPrediction* wp);

// Side information of a predicted payload: write (returns sequence_side_bytes)
// and parse (false: not a predicted payload, or out-of-range fields).
size_t write_sequence_side(const TileSequence& t, uint32_t channels, uint8_t* out);
bool parse_sequence_side(const uint8_t* data, size_t len, uint32_t channels, TileSequence* t);

}  // namespace pymars
