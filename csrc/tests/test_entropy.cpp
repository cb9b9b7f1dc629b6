// test_entropy.cpp - specification tests for the rANS coder (rans.h), CRC-32
// and SHA-256. Each test names one behaviour of docs/bitstream.md §4 or of
// the coder's safety contract (never out of bounds, never hangs, errors are
// flagged). Runs on the host, under sanitizers and under qemu-ppc; it must
// not depend on host byte order, so all expectations are written as bytes.
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/crc32.h"
#include "core/nearlossless.h"
#include "core/rans.h"
#include "core/sha256.h"
#include "tests/check.h"

using namespace pymars;
using pymars_test::TestRng;

namespace {

// ---------------------------------------------------------------- helpers

struct OwnedTable {
  uint32_t half_width;
  std::vector<uint32_t> cdf;
  CdfTable view() const { return CdfTable{half_width, cdf.data()}; }
};

// A table built from frequencies (each >= 1, summing to 65536).
OwnedTable table_from_freqs(uint32_t half_width, const std::vector<uint32_t>& freqs) {
  OwnedTable t{half_width, std::vector<uint32_t>(freqs.size() + 1, 0)};
  for (size_t i = 0; i < freqs.size(); ++i) t.cdf[i + 1] = t.cdf[i] + freqs[i];
  return t;
}

// A random valid table: a peaked (Laplace-like) or flat shape with random
// noise; every symbol gets at least frequency 1.
OwnedTable random_table(TestRng& rng, uint32_t max_half_width) {
  const uint32_t r = 1 + rng.below(max_half_width);
  const uint32_t n = 2 * r + 2;
  std::vector<uint64_t> weight(n);
  const uint32_t decay = 1 + rng.below(64);
  for (uint32_t s = 0; s < n; ++s) {
    const uint32_t dist = s > r ? s - r : r - s;
    uint64_t w = (rng.below(4) == 0) ? 1 + rng.below(1000) : (1u << 20) / (1 + dist * decay);
    weight[s] = w + rng.below(16);
  }
  weight[n - 1] = rng.below(3) == 0 ? 0 : rng.below(50);  // escape: often minimal
  uint64_t total = 0;
  for (uint64_t w : weight) total += w;
  std::vector<uint32_t> freq(n, 1);
  const uint32_t spare = kRansTotal - n;
  uint32_t given = 0;
  for (uint32_t s = 0; s < n; ++s) {
    const uint32_t extra = total ? uint32_t(weight[s] * spare / total) : 0;
    freq[s] += extra;
    given += extra;
  }
  freq[r] += spare - given;  // the remainder goes to the centre symbol
  return table_from_freqs(r, freq);
}

// One coded item: a signed value with a table, or a uniform value.
struct Item {
  bool uniform;
  uint32_t table;  // index into the table list (values only)
  int32_t value;   // value, or the uniform value
  unsigned bits;   // uniform only
};

int32_t random_value(TestRng& rng, uint32_t half_width) {
  const int32_t r = int32_t(half_width);
  switch (rng.below(10)) {
    case 0: return kRansMaxAbsValue;
    case 1: return -kRansMaxAbsValue;
    case 2: return (rng.below(2) ? 1 : -1) * (r + 1 + int32_t(rng.below(3)));  // just past the table
    case 3: return int32_t(rng.below(2 * kRansMaxAbsValue + 1)) - kRansMaxAbsValue;
    case 4: return (rng.below(2) ? 1 : -1) * (r + 1 + int32_t(rng.below(1u << rng.below(21))) );
    default: return int32_t(rng.below(2 * half_width + 1)) - r;  // inside the table
  }
}

// Clamps a drawn escape value to the legal range (case 4 can overshoot).
int32_t legal(int32_t v) {
  if (v > kRansMaxAbsValue) return kRansMaxAbsValue;
  if (v < -kRansMaxAbsValue) return -kRansMaxAbsValue;
  return v;
}

// Encodes items (given in decoding order) into buf; returns the stream.
std::vector<uint8_t> encode_items(const std::vector<Item>& items,
                                  const std::vector<OwnedTable>& tables, bool* ok) {
  std::vector<uint8_t> buf(rans_max_stream_bytes(items.size()));
  RansEncoder enc(buf.data(), buf.data() + buf.size());
  for (size_t i = items.size(); i-- > 0;) {
    const Item& it = items[i];
    if (it.uniform) enc.put_uniform(uint32_t(it.value), it.bits);
    else enc.put_value(tables[it.table].view(), it.value);
  }
  const uint8_t* out = nullptr;
  size_t out_len = 0;
  *ok = enc.finish(&out, &out_len);
  return std::vector<uint8_t>(out, out + out_len);
}

// Decodes items.size() items of the same shapes; true when all values match
// and the stream ends cleanly.
bool decode_matches(const std::vector<uint8_t>& stream, const std::vector<Item>& items,
                    const std::vector<OwnedTable>& tables) {
  RansDecoder dec(stream.data(), stream.size());
  bool same = true;
  for (const Item& it : items) {
    if (it.uniform) {
      same &= dec.get_uniform(it.bits) == uint32_t(it.value);
    } else {
      int32_t v = 0;
      same &= dec.get_value(tables[it.table].view(), &v);
      same &= v == it.value;
    }
  }
  return same && dec.finish_ok();
}

std::vector<Item> random_items(TestRng& rng, const std::vector<OwnedTable>& tables, size_t count) {
  std::vector<Item> items;
  for (size_t i = 0; i < count; ++i) {
    Item it{};
    if (rng.below(5) == 0) {
      it.uniform = true;
      it.bits = 1 + rng.below(16);
      it.value = int32_t(rng.below(1u << it.bits));
    } else {
      it.table = rng.below(uint32_t(tables.size()));
      it.value = legal(random_value(rng, tables[it.table].half_width));
    }
    items.push_back(it);
  }
  return items;
}

// ---------------------------------------------------------------- CRC-32

void crc32_matches_the_ieee_check_value() {
  const char* digits = "123456789";
  CHECK(crc32(reinterpret_cast<const uint8_t*>(digits), 9) == 0xCBF43926u);
}

void crc32_of_nothing_is_zero() { CHECK(crc32(nullptr, 0) == 0u); }

void crc32_matches_zlib_on_a_sentence() {
  const char* fox = "The quick brown fox jumps over the lazy dog";
  CHECK(crc32(reinterpret_cast<const uint8_t*>(fox), std::strlen(fox)) == 0x414FA339u);
}

void crc32_can_be_computed_in_pieces() {
  TestRng rng(1);
  std::vector<uint8_t> data(1000);
  for (auto& b : data) b = uint8_t(rng.next());
  const uint32_t whole = crc32(data.data(), data.size());
  for (size_t cut = 0; cut <= data.size(); cut += 37)
    CHECK(crc32(data.data() + cut, data.size() - cut, crc32(data.data(), cut)) == whole);
}

// ---------------------------------------------------------------- SHA-256

std::vector<uint8_t> digest_of(const char* text) {
  std::vector<uint8_t> d(kSha256DigestBytes);
  sha256(reinterpret_cast<const uint8_t*>(text), std::strlen(text), d.data());
  return d;
}

bool digest_is(const std::vector<uint8_t>& d, const char* hex) {
  char buf[65];
  for (size_t i = 0; i < 32; ++i) std::snprintf(buf + 2 * i, 3, "%02x", d[i]);
  return std::strcmp(buf, hex) == 0;
}

void sha256_matches_fips_vector_empty() {
  CHECK(digest_is(digest_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

void sha256_matches_fips_vector_abc() {
  CHECK(digest_is(digest_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

void sha256_matches_fips_vector_two_blocks() {
  CHECK(digest_is(digest_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

void sha256_matches_fips_vector_million_a() {
  Sha256 h;
  const uint8_t chunk[100] = {'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                              'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                              'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                              'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                              'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                              'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                              'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a',
                              'a', 'a'};
  for (int i = 0; i < 10000; ++i) h.update(chunk, sizeof chunk);
  std::vector<uint8_t> d(32);
  h.finish(d.data());
  CHECK(digest_is(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

void sha256_incremental_equals_one_shot_at_every_block_boundary() {
  TestRng rng(2);
  std::vector<uint8_t> data(200);
  for (auto& b : data) b = uint8_t(rng.next());
  for (size_t len = 0; len <= data.size(); ++len) {
    uint8_t whole[32], pieces[32];
    sha256(data.data(), len, whole);
    Sha256 h;
    size_t done = 0;
    while (done < len) {
      size_t step = 1 + rng.below(70);
      if (step > len - done) step = len - done;
      h.update(data.data() + done, step);
      done += step;
    }
    h.finish(pieces);
    CHECK(std::memcmp(whole, pieces, 32) == 0);
  }
}

// ---------------------------------------------------------------- rANS: format

void empty_stream_is_the_initial_state_little_endian() {
  uint8_t buf[16];
  RansEncoder enc(buf, buf + sizeof buf);
  const uint8_t* out = nullptr;
  size_t len = 0;
  CHECK(enc.finish(&out, &len));
  CHECK(len == 4);
  CHECK(out == buf + 12);  // the stream sits at the end of the buffer
  const uint8_t expected[4] = {0x00, 0x00, 0x80, 0x00};  // L = 2^23
  CHECK(std::memcmp(out, expected, 4) == 0);
  RansDecoder dec(out, len);
  CHECK(dec.finish_ok());
}

void one_uniform_bit_gives_the_spec_bytes() {
  // x = L = 2^23, freq = start = 2^15: x = (x / freq) << 16 | x % freq + start
  //   = (256 << 16) + 32768 = 0x01008000, no renormalisation byte.
  uint8_t buf[8];
  RansEncoder enc(buf, buf + sizeof buf);
  enc.put_uniform(1, 1);
  const uint8_t* out = nullptr;
  size_t len = 0;
  CHECK(enc.finish(&out, &len));
  const uint8_t expected[4] = {0x00, 0x80, 0x00, 0x01};
  CHECK(len == 4 && std::memcmp(out, expected, 4) == 0);
  RansDecoder dec(out, len);
  CHECK(dec.get_uniform(1) == 1);
  CHECK(dec.finish_ok());
}

void escape_tail_is_length_then_low_chunks_first() {
  // v = R + 1 + 70000 with R = 1: u = 2 * 70000 = 140000, w = 140001,
  // n = 17: after the escape come uniform(17, 5 bits), then the low 16 bits of
  // w, then 1 more bit. Decode those parts by hand.
  const OwnedTable t = table_from_freqs(1, {100, 65000, 100, 336});
  uint8_t buf[64];
  RansEncoder enc(buf, buf + sizeof buf);
  enc.put_value(t.view(), 1 + 1 + 70000);
  const uint8_t* out = nullptr;
  size_t len = 0;
  CHECK(enc.finish(&out, &len));
  RansDecoder dec(out, len);
  CHECK(dec.get_symbol(t.cdf.data(), 4) == 3);  // escape
  CHECK(dec.get_uniform(5) == 17);
  CHECK(dec.get_uniform(16) == (140001u & 0xFFFFu));
  CHECK(dec.get_uniform(1) == ((140001u >> 16) & 1u));
  CHECK(dec.finish_ok());
}

void negative_escape_uses_odd_codes() {
  // v = -(R + 1) with R = 1: u = 1, w = 2, n = 1, one bit = 0.
  const OwnedTable t = table_from_freqs(1, {100, 65000, 100, 336});
  uint8_t buf[64];
  RansEncoder enc(buf, buf + sizeof buf);
  enc.put_value(t.view(), -2);
  const uint8_t* out = nullptr;
  size_t len = 0;
  CHECK(enc.finish(&out, &len));
  RansDecoder dec(out, len);
  CHECK(dec.get_symbol(t.cdf.data(), 4) == 3);
  CHECK(dec.get_uniform(5) == 1);
  CHECK(dec.get_uniform(1) == 0);
  CHECK(dec.finish_ok());
}

// A fixed pseudo-random sequence must give the same bytes on every CPU
// (x86-64, aarch64, big-endian 32-bit PowerPC): the golden length and CRC
// were recorded on x86-64 and are checked everywhere the test runs.
void fixed_sequence_encodes_to_the_golden_stream() {
  TestRng rng(2024);
  std::vector<OwnedTable> tables;
  for (int i = 0; i < 4; ++i) tables.push_back(random_table(rng, 64));
  const std::vector<Item> items = random_items(rng, tables, 5000);
  bool ok = false;
  const std::vector<uint8_t> stream = encode_items(items, tables, &ok);
  CHECK(ok);
  const uint32_t crc = crc32(stream.data(), stream.size());
  CHECK(stream.size() == 11872);
  CHECK(crc == 0x71C4E0C2u);
  if (stream.size() != 11872 || crc != 0x71C4E0C2u)
    std::printf("     got %u bytes, crc32 %08x\n", unsigned(stream.size()), unsigned(crc));
}

// ---------------------------------------------------------------- rANS: round trips

void random_sequences_round_trip() {
  TestRng rng(3);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<OwnedTable> tables;
    const uint32_t n_tables = 1 + rng.below(8);
    for (uint32_t i = 0; i < n_tables; ++i) tables.push_back(random_table(rng, trial % 2 ? 8 : 400));
    const std::vector<Item> items = random_items(rng, tables, rng.below(2000));
    bool ok = false;
    const std::vector<uint8_t> stream = encode_items(items, tables, &ok);
    CHECK(ok);
    CHECK(decode_matches(stream, items, tables));
  }
}

void extreme_values_round_trip_with_every_table_width() {
  for (uint32_t r : {1u, 2u, 15u, 16u, 1000u, 32766u}) {
    std::vector<uint32_t> freqs(2 * r + 2, 1);
    freqs[r] += kRansTotal - uint32_t(freqs.size());
    std::vector<OwnedTable> tables{table_from_freqs(r, freqs)};
    std::vector<Item> items;
    const int32_t ri = int32_t(r);
    for (int32_t v : {0, ri, -ri, ri + 1, -ri - 1, ri + 2, -ri - 2, kRansMaxAbsValue,
                      -kRansMaxAbsValue, kRansMaxAbsValue - 1, -kRansMaxAbsValue + 1})
      items.push_back(Item{false, 0, legal(v), 0});
    bool ok = false;
    const std::vector<uint8_t> stream = encode_items(items, tables, &ok);
    CHECK(ok);
    CHECK(decode_matches(stream, items, tables));
  }
}

void uniform_values_of_every_width_round_trip() {
  TestRng rng(4);
  std::vector<Item> items;
  for (unsigned bits = 1; bits <= 16; ++bits) {
    items.push_back(Item{true, 0, 0, bits});
    items.push_back(Item{true, 0, int32_t((1u << bits) - 1), bits});
    for (int k = 0; k < 50; ++k) items.push_back(Item{true, 0, int32_t(rng.below(1u << bits)), bits});
  }
  bool ok = false;
  const std::vector<uint8_t> stream = encode_items(items, {}, &ok);
  CHECK(ok);
  CHECK(decode_matches(stream, items, {}));
}

void worst_case_stream_fits_the_size_bound() {
  // Every value an extreme escape through an escape of frequency 1: the
  // costliest thing put_value() can emit.
  std::vector<uint32_t> freqs(4, 1);
  freqs[1] = kRansTotal - 3;
  std::vector<OwnedTable> tables{table_from_freqs(1, freqs)};
  std::vector<Item> items;
  for (int i = 0; i < 500; ++i)
    items.push_back(Item{false, 0, (i % 2) ? kRansMaxAbsValue : -kRansMaxAbsValue, 0});
  bool ok = false;
  const std::vector<uint8_t> stream = encode_items(items, tables, &ok);
  CHECK(ok);
  CHECK(stream.size() <= rans_max_stream_bytes(items.size()));
  CHECK(decode_matches(stream, items, tables));
}

// ---------------------------------------------------------------- rANS: encoder errors

void too_small_buffer_is_flagged_and_never_overrun() {
  TestRng rng(5);
  std::vector<OwnedTable> tables{random_table(rng, 50)};
  const std::vector<Item> items = random_items(rng, tables, 400);
  bool ok = false;
  const size_t needed = encode_items(items, tables, &ok).size();
  CHECK(ok);
  for (size_t cap : {size_t(0), size_t(3), needed / 2, needed - 1, needed}) {
    // Guard bytes on both sides of [begin, begin + cap) must stay untouched.
    std::vector<uint8_t> mem(cap + 64, 0xA5);
    uint8_t* begin = mem.data() + 32;
    RansEncoder enc(begin, begin + cap);
    for (size_t i = items.size(); i-- > 0;) {
      if (items[i].uniform) enc.put_uniform(uint32_t(items[i].value), items[i].bits);
      else enc.put_value(tables[0].view(), items[i].value);
    }
    const uint8_t* out = nullptr;
    size_t len = 0;
    const bool finished = enc.finish(&out, &len);
    CHECK(finished == (cap >= needed));
    CHECK(enc.overflow() == (cap < needed));
    for (size_t i = 0; i < 32; ++i) CHECK(mem[i] == 0xA5 && mem[32 + cap + i] == 0xA5);
  }
}

void value_beyond_two_to_the_twenty_is_refused_by_the_encoder() {
  const OwnedTable t = table_from_freqs(1, {100, 65000, 100, 336});
  uint8_t buf[64];
  RansEncoder enc(buf, buf + sizeof buf);
  enc.put_value(t.view(), kRansMaxAbsValue + 1);
  const uint8_t* out = nullptr;
  size_t len = 0;
  CHECK(!enc.finish(&out, &len));
  CHECK(enc.bad_input());
  CHECK(!enc.overflow());
}

void uniform_value_wider_than_its_bits_is_refused() {
  uint8_t buf[16];
  RansEncoder enc(buf, buf + sizeof buf);
  enc.put_uniform(4, 2);
  CHECK(enc.bad_input());
  RansEncoder enc2(buf, buf + sizeof buf);
  enc2.put_uniform(0, 17);
  CHECK(enc2.bad_input());
  RansEncoder enc3(buf, buf + sizeof buf);
  enc3.put_uniform(0, 0);
  CHECK(enc3.bad_input());
}

void zero_frequency_symbol_is_refused() {
  uint8_t buf[16];
  RansEncoder enc(buf, buf + sizeof buf);
  enc.put_symbol(100, 0);
  CHECK(enc.bad_input());
  RansEncoder enc2(buf, buf + sizeof buf);
  enc2.put_symbol(65535, 2);  // start + freq > 65536
  CHECK(enc2.bad_input());
}

// ---------------------------------------------------------------- rANS: decoder safety

void stream_shorter_than_the_state_is_an_error() {
  const uint8_t bytes[3] = {0x00, 0x00, 0x80};
  for (size_t len = 0; len <= 3; ++len) {
    RansDecoder dec(bytes, len);
    CHECK(dec.error());
    CHECK(!dec.finish_ok());
  }
  RansDecoder null_dec(nullptr, 100);
  CHECK(null_dec.error());
}

void initial_state_outside_the_interval_is_an_error() {
  const uint8_t low[4] = {0xFF, 0xFF, 0x7F, 0x00};   // L - 1
  const uint8_t high[4] = {0x00, 0x00, 0x00, 0x80};  // 256 L
  CHECK(RansDecoder(low, 4).error());
  CHECK(RansDecoder(high, 4).error());
}

void every_truncation_of_a_valid_stream_is_detected() {
  TestRng rng(6);
  std::vector<OwnedTable> tables{random_table(rng, 30), random_table(rng, 3)};
  const std::vector<Item> items = random_items(rng, tables, 300);
  bool ok = false;
  const std::vector<uint8_t> stream = encode_items(items, tables, &ok);
  CHECK(ok);
  for (size_t len = 0; len < stream.size(); ++len) {
    std::vector<uint8_t> cut(stream.begin(), stream.begin() + long(len));  // exact-size copy for ASan
    CHECK(!decode_matches(cut, items, tables));
  }
}

void trailing_bytes_after_a_valid_stream_are_detected() {
  TestRng rng(7);
  std::vector<OwnedTable> tables{random_table(rng, 30)};
  const std::vector<Item> items = random_items(rng, tables, 100);
  bool ok = false;
  std::vector<uint8_t> stream = encode_items(items, tables, &ok);
  stream.push_back(0);
  CHECK(!decode_matches(stream, items, tables));
}

void bit_flips_are_almost_always_detected() {
  // A flip changes the decoder's state path; the end check (x == L, every
  // byte read) catches it unless the path re-converges by chance.
  TestRng rng(8);
  std::vector<OwnedTable> tables{random_table(rng, 30)};
  const std::vector<Item> items = random_items(rng, tables, 200);
  bool ok = false;
  const std::vector<uint8_t> stream = encode_items(items, tables, &ok);
  size_t flips = 0, detected = 0;
  for (size_t byte = 0; byte < stream.size(); ++byte) {
    for (unsigned bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> bad = stream;
      bad[byte] ^= uint8_t(1u << bit);
      ++flips;
      detected += decode_matches(bad, items, tables) ? 0 : 1;
    }
  }
  CHECK(detected * 100 >= flips * 99);
}

// Decodes `count` values from `bytes` with table t; returns whether the
// decoder ended cleanly. Only its termination and memory safety matter.
bool decode_garbage(const std::vector<uint8_t>& bytes, const OwnedTable& t, size_t count) {
  RansDecoder dec(bytes.data(), bytes.size());
  for (size_t i = 0; i < count; ++i) {
    int32_t v = 0;
    dec.get_value(t.view(), &v);
    CHECK(v >= -kRansMaxAbsValue && v <= kRansMaxAbsValue);
    if (i % 7 == 0) dec.get_uniform(1 + unsigned(i % 16));
  }
  return dec.finish_ok();
}

void random_garbage_never_crashes_and_is_flagged() {
  TestRng rng(9);
  size_t accepted = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const OwnedTable t = random_table(rng, 1 + rng.below(100));
    std::vector<uint8_t> bytes(rng.below(300));
    for (auto& b : bytes) b = uint8_t(rng.next());
    accepted += decode_garbage(bytes, t, rng.below(400)) ? 1 : 0;
  }
  CHECK(accepted == 0);
}

void exhausted_input_feeds_zeros_without_hanging() {
  const OwnedTable t = table_from_freqs(1, {1, 65533, 1, 1});
  const std::vector<uint8_t> bytes = {0x00, 0x00, 0x80, 0x00};
  CHECK(!decode_garbage(bytes, t, 100000));
}

void escape_length_above_thirty_is_an_error() {
  const OwnedTable t = table_from_freqs(1, {100, 65000, 100, 336});
  uint8_t buf[64];
  RansEncoder enc(buf, buf + sizeof buf);
  for (int k = 0; k < 2; ++k) enc.put_uniform(0xFFFF, 16);  // 31 bits would follow
  enc.put_uniform(31, 5);
  enc.put_symbol(t.cdf[3], t.cdf[4] - t.cdf[3]);
  const uint8_t* out = nullptr;
  size_t len = 0;
  CHECK(enc.finish(&out, &len));
  RansDecoder dec(out, len);
  int32_t v = 123;
  CHECK(!dec.get_value(t.view(), &v));
  CHECK(v == 0);
  CHECK(dec.error());
}

void decoded_magnitude_above_two_to_the_twenty_is_an_error() {
  // n = 21 with all low bits set: |v| = (2^22 - 2) / 2 + R + 1 > 2^20.
  const OwnedTable t = table_from_freqs(1, {100, 65000, 100, 336});
  uint8_t buf[64];
  RansEncoder enc(buf, buf + sizeof buf);
  enc.put_uniform(0x1F, 5);
  enc.put_uniform(0xFFFF, 16);
  enc.put_uniform(21, 5);
  enc.put_symbol(t.cdf[3], t.cdf[4] - t.cdf[3]);
  const uint8_t* out = nullptr;
  size_t len = 0;
  CHECK(enc.finish(&out, &len));
  RansDecoder dec(out, len);
  int32_t v = 0;
  CHECK(!dec.get_value(t.view(), &v));
  CHECK(dec.error());
}

void table_with_a_zero_frequency_cannot_hang_the_decoder() {
  // cdf[1] == cdf[2]: symbol 1 has frequency 0. Not a valid table, but the
  // decoder must still terminate and flag it if it ever lands there.
  const uint32_t cdf[5] = {0, 30000, 30000, 65535, 65536};
  const CdfTable t{1, cdf};
  CHECK(!cdf_table_valid(t));
  TestRng rng(10);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> bytes(4 + rng.below(64));
    for (auto& b : bytes) b = uint8_t(rng.next());
    RansDecoder dec(bytes.data(), bytes.size());
    for (int i = 0; i < 200; ++i) {
      int32_t v = 0;
      dec.get_value(t, &v);
    }
    CHECK(!dec.finish_ok());
  }
}

void table_validation_follows_the_spec() {
  const OwnedTable good = table_from_freqs(1, {100, 65000, 100, 336});
  CHECK(cdf_table_valid(good.view()));
  OwnedTable bad_total = good;
  bad_total.cdf[4] = 65535;
  CHECK(!cdf_table_valid(bad_total.view()));
  OwnedTable bad_start = good;
  bad_start.cdf[0] = 1;
  CHECK(!cdf_table_valid(bad_start.view()));
  CHECK(!cdf_table_valid(CdfTable{0, good.cdf.data()}));
  CHECK(!cdf_table_valid(CdfTable{1, nullptr}));
}

// ---------------------------------------------------------------- near-lossless, 12/16-bit (§4.8)

// nl_encode16 / nl_decode16: every sample within k of the source (exact at k = 0), samples
// up to 2^depth - 1 (the largest residuals take the wide escape), the decoder's output equal
// to the encoder's reconstruction, and a damaged payload refused or decoded without overrun.
void near_lossless_at_12_and_16_bits_round_trips_within_k() {
  TestRng rng(7);
  static NlState state;  // large: not on the stack
  for (uint32_t depth : {12u, 16u})
    for (uint32_t channels : {1u, 3u})
      for (uint32_t k : {0u, 1u, 4u}) {
        const uint32_t h = 37, w = 29, maxval = (1u << depth) - 1;
        std::vector<uint16_t> src(size_t(h) * w * channels), rec(src.size()), dec(src.size());
        for (uint32_t y = 0; y < h; ++y)
          for (uint32_t x = 0; x < w; ++x)
            for (uint32_t c = 0; c < channels; ++c) {
              uint32_t v = (y * 97 + x * 13 + c * 300) * (maxval / 4000 + 1) + rng.next() % 9;
              if ((y * w + x) % 53 == 0) v = (y & 1) ? maxval : 0;  // full-range jumps
              src[(size_t(y) * w + x) * channels + c] = uint16_t(v > maxval ? maxval : v);
            }
        std::vector<uint8_t> out(nl_max_bytes(h, w, channels));
        const size_t n = nl_encode16(src.data(), size_t(w) * channels, h, w, channels, k, depth, &state, out.data(),
                                     out.size(), rec.data());
        CHECK(n > 0 && n <= 1 + 2 * src.size());
        CHECK(nl_decode16(out.data(), n, h, w, channels, k, depth, &state, dec.data()));
        CHECK(dec == rec);
        uint32_t worst = 0;
        for (size_t i = 0; i < src.size(); ++i) {
          const uint32_t e = src[i] > dec[i] ? src[i] - dec[i] : dec[i] - src[i];
          worst = e > worst ? e : worst;
          CHECK(dec[i] <= maxval);
        }
        CHECK(worst <= k);
        CHECK(!nl_decode16(out.data(), n - 1, h, w, channels, k, depth, &state, dec.data()));
        for (size_t i = 1; i < n; i += 7) out[i] ^= 0x5A;  // garbage: refused or in range, never out of bounds
        if (nl_decode16(out.data(), n, h, w, channels, k, depth, &state, dec.data()))
          for (uint16_t v : dec) CHECK(v <= maxval);
      }
  // A random 16-bit tile does not compress: stored form, 2 bytes per sample, exact.
  std::vector<uint16_t> noise(16 * 16), rec(noise.size()), dec(noise.size());
  for (auto& v : noise) v = uint16_t(rng.next());
  std::vector<uint8_t> out(nl_max_bytes(16, 16, 1));
  const size_t n = nl_encode16(noise.data(), 16, 16, 16, 1, 0, 16, &state, out.data(), out.size(), rec.data());
  CHECK(n == 1 + 2 * noise.size() && out[0] == 1);
  CHECK(nl_decode16(out.data(), n, 16, 16, 1, 0, 16, &state, dec.data()) && dec == noise);
}

// Arith2 on RGB tiles whose fitted gains are not 1. Each channel is a mix, alpha/16, of a
// raw-like channel (a gain of the scene plus its own noise) and the previous channel minus a
// constant (flat colour differences). Lossless tiles are coded once, in the form the colour
// planes point to (nearlossless.cpp, form_guess); at k > 0 both forms are coded, the one the
// guess favours last, and the decoder's output must equal the encoder's reconstruction
// whichever is kept. alpha = 1 (noise 1) is a tile the guess gives to the differences while
// the gains code shorter at every k > 0: the third coding (found by a sweep; without that
// coding this test fails).
void arith2_rgb_keeps_the_reconstruction_of_the_form_it_sends() {
  static NlState state;
  const uint32_t h = 48, w = 40;
  for (int32_t alpha : {1, 4, 16}) {
    TestRng rng(11 + uint32_t(alpha));
    std::vector<uint8_t> src(size_t(h) * w * 3), rec(src.size()), dec(src.size());
    for (uint32_t y = 0; y < h; ++y)
      for (uint32_t x = 0; x < w; ++x) {
        const int32_t scene = 60 + int32_t((x * 3 + y * 2) % 90) + int32_t((x / 8 + y / 8) % 2) * 40;
        int32_t prev = 0;
        for (uint32_t c = 0; c < 3; ++c) {
          const int32_t raw = scene * (16 - 4 * int32_t(c)) / 16 + int32_t(rng.next() % 3) - 1;
          int32_t v = (alpha * raw + (16 - alpha) * (c ? prev - 20 : raw)) / 16;
          v = v < 0 ? 0 : (v > 255 ? 255 : v);
          src[(size_t(y) * w + x) * 3 + c] = uint8_t(v);
          prev = v;
        }
      }
    for (uint32_t k : {0u, 1u, 2u, 5u}) {
      std::vector<uint8_t> out(nl_max_bytes(h, w, 3));
      const size_t n = nl_encode(src.data(), size_t(w) * 3, h, w, 3, k, NlCoder::Arith2, &state, out.data(),
                                 out.size(), rec.data());
      CHECK(n > 0);
      if (k == 0 && alpha == 16) CHECK(out[0] == 4);  // raw-like: the gains, fitted weights (form 4)
      CHECK(nl_decode(out.data(), n, h, w, 3, k, NlCoder::Arith2, &state, dec.data()));
      CHECK(dec == rec);
      for (size_t i = 0; i < src.size(); ++i) CHECK((src[i] > dec[i] ? src[i] - dec[i] : dec[i] - src[i]) <= int(k));
    }
  }
}

}  // namespace

int main() {
  RUN_TEST(arith2_rgb_keeps_the_reconstruction_of_the_form_it_sends);
  RUN_TEST(crc32_matches_the_ieee_check_value);
  RUN_TEST(crc32_of_nothing_is_zero);
  RUN_TEST(crc32_matches_zlib_on_a_sentence);
  RUN_TEST(crc32_can_be_computed_in_pieces);
  RUN_TEST(sha256_matches_fips_vector_empty);
  RUN_TEST(sha256_matches_fips_vector_abc);
  RUN_TEST(sha256_matches_fips_vector_two_blocks);
  RUN_TEST(sha256_matches_fips_vector_million_a);
  RUN_TEST(sha256_incremental_equals_one_shot_at_every_block_boundary);
  RUN_TEST(empty_stream_is_the_initial_state_little_endian);
  RUN_TEST(one_uniform_bit_gives_the_spec_bytes);
  RUN_TEST(escape_tail_is_length_then_low_chunks_first);
  RUN_TEST(negative_escape_uses_odd_codes);
  RUN_TEST(fixed_sequence_encodes_to_the_golden_stream);
  RUN_TEST(random_sequences_round_trip);
  RUN_TEST(extreme_values_round_trip_with_every_table_width);
  RUN_TEST(uniform_values_of_every_width_round_trip);
  RUN_TEST(worst_case_stream_fits_the_size_bound);
  RUN_TEST(too_small_buffer_is_flagged_and_never_overrun);
  RUN_TEST(value_beyond_two_to_the_twenty_is_refused_by_the_encoder);
  RUN_TEST(uniform_value_wider_than_its_bits_is_refused);
  RUN_TEST(zero_frequency_symbol_is_refused);
  RUN_TEST(stream_shorter_than_the_state_is_an_error);
  RUN_TEST(initial_state_outside_the_interval_is_an_error);
  RUN_TEST(every_truncation_of_a_valid_stream_is_detected);
  RUN_TEST(trailing_bytes_after_a_valid_stream_are_detected);
  RUN_TEST(bit_flips_are_almost_always_detected);
  RUN_TEST(random_garbage_never_crashes_and_is_flagged);
  RUN_TEST(exhausted_input_feeds_zeros_without_hanging);
  RUN_TEST(escape_length_above_thirty_is_an_error);
  RUN_TEST(decoded_magnitude_above_two_to_the_twenty_is_an_error);
  RUN_TEST(table_with_a_zero_frequency_cannot_hang_the_decoder);
  RUN_TEST(table_validation_follows_the_spec);
  RUN_TEST(near_lossless_at_12_and_16_bits_round_trips_within_k);
  const int failures = pymars_test::failure_count();
  std::printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
