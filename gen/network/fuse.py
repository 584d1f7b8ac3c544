"""The node rewrites of gen/network/onnx_import.py: QDQ groups into quantized nodes (as
onnxruntime's QDQ selector/action transformer fuses them), float ops between Q/DQ pairs, and the
QOperator nodes taken as they are. Shapes come from gen/network/shapes.py."""

from __future__ import annotations

import numpy as np

from . import shapes
from .graph import QParams

__all__ = ["group", "float_op", "qoperator"]


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _per_channel(imp, node, q: QParams, k: int, axis: int, what: str) -> tuple:
    """Per-output-channel (scale, zp) arrays of length ``k`` from per-tensor or per-channel q."""
    if q.scale.size == 1:
        return np.full(k, q.s, dtype=np.float32), np.full(k, q.zp, dtype=np.int64)
    if q.scale.size != k or (q.axis is not None and q.axis not in (axis, axis - 4, axis - 2)):
        imp.err(node, f"{what} quantisation must be per tensor or per output channel "
                      f"({k} scales), not {q.scale.shape} along axis {q.axis}")
    zp = q.zero_point.reshape(-1)
    if len(set(zp.tolist())) != 1:
        imp.err(node, f"{what} zero points differ between channels ({zp.min()}..{zp.max()}); "
                      f"onnxruntime needs one common weight zero point")
    return q.scale.reshape(-1).astype(np.float32), np.broadcast_to(zp, (k,)).astype(np.int64)


def _same_q(a: QParams, b: QParams) -> bool:
    return (a.dtype == b.dtype and a.scale.size == b.scale.size == 1 and a.s == b.s
            and a.zp == b.zp)


def _avgpool_op(at: dict, x_shape) -> str:
    """An average pool whose window is the whole unpadded map is onnxruntime's global average
    pool (qlinear_pool.cc falls back to it: the integer sum, not fp32 window sums)."""
    whole = tuple(at["kernel"]) == tuple(x_shape[2:]) and not any(at["pads"])
    return "QLinearGlobalAveragePool" if whole else "QLinearAveragePool"


def _rank4(imp, node, shape) -> None:
    if len(shape) != 4:
        imp.err(node, f"only 2-D global average pooling (NCHW inputs) is supported, not rank "
                      f"{len(shape)}")


def _y(imp, qn):
    return imp.qparams(qn, qn.input[1], qn.input[2] if len(qn.input) > 2 else None, "uint8")


def _weights(imp, node, w_name, b_name, k_axis):
    w = imp.const_dq(w_name, node)
    if w is None:
        imp.err(node, f"weight {w_name!r} is not quantized (no DequantizeLinear of an int8/uint8 "
                      f"initializer), so onnxruntime computes this node in float; quantize "
                      f"the whole model with onnxruntime.quantization.quantize_static")
    wv, wq = w
    if wq.dtype not in ("int8", "uint8"):
        imp.err(node, f"weights must be int8 or uint8, not {wq.dtype}")
    k = wv.shape[k_axis]
    ws, wz = _per_channel(imp, node, wq, k, k_axis, "weight")
    bias = np.zeros(k, dtype=np.int64)
    if b_name:
        b = imp.const_dq(b_name, node)
        if b is None or b[1].dtype != "int32":
            imp.err(node, f"bias {b_name!r} must be a DequantizeLinear of an int32 initializer "
                          f"(as quantize_static writes it)")
        bias = b[0].reshape(-1)
        if bias.size != k:
            imp.err(node, f"bias has {bias.size} values for {k} output channels")
    return wv, ws, wz, bias


def _conv_attrs(imp, node, w_shape, x_shape):
    a = _attrs(node)
    if len(x_shape) != 4:
        imp.err(node, f"only 2-D convolutions (NCHW inputs) are supported, not rank {len(x_shape)}")
    k = tuple(a.get("kernel_shape", w_shape[2:]))
    strides = tuple(a.get("strides", (1, 1)))
    dil = tuple(a.get("dilations", (1, 1)))
    pads = shapes.resolve_pads(imp, node, a, x_shape[2:], k, strides, dil)
    return dict(strides=strides, pads=pads, dilations=dil, group=int(a.get("group", 1)))


def group(imp, node, qn) -> bool:
    """Fuse ``DQ inputs -> node -> qn`` into one quantized node; False if onnxruntime would not
    (the caller then emits the float op)."""
    op, name = node.op_type, node.name
    x = imp.act(node.input[0], node)
    if x is None:
        return False
    xt = imp.tensors[x]
    yq = _y(imp, qn)
    y = qn.output[0]
    src = [name, qn.name]
    if op == "Conv":
        wv, ws, wz, bias = _weights(imp, node, node.input[1],
                                    node.input[2] if len(node.input) > 2 else "", 0)
        at = _conv_attrs(imp, node, wv.shape, xt.shape)
        shape = shapes.conv(imp, node, xt.shape, wv.shape, at)
        imp.emit("QLinearConv", [x], y, shape, yq.dtype, yq, src, w=wv, w_scale=ws, w_zp=wz,
                 bias=bias, **at)
    elif op in ("Gemm", "MatMul"):
        a = _attrs(node)
        if op == "Gemm" and (a.get("transA", 0) or a.get("alpha", 1.0) != 1.0
                             or a.get("beta", 1.0) != 1.0):
            imp.err(node, "only Gemm with transA=0, alpha=1 and beta=1 is supported")
        trans = op == "Gemm" and a.get("transB", 0)
        wv, ws, wz, bias = _weights(imp, node, node.input[1],
                                    node.input[2] if op == "Gemm" and len(node.input) > 2 else "",
                                    0 if trans else 1)
        if wv.ndim != 2:
            imp.err(node, f"the weight must be a matrix, not shape {wv.shape}")
        w = wv.T if trans else wv                     # (C, K)
        if xt.shape[-1] != w.shape[0] or (op == "Gemm" and len(xt.shape) != 2):
            imp.err(node, f"input shape {xt.shape} does not match weights {w.shape}")
        imp.emit("QLinearMatMul", [x], y, (*xt.shape[:-1], w.shape[1]), yq.dtype, yq, src,
                 w=w, w_scale=ws, w_zp=wz, bias=bias)
    elif op == "Add":
        b = imp.act(node.input[1], node)
        if b is None:
            imp.err(node, "both inputs of a quantized Add must be quantized activations")
        shape = tuple(np.broadcast_shapes(xt.shape, imp.tensors[b].shape))
        imp.emit("QLinearAdd", [x, b], y, shape, yq.dtype, yq, src)
    elif op in ("AveragePool", "MaxPool"):
        if op == "MaxPool" and not _same_q(xt.q, yq):
            return False
        at = shapes.pool_attrs(imp, node, xt.shape)
        shape = shapes.pool(xt.shape, at)
        qop = _avgpool_op(at, xt.shape) if op == "AveragePool" else "MaxPool"
        imp.emit(qop, [x], y, shape, yq.dtype, yq, src,
                 **(at if qop != "QLinearGlobalAveragePool" else {}))
    elif op == "GlobalAveragePool":
        _rank4(imp, node, xt.shape)
        imp.emit("QLinearGlobalAveragePool", [x], y, (*xt.shape[:2], 1, 1), yq.dtype, yq, src)
    elif op == "Softmax":
        axis = _attrs(node).get("axis", -1 if imp.opset >= 13 else 1)
        imp.emit("QLinearSoftmax", [x], y, xt.shape, yq.dtype, yq, src, axis=int(axis),
                 opset=imp.opset)
    elif op in ("Reshape", "Flatten"):
        if not _same_q(xt.q, yq):
            return False
        shape = shapes.reshape(imp, node, xt.shape)
        imp.emit("Reshape", [x], y, shape, yq.dtype, yq, src, target=shape)
    else:
        return False
    return True


def float_op(imp, node):
    """``node`` outside a QDQ group: an op onnxruntime runs on float tensors exactly (Relu,
    Clip, MaxPool, Reshape/Flatten, Softmax), or on an integer tensor (MaxPool, Reshape/Flatten
    in QOperator models)."""
    op = node.op_type
    src = node.input[0]
    t = imp.tensors.get(src)
    if t is not None and t.dtype in ("int8", "uint8"):
        if op not in ("MaxPool", "Reshape", "Flatten"):
            imp.err(node, f"{op} on the integer tensor {src!r} is not supported")
        if op == "MaxPool":
            at = shapes.pool_attrs(imp, node, t.shape)
            imp.emit("MaxPool", [src], node.output[0], shapes.pool(t.shape, at), t.dtype, t.q,
                     [node.name], **at)
        else:
            shape = shapes.reshape(imp, node, t.shape)
            imp.emit("Reshape", [src], node.output[0], shape, t.dtype, t.q, [node.name],
                     target=shape)
        return
    if op not in ("Relu", "Clip", "MaxPool", "Reshape", "Flatten", "Softmax"):
        why = ("its output is not quantized (no QuantizeLinear follows it)"
               if imp.act(src, node) else "its input is not quantized")
        imp.err(node, f"{why}, so onnxruntime computes it in float; quantize the whole model "
                      f"with onnxruntime.quantization.quantize_static")
    x = imp.float_input(src)
    shape = imp.tensors[x].shape
    out = node.output[0]
    if op == "Relu":
        imp.emit("Relu", [x], out, shape, "float32", source=[node.name])
    elif op == "Clip":
        a = _attrs(node)
        lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        if len(node.input) > 1 and node.input[1]:
            lo = float(imp.const(node.input[1], node))
        if len(node.input) > 2 and node.input[2]:
            hi = float(imp.const(node.input[2], node))
        imp.emit("Clip", [x], out, shape, "float32", source=[node.name], min=np.float32(lo),
                 max=np.float32(hi))
    elif op == "MaxPool":
        at = shapes.pool_attrs(imp, node, shape)
        imp.emit("MaxPool", [x], out, shapes.pool(shape, at), "float32", source=[node.name], **at)
    elif op == "Softmax":
        axis = _attrs(node).get("axis", -1 if imp.opset >= 13 else 1)
        imp.emit("Softmax", [x], out, shape, "float32", source=[node.name], axis=int(axis),
                 opset=imp.opset)
    else:
        s = shapes.reshape(imp, node, shape)
        imp.emit("Reshape", [x], out, s, "float32", source=[node.name], target=s)


def _qp(imp, node, i_scale, i_zp, dtype="uint8"):
    return imp.qparams(node, node.input[i_scale],
                       node.input[i_zp] if len(node.input) > i_zp and node.input[i_zp] else None,
                       dtype)


def _check_in(imp, node, x, q):
    t = imp.tensors.get(x)
    if t is None or t.q is None:
        imp.err(node, f"input {x!r} must be a quantized tensor")
    if not _same_q(t.q, q):
        imp.err(node, f"input {x!r} is quantized as {t.q.describe()} but the node reads it as "
                      f"{q.describe()}")
    return t


def qoperator(imp, node):
    """A QOperator node (as quantize_static's QOperator format writes it)."""
    op, name, a = node.op_type, node.name, _attrs(node)
    y = node.output[0]
    if a.get("channels_last", 0):
        imp.err(node, "channels_last QLinear nodes are not supported (give the model as exported)")
    if op == "QLinearConv":
        xt = _check_in(imp, node, node.input[0], _qp(imp, node, 1, 2))
        wv = imp.const(node.input[3], node).astype(np.int64)
        wq = _qp(imp, node, 4, 5, "int8")
        wq = QParams(wq.scale, wq.zero_point, str(imp.inits[node.input[3]].dtype), 0)
        ws, wz = _per_channel(imp, node, wq, wv.shape[0], 0, "weight")
        yq = _qp(imp, node, 6, 7)
        bias = (imp.const(node.input[8], node).astype(np.int64).reshape(-1)
                if len(node.input) > 8 and node.input[8] else np.zeros(wv.shape[0], np.int64))
        at = _conv_attrs(imp, node, wv.shape, xt.shape)
        imp.emit("QLinearConv", [node.input[0]], y, shapes.conv(imp, node, xt.shape, wv.shape, at),
                 yq.dtype, yq, [name], w=wv, w_scale=ws, w_zp=wz, bias=bias, **at)
    elif op in ("QLinearMatMul", "QGemm"):
        xt = _check_in(imp, node, node.input[0], _qp(imp, node, 1, 2))
        wv = imp.const(node.input[3], node).astype(np.int64)
        trans = op == "QGemm" and a.get("transB", 0)
        if op == "QGemm" and (a.get("transA", 0) or a.get("alpha", 1.0) != 1.0):
            imp.err(node, "only QGemm with transA=0 and alpha=1 is supported")
        wq = _qp(imp, node, 4, 5, "int8")
        wq = QParams(wq.scale, wq.zero_point, str(imp.inits[node.input[3]].dtype), None)
        w = wv.T if trans else wv
        ws, wz = _per_channel(imp, node, wq, w.shape[1], 1, "weight")
        if op == "QGemm":
            bias = (imp.const(node.input[6], node).astype(np.int64).reshape(-1)
                    if len(node.input) > 6 and node.input[6] else np.zeros(w.shape[1], np.int64))
            if len(node.input) < 8 or not node.input[7]:
                imp.err(node, "QGemm without an output scale (float output) is not supported")
            yq = _qp(imp, node, 7, 8, "int8")
        else:
            bias = np.zeros(w.shape[1], np.int64)
            yq = _qp(imp, node, 6, 7)
        imp.emit("QLinearMatMul", [node.input[0]], y, (*xt.shape[:-1], w.shape[1]), yq.dtype, yq,
                 [name], w=w, w_scale=ws, w_zp=wz, bias=bias)
    elif op == "QLinearAdd":
        at_ = _check_in(imp, node, node.input[0], _qp(imp, node, 1, 2))
        bt = _check_in(imp, node, node.input[3], _qp(imp, node, 4, 5))
        yq = _qp(imp, node, 6, 7)
        imp.emit("QLinearAdd", [node.input[0], node.input[3]], y,
                 tuple(np.broadcast_shapes(at_.shape, bt.shape)), yq.dtype, yq, [name])
    elif op in ("QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearSoftmax"):
        xt = _check_in(imp, node, node.input[0], _qp(imp, node, 1, 2))
        yq = _qp(imp, node, 3, 4)
        if op == "QLinearAveragePool":
            at = shapes.pool_attrs(imp, node, xt.shape)
            op = _avgpool_op(at, xt.shape)
        if op == "QLinearAveragePool":
            imp.emit(op, [node.input[0]], y, shapes.pool(xt.shape, at), yq.dtype, yq, [name], **at)
        elif op == "QLinearGlobalAveragePool":
            _rank4(imp, node, xt.shape)
            imp.emit(op, [node.input[0]], y, (*xt.shape[:2], 1, 1), yq.dtype, yq, [name])
        else:
            imp.emit(op, [node.input[0]], y, xt.shape, yq.dtype, yq, [name],
                     axis=int(a.get("axis", -1)), opset=int(a.get("opset", imp.opset)))
