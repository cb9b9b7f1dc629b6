// fuzz_container.cpp - libFuzzer target: the container parser on arbitrary bytes.
//
// Runs parse_file_header() and scan_tile_records() (docs/bitstream.md §1, §3)
// on the input, and checks what they promise beyond "no crash":
//  * a header that parses writes back to the very same bytes;
//  * every tile the scanner reports present lies inside the input, behind a
//    record header with a valid CRC and its own index, and its payload CRC
//    matches; the summary counts agree with the spans.
//  * the scan with CRC checkpoints (the ground decoder's O(len) path) finds
//    exactly what the plain scan finds; has_valid_tile_record() is true
//    exactly when the scan accepted a record; trailing bytes are skipped bytes.
// The scanner also runs on the raw input with a tile count taken from its
// first byte, so it is exercised without a CRC-valid file header.
//
// Build and run: scripts/fuzz.sh [SECONDS] (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/container.h"
#include "core/crc32.h"

using namespace pymars;

namespace {

// A harness limit, not a format one (tile indices at or above it count as out of
// range in the scan): a 65535 x 65535 image with 16-pixel tiles
// has 16.8 M tiles; the span arrays for that are allowed, but slow to fuzz
// (the decoder allocates them only after has_valid_tile_record(), see
// csrc/python/bindings.cpp DecodeStream).
constexpr uint32_t kMaxFuzzTiles = 1u << 8;

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

void check_scan(const uint8_t* records, size_t len, uint32_t tile_count) {
  std::vector<TileSpan> spans(tile_count), fast(tile_count);
  const ScanSummary sum = scan_tile_records(records, len, tile_count, spans.data());
  std::vector<uint32_t> checkpoints(crc_checkpoint_count(len));
  make_crc_checkpoints(records, len, checkpoints.data());
  const ScanSummary fast_sum = scan_tile_records(records, len, tile_count, fast.data(), checkpoints.data());
  FUZZ_CHECK(fast_sum.tiles_present == sum.tiles_present && fast_sum.bytes_skipped == sum.bytes_skipped &&
             fast_sum.trailing_bytes == sum.trailing_bytes && fast_sum.records_damaged == sum.records_damaged &&
             fast_sum.records_ignored == sum.records_ignored);
  for (uint32_t i = 0; i < tile_count; ++i)
    FUZZ_CHECK(fast[i].state == spans[i].state && fast[i].payload_offset == spans[i].payload_offset &&
               fast[i].payload_length == spans[i].payload_length);
  FUZZ_CHECK(has_valid_tile_record(records, len, tile_count) == (sum.tiles_present > 0));
  FUZZ_CHECK(has_valid_tile_record(records, len, tile_count, checkpoints.data()) == (sum.tiles_present > 0));
  FUZZ_CHECK(sum.trailing_bytes <= sum.bytes_skipped && sum.trailing_bytes <= len);
  FUZZ_CHECK(sum.tiles_present > 0 || sum.trailing_bytes == len);
  uint32_t present = 0;
  for (uint32_t i = 0; i < tile_count; ++i) {
    const TileSpan& s = spans[i];
    if (s.state != TileState::kPresent) continue;
    ++present;
    FUZZ_CHECK(s.payload_offset >= kTileRecordHeaderBytes);
    FUZZ_CHECK(s.payload_offset <= len && s.payload_length <= len - s.payload_offset);
    TileRecordHeader rh;
    FUZZ_CHECK(parse_tile_record_header(records + s.payload_offset - kTileRecordHeaderBytes, kTileRecordHeaderBytes, &rh));
    FUZZ_CHECK(rh.tile_index == i && rh.payload_length == s.payload_length);
    FUZZ_CHECK(rh.entropy_ref == s.entropy_ref && rh.decoder_ref == s.decoder_ref);
    FUZZ_CHECK(crc32(records + s.payload_offset, s.payload_length) == rh.payload_crc);
  }
  FUZZ_CHECK(present == sum.tiles_present);
  FUZZ_CHECK(sum.bytes_skipped <= len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FileHeader h;
  const ParseStatus st = parse_file_header(data, size, &h);
  FUZZ_CHECK(parse_status_message(st) != nullptr);
  if (st == ParseStatus::kOk) {
    FUZZ_CHECK(h.header_length == kFileHeaderBytes || h.header_length == kFileHeaderBytesWithLibrary);
    FUZZ_CHECK(h.header_length <= size);
    FUZZ_CHECK(h.tile_count == expected_tile_count(h.width, h.height, h.tile_size) && h.tile_count > 0);
    FUZZ_CHECK(file_header_field_out_of_range(h) == nullptr);
    uint8_t again[kFileHeaderMaxBytes];
    FUZZ_CHECK(write_file_header(h, again, sizeof again) == h.header_length);
    for (size_t i = 0; i < h.header_length; ++i) FUZZ_CHECK(again[i] == data[i]);
    // Larger grids are scanned as if they had kMaxFuzzTiles tiles: the same code, cheaper spans.
    check_scan(data + h.header_length, size - h.header_length, h.tile_count < kMaxFuzzTiles ? h.tile_count : kMaxFuzzTiles);
  }
  check_scan(data, size, size ? 1u + data[0] % 64u : 1u);
  return 0;
}
