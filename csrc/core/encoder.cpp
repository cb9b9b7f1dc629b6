// encoder.cpp - see encoder.h.
#include "encoder.h"

#include <cstring>

#include "crc32.h"

namespace pymars {

const char* encode_status_message(EncodeStatus s) {
  switch (s) {
    case EncodeStatus::Ok: return "ok";
    case EncodeStatus::BadImage:
      return "bad image: need 1..65535 x 1..65535 pixels, 1 or 3 channels (1 for a gray model), 8-bit (or 12/16-bit) samples";
    case EncodeStatus::BadQuality: return "quality must be in 1..100";
    case EncodeStatus::BadTileSize: return "tile size must be a multiple of 16 in 16..4096 (and fit the workspace)";
    case EncodeStatus::OutputTooSmall: return "output buffer too small";
    case EncodeStatus::StreamOverflow: return "tile stream overflow";
  }
  return "unknown encode status";
}

EncodeStatus check_encode_arguments(const ImageInput& img, const EncodeOptions& opt, uint32_t workspace_tile,
                                    uint32_t model_channels) {
  const bool eight = img.bit_depth == 8;
  if ((eight && !img.pixels8) || (!eight && !img.pixels16) ||
      (!eight && img.bit_depth != 12 && img.bit_depth != 16) || img.width == 0 || img.height == 0 ||
      img.width > 65535 || img.height > 65535 || (img.channels != 1 && img.channels != 3))
    return EncodeStatus::BadImage;
  if (img.row_stride != 0 && img.row_stride < size_t(img.width) * img.channels) return EncodeStatus::BadImage;
  if (model_channels == 1 && img.channels != 1) return EncodeStatus::BadImage;
  if (opt.quality < 1 || opt.quality > 100) return EncodeStatus::BadQuality;
  if (opt.tile_size < 16 || opt.tile_size > 4096 || opt.tile_size % 16 != 0 || opt.tile_size > workspace_tile)
    return EncodeStatus::BadTileSize;
  return EncodeStatus::Ok;
}

size_t max_encoded_size(const Model& m, uint32_t width, uint32_t height, uint32_t tile_size) {
  if (tile_size == 0) return 0;
  const size_t tiles = size_t(expected_tile_count(width, height, tile_size));
  const TileDims d = tile_dims(tile_size, tile_size);
  const size_t values = size_t(m.latent) * d.hy * d.wy + size_t(m.hyper) * d.hz * d.wz;
  const size_t means = m.tile_means ? 2 * size_t(m.in_channels) : 0;
  size_t payload = rans_max_stream_bytes(values) + means;
  if (m.has_nl && nl_max_bytes(d.H, d.W, m.in_channels) > payload) payload = nl_max_bytes(d.H, d.W, m.in_channels);
  if (m.has_wv && wv_max_bytes(d.H, d.W, m.in_channels) > payload) payload = wv_max_bytes(d.H, d.W, m.in_channels);
  return kFileHeaderMaxBytes + tiles * (kTileRecordHeaderBytes + payload);
}

FileHeader make_file_header(const Model& m, const ImageInput& img, const EncodeOptions& opt) {
  FileHeader h;
  const uint8_t* lib_hash = opt.library ? opt.library->hash : opt.library_hash;
  h.flags = lib_hash ? kFlagLibraryHash : 0;
  h.header_length = file_header_length_for(h.flags);
  std::memcpy(h.model_id, m.sha256, 8);
  h.width = img.width;
  h.height = img.height;
  h.channels = uint8_t(img.channels);
  h.bit_depth = uint8_t(img.bit_depth);
  h.quality = uint8_t(opt.quality);
  h.tile_size = uint16_t(opt.tile_size);
  h.tile_count = expected_tile_count(img.width, img.height, opt.tile_size);
  if (lib_hash) std::memcpy(h.library_hash, lib_hash, 8);
  return h;
}

TileInput tile_input(const ImageInput& img, uint32_t tile_size, uint32_t index) {
  const uint32_t tiles_x = (img.width + tile_size - 1) / tile_size;
  const uint32_t ty = index / tiles_x, tx = index % tiles_x;
  const uint32_t y0 = ty * tile_size, x0 = tx * tile_size;
  TileInput t;
  t.channels = img.channels;
  t.bit_depth = img.bit_depth;
  t.row_stride = img.row_stride ? img.row_stride : size_t(img.width) * img.channels;
  t.h = img.height - y0 < tile_size ? img.height - y0 : tile_size;
  t.w = img.width - x0 < tile_size ? img.width - x0 : tile_size;
  t.seams = tile_seams(img.width, img.height, tile_size, index);
  const size_t offset = size_t(y0) * t.row_stride + size_t(x0) * img.channels;
  if (img.pixels16)
    t.pixels16 = img.pixels16 + offset;
  else
    t.pixels8 = img.pixels8 + offset;
  return t;
}

EncodeStatus encode_tiles(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt,
                          uint32_t first, uint32_t count, uint32_t index_base, uint8_t* out, size_t capacity,
                          size_t* written) {
  *written = 0;
  size_t pos = 0;
  for (uint32_t i = first; i < first + count; ++i) {
    const uint32_t index = index_base + i;  // the tile's index in the whole image
    TileInput t = tile_input(img, opt.tile_size, i);
    if (opt.image_width)  // img is a strip: its tiles' seams are those of the whole image
      t.seams = tile_seams(opt.image_width, opt.image_height, opt.tile_size, index);
    TileDims d;
    ReferenceChoice rc;
    rc.library = opt.library;
    rc.forced = opt.entropy_refs || opt.decoder_refs;
    rc.entropy_ref = opt.entropy_refs ? opt.entropy_refs[index] : kNoReference;
    rc.decoder_ref = opt.decoder_refs ? opt.decoder_refs[index] : kNoReference;
    if (m.sample_coded(opt.quality))
      load_tile_samples(m, t, ws, &d);  // no learned transform at near-lossless and wavelet qualities
    else
      analyse_tile(m, t, ws, &d, rc);
    const uint8_t* payload;
    size_t len;
    if (!code_tile(m, ws, d, opt.quality, &payload, &len)) return EncodeStatus::StreamOverflow;
    const uint16_t eref = opt.library ? ws.entropy_ref : rc.entropy_ref;
    const uint16_t dref = opt.library ? ws.decoder_ref : rc.decoder_ref;
    const TileRecordHeader rh = make_tile_record_header(index, eref, dref, payload, uint32_t(len));
    if (capacity - pos < kTileRecordHeaderBytes + len) return EncodeStatus::OutputTooSmall;
    pos += write_tile_record_header(rh, out + pos, capacity - pos);
    std::memcpy(out + pos, payload, len);
    pos += len;
  }
  *written = pos;
  return EncodeStatus::Ok;
}

EncodeStatus encode_image(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt,
                          uint8_t* out, size_t capacity, size_t* written) {
  *written = 0;
  EncodeStatus st = check_encode_arguments(img, opt, ws.tile_size, m.in_channels);
  if (st != EncodeStatus::Ok) return st;
  const FileHeader h = make_file_header(m, img, opt);
  size_t pos = write_file_header(h, out, capacity);
  if (pos == 0) return EncodeStatus::OutputTooSmall;
  size_t records = 0;
  st = encode_tiles(m, ws, img, opt, 0, h.tile_count, 0, out + pos, capacity - pos, &records);
  if (st != EncodeStatus::Ok) return st;
  *written = pos + records;
  return EncodeStatus::Ok;
}

}  // namespace pymars
