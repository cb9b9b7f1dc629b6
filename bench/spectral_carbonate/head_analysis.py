"""The carbonate head beyond the table: test F1 at the best threshold on test itself (an upper bound,
NOT a valid result: it peeks at test), and per-scene counts at the val-chosen threshold."""
import sys
import numpy as np
from pymars.spectral.evaluate import carbonate_head_outputs, choose_carbonate_threshold, held_out_pairs
from pymars.spectral.metrics import best_f1, carbonate_mask, footprint
w = sys.argv[1]
val, test = held_out_pairs("val"), held_out_pairs("test")
for meta in (False, True):
    thr, f1v = choose_carbonate_threshold(carbonate_head_outputs(w, val, meta)[1], val)
    _, lt = carbonate_head_outputs(w, test, meta)
    s = np.concatenate([l[footprint(p.cassis)] for l, p in zip(lt, test)])
    t = np.concatenate([carbonate_mask(p.fal)[footprint(p.cassis)] for p in test])
    f1o, thro = best_f1(s, t)
    print(f"meta={meta}: val thr {thr:.3f} (val F1 {f1v:.3f}); test-oracle F1 {f1o:.3f} at {thro:.3f} (upper bound)")
    for l, p in zip(lt, test):
        fp_, tr = footprint(p.cassis), carbonate_mask(p.fal)
        pr = (l >= thr) & fp_
        print(f"   {p.scene} {p.meta.site if p.meta else '-':14s} true {int(tr.sum()):5d} pred {int(pr.sum()):6d} tp {int((pr & tr).sum()):5d}")
