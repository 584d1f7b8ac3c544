"""A whole network with its lowered layers (conv, fully connected, global average pool) on the ISA
reference machine.

Each node gen/network/lower.py lowers (QLinearConv, QLinearMatMul, QLinearGlobalAveragePool) is
tiled by today's ``gen.tiler.plan``, encoded by ``gen.frames.encode`` and executed by
``sim.isa_model.run``: the node's int32 accumulators come from the accelerator's command stream.
Requantisation and every other op run on the host in exact numpy (sim/netgolden.py), except a
QLinearAdd that gen/network/addfuse.py fuses into the conv producing one of its inputs on a spec
with the residual unit: that conv then also runs with its requantisation and the Add on the STORE
path (gen/residual.py, the Add's other input from the run's tensors as the residual), and the
Add's output comes from the ISA machine, checked against the reference's.
:func:`ort_accumulators` gets onnxruntime's own int32 accumulators for a node (its
ConvInteger/MatMulInteger kernels, plus the bias; a global average pool's ReduceSum) to check
them directly.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from gen.network import lower as low
from gen.network.addfuse import fusable_add, residual_input
from gen.network.graph import Graph, Node
from gen.residual import ConvAdd

from . import netgolden

__all__ = ["LayerRun", "run", "ort_accumulators"]


@dataclasses.dataclass
class LayerRun:
    node: str
    layer: str                  # the hardware layer, ConvLayer.describe()
    acc: np.ndarray             # the ISA model's int32 accumulators
    reference_equal: bool       # equal to sim/netgolden.py's accumulators (and a fused Add's
    #                             output to its reference)
    seconds: float
    add: str | None = None      # the QLinearAdd run on the layer's STORE path


def run(spec, graph: Graph, inputs, *, layers: list | None = None):
    """Every tensor of the network, with the lowered layers' accumulators from the ISA model (and
    the fused Adds' outputs, on a spec with the residual unit). Returns ``(env, [LayerRun])``."""
    runs = [] if layers is None else layers
    fused = {}                          # conv name -> its fused QLinearAdd
    if spec.residual:
        for n in graph.nodes:
            add = fusable_add(spec, graph, n)[1]
            if add is not None:
                fused[n.name] = add
    into = {a.name: c for c, a in fused.items()}

    def on_isa(graph, node, env):
        t0 = time.monotonic()
        x = env[node.inputs[0]]
        hw = low.lower(spec, graph, node, x)
        acc = low.accumulators_on_isa(spec, hw)
        ref = netgolden.reference_acc(graph, node, x)
        ok = bool(np.array_equal(acc, ref))
        out = low.requantize(graph, node, acc)
        add = fused.get(node.name)
        if add is not None:             # the Add on the STORE path: its output leaves
            res = env[residual_input(add, node)]
            got = low.outputs_on_isa(spec, graph, node, hw, ConvAdd(hw.layer), add=add,
                                     residual=res)
            want = netgolden.run_node(graph, add, {node.output: out,
                                                   residual_input(add, node): res})
            ok, out = ok and bool(np.array_equal(got, want)), got
        runs.append(LayerRun(node.name, hw.layer.describe(), acc, ok, time.monotonic() - t0,
                             add and add.name))
        return out

    def on_add(graph, node, env):
        if node.name in into:           # computed on its conv's STORE path
            return env.pop(graph.node(into[node.name]).output)
        return netgolden.run_node(graph, node, env)

    hooks = {op: on_isa for op in low.LOWERED_OPS} | {"QLinearAdd": on_add}
    env = netgolden.run(graph, inputs, hooks=hooks)
    return env, runs


def ort_accumulators(graph: Graph, node: Node, x) -> np.ndarray:
    """onnxruntime's int32 accumulators of ``node`` for input ``x``: its ConvInteger (padding by
    the input zero point) or MatMulInteger kernel on ``x - zx`` and ``w - zw`` given as uint8/int8
    with zero points, plus the int32 bias."""
    from onnx import TensorProto, helper, numpy_helper

    from .ortref import session
    a, qx = node.attrs, graph.q(node.inputs[0])
    x = np.asarray(x)
    if node.op == "QLinearGlobalAveragePool":
        return _ort_gap_accumulators(x, qx.zp)
    # ConvInteger takes uint8 inputs: an int8 tensor moves to uint8 with its zero point (the
    # differences x - zx, which are all the kernel uses, are unchanged)
    xu = (x.astype(np.int16) + (128 if qx.dtype == "int8" else 0)).astype(np.uint8)
    zx = np.uint8(qx.zp + (128 if qx.dtype == "int8" else 0))
    w = np.asarray(a["w"], dtype=np.int64) - a["w_zp"].reshape(
        (-1, 1, 1, 1) if node.op == "QLinearConv" else (1, -1))
    wi = w.astype(np.int8) if w.min() >= -128 and w.max() <= 127 else None
    if wi is None:
        raise ValueError("weights minus zero point do not fit int8")
    inits = [numpy_helper.from_array(wi, "w"), numpy_helper.from_array(np.array(zx), "zx")]
    if node.op == "QLinearConv":
        n = helper.make_node("ConvInteger", ["x", "w", "zx"], ["y"],
                             kernel_shape=list(wi.shape[2:]), strides=list(a["strides"]),
                             pads=list(a["pads"]), dilations=list(a["dilations"]),
                             group=a["group"])
    else:
        n = helper.make_node("MatMulInteger", ["x", "w", "zx"], ["y"])
    g = helper.make_graph([n], "acc", [helper.make_tensor_value_info("x", TensorProto.UINT8,
                                                                      xu.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    y = session(m).run(None, {"x": xu})[0].astype(np.int64)
    bias = np.asarray(a["bias"], dtype=np.int64)
    y = y + (bias.reshape(1, -1, 1, 1) if node.op == "QLinearConv" else bias)
    return ((y + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _ort_gap_accumulators(x, zx) -> np.ndarray:
    """A global average pool's int32 accumulators ``Σx - zx·H·W`` from onnxruntime's ReduceSum
    over the int32 input (onnxruntime has no integer GAP kernel of its own to ask)."""
    from onnx import TensorProto, helper, numpy_helper

    from .ortref import session
    xi = np.asarray(x, dtype=np.int32)
    n = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)
    g = helper.make_graph([n], "gap", [helper.make_tensor_value_info("x", TensorProto.INT32,
                                                                      xi.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
                          [numpy_helper.from_array(np.array([2, 3], np.int64), "axes")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    y = session(m).run(None, {"x": xi})[0].astype(np.int64) - zx * xi.shape[2] * xi.shape[3]
    return ((y + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
