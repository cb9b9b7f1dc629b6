// reference.cpp - see reference.h.
#include "reference.h"

#include <cstring>

#include "bytes.h"
#include "sha256.h"
#include "texture.h"
#include "transforms.h"

namespace pymars {

const char* library_status_message(LibraryStatus s) {
  switch (s) {
    case LibraryStatus::Ok: return "ok";
    case LibraryStatus::Truncated: return "reference library truncated";
    case LibraryStatus::BadMagic: return "not a reference library (magic is not PMRL)";
    case LibraryStatus::UnknownVersion: return "unknown reference library version";
    case LibraryStatus::BadDims: return "reference library has unexpected dimensions";
    case LibraryStatus::ModelMismatch: return "reference library was built for another model";
    case LibraryStatus::OutOfMemory: return "arena too small for the reference library";
  }
  return "unknown library status";
}

LibraryStatus load_library(const uint8_t* data, size_t size, const Model& m, Arena& arena, RefLibrary* lib) {
  *lib = RefLibrary{};
  if (!data || size < kLibraryHeaderBytes) return LibraryStatus::Truncated;
  if (std::memcmp(data, "PMRL", 4) != 0) return LibraryStatus::BadMagic;
  if (load_u16(data + 4) != 1) return LibraryStatus::UnknownVersion;
  const uint32_t count = load_u16(data + 6);
  const uint32_t latent = load_u16(data + 16), lh = load_u16(data + 18), lw = load_u16(data + 20);
  const uint32_t bins = load_u16(data + 22), tile = load_u16(data + 24);
  if (count > kLibraryMaxReferences || latent != m.latent || lh != kRefLatentSide || lw != kRefLatentSide ||
      bins != kLibraryLbpBins || tile != 16 * kRefLatentSide)
    return LibraryStatus::BadDims;
  if (std::memcmp(data + 8, m.sha256, 8) != 0) return LibraryStatus::ModelMismatch;
  const size_t lat = size_t(latent) * lh * lw;
  const size_t per = 4 * size_t(bins) + 2 * size_t(latent) + lat;
  if (size != kLibraryHeaderBytes + count * per) return LibraryStatus::Truncated;
  lib->count = count;
  lib->latent = latent;
  std::memcpy(lib->model_id, data + 8, 8);
  uint8_t digest[32];
  sha256(data, size, digest);
  std::memcpy(lib->hash, digest, 8);
  uint32_t* h = arena.alloc<uint32_t>(size_t(count) * bins + 1);
  uint16_t* d = arena.alloc<uint16_t>(size_t(count) * latent + 1);
  int8_t* l = arena.alloc<int8_t>(count * lat + 1);
  if (arena.failed()) return LibraryStatus::OutOfMemory;
  if (h && d && l) {  // a counting arena only measures
    for (uint32_t r = 0; r < count; ++r) {
      const uint8_t* p = data + kLibraryHeaderBytes + r * per;
      for (uint32_t b = 0; b < bins; ++b) h[size_t(r) * bins + b] = load_u32(p + 4 * b);
      p += 4 * size_t(bins);
      for (uint32_t c = 0; c < latent; ++c) d[size_t(r) * latent + c] = load_u16(p + 2 * c);
      p += 2 * size_t(latent);
      std::memcpy(l + r * lat, p, lat);
    }
    lib->histograms = h;
    lib->descriptors = d;
    lib->latents = l;
  }
  return LibraryStatus::Ok;
}

const int8_t* reference_latent(const RefLibrary* lib, uint16_t id) {
  if (!lib || id == kNoRef || id >= lib->count || !lib->latents) return nullptr;
  return lib->latents + size_t(id) * lib->latent * kRefLatentSide * kRefLatentSide;
}

uint16_t select_entropy_reference(const RefLibrary& lib, const float* y, uint32_t latent, size_t plane,
                                  uint16_t* descriptor) {
  if (lib.count == 0 || plane == 0) return kNoRef;
  for (uint32_t c = 0; c < latent; ++c) {
    uint64_t s = 0;
    for (size_t i = 0; i < plane; ++i) {
      // The same rounding as the stored latents: round_to_int(8 y, 127) (8 y is exact in float).
      const int32_t q = round_to_int(y[c * plane + i] * 8.0f, kRefLatentLimit);
      s += uint64_t(q < 0 ? -q : q);
    }
    const uint64_t v = (32 * s + plane / 2) / plane;
    descriptor[c] = uint16_t(v > 65535 ? 65535 : v);
  }
  uint16_t best = 0;
  uint64_t best_d = ~uint64_t(0);
  for (uint32_t r = 0; r < lib.count; ++r) {
    uint64_t dist = 0;
    const uint16_t* dr = lib.descriptors + size_t(r) * latent;
    for (uint32_t c = 0; c < latent; ++c) dist += descriptor[c] > dr[c] ? descriptor[c] - dr[c] : dr[c] - descriptor[c];
    if (dist < best_d) {  // strict: ties keep the lowest index
      best_d = dist;
      best = uint16_t(r);
    }
  }
  return best;
}

uint16_t select_decoder_reference(const RefLibrary& lib, const TileInput& in, uint8_t* gray, uint32_t* hist) {
  if (lib.count == 0 || in.h == 0 || in.w == 0) return kNoRef;
  const uint32_t m = in.pixels16 ? (1u << in.bit_depth) - 1 : 1;
  for (uint32_t y = 0; y < in.h; ++y)
    for (uint32_t x = 0; x < in.w; ++x) {
      const size_t at = y * in.row_stride + size_t(x) * in.channels;
      uint32_t v[3];
      for (uint32_t c = 0; c < in.channels; ++c) {
        if (in.pixels16) {
          uint32_t s = in.pixels16[at + c];
          if (s > m) s = m;
          v[c] = (510u * s + m) / (2u * m);
        } else {
          v[c] = in.pixels8[at + c];
        }
      }
      gray[size_t(y) * in.w + x] =
          in.channels == 1 ? uint8_t(v[0]) : uint8_t((77u * v[0] + 150u * v[1] + 29u * v[2] + 128u) >> 8);
    }
  if (!lbp_histograms(gray, in.h, in.w, in.w, LbpVariant::kUniform, 0, hist)) return kNoRef;
  size_t index = 0;
  uint32_t div = 0;
  if (!nearest_histogram(hist, lib.histograms, lib.count, kLibraryLbpBins, Divergence::kKL, &index, &div)) return kNoRef;
  return uint16_t(index);
}

}  // namespace pymars
