#!/usr/bin/env bash
# Byte-identical bitstreams across CPUs: encodes a fixed set of images with the
# C API example (csrc/examples/encode_raw.c) built for x86-64, aarch64 and
# 32-bit big-endian PowerPC (Debian cross compilers, run under qemu-user), and
# compares every file byte for byte with the x86-64 one.
#
#   scripts/cross_arch_check.sh [--quick] [BLOB]
#
# Needs: g++-aarch64-linux-gnu g++-powerpc-linux-gnu qemu-user (apt-get install -y ...).
# --quick: two small images (about a minute); default: six images incl. 1152x1600 (slow under qemu-ppc).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [[ "${1:-}" == "--quick" ]]; then quick=1; shift; fi
blob="${1:-pymars/weights/base-v1/encoder.pmw}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() {  # build DIR [TOOLCHAIN]
  local dir=$1 tc=${2:-}
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPYMARS_BUILD_TESTS=OFF \
    ${tc:+-DCMAKE_TOOLCHAIN_FILE=$tc} > "$work/cmake-$(basename "$dir").log"
  ninja -C "$dir" encode_raw > /dev/null
}
build build/x86_64
build build/aarch64 cmake/toolchains/aarch64-linux-gnu.cmake
build build/ppc cmake/toolchains/powerpc-linux-gnu.cmake

# name height width channels seed quality
if (( quick )); then
  images=("rgb64 64 64 3 1 75" "gray48x80 48 80 1 2 30")
else
  images=("rgb256 256 256 3 0 75" "rgb300x200 200 300 3 1 50" "gray128x96 96 128 1 2 90"
          "rgb_q1 256 256 3 3 1" "rgb_q100 256 256 3 4 100" "rgb1152x1600 1152 1600 3 5 60")
fi
python3 - "$work" "${images[@]}" <<'PY'
import sys
sys.path.insert(0, ".")
from pymars.data.synthetic import mars_like_scene
work = sys.argv[1]
for spec in sys.argv[2:]:
    name, h, w, c, seed, q = spec.split()
    open(f"{work}/{name}.raw", "wb").write(mars_like_scene(int(h), int(w), seed=int(seed), channels=int(c)).tobytes())
PY
fail=0
for spec in "${images[@]}"; do
  read -r name h w c seed q <<< "$spec"
  build/x86_64/encode_raw "$blob" "$work/$name.raw" "$w" "$h" "$c" "$q" "$work/$name.x86_64.pmrs" > /dev/null
  for arch in aarch64 ppc; do
    emu=qemu-aarch64; [[ $arch == ppc ]] && emu=qemu-ppc
    $emu build/$arch/encode_raw "$blob" "$work/$name.raw" "$w" "$h" "$c" "$q" "$work/$name.$arch.pmrs" > /dev/null
    if cmp -s "$work/$name.x86_64.pmrs" "$work/$name.$arch.pmrs"; then
      echo "identical  $name  x86_64 == $arch  ($(stat -c %s "$work/$name.x86_64.pmrs") bytes)"
    else
      echo "DIFFERENT  $name  x86_64 != $arch"; fail=1
    fi
  done
done
exit $fail
