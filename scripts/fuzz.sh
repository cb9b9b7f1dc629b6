#!/usr/bin/env bash
# Fuzzing of the container parser and the entropy decoder with libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer (clang).
#
#   scripts/fuzz.sh [SECONDS]        # each target runs SECONDS (default 60)
#
# Targets: csrc/fuzz/fuzz_container.cpp (parse_file_header + scan_tile_records)
# and csrc/fuzz/fuzz_decode.cpp (open_stream, scan, decode_tile_span, and
# decode_tile on raw payloads, with the model csrc/fuzz/tiny.pmw or
# $PYMARS_FUZZ_BLOB). Seeds: csrc/fuzz/corpus/<target>/ (read only: new inputs
# go to build/fuzz/corpus-<target>/, crashes to build/fuzz/artifacts/).
# Prints, per target, the executions and whether anything was found; exits
# non-zero on any crash, hang (-timeout), out-of-memory or sanitizer report.
#
# Needs: clang and libFuzzer (Debian: apt-get install -y clang libclang-rt-14-dev).
# Environment: JOBS (parallel fuzzing jobs per target, default 1), CXX (default clang++).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cxx=${CXX:-clang++}
repo=$PWD
out=build/fuzz
mkdir -p "$out/artifacts"
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -ffp-contract=off
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -Icsrc/include -Icsrc)
container_src=(csrc/core/container.cpp csrc/core/crc32.cpp)
decode_src=("${container_src[@]}" csrc/core/model.cpp csrc/core/sha256.cpp csrc/core/tile_codec.cpp
            csrc/core/transforms.cpp csrc/core/decoder.cpp csrc/core/nearlossless.cpp
            csrc/core/reference.cpp csrc/core/texture.cpp)
echo "building with $($cxx --version | head -1)"
$cxx "${flags[@]}" csrc/fuzz/fuzz_container.cpp "${container_src[@]}" -o "$out/fuzz_container"
$cxx "${flags[@]}" -DPYMARS_FUZZ_BLOB_DEFAULT="\"$PWD/csrc/fuzz/tiny.pmw\"" csrc/fuzz/fuzz_decode.cpp \
  "${decode_src[@]}" -o "$out/fuzz_decode"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for target in container decode; do
  mkdir -p "$out/corpus-$target"
  rm -f "$out"/fuzz-*.log
  log="$out/fuzz_$target.log"
  set +e
  parallel=(); [[ "${JOBS:-1}" -gt 1 ]] && parallel=(-jobs="$JOBS" -workers="$JOBS")
  # Run inside build/fuzz: with -jobs, libFuzzer writes fuzz-N.log files to the current directory.
  (cd "$out" && "./fuzz_$target" "corpus-$target" "$repo/csrc/fuzz/corpus/$target" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=2048 -max_len=4096 "${parallel[@]}" -print_final_stats=1 \
    -artifact_prefix="artifacts/${target}-") > "$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
  if [[ $rc -eq 0 ]]; then
    echo "fuzz_$target: $runs executions in ${seconds} s, 0 crashes / hangs / sanitizer reports (log $log)"
  else
    echo "fuzz_$target: FOUND A PROBLEM after $runs executions (exit $rc): see $log and $out/artifacts/"
    grep -E 'ERROR|SUMMARY|runtime error|deadly signal|Test unit written' "$log" | head -5
    status=1
  fi
done
exit $status
