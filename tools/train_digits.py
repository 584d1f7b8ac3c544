#!/usr/bin/env python3
"""Train the digits CNN (gen/network/digits.py) with numpy, export it to ONNX, quantize it with
onnxruntime's quantize_static (QDQ, int8, calibrated on training images) and write
models/digits_cnn_int8.onnx. Seeded: the same command writes the same model.

    python tools/train_digits.py [--epochs 60] [--out models/digits_cnn_int8.onnx]

Prints the fp32 and int8 accuracy on the test split. Needs numpy, scikit-learn (the data), onnx
and onnxruntime; no deep-learning framework.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.network import digits  # noqa: E402
from gen.network.zoo import quantize  # noqa: E402


def im2col(x):
    """(N, C, H, W) -> (N, C*9, H*W) for a 3x3 window, padding 1."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, c, 3, 3, h, w), dtype=x.dtype)
    for i in range(3):
        for j in range(3):
            cols[:, :, i, j] = xp[:, :, i:i + h, j:j + w]
    return cols.reshape(n, c * 9, h * w)


def col2im(cols, shape):
    n, c, h, w = shape
    cols = cols.reshape(n, c, 3, 3, h, w)
    xp = np.zeros((n, c, h + 2, w + 2), dtype=cols.dtype)
    for i in range(3):
        for j in range(3):
            xp[:, :, i:i + h, j:j + w] += cols[:, :, i, j]
    return xp[:, :, 1:-1, 1:-1]


def init(rng):
    p, c = {}, 1
    for name, k in digits.ARCH:
        p[name + "_w"] = rng.normal(0, np.sqrt(2 / (c * 9)), (k, c, 3, 3)).astype(np.float32)
        p[name + "_b"] = np.zeros(k, np.float32)
        c = k
    p["fc_w"] = rng.normal(0, np.sqrt(1 / c), (10, c)).astype(np.float32)
    p["fc_b"] = np.zeros(10, np.float32)
    return p


def forward(p, x):
    """Logits and the cache for backward."""
    cache = []
    for name, k in digits.ARCH:
        n, c, h, w = x.shape
        cols = im2col(x)
        z = (p[name + "_w"].reshape(k, -1) @ cols).reshape(n, k, h, w) + \
            p[name + "_b"][None, :, None, None]
        a = np.maximum(z, 0)
        cache.append((name, x.shape, cols, z))
        if name == "conv2":
            a4 = a.reshape(n, k, h // 2, 2, w // 2, 2)
            pooled = a4.max(axis=(3, 5))
            mask = a4 == pooled[:, :, :, None, :, None]
            cache.append(("pool", a.shape, mask, None))
            a = pooled
        x = a
    feat = x.mean(axis=(2, 3))
    cache.append(("gap", x.shape, feat, None))
    return feat @ p["fc_w"].T + p["fc_b"], cache


def backward(p, cache, dlogits):
    g = {}
    _, shape, feat, _ = cache[-1]
    g["fc_w"] = dlogits.T @ feat
    g["fc_b"] = dlogits.sum(axis=0)
    dx = np.broadcast_to((dlogits @ p["fc_w"])[:, :, None, None] / (shape[2] * shape[3]),
                         shape).copy()
    for name, xshape, cols, z in reversed(cache[:-1]):
        if name == "pool":
            n, k, h, w = xshape
            dx = (cols * dx[:, :, :, None, :, None]).reshape(xshape)
            continue
        k = z.shape[1]
        dz = (dx * (z > 0)).reshape(z.shape[0], k, -1)
        g[name + "_w"] = np.einsum("nkp,ncp->kc", dz, cols).reshape(p[name + "_w"].shape)
        g[name + "_b"] = dz.sum(axis=(0, 2))
        dx = col2im(np.einsum("kc,nkp->ncp", p[name + "_w"].reshape(k, -1), dz), xshape)
    return g


def train(x, y, epochs, seed=0, batch=32, lr=3e-3):
    rng = np.random.default_rng(seed)
    p = init(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        rate = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))       # cosine decay
        for i in range(0, len(y), batch):
            idx = order[i:i + batch]
            logits, cache = forward(p, x[idx])
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            prob = e / e.sum(axis=1, keepdims=True)
            prob[np.arange(len(idx)), y[idx]] -= 1
            grads = backward(p, cache, prob / len(idx))
            step += 1
            for k in p:                                               # Adam
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v2[k] = 0.999 * v2[k] + 0.001 * grads[k] ** 2
                mh, vh = m[k] / (1 - 0.9 ** step), v2[k] / (1 - 0.999 ** step)
                p[k] = (p[k] - rate * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
    return p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--calibration", type=int, default=200, help="training images to calibrate on")
    ap.add_argument("--out", type=Path, default=digits.MODEL_PATH)
    args = ap.parse_args(argv)
    import onnx
    import onnxruntime as ort
    x_tr, y_tr, x_te, y_te, _ = digits.load_split()
    p = train(x_tr, y_tr, args.epochs)
    fp32 = float((forward(p, x_te)[0].argmax(axis=1) == y_te).mean())
    model = digits.export(p)
    cal = [x_tr[i:i + 1] for i in range(min(args.calibration, len(x_tr)))]
    q = quantize(model, cal, fmt="qdq", activations="int8", weights="int8")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(q, args.out)
    so = ort.SessionOptions()
    so.add_session_config_entry("session.x64quantprecision", "1")
    s = ort.InferenceSession(str(args.out), so, providers=["CPUExecutionProvider"])
    int8 = float((s.run(None, {"input": x_te})[0].argmax(axis=1) == y_te).mean())
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    print(f"test split: {len(y_te)} images; accuracy fp32 {fp32:.4f}, int8 (onnxruntime) {int8:.4f}")


if __name__ == "__main__":
    main()
