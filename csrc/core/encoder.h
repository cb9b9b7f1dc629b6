// encoder.h - the rover encoder: an image in, a complete pymars file out.
//
// encode_image() tiles the image (docs/bitstream.md §2), runs each tile
// through analyse_tile()/code_tile() and writes the container: file header,
// then one record per tile. It uses only the Model and the EncoderWorkspace it
// is given (both carved from the caller's arena), so it never allocates, and
// it stops with a status instead of ever writing past `capacity`.
//
// This is the one encoder orchestration: the C API (marsenc.cpp) and the
// Python binding (csrc/python/bindings.cpp) both build on the functions
// below. The tile loop body is prepare_tile() + code_tile_record(), the
// record and header layout is written only here and in container.cpp, and
// the rate search (search_quality(), used by encode_to_size() and by the
// binding's threaded rate control) exists once, so every caller picks the
// same quality and writes the same bytes.
#pragma once
#include <cstddef>
#include <cstdint>

#include "container.h"
#include "limits.h"
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
  uint32_t quality = 75;     // kMinQuality..kMaxQuality (limits.h)
  uint32_t tile_size = 256;  // valid_tile_size() (limits.h), at most the workspace's tile size
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
  // A 12/16-bit image at a range-coded near-lossless quality
  // (Model::source_depth_capable): code its samples at their own bit depth (k
  // in their units; header flag bit 1, docs/bitstream.md §4.8) instead of the
  // 8-bit reduction of §5. Ignored (no flag, today's bytes) otherwise.
  bool source_depth = false;
  // Sequence coding (§4.10): an earlier frame both sides hold (its samples in the
  // model's channels and its file's id). At wavelet qualities of an 8-bit image
  // each tile that overlaps it is also coded predicted from it, and the header
  // names it. `registration` is plan_sequence()'s (the whole-frame alignment).
  const SequenceRef* sequence = nullptr;
  FrameRegistration registration;
  // Where the rover keeps what it sent, as the next frame's reference: the
  // decoded samples of every tile (height x width x the model's channels,
  // interleaved) as the ground will decode them. Only at sample-coded qualities
  // of 8-bit images (the learned synthesis is not on the rover): else BadSequence.
  uint8_t* reconstruction = nullptr;
};

// True when a file of these arguments at `quality` names its sequence reference (flag bit 2).
inline bool codes_sequence(const Model& m, const ImageInput& img, const EncodeOptions& opt, uint32_t quality) {
  return opt.sequence != nullptr && img.bit_depth == 8 && m.wavelet(quality);
}

// Aligns the image with opt->sequence (register_frame() on ws's scratch) into
// opt->registration; nothing without a sequence reference or for 12/16-bit images.
struct EncoderWorkspace;

// True when a file of these arguments at `quality` carries source-depth samples (flag bit 1).
inline bool codes_source_depth(const Model& m, const ImageInput& img, const EncodeOptions& opt, uint32_t quality) {
  return opt.source_depth && img.bit_depth != 8 && m.source_depth_capable(quality);
}

enum class EncodeStatus {
  Ok = 0,
  BadImage,        // null pixels, zero or too large size, channels not 1/3, bad bit depth or stride
  BadQuality,      // quality outside 1..100
  BadTileSize,     // not a multiple of 16 in 16..4096, or larger than the workspace
  OutputTooSmall,  // capacity exhausted (use max_encoded_size())
  StreamOverflow,  // a tile's rANS stream outgrew the workspace (cannot happen for valid models)
  TargetTooSmall,  // encode_to_size(): even the lowest quality's file exceeds the target size
  Cancelled,       // a QualityProbe stopped the rate search (the Python binding on Ctrl-C)
  BadSequence,     // the sequence reference is empty, too large, or not in the model's channels
};

const char* encode_status_message(EncodeStatus s);

// Validates image and options without encoding.
// `model_channels`: input channels of the model (1: a gray model, which takes
// 1-channel images only; 3: gray images are replicated).
EncodeStatus check_encode_arguments(const ImageInput& img, const EncodeOptions& opt, uint32_t workspace_tile,
                                    uint32_t model_channels = 3);

void plan_sequence(EncoderWorkspace& ws, const ImageInput& img, EncodeOptions* opt);

// An upper bound of the encoded size (header + every tile at its worst case).
size_t max_encoded_size(const Model& m, uint32_t width, uint32_t height, uint32_t tile_size);

// The file header that encode_image() writes for these arguments.
FileHeader make_file_header(const Model& m, const ImageInput& img, const EncodeOptions& opt);

// The TileInput of tile `index` of the image (seams: which of its sides meet another tile).
TileInput tile_input(const ImageInput& img, uint32_t tile_size, uint32_t index);

// Upper bound of one tile record (record header + the largest payload of a
// tile_size x tile_size tile at any quality): the per-tile term of max_encoded_size().
size_t max_tile_record_bytes(const Model& m, uint32_t tile_size);

// ---- The tile loop body, in two halves -------------------------------------
// encode_tiles() runs prepare_tile() and code_tile_record() for each tile. A
// caller that codes one analysis at several qualities (rate control) or runs
// tiles on threads (the Python binding) calls them itself, so the tile
// geometry, the reference choice and the record come from this code alone.

// What prepare_tile() leaves for code_tile_record() besides the workspace state.
struct PreparedTile {
  TileDims dims;
  uint32_t index = 0;  // the tile's index in the whole image
  // The references the record names: selected by analyse_tile() with a library,
  // else the ids given in EncodeOptions (or none).
  uint16_t entropy_ref = kNoReference, decoder_ref = kNoReference;
  bool library = false;   // EncodeOptions::library was set
  bool analysed = false;  // the learned analysis ran: any quality can be coded
  // 12 or 16: ws.samples16 holds the tile at that depth too (EncodeOptions::source_depth), and
  // a source-depth-capable quality codes it from there; 8: the 8-bit samples only.
  uint32_t sample_depth = 8;
  // Sequence coding: the reference, the tile's origin and its refined displacement.
  TileReference link;
};

// True when coding at `quality` needs the learned analysis (g_a, h_a, h_s);
// near-lossless and wavelet qualities are coded from the samples alone.
inline bool needs_analysis(const Model& m, uint32_t quality) { return !m.sample_coded(quality); }

// Loads tile i of img (index_base + i in the whole image, as for
// encode_tiles()) into ws. `analyse`: also run the learned analysis and the
// reference selection (then every quality can be coded); false: the samples
// only (sample-coded qualities only; cheaper). Arguments must have passed
// check_encode_arguments().
void prepare_tile(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt, uint32_t i,
                  uint32_t index_base, bool analyse, PreparedTile* tile);

// Codes the tile prepared in ws at `quality` and writes its record (24-byte
// record header, then the payload) to out[0, capacity); *written: its size,
// 0 on failure. May be called again for another quality: it reads the
// prepared state and never changes it. At a sample-coded quality a tile coded
// with a library names no reference (as if it had been prepared without
// analysis), so the record depends on the quality only, not on how the tile
// was prepared. BadQuality: `quality` needs an analysis the tile did not get.
EncodeStatus code_tile_record(const Model& m, EncoderWorkspace& ws, const PreparedTile& tile, uint32_t quality,
                              uint8_t* out, size_t capacity, size_t* written);

// The workspace state code_tile_record() reads, so that a caller with fewer
// workspaces than tiles (the Python binding's threads) can keep each tile's
// analysis and code it again at another quality: tile_analysis_bytes() of
// memory per tile, filled by save_tile_analysis() right after prepare_tile()
// and put back by restore_tile_analysis() before code_tile_record().
size_t tile_analysis_bytes(const Model& m, const PreparedTile& tile);
void save_tile_analysis(const Model& m, const EncoderWorkspace& ws, const PreparedTile& tile, uint8_t* dst);
void restore_tile_analysis(const Model& m, EncoderWorkspace& ws, const PreparedTile& tile, const uint8_t* src);

// ---- Rate control ------------------------------------------------------------

// Codes the whole file at `quality`. Ok: *bytes is the file's size (it may
// exceed the target); OutputTooSmall: the file does not fit (size unknown);
// any other status stops the search and is returned.
using QualityProbe = EncodeStatus (*)(void* context, uint32_t quality, size_t* bytes);

// The highest quality in kMinQuality..kMaxQuality whose file fits
// target_bytes. File size grows with quality (the gains only grow), so a
// binary search (lo = 1, hi = 100, mid = (lo + hi + 1) / 2, quality 1 first)
// needs at most 8 probes. TargetTooSmall when quality 1 does not fit; then
// *min_bytes is its size (0 if the probe could not tell). The last probe is
// not necessarily the chosen quality's.
EncodeStatus search_quality(size_t target_bytes, QualityProbe probe, void* context, uint32_t* quality,
                            size_t* min_bytes);

// Rate control of the whole file: encode_image() at the highest quality whose
// complete file (header included) has at most target_bytes (opt.quality is
// ignored). Every probe re-encodes into out (no memory besides ws), stopping
// as soon as the budget is exceeded. `capacity` must be at least
// min(target_bytes, max_encoded_size()), so that the buffer never decides
// the quality (else OutputTooSmall). TargetTooSmall when even quality 1 does
// not fit. On success out holds the file, *written its size, *quality the quality.
EncodeStatus encode_to_size(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt,
                            size_t target_bytes, uint8_t* out, size_t capacity, size_t* written, uint32_t* quality);

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
