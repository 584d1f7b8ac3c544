"""Which MaxPool nodes run on the accelerator, fused into the conv before them (gen/pooled.py).

A MaxPool runs on the STORE path of the QLinearConv that produces its input when: the spec has
the pooling unit (``[pool] enabled``); it pools the conv node's int8/uint8 outputs where the spec
requantises on the chip (``[postproc]``), else its int32 accumulators, which the host then
requantises (max commutes with the monotone requantisation, so either equals onnxruntime's
MaxPool of the conv's output; accumulators wider than int32 would wrap apart, so those stay);
the MaxPool is the conv output's only reader and that output is
not a model output (it never leaves the chip); its windows do not overlap and need no padding
(kernel == strides, pads 0: the digits model's 2x2); the conv has one stride. Otherwise the
MaxPool stays on the host, and :func:`fusable_pool` says why (ResNet's 3x3 stride-2 pool: its
windows overlap, and a tile would need its neighbours' outputs).
"""

from __future__ import annotations

from .graph import Graph, Node

__all__ = ["fusable_pool", "pool_window"]


def pool_window(pool: Node) -> tuple[int, int]:
    """A fused MaxPool's (rows, cols) window."""
    return tuple(int(k) for k in pool.attrs["kernel"])


def fusable_pool(spec, graph: Graph, node: Node) -> tuple[Node | None, str]:
    """The MaxPool node to fuse into QLinearConv ``node`` on ``spec``, or None and why not
    ('' when no MaxPool reads the node's output)."""
    readers = [n for n in graph.nodes if node.output in n.inputs]
    if node.op != "QLinearConv" or not any(n.op == "MaxPool" for n in readers):
        return None, ""
    pool = next(n for n in readers if n.op == "MaxPool")
    a = pool.attrs
    (kh, kw), strides, pads = a["kernel"], tuple(a["strides"]), tuple(a["pads"])
    why = ""
    if not spec.pool:
        why = f"{spec.name} has no pooling unit ([pool] enabled)"
    elif not spec.postproc and spec.acc_bits != 32:
        why = (f"{spec.name} requantises on the host from {spec.acc_bits}-bit accumulators, "
               f"which wrap unlike onnxruntime's int32 before the max")
    elif len(readers) > 1 or node.output in graph.outputs:
        why = f"the output of {node.name} is read by more than the MaxPool"
    elif strides != (kh, kw) or any(pads):
        why = (f"its {kh}x{kw} windows at strides {strides[0]}x{strides[1]}"
               f"{' with padding' if any(pads) else ''} overlap or pad; the STORE path pools "
               f"non-overlapping windows (kernel == strides, no padding)")
    elif tuple(node.attrs["strides"])[0] != tuple(node.attrs["strides"])[1]:
        why = f"{node.name} has strides that differ per axis (subsampled on the host)"
    return (None, why) if why else (pool, "")
