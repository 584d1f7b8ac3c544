"""The numpy reference of a whole quantized network, with onnxruntime's CPU arithmetic.

Runs a :class:`gen.network.graph.Graph` node by node and returns every tensor by name, so a
checker can name the first node that differs. What each op computes (../shared/NETWORKS.md, and
onnxruntime's kernels as read and measured; the fp32 steps are numpy float32 operations, which
round to nearest even like the CPU's):

* ``QuantizeLinear``: ``clamp(fp32(x / s), qmin - zp, qmax - zp)``, round half to even, ``+ zp``.
* ``DequantizeLinear``: ``fp32(q - zp) * s``.
* ``QLinearConv`` / ``QLinearMatMul``: int32 ``acc = Σ (x - zx)(w - zw) + bias`` (padding by the
  input zero point), then :func:`requantize`.
* ``QLinearAdd`` (MLAS's AVX2 kernel): ``rA = fp32(sa/sc)``, ``rB = fp32(sb/sc)``,
  ``fixed = fp32(zc) - (rA·za + rB·zb)``, ``y = fma(a, rA, fma(b, rB, fixed))``, round half to
  even, saturate.
* ``QLinearGlobalAveragePool``: ``acc = Σx - zx·H·W``, ``scale = fp32(sx / fp32(sy·H·W))``, then
  :func:`requantize`'s steps.
* ``QLinearAveragePool``: dequantize each input to fp32, add the window's values in row-major order
  in fp32, divide by the count (pads excluded unless ``count_include_pad``), then
  ``nearbyint(fp32(fp32(y / sy) + zy))``, clamped. A window covering the whole unpadded map runs
  the global average pool's integer path instead, as onnxruntime does.
* ``QLinearSoftmax``: onnxruntime's 256-entry fp32 table of ``exp`` (computed in double), fp32
  sums in element order, ``nearbyint(fp32(fp32(t·floor(1/sy)) / sum)) + zy``, saturated at the
  type's maximum.
* ``MaxPool`` (integer or float), ``Reshape``, ``Relu``, ``Clip``: exact.
* ``Softmax`` on float tensors is MLAS's vectorised exp and sum, which numpy does not reproduce
  bit for bit: it runs through an onnxruntime session of that one op (onnxruntime's arithmetic by
  definition). :data:`DELEGATED` lists such ops.
"""

from __future__ import annotations

import numpy as np

from gen.errors import AccelgenError
from gen.network.graph import Graph, Node
from gen.quant import add_params, fma32, gap_scale, requant_scale
from sim.golden import qadd_int
from sim.golden import requantize_fp32 as requantize

__all__ = ["run", "requantize", "conv_acc", "matmul_acc", "gap_acc", "reference_acc",
           "requant_scale", "DELEGATED", "EXACT", "fma32", "qadd_int"]

EXACT = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd",
         "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearSoftmax", "MaxPool", "Reshape",
         "Relu", "Clip")
DELEGATED = ("Softmax",)
_NP = {"int8": np.int8, "uint8": np.uint8}
f32 = np.float32


def _wrap32(v):
    return ((np.asarray(v, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def conv_acc(x, w, bias, zx, zw, strides, pads, dilations, group) -> np.ndarray:
    """int32 accumulators ``Σ (x - zx)(w - zw) + bias`` of a convolution, NCHW x, KCRS w, ONNX
    pads (top, left, bottom, right), padding by ``zx``. Computed in float64 matrix products,
    exact because every partial sum is an integer below 2**53."""
    x = np.asarray(x, dtype=np.float64) - zx
    w = np.asarray(w, dtype=np.float64) - np.asarray(zw, dtype=np.float64).reshape(-1, 1, 1, 1)
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = strides, dilations, pads
    assert cg * r * s * 255.0 * 255.0 < 2.0 ** 52
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    p = (h + pt + pb - dh * (r - 1) - 1) // sh + 1
    q = (wd + pl + pr - dw * (s - 1) - 1) // sw + 1
    cols = np.empty((n, c, r, s, p, q))
    for i in range(r):
        for j in range(s):
            cols[:, :, i, j] = xp[:, :, i * dh:i * dh + (p - 1) * sh + 1:sh,
                                  j * dw:j * dw + (q - 1) * sw + 1:sw]
    g, kg = group, k // group
    cols = cols.reshape(n, g, cg * r * s, p * q).transpose(1, 0, 3, 2).reshape(g, n * p * q, -1)
    y = cols @ w.reshape(g, kg, cg * r * s).transpose(0, 2, 1)         # (g, npq, kg)
    y = y.reshape(g, n, p, q, kg).transpose(1, 0, 4, 2, 3).reshape(n, k, p, q)
    acc = np.rint(y).astype(np.int64) + np.asarray(bias, dtype=np.int64).reshape(1, k, 1, 1)
    return _wrap32(acc)


def matmul_acc(x, w, bias, zx, zw) -> np.ndarray:
    """int32 accumulators ``(x - zx) @ (w - zw) + bias`` (w is (C, K))."""
    xf = np.asarray(x, dtype=np.float64) - zx
    wf = np.asarray(w, dtype=np.float64) - np.asarray(zw, dtype=np.float64).reshape(1, -1)
    assert wf.shape[0] * 255.0 * 255.0 < 2.0 ** 52
    return _wrap32(np.rint(xf @ wf).astype(np.int64) + np.asarray(bias, dtype=np.int64))


def gap_acc(x, zx) -> np.ndarray:
    """int32 accumulators ``Σx - zx·H·W`` of a global average pool (NCHW ``x``; N, C, 1, 1)."""
    x = np.asarray(x, dtype=np.int64)
    return _wrap32(x.sum(axis=(2, 3), keepdims=True) - zx * x.shape[2] * x.shape[3])


def reference_acc(graph: Graph, node: Node, x) -> np.ndarray:
    """The int32 accumulators of a lowered ``node`` (QLinearConv, QLinearMatMul,
    QLinearGlobalAveragePool) for input ``x``."""
    a, qx = node.attrs, graph.q(node.inputs[0])
    if node.op == "QLinearGlobalAveragePool":
        return gap_acc(x, qx.zp)
    if node.op == "QLinearMatMul":
        return matmul_acc(x, a["w"], a["bias"], qx.zp, a["w_zp"])
    return conv_acc(x, a["w"], a["bias"], qx.zp, a["w_zp"], a["strides"], a["pads"],
                    a["dilations"], a["group"])


def _store(v, q) -> np.ndarray:
    return np.asarray(v).astype(_NP[q.dtype])


def _quantize(x, q):
    v = np.clip(np.asarray(x, np.float32) / q.s, f32(q.qmin - q.zp), f32(q.qmax - q.zp))
    return _store(np.rint(v).astype(np.int64) + q.zp, q)


def _dequantize(x, q):
    return (np.asarray(x, dtype=np.int64) - q.zp).astype(np.float32) * q.s


def _qadd(a, b, qa, qb, qc):
    ra, rb, fixed = add_params(qa.s, qa.zp, qb.s, qb.zp, qc.s, qc.zp)
    return _store(qadd_int(a, b, ra, rb, fixed, qc.qmin, qc.qmax), qc)


def _gap_int(x, qx, qy):
    n, c, h, w = x.shape
    scale = gap_scale(qx.s, qy.s, h * w)
    return _store(requantize(gap_acc(x, qx.zp), scale, qy.zp, qy.qmin, qy.qmax), qy)


def _windows(x, kernel, strides, pads, fill):
    """(N, C, kh, kw, P, Q) views of the padded input, ``fill`` in the pads."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, strides, pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    n, c, h, w = x.shape
    p, q = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    out = np.empty((n, c, kh, kw, p, q), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i, j] = xp[:, :, i:i + (p - 1) * sh + 1:sh, j:j + (q - 1) * sw + 1:sw]
    return out


def _avgpool(x, qx, qy, at):
    n, c, h, w = x.shape
    if tuple(at["kernel"]) == (h, w) and not any(at["pads"]):
        return _gap_int(x, qx, qy)
    xf = f32(qx.s) * (np.asarray(x, dtype=np.int64) - qx.zp).astype(np.float32)
    win = _windows(xf, at["kernel"], at["strides"], at["pads"], np.float32(0))
    kh, kw = at["kernel"]
    acc = np.zeros(win.shape[:2] + win.shape[4:], dtype=np.float32)
    for i in range(kh):                                   # row-major window order, fp32
        for j in range(kw):
            acc = acc + win[:, :, i, j]
    if at["count_include_pad"]:
        count = np.full(acc.shape[2:], kh * kw)
    else:
        ones = _windows(np.ones((1, 1, h, w), np.float32), at["kernel"], at["strides"],
                        at["pads"], np.float32(0))
        count = ones.sum(axis=(2, 3))[0, 0]
    y = acc / count.astype(np.float32)
    v = np.rint(y / qy.s + f32(qy.zp)).astype(np.int64)
    return _store(np.clip(v, qy.qmin, qy.qmax), qy)


def _maxpool(x, at, fill):
    return _windows(np.asarray(x), at["kernel"], at["strides"], at["pads"], fill).max(axis=(2, 3))


def softmax_table(x_scale, reduce_len: int) -> np.ndarray:
    """onnxruntime's QLinearSoftmax lookup table: entry i is ``fp32(exp((i - 255 + shift)·sx))``
    in double, ``shift = max(0, log(fp32(FLT_MAX / D)) - 5) / sx``."""
    sx = float(f32(x_scale))
    shift = max(0.0, float(np.log(np.float64(np.finfo(np.float32).max / f32(reduce_len)))) - 5.0)
    shift /= sx
    i = np.arange(256, dtype=np.float64)
    return np.exp((i - 255 + shift) * sx).astype(np.float32)


def _qsoftmax(x, qx, qy, axis, opset):
    x = np.asarray(x, dtype=np.int64)
    shape = x.shape
    axis = axis % x.ndim
    if opset < 13:
        rows = x.reshape(int(np.prod(shape[:axis])), -1)
    else:
        rows = np.moveaxis(x, axis, -1)
        moved = rows.shape
        rows = rows.reshape(-1, shape[axis])
    d = rows.shape[1]
    table = softmax_table(qx.s, d)
    t = table[rows + 255 - rows.max(axis=1, keepdims=True)]
    total = np.zeros(rows.shape[0], dtype=np.float32)
    for i in range(d):                                    # element order, fp32
        total = total + t[:, i]
    ys = np.floor(f32(1.0) / qy.s).astype(np.float32)
    vq = np.rint((t * ys) / total[:, None]).astype(np.int64) + qy.zp
    out = np.minimum(vq, qy.qmax)           # the sum of exps is >= each: vq >= zy >= qmin
    if opset >= 13:
        out = np.moveaxis(out.reshape(moved), -1, axis)
    return _store(out.reshape(shape), qy)


def _ort_softmax(x, axis, opset):
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        raise AccelgenError("a float Softmax runs through onnxruntime (its MLAS arithmetic has no "
                            "exact numpy equivalent); install onnxruntime") from None
    node = helper.make_node("Softmax", ["x"], ["y"], axis=axis)
    g = helper.make_graph([node], "softmax",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": np.asarray(x, np.float32)})[0]


def run_node(graph: Graph, node: Node, env: dict) -> np.ndarray:
    """The output of ``node`` given the tensors in ``env``."""
    op, a = node.op, node.attrs
    x = env[node.inputs[0]]
    qx = graph.q(node.inputs[0])
    qy = graph.q(node.output)
    if op == "QuantizeLinear":
        return _quantize(x, qy)
    if op == "DequantizeLinear":
        return _dequantize(x, qx)
    if op == "QLinearConv":
        acc = conv_acc(x, a["w"], a["bias"], qx.zp, a["w_zp"], a["strides"], a["pads"],
                       a["dilations"], a["group"])
        return _store(requantize(acc, requant_scale(qx.s, a["w_scale"], qy.s), qy.zp, qy.qmin,
                                 qy.qmax), qy)
    if op == "QLinearMatMul":
        acc = matmul_acc(x, a["w"], a["bias"], qx.zp, a["w_zp"])
        return _store(requantize(acc, requant_scale(qx.s, a["w_scale"], qy.s), qy.zp, qy.qmin,
                                 qy.qmax, axis=acc.ndim - 1), qy)
    if op == "QLinearAdd":
        return _qadd(x, env[node.inputs[1]], qx, graph.q(node.inputs[1]), qy)
    if op == "QLinearGlobalAveragePool":
        return _gap_int(x, qx, qy)
    if op == "QLinearAveragePool":
        return _avgpool(x, qx, qy, a)
    if op == "QLinearSoftmax":
        return _qsoftmax(x, qx, qy, a["axis"], a["opset"])
    if op == "MaxPool":
        fill = np.iinfo(x.dtype).min if qx is not None else -np.inf
        return _maxpool(x, a, fill).astype(x.dtype)
    if op == "Reshape":
        return np.asarray(x).reshape(a["target"])
    if op == "Relu":
        return np.maximum(x, np.float32(0))
    if op == "Clip":
        return np.minimum(np.maximum(x, a["min"]), a["max"]).astype(np.float32)
    if op == "Softmax":
        return _ort_softmax(x, a["axis"], a["opset"])
    raise AccelgenError(f"node {node.name!r}: op {op} has no reference")


def check_inputs(graph: Graph, inputs) -> dict:
    """``inputs``: an array (the one model input) or a dict name -> array; float32 of the model's
    input shape. Returns the dict."""
    if not isinstance(inputs, dict):
        if len(graph.inputs) != 1:
            raise AccelgenError(f"the model has {len(graph.inputs)} inputs "
                                f"({', '.join(graph.inputs)}); give a dict name -> array")
        inputs = {graph.inputs[0]: inputs}
    out = {}
    for name in graph.inputs:
        if name not in inputs:
            raise AccelgenError(f"missing model input {name!r}")
        v = np.asarray(inputs[name])
        want = graph.tensors[name].shape
        if v.dtype != np.float32:
            raise AccelgenError(f"input {name!r} must be float32 (the model quantizes it), "
                                f"not {v.dtype}")
        if v.shape != want:
            raise AccelgenError(f"input {name!r} has shape {v.shape} but the model takes {want}")
        out[name] = v
    return out


def run(graph: Graph, inputs, *, hooks: dict | None = None) -> dict[str, np.ndarray]:
    """Every tensor of ``graph`` (inputs, each node's output) by name. ``hooks`` maps an op name
    to a function ``(graph, node, env) -> output`` that replaces the reference for that op (e.g.
    conv/FC layers run on the ISA model, sim/netisa.py)."""
    env = dict(check_inputs(graph, inputs))
    for node in graph.nodes:
        fn = (hooks or {}).get(node.op, run_node)
        env[node.output] = fn(graph, node, env)
    return env
