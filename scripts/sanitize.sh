#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the C++ core, its
# tests (ctest) and the C example (whole-image and tile-row streaming encodes
# of a small synthetic image). Any report aborts (-fno-sanitize-recover=all).
#
#   scripts/sanitize.sh [BLOB]      # BLOB: weight blob for test_marsenc / encode_raw
#                                   # (default: the shipped pymars/weights/base-v1/encoder.pmw)
# Environment: JOBS (build jobs, default 2), BUILD_DIR (default build/sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."
blob="${1:-pymars/weights/base-v1/encoder.pmw}"
build=${BUILD_DIR:-build/sanitize}
gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPYMARS_SANITIZE=ON \
  -DPYMARS_TEST_BLOB="$PWD/$blob" > "$build.cmake.log"
cmake --build "$build" -j "${JOBS:-2}" > "$build.build.log"
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build" --output-on-failure
raw=$(mktemp) out=$(mktemp)
trap 'rm -f "$raw" "$out" "$out.s"' EXIT
head -c $((200 * 120 * 3)) /dev/urandom > "$raw"
"$build/encode_raw" "$blob" "$raw" 200 120 3 60 "$out" 64
"$build/encode_raw" --stream "$blob" "$raw" 200 120 3 60 "$out.s" 64
cmp "$out" "$out.s"
echo "sanitize: ctest and encode_raw (whole and streamed, identical output) clean under ASan + UBSan"
