// sha256.h - SHA-256 (FIPS 180-4) for the header's model_id and library_hash
// (docs/bitstream.md §1): the first 8 bytes of the digest of the encoder
// weight blob and of the reference library.
//
// Incremental: feed any number of update() calls, then finish(). The hasher is
// a plain value (no heap, no globals), processes bytes one at a time into a
// 64-byte block (so it is independent of host byte order and alignment) and
// uses only 32-bit arithmetic in the compression function. It is not meant to
// be fast or constant-time; it hashes a few files once per image.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pymars {

constexpr size_t kSha256DigestBytes = 32;

class Sha256 {
 public:
  Sha256();
  void update(const uint8_t* data, size_t len);
  // Writes the 32-byte digest. The hasher must not be updated afterwards
  // (start a new one).
  void finish(uint8_t digest[kSha256DigestBytes]);

 private:
  void compress_block(const uint8_t* block);  // 64 bytes: the buffered block or the caller's

  uint32_t h_[8];
  uint8_t block_[64];
  uint32_t block_fill_ = 0;
  uint64_t total_bytes_ = 0;
};

// One-shot convenience.
void sha256(const uint8_t* data, size_t len, uint8_t digest[kSha256DigestBytes]);

}  // namespace pymars
