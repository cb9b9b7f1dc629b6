// test_container.cpp - specification tests for the file header (§1) and the
// tile records with their damage handling (§3) in container.h. Every failure
// reason of the header parser has its own test; the record scanner is run on
// every truncation and every single-bit flip of a small synthetic file and
// must keep every tile whose record was not touched.
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "core/container.h"
#include "core/crc32.h"
#include "tests/check.h"

using namespace pymars;
using pymars_test::TestRng;

namespace {

// ---------------------------------------------------------------- helpers

FileHeader sample_header(bool with_library) {
  FileHeader h;
  h.flags = with_library ? kFlagLibraryHash : 0;
  h.header_length = file_header_length_for(h.flags);
  for (uint8_t i = 0; i < 8; ++i) h.model_id[i] = uint8_t(0x10 + i);
  h.width = 1000;
  h.height = 600;
  h.channels = 3;
  h.bit_depth = 12;
  h.quality = 75;
  h.tile_size = 256;
  h.tile_count = expected_tile_count(h.width, h.height, h.tile_size);
  if (with_library)
    for (uint8_t i = 0; i < 8; ++i) h.library_hash[i] = uint8_t(0xA0 + i);
  return h;
}

std::vector<uint8_t> header_bytes(const FileHeader& h) {
  std::vector<uint8_t> out(kFileHeaderMaxBytes);
  out.resize(write_file_header(h, out.data(), out.size()));
  return out;
}

// Re-computes the header CRC after a test patched a field, so that the parser
// reaches the check the test is about.
void fix_header_crc(std::vector<uint8_t>& b) {
  const size_t n = b.size();
  const uint32_t c = crc32(b.data(), n - 4);
  for (int i = 0; i < 4; ++i) b[n - 4 + size_t(i)] = uint8_t(c >> (8 * i));
}

void put_u16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
  b[off] = uint8_t(v);
  b[off + 1] = uint8_t(v >> 8);
}

void put_u32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + size_t(i)] = uint8_t(v >> (8 * i));
}

ParseStatus parse(const std::vector<uint8_t>& b) {
  FileHeader out;
  return parse_file_header(b.data(), b.size(), &out);
}

// Patches one field of a valid header (and its CRC) and parses it.
ParseStatus parse_with_u32(size_t off, uint32_t v) {
  std::vector<uint8_t> b = header_bytes(sample_header(false));
  put_u32(b, off, v);
  fix_header_crc(b);
  return parse(b);
}
ParseStatus parse_with_u16(size_t off, uint16_t v) {
  std::vector<uint8_t> b = header_bytes(sample_header(false));
  put_u16(b, off, v);
  fix_header_crc(b);
  return parse(b);
}
ParseStatus parse_with_u8(size_t off, uint8_t v) {
  std::vector<uint8_t> b = header_bytes(sample_header(false));
  b[off] = v;
  fix_header_crc(b);
  return parse(b);
}

// A synthetic record stream: tile i has a payload of varying length (0 ..)
// with random bytes. Keeps where each record starts and ends.
struct SyntheticFile {
  std::vector<uint8_t> bytes;               // records only (what follows the header)
  std::vector<size_t> record_begin, record_end;
  std::vector<std::vector<uint8_t>> payload;
};

void append_record(std::vector<uint8_t>& bytes, uint32_t index, const std::vector<uint8_t>& payload,
                   uint16_t entropy_ref = 3, uint16_t decoder_ref = 5) {
  const TileRecordHeader h = make_tile_record_header(index, entropy_ref, decoder_ref, payload.data(),
                                                     uint32_t(payload.size()));
  uint8_t head[kTileRecordHeaderBytes];
  CHECK(write_tile_record_header(h, head, sizeof head) == kTileRecordHeaderBytes);
  bytes.insert(bytes.end(), head, head + sizeof head);
  bytes.insert(bytes.end(), payload.begin(), payload.end());
}

SyntheticFile make_file(uint32_t tiles, uint64_t seed) {
  TestRng rng(seed);
  SyntheticFile f;
  for (uint32_t i = 0; i < tiles; ++i) {
    std::vector<uint8_t> p((i * 7) % 23);  // includes an empty payload
    for (auto& b : p) b = uint8_t(rng.next());
    f.record_begin.push_back(f.bytes.size());
    append_record(f.bytes, i, p);
    f.record_end.push_back(f.bytes.size());
    f.payload.push_back(p);
  }
  return f;
}

std::vector<TileSpan> scan(const std::vector<uint8_t>& bytes, uint32_t tiles, ScanSummary* summary = nullptr) {
  std::vector<TileSpan> spans(tiles);
  const ScanSummary s = scan_tile_records(bytes.data(), bytes.size(), tiles, spans.data());
  if (summary) *summary = s;
  return spans;
}

// True when span i points at exactly the payload the file was built with.
bool span_is_intact(const std::vector<uint8_t>& bytes, const TileSpan& span,
                    const std::vector<uint8_t>& payload) {
  return span.state == TileState::kPresent && span.payload_length == payload.size() &&
         span.payload_offset + span.payload_length <= bytes.size() &&
         (payload.empty() ||
          std::memcmp(bytes.data() + span.payload_offset, payload.data(), payload.size()) == 0) &&
         span.entropy_ref == 3 && span.decoder_ref == 5;
}

// ---------------------------------------------------------------- header

void header_round_trips_without_library() {
  const FileHeader h = sample_header(false);
  const std::vector<uint8_t> b = header_bytes(h);
  CHECK(b.size() == 40);
  FileHeader back;
  CHECK(parse_file_header(b.data(), b.size(), &back) == ParseStatus::kOk);
  CHECK(back.header_length == 40 && back.flags == 0);
  CHECK(std::memcmp(back.model_id, h.model_id, 8) == 0);
  CHECK(back.width == 1000 && back.height == 600 && back.channels == 3);
  CHECK(back.bit_depth == 12 && back.quality == 75 && back.tile_size == 256);
  CHECK(back.tile_count == 12);
}

void header_round_trips_with_library_hash() {
  const FileHeader h = sample_header(true);
  const std::vector<uint8_t> b = header_bytes(h);
  CHECK(b.size() == 48);
  FileHeader back;
  CHECK(parse_file_header(b.data(), b.size(), &back) == ParseStatus::kOk);
  CHECK(back.flags == kFlagLibraryHash && back.header_length == 48);
  CHECK(std::memcmp(back.library_hash, h.library_hash, 8) == 0);
}

void header_fields_sit_at_the_spec_offsets() {
  const std::vector<uint8_t> b = header_bytes(sample_header(true));
  CHECK(std::memcmp(b.data(), "PMRS", 4) == 0);
  CHECK(b[4] == 1 && b[5] == 48 && b[6] == 1 && b[7] == 0);
  CHECK(b[8] == 0x10 && b[15] == 0x17);
  CHECK(b[16] == 0xE8 && b[17] == 0x03 && b[18] == 0 && b[19] == 0);  // width 1000, LE
  CHECK(b[20] == 0x58 && b[21] == 0x02);                              // height 600
  CHECK(b[24] == 3 && b[25] == 12 && b[26] == 75 && b[27] == 0);
  CHECK(b[28] == 0x00 && b[29] == 0x01 && b[30] == 0 && b[31] == 0);  // tile_size 256
  CHECK(b[32] == 12 && b[33] == 0);
  CHECK(b[36] == 0xA0 && b[43] == 0xA7);
  const uint32_t c = crc32(b.data(), 44);
  CHECK(b[44] == uint8_t(c) && b[47] == uint8_t(c >> 24));
}

void header_bytes_after_header_length_are_not_read() {
  std::vector<uint8_t> b = header_bytes(sample_header(false));
  b.push_back(0xEE);  // the first record would follow
  CHECK(parse(b) == ParseStatus::kOk);
}

void writer_refuses_a_too_small_buffer() {
  uint8_t out[47];
  CHECK(write_file_header(sample_header(true), out, sizeof out) == 0);
  CHECK(write_file_header(sample_header(false), out, 39) == 0);
  CHECK(write_file_header(sample_header(false), out, 40) == 40);
}

void writer_refuses_a_header_the_parser_would_refuse() {
  uint8_t out[48];
  FileHeader h = sample_header(false);
  h.tile_count += 1;
  CHECK(write_file_header(h, out, sizeof out) == 0);
  h = sample_header(false);
  h.quality = 0;
  CHECK(write_file_header(h, out, sizeof out) == 0);
  h = sample_header(false);
  h.flags = kFlagLibraryHash;  // header_length still 40
  CHECK(write_file_header(h, out, sizeof out) == 0);
}

void tile_count_is_the_product_of_rounded_up_grid_sides() {
  CHECK(expected_tile_count(1000, 600, 256) == 4 * 3);
  CHECK(expected_tile_count(256, 256, 256) == 1);
  CHECK(expected_tile_count(257, 1, 256) == 2);
  CHECK(expected_tile_count(65535, 65535, 16) == 4096u * 4096u);
  CHECK(expected_tile_count(10, 10, 0) == 0);
}

// ---------------------------------------------------------------- header failures

void every_prefix_of_a_header_is_truncated() {
  const std::vector<uint8_t> b = header_bytes(sample_header(true));
  for (size_t len = 0; len < b.size(); ++len) {
    FileHeader out;
    CHECK(parse_file_header(b.data(), len, &out) == ParseStatus::kTruncatedHeader);
  }
}

void wrong_magic_is_bad_magic() {
  std::vector<uint8_t> b = header_bytes(sample_header(false));
  b[3] = 'X';
  CHECK(parse(b) == ParseStatus::kBadMagic);
  const uint8_t jpeg[2] = {0xFF, 0xD8};  // too short, but already not pymars
  FileHeader out;
  CHECK(parse_file_header(jpeg, 2, &out) == ParseStatus::kBadMagic);
}

void other_version_is_unknown_version() {
  CHECK(parse_with_u8(4, 2) == ParseStatus::kUnknownVersion);
  CHECK(parse_with_u8(4, 0) == ParseStatus::kUnknownVersion);
}

void undefined_flag_bit_is_unknown_flags() {
  CHECK(parse_with_u16(6, 0x0008) == ParseStatus::kUnknownFlags);
  CHECK(parse_with_u16(6, 0x8000) == ParseStatus::kUnknownFlags);
}

// Flag bit 2 (sequence coding, §4.10): 8 more header bytes, the earlier file's id, after the library hash.
void sequence_id_round_trips_after_the_library_hash() {
  for (uint16_t lib : {uint16_t(0), kFlagLibraryHash}) {
    FileHeader h;
    h.flags = uint16_t(lib | kFlagSequenceRef);
    h.header_length = file_header_length_for(h.flags);
    CHECK(h.header_length == (lib ? 56 : 48));
    h.width = 100;
    h.height = 60;
    h.quality = 50;
    h.tile_size = 64;
    h.tile_count = expected_tile_count(100, 60, 64);
    for (int i = 0; i < 8; ++i) h.library_hash[i] = uint8_t(0xA0 + i), h.sequence_id[i] = uint8_t(0x10 + i);
    uint8_t buf[kFileHeaderMaxBytes];
    CHECK(write_file_header(h, buf, sizeof buf) == h.header_length);
    CHECK(buf[lib ? 44 : 36] == 0x10 && buf[lib ? 51 : 43] == 0x17);
    FileHeader back;
    CHECK(parse_file_header(buf, h.header_length, &back) == ParseStatus::kOk);
    CHECK(std::memcmp(back.sequence_id, h.sequence_id, 8) == 0);
    CHECK(!lib || std::memcmp(back.library_hash, h.library_hash, 8) == 0);
  }
}

// Flag bit 1 (near-lossless samples at the file's bit depth, §4.8) needs a 12/16-bit file.
void source_depth_flag_needs_a_high_bit_depth() {
  CHECK(parse_with_u16(6, kFlagSourceDepth) == ParseStatus::kOk);  // sample_header is 12-bit
  FileHeader h = sample_header(false);
  h.flags = kFlagSourceDepth;
  std::vector<uint8_t> b = header_bytes(h);
  FileHeader back;
  CHECK(parse_file_header(b.data(), b.size(), &back) == ParseStatus::kOk && back.flags == kFlagSourceDepth);
  b[25] = 8;  // bit_depth 8
  fix_header_crc(b);
  CHECK(parse(b) == ParseStatus::kFieldOutOfRange);
  h.bit_depth = 8;
  uint8_t out[kFileHeaderMaxBytes];
  CHECK(write_file_header(h, out, sizeof(out)) == 0);  // the writer refuses what the parser would
}

void header_length_disagreeing_with_flags_is_refused() {
  CHECK(parse_with_u8(5, 48) == ParseStatus::kBadHeaderLength);  // no library flag
  CHECK(parse_with_u8(5, 39) == ParseStatus::kBadHeaderLength);
  std::vector<uint8_t> b = header_bytes(sample_header(true));
  b[5] = 40;
  CHECK(parse(b) == ParseStatus::kBadHeaderLength);
}

void any_damaged_header_byte_is_caught() {
  // Every single-bit flip in a header yields a refusal, never kOk.
  const std::vector<uint8_t> good = header_bytes(sample_header(true));
  for (size_t byte = 0; byte < good.size(); ++byte) {
    for (unsigned bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> b = good;
      b[byte] ^= uint8_t(1u << bit);
      CHECK(parse(b) != ParseStatus::kOk);
    }
  }
  std::vector<uint8_t> b = good;
  b[17] ^= 0x01;  // inside width: only the CRC can notice
  CHECK(parse(b) == ParseStatus::kBadHeaderCrc);
}

void field_out_of_range_is_refused() {
  CHECK(parse_with_u32(16, 0) == ParseStatus::kFieldOutOfRange);       // width
  CHECK(parse_with_u32(16, 65536) == ParseStatus::kFieldOutOfRange);
  CHECK(parse_with_u32(20, 0) == ParseStatus::kFieldOutOfRange);       // height
  CHECK(parse_with_u32(20, 65536) == ParseStatus::kFieldOutOfRange);
  CHECK(parse_with_u8(24, 2) == ParseStatus::kFieldOutOfRange);        // channels
  CHECK(parse_with_u8(24, 4) == ParseStatus::kFieldOutOfRange);
  CHECK(parse_with_u8(25, 10) == ParseStatus::kFieldOutOfRange);       // bit_depth
  CHECK(parse_with_u8(26, 0) == ParseStatus::kFieldOutOfRange);        // quality
  CHECK(parse_with_u8(26, 101) == ParseStatus::kFieldOutOfRange);
  CHECK(parse_with_u8(27, 1) == ParseStatus::kFieldOutOfRange);        // reserved
  CHECK(parse_with_u16(28, 8) == ParseStatus::kFieldOutOfRange);       // tile_size
  CHECK(parse_with_u16(28, 24) == ParseStatus::kFieldOutOfRange);
  CHECK(parse_with_u16(28, 4112) == ParseStatus::kFieldOutOfRange);
  CHECK(parse_with_u16(30, 1) == ParseStatus::kFieldOutOfRange);       // reserved
}

void field_range_check_names_the_field() {
  FileHeader h = sample_header(false);
  CHECK(file_header_field_out_of_range(h) == nullptr);
  h.bit_depth = 9;
  CHECK(std::strcmp(file_header_field_out_of_range(h), "bit_depth") == 0);
  h = sample_header(false);
  h.tile_size = 40;
  CHECK(std::strcmp(file_header_field_out_of_range(h), "tile_size") == 0);
}

void edge_values_of_every_range_are_accepted() {
  FileHeader h = sample_header(false);
  h.width = 65535;
  h.height = 1;
  h.channels = 1;
  h.bit_depth = 16;
  h.quality = 100;
  h.tile_size = 4096;
  h.tile_count = expected_tile_count(h.width, h.height, h.tile_size);
  CHECK(parse(header_bytes(h)) == ParseStatus::kOk);
  h.width = 1;
  h.quality = 1;
  h.bit_depth = 8;
  h.tile_size = 16;
  h.tile_count = 1;
  CHECK(parse(header_bytes(h)) == ParseStatus::kOk);
}

void wrong_tile_count_is_a_mismatch() {
  CHECK(parse_with_u32(32, 13) == ParseStatus::kTileCountMismatch);
  CHECK(parse_with_u32(32, 0) == ParseStatus::kTileCountMismatch);
}

void every_status_has_a_message() {
  for (int s = 0; s <= int(ParseStatus::kTileCountMismatch); ++s) {
    const char* m = parse_status_message(ParseStatus(s));
    CHECK(m != nullptr && std::strlen(m) > 1);
  }
  CHECK(std::strstr(parse_status_message(ParseStatus::kBadMagic), "not a pymars file") != nullptr);
}

// ---------------------------------------------------------------- tile records

void record_header_round_trips() {
  const uint8_t payload[5] = {1, 2, 3, 4, 5};
  const TileRecordHeader h = make_tile_record_header(7, 0x1234, kNoReference, payload, 5);
  uint8_t b[kTileRecordHeaderBytes];
  CHECK(write_tile_record_header(h, b, sizeof b) == 24);
  CHECK(std::memcmp(b, "PMTL", 4) == 0 && b[4] == 7 && b[8] == 5);
  CHECK(b[12] == 0x34 && b[13] == 0x12 && b[14] == 0xFF && b[15] == 0xFF);
  TileRecordHeader back;
  CHECK(parse_tile_record_header(b, sizeof b, &back));
  CHECK(back.tile_index == 7 && back.payload_length == 5 && back.entropy_ref == 0x1234);
  CHECK(back.decoder_ref == kNoReference && back.payload_crc == crc32(payload, 5));
  CHECK(write_tile_record_header(h, b, 23) == 0);
}

void record_header_with_a_wrong_crc_is_refused() {
  uint8_t b[kTileRecordHeaderBytes];
  write_tile_record_header(make_tile_record_header(1, 0, 0, nullptr, 0), b, sizeof b);
  TileRecordHeader out;
  for (size_t byte = 0; byte < sizeof b; ++byte) {
    b[byte] ^= 0x40;
    CHECK(!parse_tile_record_header(b, sizeof b, &out));
    b[byte] ^= 0x40;
  }
  CHECK(!parse_tile_record_header(b, 23, &out));
}

// ---------------------------------------------------------------- scanning

void intact_file_yields_every_payload() {
  const SyntheticFile f = make_file(9, 11);
  ScanSummary s;
  const std::vector<TileSpan> spans = scan(f.bytes, 9, &s);
  for (uint32_t i = 0; i < 9; ++i) CHECK(span_is_intact(f.bytes, spans[i], f.payload[i]));
  CHECK(s.tiles_present == 9 && s.records_damaged == 0 && s.records_ignored == 0);
  CHECK(s.bytes_skipped == 0);
}

void empty_record_area_means_every_tile_missing() {
  const std::vector<TileSpan> spans = scan({}, 4);
  for (const TileSpan& span : spans) CHECK(span.state == TileState::kMissing);
}

void truncation_at_every_offset_keeps_every_complete_record() {
  const SyntheticFile f = make_file(7, 12);
  for (size_t cut = 0; cut <= f.bytes.size(); ++cut) {
    const std::vector<uint8_t> part(f.bytes.begin(), f.bytes.begin() + long(cut));
    const std::vector<TileSpan> spans = scan(part, 7);
    for (uint32_t i = 0; i < 7; ++i) {
      if (f.record_end[i] <= cut) CHECK(span_is_intact(part, spans[i], f.payload[i]));
      else CHECK(spans[i].state == TileState::kMissing);
    }
  }
}

void single_bit_flip_costs_only_the_touched_tile() {
  const SyntheticFile f = make_file(6, 13);
  for (size_t byte = 0; byte < f.bytes.size(); ++byte) {
    for (unsigned bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> b = f.bytes;
      b[byte] ^= uint8_t(1u << bit);
      const std::vector<TileSpan> spans = scan(b, 6);
      for (uint32_t i = 0; i < 6; ++i) {
        const bool touched = f.record_begin[i] <= byte && byte < f.record_end[i];
        if (touched) CHECK(spans[i].state != TileState::kPresent);
        else CHECK(span_is_intact(b, spans[i], f.payload[i]));
      }
    }
  }
}

void damaged_payload_is_reported_as_bad_payload() {
  SyntheticFile f = make_file(3, 14);
  f.bytes[f.record_end[1] - 1] ^= 0xFF;  // last payload byte of tile 1
  ScanSummary s;
  const std::vector<TileSpan> spans = scan(f.bytes, 3, &s);
  CHECK(spans[1].state == TileState::kBadPayload);
  CHECK(span_is_intact(f.bytes, spans[2], f.payload[2]));
  CHECK(s.records_damaged == 1 && s.tiles_present == 2);
}

void garbage_between_records_is_skipped() {
  const SyntheticFile f = make_file(4, 15);
  std::vector<uint8_t> b(f.bytes.begin(), f.bytes.begin() + long(f.record_end[1]));
  const uint8_t junk[] = {'P', 'M', 'T', 'L', 0, 1, 2, 3, 'P', 'M', 'T', 'x', 9, 9};
  b.insert(b.end(), junk, junk + sizeof junk);
  b.insert(b.end(), f.bytes.begin() + long(f.record_end[1]), f.bytes.end());
  ScanSummary s;
  const std::vector<TileSpan> spans = scan(b, 4, &s);
  for (uint32_t i = 0; i < 4; ++i) CHECK(spans[i].state == TileState::kPresent);
  CHECK(s.bytes_skipped == sizeof junk);
}

void deleted_payload_bytes_lose_only_that_tile() {
  const SyntheticFile f = make_file(5, 16);
  std::vector<uint8_t> b = f.bytes;
  // Tile 3 has a payload of 21 bytes: drop two of them.
  b.erase(b.begin() + long(f.record_begin[3] + 30), b.begin() + long(f.record_begin[3] + 32));
  const std::vector<TileSpan> spans = scan(b, 5);
  CHECK(spans[3].state != TileState::kPresent);
  for (uint32_t i : {0u, 1u, 2u, 4u}) CHECK(span_is_intact(b, spans[i], f.payload[i]));
}

void duplicate_record_is_ignored() {
  const SyntheticFile f = make_file(3, 17);
  std::vector<uint8_t> b(f.bytes.begin(), f.bytes.begin() + long(f.record_end[1]));
  std::vector<uint8_t> other(5, 0x77);
  append_record(b, 1, other);  // second record for tile 1, different content
  b.insert(b.end(), f.bytes.begin() + long(f.record_end[1]), f.bytes.end());
  ScanSummary s;
  const std::vector<TileSpan> spans = scan(b, 3, &s);
  CHECK(span_is_intact(b, spans[1], f.payload[1]));  // the first one wins
  CHECK(span_is_intact(b, spans[2], f.payload[2]));
  CHECK(s.records_ignored == 1);
}

void out_of_range_tile_index_is_ignored() {
  const SyntheticFile f = make_file(2, 18);
  std::vector<uint8_t> b;
  append_record(b, 2, std::vector<uint8_t>(4, 1));  // tile_count is 2
  append_record(b, 0xFFFFFFFFu, std::vector<uint8_t>(4, 2));
  b.insert(b.end(), f.bytes.begin(), f.bytes.end());
  ScanSummary s;
  const std::vector<TileSpan> spans = scan(b, 2, &s);
  for (uint32_t i = 0; i < 2; ++i) CHECK(span_is_intact(b, spans[i], f.payload[i]));
  CHECK(s.records_ignored == 2);
}

void intact_copy_after_a_bad_payload_is_used() {
  const std::vector<uint8_t> p(8, 0x42);
  std::vector<uint8_t> b;
  append_record(b, 0, p);
  b[kTileRecordHeaderBytes + 3] ^= 1;  // payload damaged
  append_record(b, 0, p);            // retransmitted copy
  const std::vector<TileSpan> spans = scan(b, 1);
  CHECK(span_is_intact(b, spans[0], p));
}

void payload_length_beyond_the_end_is_missing() {
  std::vector<uint8_t> b;
  append_record(b, 0, std::vector<uint8_t>(10, 3));
  b.resize(b.size() - 1);
  ScanSummary s;
  const std::vector<TileSpan> spans = scan(b, 1, &s);
  CHECK(spans[0].state == TileState::kMissing);
  CHECK(s.records_damaged == 1);
}

void records_in_any_order_are_found_by_index() {
  const SyntheticFile f = make_file(3, 19);
  std::vector<uint8_t> b;
  for (int i : {2, 0, 1})
    b.insert(b.end(), f.bytes.begin() + long(f.record_begin[size_t(i)]),
             f.bytes.begin() + long(f.record_end[size_t(i)]));
  const std::vector<TileSpan> spans = scan(b, 3);
  for (uint32_t i = 0; i < 3; ++i) CHECK(span_is_intact(b, spans[i], f.payload[i]));
}

void random_garbage_never_crashes_the_scanner() {
  TestRng rng(20);
  for (int trial = 0; trial < 300; ++trial) {
    const SyntheticFile f = make_file(1 + rng.below(6), rng.next());
    std::vector<uint8_t> b = f.bytes;
    const uint32_t edits = rng.below(8);
    for (uint32_t e = 0; e < edits && !b.empty(); ++e) {
      switch (rng.below(3)) {
        case 0: b[rng.below(uint32_t(b.size()))] = uint8_t(rng.next()); break;
        case 1: b.erase(b.begin() + long(rng.below(uint32_t(b.size())))); break;
        default: b.insert(b.begin() + long(rng.below(uint32_t(b.size()))), uint8_t(rng.next()));
      }
    }
    const uint32_t tiles = uint32_t(f.payload.size());
    const std::vector<TileSpan> spans = scan(b, tiles);
    for (const TileSpan& span : spans)
      if (span.state == TileState::kPresent)
        CHECK(span.payload_offset + span.payload_length <= b.size());
  }
}

void intact_file_has_no_trailing_bytes() {
  const SyntheticFile f = make_file(4, 21);
  ScanSummary s;
  scan(f.bytes, 4, &s);
  CHECK(s.trailing_bytes == 0 && s.bytes_skipped == 0);
}

void appended_bytes_and_a_concatenated_copy_are_trailing() {
  const SyntheticFile f = make_file(3, 22);
  std::vector<uint8_t> b = f.bytes;
  b.insert(b.end(), {1, 2, 3, 4, 5});
  ScanSummary s;
  scan(b, 3, &s);
  CHECK(s.trailing_bytes == 5 && s.bytes_skipped == 5 && s.tiles_present == 3);
  std::vector<uint8_t> twice = f.bytes;
  twice.insert(twice.end(), f.bytes.begin(), f.bytes.end());  // every record of the copy is a duplicate
  scan(twice, 3, &s);
  CHECK(s.trailing_bytes == f.bytes.size() && s.records_ignored == 3 && s.tiles_present == 3);
}

void a_file_without_an_accepted_record_is_all_trailing() {
  std::vector<uint8_t> b(100, 0x55);
  ScanSummary s;
  scan(b, 2, &s);
  CHECK(s.trailing_bytes == 100 && s.tiles_present == 0);
}

void valid_record_check_agrees_with_the_scanner() {
  const SyntheticFile f = make_file(3, 23);
  CHECK(has_valid_tile_record(f.bytes.data(), f.bytes.size(), 3));
  CHECK(!has_valid_tile_record(f.bytes.data(), 0, 3));
  CHECK(!has_valid_tile_record(nullptr, 10, 3));
  std::vector<uint8_t> garbage(500, 0);
  CHECK(!has_valid_tile_record(garbage.data(), garbage.size(), 3));
  // Only out-of-range indices, a bad payload CRC or a cut-off payload: nothing to accept.
  std::vector<uint8_t> b;
  append_record(b, 7, std::vector<uint8_t>(4, 1));
  CHECK(!has_valid_tile_record(b.data(), b.size(), 3) && has_valid_tile_record(b.data(), b.size(), 8));
  b[kTileRecordHeaderBytes] ^= 1;
  CHECK(!has_valid_tile_record(b.data(), b.size(), 8));
  std::vector<uint8_t> cut;
  append_record(cut, 0, std::vector<uint8_t>(9, 2));
  cut.pop_back();
  CHECK(!has_valid_tile_record(cut.data(), cut.size(), 1));
  TestRng rng(24);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> m = make_file(1 + rng.below(4), rng.next()).bytes;
    for (uint32_t e = rng.below(12); e > 0 && !m.empty(); --e) m[rng.below(uint32_t(m.size()))] = uint8_t(rng.next());
    const uint32_t tiles = 1 + rng.below(4);
    ScanSummary s;
    scan(m, tiles, &s);
    CHECK(has_valid_tile_record(m.data(), m.size(), tiles) == (s.tiles_present > 0));
  }
}

void crc_of_any_range_from_checkpoints_is_the_direct_crc() {
  TestRng rng(25);
  std::vector<uint8_t> d(5000);
  for (auto& b : d) b = uint8_t(rng.next());
  std::vector<uint32_t> cp(crc_checkpoint_count(d.size()));
  make_crc_checkpoints(d.data(), d.size(), cp.data());
  CHECK(cp.back() == crc32(d.data(), (cp.size() - 1) * kCrcCheckpointStride));
  for (int trial = 0; trial < 2000; ++trial) {
    size_t a = rng.below(uint32_t(d.size() + 1)), b = rng.below(uint32_t(d.size() + 1));
    if (a > b) std::swap(a, b);
    CHECK(crc32_range(d.data(), a, b, cp.data()) == crc32(d.data() + a, b - a));
  }
  CHECK(crc32_range(d.data(), 0, d.size(), cp.data()) == crc32(d.data(), d.size()));
}

void scan_with_checkpoints_finds_the_same_spans() {
  TestRng rng(26);
  for (int trial = 0; trial < 200; ++trial) {
    const SyntheticFile f = make_file(1 + rng.below(8), rng.next());
    std::vector<uint8_t> b = f.bytes;
    for (uint32_t e = rng.below(6); e > 0 && !b.empty(); --e) b[rng.below(uint32_t(b.size()))] = uint8_t(rng.next());
    const uint32_t tiles = uint32_t(f.payload.size());
    std::vector<uint32_t> cp(crc_checkpoint_count(b.size()));
    make_crc_checkpoints(b.data(), b.size(), cp.data());
    std::vector<TileSpan> plain(tiles), fast(tiles);
    const ScanSummary s1 = scan_tile_records(b.data(), b.size(), tiles, plain.data());
    const ScanSummary s2 = scan_tile_records(b.data(), b.size(), tiles, fast.data(), cp.data());
    CHECK(s1.tiles_present == s2.tiles_present && s1.bytes_skipped == s2.bytes_skipped &&
          s1.trailing_bytes == s2.trailing_bytes && s1.records_damaged == s2.records_damaged);
    for (uint32_t i = 0; i < tiles; ++i)
      CHECK(plain[i].state == fast[i].state && plain[i].payload_offset == fast[i].payload_offset);
    CHECK(has_valid_tile_record(b.data(), b.size(), tiles, cp.data()) == (s1.tiles_present > 0));
  }
}

void min_complete_file_bytes_counts_every_record_header() {
  FileHeader h;
  h.width = 16384;
  h.height = 16384;
  h.tile_size = 256;
  h.tile_count = 4096;
  CHECK(min_complete_file_bytes(h) == 40 + 4096u * 24u);
  h.width = h.height = 65535;
  h.tile_size = 16;
  h.tile_count = expected_tile_count(65535, 65535, 16);
  CHECK(min_complete_file_bytes(h) == 40 + uint64_t(4096) * 4096 * 24);
}

}  // namespace

int main() {
  RUN_TEST(header_round_trips_without_library);
  RUN_TEST(header_round_trips_with_library_hash);
  RUN_TEST(header_fields_sit_at_the_spec_offsets);
  RUN_TEST(header_bytes_after_header_length_are_not_read);
  RUN_TEST(writer_refuses_a_too_small_buffer);
  RUN_TEST(writer_refuses_a_header_the_parser_would_refuse);
  RUN_TEST(tile_count_is_the_product_of_rounded_up_grid_sides);
  RUN_TEST(every_prefix_of_a_header_is_truncated);
  RUN_TEST(wrong_magic_is_bad_magic);
  RUN_TEST(other_version_is_unknown_version);
  RUN_TEST(undefined_flag_bit_is_unknown_flags);
  RUN_TEST(sequence_id_round_trips_after_the_library_hash);
  RUN_TEST(source_depth_flag_needs_a_high_bit_depth);
  RUN_TEST(header_length_disagreeing_with_flags_is_refused);
  RUN_TEST(any_damaged_header_byte_is_caught);
  RUN_TEST(field_out_of_range_is_refused);
  RUN_TEST(field_range_check_names_the_field);
  RUN_TEST(edge_values_of_every_range_are_accepted);
  RUN_TEST(wrong_tile_count_is_a_mismatch);
  RUN_TEST(every_status_has_a_message);
  RUN_TEST(record_header_round_trips);
  RUN_TEST(record_header_with_a_wrong_crc_is_refused);
  RUN_TEST(intact_file_yields_every_payload);
  RUN_TEST(empty_record_area_means_every_tile_missing);
  RUN_TEST(truncation_at_every_offset_keeps_every_complete_record);
  RUN_TEST(single_bit_flip_costs_only_the_touched_tile);
  RUN_TEST(damaged_payload_is_reported_as_bad_payload);
  RUN_TEST(garbage_between_records_is_skipped);
  RUN_TEST(deleted_payload_bytes_lose_only_that_tile);
  RUN_TEST(duplicate_record_is_ignored);
  RUN_TEST(out_of_range_tile_index_is_ignored);
  RUN_TEST(intact_copy_after_a_bad_payload_is_used);
  RUN_TEST(payload_length_beyond_the_end_is_missing);
  RUN_TEST(records_in_any_order_are_found_by_index);
  RUN_TEST(random_garbage_never_crashes_the_scanner);
  RUN_TEST(intact_file_has_no_trailing_bytes);
  RUN_TEST(appended_bytes_and_a_concatenated_copy_are_trailing);
  RUN_TEST(a_file_without_an_accepted_record_is_all_trailing);
  RUN_TEST(valid_record_check_agrees_with_the_scanner);
  RUN_TEST(min_complete_file_bytes_counts_every_record_header);
  RUN_TEST(crc_of_any_range_from_checkpoints_is_the_direct_crc);
  RUN_TEST(scan_with_checkpoints_finds_the_same_spans);
  const int failures = pymars_test::failure_count();
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
