"""Diagnosis 3: the shipped UNet's continuous green excess G - max(R, B) (before 8-bit rounding) as a
carbonate score, threshold chosen on val, F1 on test (pooled). Also per-scene counts of the logistic model."""
import sys
import numpy as np, onnxruntime as ort
from pymars.spectral.evaluate import held_out_pairs
from pymars.spectral.metrics import carbonate_mask, footprint
weights = sys.argv[1] if len(sys.argv) > 1 else "pymars/weights/spectral-unet"
o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
s = ort.InferenceSession(f"{weights}/model.onnx", o, providers=["CPUExecutionProvider"])
names = {i.name for i in s.get_inputs()}
def score(part, meta):
    S, Y = [], []
    for p in held_out_pairs(part):
        x = (np.moveaxis(p.cassis.astype(np.float32), -1, 0)[None] / 127.5 - 1).astype(np.float32)
        m = p.meta if meta else None
        f = {"cassis": x, "image_keep": np.ones(1, np.float32), "lat": np.array([m.lat if m else 0], np.float32),
             "lon": np.array([m.lon if m else 0], np.float32), "site": np.array([m.site_index if m else 0], np.int64),
             "meta_keep": np.array([1.0 if m else 0.0], np.float32)}
        out = s.run(None, {k: v for k, v in f.items() if k in names})[0][0] * 127.5
        fp = footprint(p.cassis)
        S.append((out[1] - np.maximum(out[0], out[2]))[fp]); Y.append(carbonate_mask(p.fal)[fp])
    return np.concatenate(S), np.concatenate(Y)
def best_f1(s, y):
    o = np.argsort(-s); ys = y[o]; tp = np.cumsum(ys); fp = np.cumsum(~ys)
    f1 = 2 * tp / (tp + fp + ys.sum()); i = int(np.argmax(f1)); return float(f1[i]), float(s[o][i])
for meta in (False, True):
    sv, yv = score("val", meta); st, yt = score("test", meta)
    f1v, thr = best_f1(sv, yv); p = st >= thr
    tp = (p & yt).sum(); f1t = 2 * tp / (p.sum() + yt.sum())
    print(f"{weights} meta={meta}: max predicted excess val {sv.max():.2f} test {st.max():.2f}; val bestF1 {f1v:.3f} "
          f"thr {thr:.2f} -> test P {tp/max(p.sum(),1):.3f} R {tp/yt.sum():.3f} F1 {f1t:.3f}; test oracle F1 {best_f1(st, yt)[0]:.3f}")
