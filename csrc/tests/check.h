// check.h - the smallest test harness that does the job: CHECK records a
// failure with file and line and carries on, so one run lists every broken
// behaviour; main() returns the failure count. No framework, no exceptions,
// so the same tests build for the flight target (-fno-exceptions) and run
// under qemu.
#pragma once
#include <cstdint>
#include <cstdio>

namespace pymars_test {

inline int& failure_count() {
  static int failures = 0;
  return failures;
}

// Deterministic generator (splitmix64) so that every platform draws the same
// test cases; <random> distributions are not portable across libraries.
struct TestRng {
  uint64_t s;
  explicit TestRng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), n >= 1 (the modulo bias is irrelevant for tests).
  uint32_t below(uint32_t n) { return uint32_t(next() % n); }
};

}  // namespace pymars_test

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::printf("%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
      ++pymars_test::failure_count();                                            \
    }                                                                            \
  } while (0)

#define RUN_TEST(fn)                                                             \
  do {                                                                           \
    const int before = pymars_test::failure_count();                             \
    fn();                                                                        \
    std::printf("%s %s\n", pymars_test::failure_count() == before ? "ok  " : "FAIL", #fn); \
  } while (0)
