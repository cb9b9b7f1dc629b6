// model.cpp - parsing and validation of the encoder weight blob (docs/model-blob.md).
#include "model.h"

#include <cstring>

#include "bytes.h"
#include "nearlossless.h"
#include "sha256.h"

namespace pymars {
namespace {

constexpr uint32_t tag(char a, char b, char c, char d) {
  return uint32_t(uint8_t(a)) | (uint32_t(uint8_t(b)) << 8) | (uint32_t(uint8_t(c)) << 16) |
         (uint32_t(uint8_t(d)) << 24);
}
constexpr uint32_t kTagMeta = tag('M', 'E', 'T', 'A');
constexpr uint32_t kTagDims = tag('D', 'I', 'M', 'S');
constexpr uint32_t kTagGa = tag('G', 'A', ' ', ' ');
constexpr uint32_t kTagHa = tag('H', 'A', ' ', ' ');
constexpr uint32_t kTagHs = tag('H', 'S', ' ', ' ');
constexpr uint32_t kTagGain = tag('G', 'A', 'I', 'N');
constexpr uint32_t kTagHsRef = tag('H', 'S', 'R', 'F');
constexpr uint32_t kTagYTab = tag('Y', 'T', 'A', 'B');
constexpr uint32_t kTagZTab = tag('Z', 'T', 'A', 'B');
constexpr uint32_t kTagNlqt = tag('N', 'L', 'Q', 'T');
constexpr uint32_t kTagWvqt = tag('W', 'V', 'Q', 'T');
constexpr uint32_t kTagWvpr = tag('W', 'V', 'P', 'R');
constexpr uint32_t kTagNlpr = tag('N', 'L', 'P', 'R');

// Limits that keep every later size computation far from overflow.
constexpr uint32_t kMaxChannels = 1024;
constexpr uint32_t kMaxScaleLevels = 256;
constexpr uint32_t kMaxKernel = 7;
constexpr uint32_t kMaxHalfWidth = 4095;

// Copies n little-endian floats into arena storage (host order).
const float* take_f32(ByteReader& r, size_t n, Arena& arena) {
  if (n > (r.size - r.pos) / 4) {
    r.failed = true;
    return nullptr;
  }
  const uint8_t* p = r.take(4 * n);
  float* out = arena.alloc<float>(n);
  if (p && out)
    for (size_t i = 0; i < n; ++i) out[i] = load_f32(p + 4 * i);
  return out;
}

const int32_t* take_i32(ByteReader& r, size_t n, Arena& arena, const uint8_t** raw) {
  if (n > (r.size - r.pos) / 4) {
    r.failed = true;
    return nullptr;
  }
  const uint8_t* p = r.take(4 * n);
  *raw = p;
  int32_t* out = arena.alloc<int32_t>(n);
  if (p && out)
    for (size_t i = 0; i < n; ++i) out[i] = load_i32(p + 4 * i);
  return out;
}

bool finite_positive(float v) { return v > 0.0f && v < 3.0e38f; }
bool finite(float v) { return v == v && v > -3.0e38f && v < 3.0e38f; }

BlobStatus parse_float_ops(ByteReader& r, Arena& arena, FloatOp* ops, uint32_t* n_ops) {
  uint32_t n = r.u32();
  if (r.failed) return BlobStatus::Truncated;
  if (n == 0 || n > kMaxOps) return BlobStatus::BadOp;
  for (uint32_t i = 0; i < n; ++i) {
    FloatOp& op = ops[i];
    op = FloatOp{};
    op.type = OpType(r.u32());
    if (op.type == OpType::Conv) {
      op.cin = r.u32();
      op.cout = r.u32();
      op.k = r.u32();
      op.stride = r.u32();
      if (r.failed) return BlobStatus::Truncated;
      if (op.cin == 0 || op.cin > kMaxChannels || op.cout == 0 || op.cout > kMaxChannels || op.k == 0 ||
          op.k > kMaxKernel || (op.k % 2) == 0 || (op.stride != 1 && op.stride != 2))
        return BlobStatus::BadOp;
      size_t nw = size_t(op.cout) * op.cin * op.k * op.k;
      size_t wpos = r.pos;
      const uint8_t* raw = r.take(4 * nw);
      op.bias = take_f32(r, op.cout, arena);
      if (r.failed || !raw) return BlobStatus::Truncated;
      for (size_t j = 0; j < nw + op.cout; ++j)
        if (!finite(load_f32(r.data + wpos + 4 * j))) return BlobStatus::BadOp;
      // Blob order [oc][ic][ky][kx] -> run order [ky][kx][ic][oc]: the conv's
      // inner loop then runs over contiguous output channels.
      float* w = arena.alloc<float>(nw);
      if (w) {
        const uint32_t k = op.k;
        for (uint32_t oc = 0; oc < op.cout; ++oc)
          for (uint32_t ic = 0; ic < op.cin; ++ic)
            for (uint32_t t = 0; t < k * k; ++t)
              w[(size_t(t) * op.cin + ic) * op.cout + oc] = load_f32(raw + 4 * ((size_t(oc) * op.cin + ic) * k * k + t));
      }
      op.weight = w;
    } else if (op.type == OpType::SGDN) {
      op.cin = op.cout = r.u32();
      if (r.failed) return BlobStatus::Truncated;
      if (op.cin == 0 || op.cin > kMaxChannels) return BlobStatus::BadOp;
      size_t bpos = r.pos;
      op.beta = take_f32(r, op.cin, arena);
      const uint8_t* raw = r.take(4 * size_t(op.cin) * op.cin);
      if (r.failed || !raw) return BlobStatus::Truncated;
      // Blob order gamma[i][j] -> run order [j][i] (contiguous over outputs i).
      float* g = arena.alloc<float>(size_t(op.cin) * op.cin);
      if (g)
        for (uint32_t i = 0; i < op.cin; ++i)
          for (uint32_t j = 0; j < op.cin; ++j) g[size_t(j) * op.cin + i] = load_f32(raw + 4 * (size_t(i) * op.cin + j));
      op.gamma = g;
      // beta > 0 and gamma >= 0 keep the denominator positive: no division by zero.
      for (size_t j = 0; j < op.cin; ++j)
        if (!finite_positive(load_f32(r.data + bpos + 4 * j))) return BlobStatus::BadOp;
      for (size_t j = 0; j < size_t(op.cin) * op.cin; ++j) {
        float g = load_f32(r.data + bpos + 4 * (op.cin + j));
        if (!(g >= 0.0f && g < 3.0e38f)) return BlobStatus::BadOp;
      }
    } else if (op.type == OpType::Relu) {
      // no fields
    } else {
      return BlobStatus::BadOp;
    }
  }
  *n_ops = n;
  return BlobStatus::Ok;
}

// Chains channel counts through an op list; returns the output channel count or 0.
uint32_t chain_channels(const FloatOp* ops, uint32_t n, uint32_t cin) {
  uint32_t c = cin;
  for (uint32_t i = 0; i < n; ++i) {
    if (ops[i].type == OpType::Conv || ops[i].type == OpType::SGDN) {
      if (ops[i].cin != c) return 0;
      c = ops[i].cout;
    }
  }
  return c;
}

// `extra_at` / `extra_channels` / `extra_limit`: op extra_at reads
// extra_channels more input channels (the REMAC reference branch), whose
// magnitudes are at most extra_limit (extra_channels 0: a plain chain).
BlobStatus parse_int_ops(ByteReader& r, Arena& arena, IntOp* ops, uint32_t* n_ops, uint32_t cin_first,
                         uint32_t input_limit, uint32_t extra_at = 0, uint32_t extra_channels = 0,
                         int64_t extra_limit = 0) {
  uint32_t n = r.u32();
  if (r.failed) return BlobStatus::Truncated;
  if (n == 0 || n > kMaxOps) return BlobStatus::BadOp;
  uint32_t channels = cin_first;
  int64_t in_abs_max = input_limit;  // largest |input| of the current op
  for (uint32_t i = 0; i < n; ++i) {
    IntOp& op = ops[i];
    op = IntOp{};
    if (extra_channels && i == extra_at) {
      channels += extra_channels;
      if (extra_limit > in_abs_max) in_abs_max = extra_limit;
    }
    if (OpType(r.u32()) != OpType::IConv) return r.failed ? BlobStatus::Truncated : BlobStatus::BadOp;
    op.cin = r.u32();
    op.cout = r.u32();
    op.k = r.u32();
    uint32_t flags = r.u32();
    if (r.failed) return BlobStatus::Truncated;
    op.depth_to_space = (flags & 1u) != 0;
    if ((flags & ~1u) != 0 || op.cin == 0 || op.cin > kMaxChannels || op.cout == 0 || op.cout > 4 * kMaxChannels ||
        op.k == 0 || op.k > kMaxKernel || (op.k % 2) == 0 || (op.depth_to_space && op.cout % 4 != 0))
      return BlobStatus::BadOp;
    if (op.cin != channels) return BlobStatus::ShapeMismatch;
    size_t taps = size_t(op.cin) * op.k * op.k;
    size_t nw = size_t(op.cout) * taps;
    const uint8_t* w = r.take(nw);
    r.align4();
    if (r.failed) return BlobStatus::Truncated;
    int8_t* wcopy = arena.alloc<int8_t>(nw);
    if (wcopy) std::memcpy(wcopy, w, nw);
    op.weight = wcopy;
    const uint8_t *braw, *minraw, *maxraw;
    op.bias = take_i32(r, op.cout, arena, &braw);
    const uint8_t* sh = r.take(op.cout);
    r.align4();
    uint8_t* shcopy = arena.alloc<uint8_t>(op.cout);
    op.out_min = take_i32(r, op.cout, arena, &minraw);
    op.out_max = take_i32(r, op.cout, arena, &maxraw);
    if (r.failed) return BlobStatus::Truncated;
    if (shcopy) std::memcpy(shcopy, sh, op.cout);
    op.shift = shcopy;
    int64_t out_abs_max = 0;
    for (uint32_t o = 0; o < op.cout; ++o) {
      // Worst-case accumulator: every product at its largest magnitude.
      int64_t sum_abs = 0;
      for (size_t t = 0; t < taps; ++t) {
        int64_t v = int8_t(w[o * taps + t]);
        sum_abs += v < 0 ? -v : v;
      }
      int64_t b = load_i32(braw + 4 * o);
      int64_t bound = sum_abs * in_abs_max + (b < 0 ? -b : b);
      if (bound >= (int64_t(1) << 31)) return BlobStatus::AccumulatorOverflow;
      if (sh[o] > 30) return BlobStatus::BadOp;
      int64_t lo = load_i32(minraw + 4 * o), hi = load_i32(maxraw + 4 * o);
      if (lo > hi) return BlobStatus::BadOp;
      int64_t m = (lo < 0 ? -lo : lo) > (hi < 0 ? -hi : hi) ? (lo < 0 ? -lo : lo) : (hi < 0 ? -hi : hi);
      if (m > out_abs_max) out_abs_max = m;
    }
    for (size_t t = 0; t < nw; ++t)
      if (int8_t(w[t]) == -128) return BlobStatus::AccumulatorOverflow;  // keep weights symmetric
    channels = op.depth_to_space ? op.cout / 4 : op.cout;
    in_abs_max = out_abs_max;
  }
  *n_ops = n;
  return BlobStatus::Ok;
}

BlobStatus parse_tables(ByteReader& r, Arena& arena, uint32_t expected, const CdfTable** out) {
  uint32_t n = r.u32();
  uint32_t precision = r.u32();
  if (r.failed) return BlobStatus::Truncated;
  if (n != expected || precision != 16) return BlobStatus::BadTable;
  CdfTable* tables = arena.alloc<CdfTable>(n);
  for (uint32_t t = 0; t < n; ++t) {
    uint32_t half = r.u32();
    if (r.failed) return BlobStatus::Truncated;
    if (half < 1 || half > kMaxHalfWidth) return BlobStatus::BadTable;
    size_t count = 2 * size_t(half) + 3;
    const uint8_t* raw;
    const int32_t* cdf = take_i32(r, count, arena, &raw);
    if (r.failed) return BlobStatus::Truncated;
    if (load_u32(raw) != 0 || load_u32(raw + 4 * (count - 1)) != 65536) return BlobStatus::BadTable;
    for (size_t j = 1; j < count; ++j)
      if (load_u32(raw + 4 * j) <= load_u32(raw + 4 * (j - 1))) return BlobStatus::BadTable;
    if (tables) tables[t] = CdfTable{half, reinterpret_cast<const uint32_t*>(cdf)};
  }
  *out = tables;
  return BlobStatus::Ok;
}

// A section's table of n u16 probabilities of a 0 (WVPR, NLPR), each in 1..32767, into
// the arena (null in a counting arena: a size query). False when a value is out of range.
bool read_priors(ByteReader& sec, Arena& arena, size_t n, const uint16_t** out) {
  uint16_t* table = arena.alloc<uint16_t>(n);
  for (size_t i = 0; i < n; ++i) {
    const uint16_t v = sec.u16();
    if (v == 0 || v >= kAdaptiveOne) return false;
    if (table) table[i] = v;
  }
  *out = table;
  return true;
}

}  // namespace

const char* blob_status_message(BlobStatus s) {
  switch (s) {
    case BlobStatus::Ok: return "ok";
    case BlobStatus::Truncated: return "weight blob is truncated";
    case BlobStatus::BadMagic: return "not a pymars weight blob (bad magic)";
    case BlobStatus::UnknownVersion: return "unknown weight blob version";
    case BlobStatus::UnknownSection: return "unknown or misplaced section in weight blob";
    case BlobStatus::MissingSection: return "weight blob lacks a required section";
    case BlobStatus::BadDims: return "weight blob dimensions out of range";
    case BlobStatus::BadOp: return "malformed op in weight blob";
    case BlobStatus::ShapeMismatch: return "op channel counts do not chain in weight blob";
    case BlobStatus::AccumulatorOverflow: return "integer op could overflow its int32 accumulator";
    case BlobStatus::BadGain: return "malformed gain table in weight blob";
    case BlobStatus::BadTable: return "malformed CDF table in weight blob";
    case BlobStatus::OutOfMemory: return "arena too small for the model";
  }
  return "unknown blob status";
}

BlobStatus load_model(const uint8_t* blob, size_t size, Arena& arena, Model* model) {
  *model = Model{};
  if (!blob || size < 12) return BlobStatus::Truncated;
  if (std::memcmp(blob, "PMWB", 4) != 0) return BlobStatus::BadMagic;
  if (load_u16(blob + 4) != 1 || load_u16(blob + 6) != 0) return BlobStatus::UnknownVersion;
  sha256(blob, size, model->sha256);
  uint32_t n_sections = load_u32(blob + 8);
  ByteReader r(blob, size);
  r.pos = 12;
  // Sections must come in this order; X... sections may appear anywhere and are skipped.
  const uint32_t order[] = {kTagMeta, kTagDims, kTagGa, kTagHa, kTagHs, kTagGain, kTagYTab, kTagZTab};
  uint32_t next = 0;
  for (uint32_t s = 0; s < n_sections; ++s) {
    uint32_t t = r.u32();
    uint32_t len = r.u32();
    if (r.failed || !r.has(len)) return BlobStatus::Truncated;
    ByteReader sec(blob + r.pos, len);
    r.take(len);
    r.align4();
    if ((t & 0xFF) == 'X') continue;
    if (t == kTagNlqt && next >= 2 && !model->has_nl) {
      // Optional, anywhere after DIMS: the near-lossless qualities.
      if (len != kQualityLevels || model->qualities != kQualityLevels) return BlobStatus::BadDims;
      for (uint32_t q = 0; q < kQualityLevels; ++q) {
        const uint8_t k = sec.data[q];
        if (k != 0xFF && k > kNlMaxError) return BlobStatus::BadDims;
        model->nl_k[q] = k;
      }
      model->has_nl = true;
      continue;
    }
    if (t == kTagWvqt && next >= 2 && !model->has_wv) {
      // Optional, anywhere after DIMS: the wavelet qualities (u16 step per quality,
      // 1/16 level; 0 = not a wavelet quality).
      if (len != 2 * kQualityLevels || model->qualities != kQualityLevels) return BlobStatus::BadDims;
      for (uint32_t q = 0; q < kQualityLevels; ++q) model->wv_step[q] = sec.u16();
      if (sec.failed) return BlobStatus::Truncated;
      model->has_wv = true;
      continue;
    }
    if (t == kTagWvpr && next >= 2 && model->wv_priors.kinds == 0) {
      // Optional, after DIMS: u32 kinds, u32 step classes, u32 contexts, then u16
      // P(0) [kinds][classes][contexts], each in 1..32767.
      const uint32_t kinds = sec.u32(), classes = sec.u32(), contexts = sec.u32();
      if (sec.failed) return BlobStatus::Truncated;
      const uint32_t want = model->in_channels == 3 ? 2u : 1u;
      if (kinds != want || classes != kWvStepClasses || contexts != kWvStateBits ||
          len != 12 + 2 * size_t(kinds) * classes * contexts)
        return BlobStatus::BadDims;
      if (!read_priors(sec, arena, size_t(kinds) * classes * contexts, &model->wv_priors.table))
        return BlobStatus::BadDims;
      model->wv_priors.kinds = kinds;
      continue;
    }
    if (t == kTagNlpr && next >= 2 && model->nl_priors.kinds == 0) {
      // Optional, after DIMS, Arith2 models only: u32 kinds (the input channels),
      // u32 k classes, u32 contexts, u32 bins, then u16 P(0) [kinds][classes][contexts][bins],
      // each in 1..32767.
      const uint32_t kinds = sec.u32(), classes = sec.u32(), contexts = sec.u32(), bins = sec.u32();
      if (sec.failed) return BlobStatus::Truncated;
      if (model->nl_coder != NlCoder::Arith2 || kinds != model->in_channels || classes != kNlKClasses ||
          contexts != kNlQContexts || bins != kNlQBins || len != 16 + 2 * size_t(kinds) * classes * contexts * bins)
        return BlobStatus::BadDims;
      if (!read_priors(sec, arena, size_t(kinds) * classes * contexts * bins, &model->nl_priors.table))
        return BlobStatus::BadDims;
      model->nl_priors.kinds = kinds;
      continue;
    }
    if (t == kTagHsRef && next == 4 && !model->has_ref) {
      // Optional, just before HS: the reference branch (REMAC models).
      const uint32_t at = sec.u32(), frac = sec.u32(), side = sec.u32();
      if (sec.failed) return BlobStatus::Truncated;
      if (at == 0 || at >= kMaxOps || frac != kRefFracBits || side != kRefLatentSide) return BlobStatus::BadOp;
      uint32_t n = 0;
      IntOp ops[kMaxOps];  // parse_int_ops may fill up to kMaxOps before we can reject n != 1
      BlobStatus st = parse_int_ops(sec, arena, ops, &n, model->latent, kRefLatentLimit);
      if (st != BlobStatus::Ok) return st;
      if (n != 1 || ops[0].depth_to_space) return BlobStatus::BadOp;
      model->hr = ops[0];
      for (uint32_t o = 0; o < model->hr.cout; ++o)  // bound of the branch output (checked when HS is parsed)
        if (model->hr.out_min && (model->hr.out_min[o] < -kRefOutLimit || model->hr.out_max[o] > kRefOutLimit))
          return BlobStatus::BadOp;
      model->has_ref = true;
      model->hs_ref_at = at;
      continue;
    }
    if (next >= 8 || t != order[next]) return BlobStatus::UnknownSection;
    ++next;
    BlobStatus st = BlobStatus::Ok;
    if (t == kTagMeta) continue;
    if (t == kTagDims) {
      uint32_t d[8];
      for (auto& v : d) v = sec.u32();
      if (sec.failed) return BlobStatus::Truncated;
      model->in_channels = d[0];
      model->latent = d[1];
      model->hyper = d[2];
      model->scale_levels = d[3];
      model->qualities = d[4];
      model->z_limit = d[5];
      model->symbol_limit = d[6];
      model->tile_means = (d[7] & 1u) != 0;
      // Bit 1: range-coded near-lossless tiles (§4.8); bit 2 with it: Arith2's context model.
      model->nl_coder = (d[7] & 2u) ? ((d[7] & 4u) ? NlCoder::Arith2 : NlCoder::Arith) : NlCoder::Golomb;
      if ((d[0] != 1 && d[0] != 3) || d[1] == 0 || d[1] > kMaxChannels || d[2] == 0 || d[2] > kMaxChannels || d[3] < 2 ||
          d[3] > kMaxScaleLevels || d[4] != kQualityLevels || d[5] == 0 || d[5] > 32767 || d[6] == 0 ||
          d[6] > (1u << 20) || (d[7] & ~7u) != 0 || (d[7] & 6u) == 4u)
        return BlobStatus::BadDims;
    } else if (t == kTagGa) {
      st = parse_float_ops(sec, arena, model->ga, &model->n_ga);
      if (st == BlobStatus::Ok && chain_channels(model->ga, model->n_ga, model->in_channels) != model->latent)
        st = BlobStatus::ShapeMismatch;
    } else if (t == kTagHa) {
      st = parse_float_ops(sec, arena, model->ha, &model->n_ha);
      if (st == BlobStatus::Ok && chain_channels(model->ha, model->n_ha, model->latent) != model->hyper)
        st = BlobStatus::ShapeMismatch;
    } else if (t == kTagHs) {
      // The branch outputs lie in [-kRefOutLimit, kRefOutLimit] (checked when HSRF was parsed).
      const int64_t ref_limit = kRefOutLimit;
      st = parse_int_ops(sec, arena, model->hs, &model->n_hs, model->hyper, model->z_limit, model->hs_ref_at,
                         model->has_ref ? model->hr.cout : 0, ref_limit);
      if (st == BlobStatus::Ok && model->has_ref && model->hs_ref_at >= model->n_hs) st = BlobStatus::ShapeMismatch;
      if (st == BlobStatus::Ok) {
        const IntOp& last = model->hs[model->n_hs - 1];
        uint32_t out = last.depth_to_space ? last.cout / 4 : last.cout;
        if (out != 2 * model->latent) st = BlobStatus::ShapeMismatch;
      }
    } else if (t == kTagGain) {
      size_t n = size_t(model->qualities) * model->latent;
      size_t gpos = sec.pos;
      model->gain = take_f32(sec, n, arena);
      const uint8_t* raw;
      model->offset = take_i32(sec, n, arena, &raw);
      if (sec.failed) return BlobStatus::Truncated;
      for (size_t i = 0; i < n; ++i) {
        int32_t k = load_i32(raw + 4 * i);
        if (!finite_positive(load_f32(sec.data + gpos + 4 * i)) ||
            k < -int32_t(model->scale_levels) || k > int32_t(model->scale_levels))
          return BlobStatus::BadGain;
      }
    } else if (t == kTagYTab) {
      st = parse_tables(sec, arena, model->scale_levels, &model->y_tables);
    } else if (t == kTagZTab) {
      st = parse_tables(sec, arena, model->hyper, &model->z_tables);
      // z values are clamped to z_limit; their tables must cover that range.
      if (st == BlobStatus::Ok && model->z_tables)
        for (uint32_t c = 0; c < model->hyper; ++c)
          if (model->z_tables[c].half_width < 1) st = BlobStatus::BadTable;
    }
    if (st != BlobStatus::Ok) return st;
  }
  if (next != 8) return BlobStatus::MissingSection;
  if (arena.failed()) return BlobStatus::OutOfMemory;
  return BlobStatus::Ok;
}

}  // namespace pymars
