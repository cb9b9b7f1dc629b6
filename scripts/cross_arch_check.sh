#!/usr/bin/env bash
# Byte-identical bitstreams across CPUs: encodes a fixed set of images with the
# C API example (csrc/examples/encode_raw.c) built for x86-64, aarch64 and
# 32-bit big-endian PowerPC (Debian cross compilers, run under qemu-user), and
# compares every file byte for byte with the x86-64 one. Two more x86-64 builds
# run natively beside the default one (AVX2 clone picked at run time):
# x86_64-avx512 (-march=x86-64-v4: AVX-512 everywhere the compiler vectorises;
# skipped, and said so, on a CPU without AVX-512) and x86_64-scalar
# (-DPYMARS_SCALAR=ON: no clones, no auto-vectorisation, a SIMD-less flight CPU). Each image is encoded
# twice per CPU, whole and with tile-row streaming (--stream); all must agree.
#
#   scripts/cross_arch_check.sh [--quick] [--ctest] [BLOB]
#
# --quick: four small images (8-bit RGB/gray, 12-bit RGB, 16-bit gray; a few
#          minutes); default: ten images incl. 1152x1600 (slow under qemu-ppc).
# --gray:  gray images only, learned and near-lossless qualities (for a gray model's BLOB,
#          e.g. pymars/weights/base-v2-gray/encoder.pmw, which refuses RGB).
# --lossless: lossless and near-lossless files (encode_raw --max-error K, quality column "eK"),
#          8-, 12- and 16-bit, gray and RGB, for a BLOB with range-coded near-lossless qualities
#          (e.g. pymars/weights/base-v2-nl/encoder.pmw); whole images only. With --gray: gray
#          images only (e.g. pymars/weights/base-v2-gray-nl/encoder.pmw), 8-bit k = 0, 2, 6 among them.
# --sequence: sequence coding (encode_raw --after EARLIER, quality column "sQ"): a frame coded against
#          an overlapping earlier frame (a displaced window of the same scene with an exposure change),
#          8-bit gray and RGB, for a wavelet BLOB (pymars/weights/base-v2-wv/encoder.pmw; gray images need
#          base-v2-gray-wv, so run the script once per blob: RGB specs are skipped for a gray blob);
#          whole images only.
# --ctest: also builds the C++ tests for aarch64 and ppc and runs them (ctest,
#          through qemu) with the same BLOB.
# Needs: g++-aarch64-linux-gnu g++-powerpc-linux-gnu qemu-user (apt-get install -y ...).
# Environment: JOBS (build jobs, default: ninja's), BUILD_ROOT (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
ctest=0
gray=0
lossless=0
sequence=0
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --ctest) ctest=1 ;;
    --gray) gray=1 ;;
    --lossless) lossless=1 ;;
    --sequence) sequence=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
blob="${1:-pymars/weights/base-v1/encoder.pmw}"
root=${BUILD_ROOT:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$blob" "$work/blob.pmw"  # every run sees the same blob, even if the file is re-exported meanwhile
jobs=(); [[ -n "${JOBS:-}" ]] && jobs=(-j "$JOBS")

build() {  # build DIR TESTS [TOOLCHAIN] [CMAKE_ARGS...]
  local dir=$1 tests=$2 tc=${3:-}
  shift 3 || shift $#
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPYMARS_BUILD_TESTS="$tests" \
    -DPYMARS_TEST_BLOB="$PWD/$blob" ${tc:+-DCMAKE_TOOLCHAIN_FILE=$tc} "$@" > "$work/cmake-$(basename "$dir").log"
  if [[ $tests == ON ]]; then ninja "${jobs[@]}" -C "$dir" > /dev/null; else ninja "${jobs[@]}" -C "$dir" encode_raw > /dev/null; fi
}
tests=OFF; (( ctest )) && tests=ON
build "$root/x86_64" OFF
build "$root/x86_64-scalar" OFF "" -DPYMARS_SCALAR=ON
variants=(x86_64-scalar)
if grep -qw avx512f /proc/cpuinfo 2> /dev/null; then
  build "$root/x86_64-avx512" OFF "" -DCMAKE_CXX_FLAGS="-march=x86-64-v4 -mprefer-vector-width=512"
  variants+=(x86_64-avx512)
else
  echo "note: this CPU has no AVX-512: the x86_64-avx512 build is not run"
fi
build "$root/aarch64" "$tests" cmake/toolchains/aarch64-linux-gnu.cmake
build "$root/ppc" "$tests" cmake/toolchains/powerpc-linux-gnu.cmake

# name height width channels bits seed quality tile (quality eK: --max-error K)
if (( sequence )); then
  images=("seq_rgb 256 320 3 8 1 s60 256" "seq_rgb64 200 240 3 8 2 s85 64" "seq_gray 256 320 1 8 3 s50 256"
          "seq_gray32 160 200 1 8 4 s30 32")
elif (( ${lossless:-0} && gray )); then
  images=("gray8_e0 64 80 1 8 1 e0 32" "gray8_e2 80 64 1 8 7 e2 32" "gray8_e6 72 72 1 8 8 e6 64"
          "gray12_e0 72 56 1 12 2 e0 32" "gray16_e0 48 64 1 16 4 e0 16" "gray12_e4 96 80 1 12 6 e4 64")
elif (( ${lossless:-0} )); then
  images=("rgb8_e0 64 80 3 8 1 e0 32" "gray12_e0 72 56 1 12 2 e0 32" "rgb12_e0 40 72 3 12 3 e0 32"
          "gray16_e0 48 64 1 16 4 e0 16" "rgb16_e2 56 48 3 16 5 e2 32" "gray12_e4 96 80 1 12 6 e4 64")
elif (( gray )); then
  images=("gray64 64 64 1 8 1 30 32" "gray96x80 96 80 1 8 2 80 32" "gray_nl 80 96 1 8 3 85 32"
          "gray_nl95 64 72 1 8 4 95 64" "gray_lossless 48 80 1 8 5 100 16" "gray12bit40x72 40 72 1 12 6 60 32")
elif (( quick )); then
  images=("rgb64 64 64 3 8 1 75 32" "gray48x80 48 80 1 8 2 30 16" "rgb12bit40x72 40 72 3 12 3 60 32"
          "gray16bit72x40 72 40 1 16 4 90 32")
else
  images=("rgb256 256 256 3 8 0 75 256" "rgb300x200 200 300 3 8 1 50 64" "gray128x96 96 128 1 8 2 90 32"
          "rgb_q1 256 256 3 8 3 1 128" "rgb_q100 256 256 3 8 4 100 128" "rgb12bit200x136 200 136 3 12 6 60 64"
          "gray16bit160x208 160 208 1 16 7 45 64" "gray12bit33x47 33 47 1 12 8 80 16"
          "rgb16bit96x96 96 96 3 16 9 20 48" "rgb1152x1600 1152 1600 3 8 5 60 256")
fi
python3 - "$work" "${images[@]}" <<'PY'
import sys
import numpy as np
import importlib.util  # the scene generator alone (NumPy only): no installed package needed
spec = importlib.util.spec_from_file_location("synthetic", "pymars/data/synthetic.py")
synthetic = importlib.util.module_from_spec(spec); spec.loader.exec_module(synthetic)
mars_like_scene = synthetic.mars_like_scene
work = sys.argv[1]
for spec in sys.argv[2:]:
    name, h, w, c, bits, seed, q, t = spec.split()
    if q.startswith("s"):  # a sequence pair: the earlier frame, then a displaced window with an exposure change
        h, w = int(h), int(w)
        scene = mars_like_scene(h + 40, w + 96, seed=int(seed), channels=int(c))
        open(f"{work}/{name}.first.raw", "wb").write(np.ascontiguousarray(scene[:h, :w]).tobytes())
        second = np.clip(scene[24 : 24 + h, 80 : 80 + w].astype(np.int64) * 15 // 16 + 4, 0, 255).astype(np.uint8)
        open(f"{work}/{name}.raw", "wb").write(second.tobytes())
        continue
    img = mars_like_scene(int(h), int(w), seed=int(seed), channels=int(c))
    if int(bits) > 8:  # spread to the full range with low bits set, little-endian 16-bit samples
        rng = np.random.default_rng(int(seed))
        top = (1 << int(bits)) - 1
        img = np.minimum(img.astype(np.int64) * (top // 255) + rng.integers(0, top // 255 + 1, img.shape), top)
        img = img.astype("<u2")
    open(f"{work}/{name}.raw", "wb").write(img.tobytes())
PY
fail=0
same=0
for spec in "${images[@]}"; do
  read -r name h w c bits seed q t <<< "$spec"
  modes=(whole stream)
  if [[ $q == s* ]]; then  # sequence coding against the earlier frame: whole images only
    args=(--after "$work/$name.first.raw" "$work/blob.pmw" "$work/$name.raw" "$w" "$h" "$c" "${q#s}"); modes=(whole)
    if ! "$root/x86_64/encode_raw" "${args[@]}" "$work/$name.x86_64.pmrs" "$t" > /dev/null 2>&1; then
      echo "skipped    $name  (${c}ch: this blob does not code it)"; continue
    fi
  elif [[ $q == e* ]]; then  # lossless / near-lossless: marsenc_encode_max_error, whole images only
    args=(--bits "$bits" --max-error "${q#e}" "$work/blob.pmw" "$work/$name.raw" "$w" "$h" "$c" 0); modes=(whole)
  else
    args=(--bits "$bits" "$work/blob.pmw" "$work/$name.raw" "$w" "$h" "$c" "$q")
  fi
  "$root/x86_64/encode_raw" "${args[@]}" "$work/$name.x86_64.pmrs" "$t" > /dev/null
  ok=1
  for arch in x86_64 "${variants[@]}" aarch64 ppc; do
    emu=(); [[ $arch == aarch64 ]] && emu=(qemu-aarch64); [[ $arch == ppc ]] && emu=(qemu-ppc)
    for mode in "${modes[@]}"; do
      [[ $arch == x86_64 && $mode == whole ]] && continue
      flag=(); [[ $mode == stream ]] && flag=(--stream)
      out="$work/$name.$arch.$mode.pmrs"
      "${emu[@]}" "$root/$arch/encode_raw" "${flag[@]}" "${args[@]}" "$out" "$t" > /dev/null
      if ! cmp -s "$work/$name.x86_64.pmrs" "$out"; then
        echo "DIFFERENT  $name  x86_64 != $arch ($mode)"; ok=0; fail=1
      fi
    done
  done
  if (( ok )); then
    same=$((same + 1))
    echo "identical  $name  ${c}ch ${bits}-bit q$q tile $t: x86_64 == ${variants[*]/%/ ==} aarch64 == ppc$([[ ${#modes[@]} == 2 ]] && echo ", whole == streamed") ($(stat -c %s "$work/$name.x86_64.pmrs") bytes)"
  fi
done
echo "$same of ${#images[@]} images byte-identical on x86_64 (default, ${variants[*]#x86_64-} builds), aarch64 and 32-bit big-endian PowerPC"
if (( ctest )); then
  for arch in aarch64 ppc; do
    if ctest --test-dir "$root/$arch" --output-on-failure > "$work/ctest-$arch.log" 2>&1; then
      echo "ctest under qemu ($arch): $(grep -E 'tests passed' "$work/ctest-$arch.log")"
    else
      echo "ctest under qemu ($arch) FAILED:"; cat "$work/ctest-$arch.log"; fail=1
    fi
  done
fi
exit $fail
