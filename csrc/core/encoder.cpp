// encoder.cpp - see encoder.h.
#include "encoder.h"

#include <cstring>

#include "crc32.h"

namespace pymars {

static_assert(kMinQuality == 1 && kMaxQuality == 100 && kMaxImageSide == 65535 && kMinTileSize == 16 &&
                  kMaxTileSize == 4096 && kTileSizeStep == 16,
              "update the messages of encode_status_message()");

const char* encode_status_message(EncodeStatus s) {
  switch (s) {
    case EncodeStatus::Ok: return "ok";
    // The ranges in these messages are those of limits.h (static_asserts below).
    case EncodeStatus::BadImage:
      return "bad image: need 1..65535 x 1..65535 pixels, 1 or 3 channels (1 for a gray model), 8-bit (or 12/16-bit) samples";
    case EncodeStatus::BadQuality: return "quality must be in 1..100";
    case EncodeStatus::BadTileSize: return "tile size must be a multiple of 16 in 16..4096 (and fit the workspace)";
    case EncodeStatus::OutputTooSmall: return "output buffer too small";
    case EncodeStatus::StreamOverflow: return "tile stream overflow";
    case EncodeStatus::TargetTooSmall: return "target size too small: even quality 1 does not fit";
    case EncodeStatus::Cancelled: return "rate search cancelled";
    case EncodeStatus::BadSequence:
      return "bad sequence reference: the frame and the earlier frame must be 8-bit, 1..65535 x 1..65535, in the model's "
             "channels, at a quality the rover can reconstruct (wavelet or near-lossless)";
  }
  return "unknown encode status";
}

EncodeStatus check_encode_arguments(const ImageInput& img, const EncodeOptions& opt, uint32_t workspace_tile,
                                    uint32_t model_channels) {
  const bool eight = img.bit_depth == 8;
  if ((eight && !img.pixels8) || (!eight && !img.pixels16) ||
      (!eight && img.bit_depth != 12 && img.bit_depth != 16) || !valid_image_side(img.width) ||
      !valid_image_side(img.height) || (img.channels != 1 && img.channels != 3))
    return EncodeStatus::BadImage;
  if (img.row_stride != 0 && img.row_stride < size_t(img.width) * img.channels) return EncodeStatus::BadImage;
  if (model_channels == 1 && img.channels != 1) return EncodeStatus::BadImage;
  if (!valid_quality(opt.quality)) return EncodeStatus::BadQuality;
  if (!valid_tile_size(opt.tile_size) || opt.tile_size > workspace_tile) return EncodeStatus::BadTileSize;
  if (opt.sequence) {
    const SequenceRef& r = *opt.sequence;
    // The frame too must be in the model's channels: the ground rebuilds the reference from the decoded
    // image, which has the file's channels.
    if (!r.samples || !valid_image_side(r.width) || !valid_image_side(r.height) || r.channels != model_channels ||
        img.channels != model_channels ||
        (r.row_stride != 0 && r.row_stride < size_t(r.width) * r.channels))
      return EncodeStatus::BadSequence;
  }
  return EncodeStatus::Ok;
}

void plan_sequence(EncoderWorkspace& ws, const ImageInput& img, EncodeOptions* opt) {
  opt->registration = FrameRegistration{};
  if (!opt->sequence || img.bit_depth != 8 || !img.pixels8 || !ws.reg_scratch) return;
  opt->registration = register_frame(*opt->sequence, img.pixels8, img.width, img.height, img.channels,
                                     img.row_stride, ws.reg_scratch);
}

size_t max_tile_record_bytes(const Model& m, uint32_t tile_size) {
  const TileDims d = tile_dims(tile_size, tile_size);
  const size_t values = size_t(m.latent) * d.hy * d.wy + size_t(m.hyper) * d.hz * d.wz;
  const size_t means = m.tile_means ? 2 * size_t(m.in_channels) : 0;
  size_t payload = rans_max_stream_bytes(values) + means;
  if (m.has_nl && nl_max_bytes(d.H, d.W, m.in_channels) > payload) payload = nl_max_bytes(d.H, d.W, m.in_channels);
  if (m.has_wv && wv_max_bytes(d.H, d.W, m.in_channels) > payload) payload = wv_max_bytes(d.H, d.W, m.in_channels);
  return kTileRecordHeaderBytes + payload;
}

size_t max_encoded_size(const Model& m, uint32_t width, uint32_t height, uint32_t tile_size) {
  if (tile_size == 0) return 0;
  const size_t tiles = size_t(expected_tile_count(width, height, tile_size));
  return kFileHeaderMaxBytes + tiles * max_tile_record_bytes(m, tile_size);
}

FileHeader make_file_header(const Model& m, const ImageInput& img, const EncodeOptions& opt) {
  FileHeader h;
  const uint8_t* lib_hash = opt.library ? opt.library->hash : opt.library_hash;
  const bool seq = codes_sequence(m, img, opt, opt.quality);
  h.flags = uint16_t((lib_hash ? kFlagLibraryHash : 0) | (codes_source_depth(m, img, opt, opt.quality) ? kFlagSourceDepth : 0) |
                     (seq ? kFlagSequenceRef : 0));
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
  if (seq) std::memcpy(h.sequence_id, opt.sequence->id, 8);
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

void prepare_tile(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt, uint32_t i,
                  uint32_t index_base, bool analyse, PreparedTile* tile) {
  const uint32_t index = index_base + i;  // the tile's index in the whole image
  TileInput t = tile_input(img, opt.tile_size, i);
  if (opt.image_width)  // img is a strip: its tiles' seams are those of the whole image
    t.seams = tile_seams(opt.image_width, opt.image_height, opt.tile_size, index);
  ReferenceChoice rc;
  rc.library = opt.library;
  rc.forced = opt.entropy_refs || opt.decoder_refs;
  rc.entropy_ref = opt.entropy_refs ? opt.entropy_refs[index] : kNoReference;
  rc.decoder_ref = opt.decoder_refs ? opt.decoder_refs[index] : kNoReference;
  // Source-depth samples (ws.samples16) only where a quality of this model can code them.
  t.keep_depth = opt.source_depth && img.bit_depth != 8 && ws.samples16 != nullptr;
  if (analyse)
    analyse_tile(m, t, ws, &tile->dims, rc);
  else
    load_tile_samples(m, t, ws, &tile->dims);  // no learned transform at near-lossless and wavelet qualities
  tile->sample_depth = t.keep_depth ? img.bit_depth : 8;
  tile->index = index;
  tile->library = opt.library != nullptr;
  tile->analysed = analyse;
  tile->entropy_ref = opt.library ? ws.entropy_ref : rc.entropy_ref;
  tile->decoder_ref = opt.library ? ws.decoder_ref : rc.decoder_ref;
  // The tile's origin in the whole image: the reference is aligned with that.
  const uint32_t width = opt.image_width ? opt.image_width : img.width;
  const uint32_t tiles_x = (width + opt.tile_size - 1) / opt.tile_size;
  const uint32_t y0 = (index / tiles_x) * opt.tile_size, x0 = (index % tiles_x) * opt.tile_size;
  tile->link = TileReference{nullptr, y0, x0, TileSequence{}};
  if (opt.sequence && opt.registration.usable && img.bit_depth == 8 && ws.seq_pred) {
    tile->link.ref = opt.sequence;
    tile->link.seq = refine_tile(*opt.sequence, opt.registration, ws.samples, size_t(tile->dims.W) * m.in_channels, y0,
                                 x0, tile->dims.h, tile->dims.w);
  }
}

EncodeStatus code_tile_record(const Model& m, EncoderWorkspace& ws, const PreparedTile& tile, uint32_t quality,
                              uint8_t* out, size_t capacity, size_t* written) {
  *written = 0;
  if (!valid_quality(quality) || (!tile.analysed && needs_analysis(m, quality))) return EncodeStatus::BadQuality;
  const uint8_t* payload;
  size_t len;
  if (!code_tile(m, ws, tile.dims, quality, &payload, &len, tile.sample_depth, tile.link))
    return EncodeStatus::StreamOverflow;
  // A sample-coded quality codes the tile without references. encode_image()
  // prepares such a tile without analysis, which selects none; a tile that
  // was analysed (rate control) names none either, so the record depends on
  // the quality, not on how the tile was prepared.
  const bool no_refs = tile.library && m.sample_coded(quality);
  const uint16_t eref = no_refs ? kNoReference : tile.entropy_ref, dref = no_refs ? kNoReference : tile.decoder_ref;
  const TileRecordHeader rh = make_tile_record_header(tile.index, eref, dref, payload, uint32_t(len));
  if (capacity < kTileRecordHeaderBytes + len) return EncodeStatus::OutputTooSmall;
  write_tile_record_header(rh, out, capacity);
  std::memcpy(out + kTileRecordHeaderBytes, payload, len);
  *written = kTileRecordHeaderBytes + len;
  return EncodeStatus::Ok;
}

namespace {

// The arrays of tile_analysis_bytes(), in this order: y (float), z_hat,
// mean_q4, raw_index (int32) and tile_mean (3 x u16) when analysed; the
// samples when the model has sample coders.
struct AnalysisLayout {
  size_t ny = 0, nz = 0, samples = 0, samples16 = 0;
  size_t bytes() const {
    return ny * sizeof(float) + (nz + 2 * ny) * sizeof(int32_t) + 3 * sizeof(uint16_t) + samples +
           samples16 * sizeof(uint16_t);
  }
};

AnalysisLayout analysis_layout(const Model& m, const PreparedTile& t) {
  AnalysisLayout l;
  if (t.analysed) {
    l.ny = size_t(m.latent) * t.dims.hy * t.dims.wy;
    l.nz = size_t(m.hyper) * t.dims.hz * t.dims.wz;
  }
  if (m.has_sample_coders()) l.samples = size_t(t.dims.H) * t.dims.W * m.in_channels;
  if (t.sample_depth != 8) l.samples16 = size_t(t.dims.H) * t.dims.W * m.in_channels;
  return l;
}

// Copies between the workspace and the saved bytes (to_ws: restore).
void copy_analysis(const Model& m, EncoderWorkspace& ws, const PreparedTile& t, uint8_t* saved, bool to_ws) {
  const AnalysisLayout l = analysis_layout(m, t);
  size_t pos = 0;
  auto copy = [&](void* field, size_t n) {
    if (to_ws)
      std::memcpy(field, saved + pos, n);
    else
      std::memcpy(saved + pos, field, n);
    pos += n;
  };
  if (l.ny) {
    copy(ws.y, l.ny * sizeof(float));
    copy(ws.z_hat, l.nz * sizeof(int32_t));
    copy(ws.mean_q4, l.ny * sizeof(int32_t));
    copy(ws.raw_index, l.ny * sizeof(int32_t));
  }
  copy(ws.tile_mean, 3 * sizeof(uint16_t));
  if (l.samples) copy(ws.samples, l.samples);
  if (l.samples16) copy(ws.samples16, l.samples16 * sizeof(uint16_t));
}

}  // namespace

size_t tile_analysis_bytes(const Model& m, const PreparedTile& tile) { return analysis_layout(m, tile).bytes(); }

void save_tile_analysis(const Model& m, const EncoderWorkspace& ws, const PreparedTile& tile, uint8_t* dst) {
  // copy_analysis() only reads the workspace's arrays when saving.
  copy_analysis(m, const_cast<EncoderWorkspace&>(ws), tile, dst, false);
}

void restore_tile_analysis(const Model& m, EncoderWorkspace& ws, const PreparedTile& tile, const uint8_t* src) {
  copy_analysis(m, ws, tile, const_cast<uint8_t*>(src), true);  // only read when restoring
}

namespace {

// Decodes the payload just written for `tile` (the ground's very code, on the
// encoder's workspace) into the image-sized reconstruction at the tile's place.
bool reconstruct_tile(const Model& m, EncoderWorkspace& ws, const PreparedTile& tile, uint32_t quality,
                      const uint8_t* payload, size_t len, uint32_t width, uint8_t* reconstruction) {
  const TileDims& d = tile.dims;
  const uint32_t c = m.in_channels;
  const uint8_t* src;
  if (m.near_lossless(quality)) {
    src = ws.nl_recon;  // nl_encode() left the decoded samples there
  } else if (m.wavelet(quality)) {
    if (!decode_wavelet_tile(m, quality, d, payload, len, tile.link, ws.wv_state, ws.wv_work, ws.seq_pred,
                             ws.seq_work, ws.samples))
      return false;
    src = ws.samples;
  } else {
    return false;
  }
  for (uint32_t y = 0; y < d.h; ++y)
    for (size_t k = 0; k < size_t(d.w) * c; ++k)
      reconstruction[(size_t(tile.link.y0 + y) * width + tile.link.x0) * c + k] = src[size_t(y) * d.w * c + k];
  return true;
}

}  // namespace

EncodeStatus encode_tiles(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt,
                          uint32_t first, uint32_t count, uint32_t index_base, uint8_t* out, size_t capacity,
                          size_t* written) {
  *written = 0;
  size_t pos = 0;
  const bool analyse = needs_analysis(m, opt.quality);
  for (uint32_t i = first; i < first + count; ++i) {
    PreparedTile tile;
    prepare_tile(m, ws, img, opt, i, index_base, analyse, &tile);
    size_t n;
    const EncodeStatus st = code_tile_record(m, ws, tile, opt.quality, out + pos, capacity - pos, &n);
    if (st != EncodeStatus::Ok) return st;
    if (opt.reconstruction &&
        !reconstruct_tile(m, ws, tile, opt.quality, out + pos + kTileRecordHeaderBytes, n - kTileRecordHeaderBytes,
                          img.width, opt.reconstruction))
      return EncodeStatus::BadSequence;
    pos += n;
  }
  *written = pos;
  return EncodeStatus::Ok;
}

EncodeStatus encode_image(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt,
                          uint8_t* out, size_t capacity, size_t* written) {
  *written = 0;
  EncodeStatus st = check_encode_arguments(img, opt, ws.tile_size, m.in_channels);
  if (st != EncodeStatus::Ok) return st;
  // A reconstruction exists only for 8-bit samples coded by the sample coders.
  if (opt.reconstruction && (img.bit_depth != 8 || img.channels != m.in_channels || !m.sample_coded(opt.quality)))
    return EncodeStatus::BadSequence;
  EncodeOptions o = opt;
  if (o.sequence) plan_sequence(ws, img, &o);
  const FileHeader h = make_file_header(m, img, o);
  size_t pos = write_file_header(h, out, capacity);
  if (pos == 0) return EncodeStatus::OutputTooSmall;
  size_t records = 0;
  st = encode_tiles(m, ws, img, o, 0, h.tile_count, 0, out + pos, capacity - pos, &records);
  if (st != EncodeStatus::Ok) return st;
  *written = pos + records;
  return EncodeStatus::Ok;
}

EncodeStatus search_quality(size_t target_bytes, QualityProbe probe, void* context, uint32_t* quality,
                            size_t* min_bytes) {
  *quality = 0;
  *min_bytes = 0;
  size_t bytes = 0;
  EncodeStatus st = probe(context, kMinQuality, &bytes);
  if (st != EncodeStatus::Ok && st != EncodeStatus::OutputTooSmall) return st;
  if (st == EncodeStatus::OutputTooSmall || bytes > target_bytes) {
    *min_bytes = st == EncodeStatus::Ok ? bytes : 0;
    return EncodeStatus::TargetTooSmall;
  }
  uint32_t lo = kMinQuality, hi = kMaxQuality;
  while (lo < hi) {
    const uint32_t mid = (lo + hi + 1) / 2;
    st = probe(context, mid, &bytes);
    if (st == EncodeStatus::Ok && bytes <= target_bytes)
      lo = mid;
    else if (st == EncodeStatus::Ok || st == EncodeStatus::OutputTooSmall)
      hi = mid - 1;
    else
      return st;
  }
  *quality = lo;
  return EncodeStatus::Ok;
}

namespace {

// encode_to_size()'s probe: the whole file into the caller's buffer, at most `budget` bytes.
struct WholeFileProbe {
  const Model* m;
  EncoderWorkspace* ws;
  const ImageInput* img;
  EncodeOptions opt;
  uint8_t* out;
  size_t budget;
  uint32_t in_out = 0;  // the quality whose file out holds (0: none)
  size_t written = 0;
};

EncodeStatus probe_whole_file(void* context, uint32_t quality, size_t* bytes) {
  WholeFileProbe& p = *static_cast<WholeFileProbe*>(context);
  p.opt.quality = quality;
  const EncodeStatus st = encode_image(*p.m, *p.ws, *p.img, p.opt, p.out, p.budget, bytes);
  p.in_out = st == EncodeStatus::Ok ? quality : 0;
  p.written = st == EncodeStatus::Ok ? *bytes : 0;
  return st;
}

}  // namespace

EncodeStatus encode_to_size(const Model& m, EncoderWorkspace& ws, const ImageInput& img, const EncodeOptions& opt,
                            size_t target_bytes, uint8_t* out, size_t capacity, size_t* written, uint32_t* quality) {
  *written = 0;
  *quality = 0;
  WholeFileProbe p{&m, &ws, &img, opt, out, 0};
  p.opt.quality = kMinQuality;
  const EncodeStatus st = check_encode_arguments(img, p.opt, ws.tile_size, m.in_channels);
  if (st != EncodeStatus::Ok) return st;
  // A buffer smaller than the target could make a quality that meets the
  // target look too large: refuse it unless no file can outgrow it.
  if (capacity < target_bytes && capacity < max_encoded_size(m, img.width, img.height, opt.tile_size))
    return EncodeStatus::OutputTooSmall;
  p.budget = capacity < target_bytes ? capacity : target_bytes;
  uint32_t q;
  size_t min_bytes;
  EncodeStatus found = search_quality(target_bytes, probe_whole_file, &p, &q, &min_bytes);
  if (found != EncodeStatus::Ok) return found;
  if (p.in_out != q) {  // the last probe did not fit: encode the chosen quality again
    size_t bytes;
    found = probe_whole_file(&p, q, &bytes);
    if (found != EncodeStatus::Ok) return found;  // cannot happen: the same bytes fitted before
  }
  *written = p.written;
  *quality = q;
  return EncodeStatus::Ok;
}

}  // namespace pymars
