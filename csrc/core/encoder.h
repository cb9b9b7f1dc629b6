// encoder.h - the rover encoder: an image in, a complete pymars file out.
//
// encode_image() tiles the image (docs/bitstream.md §2), runs each tile
// through analyse_tile()/code_tile() and writes the container: file header,
// then one record per tile. It uses only the Model and the EncoderWorkspace it
// is given (both carved from the caller's arena), so it never allocates, and
// it stops with a status instead of ever writing past `capacity`.
#pragma once
#include <cstddef>
#include <cstdint>

#include "container.h"
#include "model.h"
#include "reference.h"
#include "tile_codec.h"

namespace pymars {

struct ImageInput {
  const uint8_t* pixels8 = nullptr;    // 8-bit samples, or
  const uint16_t* pixels16 = nullptr;  // 12/16-bit samples (bit_depth 12 or 16)
  uint32_t width = 0, height = 0;
  uint32_t channels = 3;  // 1 or 3, interleaved
  uint32_t bit_depth = 8;
  size_t row_stride = 0;  // samples per row; 0 = width * channels
};

struct EncodeOptions {
  uint32_t quality = 75;     // 1..100
  uint32_t tile_size = 256;  // multiple of 16, 16..4096, at most the workspace's tile size
  const uint8_t* library_hash = nullptr;  // 8 bytes, or null for none (ignored when `library` is set)
  // REMAC: the reference library (reference.h). With a library each tile's
  // references are selected by the rover rules, or taken from entropy_refs /
  // decoder_refs when those are given (experiments); the header carries the
  // library's hash. Without one, entropy_refs / decoder_refs (or 0xFFFF) are
  // only written into the records.
  const RefLibrary* library = nullptr;
  const uint16_t* entropy_refs = nullptr;  // per tile, or null (0xFFFF)
  const uint16_t* decoder_refs = nullptr;
  // When img is a strip of a larger image (tile-row streaming): that image's size,
  // so that each tile knows which of its sides meet another tile (tile_seams()).
  // 0: img is the whole image.
  uint32_t image_width = 0, image_height = 0;
};

enum class EncodeStatus {
  Ok = 0,
  BadImage,        // null pixels, zero or too large size, channels not 1/3, bad bit depth or stride
  BadQuality,      // quality outside 1..100
  BadTileSize,     // not a multiple of 16 in 16..4096, or larger than the workspace
  OutputTooSmall,  // capacity exhausted (use max_encoded_size())
  StreamOverflow,  // a tile's rANS stream outgrew the workspace (cannot happen for valid models)
};

const char* encode_status_message(EncodeStatus s);

// Validates image and options without encoding.
// `model_channels`: input channels of the model (1: a gray model, which takes
// 1-channel images only; 3: gray images are replicated).
EncodeStatus check_encode_arguments(const ImageInput& img, const EncodeOptions& opt, uint32_t workspace_tile,
                                    uint32_t model_channels = 3);

// An upper bound of the encoded size (header + every tile at its worst case).
size_t max_encoded_size(const Model& m, uint32_t width, uint32_t height, uint32_t tile_size);

// The file header that encode_image() writes for these arguments.
FileHeader make_file_header(const Model& m, const ImageInput& img, const EncodeOptions& opt);

// The TileInput of tile `index` of the image (seams: which of its sides meet another tile).
TileInput tile_input(const ImageInput& img, uint32_t tile_size, uint32_t index);

// Appends the records of tiles first .. first + count - 1 of `img` (raster
// order of img's own tile grid) to out[0, capacity). `index_base` is added to
// each tile's index for its record and for opt.entropy_refs / decoder_refs:
// a strip of image rows [ty*T, ty*T + T) is encoded as its own image with
// index_base = ty * tiles_x, giving the very bytes encode_image() writes for
// that tile row (the tile-row streaming API in marsenc.h). Arguments must have
// passed check_encode_arguments(). *written: bytes appended on success, 0 on failure.
EncodeStatus encode_tiles(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt,
                          uint32_t first, uint32_t count, uint32_t index_base, uint8_t* out, size_t capacity,
                          size_t* written);

// File header, then every tile's record (encode_tiles over the whole image).
EncodeStatus encode_image(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt,
                          uint8_t* out, size_t capacity, size_t* written);

}  // namespace pymars
