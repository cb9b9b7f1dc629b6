// limits.h - the ranges of the bitstream's parameters, defined once.
//
// The encoder's argument checks, the C API, the container's header checks
// and the Python binding (which exports them as pymars._core.MIN_QUALITY,
// MAX_QUALITY, MAX_SIDE, MIN_TILE_SIZE, MAX_TILE_SIZE, TILE_SIZE_STEP) all
// read these, so a writer can never produce a header that a reader refuses
// (docs/bitstream.md §1 gives the same ranges).
#pragma once
#include <cstdint>

namespace pymars {

// Quality: 1 (fewest bytes) .. 100; a model blob has one entry per quality.
constexpr uint32_t kMinQuality = 1;
constexpr uint32_t kMaxQuality = 100;

// Image width and height: 1 .. 65535 pixels (u32 fields, but the tile grid
// and the decoder limits are sized for 16-bit sides).
constexpr uint32_t kMaxImageSide = 65535;

// Tile side: a multiple of 16 (the analysis transform downsamples by 16) in 16 .. 4096.
constexpr uint32_t kMinTileSize = 16;
constexpr uint32_t kMaxTileSize = 4096;
constexpr uint32_t kTileSizeStep = 16;

constexpr bool valid_quality(uint32_t q) { return q >= kMinQuality && q <= kMaxQuality; }
constexpr bool valid_image_side(uint32_t s) { return s >= 1 && s <= kMaxImageSide; }
constexpr bool valid_tile_size(uint32_t t) {
  return t >= kMinTileSize && t <= kMaxTileSize && t % kTileSizeStep == 0;
}

}  // namespace pymars
