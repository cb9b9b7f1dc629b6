// fuzz_decode.cpp - libFuzzer target: the ground entropy decoder on arbitrary bytes.
//
// The model is loaded once, from $PYMARS_FUZZ_BLOB or, by default, the fuzzing
// fixture csrc/fuzz/tiny.pmw (a random-weight micro codec, see make_corpus.py;
// path compiled in by scripts/fuzz.sh). Byte 0 of the input picks a mode:
//
//  * even: whole file (the rest of the input). The model id and the header CRC
//    are patched to match the model, so mutations get past open_stream() to
//    the scanner and to decode_tile_span() for every present tile — the path
//    pymars.decode() takes.
//  * odd: one tile payload. Bytes 1..3 are the tile height - 1, width - 1
//    (mod kMaxTile) and quality - 1 (mod 100); the rest goes straight to decode_tile(), so the rANS
//    decoder and the integer h_s see mutated payloads that the record CRCs
//    would otherwise stop.
//
// Properties checked besides "no crash, no sanitizer report": decoded latents
// are finite; a payload that decodes successfully is canonical: encoding
// its decoded values again gives the very same bytes (docs/bitstream.md §4.1);
// at a near-lossless quality (a blob with NLQT, e.g. PYMARS_FUZZ_BLOB=
// pymars/weights/base-v2-gray-rc/encoder.pmw; the default tiny.pmw has none)
// the decoded samples code again and decode within the error bound k; at a
// wavelet quality (PYMARS_FUZZ_BLOB=pymars/weights/base-v2-gray-wv/encoder.pmw)
// they code and decode again;
// the refusal check before allocation (has_valid_tile_record) agrees with the
// scan. Sequence coding (§4.10): a file with header flag bit 2 is decoded
// against a fixed synthetic earlier frame (160 x 160, the model's channels)
// that takes the id the header names, so predicted wavelet payloads (form 2,
// hostile displacements and offsets included) reach wv_decode_predicted; in
// the payload mode, bit 4 of byte 1 gives the tile that frame too. Speed: the fixture model is tiny and tiles are at most 64 pixels, so
// 1 M executions take about 20 minutes on one core with ASan + UBSan.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/arena.h"
#include "core/container.h"
#include "core/crc32.h"
#include "core/decoder.h"
#include "core/model.h"
#include "core/nearlossless.h"
#include "core/rans.h"
#include "core/tile_codec.h"
#include "core/wavelet.h"

using namespace pymars;

#ifndef PYMARS_FUZZ_BLOB_DEFAULT
#define PYMARS_FUZZ_BLOB_DEFAULT "csrc/fuzz/tiny.pmw"
#endif

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

namespace {

// The synthetic earlier frame of sequence-coded inputs (see the top comment).
constexpr uint32_t kRefSide = 160;
const std::vector<uint8_t>& reference_samples(uint32_t channels) {
  static std::vector<uint8_t> frame[4];
  std::vector<uint8_t>& f = frame[channels & 3];
  if (f.empty()) {
    f.resize(size_t(kRefSide) * kRefSide * channels);
    for (uint32_t y = 0; y < kRefSide; ++y)
      for (uint32_t x = 0; x < kRefSide; ++x)
        for (uint32_t c = 0; c < channels; ++c)
          f[(size_t(y) * kRefSide + x) * channels + c] = uint8_t(x * 7 + y * 13 + (x * y) % 31 + 40 * c);
  }
  return f;
}

SequenceRef synthetic_reference(const Model& m, const uint8_t id[8]) {
  SequenceRef r;
  r.samples = reference_samples(m.in_channels).data();
  r.width = r.height = kRefSide;
  r.channels = m.in_channels;
  std::memcpy(r.id, id, 8);
  return r;
}

// Small tiles keep an execution short (the seeds use 16 and 32): a larger
// tile_size is refused by open_stream (TileTooLarge), which is exercised too.
constexpr uint32_t kMaxTile = 64;            // decoder workspace
constexpr uint32_t kMaxFuzzTiles = 1u << 8;  // harness limit on tiles per file (memory, speed)

struct Fixture {
  std::vector<uint8_t> blob, model_memory, ws_memory;
  Model model;
  DecoderWorkspace ws;
  std::vector<float> y_hat;
  std::vector<uint8_t> reencoded;
  // Near-lossless qualities (blobs with an NLQT section): a second coder state and buffers.
  NlState nl_state;
  std::vector<uint8_t> nl_samples, nl_stream, nl_recon, nl_again;
  // Wavelet qualities (blobs with WVQT): a second state and plane workspace.
  WvState wv_state;
  std::vector<int32_t> wv_work;
};

Fixture* load_fixture() {
  const char* path = std::getenv("PYMARS_FUZZ_BLOB");
  if (!path) path = PYMARS_FUZZ_BLOB_DEFAULT;
  FILE* f = std::fopen(path, "rb");
  if (!f) {
    std::fprintf(stderr, "fuzz_decode: cannot open the model blob %s (set PYMARS_FUZZ_BLOB)\n", path);
    std::abort();
  }
  Fixture* fx = new Fixture;
  uint8_t buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) fx->blob.insert(fx->blob.end(), buf, buf + n);
  std::fclose(f);
  Arena counting;
  if (load_model(fx->blob.data(), fx->blob.size(), counting, &fx->model) != BlobStatus::Ok) {
    std::fprintf(stderr, "fuzz_decode: invalid model blob %s\n", path);
    std::abort();
  }
  fx->model_memory.resize(counting.used());
  Arena a(fx->model_memory.data(), fx->model_memory.size());
  FUZZ_CHECK(load_model(fx->blob.data(), fx->blob.size(), a, &fx->model) == BlobStatus::Ok);
  Arena wcount;
  make_decoder_workspace(fx->model, kMaxTile, wcount, &fx->ws);
  fx->ws_memory.resize(wcount.used());
  Arena wa(fx->ws_memory.data(), fx->ws_memory.size());
  FUZZ_CHECK(make_decoder_workspace(fx->model, kMaxTile, wa, &fx->ws));
  const TileDims d = tile_dims(kMaxTile, kMaxTile);
  const size_t values = size_t(fx->model.latent) * d.hy * d.wy + size_t(fx->model.hyper) * d.hz * d.wz;
  fx->y_hat.resize(size_t(fx->model.latent) * d.hy * d.wy);
  fx->reencoded.resize(rans_max_stream_bytes(values));
  const size_t samples = size_t(kMaxTile) * kMaxTile * 3;
  fx->nl_samples.resize(samples);
  fx->nl_recon.resize(samples);
  fx->nl_again.resize(samples);
  fx->nl_stream.resize(nl_max_bytes(kMaxTile, kMaxTile, 3) + wv_max_bytes(kMaxTile, kMaxTile, 3));
  fx->wv_work.resize(wv_work_ints(kMaxTile, kMaxTile, 3));
  return fx;
}

Fixture& fixture() {
  static Fixture* fx = load_fixture();  // harness state, loaded once per process
  return *fx;
}

void check_latents(const Model& m, const TileDims& d, const std::vector<float>& y_hat) {
  const size_t ny = size_t(m.latent) * d.hy * d.wy;
  for (size_t i = 0; i < ny; ++i) FUZZ_CHECK(std::isfinite(y_hat[i]));
}

// A payload that decoded is the encoder's output for the decoded values.
void check_canonical(Fixture& fx, const TileDims& d, const uint8_t* payload, size_t len) {
  const Model& m = fx.model;
  RansEncoder enc(fx.reencoded.data(), fx.reencoded.data() + fx.reencoded.size());
  const size_t ny = size_t(m.latent) * d.hy * d.wy;
  for (size_t i = ny; i-- > 0;) enc.put_value(m.y_tables[fx.ws.index[i]], fx.ws.symbols[i]);
  const size_t zplane = size_t(d.hz) * d.wz;
  for (size_t i = size_t(m.hyper) * zplane; i-- > 0;) enc.put_value(m.z_tables[i / zplane], fx.ws.z_hat[i]);
  const uint8_t* out;
  size_t out_len;
  FUZZ_CHECK(enc.finish(&out, &out_len));
  FUZZ_CHECK(out_len == len && std::memcmp(out, payload, len) == 0);
}

// A near-lossless payload that decoded holds samples that the coder codes
// again, and whose second decoding stays within the quality's error bound k
// (§4.7, §4.8). Not byte-identical re-encoding: §4.8 also has a stored form.
void check_near_lossless(Fixture& fx, const TileDims& d, uint32_t quality) {
  const Model& m = fx.model;
  const uint32_t k = m.nl_k[quality - 1], c = m.in_channels;
  const size_t n = size_t(d.h) * d.w * c;
  std::memcpy(fx.nl_samples.data(), fx.ws.samples, n);
  const size_t len = nl_encode(fx.nl_samples.data(), size_t(d.w) * c, d.h, d.w, c, k, m.nl_coder, &fx.nl_state,
                               fx.nl_stream.data(), fx.nl_stream.size(), fx.nl_recon.data(), m.nl_priors);
  FUZZ_CHECK(len != 0);
  FUZZ_CHECK(nl_decode(fx.nl_stream.data(), len, d.h, d.w, c, k, m.nl_coder, &fx.nl_state, fx.nl_again.data(),
                       m.nl_priors));
  for (size_t i = 0; i < n; ++i) {
    FUZZ_CHECK(fx.nl_again[i] == fx.nl_recon[i]);
    const int diff = int(fx.nl_again[i]) - int(fx.nl_samples[i]);
    FUZZ_CHECK(diff <= int(k) && -diff <= int(k));
  }
}

// A wavelet payload that decoded holds samples that the coder codes again and
// decodes again (§4.9; lossy, so no bound on the second decoding's samples).
void check_wavelet(Fixture& fx, const TileDims& d, uint32_t quality) {
  const Model& m = fx.model;
  const uint32_t c = m.in_channels;
  const size_t n = size_t(d.h) * d.w * c;
  std::memcpy(fx.nl_samples.data(), fx.ws.samples, n);
  const size_t len = wv_encode(fx.nl_samples.data(), size_t(d.w) * c, d.h, d.w, c, m.wv_step[quality - 1],
                               m.wv_priors, &fx.wv_state, fx.wv_work.data(), fx.nl_stream.data(), fx.nl_stream.size(),
                               nullptr, d.seams);
  FUZZ_CHECK(len != 0 && len <= wv_max_bytes(d.h, d.w, c));
  FUZZ_CHECK(wv_decode(fx.nl_stream.data(), len, d.h, d.w, c, m.wv_step[quality - 1], m.wv_priors, &fx.wv_state,
                       fx.wv_work.data(), fx.nl_again.data(), d.seams));
}

// What a successfully decoded tile must satisfy, by its kind.
void check_decoded(Fixture& fx, const TileDims& d, uint32_t quality, const uint8_t* payload, size_t len) {
  if (fx.model.near_lossless(quality)) {
    check_near_lossless(fx, d, quality);
    return;
  }
  if (fx.model.wavelet(quality)) {
    check_wavelet(fx, d, quality);
    return;
  }
  check_latents(fx.model, d, fx.y_hat);
  check_canonical(fx, d, payload, len);
}

void fuzz_payload(Fixture& fx, const uint8_t* data, size_t size) {
  if (size < 3) return;
  // Within the workspace (the arena is one block: ASan would not see an overrun inside it).
  const uint32_t h = 1u + data[0] % kMaxTile, w = 1u + data[1] % kMaxTile, quality = 1u + data[2] % 100u;
  TileDims d = tile_dims(h, w);
  d.seams = (data[0] ^ data[1]) & 15u;  // which sides meet another tile (wavelet steps, §4.9)
  static const uint8_t kId[8] = {};
  const SequenceRef ref = synthetic_reference(fx.model, kId);
  TileReference link;  // bit 4 of byte 1: the tile has an earlier frame (predicted payloads decode)
  if (data[1] & 16u) link = TileReference{&ref, uint32_t(data[0]) % 64u, uint32_t(data[2]) % 64u, TileSequence{}};
  if (decode_tile(fx.model, fx.ws, d, quality, data + 3, size - 3, fx.y_hat.data(), nullptr, 8, link))
    check_decoded(fx, d, quality, data + 3, size - 3);
}

void fuzz_file(Fixture& fx, const uint8_t* data, size_t size) {
  std::vector<uint8_t> file(data, data + size);
  // Make mutated headers acceptable to this model, so decoding is reached.
  if (size >= kFileHeaderBytes && std::memcmp(file.data(), "PMRS", 4) == 0) {
    std::memcpy(file.data() + 8, fx.model.sha256, 8);
    const size_t hl = file[5];
    if ((hl == kFileHeaderBytes || hl == kFileHeaderBytesWithLibrary || hl == kFileHeaderMaxBytes) && size >= hl) {
      const uint32_t c = crc32(file.data(), hl - 4);
      for (int i = 0; i < 4; ++i) file[hl - 4 + size_t(i)] = uint8_t(c >> (8 * i));
    }
  }
  static const uint8_t kLibrary[8] = {'L', 'I', 'B', 'H', 'A', 'S', 'H', '!'};  // the corpus' library hash
  const bool with_library = size > 7 && (file[6] & 1) != 0;
  FileHeader h;
  ParseStatus ps;
  const OpenStatus os =
      open_stream(fx.model, file.data(), file.size(), with_library ? kLibrary : nullptr, kMaxTile, &h, &ps);
  FUZZ_CHECK(open_status_message(os) != nullptr);
  if (os != OpenStatus::Ok || h.tile_count > kMaxFuzzTiles) return;
  // A sequence-coded file gets the synthetic earlier frame, under the id it names.
  const SequenceRef seq = synthetic_reference(fx.model, h.sequence_id);
  const SequenceRef* ref = (h.flags & kFlagSequenceRef) ? &seq : nullptr;
  FUZZ_CHECK(check_sequence_reference(fx.model, h, ref) == OpenStatus::Ok);
  // As the ground decoder (DecodeStream): CRC checkpoints, then nothing sized
  // by the header until a valid record is seen.
  const uint8_t* records = file.data() + h.header_length;
  const size_t len = file.size() - h.header_length;
  std::vector<uint32_t> checkpoints(crc_checkpoint_count(len));
  make_crc_checkpoints(records, len, checkpoints.data());
  const bool any = has_valid_tile_record(records, len, h.tile_count, checkpoints.data());
  std::vector<TileSpan> spans(h.tile_count);
  const ScanSummary sum = scan_tile_records(records, len, h.tile_count, spans.data(), checkpoints.data());
  FUZZ_CHECK(any == (sum.tiles_present > 0));
  for (uint32_t i = 0; i < h.tile_count; ++i) {
    TileDims d;
    if (spans[i].state != TileState::kPresent) {
      FUZZ_CHECK(!decode_tile_span(fx.model, fx.ws, h, records, spans[i], i, fx.y_hat.data(), &d, nullptr, ref));
      continue;
    }
    if (decode_tile_span(fx.model, fx.ws, h, records, spans[i], i, fx.y_hat.data(), &d, nullptr, ref))
      check_decoded(fx, d, h.quality, records + spans[i].payload_offset, spans[i].payload_length);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Fixture& fx = fixture();
  if (data[0] & 1)
    fuzz_payload(fx, data + 1, size - 1);
  else
    fuzz_file(fx, data + 1, size - 1);
  return 0;
}
