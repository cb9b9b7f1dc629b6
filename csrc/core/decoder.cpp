// decoder.cpp - see decoder.h.
#include "decoder.h"

#include <cstring>

namespace pymars {

const char* open_status_message(OpenStatus s) {
  switch (s) {
    case OpenStatus::Ok: return "ok";
    case OpenStatus::BadHeader: return "not a valid pymars file header";
    case OpenStatus::ModelMismatch:
      return "the file was encoded with a different model (model id mismatch): decode it with the model that encoded it";
    case OpenStatus::LibraryMismatch:
      return "the file was encoded with a reference library this decoder does not hold (library hash mismatch)";
    case OpenStatus::TileTooLarge: return "tile size larger than this decoder supports";
    case OpenStatus::SourceDepthMismatch:
      return "the header says its near-lossless tiles carry 12/16-bit samples, but the quality is not a range-coded "
             "near-lossless quality of this model";
    case OpenStatus::SequenceRefMissing:
      return "the file was coded against an earlier frame (sequence reference): decode it with that frame's file";
    case OpenStatus::SequenceRefMismatch:
      return "the earlier frame given is not the one this file was coded against (sequence reference id mismatch)";
  }
  return "unknown open status";
}

OpenStatus open_stream(const Model& m, const uint8_t* data, size_t len, const uint8_t* library_hash,
                       uint32_t max_tile_size, FileHeader* header, ParseStatus* parse_status) {
  *parse_status = parse_file_header(data, len, header);
  if (*parse_status != ParseStatus::kOk) return OpenStatus::BadHeader;
  return check_stream_header(m, *header, library_hash, max_tile_size);
}

OpenStatus check_stream_header(const Model& m, const FileHeader& header, const uint8_t* library_hash,
                               uint32_t max_tile_size) {
  if (std::memcmp(header.model_id, m.sha256, 8) != 0) return OpenStatus::ModelMismatch;
  const bool has_lib = (header.flags & kFlagLibraryHash) != 0;
  if (has_lib != (library_hash != nullptr) || (has_lib && std::memcmp(header.library_hash, library_hash, 8) != 0))
    return OpenStatus::LibraryMismatch;
  if (header.tile_size > max_tile_size) return OpenStatus::TileTooLarge;
  // Source-depth samples (§4.8) exist only at this model's range-coded near-lossless qualities.
  if ((header.flags & kFlagSourceDepth) && !m.source_depth_capable(header.quality)) return OpenStatus::SourceDepthMismatch;
  return OpenStatus::Ok;
}

OpenStatus check_sequence_reference(const Model& m, const FileHeader& header, const SequenceRef* ref) {
  if (!(header.flags & kFlagSequenceRef)) return OpenStatus::Ok;
  if (!ref || !ref->samples) return OpenStatus::SequenceRefMissing;
  if (std::memcmp(header.sequence_id, ref->id, 8) != 0 || ref->channels != m.in_channels)
    return OpenStatus::SequenceRefMismatch;
  return OpenStatus::Ok;
}

void tile_origin(const FileHeader& h, uint32_t index, uint32_t* y0, uint32_t* x0, uint32_t* th, uint32_t* tw) {
  const uint32_t t = h.tile_size;
  const uint32_t tiles_x = (h.width + t - 1) / t;
  *y0 = (index / tiles_x) * t;
  *x0 = (index % tiles_x) * t;
  *th = h.height - *y0 < t ? h.height - *y0 : t;
  *tw = h.width - *x0 < t ? h.width - *x0 : t;
}

bool decode_tile_span(const Model& m, DecoderWorkspace& ws, const FileHeader& h, const uint8_t* records,
                      const TileSpan& span, uint32_t index, float* y_hat, TileDims* dims, const RefLibrary* library,
                      const SequenceRef* sequence) {
  if (span.state != TileState::kPresent || index >= h.tile_count) return false;
  uint32_t y0, x0, th, tw;
  tile_origin(h, index, &y0, &x0, &th, &tw);
  *dims = tile_dims(th, tw);
  dims->seams = tile_seams(h.width, h.height, h.tile_size, index);
  const int8_t* ref = nullptr;
  if (m.has_ref && span.entropy_ref != kNoRef) {
    ref = reference_latent(library, span.entropy_ref);
    if (!ref) return false;  // the record names a reference this library lacks
  }
  TileReference link;  // predicted tiles only in files that name their earlier frame
  if (h.flags & kFlagSequenceRef) link = TileReference{sequence, y0, x0, TileSequence{}};
  return decode_tile(m, ws, *dims, h.quality, records + span.payload_offset, span.payload_length, y_hat, ref,
                     sample_depth_of(h), link);
}

}  // namespace pymars
