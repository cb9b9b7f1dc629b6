// rans.h - the tile payload's entropy coder: 32-bit byte-wise rANS
// (docs/bitstream.md §4.1) and the signed-value code with escape (§4.3).
//
// READ ME FIRST
// 1. rANS is a stack. The encoder must be fed the symbols in REVERSE decoding
//    order; put_value() already pushes its own parts (escape, length, payload
//    bits) in the right reversed order, so a caller only reverses the order of
//    whole values.
// 2. The encoder writes backwards, from the end of the caller's buffer towards
//    its beginning. finish() reports where the finished stream starts; it lies
//    at the END of the buffer, not the beginning.
// 3. Neither side ever leaves its buffer. The encoder sets an overflow flag when
//    the buffer is too small; the decoder sets an error flag on any
//    inconsistency (short input, impossible state, bad table, out-of-range
//    value) and goes on feeding zero bytes, so a caller may check once at the
//    end of a tile. Every loop is bounded, so garbage input cannot hang it.
//
// Why this shape: the same header runs on the rover (32-bit PowerPC, no heap,
// no exceptions) and in the ground decoder. So: one 32-bit state, only 32-bit
// multiplies and divides on the hot path, byte-wise I/O only (independent of
// host byte order and alignment), no allocation, no libm, no global state.
// It must not grow features that change the bitstream; the spec page is the
// authority and this file follows it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pymars {

// Lower end of the normalisation interval [L, 256 L). 2^23 leaves the state
// one byte of headroom below 2^31, so x_max = ((L >> 16) << 8) * freq stays
// below 2^32 for every freq <= 2^16 and fits a uint32_t.
constexpr uint32_t kRansL = 1u << 23;
// Probability precision: every table sums to 2^16.
constexpr unsigned kRansPrecisionBits = 16;
constexpr uint32_t kRansTotal = 1u << kRansPrecisionBits;
// Encoders never produce |v| above this (§4.3); decoders reject it.
constexpr int32_t kRansMaxAbsValue = 1 << 20;
// Escape tail: n = floor(log2(u + 1)) is sent in 5 bits but only 0..30 is legal.
constexpr uint32_t kRansMaxEscapeBits = 30;
// Worst case bytes one put_value() can emit: escape symbol + 5-bit length +
// two payload chunks = 4 symbols, each emitting at most 2 bytes (x < 2^31
// and x_max >= 2^15). Plus the 4 state bytes once per stream.
constexpr size_t kRansMaxBytesPerValue = 8;
constexpr size_t kRansStateBytes = 4;

// An integer CDF table (§4.2): 2*half_width + 3 cumulative counts, cdf[0] = 0,
// last = 65536, strictly increasing. Symbol j in 0..2R stands for the value
// j - R; symbol 2R + 1 is the escape. The table is borrowed, never owned.
struct CdfTable {
  uint32_t half_width;
  const uint32_t* cdf;
};

inline uint32_t cdf_symbol_count(const CdfTable& t) { return 2 * t.half_width + 2; }

// True when the table obeys §4.2. Tables come from the model blob, so the
// loader checks them once; the coders then only guard against what would make
// them misbehave (a zero frequency), not against every malformed table.
inline bool cdf_table_valid(const CdfTable& t) {
  if (t.cdf == nullptr || t.half_width < 1 || t.half_width > (kRansTotal - 2) / 2) return false;
  const uint32_t n = cdf_symbol_count(t);
  if (t.cdf[0] != 0 || t.cdf[n] != kRansTotal) return false;
  for (uint32_t s = 0; s < n; ++s)
    if (t.cdf[s] >= t.cdf[s + 1]) return false;
  return true;
}

// Size of a buffer that always holds a stream of `n_values` put_value() calls.
inline size_t rans_max_stream_bytes(size_t n_values) {
  return n_values * kRansMaxBytesPerValue + kRansStateBytes;
}

class RansEncoder {
 public:
  // The stream is built backwards inside [buf_begin, buf_end).
  RansEncoder(uint8_t* buf_begin, uint8_t* buf_end)
      : begin_(buf_begin), end_(buf_end), ptr_(buf_end), state_(kRansL) {}

  // Pushes one symbol of a 16-bit-precision distribution. freq >= 1 and
  // start + freq <= 65536; anything else sets the error flag and is skipped.
  void put_symbol(uint32_t start, uint32_t freq) {
    if (freq == 0 || start >= kRansTotal || freq > kRansTotal - start) {
      bad_input_ = true;
      return;
    }
    // Renormalise so that the coding step below keeps x < 256 L.
    const uint32_t x_max = ((kRansL >> kRansPrecisionBits) << 8) * freq;
    while (state_ >= x_max) {
      emit_byte(uint8_t(state_ & 0xFF));
      state_ >>= 8;
    }
    state_ = ((state_ / freq) << kRansPrecisionBits) + (state_ % freq) + start;
  }

  // Pushes a value of `bits` bits (1..16) with a flat distribution.
  void put_uniform(uint32_t value, unsigned bits) {
    if (bits < 1 || bits > kRansPrecisionBits || value >= (1u << bits)) {
      bad_input_ = true;
      return;
    }
    const uint32_t freq = 1u << (kRansPrecisionBits - bits);
    put_symbol(value * freq, freq);
  }

  // Pushes a signed value with table t (§4.3). The parts are pushed in the
  // reverse of their decoding order: payload chunks last-first, then the
  // 5-bit length, then the escape symbol.
  void put_value(const CdfTable& t, int32_t v) {
    if (t.cdf == nullptr || v > kRansMaxAbsValue || v < -kRansMaxAbsValue) {
      bad_input_ = true;
      return;
    }
    const int32_t r = int32_t(t.half_width);
    if (v >= -r && v <= r) {
      const uint32_t s = uint32_t(v + r);
      put_symbol(t.cdf[s], t.cdf[s + 1] - t.cdf[s]);
      return;
    }
    // Fold the two tails into one non-negative integer: even = above, odd = below.
    const uint32_t u = v > r ? 2u * uint32_t(v - r - 1) : 2u * uint32_t(-v - r - 1) + 1u;
    const uint32_t w = u + 1;  // >= 1, so it has a leading 1 that need not be sent
    uint32_t n = 0;
    while ((w >> (n + 1)) != 0) ++n;
    // Chunk k holds bits [16k, 16k + 16) of w's n low bits. Decoding reads
    // chunk 0 first, so the highest chunk goes in first.
    const uint32_t chunks = (n + 15) / 16;
    for (uint32_t k = chunks; k-- > 0;) {
      const uint32_t lo = 16 * k;
      const unsigned bits = unsigned(n - lo < 16 ? n - lo : 16);
      put_uniform((w >> lo) & ((1u << bits) - 1u), bits);
    }
    put_uniform(n, 5);
    const uint32_t esc = 2 * t.half_width + 1;
    put_symbol(t.cdf[esc], t.cdf[esc + 1] - t.cdf[esc]);
  }

  // Writes the final state (little-endian, so it is the first 4 bytes of the
  // stream) and returns the stream span. False on overflow or bad input; the
  // span is then meaningless.
  bool finish(const uint8_t** out, size_t* out_len) {
    emit_byte(uint8_t(state_ >> 24));
    emit_byte(uint8_t(state_ >> 16));
    emit_byte(uint8_t(state_ >> 8));
    emit_byte(uint8_t(state_));
    *out = ptr_;
    *out_len = size_t(end_ - ptr_);
    return !overflow_ && !bad_input_;
  }

  bool overflow() const { return overflow_; }
  // A symbol, uniform value or signed value outside what the spec allows.
  bool bad_input() const { return bad_input_; }

 private:
  void emit_byte(uint8_t b) {
    if (ptr_ == begin_) {  // out of room: drop the byte, never write outside
      overflow_ = true;
      return;
    }
    *--ptr_ = b;
  }

  uint8_t* begin_;
  uint8_t* end_;
  uint8_t* ptr_;
  uint32_t state_;
  bool overflow_ = false;
  bool bad_input_ = false;
};

class RansDecoder {
 public:
  // Reads the 4-byte initial state. A state outside [L, 256 L) cannot come
  // from an encoder; it is flagged and replaced by L so that every later step
  // still keeps x >= L (which bounds the renormalisation loop).
  RansDecoder(const uint8_t* data, size_t len) : data_(data), len_(len) {
    if (data_ == nullptr) len_ = 0;
    uint32_t x = 0;
    for (unsigned i = 0; i < 4; ++i) x |= uint32_t(next_byte()) << (8 * i);
    if (x < kRansL || x >= (kRansL << 8)) {
      error_ = true;
      x = kRansL;
    }
    state_ = x;
  }

  // Decodes one symbol of the table cdf[0..n_symbols] (cdf[n_symbols] must be
  // 65536) by binary search over the cumulative counts.
  uint32_t get_symbol(const uint32_t* cdf, uint32_t n_symbols) {
    if (cdf == nullptr || n_symbols == 0 || n_symbols > kRansTotal) {
      error_ = true;
      return 0;
    }
    const uint32_t slot = state_ & (kRansTotal - 1);
    uint32_t lo = 0, hi = n_symbols;  // find the last s with cdf[s] <= slot
    while (hi - lo > 1) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (cdf[mid] <= slot) lo = mid; else hi = mid;
    }
    // A valid table always passes; a broken one must not yield freq = 0,
    // which would let the state collapse to 0 and the loop below spin.
    if (!(cdf[lo] <= slot && slot < cdf[lo + 1])) {
      error_ = true;
      return 0;
    }
    advance(cdf[lo], cdf[lo + 1] - cdf[lo], slot);
    return lo;
  }

  uint32_t get_uniform(unsigned bits) {
    if (bits < 1 || bits > kRansPrecisionBits) {
      error_ = true;
      return 0;
    }
    const unsigned shift = kRansPrecisionBits - bits;
    const uint32_t slot = state_ & (kRansTotal - 1);
    const uint32_t value = slot >> shift;
    advance(value << shift, 1u << shift, slot);
    return value;
  }

  // Decodes a signed value with table t (§4.3). False (and the error flag) on
  // a length n > 30 or |v| > 2^20; *v is then 0. Symbols keep being consumed
  // in the normal order so the error does not depend on the caller's checks.
  bool get_value(const CdfTable& t, int32_t* v) {
    *v = 0;
    if (t.cdf == nullptr) {
      error_ = true;
      return false;
    }
    const uint32_t s = get_symbol(t.cdf, cdf_symbol_count(t));
    if (s != 2 * t.half_width + 1) {
      *v = int32_t(s) - int32_t(t.half_width);
      return !error_;
    }
    const uint32_t n = get_uniform(5);
    if (n > kRansMaxEscapeBits) {
      error_ = true;
      return false;
    }
    uint32_t w = 1u << n;
    for (uint32_t lo = 0; lo < n; lo += 16) {
      const unsigned bits = unsigned(n - lo < 16 ? n - lo : 16);
      w |= get_uniform(bits) << lo;
    }
    const uint32_t u = w - 1;  // < 2^31
    // |v| = u/2 + R + 1 with u < 2^31 and R < 2^15: fits below 2^31.
    const uint32_t magnitude = (u >> 1) + t.half_width + 1;
    if (magnitude > uint32_t(kRansMaxAbsValue)) {
      error_ = true;
      return false;
    }
    *v = (u & 1) ? -int32_t(magnitude) : int32_t(magnitude);
    return !error_;
  }

  // The §4.1 end-of-tile check: final state L, every byte read, no error.
  bool finish_ok() const { return !error_ && state_ == kRansL && pos_ == len_; }
  bool error() const { return error_; }
  size_t bytes_consumed() const { return pos_; }

 private:
  uint8_t next_byte() {
    if (pos_ >= len_) {  // reading past the payload end is an error (§4.1)
      error_ = true;
      return 0;
    }
    return data_[pos_++];
  }

  // The coding step of §4.1 followed by renormalisation. Because x >= L on
  // entry and freq >= 1, the new x is >= L >> 16 = 128 > 0, so at most two
  // bytes bring it back to >= L even if they are zeros from exhausted input.
  void advance(uint32_t start, uint32_t freq, uint32_t slot) {
    state_ = freq * (state_ >> kRansPrecisionBits) + slot - start;
    while (state_ < kRansL) state_ = (state_ << 8) | next_byte();
  }

  const uint8_t* data_;
  size_t len_;
  size_t pos_ = 0;
  uint32_t state_ = kRansL;
  bool error_ = false;
};

}  // namespace pymars
