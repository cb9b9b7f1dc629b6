#!/usr/bin/env bash
# valgrind memcheck of the flight encoder: encode_raw (whole image and
# tile-row streaming, 8-bit RGB and 16-bit gray) and test_marsenc (the C API
# test: streaming, bad arguments, decoder re-derivation). Fails on any error
# and on any leak (definite, indirect or possible).
#
#   scripts/memcheck.sh [BLOB]      # default: the shipped pymars/weights/base-v1/encoder.pmw
# Environment: JOBS (build jobs, default 2), BUILD_DIR (default build/memcheck), BUILD_TYPE (RelWithDebInfo).
set -euo pipefail
cd "$(dirname "$0")/.."
blob="${1:-pymars/weights/base-v1/encoder.pmw}"
build=${BUILD_DIR:-build/memcheck}
gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" -DPYMARS_TEST_BLOB="$PWD/$blob" > "$build.cmake.log"
cmake --build "$build" -j "${JOBS:-2}" --target encode_raw test_marsenc > "$build.build.log"
vg=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes --error-exitcode=1 -q)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c $((96 * 160 * 3)) /dev/urandom > "$work/rgb.raw"
head -c $((80 * 72 * 2)) /dev/urandom > "$work/gray16.raw"
run() {  # run NAME COMMAND...
  local name=$1; shift
  if "${vg[@]}" "$@" > "$work/$name.log" 2>&1; then
    echo "memcheck ok   $name"
  else
    echo "memcheck FAIL $name"; cat "$work/$name.log"; exit 1
  fi
}
run encode_raw.whole "$build/encode_raw" "$blob" "$work/rgb.raw" 160 96 3 60 "$work/a.pmrs" 64
run encode_raw.stream "$build/encode_raw" --stream "$blob" "$work/rgb.raw" 160 96 3 60 "$work/b.pmrs" 64
run encode_raw.gray16 "$build/encode_raw" --stream --bits 16 "$blob" "$work/gray16.raw" 72 80 1 30 "$work/c.pmrs" 32
cmp "$work/a.pmrs" "$work/b.pmrs"
run test_marsenc "$build/csrc/tests/test_marsenc" "$blob"
echo "memcheck: 0 errors, 0 leaks"
