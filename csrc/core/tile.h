// tile.h - the geometry of one tile and where its samples are: what every tile coder and the
// reference selection share.
//
// Kept apart from tile_codec.h so that the REMAC selection (reference.h) and the
// tile coders depend on it one way, instead of on each other.
#pragma once
#include <cstddef>
#include <cstdint>

#include "wavelet.h"  // kWvSeam* bits

namespace pymars {

// Geometry of one tile: pixels h x w, padded H x W, latent hy x wy, hyper-latent hz x wz.
struct TileDims {
  uint32_t h = 0, w = 0, H = 0, W = 0, hy = 0, wy = 0, hz = 0, wz = 0;
  // Sides of the tile that touch another tile of the image (kSeam* bits): the
  // wavelet coder quantises coefficients there finer (docs/bitstream.md §4.9).
  uint32_t seams = 0;
};
inline TileDims tile_dims(uint32_t h, uint32_t w) {
  TileDims d;
  d.h = h;
  d.w = w;
  d.H = (h + 15) / 16 * 16;  // the learned transforms work on multiples of 16
  d.W = (w + 15) / 16 * 16;
  d.hy = d.H / 16;
  d.wy = d.W / 16;
  d.hz = ((d.hy + 1) / 2 + 1) / 2;
  d.wz = ((d.wy + 1) / 2 + 1) / 2;
  return d;
}
// Which sides of tile `index` of a width x height image cut into tile_size tiles touch another tile.
inline uint32_t tile_seams(uint32_t width, uint32_t height, uint32_t tile_size, uint32_t index) {
  if (tile_size == 0) return 0;
  const uint32_t tiles_x = (width + tile_size - 1) / tile_size, tiles_y = (height + tile_size - 1) / tile_size;
  const uint32_t tx = tiles_x ? index % tiles_x : 0, ty = tiles_x ? index / tiles_x : 0;
  return (tx > 0 ? kWvSeamLeft : 0u) | (ty > 0 ? kWvSeamTop : 0u) | (tx + 1 < tiles_x ? kWvSeamRight : 0u) |
         (ty + 1 < tiles_y ? kWvSeamBottom : 0u);
}

// Where a tile's samples are: interleaved channels, `row_stride` samples per row.
struct TileInput {
  const uint8_t* pixels8 = nullptr;    // one of pixels8 / pixels16 is set
  const uint16_t* pixels16 = nullptr;  // 12- or 16-bit samples (bit_depth)
  uint32_t bit_depth = 8;
  uint32_t channels = 3;  // 1 or 3
  size_t row_stride = 0;  // in samples
  uint32_t h = 0, w = 0;
  uint32_t seams = 0;  // tile_seams() of the tile in its image
  // pixels16 only: also load the samples at their own depth into the workspace's
  // samples16 (source-depth near-lossless tiles, docs/bitstream.md §4.8).
  bool keep_depth = false;
};

}  // namespace pymars
