"""Where each node of a network runs on a spec, and what the analytic model expects of it.

Conv, fully-connected and global-average-pool nodes (QLinearConv, QLinearMatMul,
QLinearGlobalAveragePool, which an AveragePool over the whole unpadded map becomes at import) run
on the accelerator: lowered by gen/network/lower.py (a global average pool as a sum over the array's
rows), tiled by ``gen.tiler.plan`` (with the bias, which carries the zero-point
correction) and timed by ``gen.model.estimate``, the same Program the RTL runs. Their
requantisation (int32 -> onnxruntime's fp32 steps -> int8/uint8, the ReLU/Clip the quantizer folded
into the output range included) runs on the STORE path when the spec has the post-processing unit
(``[postproc] enabled``, hw/requant.py: exact), else on the host. A MaxPool after a conv runs on
that conv's STORE path where gen/network/poolfuse.py finds it fits (the spec's pooling unit,
non-overlapping windows): the conv's step plans a :class:`~gen.pooled.ConvPool` and the MaxPool's
step is ``fused`` into it; else (with the reason in its ``note``) on the host. Likewise a residual
QLinearAdd on the STORE path of the conv producing one of its inputs where gen/network/addfuse.py
finds it fits (the spec's residual unit; the other input computed before the conv): the conv's
step plans a :class:`~gen.residual.ConvAdd` (the host streams the Add's other input in beside its
STOREs) and the Add's step is ``fused`` into it. Every other node
runs on the host in exact numpy (sim/netgolden.py); a QLinearAveragePool there has
:data:`AVGPOOL_NOTE` as its note. :func:`place` checks every layer against the spec before
anything runs, so a layer the spec cannot run is refused up front, naming the node; ``accelgen
run`` and ``accelgen estimate --onnx`` share it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import AccelgenError
from .graph import Graph, Node
from .addfuse import add_params_of, fusable_add
from .lower import LOWERED_OPS, HwLayer, host_reason, lower, requant_params
from .poolfuse import fusable_pool, pool_window

__all__ = ["Step", "place", "host_work", "REQUANT", "PLAN_OPTIONS"]

#: the host op that turns a lowered node's int32 accumulators into its int8/uint8 output
REQUANT = "requantise"
#: how a network's layers are tiled (the bias always carries the zero-point correction)
PLAN_OPTIONS = {"bias": True}
#: why an AveragePool whose window is not the whole unpadded map stays on the host
AVGPOOL_NOTE = ("on the host: onnxruntime adds the window's dequantized fp32 values and divides "
                "in fp32 (qlinear_pool.cc), which no integer sum with one fp32 scale reproduces "
                "bit for bit")
#: why a QLinearAdd no conv on the accelerator produces an input of stays on the host
ADD_NOTE = ("on the host: neither input is a QLinearConv's output (a residual add runs on the "
            "STORE path of the conv producing one of its inputs)")


@dataclasses.dataclass
class Step:
    """One node of the graph: where it runs; for an accelerator node the lowered layer (from a
    placeholder input: the shapes and weights are the node's), its Program and the model's
    estimate; ``host_ops`` what of it runs on the host, ``host_work`` their element operations."""
    node: Node
    where: str                            # "accelerator" | "host"
    hw: HwLayer | None = None
    program: object | None = None         # gen.program.Program
    model: object | None = None           # gen.model.Estimate
    host_ops: tuple[str, ...] = ()
    host_work: int = 0
    requant_on_chip: bool = False         # the Program requantises on the STORE path
    pool: Node | None = None              # the MaxPool the Program pools on the STORE path
    add: Node | None = None               # the QLinearAdd the Program adds on the STORE path
    fused_into: str | None = None         # a MaxPool or Add run by that conv's Program: its name
    note: str = ""                        # why a MaxPool, Add or AveragePool stays on the host

    @property
    def on_accelerator(self) -> bool:
        """A layer with a Program of its own (not a MaxPool fused into one)."""
        return self.where == "accelerator"


def host_work(graph: Graph, node: Node) -> int:
    """Element operations a host op performs (an order of magnitude for its share: a reshape is
    free, a quantisation or an add is one per output, a pool one per window element, a global
    average one per input, a softmax three per element: exp, sum, divide)."""
    t = graph.tensors
    out = int(np.prod(t[node.output].shape))
    first = int(np.prod(t[node.inputs[0]].shape)) if node.inputs[0] in t else out
    op = node.op
    if op == "Reshape":
        return 0
    if op in ("MaxPool", "QLinearAveragePool"):
        kh, kw = node.attrs["kernel"]
        return out * kh * kw
    if op == "QLinearGlobalAveragePool":
        return first
    if op in ("QLinearSoftmax", "Softmax"):
        return 3 * out
    return out


def _check_spec(spec) -> None:
    if spec.acc_bits < 32:
        raise AccelgenError(f"{spec.name} accumulates in {spec.acc_bits} bits; onnxruntime's "
                            f"accumulators are int32, so a network needs precision.acc_bits >= 32")


def place(spec, graph: Graph) -> list[Step]:
    """One :class:`Step` per node of ``graph``, in order. Raises AccelgenError naming the first
    node the spec cannot run (precision, buffers, engine limits)."""
    from ..model import estimate

    _check_spec(spec)
    steps = []
    fused, notes = {}, {}           # MaxPool/Add name -> its conv's; why it stays on the host
    for node in graph.nodes:
        if node.name in fused:
            steps.append(Step(node, "fused", fused_into=fused[node.name]))
            continue
        stays = "" if node.op not in LOWERED_OPS else host_reason(graph, node)
        if node.op not in LOWERED_OPS or stays:
            note = stays or notes.get(node.name, "")
            if node.op == "QLinearAveragePool":
                note = note or AVGPOOL_NOTE
            elif node.op == "QLinearAdd" and not note:
                note = ADD_NOTE
            steps.append(Step(node, "host", host_ops=(node.op,),
                              host_work=host_work(graph, node), note=note))
            continue
        src = graph.tensors[node.inputs[0]]
        x = np.full(src.shape, src.q.zp, dtype=np.int64)
        hw = lower(spec, graph, node, x)
        on_chip = bool(spec.postproc)
        program, pool, add = _program(spec, graph, node, hw, on_chip, fused, notes)
        out = int(np.prod(graph.tensors[(pool or node).output].shape))
        steps.append(Step(node, "accelerator", hw, program, estimate(program),
                          host_ops=() if on_chip else (REQUANT,),
                          host_work=0 if on_chip else out, requant_on_chip=on_chip,
                          pool=pool, add=add))
    return steps


def _program(spec, graph: Graph, node: Node, hw: HwLayer, on_chip: bool, fused: dict,
             notes: dict):
    """``(program, pool, add)``: the Program of lowered ``node`` with the MaxPool or QLinearAdd
    fused into its STORE path (recorded in ``fused``; why not, in ``notes``), or neither."""
    from ..frames import check_add, check_quant
    from ..pooled import ConvPool
    from ..residual import ConvAdd
    from ..tiler import plan
    program = None
    pool, why = fusable_pool(spec, graph, node)
    if pool is not None:
        try:
            program = ConvPool(hw.layer, *pool_window(pool)).plan(
                spec, **PLAN_OPTIONS, requant=on_chip)
            fused[pool.name] = node.name
        except AccelgenError as e:    # (the buffers cannot hold whole windows, ...)
            pool, why = None, f"{e}"
    if why:
        notes[next(n.name for n in graph.nodes if n.op == "MaxPool"
                   and node.output in n.inputs)] = f"on the host: {why}"
    reader, add, why = fusable_add(spec, graph, node)
    if add is not None:
        try:
            program = ConvAdd(hw.layer).plan(spec, **PLAN_OPTIONS, requant=on_chip)
            check_add(program, add_params_of(graph, node, add))
            fused[add.name] = node.name
        except AccelgenError as e:    # (a parameter out of the unit's range, ...)
            program, add, why = None, None, f"{e}"
    if why:
        prev = notes.get(reader.name)
        notes[reader.name] = (f"{prev}; " if prev else "on the host: ") + f"{node.name}: {why}"
    try:
        if program is None:
            program = plan(spec, hw.layer, **PLAN_OPTIONS, requant=on_chip)
        if on_chip:
            check_quant(program, requant_params(graph, node))
    except AccelgenError as e:
        raise AccelgenError(f"node {node.name!r} ({node.op}, layer "
                            f"{hw.layer.describe()}) cannot run on {spec.name}: {e}") from None
    return program, pool, add
