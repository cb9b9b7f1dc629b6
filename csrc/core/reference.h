// reference.h - the REMAC reference library's rover part, and per-tile reference selection.
//
// What it is for: the rover holds the rover part of a reference library
// (pymars/remac/library.py gives the normative layout: "PMRL" v1, per
// reference a uniform LBP histogram, a latent descriptor and an int8 latent)
// and picks, per tile, one reference for the entropy model and one for the
// ground decoder (docs/remac.md). Both choices are integer computations on
// data the encoder has anyway, so they are identical on every CPU and the
// ground re-reads them from the tile records instead of repeating them:
//
//   entropy reference  argmin_r sum_c |d[c] - d_r[c]|       d[c] = (32 sum|q_c| + n/2) / n,
//                                                           q = round_to_int(8 y, 127)
//   decoder reference  argmin_r KL_Q16(h_r || h)            h: uniform LBP histogram of the gray tile
//
// (ties to the lowest r; an empty library gives kNoReference). The library is
// copied into the caller's Arena in host byte order; nothing here touches the
// heap. pymars/remac/selection.py is the NumPy statement of the same rules.
#pragma once
#include <cstddef>
#include <cstdint>

#include "arena.h"
#include "model.h"
#include "tile.h"

namespace pymars {

constexpr uint32_t kLibraryHeaderBytes = 28;
constexpr uint32_t kLibraryLbpBins = 59;
constexpr uint32_t kLibraryMaxReferences = 4096;
constexpr uint16_t kNoRef = 0xFFFF;

struct RefLibrary {
  uint32_t count = 0, latent = 0;
  const uint32_t* histograms = nullptr;  // [count][59]
  const uint16_t* descriptors = nullptr;  // [count][latent]
  const int8_t* latents = nullptr;        // [count][latent][16][16]
  uint8_t model_id[8] = {};
  uint8_t hash[8] = {};  // first 8 bytes of SHA-256 of the rover part: the bitstream's library_hash
};

enum class LibraryStatus { Ok = 0, Truncated, BadMagic, UnknownVersion, BadDims, ModelMismatch, OutOfMemory };
const char* library_status_message(LibraryStatus s);

// Parses a rover part for model m (its model id and latent channels must
// match) into `arena` (a counting Arena only measures).
LibraryStatus load_library(const uint8_t* data, size_t size, const Model& m, Arena& arena, RefLibrary* lib);

// The int8 latent of reference `id` (null for kNoRef or an id out of range).
const int8_t* reference_latent(const RefLibrary* lib, uint16_t id);

// Entropy reference of a tile from its analysis y (latent x plane floats).
uint16_t select_entropy_reference(const RefLibrary& lib, const float* y, uint32_t latent, size_t plane,
                                  uint16_t* descriptor_scratch);

// Decoder reference of a tile: gray conversion (exact integers, 16-bit
// samples scaled as in docs/bitstream.md §5), uniform LBP histogram, nearest by KL.
uint16_t select_decoder_reference(const RefLibrary& lib, const TileInput& in, uint8_t* gray_scratch,
                                  uint32_t* histogram_scratch);

}  // namespace pymars
