#!/usr/bin/env bash
# Instructions per pixel of the scalar encoder (no AVX2 clone, no
# auto-vectorisation: -DPYMARS_SCALAR=ON), counted by valgrind callgrind inside
# marsenc_encode only (blob parsing and file I/O excluded), on a synthetic
# Mars-like RGB image. Deterministic: the same build and image give the same count.
#
#   scripts/callgrind_scalar.sh [BLOB] [HEIGHTxWIDTH] [TILE] [QUALITY]
#   defaults: the shipped pymars/weights/base-v1/encoder.pmw, 256x256, 256, 75
#
# COMPARE=1 also counts the default build (AVX2 clone where the CPU has it).
# Environment: JOBS (build jobs, default 2), BUILD_DIR (default build/scalar).
# Needs: valgrind, python3 with numpy (falls back to random bytes without it).
set -euo pipefail
cd "$(dirname "$0")/.."
blob=${1:-pymars/weights/base-v1/encoder.pmw}
size=${2:-256x256}
tile=${3:-256}
quality=${4:-75}
h=${size%x*}
w=${size#*x}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gen=(); command -v ninja > /dev/null && gen=(-G Ninja)

python3 - "$work/image.raw" "$h" "$w" 2> /dev/null <<'PY' || head -c $((h * w * 3)) /dev/urandom > "$work/image.raw"
import sys
import importlib.util  # the scene generator alone (NumPy only): no installed package needed
spec = importlib.util.spec_from_file_location("synthetic", "pymars/data/synthetic.py")
synthetic = importlib.util.module_from_spec(spec); spec.loader.exec_module(synthetic)
mars_like_scene = synthetic.mars_like_scene
open(sys.argv[1], "wb").write(mars_like_scene(int(sys.argv[2]), int(sys.argv[3]), seed=0).tobytes())
PY

count() {  # count LABEL BUILD_DIR CMAKE_ARGS...
  local label=$1 dir=$2; shift 2
  cmake -S . -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DPYMARS_BUILD_TESTS=OFF "$@" > "$work/cmake.log"
  cmake --build "$dir" -j "${JOBS:-2}" --target encode_raw > "$work/build.log"
  valgrind --tool=callgrind --callgrind-out-file="$work/$label.out" --toggle-collect=marsenc_encode \
    "$dir/encode_raw" "$blob" "$work/image.raw" "$w" "$h" 3 "$quality" "$work/$label.pmrs" "$tile" > /dev/null 2>&1
  local ins
  ins=$(awk '/^(summary|totals):/ {print $2; exit}' "$work/$label.out")
  awk -v l="$label" -v n="$ins" -v p=$((h * w)) -v s="$size" -v t="$tile" \
    'BEGIN {printf "%-8s %s RGB, tile %s: %.0f instructions in marsenc_encode = %.0f instructions/px\n", l, s, t, n, n / p}'
  callgrind_annotate "$work/$label.out" 2> /dev/null | awk '/file:function/ {go = 1; next} go && NF && n++ < 6 {print "         " $0}'
}
count scalar "${BUILD_DIR:-build/scalar}" -DPYMARS_SCALAR=ON
if [[ "${COMPARE:-0}" == 1 ]]; then
  count default "${DEFAULT_BUILD_DIR:-build/c}"
  cmp -s "$work/scalar.pmrs" "$work/default.pmrs" && echo "scalar and default builds wrote identical files"
fi
