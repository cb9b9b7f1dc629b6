// range_coder.h - the adaptive binary range coder shared by the sample-domain tile
// coders: near-lossless (nearlossless.h, docs/bitstream.md §4.8) and wavelet
// (wavelet.h, §4.9).
//
// A coder of the LZMA kind (carry propagation through a cached byte), written from
// its published description. Each binary decision has an AdaptiveBit: two 15-bit
// estimates of P(bin = 0), a fast one that follows local statistics and a slow one
// that is precise where they are steady (adaptation rates 2^-FastShift and
// 2^-SlowShift); the coder uses their mean at `ProbBits` precision, clamped to
// [Lo, Hi] so that neither outcome costs more than a bounded number of bits. Integers only: the same bytes on every CPU. No heap.
// It must not know about tiles, samples or contexts: that is the caller's modelling.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pymars {

struct AdaptiveBit {
  uint16_t fast, slow;
};

constexpr uint32_t kAdaptiveStateBits = 15;
constexpr uint32_t kAdaptiveOne = 1u << kAdaptiveStateBits;
constexpr AdaptiveBit kAdaptiveHalf{kAdaptiveOne / 2, kAdaptiveOne / 2};
constexpr uint32_t kRangeTop = 1u << 24;

// Moves both estimates toward the coded bin by 2^-FastShift and 2^-SlowShift.
template <uint32_t FastShift, uint32_t SlowShift>
inline void adapt(AdaptiveBit* p, uint32_t b) {
  // Both moves worked out and one kept: a coded bin is as good as random, so a branch on
  // it mispredicts about as often as the bin is surprising (selects instead: same values).
  const uint32_t f = p->fast, s = p->slow;
  const uint32_t f0 = f + ((kAdaptiveOne - f) >> FastShift), s0 = s + ((kAdaptiveOne - s) >> SlowShift);
  const uint32_t f1 = f - (f >> FastShift), s1 = s - (s >> SlowShift);
  p->fast = uint16_t(b ? f1 : f0);
  p->slow = uint16_t(b ? s1 : s0);
}

// The clamp of coder_prob as a table over every sum the estimates can shift to (2^ProbBits
// entries: 4 KB for §4.8's 11-bit coder, in read-only data): one load where the compare-and-
// select pair costs six instructions, two of them only to hold the bounds in registers.
template <uint32_t ProbBits, uint32_t Lo, uint32_t Hi>
struct ClampTable {
  uint16_t v[1u << ProbBits];
  constexpr ClampTable() : v() {
    for (uint32_t i = 0; i < (1u << ProbBits); ++i) v[i] = uint16_t(i < Lo ? Lo : (i > Hi ? Hi : i));
  }
};
// (static: a read-only copy in each file that codes bins, not a global the linker unifies)
template <uint32_t ProbBits, uint32_t Lo, uint32_t Hi>
static constexpr ClampTable<ProbBits, Lo, Hi> kClampTable{};

// The coder's ProbBits-bit probability of a 0 bin.
template <uint32_t ProbBits, uint32_t Lo, uint32_t Hi>
inline uint32_t coder_prob(const AdaptiveBit& p) {
  static_assert(ProbBits <= kAdaptiveStateBits && Lo > 0 && Hi < (1u << ProbBits) && Lo < Hi, "bad clamp");
  const uint32_t v = (uint32_t(p.fast) + p.slow) >> (kAdaptiveStateBits + 1 - ProbBits);
  if constexpr (ProbBits <= 12) return kClampTable<ProbBits, Lo, Hi>.v[v];  // (v < 2^ProbBits: both < 2^15)
  return v < Lo ? Lo : (v > Hi ? Hi : v);
}

template <uint32_t ProbBits, uint32_t Lo, uint32_t Hi, uint32_t FastShift, uint32_t SlowShift>
struct RangeEncoder {
  uint8_t* out;
  size_t cap, pos = 0;
  uint64_t low = 0;
  uint32_t range = 0xFFFFFFFFu;
  uint8_t cache = 0;
  uint64_t cache_size = 1;
  bool failed = false;

  RangeEncoder(uint8_t* o, size_t c) : out(o), cap(c) {}

  void put(uint8_t v) {
    if (pos >= cap) failed = true;
    else out[pos++] = v;
  }
  void shift_low() {
    if (uint32_t(low) < 0xFF000000u || (low >> 32) != 0) {
      const uint8_t carry = uint8_t(low >> 32);
      uint8_t temp = cache;
      do {
        put(uint8_t(temp + carry));
        temp = 0xFF;
      } while (--cache_size != 0);
      cache = uint8_t(low >> 24);
    }
    ++cache_size;
    low = (low & 0x00FFFFFFu) << 8;
  }
  // One bin with an explicit ProbBits-bit probability of a 0.
  __attribute__((always_inline)) void put_bin(uint32_t prob, uint32_t b) {
    const uint32_t bound = (range >> ProbBits) * prob;
    low += b ? bound : 0u;
    range = b ? range - bound : bound;
    if constexpr (kOneByte) {
      if (range < kRangeTop) {
        range <<= 8;
        shift_low();
      }
    } else {
      while (range < kRangeTop) {
        range <<= 8;
        shift_low();
      }
    }
  }
  // Whether one renormalisation byte always follows a bin: range >= 2^24 before it and
  // both of its parts are at least min(Lo, 2^ProbBits - Hi) / 2^ProbBits of that (2^18
  // for §4.8's coder), so one shift by 8 brings either back to 2^24. The loop is then a test.
  static constexpr bool kOneByte = (Lo << (24 - ProbBits)) >= (1u << 16) &&
                                   (((1u << ProbBits) - Hi) << (24 - ProbBits)) >= (1u << 16);
  __attribute__((always_inline)) void bit(AdaptiveBit* p, uint32_t b) {
    put_bin(coder_prob<ProbBits, Lo, Hi>(*p), b);
    adapt<FastShift, SlowShift>(p, b);
  }
  // One bin coded with the mean of two adaptive probabilities (both adapt): a
  // cheap mix of two context models.
  __attribute__((always_inline)) void bit2(AdaptiveBit* p1, AdaptiveBit* p2, uint32_t b) {
    put_bin((coder_prob<ProbBits, Lo, Hi>(*p1) + coder_prob<ProbBits, Lo, Hi>(*p2) + 1) >> 1, b);
    adapt<FastShift, SlowShift>(p1, b);
    adapt<FastShift, SlowShift>(p2, b);
  }
  void direct(uint32_t v, uint32_t count) {  // count <= 32, equiprobable bits, msb first
    for (uint32_t i = count; i-- > 0;) {
      range >>= 1;
      if ((v >> i) & 1u) low += range;
      while (range < kRangeTop) {
        range <<= 8;
        shift_low();
      }
    }
  }
  // Bytes written, or 0 when they did not fit in cap.
  size_t finish() {
    for (int i = 0; i < 5; ++i) shift_low();
    return failed ? 0 : pos;
  }
};

template <uint32_t ProbBits, uint32_t Lo, uint32_t Hi, uint32_t FastShift, uint32_t SlowShift>
struct RangeDecoder {
  const uint8_t* data;
  size_t len, pos = 0;
  uint32_t range = 0xFFFFFFFFu, code = 0;
  bool failed = false;

  RangeDecoder(const uint8_t* d, size_t n) : data(d), len(n) {}

  uint8_t next() {
    if (pos >= len) {
      failed = true;
      return 0;
    }
    return data[pos++];
  }
  bool start() {
    if (next() != 0) return false;  // the encoder's first byte is always 0
    for (int i = 0; i < 4; ++i) code = (code << 8) | next();
    return !failed && code < range;
  }
  // One bin with an explicit ProbBits-bit probability of a 0.
  uint32_t get_bin(uint32_t prob) {
    const uint32_t bound = (range >> ProbBits) * prob;
    uint32_t b;
    if (code < bound) {
      range = bound;
      b = 0;
    } else {
      code -= bound;
      range -= bound;
      b = 1;
    }
    while (range < kRangeTop) {
      range <<= 8;
      code = (code << 8) | next();
    }
    return b;
  }
  uint32_t bit(AdaptiveBit* p) {
    const uint32_t b = get_bin(coder_prob<ProbBits, Lo, Hi>(*p));
    adapt<FastShift, SlowShift>(p, b);
    return b;
  }
  uint32_t bit2(AdaptiveBit* p1, AdaptiveBit* p2) {
    const uint32_t b = get_bin((coder_prob<ProbBits, Lo, Hi>(*p1) + coder_prob<ProbBits, Lo, Hi>(*p2) + 1) >> 1);
    adapt<FastShift, SlowShift>(p1, b);
    adapt<FastShift, SlowShift>(p2, b);
    return b;
  }
  uint32_t direct(uint32_t count) {
    uint32_t v = 0;
    for (uint32_t i = 0; i < count; ++i) {
      range >>= 1;
      uint32_t b = 0;
      if (code >= range) {
        code -= range;
        b = 1;
      }
      v = (v << 1) | b;
      while (range < kRangeTop) {
        range <<= 8;
        code = (code << 8) | next();
      }
    }
    return v;
  }
  // The decoder reads exactly the bytes the encoder wrote (5 at the start, one per
  // renormalisation): anything else is damage.
  bool exhausted_exactly() const { return !failed && pos == len; }
};

// Number of bits of v (0 for 0). One instruction where the compiler has it (the
// result is an integer fact, the same on every CPU); a loop elsewhere.
inline uint32_t bit_length(uint32_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return v ? 32u - uint32_t(__builtin_clz(v)) : 0u;
#else
  uint32_t n = 0;
  while (v) {
    ++n;
    v >>= 1;
  }
  return n;
#endif
}

// bit_length(v) for v >= 1, and 1 for 0: the same instruction without bit_length's test for
// zero (a branch on the data where the compiler has no zero-safe instruction).
inline uint32_t bit_length_or_one(uint32_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return 32u - uint32_t(__builtin_clz(v | 1u));
#else
  return bit_length(v | 1u);
#endif
}

}  // namespace pymars
