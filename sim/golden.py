"""The golden model: plain numpy convolution with the hardware's integer semantics.

It knows nothing of tiles or arrays. Products and sums are exact in int64, then wrapped to the
accumulator width (two's complement), which is what a ``acc_bits`` accumulator that wraps on overflow
computes whatever the order of additions (addition modulo 2**acc_bits is associative). The STORE
path's requantisation is onnxruntime's, in fp32 steps (:func:`requantize_fp32`).
"""

from __future__ import annotations

import numpy as np

from gen.quant import fma32

__all__ = ["conv2d", "wrap", "requantize_fp32", "qadd_int", "postprocess", "maxpool",
           "residual_add", "layer_output"]


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


def requantize_fp32(acc, scale, zero_point, qmin, qmax, axis: int = 1) -> np.ndarray:
    """onnxruntime's requantisation (MLAS ``MlasRequantizeOutput``), in its fp32 steps:
    ``f = fp32(acc)`` (round to nearest even once ``|acc| > 2**24``), ``f = f * scale`` (one
    fp32 multiply, round to nearest even), clamp ``f`` to ``[qmin - zero_point, qmax -
    zero_point]``, round to nearest even, ``+ zero_point``. numpy's float32 arithmetic rounds to
    nearest even like the CPU's (its int64 -> float32 cast rounds once, correctly).

    ``scale`` is one fp32 value, one per channel along ``axis`` (for a convolution or a
    QLinearMatMul, ``fp32(fp32(sx * sw[c]) / sy)``: gen/quant.py :func:`~gen.quant.requant_scale`), or
    an array that broadcasts against ``acc``; ``zero_point``, ``qmin`` and ``qmax`` are integers
    or integer arrays that broadcast against ``acc``.
    ``[qmin, qmax]`` is the output type's range, narrowed by a ReLU or Clip folded into it.
    hw/requant.py is the hardware. Returns int64."""
    zero_point, qmin, qmax = (np.asarray(v, dtype=np.int64) for v in (zero_point, qmin, qmax))
    if (qmin > qmax).any():
        lo, hi = np.broadcast_arrays(qmin, qmax)
        i = np.argmax(lo > hi)
        raise ValueError(f"qmin must not exceed qmax, not {lo.flat[i]} > {hi.flat[i]}")
    acc = np.asarray(acc, dtype=np.int64)
    sc = np.asarray(scale, dtype=np.float32)
    if sc.ndim == 1 and sc.size > 1 and acc.ndim > 1:
        shape = [1] * acc.ndim
        shape[axis] = sc.size
        sc = sc.reshape(shape)
    f = acc.astype(np.float32) * sc
    f = np.clip(f, (qmin - zero_point).astype(np.float32), (qmax - zero_point).astype(np.float32))
    return np.rint(f).astype(np.int64) + zero_point


def qadd_int(a, b, ra, rb, fixed, qmin, qmax) -> np.ndarray:
    """onnxruntime's x86 QLinearAdd (MLAS's AVX2 kernel) of integer inputs ``a`` and ``b`` with
    its fp32 parameters (gen/quant.py :func:`~gen.quant.add_params`): ``clip(rint(fma32(a, ra,
    fma32(b, rb, fixed))), qmin, qmax)``, one fp32 rounding per fused multiply-add, ``rint``
    half to even. hw/resadd.py is the hardware. Returns int64."""
    f32 = np.float32
    with np.errstate(all="ignore"):
        y = fma32(np.asarray(a, f32), f32(ra), fma32(np.asarray(b, f32), f32(rb), f32(fixed)))
        return np.clip(np.rint(y), qmin, qmax).astype(np.int64)


def postprocess(y, spec, quant=None, relu: bool = False) -> np.ndarray:
    """What the STORE path does to NKPQ accumulators: requantise with ``quant`` (a
    :class:`gen.quant.Requant`, ReLU folded into its range) or, without, ReLU alone."""
    if quant is not None:
        q = quant.resolved(spec, np.shape(y)[1], relu)
        return requantize_fp32(y, q.scale, q.zero_point, q.qmin, q.qmax)
    return np.maximum(y, 0) if relu else np.asarray(y, dtype=np.int64)


def maxpool(y, kernel: tuple[int, int], stride: tuple[int, int] | None = None) -> np.ndarray:
    """Max-pooling of NKPQ ``y`` over ``kernel`` windows at ``stride`` (default: the kernel, the
    non-overlapping windows the STORE path pools), no padding, floor mode: output rows
    ``(P - kh) // sh + 1``. An exact integer max, so it commutes with the (monotone)
    requantisation: pooling before or after it gives the same outputs."""
    y = np.asarray(y, dtype=np.int64)
    (kh, kw), (sh, sw) = kernel, stride or kernel
    P, Q = y.shape[2], y.shape[3]
    if P < kh or Q < kw:
        raise ValueError(f"a {kh}x{kw} pooling window does not fit the {P}x{Q} map")
    Po, Qo = (P - kh) // sh + 1, (Q - kw) // sw + 1
    out = None
    for a in range(kh):
        for b in range(kw):
            v = y[:, :, a:a + (Po - 1) * sh + 1:sh, b:b + (Qo - 1) * sw + 1:sw]
            out = v if out is None else np.maximum(out, v)
    return out


def residual_add(y, residual, add) -> np.ndarray:
    """The STORE path's residual add: onnxruntime's QLinearAdd of requantised NKPQ ``y`` and
    ``residual`` with ``add`` (a :class:`gen.quant.AddQuant`: ``y`` is the Add's B with
    ``swap``, else its A)."""
    y, residual = np.asarray(y, dtype=np.int64), np.asarray(residual, dtype=np.int64)
    if y.shape != residual.shape:
        raise ValueError(f"residual has shape {residual.shape}, the outputs {y.shape}")
    a, b = (residual, y) if add.swap else (y, residual)
    return qadd_int(a, b, add.ra, add.rb, add.fixed, add.qmin, add.qmax)


def layer_output(spec, layer, x, w, bias=None, quant=None, relu: bool = False,
                 pool: tuple[int, int] | None = None, residual=None, add=None) -> np.ndarray:
    """What the hardware built from ``spec`` must return for ``layer``: the convolution with the
    spec's accumulator, then the STORE path's post-processing, then ``pool`` (a non-overlapping
    max-pooling window) or the ``residual`` add with ``add`` (gen/quant.py
    :class:`~gen.quant.AddQuant`) if given."""
    y = conv2d(x, w, bias, stride=layer.stride, pad=layer.pad, dilation=layer.dilation,
               groups=layer.groups, acc_bits=spec.acc_bits)
    y = postprocess(y, spec, quant, relu)
    if add is not None:
        y = residual_add(y, residual, add)
    return maxpool(y, pool) if pool else y
