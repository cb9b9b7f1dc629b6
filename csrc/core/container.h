// container.h - the file header (docs/bitstream.md §1) and the tile records
// (§3) around the rANS payloads: writing them, parsing the header, and
// scanning the records of a possibly damaged or truncated file.
//
// The flight encoder writes with this code and the ground decoder reads with
// it, so none of it allocates, throws or depends on host byte order (all
// fields go through byte-wise little-endian loads and stores). The scanner
// only locates payloads and checks their CRCs; it does not decode them, and it
// does not check model_id or library_hash against a model (the caller knows
// which model it has).
#pragma once
#include <cstddef>
#include <cstdint>

namespace pymars {

constexpr uint8_t kFileMagic[4] = {'P', 'M', 'R', 'S'};
constexpr uint8_t kTileSync[4] = {'P', 'M', 'T', 'L'};
constexpr uint8_t kBitstreamVersion = 1;
constexpr uint16_t kFlagLibraryHash = 1u << 0;  // bit 0: library_hash is present
// bit 1: near-lossless tiles carry samples at the file's bit depth (12 or 16),
// not the 8-bit reduction of docs/bitstream.md §5 (§4.8). Only with bit_depth
// 12/16; a decoder also refuses it unless the quality is a range-coded
// near-lossless quality of its model (check_stream_header).
constexpr uint16_t kFlagSourceDepth = 1u << 1;
// bit 2: the file is coded against a frame already sent (sequence coding,
// §4.10); the 8-byte id of that frame's file follows the library hash (if any).
constexpr uint16_t kFlagSequenceRef = 1u << 2;
constexpr uint16_t kKnownFlags = kFlagLibraryHash | kFlagSourceDepth | kFlagSequenceRef;
constexpr size_t kFileHeaderBytes = 40;             // without library hash
constexpr size_t kFileHeaderBytesWithLibrary = 48;  // with library hash
constexpr size_t kFileHeaderMaxBytes = 56;          // with library hash and sequence reference
constexpr size_t kTileRecordHeaderBytes = 24;
constexpr uint16_t kNoReference = 0xFFFF;

// All fields of §1 in file order. Reserved bytes are not represented: they
// are written as 0 and a parser refuses any other value.
struct FileHeader {
  uint8_t version = kBitstreamVersion;
  uint8_t header_length = kFileHeaderBytes;  // 40, or 48 when flags has kFlagLibraryHash
  uint16_t flags = 0;
  uint8_t model_id[8] = {};
  uint32_t width = 0;
  uint32_t height = 0;
  uint8_t channels = 3;
  uint8_t bit_depth = 8;
  uint8_t quality = 0;
  uint16_t tile_size = 0;
  uint32_t tile_count = 0;
  uint8_t library_hash[8] = {};  // meaningful only with kFlagLibraryHash
  uint8_t sequence_id[8] = {};   // meaningful only with kFlagSequenceRef
};

// ceil(height / T) * ceil(width / T), the only legal tile_count (§1). Returns 0
// for T = 0.
uint32_t expected_tile_count(uint32_t width, uint32_t height, uint32_t tile_size);

// The header length that goes with `flags` (40, plus 8 for each of the library
// hash and the sequence reference).
inline uint8_t file_header_length_for(uint16_t flags) {
  return uint8_t(kFileHeaderBytes + ((flags & kFlagLibraryHash) ? 8 : 0) + ((flags & kFlagSequenceRef) ? 8 : 0));
}

enum class ParseStatus {
  kOk = 0,
  kTruncatedHeader,    // fewer bytes than the header needs
  kBadMagic,           // not "PMRS": not a pymars file
  kUnknownVersion,     // a version this decoder does not know
  kUnknownFlags,       // a flags bit this version does not define
  kBadHeaderLength,    // header_length does not match the flags (40 / 48 / 56)
  kBadHeaderCrc,       // header bytes damaged
  kFieldOutOfRange,    // width, height, channels, bit_depth, quality, tile_size or a reserved byte
  kTileCountMismatch,  // tile_count != ceil(h/T) * ceil(w/T)
};

// A sentence for the user, e.g. "not a pymars file (bad magic bytes)". Never
// null; static storage.
const char* parse_status_message(ParseStatus status);

// Name of the first field of h outside its §1 range ("width", "tile_size", ...)
// or nullptr when all are in range. Does not look at tile_count, flags,
// version or header_length.
const char* file_header_field_out_of_range(const FileHeader& h);

// Writes the header (with its CRC) to out. Returns the bytes written
// (h.header_length), or 0 when cap is too small or h would not parse back
// (any check of parse_file_header fails).
size_t write_file_header(const FileHeader& h, uint8_t* out, size_t cap);

// Parses and checks the header at the start of data. Checks run in file order
// (magic, version, flags, header_length, CRC, field ranges, tile_count), so
// the status names the first problem. On success *out is filled and
// out->header_length tells where the first tile record starts. On failure
// *out is unspecified.
ParseStatus parse_file_header(const uint8_t* data, size_t len, FileHeader* out);

// §3 record header. record_crc is not stored: it is computed when writing and
// checked when parsing.
struct TileRecordHeader {
  uint32_t tile_index = 0;
  uint32_t payload_length = 0;
  uint16_t entropy_ref = kNoReference;
  uint16_t decoder_ref = kNoReference;
  uint32_t payload_crc = 0;
};

// Fills a record header for a payload, computing its CRC.
TileRecordHeader make_tile_record_header(uint32_t tile_index, uint16_t entropy_ref,
                                         uint16_t decoder_ref, const uint8_t* payload,
                                         uint32_t payload_length);

// Writes the 24-byte record header (sync, fields, record_crc). Returns 24, or
// 0 when cap < 24. The payload itself follows; the caller copies it.
size_t write_tile_record_header(const TileRecordHeader& h, uint8_t* out, size_t cap);

// True when data[0..24) is a record header with the sync word and a valid
// record_crc; then *out holds its fields. Says nothing about the payload.
bool parse_tile_record_header(const uint8_t* data, size_t len, TileRecordHeader* out);

// What the scanner found for one tile.
enum class TileState : uint8_t {
  kMissing = 0,    // no record with this index was found (lost, cut off, or never written)
  kPresent = 1,    // a valid record; payload_offset/length locate a payload with a good CRC
  kBadPayload = 2, // a record with a valid header was found but its payload CRC is wrong
};

struct TileSpan {
  TileState state = TileState::kMissing;
  uint16_t entropy_ref = kNoReference;  // from the record (kPresent only)
  uint16_t decoder_ref = kNoReference;
  size_t payload_offset = 0;  // relative to the `records` pointer given to the scanner
  uint32_t payload_length = 0;
};

struct ScanSummary {
  uint32_t tiles_present = 0;    // spans with kPresent
  uint32_t records_damaged = 0;  // records with a valid header but a bad payload CRC or cut-off payload
  uint32_t records_ignored = 0;  // valid headers with an out-of-range or already-present tile index
  size_t bytes_skipped = 0;      // bytes passed over while searching for a sync word
  // The bytes after the end of the last accepted record (all of them when no
  // record was accepted): data appended to the file, a second file
  // concatenated to it, or the tail of a damaged stream (docs/bitstream.md §3,
  // "Trailing data"). A part of bytes_skipped.
  size_t trailing_bytes = 0;
};

// Scans the tile records that follow the file header (`records` points just
// after it, `len` bytes to the end of the file) and fills spans[0..tile_count)
// (the caller provides the array). Rules (§3, "Damage handling"):
//  * Records are read in order from offset 0.
//  * A record is accepted when its header CRC is valid, its tile_index is
//    < tile_count and not yet present, its payload lies completely inside the
//    data and the payload CRC matches. Scanning continues right after it.
//  * Anything else is damage: the scanner searches forward byte by byte, from
//    one byte after the rejected position, for the next "PMTL" whose record
//    CRC is valid, and continues there. This also recovers from inserted or
//    deleted bytes inside a payload.
//  * A record with a good header but a bad payload CRC marks its tile
//    kBadPayload; it does not count as "seen", so a later intact copy of the
//    same tile would still be accepted.
// Allocation-free. Time: O(len) for the search plus one payload CRC per
// candidate record. Without `checkpoints` a payload CRC costs its length, so
// a hostile file of overlapping valid record headers, each claiming a long
// payload with a wrong CRC, costs O(len^2) (a 400 kB file: seconds). With
// `checkpoints` (make_crc_checkpoints() over the same bytes) any payload CRC
// costs O(stride + log len): the whole scan is O(len). The result is the same
// either way.
ScanSummary scan_tile_records(const uint8_t* records, size_t len, uint32_t tile_count,
                              TileSpan* spans, const uint32_t* checkpoints = nullptr);

// CRC checkpoints: crc32 of records[0 .. j * kCrcCheckpointStride) for j in
// 0 .. crc_checkpoint_count(len) - 1, so that the CRC of any byte range can be
// derived from two of them (CRC-32 is linear: crc(A||B) = crc(A) * x^(8|B|)
// mod P xor crc(B), zlib's crc32_combine) in O(stride + log len) instead of
// O(range length). 64 bytes of stride: 4 bytes of checkpoint per 64 bytes of
// file (6 %), and at most 2 x 63 bytes of CRC per range.
constexpr size_t kCrcCheckpointStride = 64;
inline size_t crc_checkpoint_count(size_t len) { return len / kCrcCheckpointStride + 1; }
// Fills out[0 .. crc_checkpoint_count(len)) in one O(len) pass.
void make_crc_checkpoints(const uint8_t* records, size_t len, uint32_t* out);
// crc32(records + begin, end - begin) from the checkpoints (null: computed directly).
uint32_t crc32_range(const uint8_t* records, size_t begin, size_t end, const uint32_t* checkpoints);

// True when the records hold at least one record that scan_tile_records()
// would accept for some tile (valid record CRC, tile_index < tile_count,
// payload inside the data with a matching payload CRC). Needs no span array
// and allocates nothing, so a decoder can refuse a file without a single
// decodable tile (a header alone, a header followed by garbage) before it
// allocates anything whose size the header claims (docs/bitstream.md §3,
// "Decoder limits"). Same search as the scanner: O(len) plus one CRC per
// candidate sync word; stops at the first valid record.
// `checkpoints`: as for scan_tile_records (O(len) with them).
bool has_valid_tile_record(const uint8_t* records, size_t len, uint32_t tile_count,
                           const uint32_t* checkpoints = nullptr);

// The fewest bytes a complete file with this header can have: the header and
// tile_count record headers (payloads may be empty). 64-bit, as tile_count
// can be 4096 x 4096.
uint64_t min_complete_file_bytes(const FileHeader& h);

}  // namespace pymars
