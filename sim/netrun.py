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
So does a QLinearAdd fused into a conv (gen/network/addfuse.py): the conv's layer takes the Add's
other input from the run's tensors as its residual and returns the Add's output.
Every other node runs on the host in exact numpy. The chain (:func:`run`) is the reference run:
each layer takes the previous layer's output as the hardware produced it, every layer in one
simulator process with the native driver (sim/session.py hands it the programs one at a time).
:func:`verify` (``accelgen run --jobs`` / ``--scheduler``) runs each layer from the numpy
reference's input instead, so the layers run in parallel on a process pool or a Dask cluster
(gen/parallel.py).
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
from gen.network.addfuse import add_params_of, residual_input
from gen.network.graph import Graph, Node
from gen.network.placement import Step
from gen.network.poolfuse import pool_window
from gen.pooled import ConvPool
from gen.residual import ConvAdd

from . import golden, netgolden
from .netgolden import reference_acc

__all__ = ["LayerResult", "NetRun", "run", "run_layer", "verify", "verify_layer", "reference_acc",
           "first_difference", "model_outputs"]


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


def run_layer(spec, graph: Graph, node: Node, x, *, on_chip: bool, pool: Node | None,
              model_cycles: int, backend: str, simulate=None, add: Node | None = None,
              residual=None) -> tuple[LayerResult, np.ndarray]:
    """One accelerator ``node`` on its integer input ``x``: lowered, run on ``backend`` and
    compared with the numpy reference's result for the same input. ``on_chip``: requantised on
    the STORE path (the node's output comes back), else int32 accumulators (requantised here);
    ``pool``: the MaxPool its STORE path pools with (the MaxPool's output comes back); ``add``:
    the QLinearAdd its STORE path adds with ``residual``, the Add's other input (the Add's
    output comes back). ``simulate(program, frames)`` runs a Program on the RTL (a sim/flow.py
    ``ProgramRun``). Returns the :class:`LayerResult` and the node's output."""
    t0 = time.monotonic()
    hw = low.lower(spec, graph, node, x)
    layer = (ConvPool(hw.layer, *pool_window(pool)) if pool is not None
             else ConvAdd(hw.layer) if add is not None else hw.layer)
    quant = low.requant_params(graph, node) if on_chip else None
    added = {} if add is None else {"residual": residual,
                                    "add": add_params_of(graph, node, add)}
    cycles = counters = None
    if backend == "rtl":
        from .flow import layer_program
        program, frames = layer_program(spec, layer, hw.x, hw.w, hw.bias, quant, **added)
        res = simulate(program, frames)
        cycles, counters = int(res.counters["cycles"]), res.counters
        y = layer.decode(program, res.outputs, quant,
                         **({"add": added["add"]} if added else {}))
        got = (low.finish_outputs(graph, add or node, hw, y) if quant is not None
               else low.finish(hw, y))
    elif quant is not None:
        fused = {} if add is None else {"add": add, "residual": residual}
        got = low.outputs_on_isa(spec, graph, node, hw, layer, **fused)
    else:
        got = low.accumulators_on_isa(spec, hw, layer)
    if quant is not None:          # the node's output, requantised on the STORE path
        ref = netgolden.run_node(graph, node, {node.inputs[0]: x})
        if pool is not None:       # ... and pooled there: the MaxPool's output
            ref = netgolden.run_node(graph, pool, {node.output: ref})
        if add is not None:        # ... or added to the residual there: the Add's output
            ref = netgolden.run_node(graph, add, {node.output: ref,
                                                  residual_input(add, node): residual})
        mm = first_difference(got, ref)
        out = got
    else:                          # int32 accumulators (max-pooled), requantised here
        ref = reference_acc(graph, node, x)
        if pool is not None:
            ref = golden.maxpool(ref, pool_window(pool))
        mm = first_difference(got, ref)
        out = low.requantize(graph, node, got)
    return LayerResult(node.name, node.op, layer.describe(), backend, model_cycles, cycles,
                       "outputs" if quant is not None else "accumulators", mm is None, mm,
                       time.monotonic() - t0, counters), out


def _on_host(seconds: dict, by_node: dict):
    """The hook that runs a host node in exact numpy, timing it into ``seconds``."""
    def on_host(graph, node, env):
        if by_node[node.name].fused_into:
            # pooled or added on its conv's STORE path: the conv's output, which never left
            # the chip, held the pooled map or the Add's output; it becomes this node's
            return env.pop(graph.node(by_node[node.name].fused_into).output)
        t0 = time.monotonic()
        y = netgolden.run_node(graph, node, env)
        seconds[node.name] = time.monotonic() - t0
        return y
    return on_host


def _hooks(graph: Graph, by_node: dict, seconds: dict, on_accelerator) -> dict:
    """netgolden.run's hooks for a placed graph: each node where its step runs it (a node of a
    lowered op may still stay on the host, e.g. a global average pool too big for a layer)."""
    on_host = _on_host(seconds, by_node)

    def hook(graph, node, env):
        run = on_accelerator if by_node[node.name].on_accelerator else on_host
        return run(graph, node, env)
    return {n.op: hook for n in graph.nodes}


class _Simulator:
    """The chained run's RTL: one simulator process for the whole chain with the native driver
    (sim/session.py, started at the first layer), one job per layer with cocotb."""

    def __init__(self, spec, sim: str, driver: str, work_dir: Path):
        self.spec, self.sim, self.driver, self.work_dir = spec, sim, driver, Path(work_dir)
        self.session = None

    def __call__(self, program, frames, job: str):
        from . import flow
        if self.driver != "native":
            (r,) = flow.simulate_programs(self.spec, [(program, frames)], sim=self.sim,
                                          driver=self.driver, work_dir=self.work_dir / job)
            flow.check_refused(r.counters, self.work_dir / job)
            return r
        if self.session is None:
            self.session = flow.open_session(self.spec, sim=self.sim, work_dir=self.work_dir)
        r = self.session.run(flow.native_program(program, frames))
        flow.check_refused(r.counters, self.work_dir)
        return flow.ProgramRun(r.outputs, r.counters)

    def close(self, ok: bool) -> None:
        if self.session is not None:
            if ok:
                self.session.close()
            else:
                self.session.abort()


def run(spec, graph: Graph, inputs, steps: list[Step], *, backend: str = "rtl",
        sim: str = "icarus", driver: str = "native", work_dir: Path | None = None,
        on_start=None, on_done=None):
    """Run ``graph`` on ``inputs`` with the accelerator nodes of ``steps`` (gen.network.placement
    .place) on ``backend`` (the RTL on ``sim`` with ``driver``, sim/flow.py), chained: each layer
    takes the previous layers' outputs as the hardware produced them. With the native driver
    every layer runs in one simulator process (sim/session.py).
    ``on_start(step, index)`` and ``on_done(step, LayerResult)`` report progress.
    ``work_dir`` keeps the simulation's files (default: a temporary folder, removed)."""
    if backend not in ("rtl", "isa"):
        raise ValueError(backend)
    by_node = {s.node.name: s for s in steps}
    order = {s.node.name: i for i, s in enumerate(s for s in steps if s.on_accelerator)}
    results: list[LayerResult] = []
    tmp = None
    if backend == "rtl" and work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="accelgen-run-")
        work_dir = Path(tmp.name)
    simulator = _Simulator(spec, sim, driver, work_dir) if backend == "rtl" else None

    def on_accelerator(graph, node, env):
        step = by_node[node.name]
        i = order[node.name]
        if on_start:
            on_start(step, i)
        job = _job_name(i, node.name)
        r, out = run_layer(spec, graph, node, env[node.inputs[0]],
                           on_chip=step.requant_on_chip, pool=step.pool,
                           model_cycles=step.model.cycles, backend=backend,
                           simulate=simulator and (lambda p, f: simulator(p, f, job)),
                           add=step.add, residual=_residual(step, env))
        results.append(r)
        if on_done:
            on_done(step, r)
        return out

    host_seconds = {}
    hooks = _hooks(graph, by_node, host_seconds, on_accelerator)
    ok = False
    try:
        env = netgolden.run(graph, inputs, hooks=hooks)
        ok = True
    finally:
        try:
            if simulator is not None:
                simulator.close(ok)
        finally:
            if tmp is not None:
                tmp.cleanup()
    return NetRun(env, results, host_seconds)


def _residual(step: Step, env: dict):
    """The fused Add's other input from the run's tensors (None without a fused Add)."""
    return None if step.add is None else env[residual_input(step.add, step.node)]


def _layer_graph(graph: Graph, step: Step) -> Graph:
    """The part of ``graph`` one accelerator step needs: its node (and fused MaxPool or Add) and
    their input and output tensors (a fused Add's other input too)."""
    fused = step.pool if step.pool is not None else step.add
    nodes = [step.node] + ([fused] if fused is not None else [])
    names = [step.node.inputs[0]] + [n.output for n in nodes]
    extra = [] if step.add is None else [residual_input(step.add, step.node)]
    return Graph(graph.name, nodes, {n: graph.tensors[n] for n in names + extra}, names[:1],
                 names[-1:], graph.fmt)


def verify_layer(spec, graph: Graph, x, on_chip: bool, model_cycles: int, backend: str,
                 sim: str, driver: str, job_dir: str | None, residual=None):
    """The task :func:`verify` hands to a worker: the node of ``graph`` (from
    :func:`_layer_graph`, with its fused MaxPool or Add) on the reference's input ``x`` (and a
    fused Add's other input ``residual``), in its own simulator process (in ``job_dir``, or a
    temporary folder)."""
    node, fused = graph.nodes[0], (graph.nodes[1] if len(graph.nodes) > 1 else None)
    pool = fused if fused is not None and fused.op == "MaxPool" else None
    add = fused if fused is not None and fused.op == "QLinearAdd" else None
    kw = dict(on_chip=on_chip, pool=pool, model_cycles=model_cycles, backend=backend,
              add=add, residual=residual)
    if backend != "rtl":
        return run_layer(spec, graph, node, x, **kw)
    from . import flow
    with tempfile.TemporaryDirectory(prefix="accelgen-layer-") as tmp:
        wd = Path(job_dir or tmp)

        def simulate(program, frames):
            (r,) = flow.simulate_programs(spec, [(program, frames)], sim=sim, driver=driver,
                                          work_dir=wd)
            flow.check_refused(r.counters, wd)
            return r
        return run_layer(spec, graph, node, x, **kw, simulate=simulate)


def verify(spec, graph: Graph, inputs, steps: list[Step], *, jobs: int | None = None,
           scheduler: str | None = None, backend: str = "rtl", sim: str = "icarus",
           driver: str = "native", work_dir: Path | None = None, on_done=None):
    """Verify every accelerator layer of ``steps`` in parallel: each starts from the numpy
    reference's input for that layer (not the previous layer's hardware output, as :func:`run`
    does), on ``jobs`` local processes or the Dask cluster at ``scheduler`` (gen/parallel.py),
    and its result is compared with the reference's. The biggest layers (model cycles) start
    first. The returned tensors are the graph run with each layer's output as the hardware
    produced it from the reference's input (equal to the reference when every layer is)."""
    from gen.parallel import completed
    if backend not in ("rtl", "isa"):
        raise ValueError(backend)
    ref = netgolden.run(graph, inputs)
    accel = sorted((s for s in steps if s.on_accelerator), key=lambda s: -s.model.cycles)
    index = {s.node.name: i for i, s in enumerate(s for s in steps if s.on_accelerator)}
    tasks = []
    for s in accel:
        job = (str(Path(work_dir) / _job_name(index[s.node.name], s.node.name))
               if work_dir is not None and backend == "rtl" else None)
        tasks.append((spec, _layer_graph(graph, s), ref[s.node.inputs[0]], s.requant_on_chip,
                      s.model.cycles, backend, sim, driver, job, _residual(s, ref)))
    if backend == "rtl" and driver == "native" and scheduler is None:
        from .flow import verilog_for
        from .native import build
        vpath, top = verilog_for(spec)      # once, before the workers (which wait on its lock)
        build(vpath, spec, sim, top=top)
    outs, by_node = {}, {}
    for i, (r, out) in completed(verify_layer, tasks, jobs=jobs, scheduler=scheduler):
        outs[accel[i].node.name] = out
        by_node[accel[i].node.name] = r
        if on_done:
            on_done(accel[i], r)
    host_seconds = {}
    hooks = _hooks(graph, {s.node.name: s for s in steps}, host_seconds,
                   lambda g, n, e: outs[n.name])
    env = netgolden.run(graph, inputs, hooks=hooks)
    results = [by_node[s.node.name] for s in steps if s.on_accelerator]
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
