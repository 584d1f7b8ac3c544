"""The golden model: plain numpy convolution with the hardware's integer semantics.

It knows nothing of tiles or arrays. Products and sums are exact in int64, then wrapped to the
accumulator width (two's complement), which is what a ``acc_bits`` accumulator that wraps on overflow
computes whatever the order of additions (addition modulo 2**acc_bits is associative).
"""

from __future__ import annotations

import numpy as np

__all__ = ["conv2d", "wrap"]


def wrap(y: np.ndarray, bits: int) -> np.ndarray:
    """Wrap int64 values to a signed ``bits``-bit two's complement range."""
    y = np.asarray(y, dtype=np.int64)
    if bits >= 64:
        return y
    half = np.int64(1) << np.int64(bits - 1)
    return ((y + half) & ((half << np.int64(1)) - np.int64(1))) - half


def conv2d(x, w, bias=None, *, stride=1, pad=0, dilation=1, groups=1, acc_bits=32) -> np.ndarray:
    """Convolution (cross-correlation, as in DNN frameworks) of NCHW ``x`` with KCRS ``w``.

    ``w`` has ``C // groups`` channels per filter; filter ``k`` belongs to group
    ``k // (K // groups)``. Returns NKPQ int64 wrapped to ``acc_bits``.
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    if C % groups or K % groups or Cg != C // groups:
        raise ValueError(f"shapes x{x.shape} w{w.shape} do not match groups={groups}")
    U, D = stride, dilation
    P = (H + 2 * pad - D * (R - 1) - 1) // U + 1
    Q = (W + 2 * pad - D * (S - 1) - 1) // U + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Kg = K // groups
    y = np.zeros((N, K, P, Q), dtype=np.int64)
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Kg:(g + 1) * Kg]
        for r in range(R):
            for s in range(S):
                win = xg[:, :, r * D: r * D + (P - 1) * U + 1: U, s * D: s * D + (Q - 1) * U + 1: U]
                y[:, g * Kg:(g + 1) * Kg] += np.einsum("ncpq,kc->nkpq", win, wg[:, :, r, s])
    if bias is not None:
        y += np.asarray(bias, dtype=np.int64).reshape(1, K, 1, 1)
    return wrap(y, acc_bits)
