"""Diagnosis 2b: logistic regression on feature subsets (same protocol as diag_pixel.py, metadata included):
which inputs carry the carbonate signal? Columns of diag_pixel.feats: 0-2 bands, 3-5 scene z-scores,
6-8 log ratios, 9-11 scene ranks, 12-14 mean r2, 15-17 mean r8, 18-20 z - mean r8, 21-23 mean r32,
24-26 local std, 27+ site one-hot and lat/lon Fourier."""
import numpy as np, torch, runpy, sys
sys.argv = ["x"]
g = {}
src = open("bench/spectral_carbonate/diag_pixel.py").read().split("for use_meta in")[0]
exec(src, g)
build, best_f1, prf, fit = g["build"], g["best_f1"], g["prf"], g["fit"]
rng = np.random.default_rng(0)
Xtr, ytr = build("train", True, 0.25, rng); Xva, yva = build("val", True); Xte, yte = build("test", True)
sets = {"raw bands + ratios": list(range(0, 3)) + list(range(6, 9)),
        "raw + ratios + local (no scene stats)": list(range(0, 3)) + list(range(6, 9)) + list(range(12, 15)) + [],
        "scene z + ranks only": list(range(3, 6)) + list(range(9, 12)),
        "all but metadata": list(range(27)),
        "all but scene z/ranks": [i for i in range(Xtr.shape[1]) if i not in range(3, 6) and i not in range(9, 12)],
        "metadata only": list(range(27, Xtr.shape[1])),
        "all": list(range(Xtr.shape[1]))}
for name, cols in sets.items():
    torch.manual_seed(0)
    a, b, c = Xtr[:, cols], Xva[:, cols], Xte[:, cols]
    mu, sd = a.mean(0), a.std(0) + 1e-6
    tX = torch.from_numpy((a - mu) / sd); ty = torch.from_numpy(ytr.astype(np.float32))
    net = fit(torch.nn.Linear(len(cols), 1), tX, ty, torch.tensor(float((~ytr).sum() / ytr.sum())), 4)
    with torch.no_grad():
        sv = net(torch.from_numpy((b - mu) / sd)).squeeze(1).numpy(); st = net(torch.from_numpy((c - mu) / sd)).squeeze(1).numpy()
    f1v, thr = best_f1(sv, yva); pr, rc, f1t = prf(st, yte, thr)
    print(f"{name:40s} val F1 {f1v:.3f} | test @val-thr P {pr:.3f} R {rc:.3f} F1 {f1t:.3f} | test-oracle F1 {best_f1(st, yte)[0]:.3f}", flush=True)
