// marsenc.cpp - the C API of marsenc.h over the C++ core.
#include "marsenc.h"

#include <cstring>

#include "core/arena.h"
#include "core/encoder.h"
#include "core/model.h"
#include "core/tile_codec.h"

struct marsenc_encoder {
  pymars::Model model;
  pymars::EncoderWorkspace workspace;
  uint32_t tile_size;
};

namespace {

bool valid_tile_size(uint32_t t) { return t >= 16 && t <= 4096 && t % 16 == 0; }

// One set-up routine for both the size query (counting arena) and the real
// initialisation, so the two can never disagree.
int setup(pymars::Arena& arena, const uint8_t* blob, size_t blob_size, uint32_t tile_size, marsenc_encoder** out) {
  marsenc_encoder* enc = arena.alloc<marsenc_encoder>(1);
  pymars::Model model;
  pymars::BlobStatus bs = pymars::load_model(blob, blob_size, arena, &model);
  if (bs == pymars::BlobStatus::OutOfMemory) return MARSENC_ERR_ARENA;
  if (bs != pymars::BlobStatus::Ok) return MARSENC_ERR_BLOB;
  pymars::EncoderWorkspace ws;
  pymars::make_encoder_workspace(model, tile_size, arena, &ws);
  if (arena.failed()) return MARSENC_ERR_ARENA;
  if (enc) {
    enc->model = model;
    enc->workspace = ws;
    enc->tile_size = tile_size;
  }
  if (out) *out = enc;
  return MARSENC_OK;
}

}  // namespace

extern "C" {

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

size_t marsenc_max_output_size(const marsenc_encoder* encoder, uint32_t width, uint32_t height) {
  if (!encoder) return 0;
  return pymars::max_encoded_size(encoder->model, width, height, encoder->tile_size);
}

int marsenc_encode(marsenc_encoder* encoder, const marsenc_image* image, int quality, uint8_t* out,
                   size_t capacity, size_t* written) {
  if (!encoder || !image || !out || !written) return MARSENC_ERR_ARGUMENT;
  *written = 0;
  if (quality < 1 || quality > 100) return MARSENC_ERR_QUALITY;
  pymars::ImageInput img;
  img.pixels8 = image->pixels8;
  img.pixels16 = image->pixels16;
  img.width = image->width;
  img.height = image->height;
  img.channels = image->channels;
  img.bit_depth = image->bit_depth;
  img.row_stride = image->row_stride;
  pymars::EncodeOptions opt;
  opt.quality = uint32_t(quality);
  opt.tile_size = encoder->tile_size;
  switch (pymars::encode_image(encoder->model, encoder->workspace, img, opt, out, capacity, written)) {
    case pymars::EncodeStatus::Ok: return MARSENC_OK;
    case pymars::EncodeStatus::BadImage: return MARSENC_ERR_IMAGE;
    case pymars::EncodeStatus::BadQuality: return MARSENC_ERR_QUALITY;
    case pymars::EncodeStatus::BadTileSize: return MARSENC_ERR_ARGUMENT;
    case pymars::EncodeStatus::OutputTooSmall: return MARSENC_ERR_OUTPUT_FULL;
    case pymars::EncodeStatus::StreamOverflow: return MARSENC_ERR_INTERNAL;
  }
  return MARSENC_ERR_INTERNAL;
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
    case MARSENC_ERR_IMAGE: return "invalid image (size 1..65535, 1 or 3 channels, 8/12/16-bit)";
    case MARSENC_ERR_QUALITY: return "quality must be in 1..100";
    case MARSENC_ERR_OUTPUT_FULL: return "output buffer too small (use marsenc_max_output_size)";
    case MARSENC_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

}  // extern "C"
