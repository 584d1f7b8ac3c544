"""A whole network with its conv and fully-connected layers on the generated RTL (or the ISA model).

The graph runs node by node as in sim/netgolden.py; each node gen/network/placement.py puts on the
accelerator is lowered (gen/network/lower.py) for its actual input and run on the RTL through
sim/flow.py (plan -> frames -> Verilog -> simulator -> output, with the cycle counters; the native
driver by default), or on the ISA reference machine (``backend="isa"``: no timing, seconds instead
of minutes). On a spec with the post-processing unit the layer requantises on the STORE path and
returns the node's int8/uint8 output, checked against the numpy reference's output for the same
input; otherwise it returns int32 accumulators, checked against the reference's and requantised on
the host (sim/netgolden.py's fp32 steps, onnxruntime's arithmetic). A MaxPool fused into its
conv (gen/network/poolfuse.py) comes out of that conv's STORE path (its requantised outputs
pooled, or its accumulators, requantised here: max commutes with the monotone
requantisation): the conv's own output never leaves the chip, so the run has no tensor for it.
Every other node runs on the host in exact numpy. The chain is the reference run: each layer
takes the previous layer's output as the hardware produced it.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from gen.errors import AccelgenError
from gen.network import lower as low
from gen.network.graph import Graph
from gen.network.placement import Step
from gen.network.poolfuse import pool_window
from gen.pooled import ConvPool

from . import golden, netgolden
from .netgolden import reference_acc

__all__ = ["LayerResult", "NetRun", "run", "reference_acc", "first_difference", "model_outputs"]


@dataclasses.dataclass
class LayerResult:
    node: str
    op: str
    layer: str                      # the hardware layer, ConvLayer.describe()
    backend: str                    # "rtl" | "isa"
    model_cycles: int               # gen.model.estimate of the Program the RTL runs
    cycles: int | None              # the RTL's cycle counter (None on the ISA model)
    compared: str                   # "outputs" (requantised on chip) | "accumulators"
    equal: bool                     # == the numpy reference's for the same input
    first_mismatch: dict | None     # the first differing value: index, hw, reference
    seconds: float
    counters: dict | None = None    # every RTL counter

    def as_dict(self) -> dict:
        return {"node": self.node, "op": self.op, "layer": self.layer, "where": self.backend,
                "cycles": self.cycles, "model_cycles": self.model_cycles,
                "cycles_equal": None if self.cycles is None else self.cycles == self.model_cycles,
                "compared": self.compared, "equal": self.equal,
                "first_mismatch": self.first_mismatch,
                "seconds": round(self.seconds, 2)}


@dataclasses.dataclass
class NetRun:
    env: dict                       # every tensor by name
    layers: list[LayerResult]       # the accelerator nodes, in order
    host_seconds: dict              # host node name -> seconds


def first_difference(ours, ref) -> dict | None:
    """The first index where two equal-shaped arrays differ, both values and how many differ."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    if ours.shape != ref.shape:
        return {"index": None, "value": f"shape {ours.shape}", "reference": f"shape {ref.shape}",
                "mismatches": -1}
    bad = np.argwhere(ours != ref)
    if not len(bad):
        return None
    idx = tuple(int(i) for i in bad[0])
    return {"index": list(idx), "value": ours[idx].item(), "reference": ref[idx].item(),
            "mismatches": int(len(bad))}


def _job_name(i: int, node: str) -> str:
    return f"{i:03d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', node)[:60]}"


def run(spec, graph: Graph, inputs, steps: list[Step], *, backend: str = "rtl",
        sim: str = "icarus", driver: str = "native", work_dir: Path | None = None,
        on_start=None, on_done=None):
    """Run ``graph`` on ``inputs`` with the accelerator nodes of ``steps`` (gen.network.placement
    .place) on ``backend`` (the RTL on ``sim`` with ``driver``, sim/flow.py).
    ``on_start(step, index)`` and ``on_done(step, LayerResult)`` report progress.
    ``work_dir`` keeps each layer's simulation job (default: a temporary folder, removed)."""
    if backend not in ("rtl", "isa"):
        raise ValueError(backend)
    by_node = {s.node.name: s for s in steps}
    order = {s.node.name: i for i, s in enumerate(s for s in steps if s.on_accelerator)}
    results: list[LayerResult] = []
    tmp = None
    if backend == "rtl" and work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="accelgen-run-")
        work_dir = Path(tmp.name)

    def on_accelerator(graph, node, env):
        step = by_node[node.name]
        i = order[node.name]
        if on_start:
            on_start(step, i)
        t0 = time.monotonic()
        x = env[node.inputs[0]]
        hw = low.lower(spec, graph, node, x)
        layer = hw.layer if step.pool is None else ConvPool(hw.layer, *pool_window(step.pool))
        quant = low.requant_params(graph, node) if step.requant_on_chip else None
        cycles = counters = None
        if backend == "rtl":
            from .flow import simulate_layer
            job = Path(work_dir) / _job_name(i, node.name)
            job.mkdir(parents=True, exist_ok=True)
            res = simulate_layer(spec, layer, hw.x, hw.w, hw.bias, sim=sim, driver=driver,
                                 work_dir=job, quant=quant)
            cycles, counters = res.cycles, res.counters
            got = (low.finish_outputs(graph, node, hw, res.output) if quant is not None
                   else low.finish(hw, res.output))
        elif quant is not None:
            got = low.outputs_on_isa(spec, graph, node, hw, layer)
        else:
            got = low.accumulators_on_isa(spec, hw, layer)
        if quant is not None:          # the node's output, requantised on the STORE path
            ref = netgolden.run_node(graph, node, env)
            if step.pool is not None:  # ... and pooled there: the MaxPool's output
                ref = netgolden.run_node(graph, step.pool, {**env, node.output: ref})
            mm = first_difference(got, ref)
            out = got
        else:                          # int32 accumulators (max-pooled), requantised here
            ref = reference_acc(graph, node, x)
            if step.pool is not None:
                ref = golden.maxpool(ref, pool_window(step.pool))
            mm = first_difference(got, ref)
            out = low.requantize(graph, node, got)
        r = LayerResult(node.name, node.op, layer.describe(), backend, step.model.cycles,
                        cycles, "outputs" if quant is not None else "accumulators", mm is None,
                        mm, time.monotonic() - t0, counters)
        results.append(r)
        if on_done:
            on_done(step, r)
        return out

    host_seconds = {}

    def on_host(graph, node, env):
        if by_node[node.name].fused_into:
            # pooled on its conv's STORE path: the conv's output, which never left the chip,
            # held the pooled map; it becomes this node's
            return env.pop(node.inputs[0])
        t0 = time.monotonic()
        y = netgolden.run_node(graph, node, env)
        host_seconds[node.name] = time.monotonic() - t0
        return y

    hooks = {n.op: on_host for n in graph.nodes}
    hooks.update({op: on_accelerator for op in low.LOWERED_OPS})
    try:
        env = netgolden.run(graph, inputs, hooks=hooks)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return NetRun(env, results, host_seconds)


_ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64}


def model_outputs(proto, graph: Graph, env: dict) -> dict:
    """The model's outputs as onnxruntime returns them: by name, in the dtype the ONNX graph
    declares (an int8 output the importer holds as uint8, zero point + 128, maps back)."""
    out = {}
    for o in proto.graph.output:
        v = np.asarray(env[o.name])
        want = _ONNX_DTYPES.get(o.type.tensor_type.elem_type, v.dtype)
        if v.dtype == np.uint8 and want == np.int8 and o.name in graph.s8_to_u8:
            v = (v.astype(np.int16) - 128).astype(np.int8)
        if v.dtype != want:
            raise AccelgenError(f"output {o.name!r}: the model declares {np.dtype(want)}, the "
                                f"network computes {v.dtype}")
        out[o.name] = v
    return out
