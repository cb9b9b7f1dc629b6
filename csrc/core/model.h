// model.h - the encoder weight blob (docs/model-blob.md), parsed and validated.
//
// A Model is the read-only state shared by the rover encoder and the ground
// entropy decoder: float analysis ops, integer hyper-synthesis ops, per-quality
// gains and index offsets, and the integer CDF tables. load_model() converts
// the little-endian blob into host-order arrays inside a caller's Arena and
// rejects any blob that could make the core misbehave (inconsistent shapes,
// int32 accumulator overflow, malformed tables), so later code can trust it.
// It must not allocate from the heap.
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena.h"
#include "limits.h"
#include "nearlossless.h"
#include "wavelet.h"
#include "rans.h"

namespace pymars {

enum class OpType : uint32_t { Conv = 1, SGDN = 2, Relu = 3, IConv = 4 };

// One float op of g_a or h_a.
struct FloatOp {
  OpType type;
  uint32_t cin = 0, cout = 0, k = 0, stride = 1;
  const float* weight = nullptr;  // Conv: [ky][kx][cin][cout] (transposed from the blob at load)
  const float* bias = nullptr;    // Conv: [cout]
  const float* beta = nullptr;    // SGDN: [C]
  const float* gamma = nullptr;   // SGDN: [j][i] = blob gamma[i][j] (transposed at load)
};

// One integer op of h_s.
struct IntOp {
  uint32_t cin = 0, cout = 0, k = 0;
  bool depth_to_space = false;
  const int8_t* weight = nullptr;  // [cout][cin][k][k]
  const int32_t* bias = nullptr;
  const uint8_t* shift = nullptr;
  const int32_t* out_min = nullptr;
  const int32_t* out_max = nullptr;
};

constexpr uint32_t kMaxOps = 16;
// REMAC reference latents: int8 in [-127, 127], units of 1/8, 16 x 16 per reference.
constexpr uint32_t kRefFracBits = 3;
constexpr uint32_t kRefLatentSide = 16;
constexpr int32_t kRefLatentLimit = 127;
// The reference branch's outputs are QReLU activations (0..255).
constexpr int32_t kRefOutLimit = 255;
// One entry per quality of limits.h in the blob's quality tables.
constexpr uint32_t kQualityLevels = kMaxQuality;
static_assert(kMinQuality == 1, "quality q is table entry q - 1");

struct Model {
  uint32_t in_channels = 0, latent = 0, hyper = 0, scale_levels = 0, qualities = 0;
  // DIMS flag bit 0 (docs/model-blob.md): every tile payload of this model starts
  // with the tile's mean per channel (u16 little-endian, 1/16 of an 8-bit level),
  // which the ground restores after synthesis (docs/bitstream.md §4.6).
  bool tile_means = false;
  // Optional NLQT section: per quality, 0xFF = the learned path, else the maximum
  // error k (0..32) of the near-lossless coder (nearlossless.h, docs/bitstream.md §4.7).
  bool has_nl = false;
  uint8_t nl_k[kQualityLevels] = {};
  // DIMS flag bit 1: near-lossless tiles use the range coder (docs/bitstream.md §4.8),
  // not the Golomb codes of §4.7 (base-v2-gray's files); bit 2 with it: Arith2.
  NlCoder nl_coder = NlCoder::Golomb;
  // Optional NLPR section (Arith2): the trained initial probabilities.
  NlPriors nl_priors;
  bool near_lossless(uint32_t quality) const { return has_nl && valid_quality(quality) && nl_k[quality - 1] != 0xFF; }
  // Qualities whose tiles can carry 12/16-bit samples (file header flag bit 1,
  // docs/bitstream.md §4.8): the range-coded near-lossless ones.
  bool source_depth_capable(uint32_t quality) const { return near_lossless(quality) && nl_coder != NlCoder::Golomb; }
  // The cheapest quality whose every decoded sample is within +-max_error of the
  // original (k = 0: lossless), for samples of `bit_depth` (12/16: coded at that
  // depth, so only range-coded qualities qualify); 0 when the model has none. The
  // one definition of the choice behind pymars.encode(max_error=) and
  // marsenc_encode_max_error.
  uint32_t quality_for_max_error(uint32_t max_error, uint32_t bit_depth) const {
    for (uint32_t q = kMinQuality; q <= kMaxQuality; ++q)
      if (near_lossless(q) && nl_k[q - 1] <= max_error && (bit_depth == 8 || source_depth_capable(q))) return q;
    return 0;
  }
  // Optional WVQT section: per quality, 0 = not a wavelet quality, else the
  // quantiser step of the wavelet coder in 1/16 of an 8-bit level (wavelet.h,
  // docs/bitstream.md §4.9). A near-lossless entry of the same quality wins.
  bool has_wv = false;
  uint16_t wv_step[kQualityLevels] = {};
  // Optional WVPR section: the wavelet coder's trained initial probabilities.
  WvPriors wv_priors;
  bool wavelet(uint32_t quality) const {
    return has_wv && valid_quality(quality) && wv_step[quality - 1] != 0 && !near_lossless(quality);
  }
  // Qualities whose tiles are coded from the samples, with no learned transform.
  bool sample_coded(uint32_t quality) const { return near_lossless(quality) || wavelet(quality); }
  bool has_sample_coders() const { return has_nl || has_wv; }
  bool all_sample_coded() const {
    for (uint32_t q = 1; q <= kQualityLevels; ++q)
      if (!sample_coded(q)) return false;
    return true;
  }
  uint32_t z_limit = 0, symbol_limit = 0;
  FloatOp ga[kMaxOps];
  uint32_t n_ga = 0;
  FloatOp ha[kMaxOps];
  uint32_t n_ha = 0;
  IntOp hs[kMaxOps];
  uint32_t n_hs = 0;
  // REMAC reference branch (optional "HSRF" section, docs/model-blob.md): the
  // entropy reference's int8 latent (units of 1/8, laid over the h_s grid by
  // ref[y % 16][x % 16]) goes through `hr`; its output channels are appended
  // to the input of hs[hs_ref_at]. has_ref false: the base model.
  bool has_ref = false;
  uint32_t hs_ref_at = 0;
  IntOp hr;
  const float* gain = nullptr;      // [qualities][latent]
  const int32_t* offset = nullptr;  // [qualities][latent]
  const CdfTable* y_tables = nullptr;  // [scale_levels]
  const CdfTable* z_tables = nullptr;  // [hyper]
  uint8_t sha256[32] = {};
};

enum class BlobStatus {
  Ok = 0,
  Truncated,
  BadMagic,
  UnknownVersion,
  UnknownSection,
  MissingSection,
  BadDims,
  BadOp,
  ShapeMismatch,
  AccumulatorOverflow,
  BadGain,
  BadTable,
  OutOfMemory,
};

const char* blob_status_message(BlobStatus s);

// Parses `blob` into `model`, taking every array from `arena`. With a counting
// Arena it only validates and measures (model pointers are then null).
BlobStatus load_model(const uint8_t* blob, size_t size, Arena& arena, Model* model);

}  // namespace pymars
