// standalone_main.cpp - runs a libFuzzer harness on given files, without libFuzzer.
//
// What it is for: building and running every harness of csrc/fuzz/ with any
// C++17 compiler (g++ included), so that CI builds them on every run and they
// cannot rot when clang is missing (scripts/fuzz.sh --corpus; tests/test_fuzz_build.py).
// It replays inputs, it does not search for new ones: fuzzing proper needs
// clang's libFuzzer (scripts/fuzz.sh SECONDS). It must not be linked into
// anything but the harness binaries (it defines main).
//
//   fuzz_decode csrc/fuzz/corpus/decode [more files or folders]
//
// Calls LLVMFuzzerInitialize() when the harness defines it, then
// LLVMFuzzerTestOneInput() once per file (the files of a folder in name
// order, not recursing). Prints the number of inputs run; exits 1 when an
// argument cannot be read. A harness that finds a problem traps or aborts, as
// under libFuzzer, so the exit status tells.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

bool run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A heap block of exactly the input's size (a vector may hold more), so that
  // AddressSanitizer sees a read one byte past the end, as under libFuzzer.
  std::unique_ptr<uint8_t[]> exact(new uint8_t[bytes.size() + (bytes.empty() ? 1 : 0)]);
  std::copy(bytes.begin(), bytes.end(), exact.get());
  LLVMFuzzerTestOneInput(exact.get(), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  size_t runs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(arg, ec))
        if (entry.is_regular_file()) files.push_back(entry.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        if (!run_file(f)) {
          std::fprintf(stderr, "cannot read %s\n", f.c_str());
          return 1;
        }
        ++runs;
      }
    } else if (run_file(arg)) {
      ++runs;
    } else {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 1;
    }
  }
  std::printf("%s: %zu input(s) run, no problem found\n", argv[0], runs);
  return 0;
}
