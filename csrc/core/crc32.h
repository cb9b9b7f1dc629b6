// crc32.h - CRC-32 as used by the bitstream (docs/bitstream.md): IEEE 802.3,
// reflected polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF.
// The result equals Python's zlib.crc32 / binascii.crc32.
//
// The interface follows zlib's convention so that a CRC can be computed in
// pieces: crc32(b, n2, crc32(a, n1)) == crc32(a||b). The lookup table is a
// compile-time constant (1 KiB of read-only data); nothing allocates and
// nothing depends on host byte order.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pymars {

// CRC-32 of data[0..len), continuing from `previous` (the CRC of the bytes
// before, 0 for none).
uint32_t crc32(const uint8_t* data, size_t len, uint32_t previous = 0);

}  // namespace pymars
