// sha256.cpp - FIPS 180-4 SHA-256 (see sha256.h). Written from the standard's
// description: message schedule of 64 words, eight working variables, padding
// with 0x80, zeros and the 64-bit big-endian message length in bits.
#include "sha256.h"

namespace pymars {
namespace {

// First 32 bits of the fractional parts of the cube roots of the first 64
// primes (FIPS 180-4 §4.2.2).
constexpr uint32_t kRoundConstants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// First 32 bits of the fractional parts of the square roots of the first 8
// primes (FIPS 180-4 §5.3.3).
constexpr uint32_t kInitialHash[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

inline uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

}  // namespace

Sha256::Sha256() {
  for (int i = 0; i < 8; ++i) h_[i] = kInitialHash[i];
}

void Sha256::update(const uint8_t* data, size_t len) {
  total_bytes_ += len;
  // Top up a partly filled block first; whole blocks are then hashed straight
  // from the caller's bytes (no copy: the encoder hashes its multi-megabyte
  // blob at every start-up), and the tail waits in block_.
  while (block_fill_ != 0 && len != 0) {
    block_[block_fill_++] = *data++;
    --len;
    if (block_fill_ == 64) {
      compress_block(block_);
      block_fill_ = 0;
    }
  }
  for (; len >= 64; data += 64, len -= 64) compress_block(data);
  while (len--) block_[block_fill_++] = *data++;
}

void Sha256::finish(uint8_t digest[kSha256DigestBytes]) {
  const uint64_t total_bits = total_bytes_ * 8;
  // Padding: a single 1 bit, zeros up to 56 mod 64, then the length.
  block_[block_fill_++] = 0x80;
  if (block_fill_ > 56) {
    while (block_fill_ < 64) block_[block_fill_++] = 0;
    compress_block(block_);
    block_fill_ = 0;
  }
  while (block_fill_ < 56) block_[block_fill_++] = 0;
  for (int i = 7; i >= 0; --i) block_[block_fill_++] = uint8_t(total_bits >> (8 * i));
  compress_block(block_);
  block_fill_ = 0;
  for (int i = 0; i < 8; ++i) {  // the digest is the state words, big-endian
    digest[4 * i + 0] = uint8_t(h_[i] >> 24);
    digest[4 * i + 1] = uint8_t(h_[i] >> 16);
    digest[4 * i + 2] = uint8_t(h_[i] >> 8);
    digest[4 * i + 3] = uint8_t(h_[i]);
  }
}

void Sha256::compress_block(const uint8_t* block) {
  uint32_t w[64];
  for (int t = 0; t < 16; ++t)
    w[t] = (uint32_t(block[4 * t]) << 24) | (uint32_t(block[4 * t + 1]) << 16) |
           (uint32_t(block[4 * t + 2]) << 8) | uint32_t(block[4 * t + 3]);
  for (int t = 16; t < 64; ++t) {
    const uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    const uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int t = 0; t < 64; ++t) {
    const uint32_t big_sigma1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const uint32_t choose = (e & f) ^ (~e & g);
    const uint32_t t1 = h + big_sigma1 + choose + kRoundConstants[t] + w[t];
    const uint32_t big_sigma0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
    const uint32_t t2 = big_sigma0 + majority;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
  h_[5] += f;
  h_[6] += g;
  h_[7] += h;
}

void sha256(const uint8_t* data, size_t len, uint8_t digest[kSha256DigestBytes]) {
  Sha256 hasher;
  hasher.update(data, len);
  hasher.finish(digest);
}

}  // namespace pymars
