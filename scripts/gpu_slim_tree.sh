#!/usr/bin/env bash
# Fit the working tree into the device's 64 MiB for one call, and put it back after.
#
#   scripts/gpu_slim_tree.sh park      # before the device call: the big tracked folders leave the checkout
#   scripts/gpu_slim_tree.sh restore   # right after it (a second run is harmless)
#
# The `device` tool sends the checkout's tracked files that exist plus `carry` (at most 64 MiB);
# pymars/weights (~160 MB), bench/results (~24 MB) and relay (~10 MB) are not needed to train,
# so `park` moves them to $PARK (default ../.pymars-parked, outside the checkout) and prints
# what would travel with .gpu_pack. Commit nothing while they are parked (git would see them
# deleted). Used on 2026-12-04 for scripts/gpu_enhance.py and scripts/gpu_spectral.sh together
# (56 MiB: the code 2.6 MB, the packs 54 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
park=${PARK:-../.pymars-parked}
dirs="pymars/weights bench/results relay"
case "${1:-}" in
  park)
    [ -e "$park" ] && { echo "$park exists: run 'scripts/gpu_slim_tree.sh restore' first" >&2; exit 2; }
    for d in $dirs; do
      mkdir -p "$park/$(dirname "$d")"
      mv "$d" "$park/$d"
    done
    # (du counts the tracked files still here; the parked ones it cannot find, hence the || true)
    tree=$( (git ls-files -z | du -cb --files0-from=- 2>/dev/null || true) | tail -1 | cut -f1)
    pack=$(du -sb .gpu_pack 2>/dev/null | cut -f1 || echo 0)
    echo "parked $dirs in $park; would travel: tree $((tree / 1048576)) MiB + .gpu_pack $((${pack:-0} / 1048576)) MiB (limit 64)"
    ;;
  restore)
    for d in $dirs; do
      if [ -e "$park/$d" ]; then
        [ -e "$d" ] && { echo "$d is both here and in $park: resolve by hand" >&2; exit 2; }
        mv "$park/$d" "$d"
      fi
    done
    find "$park" -depth -type d -empty -delete 2>/dev/null || true
    [ -e "$park" ] && { echo "$park still holds files: look before deleting it" >&2; exit 2; }
    git status --short | grep -q '^ D' && { echo "tracked files are still missing (git status)" >&2; exit 2; }
    echo "restored"
    ;;
  *) echo "usage: scripts/gpu_slim_tree.sh park|restore" >&2; exit 2 ;;
esac
