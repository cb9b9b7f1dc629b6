// crc32.cpp - table-driven CRC-32 (see crc32.h). The table is built by a
// constexpr function so that it lives in read-only memory and there is no
// run-time initialisation (and therefore no global mutable state).
#include "crc32.h"

namespace pymars {
namespace {

constexpr uint32_t kCrc32Polynomial = 0xEDB88320u;  // reflected 0x04C11DB7

struct Crc32Table {
  uint32_t entry[256];
};

constexpr Crc32Table make_crc32_table() {
  Crc32Table t{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t c = byte;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1u) ? (c >> 1) ^ kCrc32Polynomial : c >> 1;
    t.entry[byte] = c;
  }
  return t;
}

constexpr Crc32Table kCrc32Table = make_crc32_table();

}  // namespace

uint32_t crc32(const uint8_t* data, size_t len, uint32_t previous) {
  uint32_t c = previous ^ 0xFFFFFFFFu;  // undo the final XOR of the previous piece
  for (size_t i = 0; i < len; ++i) c = kCrc32Table.entry[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace pymars
