// marsenc.cpp - the C API of marsenc.h over the C++ core.
#include "marsenc.h"

#include <cstring>

#include "core/arena.h"
#include "core/encoder.h"
#include "core/limits.h"
#include "core/model.h"
#include "core/reference.h"
#include "core/sha256.h"
#include "core/texture.h"
#include "core/tile_codec.h"

namespace pymars {
// Where a tile-row stream stands (marsenc_begin .. marsenc_end).
struct StreamState {
  bool open = false;
  ImageInput geometry;  // pixel pointers unused
  uint32_t quality = 0;
  uint32_t tiles_x = 0, tile_rows = 0;
  uint32_t next_row = 0;  // tile rows done
};
}  // namespace pymars

// Lives in the caller's arena; all mutable state of an encoder is here.
struct marsenc_encoder {
  pymars::Model model;
  pymars::EncoderWorkspace workspace;
  uint32_t tile_size;
  pymars::StreamState stream;
  pymars::RefLibrary library;  // REMAC reference library (marsenc_init_with_library)
  bool has_library;
};

namespace {

using pymars::valid_tile_size;

int to_marsenc_status(pymars::EncodeStatus st) {
  switch (st) {
    case pymars::EncodeStatus::Ok: return MARSENC_OK;
    case pymars::EncodeStatus::BadImage: return MARSENC_ERR_IMAGE;
    case pymars::EncodeStatus::BadQuality: return MARSENC_ERR_QUALITY;
    case pymars::EncodeStatus::BadTileSize: return MARSENC_ERR_ARGUMENT;
    case pymars::EncodeStatus::OutputTooSmall: return MARSENC_ERR_OUTPUT_FULL;
    case pymars::EncodeStatus::StreamOverflow: return MARSENC_ERR_INTERNAL;
    case pymars::EncodeStatus::TargetTooSmall: return MARSENC_ERR_TARGET;
    case pymars::EncodeStatus::Cancelled: return MARSENC_ERR_INTERNAL;  // the C API's probe never cancels
    case pymars::EncodeStatus::BadSequence: return MARSENC_ERR_REFERENCE;
  }
  return MARSENC_ERR_INTERNAL;
}

// One set-up routine for both the size query (counting arena) and the real
// initialisation, so the two can never disagree.
int setup(pymars::Arena& arena, const uint8_t* blob, size_t blob_size, uint32_t tile_size, marsenc_encoder** out,
          const uint8_t* library = nullptr, size_t library_size = 0) {
  marsenc_encoder* enc = arena.alloc<marsenc_encoder>(1);
  pymars::Model model;
  pymars::BlobStatus bs = pymars::load_model(blob, blob_size, arena, &model);
  if (bs == pymars::BlobStatus::OutOfMemory) return MARSENC_ERR_ARENA;
  if (bs != pymars::BlobStatus::Ok) return MARSENC_ERR_BLOB;
  pymars::RefLibrary lib;
  if (library) {
    if (!model.has_ref) return MARSENC_ERR_LIBRARY;  // a base model cannot use references
    pymars::LibraryStatus ls = pymars::load_library(library, library_size, model, arena, &lib);
    if (ls == pymars::LibraryStatus::OutOfMemory) return MARSENC_ERR_ARENA;
    if (ls != pymars::LibraryStatus::Ok) return MARSENC_ERR_LIBRARY;
  }
  pymars::EncoderWorkspace ws;
  pymars::make_encoder_workspace(model, tile_size, arena, &ws);
  if (arena.failed()) return MARSENC_ERR_ARENA;
  if (enc) {
    enc->model = model;
    enc->workspace = ws;
    enc->tile_size = tile_size;
    enc->stream = pymars::StreamState{};
    enc->library = lib;
    enc->has_library = library != nullptr;
  }
  if (out) *out = enc;
  return MARSENC_OK;
}

// The core's image and options for a whole-image encode by this encoder.
pymars::ImageInput image_input(const marsenc_image* image) {
  pymars::ImageInput img;
  img.pixels8 = image->pixels8;
  img.pixels16 = image->pixels16;
  img.width = image->width;
  img.height = image->height;
  img.channels = image->channels;
  img.bit_depth = image->bit_depth;
  img.row_stride = image->row_stride;
  return img;
}

pymars::EncodeOptions encode_options(const marsenc_encoder* encoder, uint32_t quality) {
  pymars::EncodeOptions opt;
  opt.quality = quality;
  opt.tile_size = encoder->tile_size;
  opt.library = encoder->has_library ? &encoder->library : nullptr;
  return opt;
}

bool valid_quality(int quality) { return quality >= 0 && pymars::valid_quality(uint32_t(quality)); }

}  // namespace

extern "C" {

int marsenc_abi_version(void) { return MARSENC_ABI_VERSION; }

size_t marsenc_arena_size(const uint8_t* blob, size_t blob_size, uint32_t tile_size) {
  if (!blob || !valid_tile_size(tile_size)) return 0;
  pymars::Arena counting;
  if (setup(counting, blob, blob_size, tile_size, nullptr) != MARSENC_OK) return 0;
  return counting.used();
}

int marsenc_init(void* arena, size_t arena_size, const uint8_t* blob, size_t blob_size, uint32_t tile_size,
                 marsenc_encoder** encoder) {
  if (!arena || !blob || !encoder || !valid_tile_size(tile_size)) return MARSENC_ERR_ARGUMENT;
  *encoder = nullptr;
  pymars::Arena a(arena, arena_size);
  return setup(a, blob, blob_size, tile_size, encoder);
}

size_t marsenc_arena_size_with_library(const uint8_t* blob, size_t blob_size, const uint8_t* library,
                                       size_t library_size, uint32_t tile_size) {
  if (!blob || !library || !valid_tile_size(tile_size)) return 0;
  pymars::Arena counting;
  if (setup(counting, blob, blob_size, tile_size, nullptr, library, library_size) != MARSENC_OK) return 0;
  return counting.used();
}

int marsenc_init_with_library(void* arena, size_t arena_size, const uint8_t* blob, size_t blob_size,
                              const uint8_t* library, size_t library_size, uint32_t tile_size,
                              marsenc_encoder** encoder) {
  if (!arena || !blob || !library || !encoder || !valid_tile_size(tile_size)) return MARSENC_ERR_ARGUMENT;
  *encoder = nullptr;
  pymars::Arena a(arena, arena_size);
  return setup(a, blob, blob_size, tile_size, encoder, library, library_size);
}

size_t marsenc_max_output_size(const marsenc_encoder* encoder, uint32_t width, uint32_t height) {
  if (!encoder) return 0;
  return pymars::max_encoded_size(encoder->model, width, height, encoder->tile_size);
}

int marsenc_encode(marsenc_encoder* encoder, const marsenc_image* image, int quality, uint8_t* out,
                   size_t capacity, size_t* written) {
  if (!encoder || !image || !out || !written) return MARSENC_ERR_ARGUMENT;
  *written = 0;
  if (!valid_quality(quality)) return MARSENC_ERR_QUALITY;
  if (encoder->stream.open) return MARSENC_ERR_SEQUENCE;
  return to_marsenc_status(pymars::encode_image(encoder->model, encoder->workspace, image_input(image),
                                                encode_options(encoder, uint32_t(quality)), out, capacity, written));
}

int marsenc_encode_sequence(marsenc_encoder* encoder, const marsenc_image* image, int quality,
                            const marsenc_frame* reference, uint8_t* out, size_t capacity, size_t* written,
                            uint8_t* reconstruction) {
  if (!encoder || !image || !out || !written) return MARSENC_ERR_ARGUMENT;
  *written = 0;
  if (!valid_quality(quality)) return MARSENC_ERR_QUALITY;
  if (encoder->stream.open) return MARSENC_ERR_SEQUENCE;
  pymars::EncodeOptions opt = encode_options(encoder, uint32_t(quality));
  pymars::SequenceRef ref;
  if (reference) {
    ref.samples = reference->pixels8;
    ref.width = reference->width;
    ref.height = reference->height;
    ref.channels = reference->channels;
    ref.row_stride = reference->row_stride;
    std::memcpy(ref.id, reference->id, 8);
    opt.sequence = &ref;
  }
  opt.reconstruction = reconstruction;
  return to_marsenc_status(pymars::encode_image(encoder->model, encoder->workspace, image_input(image), opt, out,
                                                capacity, written));
}

size_t marsenc_frame_size(const marsenc_encoder* encoder, uint32_t width, uint32_t height) {
  if (!encoder || !pymars::valid_image_side(width) || !pymars::valid_image_side(height)) return 0;
  return size_t(width) * height * encoder->model.in_channels;
}

uint32_t marsenc_frame_channels(const marsenc_encoder* encoder) { return encoder ? encoder->model.in_channels : 0; }

void marsenc_file_id(const uint8_t* file, size_t size, uint8_t id[8]) {
  uint8_t digest[32];
  pymars::sha256(file, size, digest);
  std::memcpy(id, digest, 8);
}

int marsenc_encode_max_error(marsenc_encoder* encoder, const marsenc_image* image, uint32_t max_error, uint8_t* out,
                             size_t capacity, size_t* written, int* quality) {
  if (!encoder || !image || !out || !written || !quality) return MARSENC_ERR_ARGUMENT;
  *written = 0;
  *quality = 0;
  if (encoder->stream.open) return MARSENC_ERR_SEQUENCE;
  const uint32_t q = encoder->model.quality_for_max_error(max_error, image->bit_depth);
  if (q == 0) return MARSENC_ERR_QUALITY;
  pymars::EncodeOptions opt = encode_options(encoder, q);
  opt.source_depth = true;  // 12/16-bit samples at their own depth (ignored for 8-bit images)
  const int st = to_marsenc_status(pymars::encode_image(encoder->model, encoder->workspace, image_input(image), opt,
                                                        out, capacity, written));
  if (st == MARSENC_OK) *quality = int(q);
  return st;
}

int marsenc_encode_to_size(marsenc_encoder* encoder, const marsenc_image* image, size_t target_bytes, uint8_t* out,
                           size_t capacity, size_t* written, int* quality) {
  if (!encoder || !image || !out || !written || !quality) return MARSENC_ERR_ARGUMENT;
  *written = 0;
  *quality = 0;
  if (encoder->stream.open) return MARSENC_ERR_SEQUENCE;
  uint32_t q;
  const pymars::EncodeStatus st =
      pymars::encode_to_size(encoder->model, encoder->workspace, image_input(image),
                             encode_options(encoder, pymars::kMinQuality), target_bytes, out, capacity, written, &q);
  if (st == pymars::EncodeStatus::Ok) *quality = int(q);
  return to_marsenc_status(st);
}

int marsenc_begin(marsenc_encoder* encoder, const marsenc_geometry* geometry, int quality, uint8_t* out,
                  size_t capacity, size_t* written) {
  if (!encoder || !geometry || !out || !written) return MARSENC_ERR_ARGUMENT;
  *written = 0;
  if (encoder->stream.open) return MARSENC_ERR_SEQUENCE;
  if (!valid_quality(quality)) return MARSENC_ERR_QUALITY;
  pymars::ImageInput g;
  g.width = geometry->width;
  g.height = geometry->height;
  g.channels = geometry->channels;
  g.bit_depth = geometry->bit_depth;
  // Only the geometry is checked here: a placeholder stands in for the pixels
  // (check_encode_arguments never reads them).
  const uint16_t placeholder[1] = {0};
  g.pixels8 = g.bit_depth == 8 ? reinterpret_cast<const uint8_t*>(placeholder) : nullptr;
  g.pixels16 = g.bit_depth == 8 ? nullptr : placeholder;
  const pymars::EncodeOptions opt = encode_options(encoder, uint32_t(quality));
  const pymars::EncodeStatus st = pymars::check_encode_arguments(g, opt, encoder->workspace.tile_size, encoder->model.in_channels);
  if (st != pymars::EncodeStatus::Ok) return to_marsenc_status(st);
  const size_t n = pymars::write_file_header(pymars::make_file_header(encoder->model, g, opt), out, capacity);
  if (n == 0) return MARSENC_ERR_OUTPUT_FULL;
  g.pixels8 = nullptr;
  g.pixels16 = nullptr;
  pymars::StreamState& s = encoder->stream;
  s = pymars::StreamState{};
  s.open = true;
  s.geometry = g;
  s.quality = uint32_t(quality);
  s.tiles_x = (g.width + encoder->tile_size - 1) / encoder->tile_size;
  s.tile_rows = (g.height + encoder->tile_size - 1) / encoder->tile_size;
  *written = n;
  return MARSENC_OK;
}

uint32_t marsenc_next_tile_row_height(const marsenc_encoder* encoder) {
  if (!encoder || !encoder->stream.open || encoder->stream.next_row >= encoder->stream.tile_rows) return 0;
  const uint32_t y0 = encoder->stream.next_row * encoder->tile_size;
  const uint32_t left = encoder->stream.geometry.height - y0;
  return left < encoder->tile_size ? left : encoder->tile_size;
}

size_t marsenc_max_tile_row_size(const marsenc_encoder* encoder, uint32_t width) {
  if (!encoder || width == 0) return 0;
  // One row of tiles of a width x tile_size image, without the file header.
  return pymars::max_encoded_size(encoder->model, width, encoder->tile_size, encoder->tile_size) -
         pymars::kFileHeaderMaxBytes;
}

int marsenc_encode_tile_row(marsenc_encoder* encoder, const void* rows, size_t row_stride, uint8_t* out,
                            size_t capacity, size_t* written) {
  if (!encoder || !rows || !out || !written) return MARSENC_ERR_ARGUMENT;
  *written = 0;
  pymars::StreamState& s = encoder->stream;
  const uint32_t h = marsenc_next_tile_row_height(encoder);
  if (h == 0) return MARSENC_ERR_SEQUENCE;
  // The strip is an image of its own whose tile i is tile ty * tiles_x + i of the whole.
  pymars::ImageInput strip = s.geometry;
  strip.height = h;
  strip.row_stride = row_stride;
  if (strip.bit_depth == 8)
    strip.pixels8 = static_cast<const uint8_t*>(rows);
  else
    strip.pixels16 = static_cast<const uint16_t*>(rows);
  pymars::EncodeOptions opt = encode_options(encoder, s.quality);
  opt.image_width = s.geometry.width;
  opt.image_height = s.geometry.height;
  pymars::EncodeStatus st = pymars::check_encode_arguments(strip, opt, encoder->workspace.tile_size,
                                                                encoder->model.in_channels);
  if (st == pymars::EncodeStatus::Ok)
    st = pymars::encode_tiles(encoder->model, encoder->workspace, strip, opt, 0, s.tiles_x, s.next_row * s.tiles_x,
                              out, capacity, written);
  if (st != pymars::EncodeStatus::Ok) {
    *written = 0;  // nothing consumed: the row may be given again
    return to_marsenc_status(st);
  }
  ++s.next_row;
  return MARSENC_OK;
}

int marsenc_end(marsenc_encoder* encoder) {
  if (!encoder) return MARSENC_ERR_ARGUMENT;
  const bool complete = encoder->stream.open && encoder->stream.next_row == encoder->stream.tile_rows;
  encoder->stream = pymars::StreamState{};
  return complete ? MARSENC_OK : MARSENC_ERR_SEQUENCE;
}

void marsenc_model_id(const marsenc_encoder* encoder, uint8_t model_id[8]) {
  if (encoder && model_id) std::memcpy(model_id, encoder->model.sha256, 8);
}

const char* marsenc_status_message(int status) {
  switch (status) {
    case MARSENC_OK: return "ok";
    case MARSENC_ERR_ARGUMENT: return "invalid argument (null pointer or tile size)";
    case MARSENC_ERR_BLOB: return "invalid weight blob";
    case MARSENC_ERR_ARENA: return "arena too small (use marsenc_arena_size)";
    case MARSENC_ERR_IMAGE: return "invalid image (size 1..65535, 1 or 3 channels (1 for a gray model), 8/12/16-bit)";
    case MARSENC_ERR_QUALITY: return "quality must be in 1..100";
    case MARSENC_ERR_OUTPUT_FULL: return "output buffer too small (use marsenc_max_output_size)";
    case MARSENC_ERR_INTERNAL: return "internal error";
    case MARSENC_ERR_SEQUENCE: return "streaming call out of order (marsenc_begin, one call per tile row, marsenc_end)";
    case MARSENC_ERR_LIBRARY: return "invalid reference library, built for another model, or the model has no reference branch";
    case MARSENC_ERR_TARGET: return "target size too small: even quality 1 does not fit";
    case MARSENC_ERR_REFERENCE:
      return "bad earlier frame for sequence coding: 1..65535 x 1..65535 8-bit samples in the model's channels";
  }
  return "unknown status";
}

size_t marsenc_lbp_histogram_size(uint32_t height, uint32_t width, uint32_t patch, int variant) {
  if (variant < MARSENC_LBP_DEFAULT || variant > MARSENC_LBP_RIU2) return 0;
  return pymars::lbp_histogram_size(height, width, patch, pymars::LbpVariant(variant));
}

int marsenc_lbp_histograms(const uint8_t* gray, uint32_t height, uint32_t width, size_t stride, int variant,
                           uint32_t patch, uint32_t* histograms, size_t capacity) {
  if (!gray || !histograms || variant < MARSENC_LBP_DEFAULT || variant > MARSENC_LBP_RIU2 || stride < width)
    return MARSENC_ERR_ARGUMENT;
  if (capacity < marsenc_lbp_histogram_size(height, width, patch, variant)) return MARSENC_ERR_OUTPUT_FULL;
  return pymars::lbp_histograms(gray, height, width, stride, pymars::LbpVariant(variant), patch, histograms)
             ? MARSENC_OK
             : MARSENC_ERR_ARGUMENT;
}

int marsenc_nearest_histogram(const uint32_t* query, const uint32_t* dictionary, size_t count, size_t bins,
                              int metric, size_t* index, uint32_t* divergence_q16) {
  if (!query || !dictionary || !index || !divergence_q16 || count == 0 || bins == 0 ||
      bins > pymars::kMaxDivergenceBins || (metric != MARSENC_DIV_KL && metric != MARSENC_DIV_JS))
    return MARSENC_ERR_ARGUMENT;
  return pymars::nearest_histogram(query, dictionary, count, bins, pymars::Divergence(metric), index, divergence_q16)
             ? MARSENC_OK
             : MARSENC_ERR_ARGUMENT;
}

}  // extern "C"
