"""Recovery on the RTL (sim/recover.py, the cocotb driver): a malformed stream then a soft reset,
and a hard reset at any cycle of a layer (also while a STORE is held by backpressure), each
followed by a layer that must come out bit-exact with sane counters. The default suite runs WS
on Icarus; the slow tests every engine on both simulators."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gen.frames import decode, encode
from gen.isa import Cause, stream_cause
from gen.layer import ConvLayer
from gen.model import estimate
from gen.tiler import plan
from sim import golden
from sim.flow import random_tensors
from sim.recover import after_bad_stream, after_reset

_path = Path(__file__).resolve().parents[1] / "bench" / "streams.py"
_spec = importlib.util.spec_from_file_location("bench_streams", _path)
streams = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(streams)
ENGINES = ("ws", "os", "is", "nlr", "rs")


def _layer(spec, seed):
    layer = ConvLayer(C=5, H=6, W=6, K=6, R=3, S=3, pad=1)
    x, w, b = random_tensors(spec, layer, seed, bias=True)
    program = plan(spec, layer, bias=True)
    return program, encode(program, x, w, b), golden.layer_output(spec, layer, x, w, b)


def _sane(program, run):
    c = run.counters
    assert c["commands"] == len(program.commands) and c["error"] == 0
    model = estimate(program).counters
    for name in ("ibuf_writes", "wbuf_writes", "obuf_writes", "ibuf_reads", "wbuf_reads"):
        assert c[name] == model[name], name


def _bad_then_layer(flow, sim, kinds):
    """Each malformed stream, then the layer: the status the driver read names the cause (a
    stream cut inside a frame: no error, ``starved``, which the driver reports as TRUNCATED)."""
    spec = streams.small_spec(flow)
    rng = np.random.default_rng(7)
    program, frames, want = _layer(spec, 3)
    for kind, cause in kinds:
        if kind == "truncated":
            bad = [streams.cut_inside_a_frame(spec, rng)]
        else:
            bad = streams.make_stream(spec, rng, kind)[0]
        r = after_bad_stream(spec, bad, program, frames, sim=sim, in_pause=0.3, out_pause=0.3)
        status = {k: r.counters[f"bad_{k}"] for k in ("error", "starved", "cause")}
        assert status["error"] == (cause != Cause.TRUNCATED), kind
        assert status["starved"] == (cause == Cause.TRUNCATED), kind
        assert stream_cause(status) == cause, kind
        assert np.array_equal(decode(program, r.outputs), want), kind
        _sane(program, r)


def _reset_then_layer(flow, sim, seed):
    spec = streams.small_spec(flow)
    rng = np.random.default_rng(seed)
    program, frames, want = _layer(spec, seed)
    total = estimate(program).cycles
    for at, in_store in ((int(rng.integers(1, total)), False), (int(rng.integers(1, total // 2)),
                                                               True)):
        r = after_reset(spec, program, frames, at, in_store=in_store, sim=sim, in_pause=0.2,
                        out_pause=0.6, seed=seed)
        assert np.array_equal(decode(program, r.outputs), want), (at, in_store)
        if in_store:
            assert r.counters["reset_in_store"] == 1
        _sane(program, r)


def test_bad_stream_then_soft_reset_ws():
    _bad_then_layer("ws", "icarus", [("opcode", Cause.OPCODE), ("range", Cause.ADDRESS),
                                     ("compute", Cause.ADDRESS), ("pool", Cause.FIELD),
                                     ("truncated", Cause.TRUNCATED)])


def test_reset_at_any_cycle_ws():
    _reset_then_layer("ws", "icarus", 4)


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("flow", ENGINES)
def test_recovery_every_engine(flow, sim):
    _bad_then_layer(flow, sim, [("opcode", Cause.OPCODE), ("range", Cause.ADDRESS),
                                ("compute", Cause.ADDRESS), ("field", Cause.FIELD),
                                ("pool", Cause.FIELD),
                                ("truncated", Cause.TRUNCATED)])
    _reset_then_layer(flow, sim, 5)
