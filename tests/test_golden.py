"""The golden model against independent formulations."""

import itertools

import numpy as np
import pytest
from scipy.signal import correlate

from sim.golden import conv2d, wrap


def _loop_nest(x, w, bias, stride, pad, dilation, groups, acc_bits):
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    P = (H + 2 * pad - dilation * (R - 1) - 1) // stride + 1
    Q = (W + 2 * pad - dilation * (S - 1) - 1) // stride + 1
    y = np.zeros((N, K, P, Q), dtype=object)
    Kg = K // groups
    for n, k, p, q in itertools.product(range(N), range(K), range(P), range(Q)):
        g = k // Kg
        acc = int(bias[k]) if bias is not None else 0
        for c, r, s in itertools.product(range(Cg), range(R), range(S)):
            h = p * stride + r * dilation - pad
            v = q * stride + s * dilation - pad
            if 0 <= h < H and 0 <= v < W:
                acc += int(x[n, g * Cg + c, h, v]) * int(w[k, c, r, s])
        acc = (acc + (1 << (acc_bits - 1))) % (1 << acc_bits) - (1 << (acc_bits - 1))
        y[n, k, p, q] = acc
    return y.astype(np.int64)


@pytest.mark.parametrize("case", [
    dict(N=1, C=3, H=5, W=6, K=4, R=3, S=3, stride=1, pad=1, dilation=1, groups=1),
    dict(N=2, C=4, H=7, W=5, K=6, R=2, S=3, stride=2, pad=2, dilation=2, groups=2),
    dict(N=1, C=4, H=6, W=6, K=4, R=3, S=3, stride=3, pad=0, dilation=1, groups=4),
    dict(N=1, C=2, H=4, W=4, K=3, R=1, S=1, stride=1, pad=0, dilation=1, groups=1),
])
@pytest.mark.parametrize("acc_bits", [32, 18])
def test_against_loop_nest(case, acc_bits):
    rng = np.random.default_rng(1)
    c = dict(case)
    x = rng.integers(-128, 128, (c["N"], c["C"], c["H"], c["W"]))
    w = rng.integers(-128, 128, (c["K"], c["C"] // c["groups"], c["R"], c["S"]))
    b = rng.integers(-5000, 5000, c["K"])
    kw = dict(stride=c["stride"], pad=c["pad"], dilation=c["dilation"], groups=c["groups"],
              acc_bits=acc_bits)
    assert np.array_equal(conv2d(x, w, b, **kw), _loop_nest(x, w, b, **kw))


def test_against_scipy():
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (1, 3, 9, 8))
    w = rng.integers(-128, 128, (2, 3, 3, 4))
    y = conv2d(x, w)
    for k in range(2):
        ref = correlate(x[0], w[k], mode="valid", method="direct")[0]
        assert np.array_equal(y[0, k], ref)


def test_wrap():
    assert wrap(np.array([2**31, -2**31 - 1, 5]), 32).tolist() == [-2**31, 2**31 - 1, 5]
    assert wrap(np.array([200]), 8).tolist() == [-56]
