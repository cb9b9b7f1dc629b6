// bytes.h - little-endian reads and writes, one byte at a time.
//
// Why: the bitstream and the weight blob are little-endian files that must be
// read identically on x86-64, aarch64 and big-endian 32-bit PowerPC. Reading
// through byte shifts never depends on the host byte order or on alignment,
// and memcpy of a 32-bit pattern into a float is the one portable way to
// rebuild an IEEE binary32 value. Nothing here allocates.
#pragma once
#include <cstdint>
#include <cstring>

namespace pymars {

inline uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (uint32_t(p[1]) << 8)); }
inline uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
inline int32_t load_i32(const uint8_t* p) {
  uint32_t u = load_u32(p);
  int32_t v;
  std::memcpy(&v, &u, 4);  // two's complement on every supported target
  return v;
}
inline float load_f32(const uint8_t* p) {
  uint32_t u = load_u32(p);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline void store_u16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
inline void store_u32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}

// A bounds-checked forward reader over an immutable byte span. Every read
// past the end sets `failed` and returns 0, so parsers check once at the end.
struct ByteReader {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  bool failed = false;

  ByteReader(const uint8_t* d, size_t n) : data(d), size(n) {}
  bool has(size_t n) const { return !failed && n <= size - pos; }
  const uint8_t* take(size_t n) {
    if (!has(n)) {
      failed = true;
      return nullptr;
    }
    const uint8_t* p = data + pos;
    pos += n;
    return p;
  }
  uint32_t u32() {
    const uint8_t* p = take(4);
    return p ? load_u32(p) : 0;
  }
  uint16_t u16() {
    const uint8_t* p = take(2);
    return p ? load_u16(p) : 0;
  }
  void align4() {
    size_t pad = (4 - (pos & 3)) & 3;
    take(pad);
  }
};

}  // namespace pymars
