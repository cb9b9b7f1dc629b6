// tile_codec.h - one tile through the codec: analysis, entropy parameters, rANS.
//
// The rover side runs analyse_tile() (g_a, h_a, rounding, integer h_s) and then
// code_tile() for a quality; the two are split so that rate control can try
// several qualities on one analysis. The ground side runs decode_tile(), which
// re-derives the entropy parameters with the very same integer code from the
// decoded z_hat. Symbol order and reconstruction follow docs/bitstream.md §4.
// Workspaces come from an Arena: nothing here touches the heap.
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena.h"
#include "model.h"
#include "nearlossless.h"
#include "tile.h"
#include "sequence.h"
#include "transforms.h"
#include "wavelet.h"

namespace pymars {

struct RefLibrary;  // reference.h

struct EncoderWorkspace {
  uint32_t tile_size = 0;
  float *fa = nullptr, *fb = nullptr, *row_scratch = nullptr, *y = nullptr;
  int32_t *z_hat = nullptr, *ia = nullptr, *ib = nullptr, *d2s = nullptr;
  int32_t *mean_q4 = nullptr, *raw_index = nullptr, *symbols = nullptr, *index = nullptr;
  uint8_t* stream = nullptr;
  size_t stream_capacity = 0;
  // REMAC (models with a reference branch): the branch input, and the
  // selection's scratch (gray tile, LBP histogram, latent descriptor).
  int32_t* ref_in = nullptr;
  uint8_t* gray = nullptr;
  uint32_t* histogram = nullptr;
  uint16_t* descriptor = nullptr;
  // The references analyse_tile() used for the last tile (0xFFFF: none).
  uint16_t entropy_ref = 0xFFFF, decoder_ref = 0xFFFF;
  // The last tile's mean per model input channel, in 1/16 of an 8-bit level
  // (written at the head of the payload when the model has tile_means).
  uint16_t tile_mean[3] = {0, 0, 0};
  // Near-lossless and wavelet qualities: the tile's 8-bit samples (H x W x
  // in_channels, padded) and the payload; near-lossless: the coder's state and its
  // reconstruction.
  uint8_t* samples = nullptr;
  NlState* nl_state = nullptr;
  uint8_t* nl_recon = nullptr;
  uint8_t* sample_stream = nullptr;  // the payload of a near-lossless or wavelet tile
  // Models with range-coded near-lossless qualities: the tile's samples at the
  // image's 12/16-bit depth (same layout as `samples`; clamped to the depth's
  // range) and their reconstruction, for source-depth tiles (§4.8).
  uint16_t* samples16 = nullptr;
  uint16_t* nl_recon16 = nullptr;
  size_t sample_capacity = 0;
  // Wavelet qualities (models with WVQT): the transform's planes and the coder's state
  // (the stream goes to sample_stream, sized for both).
  int32_t* wv_work = nullptr;
  WvState* wv_state = nullptr;
  // Sequence coding (§4.10, wavelet models): the prediction tile, its transform,
  // the predicted payload (kept when shorter than the intra one) and the scratch
  // of the frame registration.
  uint8_t* seq_pred = nullptr;
  int32_t* seq_work = nullptr;
  uint8_t* seq_stream = nullptr;
  int32_t* reg_scratch = nullptr;
};

struct DecoderWorkspace {
  uint32_t tile_size = 0;
  int32_t *z_hat = nullptr, *ia = nullptr, *ib = nullptr, *d2s = nullptr;
  int32_t *mean_q4 = nullptr, *raw_index = nullptr, *symbols = nullptr, *index = nullptr;
  int32_t* ref_in = nullptr;
  // The last decoded tile's mean per channel (1/16 level), when the model has tile_means.
  uint16_t tile_mean[3] = {0, 0, 0};
  // Near-lossless qualities: the decoded samples (h x w x in_channels) and the coder state.
  uint8_t* samples = nullptr;
  NlState* nl_state = nullptr;
  // Source-depth tiles (header flag bit 1): the decoded 12/16-bit samples
  // (models with range-coded near-lossless qualities only).
  uint16_t* samples16 = nullptr;
  int32_t* wv_work = nullptr;
  WvState* wv_state = nullptr;
  uint8_t* seq_pred = nullptr;  // sequence coding: the prediction tile and its transform
  int32_t* seq_work = nullptr;
};

// A tile's link to a frame already sent (sequence coding, §4.10): the
// reference, the tile's origin in the image, and (encoder) the displacement
// and offsets refine_tile() chose. ref null: the tile is coded on its own.
struct TileReference {
  const SequenceRef* ref = nullptr;
  uint32_t y0 = 0, x0 = 0;
  TileSequence seq;
};

// How analyse_tile() picks a tile's references: none (base models, or no
// library), by the rover's selection rules (reference.h), or given ids (tests
// and the mismatch experiments).
struct ReferenceChoice {
  const RefLibrary* library = nullptr;  // null: no references
  bool forced = false;                  // true: use the ids below instead of selecting
  uint16_t entropy_ref = 0xFFFF, decoder_ref = 0xFFFF;
};

// Carve workspaces for tiles up to tile_size x tile_size (counting Arena: size query).
bool make_encoder_workspace(const Model& m, uint32_t tile_size, Arena& arena, EncoderWorkspace* ws);
bool make_decoder_workspace(const Model& m, uint32_t tile_size, Arena& arena, DecoderWorkspace* ws);

// g_a, h_a, z rounding, reference selection and the integer h_s: fills ws.y,
// ws.z_hat, ws.mean_q4, ws.raw_index and ws.entropy_ref / ws.decoder_ref.
// A forced entropy id outside the library counts as none.
void analyse_tile(const Model& m, const TileInput& in, EncoderWorkspace& ws, TileDims* dims,
                  const ReferenceChoice& refs = ReferenceChoice{});

// Symbols and table indices for `quality` (1..100) into ws.symbols / ws.index.
void quantise_tile(const Model& m, EncoderWorkspace& ws, const TileDims& d, uint32_t quality);

// Only the tile's samples into ws.samples (near-lossless qualities need no transform).
void load_tile_samples(const Model& m, const TileInput& in, EncoderWorkspace& ws, TileDims* dims);

// Quantise and entropy-code (or, at a near-lossless or wavelet quality, code
// ws.samples with that coder); the payload lies inside ws.stream / ws.sample_stream. False if it does not fit.
// `sample_depth` 12/16 (ws.samples16 loaded): a source-depth-capable quality
// codes ws.samples16 at that depth (§4.8); 8: today's 8-bit samples.
// `link`: at a wavelet quality, a tile whose link.seq.predict is set is also
// coded in the predicted mode, and the shorter payload is kept.
bool code_tile(const Model& m, EncoderWorkspace& ws, const TileDims& d, uint32_t quality, const uint8_t** payload,
               size_t* payload_size, uint32_t sample_depth = 8, const TileReference& link = TileReference{});

// Integer entropy parameters from z_hat (shared by encoder and decoder): crops
// the h_s output to hy x wy into mean_q4 / raw_index. For a model with a
// reference branch, `ref_latent` is the entropy reference's int8 latent
// (latent x 16 x 16; null: none, all zeros) and `ref_in` its scratch
// (hs_scratch_sizes); both are ignored for base models.
void entropy_parameters(const Model& m, const int32_t* z_hat, const TileDims& d, int32_t* ia, int32_t* ib,
                        int32_t* d2s, int32_t* mean_q4, int32_t* raw_index, const int8_t* ref_latent = nullptr,
                        int32_t* ref_in = nullptr);

// Sizes (in int32) of the h_s ping-pong buffers, the depth-to-space scratch
// and the reference-branch input for a tile whose hyper-latent is hz x wz.
void hs_scratch_sizes(const Model& m, uint32_t hz, uint32_t wz, size_t* ping_pong, size_t* d2s, size_t* ref_in);

// Decode one payload; writes y_hat (latent x hy x wy floats) when y_hat != null,
// or, at a near-lossless or wavelet quality, the samples into ws.samples (h x w x in_channels).
// ws.symbols / ws.index / ws.mean_q4 / ws.z_hat hold the decoded values after a
// success (tests compare them with the encoder's). False: the tile is damaged.
// `ref_latent`: the entropy reference's latent named by the tile record (null: none).
// `sample_depth` 12/16 (a file with header flag bit 1): a near-lossless tile's
// samples go to ws.samples16 at that depth; false when the quality is not
// source-depth capable.
// A wavelet payload (§4.9, or §4.10 with form byte 2 against link's reference)
// into `out` (h x w x in_channels): decode_tile()'s wavelet case, also run by the
// rover to keep what it sent (encoder.cpp), so both sides decode with one code.
bool decode_wavelet_tile(const Model& m, uint32_t quality, const TileDims& d, const uint8_t* payload,
                         size_t payload_size, const TileReference& link, WvState* state, int32_t* work,
                         uint8_t* seq_pred, int32_t* seq_work, uint8_t* out);

// `link`: the reference and the tile's origin for predicted wavelet payloads
// (form byte 2); without a reference such a payload is damaged.
bool decode_tile(const Model& m, DecoderWorkspace& ws, const TileDims& d, uint32_t quality, const uint8_t* payload,
                 size_t payload_size, float* y_hat, const int8_t* ref_latent = nullptr, uint32_t sample_depth = 8,
                 const TileReference& link = TileReference{});

}  // namespace pymars
