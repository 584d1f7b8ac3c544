"""A quantized network as a graph of integer layer nodes: what gen.network.onnx_import produces and
sim.netgolden executes.

The node set is the one onnxruntime's CPU provider runs after its default optimisations
(../shared/NETWORKS.md): QDQ groups become ``QLinearConv``, ``QLinearMatMul`` (QGemm and
QLinearMatMul: fully connected, with an int32 bias), ``QLinearAdd``, ``QLinearAveragePool``,
``QLinearGlobalAveragePool``, ``QLinearSoftmax``, integer ``MaxPool`` and ``Reshape``; the graph's
float input is quantized by ``QuantizeLinear`` and its outputs dequantized by
``DequantizeLinear``; ``Relu``, ``Clip``, ``MaxPool``, ``Reshape`` and ``Softmax`` may also run on
float tensors (where onnxruntime keeps a Q/DQ pair apart).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["QParams", "Tensor", "Node", "Graph", "INT_RANGES"]

INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int32": (-(1 << 31), (1 << 31) - 1)}


@dataclasses.dataclass(frozen=True)
class QParams:
    """Quantisation of a tensor: ``real = (q - zero_point) * scale``. ``scale`` is fp32, per tensor
    (shape ()) or per channel (shape (K,) along ``axis``)."""
    scale: np.ndarray
    zero_point: np.ndarray
    dtype: str
    axis: int | None = None

    @property
    def qmin(self) -> int:
        return INT_RANGES[self.dtype][0]

    @property
    def qmax(self) -> int:
        return INT_RANGES[self.dtype][1]

    @property
    def s(self) -> np.float32:
        """The per-tensor scale as an fp32 scalar."""
        return np.float32(self.scale.reshape(-1)[0])

    @property
    def zp(self) -> int:
        """The per-tensor zero point."""
        return int(self.zero_point.reshape(-1)[0])

    def describe(self) -> str:
        if self.scale.size == 1:
            return f"{self.dtype} scale={self.s:.6g} zp={self.zp}"
        return (f"{self.dtype} per-channel ({self.scale.size}) "
                f"scale={self.scale.min():.3g}..{self.scale.max():.3g}")


@dataclasses.dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str                      # float32 | int8 | uint8
    q: QParams | None = None        # for int8/uint8 activations


@dataclasses.dataclass
class Node:
    """One executed operation. ``attrs`` holds the op's parameters; for the quantized compute nodes
    (QLinearConv, QLinearMatMul) ``w`` (int64, the stored integers: KCRS, or (C, K) for
    matmul), ``w_scale`` / ``w_zp`` (per output channel) and ``bias`` ((K,) int32 values); the
    input and output quantisation are their tensors' (:meth:`Graph.params` gathers them all,
    with the fused clamp range). ``source`` names the ONNX nodes it came from."""
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = dataclasses.field(default_factory=dict)
    source: list[str] = dataclasses.field(default_factory=list)

    @property
    def output(self) -> str:
        return self.outputs[0]


@dataclasses.dataclass
class Graph:
    name: str
    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: list[str]
    outputs: list[str]
    fmt: str                        # "qdq" | "qoperator"
    s8_to_u8: list[str] = dataclasses.field(default_factory=list)
    """int8 QDQ activations held as uint8 (zero point + 128), as onnxruntime x86 converts them."""

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def q(self, tensor: str) -> QParams:
        return self.tensors[tensor].q

    def params(self, node: Node) -> dict:
        """The quantisation parameters of ``node``: input and output scale/zero point, for
        QLinearConv/QLinearMatMul the per-channel weight scales/zero points, weights and int32
        bias, and the fused clamp: the integer output range, its real range, and whether a
        ReLU was folded into it (the zero point at the bottom of the range)."""
        out = {"op": node.op}
        qx = self.q(node.inputs[0]) if node.inputs[0] in self.tensors else None
        qy = self.q(node.output)
        if qx is not None:
            out.update(x_scale=qx.s, x_zp=qx.zp, x_dtype=qx.dtype)
        if "w" in node.attrs:
            a = node.attrs
            out.update(w=a["w"], w_scale=a["w_scale"], w_zp=a["w_zp"],
                       bias=a["bias"].astype(np.int32))
        if qy is not None:
            out.update(y_scale=qy.s, y_zp=qy.zp, y_dtype=qy.dtype, clamp=(qy.qmin, qy.qmax),
                       clamp_real=(float((qy.qmin - qy.zp) * qy.s),
                                   float((qy.qmax - qy.zp) * qy.s)),
                       relu_folded=qy.zp == qy.qmin)
        return out

    def summary(self) -> list[dict]:
        """One row per node: name, op, output shape and dtype, quantisation."""
        rows = []
        for n in self.nodes:
            t = self.tensors[n.output]
            rows.append({"node": n.name, "op": n.op, "inputs": list(n.inputs),
                         "output": n.output, "shape": list(t.shape), "dtype": t.dtype,
                         "quant": t.q.describe() if t.q else None})
        return rows
