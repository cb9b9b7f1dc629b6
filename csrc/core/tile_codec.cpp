// tile_codec.cpp - see tile_codec.h.
#include "tile_codec.h"

#include <cstring>

#include "rans.h"
#include "reference.h"

namespace pymars {

namespace {

size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

// Largest float intermediate of an op list run on `s`, and its output shape.
size_t float_ops_peak(const FloatOp* ops, uint32_t n, Shape* s, size_t* row_peak) {
  size_t peak = s->size();
  for (uint32_t i = 0; i < n; ++i) {
    *s = float_op_shape(ops[i], *s);
    peak = max_size(peak, s->size());
    if (ops[i].type == OpType::SGDN) *row_peak = max_size(*row_peak, size_t(ops[i].cin));
  }
  return peak;
}

}  // namespace

void hs_scratch_sizes(const Model& m, uint32_t hz, uint32_t wz, size_t* ping_pong, size_t* d2s, size_t* ref_in) {
  Shape s{m.hyper, hz, wz};
  size_t peak = s.size(), d2s_peak = 1, ref_peak = 1;
  for (uint32_t i = 0; i < m.n_hs; ++i) {
    if (m.has_ref && i == m.hs_ref_at) {
      ref_peak = size_t(m.latent) * s.h * s.w;  // the reference latent laid over this grid
      s.c += m.hr.cout;                         // the branch output appended to the input
      peak = max_size(peak, s.size());
    }
    const size_t acc = size_t(m.hs[i].cout) * s.h * s.w;
    if (m.hs[i].depth_to_space) d2s_peak = max_size(d2s_peak, acc);
    s = int_op_shape(m.hs[i], s);
    peak = max_size(peak, s.size());
  }
  *ping_pong = peak;
  *d2s = d2s_peak;
  *ref_in = ref_peak;
}

namespace {

// Worst case bytes per coded value: escape symbol, 5-bit length and two 16-bit
// chunks can each emit two renormalisation bytes.
constexpr size_t kMaxBytesPerValue = 8;
// Room in front of the rANS stream for the tile means (3 channels x u16, rounded up).
constexpr size_t kTileMeanReserve = 8;

}  // namespace

bool make_encoder_workspace(const Model& m, uint32_t tile_size, Arena& arena, EncoderWorkspace* ws) {
  *ws = EncoderWorkspace{};
  ws->tile_size = tile_size;
  TileDims d = tile_dims(tile_size, tile_size);
  Shape s{m.in_channels, d.H, d.W};
  size_t row_peak = 1;
  size_t fpeak = float_ops_peak(m.ga, m.n_ga, &s, &row_peak);
  fpeak = max_size(fpeak, float_ops_peak(m.ha, m.n_ha, &s, &row_peak));
  size_t d2s_peak, ipeak, ref_peak;
  hs_scratch_sizes(m, d.hz, d.wz, &ipeak, &d2s_peak, &ref_peak);
  size_t ny = size_t(m.latent) * d.hy * d.wy, nz = size_t(m.hyper) * d.hz * d.wz;
  ws->fa = arena.alloc<float>(fpeak);
  ws->fb = arena.alloc<float>(fpeak);
  ws->row_scratch = arena.alloc<float>(row_peak);
  ws->y = arena.alloc<float>(ny);
  ws->z_hat = arena.alloc<int32_t>(nz);
  ws->ia = arena.alloc<int32_t>(ipeak);
  ws->ib = arena.alloc<int32_t>(ipeak);
  ws->d2s = arena.alloc<int32_t>(d2s_peak);
  ws->mean_q4 = arena.alloc<int32_t>(ny);
  ws->raw_index = arena.alloc<int32_t>(ny);
  ws->symbols = arena.alloc<int32_t>(ny);
  ws->index = arena.alloc<int32_t>(ny);
  ws->stream_capacity = (ny + nz) * kMaxBytesPerValue + 16 + kTileMeanReserve;
  ws->stream = arena.alloc<uint8_t>(ws->stream_capacity);
  if (m.has_sample_coders()) {
    const size_t samples = size_t(d.H) * d.W * m.in_channels;
    ws->samples = arena.alloc<uint8_t>(samples);
    ws->sample_capacity = max_size(m.has_nl ? nl_max_bytes(d.H, d.W, m.in_channels) : 0,
                               m.has_wv ? wv_max_bytes(d.H, d.W, m.in_channels) : 0);
    ws->sample_stream = arena.alloc<uint8_t>(ws->sample_capacity);
  }
  if (m.has_nl) {
    ws->nl_recon = arena.alloc<uint8_t>(size_t(d.H) * d.W * m.in_channels);
    ws->nl_state = arena.alloc<NlState>(1);
  }
  if (m.has_nl && m.nl_coder != NlCoder::Golomb) {  // source-depth tiles (§4.8): 16-bit samples
    ws->samples16 = arena.alloc<uint16_t>(size_t(d.H) * d.W * m.in_channels);
    ws->nl_recon16 = arena.alloc<uint16_t>(size_t(d.H) * d.W * m.in_channels);
  }
  if (m.has_wv) {
    ws->wv_work = arena.alloc<int32_t>(wv_work_ints(d.H, d.W, m.in_channels));
    ws->wv_state = arena.alloc<WvState>(1);
    ws->seq_pred = arena.alloc<uint8_t>(size_t(d.H) * d.W * m.in_channels);
    ws->seq_work = arena.alloc<int32_t>(wv_work_ints(d.H, d.W, m.in_channels));
    ws->seq_stream = arena.alloc<uint8_t>(ws->sample_capacity);
    ws->reg_scratch = arena.alloc<int32_t>(kRegistrationScratchInts);
  }
  if (m.has_ref) {
    ws->ref_in = arena.alloc<int32_t>(ref_peak);
    ws->gray = arena.alloc<uint8_t>(size_t(tile_size) * tile_size);
    ws->histogram = arena.alloc<uint32_t>(kLibraryLbpBins);
    ws->descriptor = arena.alloc<uint16_t>(m.latent);
  }
  return !arena.failed();
}

bool make_decoder_workspace(const Model& m, uint32_t tile_size, Arena& arena, DecoderWorkspace* ws) {
  *ws = DecoderWorkspace{};
  ws->tile_size = tile_size;
  TileDims d = tile_dims(tile_size, tile_size);
  size_t d2s_peak, ipeak, ref_peak;
  hs_scratch_sizes(m, d.hz, d.wz, &ipeak, &d2s_peak, &ref_peak);
  size_t ny = size_t(m.latent) * d.hy * d.wy, nz = size_t(m.hyper) * d.hz * d.wz;
  ws->z_hat = arena.alloc<int32_t>(nz);
  ws->ia = arena.alloc<int32_t>(ipeak);
  ws->ib = arena.alloc<int32_t>(ipeak);
  ws->d2s = arena.alloc<int32_t>(d2s_peak);
  ws->mean_q4 = arena.alloc<int32_t>(ny);
  ws->raw_index = arena.alloc<int32_t>(ny);
  ws->symbols = arena.alloc<int32_t>(ny);
  ws->index = arena.alloc<int32_t>(ny);
  if (m.has_ref) ws->ref_in = arena.alloc<int32_t>(ref_peak);
  if (m.has_sample_coders()) ws->samples = arena.alloc<uint8_t>(size_t(d.H) * d.W * m.in_channels);
  if (m.has_nl) ws->nl_state = arena.alloc<NlState>(1);
  if (m.has_nl && m.nl_coder != NlCoder::Golomb) ws->samples16 = arena.alloc<uint16_t>(size_t(d.H) * d.W * m.in_channels);
  if (m.has_wv) {
    ws->wv_work = arena.alloc<int32_t>(wv_work_ints(d.H, d.W, m.in_channels));
    ws->wv_state = arena.alloc<WvState>(1);
    ws->seq_pred = arena.alloc<uint8_t>(size_t(d.H) * d.W * m.in_channels);
    ws->seq_work = arena.alloc<int32_t>(wv_work_ints(d.H, d.W, m.in_channels));
  }
  return !arena.failed();
}

namespace {

// Samples of the tile as floats 0..255 (H x W x `out_channels` interleaved), padded
// by edge replication to H x W. A gray tile feeds a 3-channel model replicated to
// three channels; a 1-channel model takes gray tiles only (encode refuses RGB).
void load_tile_hwc(const TileInput& in, const TileDims& d, uint32_t out_channels, float* hwc, uint16_t* mean16,
                   uint8_t* samples, uint16_t* samples16) {
  uint64_t sum[3] = {0, 0, 0};
  if (!in.pixels16 && !hwc && samples && in.channels == out_channels) {
    // The sample coders' common case (8-bit samples, as many channels as the
    // model): whole rows copied, the edge replicated, the sums in one pass; the
    // same samples and means as the general loop below, at a few instructions
    // per sample instead of ~50 (gray lossless spent a tenth of its time here).
    const uint32_t C = out_channels;
    const size_t row = size_t(in.w) * C;
    for (uint32_t y = 0; y < d.H; ++y) {
      const uint8_t* src = in.pixels8 + size_t(y < in.h ? y : in.h - 1) * in.row_stride;
      uint8_t* dst = samples + size_t(y) * d.W * C;
      std::memcpy(dst, src, row);
      for (size_t i = row; i < size_t(d.W) * C; ++i) dst[i] = dst[i - C];
      if (y >= in.h) continue;
      if (C == 1) {
        uint32_t acc = 0;  // at most 4096 samples of 255 per row
        for (size_t i = 0; i < row; ++i) acc += src[i];
        sum[0] += acc;
      } else {
        uint32_t acc[3] = {0, 0, 0};
        for (size_t i = 0; i < row; i += 3) {
          acc[0] += src[i];
          acc[1] += src[i + 1];
          acc[2] += src[i + 2];
        }
        for (uint32_t c = 0; c < 3; ++c) sum[c] += acc[c];
      }
    }
    const uint64_t n = uint64_t(in.h) * in.w;
    for (uint32_t c = 0; c < C; ++c) mean16[c] = uint16_t((16 * sum[c] + n / 2) / n);
    return;
  }
  // round(v * 255 / m) in integers, m = 2^bit_depth - 1 (docs/bitstream.md §5).
  const uint32_t m = in.pixels16 ? (1u << in.bit_depth) - 1 : 1;
  if (in.pixels16 && !hwc && samples && in.channels == out_channels && in.bit_depth <= 12) {
    // The sample coders on 9..12-bit input (the lossless EDR case): rows at a time, the
    // 8-bit value from a table of the rounding below (4 KB on the stack) instead of a
    // division per sample, the edge replicated; the same samples, samples16 and means as
    // the general loop (12-bit lossless spent 8 % of its instructions there).
    uint8_t to8[4096];
    for (uint32_t v = 0; v <= m; ++v) to8[v] = uint8_t((510u * v + m) / (2u * m));
    const uint32_t C = out_channels;
    const size_t row = size_t(in.w) * C, full = size_t(d.W) * C;
    for (uint32_t y = 0; y < d.H; ++y) {
      const uint16_t* src = in.pixels16 + size_t(y < in.h ? y : in.h - 1) * in.row_stride;
      uint8_t* dst = samples + size_t(y) * full;
      uint16_t* dst16 = samples16 ? samples16 + size_t(y) * full : nullptr;
      uint32_t acc[3] = {0, 0, 0};  // at most 4096 samples of 255 per row
      for (size_t i = 0; i < row; i += C)
        for (uint32_t c = 0; c < C; ++c) {
          const uint32_t v = src[i + c] > m ? m : src[i + c];  // a 12-bit image with stray high bits
          if (dst16) dst16[i + c] = uint16_t(v);
          dst[i + c] = to8[v];
          acc[c] += to8[v];
        }
      for (size_t i = row; i < full; ++i) {
        dst[i] = dst[i - C];
        if (dst16) dst16[i] = dst16[i - C];
      }
      if (y < in.h)
        for (uint32_t c = 0; c < C; ++c) sum[c] += acc[c];
    }
    const uint64_t n = uint64_t(in.h) * in.w;
    for (uint32_t c = 0; c < C; ++c) mean16[c] = uint16_t((16 * sum[c] + n / 2) / n);
    return;
  }
  for (uint32_t y = 0; y < d.H; ++y) {
    const uint32_t sy = y < in.h ? y : in.h - 1;
    for (uint32_t x = 0; x < d.W; ++x) {
      const uint32_t sx = x < in.w ? x : in.w - 1;
      const size_t at = sy * in.row_stride + size_t(sx) * in.channels;
      for (uint32_t c = 0; c < out_channels; ++c) {
        const uint32_t ch = in.channels == 1 ? 0 : c;
        uint32_t v;
        if (in.pixels16) {
          uint32_t s = in.pixels16[at + ch];
          if (s > m) s = m;  // a 12-bit image with stray high bits
          if (samples16) samples16[(size_t(y) * d.W + x) * out_channels + c] = uint16_t(s);
          v = (510u * s + m) / (2u * m);
        } else {
          v = in.pixels8[at + ch];
        }
        if (hwc) hwc[(size_t(y) * d.W + x) * out_channels + c] = float(v);
        if (samples) samples[(size_t(y) * d.W + x) * out_channels + c] = uint8_t(v);
        if (y < in.h && x < in.w) sum[c] += v;
      }
    }
  }
  // Integer mean of the tile's own pixels (padding excluded), rounded half up:
  // identical on every CPU, so it can go into the bitstream.
  const uint64_t n = uint64_t(in.h) * in.w;
  for (uint32_t c = 0; c < out_channels; ++c) mean16[c] = uint16_t((16 * sum[c] + n / 2) / n);
}

}  // namespace

void entropy_parameters(const Model& m, const int32_t* z_hat, const TileDims& d, int32_t* ia, int32_t* ib,
                        int32_t* d2s, int32_t* mean_q4, int32_t* raw_index, const int8_t* ref_latent,
                        int32_t* ref_in) {
  Shape s{m.hyper, d.hz, d.wz};
  const size_t nz = s.size();
  for (size_t i = 0; i < nz; ++i) ia[i] = z_hat[i];
  const int32_t* out;
  if (!m.has_ref) {
    out = run_int_ops(m.hs, m.n_hs, ia, ib, &s, d2s);
  } else {
    int32_t* cur = run_int_ops(m.hs, m.hs_ref_at, ia, ib, &s, d2s);
    int32_t* other = cur == ia ? ib : ia;
    // The reference latent over the grid: ref[c][y % 16][x % 16] (zeros: no reference).
    const uint32_t side = kRefLatentSide;
    for (uint32_t c = 0; c < m.latent; ++c)
      for (uint32_t y = 0; y < s.h; ++y)
        for (uint32_t x = 0; x < s.w; ++x)
          ref_in[(size_t(c) * s.h + y) * s.w + x] =
              ref_latent ? ref_latent[(size_t(c) * side + y % side) * side + x % side] : 0;
    // Its branch output goes right after the hidden planes: the concatenated input of hs[hs_ref_at].
    run_iconv(m.hr, ref_in, Shape{m.latent, s.h, s.w}, cur + s.size(), d2s);
    s.c += m.hr.cout;
    out = run_int_ops(m.hs + m.hs_ref_at, m.n_hs - m.hs_ref_at, cur, other, &s, d2s);
  }
  // The h_s output is 4hz x 4wz >= hy x wy: crop to the latent grid.
  for (uint32_t c = 0; c < m.latent; ++c)
    for (uint32_t y = 0; y < d.hy; ++y)
      for (uint32_t x = 0; x < d.wy; ++x) {
        const size_t dst = (size_t(c) * d.hy + y) * d.wy + x;
        mean_q4[dst] = out[(size_t(c) * s.h + y) * s.w + x];
        raw_index[dst] = out[(size_t(c + m.latent) * s.h + y) * s.w + x];
      }
}

void analyse_tile(const Model& m, const TileInput& in, EncoderWorkspace& ws, TileDims* dims,
                  const ReferenceChoice& refs) {
  TileDims d = tile_dims(in.h, in.w);
  d.seams = in.seams;
  *dims = d;
  load_tile_hwc(in, d, m.in_channels, ws.fa, ws.tile_mean, ws.samples,
                in.keep_depth && in.pixels16 ? ws.samples16 : nullptr);
  Shape s{m.in_channels, d.H, d.W};
  float* y = run_float_ops(m.ga, m.n_ga, ws.fa, ws.fb, &s, ws.row_scratch);
  // Keep y channel-major (the symbol order); h_a may overwrite y's buffer.
  const size_t yplane = size_t(s.h) * s.w;
  for (size_t p = 0; p < yplane; ++p)
    for (uint32_t c = 0; c < s.c; ++c) ws.y[c * yplane + p] = y[p * s.c + c];
  float* other = y == ws.fa ? ws.fb : ws.fa;
  const float* z = run_float_ops(m.ha, m.n_ha, y, other, &s, ws.row_scratch);
  const size_t zplane = size_t(s.h) * s.w;
  for (size_t p = 0; p < zplane; ++p)
    for (uint32_t c = 0; c < s.c; ++c) ws.z_hat[c * zplane + p] = round_to_int(z[p * s.c + c], int32_t(m.z_limit));
  ws.entropy_ref = ws.decoder_ref = kNoRef;
  if (refs.library && refs.forced) {
    ws.entropy_ref = reference_latent(refs.library, refs.entropy_ref) ? refs.entropy_ref : kNoRef;
    ws.decoder_ref = refs.decoder_ref < refs.library->count ? refs.decoder_ref : kNoRef;
  } else if (refs.library && m.has_ref) {
    ws.entropy_ref = select_entropy_reference(*refs.library, ws.y, m.latent, yplane, ws.descriptor);
    ws.decoder_ref = select_decoder_reference(*refs.library, in, ws.gray, ws.histogram);
  }
  entropy_parameters(m, ws.z_hat, d, ws.ia, ws.ib, ws.d2s, ws.mean_q4, ws.raw_index,
                     reference_latent(refs.library, ws.entropy_ref), ws.ref_in);
}

void quantise_tile(const Model& m, EncoderWorkspace& ws, const TileDims& d, uint32_t quality) {
  const size_t plane = size_t(d.hy) * d.wy;
  const int32_t top = int32_t(m.scale_levels) - 1;
  for (uint32_t c = 0; c < m.latent; ++c) {
    const float g = m.gain[size_t(quality - 1) * m.latent + c];
    const int32_t k = m.offset[size_t(quality - 1) * m.latent + c];
    for (size_t i = 0; i < plane; ++i) {
      const size_t at = c * plane + i;
      const float mean = float(ws.mean_q4[at]) * 0.0625f;  // Q4 -> float, exact
      const float mg = mean * g;
      const float t = ws.y[at] * g - mg;
      ws.symbols[at] = round_to_int(t, int32_t(m.symbol_limit));
      const int32_t idx = ws.raw_index[at] + k;
      ws.index[at] = idx < 0 ? 0 : (idx > top ? top : idx);
    }
  }
}

void load_tile_samples(const Model& m, const TileInput& in, EncoderWorkspace& ws, TileDims* dims) {
  *dims = tile_dims(in.h, in.w);
  dims->seams = in.seams;
  load_tile_hwc(in, *dims, m.in_channels, nullptr, ws.tile_mean, ws.samples,
                in.keep_depth && in.pixels16 ? ws.samples16 : nullptr);
  ws.entropy_ref = ws.decoder_ref = kNoRef;
}

bool code_tile(const Model& m, EncoderWorkspace& ws, const TileDims& d, uint32_t quality, const uint8_t** payload,
               size_t* payload_size, uint32_t sample_depth, const TileReference& link) {
  if (sample_depth != 8 && m.source_depth_capable(quality) && ws.samples16) {
    const size_t n = nl_encode16(ws.samples16, size_t(d.W) * m.in_channels, d.h, d.w, m.in_channels,
                                 m.nl_k[quality - 1], sample_depth, ws.nl_state, ws.sample_stream, ws.sample_capacity,
                                 ws.nl_recon16, m.nl_coder, m.nl_priors);
    *payload = ws.sample_stream;
    *payload_size = n;
    return n != 0;
  }
  if (m.near_lossless(quality)) {
    const size_t n = nl_encode(ws.samples, size_t(d.W) * m.in_channels, d.h, d.w, m.in_channels,
                               m.nl_k[quality - 1], m.nl_coder, ws.nl_state, ws.sample_stream, ws.sample_capacity, ws.nl_recon,
                               m.nl_priors);
    *payload = ws.sample_stream;
    *payload_size = n;
    return n != 0;
  }
  if (m.wavelet(quality)) {
    const size_t n = wv_encode(ws.samples, size_t(d.W) * m.in_channels, d.h, d.w, m.in_channels,
                               m.wv_step[quality - 1], m.wv_priors, ws.wv_state, ws.wv_work, ws.sample_stream,
                               ws.sample_capacity, nullptr, d.seams);
    *payload = ws.sample_stream;
    *payload_size = n;
    if (n != 0 && link.ref && link.seq.predict && ws.seq_pred) {
      // Sequence coding: the predicted mode too, kept only when shorter. Both
      // modes give the same levels except where the rate-distortion choice
      // moves one toward the prediction, so the quality stays that of the tile.
      WvPrediction wp;
      wp.work = ws.seq_work;
      const size_t side = sequence_side_bytes(m.in_channels);
      if (n > side && build_prediction(*link.ref, link.seq, link.y0, link.x0, d.h, d.w, ws.seq_pred, &wp)) {
        write_sequence_side(link.seq, m.in_channels, ws.seq_stream);
        const size_t k = wv_encode_predicted(ws.samples, size_t(d.W) * m.in_channels, d.h, d.w, m.in_channels,
                                             m.wv_step[quality - 1], m.wv_priors, ws.wv_state, ws.wv_work, wp,
                                             ws.seq_stream + side, n - side - 1, d.seams);
        if (k != 0 && side + k < n) {
          *payload = ws.seq_stream;
          *payload_size = side + k;
        }
      }
    }
    return n != 0;
  }
  quantise_tile(m, ws, d, quality);
  // The stream is built backwards; the first kTileMeanReserve bytes stay free for
  // the tile means, which go in front of it.
  RansEncoder enc(ws.stream + kTileMeanReserve, ws.stream + ws.stream_capacity);
  const size_t ny = size_t(m.latent) * d.hy * d.wy;
  // rANS is last-in first-out: push y in reverse, then z in reverse, so the
  // decoder reads z first (it needs z to compute the y tables).
  for (size_t i = ny; i-- > 0;) enc.put_value(m.y_tables[ws.index[i]], ws.symbols[i]);
  const size_t zplane = size_t(d.hz) * d.wz;
  for (size_t i = size_t(m.hyper) * zplane; i-- > 0;) enc.put_value(m.z_tables[i / zplane], ws.z_hat[i]);
  if (!enc.finish(payload, payload_size)) return false;
  if (m.tile_means) {
    uint8_t* head = const_cast<uint8_t*>(*payload) - 2 * m.in_channels;
    for (uint32_t c = 0; c < m.in_channels; ++c) {
      head[2 * c] = uint8_t(ws.tile_mean[c] & 0xFF);
      head[2 * c + 1] = uint8_t(ws.tile_mean[c] >> 8);
    }
    *payload = head;
    *payload_size += 2 * m.in_channels;
  }
  return true;
}

bool decode_wavelet_tile(const Model& m, uint32_t quality, const TileDims& d, const uint8_t* payload,
                         size_t payload_size, const TileReference& link, WvState* state, int32_t* work,
                         uint8_t* seq_pred, int32_t* seq_work, uint8_t* out) {
  if (payload_size > 0 && payload[0] == kFormPredicted) {
    TileSequence t;
    WvPrediction wp;
    wp.work = seq_work;
    if (!link.ref || !seq_pred || !parse_sequence_side(payload, payload_size, m.in_channels, &t) ||
        !build_prediction(*link.ref, t, link.y0, link.x0, d.h, d.w, seq_pred, &wp))
      return false;
    const size_t side = sequence_side_bytes(m.in_channels);
    return wv_decode_predicted(payload + side, payload_size - side, d.h, d.w, m.in_channels, m.wv_step[quality - 1],
                               m.wv_priors, state, work, wp, out, d.seams);
  }
  return wv_decode(payload, payload_size, d.h, d.w, m.in_channels, m.wv_step[quality - 1], m.wv_priors, state, work,
                   out, d.seams);
}

bool decode_tile(const Model& m, DecoderWorkspace& ws, const TileDims& d, uint32_t quality, const uint8_t* payload,
                 size_t payload_size, float* y_hat, const int8_t* ref_latent, uint32_t sample_depth,
                 const TileReference& link) {
  if (sample_depth != 8) {
    if (!m.source_depth_capable(quality) || !ws.samples16) return false;
    return nl_decode16(payload, payload_size, d.h, d.w, m.in_channels, m.nl_k[quality - 1], sample_depth, ws.nl_state,
                       ws.samples16, m.nl_coder, m.nl_priors);
  }
  if (m.near_lossless(quality))
    return nl_decode(payload, payload_size, d.h, d.w, m.in_channels, m.nl_k[quality - 1], m.nl_coder, ws.nl_state,
                     ws.samples, m.nl_priors);
  if (m.wavelet(quality))
    return decode_wavelet_tile(m, quality, d, payload, payload_size, link, ws.wv_state, ws.wv_work, ws.seq_pred,
                               ws.seq_work, ws.samples);
  if (m.tile_means) {
    const size_t head = 2 * size_t(m.in_channels);
    if (payload_size < head) return false;
    for (uint32_t c = 0; c < m.in_channels; ++c) {
      ws.tile_mean[c] = uint16_t(payload[2 * c] | (uint16_t(payload[2 * c + 1]) << 8));
      if (ws.tile_mean[c] > 16 * 255) return false;  // not a mean of 8-bit samples
    }
    payload += head;
    payload_size -= head;
  }
  RansDecoder dec(payload, payload_size);
  const size_t zplane = size_t(d.hz) * d.wz, nz = size_t(m.hyper) * zplane;
  const int32_t zlim = int32_t(m.z_limit);
  for (size_t i = 0; i < nz; ++i) {
    int32_t v;
    if (!dec.get_value(m.z_tables[i / zplane], &v) || v < -zlim || v > zlim) return false;
    ws.z_hat[i] = v;
  }
  entropy_parameters(m, ws.z_hat, d, ws.ia, ws.ib, ws.d2s, ws.mean_q4, ws.raw_index, ref_latent, ws.ref_in);
  const size_t plane = size_t(d.hy) * d.wy;
  const int32_t top = int32_t(m.scale_levels) - 1;
  for (uint32_t c = 0; c < m.latent; ++c) {
    const float g = m.gain[size_t(quality - 1) * m.latent + c];
    const int32_t k = m.offset[size_t(quality - 1) * m.latent + c];
    for (size_t i = 0; i < plane; ++i) {
      const size_t at = c * plane + i;
      int32_t idx = ws.raw_index[at] + k;
      idx = idx < 0 ? 0 : (idx > top ? top : idx);
      ws.index[at] = idx;
      int32_t s;
      if (!dec.get_value(m.y_tables[idx], &s)) return false;
      ws.symbols[at] = s;
      if (y_hat) y_hat[at] = (float(s) + float(ws.mean_q4[at]) * 0.0625f * g) / g;
    }
  }
  return dec.finish_ok();
}

}  // namespace pymars
