"""Which QLinearAdd nodes run on the accelerator, fused into the STORE of a conv producing one of
their inputs (gen/residual.py).

A residual Add (ResNet's, MobileNetV2's) runs on the STORE path of the QLinearConv that produces
one of its inputs when: the spec has the residual unit (``[postproc] residual``, which needs the
requantiser: the conv's requantised output meets the residual lane by lane); the Add is the conv
output's only reader and that output is not a model output (it never leaves the chip); the Add's
other input is computed before the conv runs (an earlier node's output, which the host streams
in beside the STORE), has the conv output's shape (no broadcasting) and is a different tensor;
the conv has one stride (its STOREs hold the node's outputs) and no MaxPool on its STORE path;
and the Add's fp32 parameters lie in the unit's domain (gen/quant.py
:func:`~gen.quant.add_params_ok`). Otherwise the Add stays on the host, and :func:`fusable_add`
says why. When both inputs are convs' outputs (a downsampling block's), the later conv takes
it: the earlier one's output is then the residual.
"""

from __future__ import annotations

from ..quant import AddQuant, add_params_ok, add_quant
from .graph import Graph, Node

__all__ = ["fusable_add", "add_params_of", "residual_input"]


def residual_input(add: Node, conv: Node) -> str:
    """The Add's input that is not ``conv``'s output: the residual the host streams."""
    return add.inputs[1] if add.inputs[0] == conv.output else add.inputs[0]


def add_params_of(graph: Graph, conv: Node, add: Node) -> AddQuant:
    """The :class:`~gen.quant.AddQuant` of QLinearAdd ``add`` fused into ``conv``: its inputs'
    and output's scale and zero point, which input the conv is, the residual's signedness and
    the output's range."""
    qa, qb, qc = (graph.q(t) for t in (*add.inputs[:2], add.output))
    res = graph.q(residual_input(add, conv))
    return add_quant((qa.s, qa.zp), (qb.s, qb.zp), (qc.s, qc.zp),
                     conv_is_b=add.inputs[0] != conv.output, res_signed=res.qmin < 0,
                     qmin=qc.qmin, qmax=qc.qmax)


def _why(spec, graph: Graph, node: Node, add: Node, readers: list[Node]) -> str:
    """Why ``add`` cannot run on ``node``'s STORE path ('' if it can)."""
    if not spec.residual:
        return f"{spec.name} has no residual unit ([postproc] residual)"
    if len(readers) > 1 or node.output in graph.outputs:
        return f"the output of {node.name} is read by more than the Add"
    other = residual_input(add, node)
    if other == node.output:
        return f"both of its inputs are the output of {node.name}"
    t = graph.tensors
    if t[other].shape != t[node.output].shape:
        return (f"its input {other!r} has shape {t[other].shape}, not the conv output's "
                f"{t[node.output].shape} (broadcasting stays on the host)")
    order = {n.output: i for i, n in enumerate(graph.nodes)}
    if order.get(other, -1) > order[node.output]:
        return (f"its other input {other!r} is computed after {node.name} (it runs on the "
                f"STORE path of the conv that comes later, if any)")
    qs = [graph.q(x) for x in (*add.inputs[:2], add.output)]
    if any(q is None or q.scale.size != 1 for q in qs):
        return "its inputs and output must be quantized per tensor"
    if any(q.qmax > (1 << spec.out_bits) - 1 for q in qs):
        return f"its tensors do not fit {spec.name}'s postproc.out_bits={spec.out_bits}"
    if tuple(node.attrs["strides"])[0] != tuple(node.attrs["strides"])[1]:
        return f"{node.name} has strides that differ per axis (subsampled on the host)"
    q = add_params_of(graph, node, add)
    return add_params_ok(q.ra, q.rb, q.fixed) or ""


def fusable_add(spec, graph: Graph, node: Node) -> tuple[Node | None, Node | None, str]:
    """``(add, fused, why)``: the QLinearAdd reading QLinearConv ``node``'s output (or None),
    itself again if it runs on ``node``'s STORE path on ``spec`` (else None), and why not ('' if
    it does or there is none)."""
    readers = [n for n in graph.nodes if node.output in n.inputs]
    adds = [n for n in readers if n.op == "QLinearAdd"]
    if node.op != "QLinearConv" or not adds:
        return None, None, ""
    why = _why(spec, graph, node, adds[0], readers)
    return adds[0], (None if why else adds[0]), why
