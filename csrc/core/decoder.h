// decoder.h - the ground entropy decoder: a pymars file in, latent tiles out.
//
// open_stream() checks the file header against the model (and the reference
// library hash, if any); scan_tile_records() (container.h) locates each
// tile's payload and flags damaged ones; decode_tile_span() entropy-decodes
// one tile into y_hat with the same integer code the encoder used. The float
// synthesis that turns y_hat into pixels is not here: it runs in ONNX Runtime
// or PyTorch (pymars/ground). Malformed input gives a status, never a crash.
#pragma once
#include <cstddef>
#include <cstdint>

#include "container.h"
#include "model.h"
#include "reference.h"
#include "sequence.h"
#include "tile_codec.h"

namespace pymars {

enum class OpenStatus {
  Ok = 0,
  BadHeader,        // see the ParseStatus for the reason
  ModelMismatch,    // the file was made with another model (weights)
  LibraryMismatch,  // the file needs a reference library this decoder does not hold (or another one)
  TileTooLarge,     // tile_size above this decoder's workspace
  SourceDepthMismatch,  // flag bit 1 (source-depth samples) at a quality that cannot carry them
  SequenceRefMissing,   // flag bit 2: the file was coded against an earlier frame the decoder was not given
  SequenceRefMismatch,  // the earlier frame given is not the one the file names (id), or not of this model
};

// The depth of a file's coded near-lossless samples: bit_depth with header flag bit 1, else 8.
inline uint32_t sample_depth_of(const FileHeader& h) { return (h.flags & kFlagSourceDepth) ? h.bit_depth : 8u; }

const char* open_status_message(OpenStatus s);

// Parses and checks the header. `library_hash` (8 bytes) is the decoder's
// reference library, or null when it has none.
OpenStatus open_stream(const Model& m, const uint8_t* data, size_t len, const uint8_t* library_hash,
                       uint32_t max_tile_size, FileHeader* header, ParseStatus* parse_status);

// The checks of open_stream() after the parse, for a header that
// parse_file_header() already accepted (a caller that read the header first,
// e.g. to pick the model, need not parse it twice): model id, library hash,
// tile size.
OpenStatus check_stream_header(const Model& m, const FileHeader& header, const uint8_t* library_hash,
                               uint32_t max_tile_size);

// Sequence coding (§4.10): whether `ref` (null: none given) is the earlier
// frame the header names. A reference given to a file that names none is not
// needed and passes.
OpenStatus check_sequence_reference(const Model& m, const FileHeader& header, const SequenceRef* ref);

// Geometry of tile `index` (pixel origin and size) in a file with header h.
void tile_origin(const FileHeader& h, uint32_t index, uint32_t* y0, uint32_t* x0, uint32_t* th, uint32_t* tw);

// Decodes one present tile into y_hat (latent x hy x wy). False: the tile is
// damaged (including a record naming an entropy reference that `library`
// lacks, for a model with a reference branch). `library`: the decoder's
// reference library (null: none).
bool decode_tile_span(const Model& m, DecoderWorkspace& ws, const FileHeader& h, const uint8_t* records,
                      const TileSpan& span, uint32_t index, float* y_hat, TileDims* dims,
                      const RefLibrary* library = nullptr, const SequenceRef* sequence = nullptr);

}  // namespace pymars
