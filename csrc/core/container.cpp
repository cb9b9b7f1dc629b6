// container.cpp - file header and tile records (see container.h and
// docs/bitstream.md §1, §3). Offsets below are the byte offsets of the spec
// tables; every multi-byte field goes through bytes.h (little-endian,
// byte-wise).
#include "container.h"

#include "bytes.h"
#include "crc32.h"
#include "limits.h"

namespace pymars {
namespace {

// §1 field offsets.
constexpr size_t kOffMagic = 0;
constexpr size_t kOffVersion = 4;
constexpr size_t kOffHeaderLength = 5;
constexpr size_t kOffFlags = 6;
constexpr size_t kOffModelId = 8;
constexpr size_t kOffWidth = 16;
constexpr size_t kOffHeight = 20;
constexpr size_t kOffChannels = 24;
constexpr size_t kOffBitDepth = 25;
constexpr size_t kOffQuality = 26;
constexpr size_t kOffReserved27 = 27;
constexpr size_t kOffTileSize = 28;
constexpr size_t kOffReserved30 = 30;
constexpr size_t kOffTileCount = 32;
constexpr size_t kOffLibraryHash = 36;
// The sequence reference id follows the library hash when there is one.
inline size_t sequence_id_offset(uint16_t flags) { return (flags & kFlagLibraryHash) ? 44 : 36; }

// §3 field offsets.
constexpr size_t kOffRecTileIndex = 4;
constexpr size_t kOffRecPayloadLength = 8;
constexpr size_t kOffRecEntropyRef = 12;
constexpr size_t kOffRecDecoderRef = 14;
constexpr size_t kOffRecPayloadCrc = 16;
constexpr size_t kOffRecRecordCrc = 20;

// CRC-32 arithmetic modulo the polynomial, in the reflected bit order of
// crc32.cpp (zlib's multmodp / x2nmodp): what crc32_range() needs to remove a
// prefix's contribution from a longer prefix's CRC.
constexpr uint32_t kCrcPolynomial = 0xEDB88320u;

// a * b mod P.
constexpr uint32_t crc_mult_mod(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1u) ? (b >> 1) ^ kCrcPolynomial : b >> 1;
  }
  return p;
}

// x^(2^k) mod P for k = 0..31; the sequence repeats with period 32 (the order
// of x divides 2^32 - 1), so k is taken mod 32.
struct CrcPowerTable {
  uint32_t x2n[32];
};

constexpr CrcPowerTable make_crc_power_table() {
  CrcPowerTable t{};
  uint32_t p = 1u << 30;  // x^1
  t.x2n[0] = p;
  for (int n = 1; n < 32; ++n) t.x2n[n] = p = crc_mult_mod(p, p);
  return t;
}

constexpr CrcPowerTable kCrcPowers = make_crc_power_table();

// x^(8 * bytes) mod P: shifting a CRC by `bytes` zero bytes.
uint32_t crc_shift_for(uint64_t bytes) {
  uint32_t p = 1u << 31;  // x^0
  unsigned k = 3;         // 8 = 2^3 bits per byte
  for (uint64_t n = bytes; n; n >>= 1, ++k)
    if (n & 1u) p = crc_mult_mod(kCrcPowers.x2n[k & 31u], p);
  return p;
}

uint32_t crc_of_prefix(const uint8_t* data, size_t end, const uint32_t* checkpoints) {
  const size_t j = end / kCrcCheckpointStride;
  return crc32(data + j * kCrcCheckpointStride, end - j * kCrcCheckpointStride, checkpoints[j]);
}

bool bytes_equal(const uint8_t* a, const uint8_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// The checks that do not need the raw bytes, shared by writer and parser so
// that whatever the writer accepts, the parser accepts too.
ParseStatus check_header_fields(const FileHeader& h) {
  if (h.version != kBitstreamVersion) return ParseStatus::kUnknownVersion;
  if (h.flags & ~kKnownFlags) return ParseStatus::kUnknownFlags;
  if (h.header_length != file_header_length_for(h.flags)) return ParseStatus::kBadHeaderLength;
  if (file_header_field_out_of_range(h) != nullptr) return ParseStatus::kFieldOutOfRange;
  // Samples at the file's bit depth (§4.8) need a 12/16-bit file.
  if ((h.flags & kFlagSourceDepth) && h.bit_depth == 8) return ParseStatus::kFieldOutOfRange;
  if (h.tile_count != expected_tile_count(h.width, h.height, h.tile_size))
    return ParseStatus::kTileCountMismatch;
  return ParseStatus::kOk;
}

}  // namespace

uint32_t expected_tile_count(uint32_t width, uint32_t height, uint32_t tile_size) {
  if (tile_size == 0) return 0;
  // Written as quotient + (remainder != 0) so that no sum can wrap around.
  const uint32_t tiles_x = width / tile_size + (width % tile_size != 0);
  const uint32_t tiles_y = height / tile_size + (height % tile_size != 0);
  return tiles_x * tiles_y;  // <= 4096 * 4096 for in-range fields
}

const char* parse_status_message(ParseStatus status) {
  switch (status) {
    case ParseStatus::kOk:
      return "ok";
    case ParseStatus::kTruncatedHeader:
      return "file too short: the pymars header is incomplete";
    case ParseStatus::kBadMagic:
      return "not a pymars file (magic bytes are not 'PMRS')";
    case ParseStatus::kUnknownVersion:
      return "unsupported pymars bitstream version (this decoder reads version 1)";
    case ParseStatus::kUnknownFlags:
      return "header flags contain bits this decoder does not know";
    case ParseStatus::kBadHeaderLength:
      return "header_length does not match the flags (40 bytes, 8 more with a reference library, 8 more with a sequence reference)";
    case ParseStatus::kBadHeaderCrc:
      return "header CRC mismatch: the file header is damaged";
    case ParseStatus::kFieldOutOfRange:
      return "a header field is out of range (image size, channels, bit depth, quality, "
             "tile size or reserved bytes)";
    case ParseStatus::kTileCountMismatch:
      return "tile_count does not match the image size and tile size";
  }
  return "unknown header parse status";
}

const char* file_header_field_out_of_range(const FileHeader& h) {
  if (!valid_image_side(h.width)) return "width";
  if (!valid_image_side(h.height)) return "height";
  if (h.channels != 1 && h.channels != 3) return "channels";
  if (h.bit_depth != 8 && h.bit_depth != 12 && h.bit_depth != 16) return "bit_depth";
  if (!valid_quality(h.quality)) return "quality";
  if (!valid_tile_size(h.tile_size)) return "tile_size";
  return nullptr;
}

size_t write_file_header(const FileHeader& h, uint8_t* out, size_t cap) {
  if (check_header_fields(h) != ParseStatus::kOk) return 0;
  const size_t n = h.header_length;
  if (out == nullptr || cap < n) return 0;
  for (size_t i = 0; i < n; ++i) out[i] = 0;  // reserved bytes
  for (size_t i = 0; i < 4; ++i) out[kOffMagic + i] = kFileMagic[i];
  out[kOffVersion] = h.version;
  out[kOffHeaderLength] = h.header_length;
  store_u16(out + kOffFlags, h.flags);
  for (size_t i = 0; i < 8; ++i) out[kOffModelId + i] = h.model_id[i];
  store_u32(out + kOffWidth, h.width);
  store_u32(out + kOffHeight, h.height);
  out[kOffChannels] = h.channels;
  out[kOffBitDepth] = h.bit_depth;
  out[kOffQuality] = h.quality;
  store_u16(out + kOffTileSize, h.tile_size);
  store_u32(out + kOffTileCount, h.tile_count);
  if (h.flags & kFlagLibraryHash)
    for (size_t i = 0; i < 8; ++i) out[kOffLibraryHash + i] = h.library_hash[i];
  if (h.flags & kFlagSequenceRef)
    for (size_t i = 0; i < 8; ++i) out[sequence_id_offset(h.flags) + i] = h.sequence_id[i];
  store_u32(out + n - 4, crc32(out, n - 4));
  return n;
}

ParseStatus parse_file_header(const uint8_t* data, size_t len, FileHeader* out) {
  if (data == nullptr) len = 0;
  // Each check reads only bytes that it has made sure exist, so a short file
  // is reported as truncated unless its first bytes already prove it is not
  // a pymars file at all.
  for (size_t i = 0; i < 4; ++i) {
    if (i >= len) return ParseStatus::kTruncatedHeader;
    if (data[kOffMagic + i] != kFileMagic[i]) return ParseStatus::kBadMagic;
  }
  if (len <= kOffVersion) return ParseStatus::kTruncatedHeader;
  // The version decides the layout, so it is checked before anything else.
  if (data[kOffVersion] != kBitstreamVersion) return ParseStatus::kUnknownVersion;
  if (len < kOffFlags + 2) return ParseStatus::kTruncatedHeader;
  const uint16_t flags = load_u16(data + kOffFlags);
  if (flags & ~kKnownFlags) return ParseStatus::kUnknownFlags;
  const uint8_t header_length = data[kOffHeaderLength];
  if (header_length != file_header_length_for(flags)) return ParseStatus::kBadHeaderLength;
  if (len < header_length) return ParseStatus::kTruncatedHeader;
  if (crc32(data, header_length - 4u) != load_u32(data + header_length - 4))
    return ParseStatus::kBadHeaderCrc;

  FileHeader h;
  h.version = data[kOffVersion];
  h.header_length = header_length;
  h.flags = flags;
  for (size_t i = 0; i < 8; ++i) h.model_id[i] = data[kOffModelId + i];
  h.width = load_u32(data + kOffWidth);
  h.height = load_u32(data + kOffHeight);
  h.channels = data[kOffChannels];
  h.bit_depth = data[kOffBitDepth];
  h.quality = data[kOffQuality];
  h.tile_size = load_u16(data + kOffTileSize);
  h.tile_count = load_u32(data + kOffTileCount);
  if (flags & kFlagLibraryHash)
    for (size_t i = 0; i < 8; ++i) h.library_hash[i] = data[kOffLibraryHash + i];
  if (flags & kFlagSequenceRef)
    for (size_t i = 0; i < 8; ++i) h.sequence_id[i] = data[sequence_id_offset(flags) + i];
  if (data[kOffReserved27] != 0 || load_u16(data + kOffReserved30) != 0)
    return ParseStatus::kFieldOutOfRange;
  const ParseStatus status = check_header_fields(h);
  if (status != ParseStatus::kOk) return status;
  *out = h;
  return ParseStatus::kOk;
}

TileRecordHeader make_tile_record_header(uint32_t tile_index, uint16_t entropy_ref,
                                         uint16_t decoder_ref, const uint8_t* payload,
                                         uint32_t payload_length) {
  TileRecordHeader h;
  h.tile_index = tile_index;
  h.payload_length = payload_length;
  h.entropy_ref = entropy_ref;
  h.decoder_ref = decoder_ref;
  h.payload_crc = crc32(payload, payload_length);
  return h;
}

size_t write_tile_record_header(const TileRecordHeader& h, uint8_t* out, size_t cap) {
  if (out == nullptr || cap < kTileRecordHeaderBytes) return 0;
  for (size_t i = 0; i < 4; ++i) out[i] = kTileSync[i];
  store_u32(out + kOffRecTileIndex, h.tile_index);
  store_u32(out + kOffRecPayloadLength, h.payload_length);
  store_u16(out + kOffRecEntropyRef, h.entropy_ref);
  store_u16(out + kOffRecDecoderRef, h.decoder_ref);
  store_u32(out + kOffRecPayloadCrc, h.payload_crc);
  store_u32(out + kOffRecRecordCrc, crc32(out, kOffRecRecordCrc));
  return kTileRecordHeaderBytes;
}

bool parse_tile_record_header(const uint8_t* data, size_t len, TileRecordHeader* out) {
  if (data == nullptr || len < kTileRecordHeaderBytes) return false;
  if (!bytes_equal(data, kTileSync, 4)) return false;
  if (crc32(data, kOffRecRecordCrc) != load_u32(data + kOffRecRecordCrc)) return false;
  out->tile_index = load_u32(data + kOffRecTileIndex);
  out->payload_length = load_u32(data + kOffRecPayloadLength);
  out->entropy_ref = load_u16(data + kOffRecEntropyRef);
  out->decoder_ref = load_u16(data + kOffRecDecoderRef);
  out->payload_crc = load_u32(data + kOffRecPayloadCrc);
  return true;
}

void make_crc_checkpoints(const uint8_t* records, size_t len, uint32_t* out) {
  uint32_t c = 0;
  out[0] = 0;
  for (size_t j = 1; j < crc_checkpoint_count(len); ++j) {
    c = crc32(records + (j - 1) * kCrcCheckpointStride, kCrcCheckpointStride, c);
    out[j] = c;
  }
}

uint32_t crc32_range(const uint8_t* records, size_t begin, size_t end, const uint32_t* checkpoints) {
  if (checkpoints == nullptr || end - begin <= 2 * kCrcCheckpointStride) return crc32(records + begin, end - begin);
  // crc(prefix_end) = crc(prefix_begin) * x^(8 (end - begin)) xor crc(range).
  return crc_of_prefix(records, end, checkpoints) ^
         crc_mult_mod(crc_shift_for(end - begin), crc_of_prefix(records, begin, checkpoints));
}

ScanSummary scan_tile_records(const uint8_t* records, size_t len, uint32_t tile_count,
                              TileSpan* spans, const uint32_t* checkpoints) {
  ScanSummary summary;
  for (uint32_t i = 0; i < tile_count; ++i) spans[i] = TileSpan();
  if (records == nullptr) len = 0;

  // Every byte not covered by an accepted record is passed over one at a
  // time and counted as skipped; with no damage nothing is skipped.
  size_t pos = 0;
  size_t accepted_end = 0;  // end of the last accepted record: the trailing bytes start there
  while (pos < len) {
    TileRecordHeader h;
    if (!parse_tile_record_header(records + pos, len - pos, &h)) {
      ++summary.bytes_skipped;
      ++pos;
      continue;
    }
    const size_t payload_offset = pos + kTileRecordHeaderBytes;
    const bool payload_complete = h.payload_length <= len - payload_offset;
    if (!payload_complete) {
      // Cut off by truncation, or a length that was damaged in a way the CRC
      // missed: the tile stays missing and the search goes on.
      ++summary.records_damaged;
    } else if (h.tile_index >= tile_count || spans[h.tile_index].state == TileState::kPresent) {
      ++summary.records_ignored;
    } else if (crc32_range(records, payload_offset, payload_offset + h.payload_length, checkpoints) !=
               h.payload_crc) {
      ++summary.records_damaged;
      spans[h.tile_index].state = TileState::kBadPayload;
    } else {
      TileSpan& span = spans[h.tile_index];
      span.state = TileState::kPresent;
      span.entropy_ref = h.entropy_ref;
      span.decoder_ref = h.decoder_ref;
      span.payload_offset = payload_offset;
      span.payload_length = h.payload_length;
      ++summary.tiles_present;
      pos = payload_offset + h.payload_length;
      accepted_end = pos;
      continue;
    }
    // Damage: resume the byte-by-byte search one byte after this sync word.
    ++summary.bytes_skipped;
    ++pos;
  }
  summary.trailing_bytes = len - accepted_end;
  return summary;
}

bool has_valid_tile_record(const uint8_t* records, size_t len, uint32_t tile_count, const uint32_t* checkpoints) {
  if (records == nullptr) return false;
  for (size_t pos = 0; pos + kTileRecordHeaderBytes <= len; ++pos) {
    TileRecordHeader h;
    if (!parse_tile_record_header(records + pos, len - pos, &h)) continue;
    const size_t payload_offset = pos + kTileRecordHeaderBytes;
    if (h.tile_index < tile_count && h.payload_length <= len - payload_offset &&
        crc32_range(records, payload_offset, payload_offset + h.payload_length, checkpoints) == h.payload_crc)
      return true;
  }
  return false;
}

uint64_t min_complete_file_bytes(const FileHeader& h) {
  return uint64_t(h.header_length) + uint64_t(h.tile_count) * kTileRecordHeaderBytes;
}

}  // namespace pymars
