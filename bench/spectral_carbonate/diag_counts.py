"""Diagnosis 1: carbonate pixel counts per part and per scene."""
import numpy as np
from pymars.spectral.pairs import load_pairs, split_scenes
from pymars.spectral.metrics import carbonate_mask, footprint
pairs = load_pairs()
parts = split_scenes([p.scene for p in pairs], {p.scene: p.meta for p in pairs})
for part in ("train", "val", "test"):
    tot_fp = tot_c = 0
    rows = []
    for p in pairs:
        if p.scene not in parts[part]:
            continue
        fp = footprint(p.fal) ; c = carbonate_mask(p.fal)
        cin = carbonate_mask(p.cassis)
        tot_fp += fp.sum(); tot_c += c.sum()
        rows.append((p.scene, p.meta.site if p.meta else "-", int(fp.sum()), int(c.sum()), int(cin.sum())))
    print(f"== {part}: {len(rows)} scenes, footprint {tot_fp}, carbonate {tot_c} ({100*tot_c/tot_fp:.2f} %)")
    for r in sorted(rows, key=lambda r: -r[3]):
        if r[3] > 0:
            print(f"  {r[0]} {r[1]:12s} fp {r[2]:6d} carb {r[3]:6d} ({100*r[3]/r[2]:.2f} %) input-green {r[4]}")
    print("  scenes with 0 carbonate:", sum(r[3] == 0 for r in rows))
