"""Lower a network's conv, fully-connected and global-average-pool nodes to the integer layer the
accelerator runs.

onnxruntime's int32 accumulator is ``acc = Σ (x - zx)(w - zw) + bias`` with padding by ``zx``. The
array multiplies the spec's signed integers, so for a QLinearConv/QLinearMatMul node:

* activations: a uint8 tensor becomes int8 exactly by ``x' = x - 128``, ``zx' = zx - 128`` (the
  differences ``x - zx`` are unchanged); an int8 tensor stays as it is;
* weights: ``w' = w - zw`` (quantize_static's int8 weights have ``zw = 0``; uint8 weights with
  ``zw = 128`` become int8 exactly), refused when ``w - zw`` does not fit the spec's weights;
* padding: done on the host with the value ``zx'`` (so a padded tap contributes
  ``(zx' - zx')·w' = 0`` after the correction below), asymmetric pads included; the layer then
  has ``pad = 0``. The stream already carries padding as explicit words (README: known limits),
  so this costs no traffic; it keeps gen/frames.py, which pads with 0, unchanged;
* the zero-point correction folds into the int32 bias: ``bias' = bias - zx'·Σ_{c,r,s} w'[k]``.

Then ``Σ x'_pad·w' + bias' = Σ (x_pad - zx)(w - zw) + bias``: the hardware's accumulators equal
onnxruntime's exactly (mod 2**32, where both wrap). Requantisation stays a separate host step
(:func:`requantize`: per-channel fp32 scale, zero point and clamp range, sim/netgolden.py's
arithmetic). Strides that differ per axis run as stride 1 and are subsampled on the host; fully
connected layers run as 1×1 convolutions over a row of ``M`` pixels.

A QLinearGlobalAveragePool node (and an AveragePool whose window is the whole unpadded map, which
the importer makes one, as onnxruntime runs it) is onnxruntime's ``acc = Σx - zx·H·W`` with the
scale ``fp32(sx / fp32(sy·H·W))`` (gen/quant.py :func:`~gen.quant.gap_scale`) and the same
requantisation steps: the sum of a 1×1 convolution with one output channel and weights of 1, over
``C' = H·W`` input channels (the pixels of a channel, laid out across the array's rows by the host,
as a matmul's rows) and an ``N × C`` map (each pixel one channel of one image), with
``bias = -zx'·H·W``. Each cycle then adds one array-row's worth of values (the input stream's
bound); a depthwise ``H×W`` convolution of ones (groups = C) would run one filter tap per pass,
38× slower on ws_16x16 (ResNet-18's 7×7×512 pool: 125,448 cycles against 3,319).

On the chip, :func:`requant_params` gives the node's requantisation for the STORE path
(gen/quant.py :class:`~gen.quant.Requant`): the same fp32 scale, zero point and clamp range, applied
exactly by the post-processing unit (hw/requant.py), so the accelerator returns the node's
int8/uint8 output directly.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import AccelgenError
from ..layer import MAX_DIM, ConvLayer
from ..quant import Requant, gap_scale, requant_scale
from .graph import Graph, Node

__all__ = ["HwLayer", "lower", "requantize", "requant_params", "finish_outputs",
           "accumulators_on_isa", "outputs_on_isa", "LOWERED_OPS"]

LOWERED_OPS = ("QLinearConv", "QLinearMatMul", "QLinearGlobalAveragePool")
GAP = "QLinearGlobalAveragePool"


@dataclasses.dataclass
class HwLayer:
    """What the accelerator runs for one node: ``layer`` on ``x`` (NCHW), ``w`` (KCRS) and
    ``bias`` (K,), all in the spec's integers; ``subsample`` (sh, sw) picks the strided outputs on
    the host; ``out_shape`` is the node's accumulator shape (NKPQ, or (..., K) for matmul)."""
    node: str
    layer: ConvLayer
    x: np.ndarray
    w: np.ndarray
    bias: np.ndarray
    subsample: tuple[int, int]
    out_shape: tuple[int, ...]
    matmul: bool
    x_offset: int                      # x' = x + x_offset
    pool: bool = False                 # a global average pool: outputs (1, 1, N, C) -> NC11


def _shift(node: Node, what: str, lo_t: int, hi_t: int, lo: int, hi: int, field: str) -> int:
    for off in (0, -128, 128):
        if lo_t + off >= lo and hi_t + off <= hi:
            return off
    raise AccelgenError(f"node {node.name!r}: {what} span {lo_t}..{hi_t}, which the spec's "
                        f"{field} ({lo}..{hi}) cannot hold even shifted by 128; use 8-bit "
                        f"precisions")


def _lower_gap(spec, node: Node, xs: np.ndarray, zx: int, off: int) -> HwLayer:
    """A global average pool as the sum the module docstring describes: ``xs`` (NCHW, the spec's
    integers) laid out as (1, H·W, N, C), weights of 1, ``bias = -zx·H·W``."""
    n, c, h, w = xs.shape
    hw = h * w
    if hw > MAX_DIM:
        raise AccelgenError(f"node {node.name!r}: a global average pool over {h}x{w} = {hw} "
                            f"pixels exceeds the {MAX_DIM} input channels a layer can have")
    layer = ConvLayer(C=hw, H=n, W=c, K=1, name=node.name)
    xt = xs.reshape(n, c, hw).transpose(2, 0, 1)[None]
    bias = np.array([-zx * hw], dtype=np.int64)
    return HwLayer(node.name, layer, xt, np.ones((1, hw, 1, 1), dtype=np.int64), bias, (1, 1),
                   (n, c, 1, 1), False, off, pool=True)


def host_reason(graph: Graph, node: Node) -> str:
    """Why a node of a lowered op stays on the host after all ('' if it does not): a global
    average pool over more pixels than a layer's input channels."""
    if node.op == GAP:
        n, c, h, w = graph.tensors[node.inputs[0]].shape
        if h * w > MAX_DIM:
            return (f"on the host: a global average pool over {h}x{w} = {h * w} pixels exceeds "
                    f"the {MAX_DIM} input channels a layer on the accelerator can have")
    return ""


def lower(spec, graph: Graph, node: Node, x: np.ndarray) -> HwLayer:
    """The hardware layer of a QLinearConv, QLinearMatMul or QLinearGlobalAveragePool ``node``
    for its integer input ``x``."""
    if node.op not in LOWERED_OPS:
        raise AccelgenError(f"node {node.name!r} ({node.op}) does not run on the accelerator")
    a = node.attrs
    qx = graph.q(node.inputs[0])
    alo, ahi = spec.act_range()
    off = _shift(node, "activations", qx.qmin, qx.qmax, alo, ahi, "precision.act_bits/act_signed")
    zx = qx.zp + off
    xs = np.asarray(x, dtype=np.int64) + off
    if node.op == GAP:
        return _lower_gap(spec, node, xs, zx, off)
    wlo, whi = spec.weight_range()
    w = np.asarray(a["w"], dtype=np.int64)
    if node.op == "QLinearMatMul":
        w = (w - a["w_zp"].reshape(1, -1)).T[:, :, None, None]          # (K, C, 1, 1)
    else:
        w = w - a["w_zp"].reshape(-1, 1, 1, 1)
    if w.size and (w.min() < wlo or w.max() > whi):
        raise AccelgenError(
            f"node {node.name!r}: weights minus their zero point span {w.min()}..{w.max()}, "
            f"beyond the spec's precision.weight_bits ({wlo}..{whi}); quantize weights "
            f"symmetrically (quantize_static's int8 default) or widen the weights")
    k = w.shape[0]
    bias = np.asarray(a["bias"], dtype=np.int64) - zx * w.reshape(k, -1).sum(axis=1)
    if node.op == "QLinearMatMul":
        c = w.shape[1]
        rows = xs.reshape(-1, c)                                          # (M, C)
        layer = ConvLayer(C=c, H=1, W=rows.shape[0], K=k, name=node.name)
        return HwLayer(node.name, layer, rows.T[None, :, None, :], w, bias, (1, 1),
                       (*xs.shape[:-1], k), True, off)
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = a["strides"], a["dilations"], a["pads"]
    if dh != dw:
        raise AccelgenError(f"node {node.name!r}: dilations {dh}x{dw} differ per axis; the "
                            f"accelerator's layers have one dilation")
    xp = np.pad(xs, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=zx)
    n, c, h, wd = xp.shape
    stride = sh if sh == sw else 1
    layer = ConvLayer(N=n, C=c, H=h, W=wd, K=k, R=w.shape[2], S=w.shape[3], stride=stride,
                      pad=0, dilation=dh, groups=a["group"], name=node.name)
    sub = (1, 1) if sh == sw else (sh, sw)
    out = graph.tensors[node.output].shape
    return HwLayer(node.name, layer, xp, w, bias, sub, tuple(out), False, off)


def finish(hw: HwLayer, y: np.ndarray) -> np.ndarray:
    """The accelerator's NKPQ output as the node's int32 accumulators (subsampled, reshaped,
    wrapped to 32 bits as onnxruntime's int32 accumulator wraps)."""
    y = np.asarray(y, dtype=np.int64)
    if hw.pool:
        y = y[0, 0].reshape(hw.out_shape)
    if hw.subsample != (1, 1):
        y = y[:, :, ::hw.subsample[0], ::hw.subsample[1]]
    if hw.matmul:
        y = y[0, :, 0, :].T.reshape(hw.out_shape)
    return ((y + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _scale(graph: Graph, node: Node) -> np.ndarray:
    """The node's fp32 requantisation scale: ``fp32(fp32(sx·sw[c]) / sy)`` per output channel,
    or a global average pool's ``fp32(sx / fp32(sy·H·W))``."""
    qx, qy = graph.q(node.inputs[0]), graph.q(node.output)
    if node.op == GAP:
        _, _, h, w = graph.tensors[node.inputs[0]].shape
        return np.asarray(gap_scale(qx.s, qy.s, h * w), dtype=np.float32)
    return requant_scale(qx.s, node.attrs["w_scale"], qy.s)


def requant_params(graph: Graph, node: Node, relu: bool = False) -> Requant:
    """The requantisation of a lowered ``node`` for the STORE path: its fp32 scale (per channel
    ``fp32(fp32(sx·sw[c]) / sy)``; a global average pool's ``fp32(sx / fp32(sy·H·W))``), output
    zero point and the output type's range (uint8 outputs leave the chip as unsigned bytes).
    ``relu``: a ReLU that follows the node, folded into the range (``qmin = zero point``)."""
    qy = graph.q(node.output)
    scale = _scale(graph, node)
    if scale.size == 1:
        scale = np.asarray(scale, dtype=np.float32).reshape(())
    zp = int(qy.zp)
    return Requant(scale, zp, max(qy.qmin, zp) if relu else qy.qmin, qy.qmax)


def finish_outputs(graph: Graph, node: Node, hw: HwLayer, y: np.ndarray) -> np.ndarray:
    """The accelerator's requantised NKPQ output (a program planned with ``requant`` and
    :func:`requant_params`) as the node's output tensor, in its dtype (``node``: the fused
    QLinearAdd's, when the STOREs added a residual)."""
    qy = graph.q(node.output)
    return finish(hw, y).astype(np.int8 if qy.dtype == "int8" else np.uint8)


def requantize(graph: Graph, node: Node, acc: np.ndarray) -> np.ndarray:
    """The node's output from its int32 accumulators: the fp32 scale of :func:`requant_params`,
    zero point and clamp range (sim/netgolden.py)."""
    from sim.netgolden import requantize as rq
    qy = graph.q(node.output)
    scale = _scale(graph, node)
    axis = acc.ndim - 1 if node.op == "QLinearMatMul" else 1
    out = rq(acc, scale, qy.zp, qy.qmin, qy.qmax, axis=axis)
    return out.astype(np.int8 if qy.dtype == "int8" else np.uint8)


def accumulators_on_isa(spec, hw: HwLayer, layer=None) -> np.ndarray:
    """Run ``hw`` through today's tiler, frame encoder and the ISA reference machine
    (gen.tiler.plan + gen.frames.encode + sim.isa_model.run): the node's int32 accumulators
    (``layer``: a gen/pooled.py ConvPool of ``hw.layer`` instead: them max-pooled)."""
    from sim import isa_model
    layer = hw.layer if layer is None else layer
    program = layer.plan(spec, bias=True)
    out = isa_model.run(spec, layer.encode(program, hw.x, hw.w, hw.bias))
    return finish(hw, layer.decode(program, out))


def outputs_on_isa(spec, graph: Graph, node: Node, hw: HwLayer, layer=None, *,
                   add: Node | None = None, residual=None) -> np.ndarray:
    """Run ``hw`` with the node's requantisation on the STORE path through the tiler, frame
    encoder and the ISA reference machine: the node's int8/uint8 output (``layer``: the layer
    that runs instead of ``hw.layer``, a gen/pooled.py ConvPool of it: the pooled output, or a
    gen/residual.py ConvAdd with the QLinearAdd ``add`` and its other input ``residual``: the
    Add's output)."""
    from sim import isa_model
    layer = hw.layer if layer is None else layer
    quant = requant_params(graph, node)
    program = layer.plan(spec, bias=True, requant=True)
    if add is None:
        out = isa_model.run(spec, layer.encode(program, hw.x, hw.w, hw.bias, quant))
        return finish_outputs(graph, node, hw, layer.decode(program, out, quant))
    from .addfuse import add_params_of
    aq = add_params_of(graph, node, add)
    out = isa_model.run(spec, layer.encode(program, hw.x, hw.w, hw.bias, quant,
                                           residual=residual, add=aq))
    return finish_outputs(graph, add, hw, layer.decode(program, out, quant, add=aq))
