"""Diagnosis 2: is the carbonate-green mask learnable per pixel from the CaSSIS input?

Features per footprint pixel: the 3 bands (0-1), per-scene z-scores and ranks, log band
ratios, box means at 3 radii and a local std of the z-scored bands, pixel minus local mean,
site one-hot, lat/lon Fourier. Models: logistic regression and a 2x64 MLP (torch, 1 thread),
class-weighted BCE on train pixels (negatives subsampled 1:4). The threshold is the one that
maximises F1 on val pixels; F1 is then reported on test (pooled over all test footprint pixels).
"""
import sys, time
import numpy as np, torch
from scipy.ndimage import uniform_filter
from pymars.spectral.pairs import load_pairs, split_scenes
from pymars.spectral.metrics import carbonate_mask, footprint
from pymars.spectral.metadata import SITES
torch.set_num_threads(1)
torch.manual_seed(0)
pairs = load_pairs()
parts = split_scenes([p.scene for p in pairs], {p.scene: p.meta for p in pairs})

def feats(p, use_meta=True):
    x = p.cassis.astype(np.float32) / 255.0
    fp = footprint(p.cassis) | footprint(p.fal)
    fp = footprint(p.cassis)
    v = x[fp]
    mu, sd = v.mean(0), v.std(0) + 1e-6
    z = (x - mu) / sd * fp[..., None]
    f = [x, z]
    eps = 1 / 255
    f.append(np.stack([np.log((x[..., i] + eps) / (x[..., j] + eps)) for i, j in ((0, 1), (2, 1), (2, 0))], -1))
    rank = np.zeros_like(x)
    for c in range(3):
        r = np.argsort(np.argsort(v[:, c]))
        rank[..., c][fp] = r / max(len(r) - 1, 1)
    f.append(rank)
    w = uniform_filter(fp.astype(np.float32), 1) 
    for rad in (2, 8, 32):
        s = 2 * rad + 1
        cnt = uniform_filter(fp.astype(np.float32), s) + 1e-6
        m = np.stack([uniform_filter(z[..., c], s) for c in range(3)], -1) / cnt[..., None]
        f.append(m)
        if rad == 8:
            f.append(z - m)
    cnt = uniform_filter(fp.astype(np.float32), 9) + 1e-6
    m1 = np.stack([uniform_filter(z[..., c], 9) for c in range(3)], -1) / cnt[..., None]
    m2 = np.stack([uniform_filter(z[..., c] ** 2, 9) for c in range(3)], -1) / cnt[..., None]
    f.append(np.sqrt(np.maximum(m2 - m1 ** 2, 0)))
    F = np.concatenate(f, -1)[fp]
    if use_meta:
        oh = np.zeros((len(SITES),), np.float32)
        lat = lon = 0.0
        if p.meta is not None:
            oh[p.meta.site_index] = 1
            lat, lon = np.deg2rad(p.meta.lat), np.deg2rad(p.meta.lon)
        ff = np.array([np.sin(k * a) for k in (1, 2) for a in (lat, lon)] + [np.cos(k * a) for k in (1, 2) for a in (lat, lon)], np.float32)
        F = np.concatenate([F, np.broadcast_to(np.concatenate([oh, ff]), (len(F), len(oh) + len(ff)))], 1)
    y = carbonate_mask(p.fal)[fp]
    return F.astype(np.float32), y

def build(part, use_meta, sub=None, rng=None):
    Fs, ys = [], []
    for p in pairs:
        if p.scene in parts[part]:
            F, y = feats(p, use_meta)
            if sub:
                keep = y | (rng.random(len(y)) < sub)
                F, y = F[keep], y[keep]
            Fs.append(F); ys.append(y)
    return np.concatenate(Fs), np.concatenate(ys)

def best_f1(s, y):
    o = np.argsort(-s)
    ys = y[o]
    tp = np.cumsum(ys); fp = np.cumsum(~ys); P = ys.sum()
    f1 = 2 * tp / (tp + fp + P)
    i = int(np.argmax(f1))
    return float(f1[i]), float(s[o][i])

def prf(s, y, thr):
    p = s >= thr
    tp = int((p & y).sum()); fp = int((p & ~y).sum()); fn = int((~p & y).sum())
    pr = tp / (tp + fp) if tp + fp else float("nan"); rc = tp / (tp + fn)
    return pr, rc, 2 * tp / (2 * tp + fp + fn)

def fit(net, tX, ty, pw, epochs, weight_decay=0.0):
    """Class-weighted BCE, Adam 3e-3, batches of 4096 in a seeded order (shared with diag_ablation.py)."""
    opt = torch.optim.Adam(net.parameters(), 3e-3, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(0)
    for ep in range(epochs):
        perm = torch.randperm(len(tX), generator=g)
        for i in range(0, len(tX), 4096):
            idx = perm[i:i + 4096]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(tX[idx]).squeeze(1), ty[idx], pos_weight=pw)
            opt.zero_grad(); loss.backward(); opt.step()
    return net

for use_meta in (False, True):
    rng = np.random.default_rng(0)
    Xtr, ytr = build("train", use_meta, 0.25, rng)
    Xva, yva = build("val", use_meta)
    Xte, yte = build("test", use_meta)
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
    n = lambda X: torch.from_numpy((X - mu) / sd)
    tX, ty = n(Xtr), torch.from_numpy(ytr.astype(np.float32))
    pw = torch.tensor(float((~ytr).sum() / ytr.sum()))
    for kind in ("logreg", "mlp"):
        d = tX.shape[1]
        net = torch.nn.Linear(d, 1) if kind == "logreg" else torch.nn.Sequential(
            torch.nn.Linear(d, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64), torch.nn.SiLU(), torch.nn.Linear(64, 1))
        t0 = time.time()
        fit(net, tX, ty, pw, 6 if kind == "mlp" else 4, weight_decay=1e-5)
        with torch.no_grad():
            sv = net(n(Xva)).squeeze(1).numpy(); st = net(n(Xte)).squeeze(1).numpy(); s_tr = net(tX).squeeze(1).numpy()
        f1v, thr = best_f1(sv, yva)
        pr, rc, f1t = prf(st, yte, thr)
        f1_oracle, _ = best_f1(st, yte)
        f1_tr, _ = best_f1(s_tr, ytr)
        print(f"meta={use_meta} {kind}: train(sub) bestF1 {f1_tr:.3f} | val bestF1 {f1v:.3f} thr {thr:.3f} | "
              f"test @val-thr P {pr:.3f} R {rc:.3f} F1 {f1t:.3f} | test oracle-thr F1 {f1_oracle:.3f} "
              f"({time.time()-t0:.0f}s, {len(tX)} train px, {d} feats)", flush=True)
