#!/usr/bin/env bash
# Fuzzing of the container parser and the entropy decoder with libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer (clang).
#
#   scripts/fuzz.sh [SECONDS]        # build, then fuzz each target SECONDS (default 60)
#   scripts/fuzz.sh --runs N         # build, then fuzz each target for N executions
#   scripts/fuzz.sh --corpus         # build, then run every seed of csrc/fuzz/corpus/ once
#   scripts/fuzz.sh --build-only     # build every harness, run nothing
#
# Targets: every csrc/fuzz/fuzz_*.cpp (fuzz_container: parse_file_header +
# scan_tile_records; fuzz_decode: open_stream, the scan, decode_tile_span and
# decode_tile on raw payloads with the model csrc/fuzz/tiny.pmw or
# $PYMARS_FUZZ_BLOB). Seeds: csrc/fuzz/corpus/<target>/ (read only: new inputs
# go to $FUZZ_BUILD_DIR/corpus-<target>/, crashes to $FUZZ_BUILD_DIR/artifacts/).
#
# The core is not listed here: CMake builds the library target `marscore`
# (CMakeLists.txt, PYMARS_CORE_SOURCES) with the sanitizer flags into
# $FUZZ_BUILD_DIR/lib, and each harness links that static library, so a new
# source file of the core reaches the fuzzers without touching this script.
#
# Engines: with clang, libFuzzer (-fsanitize=fuzzer). With a compiler that has
# no libFuzzer (g++), csrc/fuzz/standalone_main.cpp replays files instead:
# enough for --build-only and --corpus (CI builds and runs every harness that
# way, tests/test_fuzz_build.py), not for fuzzing, which then stops with a message.
# Sanitizers: ASan + UBSan when the compiler links them, else none (said so).
#
# Prints, per target, the executions and whether anything was found; exits
# non-zero on any crash, hang (-timeout), out-of-memory or sanitizer report.
#
# Needs: cmake, and clang with libFuzzer for fuzzing
# (Debian: apt-get install -y clang libclang-rt-14-dev).
# Environment: CXX (default clang++ when present, else c++), JOBS (parallel
# fuzzing jobs per target, default 1), FUZZ_BUILD_DIR (default build/fuzz),
# FUZZ_TARGETS (space-separated names, default all), MAX_LEN (default 4096).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

mode=fuzz
seconds=60
runs=
case "${1:-}" in
  --build-only) mode=build ;;
  --corpus) mode=corpus ;;
  --runs) runs=${2:?--runs needs a count} ;;
  "") ;;
  *) seconds=$1 ;;
esac

if [[ -n "${CXX:-}" ]]; then cxx=$CXX; elif command -v clang++ > /dev/null; then cxx=clang++; else cxx=c++; fi
case "$cxx" in *clang++*) cc=${cxx/clang++/clang} ;; *g++*) cc=${cxx/g++/gcc} ;; *) cc=cc ;; esac
out=${FUZZ_BUILD_DIR:-build/fuzz}
mkdir -p "$out/artifacts"
out=$(cd "$out" && pwd)

# Which engine and sanitizers this compiler supports (a two-line probe each).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int main() { return 0; }\n' > "$probe/main.cpp"
printf '#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
  > "$probe/target.cpp"
sanitize=(-fsanitize=address,undefined -fno-sanitize-recover=all)
if ! "$cxx" "${sanitize[@]}" "$probe/main.cpp" -o "$probe/a" 2> /dev/null; then
  echo "note: $cxx cannot link AddressSanitizer/UBSan here: building without sanitizers"
  sanitize=()
fi
if "$cxx" -fsanitize=fuzzer "$probe/target.cpp" -o "$probe/b" 2> /dev/null; then
  engine=libfuzzer
  lib_flags=("${sanitize[@]}" -fsanitize=fuzzer-no-link)
  link_flags=("${sanitize[@]}" -fsanitize=fuzzer)
else
  engine=standalone
  lib_flags=("${sanitize[@]}")
  link_flags=("${sanitize[@]}")
  if [[ $mode == fuzz ]]; then
    echo "fuzz.sh: $cxx has no libFuzzer (-fsanitize=fuzzer): install clang (Debian: apt-get install -y clang" \
         "libclang-rt-14-dev) to fuzz; --build-only and --corpus work with any compiler" >&2
    exit 2
  fi
fi
echo "building with $("$cxx" --version | head -1) ($engine${sanitize:+, ASan + UBSan})"

# The core library, from the CMake target (its sources and flags, PYMARS_CORE_FLAGS included).
common=(-g -O1 -fno-omit-frame-pointer)
gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
cmake -S "$repo" -B "$out/lib" "${gen[@]}" -DCMAKE_BUILD_TYPE=Fuzz \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_CXX_FLAGS_FUZZ="${common[*]} ${lib_flags[*]}" -DCMAKE_C_FLAGS_FUZZ="${common[*]} ${lib_flags[*]}" \
  -DPYMARS_BUILD_TESTS=OFF -DPYMARS_BUILD_PYTHON=OFF > "$out/cmake.log" 2>&1 \
  || { cat "$out/cmake.log"; exit 1; }
cmake --build "$out/lib" --target marscore -j "${BUILD_JOBS:-2}" >> "$out/cmake.log" 2>&1 \
  || { tail -40 "$out/cmake.log"; exit 1; }

targets=()
wanted=" ${FUZZ_TARGETS:-} "
wanted=${wanted// fuzz_/ }  # accept "fuzz_container" as well as "container"
for src in csrc/fuzz/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  name=${name#fuzz_}
  if [[ -n "${FUZZ_TARGETS:-}" && "$wanted" != *" $name "* ]]; then continue; fi
  targets+=("$name")
  driver=(); [[ $engine == standalone ]] && driver=(csrc/fuzz/standalone_main.cpp)
  "$cxx" -std=c++17 "${common[@]}" -ffp-contract=off "${link_flags[@]}" -Icsrc/include -Icsrc \
    -DPYMARS_FUZZ_BLOB_DEFAULT="\"$repo/csrc/fuzz/tiny.pmw\"" "$src" "${driver[@]}" "$out/lib/libmarscore.a" \
    -o "$out/fuzz_$name"
done
if [[ ${#targets[@]} -eq 0 ]]; then echo "fuzz.sh: FUZZ_TARGETS='$FUZZ_TARGETS' names no csrc/fuzz/fuzz_*.cpp" >&2; exit 2; fi
echo "built: ${targets[*]/#/$out/fuzz_}"
[[ $mode == build ]] && exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for target in "${targets[@]}"; do
  seeds="$repo/csrc/fuzz/corpus/$target"
  log="$out/fuzz_$target.log"
  set +e
  if [[ $mode == corpus && $engine == standalone ]]; then
    "$out/fuzz_$target" "$seeds" > "$log" 2>&1
    rc=$?
    count=$(find "$seeds" -maxdepth 1 -type f | wc -l)
    what="$count seed(s) run once"
  else
    if [[ $mode == corpus ]]; then
      limit=(-runs=0)  # libFuzzer: run the given inputs once, no mutation
      dirs=("$seeds")
    else
      mkdir -p "$out/corpus-$target"
      rm -f "$out"/fuzz-*.log
      dirs=("corpus-$target" "$seeds")
      if [[ -n $runs ]]; then limit=(-runs="$runs"); else limit=(-max_total_time="$seconds"); fi
    fi
    parallel=(); [[ "${JOBS:-1}" -gt 1 && $mode == fuzz ]] && parallel=(-jobs="$JOBS" -workers="$JOBS")
    # Run inside the build folder: with -jobs, libFuzzer writes fuzz-N.log files to the current directory.
    (cd "$out" && "./fuzz_$target" "${dirs[@]}" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
      -max_len="${MAX_LEN:-4096}" "${parallel[@]}" -print_final_stats=1 -artifact_prefix="artifacts/${target}-") \
      > "$log" 2>&1
    rc=$?
    count=$(cat "$log" "$out"/fuzz-*.log 2> /dev/null | grep -E '^stat::number_of_executed_units' \
            | awk '{s += $2} END {print s + 0}')
    what="$count executions"
    [[ $mode == fuzz && -z $runs ]] && what="$what in ${seconds} s"
  fi
  set -e
  if [[ $rc -eq 0 ]]; then
    echo "fuzz_$target: $what, 0 crashes / hangs / sanitizer reports (log $log)"
  else
    echo "fuzz_$target: FOUND A PROBLEM ($what, exit $rc): see $log and $out/artifacts/"
    grep -E 'ERROR|SUMMARY|runtime error|deadly signal|Test unit written' "$log" | head -5
    status=1
  fi
done
exit $status
