#!/usr/bin/env bash
# Memory of the flight encoder: arena size and peak resident memory (RSS) of
# the C example (csrc/examples/encode_raw.c) for 256x256, 1152x1600 RGB and
# 4096x4096 gray and RGB images, whole-image and tile-row streaming.
#
#   scripts/memory_figures.sh [BLOB] [TILE]
#   defaults: the shipped pymars/weights/base-v1/encoder.pmw, tile 256
#
# What to expect: the arena depends only on the blob and the tile size (the
# same number on every row). Whole-image mode also holds the image and an
# output buffer of marsenc_max_output_size() bytes (a worst-case bound that is
# allocated but mostly never touched), so its RSS grows with the image;
# streaming holds one strip of TILE rows and one row of tiles of output, so its
# RSS stays flat from 256x256 to 4096x4096.
# SIZES="HxWxC ..." overrides the image list, MODES="whole stream" the modes.
# Environment: JOBS, BUILD_DIR (default build/c).
set -euo pipefail
cd "$(dirname "$0")/.."
blob=${1:-pymars/weights/base-v1/encoder.pmw}
tile=${2:-256}
build=${BUILD_DIR:-build/c}
sizes=${SIZES:-"256x256x3 1152x1600x3 4096x4096x1 4096x4096x3"}
gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$build" -j "${JOBS:-2}" --target encode_raw > /dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-14s %-7s %12s %14s %13s %12s %8s\n' image mode arena_bytes output_buffer peak_RSS_KiB file_bytes seconds
for s in $sizes; do
  IFS=x read -r h w c <<< "$s"
  python3 - "$work/img.raw" "$h" "$w" "$c" <<'PY'
import sys
import numpy as np
import importlib.util  # the scene generator alone (NumPy only): no installed package needed
spec = importlib.util.spec_from_file_location("synthetic", "pymars/data/synthetic.py")
synthetic = importlib.util.module_from_spec(spec); spec.loader.exec_module(synthetic)
mars_like_scene = synthetic.mars_like_scene
h, w, c = (int(v) for v in sys.argv[2:])
base = mars_like_scene(min(h, 512), min(w, 512), seed=1, channels=c)  # tiled: content does not change memory
reps = (-(-h // base.shape[0]), -(-w // base.shape[1])) + ((1,) if c == 3 else ())
np.ascontiguousarray(np.tile(base, reps)[:h, :w]).tofile(sys.argv[1])
PY
  for mode in ${MODES:-whole stream}; do
    flag=(); [[ $mode == stream ]] && flag=(--stream)
    /usr/bin/time -f '%M %e' -o "$work/time" "$build/encode_raw" "${flag[@]}" "$blob" "$work/img.raw" "$w" "$h" "$c" 75 \
      "$work/out.pmrs" "$tile" > "$work/stdout"
    read -r rss secs < "$work/time"
    arena=$(sed -E 's/.*arena ([0-9]+) bytes.*/\1/' "$work/stdout")
    cap=$(sed -E 's/.*output buffer ([0-9]+) bytes.*/\1/' "$work/stdout")
    printf '%-14s %-7s %12s %14s %13s %12s %8s\n' "${h}x${w}x${c}" "$mode" "$arena" "$cap" "$rss" \
      "$(stat -c %s "$work/out.pmrs")" "$secs"
  done
  rm -f "$work/img.raw"
done
