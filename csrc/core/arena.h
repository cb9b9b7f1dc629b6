// arena.h - a bump allocator over caller-provided memory.
//
// Why: the flight encoder may not touch the heap after start-up. Everything it
// needs (converted weights, tables, tile workspaces) is carved out of one
// arena that the caller allocates once. A counting arena (no memory) runs the
// very same set-up code to tell the caller how large the arena must be, so the
// size query can never disagree with the real use.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pymars {

class Arena {
 public:
  // Counting mode: no memory, only the size that would be used.
  Arena() = default;
  Arena(void* memory, size_t size) {
    // Align the base itself so that every returned pointer is 16-byte aligned.
    uintptr_t a = reinterpret_cast<uintptr_t>(memory);
    size_t skip = (16 - (a & 15)) & 15;
    if (memory && size >= skip) {
      base_ = static_cast<uint8_t*>(memory) + skip;
      size_ = size - skip;
    } else {
      failed_ = memory != nullptr;  // too small to align: every alloc fails
      base_ = static_cast<uint8_t*>(memory);
    }
  }

  // Returns 16-byte aligned storage for n objects of T, or nullptr when the
  // arena is exhausted (or in counting mode). Memory is not initialised.
  template <typename T>
  T* alloc(size_t n) {
    size_t bytes = n * sizeof(T);
    if (n != 0 && bytes / n != sizeof(T)) {
      failed_ = true;
      return nullptr;
    }
    size_t start = (used_ + 15) & ~size_t(15);
    if (start < used_ || start + bytes < start) {
      failed_ = true;
      return nullptr;
    }
    used_ = start + bytes;
    if (!base_) return nullptr;
    if (used_ > size_) {
      failed_ = true;
      return nullptr;
    }
    return reinterpret_cast<T*>(base_ + start);
  }
  size_t used() const { return used_ + 16; }  // + alignment slack of the base pointer
  bool counting() const { return base_ == nullptr; }
  bool failed() const { return failed_; }

 private:
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  size_t used_ = 0;
  bool failed_ = false;
};

}  // namespace pymars
