"""The residual add on the STORE path (gen/isa.py STORE ``add``, LOAD_ADD; hw/store.py,
hw/resadd.py) on the RTL: a requantised conv layer whose STOREs each take the residual as their
payload, checked word for word against onnxruntime's QLinearAdd arithmetic (sim/golden.py
qadd_int) on the golden conv output, and the model's cycles against the RTL's.

The frames are built here from a plain requantised program (a LOAD_ADD before the first STORE,
``add`` set on every STORE, the residual after its header in the STORE's word order, by
gen/frames.py store_words), so the hardware is checked apart from the tiler's add planning."""

import dataclasses

import numpy as np
import pytest

from conftest import make_spec
from gen import frames as framing
from gen.frames import pack_lanes, unpack_lanes
from gen.isa import ADD_BEATS, HEADER_WORDS, Cause, Op, decode_header, encode_header, stream_cause
from gen.layer import ConvLayer
from gen.model import estimate
from gen.program import Command
from gen.quant import Requant, add_params
from sim import golden, native
from sim.flow import cycle_bound, layer_program, random_tensors, verilog_for
from sim.golden import qadd_int

f32 = np.float32


def _header(frame: bytes, beat: int, **fields) -> bytes:
    """``frame`` with header fields set (the low 32 bits of each header beat)."""
    words = unpack_lanes(frame[:HEADER_WORDS * beat], 32, 1, beat, False)[:, 0]
    h = decode_header([int(v) for v in words])
    op = Op(h.pop("op"))
    new = {k: v for k, v in {**h, **fields}.items() if k not in ("keep", "fill_h", "pool",
                                                                 "pool_r", "pool_s")}
    hdr = pack_lanes(np.array(encode_header(op, **new)).reshape(-1, 1), 32, beat)
    return hdr + frame[HEADER_WORDS * beat:]


def _add_params(rng, za, zb, zc):
    """onnxruntime's Add parameters (gen/quant.py add_params) for random scales."""
    sa, sb, sc = (f32(rng.uniform(0.005, 0.2)) for _ in range(3))
    return add_params(sa, za, sb, zb, sc, zc)


def _bits(v) -> int:
    return int(np.asarray(v, f32).view(np.uint32))


CASES = [   # (engine, conv output unsigned, residual unsigned, swap, add range, stalls)
    ("ws", False, False, False, (-128, 127), False),
    ("ws", True, False, True, (0, 255), True),
    ("is", False, True, False, (-20, 127), False),
    ("rs", True, True, True, (3, 255), True),
    ("os", False, True, True, (-128, 127), False),
]


def _spec(flow):
    return make_spec(name=f"res_{flow}", dataflow=flow, rows=4, cols=4, input_depth=256,
                     weight_depth=128, output_depth=64, postproc=True, residual=True)


def _added(spec, rng, a_uns=False, b_uns=False, swap=False, add_range=(-128, 127)):
    """A requantised conv layer's program with the residual add on every STORE: (the program
    with LOAD_ADD and add STOREs, its frames, the expected output)."""
    layer = ConvLayer(C=5, H=6, W=5, K=6, R=3, S=3, pad=1)
    x, w, b = random_tensors(spec, layer, 3, bias=True)
    za = int(rng.integers(0, 40)) if a_uns else int(rng.integers(-20, 20))
    quant = Requant(scale=rng.uniform(0.002, 0.02, layer.K).astype(f32), zero_point=za,
                    qmin=0 if a_uns else -128, qmax=255 if a_uns else 127)
    program, frames = layer_program(spec, layer, x, w, b, quant=quant)
    q = golden.layer_output(spec, layer, x, w, b, quant=quant)            # the conv's output
    lo_b, hi_b = (0, 255) if b_uns else (-128, 127)
    res = rng.integers(lo_b, hi_b + 1, q.shape)
    zb = int(rng.integers(lo_b, hi_b + 1))
    zc = int(rng.integers(*add_range))
    ra, rb, fixed = _add_params(rng, zb if swap else za, za if swap else zb, zc)
    A, B = (res, q) if swap else (q, res)
    expected = qadd_int(A, B, ra, rb, fixed, *add_range)

    beat = spec.in_stream_bits // 8
    lo, hi = add_range
    load_add = pack_lanes(np.array(encode_header(Op.LOAD_ADD, count=ADD_BEATS)).reshape(-1, 1),
                          32, beat)
    load_add += pack_lanes(np.array([[_bits(ra)], [_bits(rb)], [_bits(fixed)],
                                     [(lo & 0xFFFF) | (hi & 0xFFFF) << 16]]), 32, beat)
    new_frames, new_cmds = [], []
    program0 = program
    for cmd, frame in zip(program.commands, frames, strict=True):
        if cmd.op == Op.STORE:
            if not any(c.op == Op.LOAD_ADD for c in new_cmds):
                new_frames.append(load_add)
                new_cmds.append(Command(Op.LOAD_ADD, {"count": ADD_BEATS}))
            fields = {"add": 1, "add_swap": int(swap), "res_unsigned": int(b_uns)}
            frame = _header(frame, beat, **fields)
            frame += pack_lanes(framing.store_words(spec, cmd, res, program.layer.Kg),
                                spec.out_bits, beat)
            cmd = dataclasses.replace(cmd, header={**cmd.header, **fields})
        new_frames.append(frame)
        new_cmds.append(cmd)
    added = dataclasses.replace(program0, commands=tuple(new_cmds))
    return added, new_frames, expected


def _run(spec, jobs, tmp_path, stalls=False):
    vpath, top = verilog_for(spec)
    bdir = native.build(vpath, spec, "icarus", top=top)
    pause = 0.3 if stalls else 0.0
    return native.run(bdir, spec, jobs, tmp_path, sim="icarus", in_pause=pause,
                      out_pause=pause, seed=11)


@pytest.mark.parametrize("flow, a_uns, b_uns, swap, add_range, stalls", CASES)
def test_residual_add_on_the_store_path(flow, a_uns, b_uns, swap, add_range, stalls, tmp_path):
    spec = _spec(flow)
    added, frames, expected = _added(spec, np.random.default_rng(7), a_uns, b_uns, swap,
                                     add_range)
    [run] = _run(spec, [native.NativeProgram(frames, added.count(Op.STORE),
                                             cycle_bound(added, frames, 0.3, 0.3))],
                 tmp_path, stalls)
    assert stream_cause(run.counters) == Cause.NONE
    lo, hi = add_range
    got = framing.decode(added, run.outputs, Requant(scale=1.0, qmin=lo, qmax=hi))
    assert np.array_equal(got, expected)
    est = estimate(added)
    assert {k: run.counters[k] for k in est.counters} == est.counters
    if stalls:
        assert run.counters["in_stall"] > 0
    else:
        assert run.counters["cycles"] == est.cycles


def test_refused_and_cut_add_stores_then_a_valid_program(tmp_path):
    """A LOAD_ADD of 3 beats and a STORE with add but without requant are refused (FIELD); a
    stream cut inside an add STORE's residual leaves the hardware waiting (starved: TRUNCATED);
    after each the driver's soft reset, and the next program is bit-exact."""
    spec = _spec("ws")
    rng = np.random.default_rng(3)
    added, frames, expected = _added(spec, rng)
    beat = spec.in_stream_bits // 8
    k = next(i for i, c in enumerate(added.commands) if c.op == Op.LOAD_ADD)
    s = next(i for i, c in enumerate(added.commands) if c.op == Op.STORE)
    short_add = _header(frames[k], beat, count=ADD_BEATS - 1)[:-beat]
    no_requant = _header(frames[s], beat, requant=0)
    cut = b"".join(frames[:s]) + frames[s][:(HEADER_WORDS + 2) * beat]
    good = native.NativeProgram(frames, added.count(Op.STORE), cycle_bound(added, frames))
    jobs = []
    for bad in ([*frames[:k], short_add], [*frames[:s], no_requant], [cut]):
        jobs += [native.NativeProgram(bad, added.count(Op.STORE), cycle_bound(added, frames)),
                 good]
    runs = _run(spec, jobs, tmp_path)
    causes = [stream_cause({n: r.counters[n] for n in ("error", "starved", "cause")})
              for r in runs[::2]]
    assert causes == [Cause.FIELD, Cause.FIELD, Cause.TRUNCATED]
    lo, hi = (-128, 127)
    for r in runs[1::2]:
        got = framing.decode(added, r.outputs, Requant(scale=1.0, qmin=lo, qmax=hi))
        assert np.array_equal(got, expected)


def test_a_residual_network_on_the_rtl(tmp_path, capsys):
    """The tiny two-block ResNet of tests/test_network_residual.py on the ws RTL (Icarus), both
    Adds on their convs' STORE paths: bit-exact with onnxruntime, every layer's cycles equal to
    the model's."""
    import json

    from gen.cli import main
    from test_network_residual import SHAPE, _spec_file, _tiny
    spec = _spec_file(tmp_path, "ws_8x8")
    path = tmp_path / "tiny.onnx"
    path.write_bytes(_tiny().SerializeToString())
    np.save(tmp_path / "x.npy", np.random.default_rng(2).normal(size=SHAPE).astype(f32))
    rc = main(["run", str(spec), str(path), "--input", str(tmp_path / "x.npy"), "--sim",
               "icarus", "--check", "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["match"] and s["check"]["equal"] and s["layers_equal"]
    adds = [n for n in s["nodes"] if n["op"] == "QLinearAdd"]
    assert len(adds) == 2 and all(a["where"] == "RTL" and "fused_into" in a for a in adds)
    layers = [n for n in s["nodes"] if n.get("cycles") is not None]
    assert len(layers) == 7 and all(n["cycles"] == n["model_cycles"] for n in layers)


_RTL_SPEC = """name = "res_net_ws"
dataflow = "ws"
[array]
rows = 4
cols = 4
[buffers]
input_depth = 256
weight_depth = 512
output_depth = 128
[postproc]
enabled = true
residual = true
"""


def _random_residual_network_on_the_rtl(net, tmp_path, capsys):
    import json

    from gen.cli import main
    from gen.network.onnx_import import load
    qm, x = net
    spec = tmp_path / "res_net_ws.toml"
    spec.write_text(_RTL_SPEC)
    path = tmp_path / "net.onnx"
    path.write_bytes(qm.SerializeToString())
    np.save(tmp_path / "x.npy", x)
    rc = main(["run", str(spec), str(path), "--input", str(tmp_path / "x.npy"), "--sim",
               "icarus", "--check", "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["match"] and s["check"]["equal"] and s["layers_equal"], s
    adds = {n.name for n in load(qm).nodes if n.op == "QLinearAdd"}
    fused = {n["node"] for n in s["nodes"] if n.get("fused_into") and n["where"] == "RTL"}
    assert adds and fused >= adds
    assert all(n["cycles"] == n["model_cycles"] for n in s["nodes"]
               if n.get("cycles") is not None)


def test_random_residual_networks_on_the_rtl(tmp_path_factory, capsys):
    """A sample of the random residual networks of tests/test_network_golden.py (hypothesis) on
    the RTL (Icarus, one build): every Add on its conv's STORE path, bit-exact with
    onnxruntime, cycles == model on every layer."""
    from hypothesis import HealthCheck, given, settings
    from test_network_golden import networks

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=True)
    @given(networks(residual=True))
    def check(net):
        _random_residual_network_on_the_rtl(net, tmp_path_factory.mktemp("net"), capsys)

    check()
