"""Run a layer on the RTL end to end: plan → frames → Verilog → simulator → output → golden check.

:func:`simulate_layer` (one layer, checked against the golden model) is shared by the CLI, the
tests and the benchmarks; :func:`simulate_programs` runs a sequence of programs (a network's
layers) in one simulator process and returns each one's output frames and counters::

    from sim.flow import simulate_programs
    runs = simulate_programs(spec, [(program, frames), ...], sim="verilator")
    y = gen.frames.decode(program, runs[0].outputs); runs[0].counters["cycles"]
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from gen import frames as framing
from gen.emit import generate, hardware_fingerprint
from gen.errors import AccelgenError
from gen.isa import Op, identity
from gen.layer import Layer
from gen.model import Estimate, estimate
from gen.progress import cache_dir, record_time, step
from gen.spec import Spec
from gen.program import Program

from . import native
from .job import load_result, write_job
from .runner import build, locked, run_job

__all__ = ["DRIVERS", "SimResult", "ProgramRun", "simulate_layer", "simulate_programs",
           "open_session", "native_program", "layer_program", "check_refused", "verilog_for",
           "cycle_bound", "random_tensors", "first_mismatch", "rate_key"]


def rate_key(sim: str, driver: str = "native") -> str:
    """The timings-store key (gen/progress.py) of ``sim``'s last simulated cycles per second
    with ``driver``."""
    return f"simulate on {sim} ({driver} driver): cycles per second"


@dataclasses.dataclass
class SimResult:
    spec: Spec
    layer: Layer
    sim: str
    output: np.ndarray
    expected: np.ndarray
    counters: dict
    verilog: Path
    job_dir: Path
    program_summary: dict
    wall_seconds: float
    model: Estimate | None = None   # the analytic model's prediction for the same Program
    driver: str = "native"

    @property
    def match(self) -> bool:
        return bool(np.array_equal(self.output, self.expected))

    @property
    def cycles(self) -> int:
        return int(self.counters["cycles"])

    @property
    def macs(self) -> int:
        return self.layer.macs

    @property
    def utilisation(self) -> float:
        return self.macs / (self.cycles * self.spec.rows * self.spec.cols) if self.cycles else 0.0

    def model_vs_rtl(self) -> dict:
        """The model's prediction beside the RTL counters: ``{counter: {"model", "rtl",
        "equal"}}``. Buffer counts are always equal; cycles only without stalls."""
        out = {}
        for name, value in _model_rows(self.model).items():
            rtl = int(self.counters[name])
            out[name] = {"model": value, "rtl": rtl, "equal": value == rtl}
        return out

    def summary(self) -> dict:
        mm = first_mismatch(self.output, self.expected)
        return {
            "spec": self.spec.name, "layer": self.layer.describe(), "sim": self.sim,
            "driver": self.driver,
            "match": self.match, "first_mismatch": mm,
            "cycles": self.cycles, "macs": self.macs,
            "ideal_cycles": -(-self.macs // (self.spec.rows * self.spec.cols)),
            "utilisation": round(self.utilisation, 4),
            "counters": self.counters, "program": self.program_summary,
            **({"model": self.model_vs_rtl()} if self.model else {}),
            "verilog": str(self.verilog), "wall_seconds": round(self.wall_seconds, 2),
        }


def _model_rows(est: Estimate) -> dict:
    return {"cycles": est.cycles, "array_busy": est.array_busy, **est.counters}


def first_mismatch(y: np.ndarray, g: np.ndarray):
    bad = np.argwhere(y != g)
    if not len(bad):
        return None
    idx = tuple(int(i) for i in bad[0])
    return {"index": list(idx), "rtl": int(y[idx]), "golden": int(g[idx]),
            "mismatches": int(len(bad))}


#: the most input and weight values :func:`random_tensors` makes (2 GiB of int64)
MAX_TENSOR_ELEMENTS = 1 << 28


def random_tensors(spec: Spec, layer: Layer, seed: int = 0, *, bias: bool = False,
                   extreme: str | None = None):
    """Random input/weight (and bias) tensors within the spec's precisions.

    ``extreme`` = "min" or "max" fills input and weights with the extreme value instead. A layer
    whose tensors would not fit in memory (more than :data:`MAX_TENSOR_ELEMENTS`) is refused."""
    elements = math.prod(layer.input_shape) + math.prod(layer.weight_shape)
    if elements > MAX_TENSOR_ELEMENTS:
        raise AccelgenError(
            f"layer {layer.describe()} has {elements:,} input and weight values, more than the "
            f"{MAX_TENSOR_ELEMENTS:,} a simulation holds; use a smaller layer")
    rng = np.random.default_rng(seed)
    alo, ahi = spec.act_range()
    wlo, whi = spec.weight_range()
    if extreme == "min":
        x = np.full(layer.input_shape, alo, dtype=np.int64)
        w = np.full(layer.weight_shape, wlo, dtype=np.int64)
    elif extreme == "max":
        x = np.full(layer.input_shape, ahi, dtype=np.int64)
        w = np.full(layer.weight_shape, whi, dtype=np.int64)
    else:
        x = rng.integers(alo, ahi + 1, layer.input_shape)
        w = rng.integers(wlo, whi + 1, layer.weight_shape)
    lim = 1 << min(20, spec.acc_bits - 2)
    b = rng.integers(-lim, lim, layer.output_shape[1]) if bias else None
    return x, w, b


def _uart_verilog(spec: Spec, divisor: int, path: Path) -> None:
    from amaranth.back import verilog

    from hw.bridge import UartTop
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(UartTop(spec, divisor=divisor), name=f"{spec.name}_uart",
                                    emit_src=False))


DRIVERS = ("native", "cocotb")


@dataclasses.dataclass
class ProgramRun:
    """One program's run on the RTL: its output frames and the counters read after it (the
    performance counters, ``commands``, ``error``, and ``sim_cycles`` the driver measured)."""
    outputs: list[bytes]
    counters: dict


def verilog_for(spec: Spec, *, via_uart: bool = False, uart_divisor: int = 8) -> tuple[Path, str]:
    """The generated Verilog of ``spec`` (cached by the spec and the generator's sources, so a
    changed generator never reuses old RTL) and its top module's name."""
    gen_dir = cache_dir() / "generated" / f"{spec.name}-{spec.digest()}-{hardware_fingerprint()}"
    top = f"{spec.name}_uart" if via_uart else spec.name
    vpath = gen_dir / (f"{top}-div{uart_divisor}.v" if via_uart else f"{top}.v")
    with locked(gen_dir.parent / f"{gen_dir.name}.lock"):
        if not (gen_dir / "manifest.json").exists():
            with step(f"generating the {spec.name} Verilog", key=f"generate {spec.name}"):
                generate(spec, gen_dir)
        if via_uart and not vpath.exists():
            _uart_verilog(spec, uart_divisor, vpath)
    return vpath, top


def cycle_bound(program: Program, frames: list[bytes], in_pause: float = 0.0,
                out_pause: float = 0.0) -> int:
    """The watchdog's bound for ``program``: the model's exact cycles (which assume no stalls)
    and every beat, tripled, stretched by the pauses, plus 10,000."""
    spec = program.spec
    total_beats = sum(len(f) for f in frames) // (spec.in_stream_bits // 8)
    out_beats = sum(c.count for c in program.commands if c.op == Op.STORE)
    return int((estimate(program).cycles + total_beats + out_beats) * 3
               / max(0.05, (1 - max(in_pause, out_pause)))) + 10_000


def _check_driver(driver: str, sim: str, waves) -> None:
    if driver not in DRIVERS:
        raise AccelgenError(f"--driver must be one of {', '.join(DRIVERS)}, not {driver!r}")
    if waves not in (None, *native.WAVE_FORMATS):
        raise AccelgenError(f"--waves must be one of {', '.join(native.WAVE_FORMATS)}, "
                            f"not {waves!r}")
    if driver == "cocotb" and waves == "vcd":
        raise AccelgenError("the cocotb driver records FST waves only; use --waves fst or "
                            "--driver native")


def simulate_programs(spec: Spec, programs, *, sim: str = "verilator", driver: str = "native",
                      work_dir: Path | None = None, in_pause: float = 0.0,
                      out_pause: float = 0.0, seed: int = 0,
                      waves: str | None = None) -> list[ProgramRun]:
    """Run a sequence of programs on the RTL of ``spec``; return a :class:`ProgramRun` per
    program (its output frames and counters).

    ``programs`` holds ``(program, frames)`` pairs: a :class:`gen.program.Program` and its input
    frames from :func:`gen.frames.encode`; decode each run's outputs with
    ``gen.frames.decode(program, run.outputs)``. The native driver runs them all in one
    simulator process on one (cached) build; the cocotb driver runs one cocotb job per program.
    ``in_pause``/``out_pause`` pause the input/output stream with that probability each cycle
    (seeded by ``seed``); ``waves`` ("fst" or "vcd") records waveforms in ``work_dir``."""
    _check_driver(driver, sim, waves)
    programs = list(programs)
    vpath, top = verilog_for(spec)
    if work_dir is None:
        work_dir = Path(tempfile.mkdtemp(prefix="accelgen-sim-"))
    work_dir = Path(work_dir)
    if driver == "native":
        bdir = native.build(vpath, spec, sim, top=top, waves=waves)
        jobs = [native.NativeProgram(frames, program.count(Op.STORE),
                                     cycle_bound(program, frames, in_pause, out_pause))
                for program, frames in programs]
        results = native.run(bdir, spec, jobs, work_dir, sim=sim, in_pause=in_pause,
                             out_pause=out_pause, seed=seed, waves=waves)
        return [ProgramRun(r.outputs, r.counters) for r in results]
    bdir = build(vpath, top, sim, waves=waves is not None)
    runs = []
    for k, (program, frames) in enumerate(programs):
        job_dir = work_dir if len(programs) == 1 else work_dir / f"program{k}"
        write_job(job_dir, frames, {
            "n_out": program.count(Op.STORE), "in_pause": in_pause, "out_pause": out_pause,
            "seed": seed, "timeout_cycles": cycle_bound(program, frames, in_pause, out_pause),
            "identity": identity(spec)})
        run_job(bdir, top, sim, job_dir, waves=waves is not None)
        runs.append(ProgramRun(*load_result(job_dir)))
    return runs


def open_session(spec: Spec, *, sim: str = "verilator", work_dir: Path):
    """One simulator process on the native harness of ``spec``'s RTL that takes programs one at
    a time (sim/session.py): ``s.run(native_program(program, frames))``, then ``s.close()``."""
    from .session import Session
    vpath, top = verilog_for(spec)
    bdir = native.build(vpath, spec, sim, top=top)
    return Session(bdir, spec, work_dir, sim=sim)


def native_program(program: Program, frames: list[bytes]) -> native.NativeProgram:
    """``program`` with its input frames as the native harness takes it."""
    return native.NativeProgram(frames, program.count(Op.STORE), cycle_bound(program, frames))


def layer_program(spec: Spec, layer: Layer, x, w, bias=None, quant=None,
                  relu: bool = False, **added) -> tuple[Program, list[bytes]]:
    """``layer``'s Program on ``spec`` and its input frames for the tensors (checked against the
    spec's precisions) and the requantisation ``quant`` (checked against the Program);
    ``added``: a gen/residual.py ConvAdd's ``residual`` and ``add``."""
    x, w, bias = framing.check_tensors(spec, layer, x, w, bias)
    program = layer.plan(spec, bias=bias is not None, requant=quant is not None, relu=relu)
    if quant is not None:
        framing.check_quant(program, quant)
    return program, layer.encode(program, x, w, bias, quant, **added)


def check_refused(counters: dict, job_dir: Path) -> None:
    """Raise naming the cause when the hardware refused a command (``status.error``) or waits
    inside a frame after the whole stream (``status.starved``: the stream ended inside a header
    or a LOAD's payload); the driver has soft-reset it (gen/isa.py stream_cause)."""
    from gen.isa import Cause, stream_cause
    cause = stream_cause(counters)
    if cause == Cause.TRUNCATED:
        raise AccelgenError(f"the command stream ended inside a frame: the hardware waited for "
                            f"the rest of a header or a LOAD's payload (status.starved, "
                            f"TRUNCATED); see {Path(job_dir) / 'sim.log'}")
    if cause:
        name = cause.name if isinstance(cause, Cause) else str(cause)
        raise AccelgenError(f"the hardware refused a command (status.error, cause {name}: "
                            f"see gen/isa.py Cause); see {Path(job_dir) / 'sim.log'}")


def simulate_layer(spec: Spec, layer: Layer, x, w, bias=None, *, sim: str = "icarus",
                   driver: str | None = None, work_dir: Path | None = None,
                   in_pause: float = 0.0, out_pause: float = 0.0, seed: int = 0,
                   waves: str | bool | None = None, via_uart: bool = False,
                   uart_divisor: int = 8, quant=None, relu: bool = False,
                   announce=None) -> SimResult:
    """Run ``layer`` (any kind of gen/layer.py's :class:`~gen.layer.Layer` protocol: planned,
    encoded and decoded by its own methods) on the RTL and compare with its golden model.

    ``driver`` is "native" (the default: the clock, streams and CSRs inside the simulator,
    sim/native.py) or "cocotb" (cocotbext-axi bus models, sim/driver.py). ``via_uart`` runs the
    board-level UART top (hw/bridge.py) instead of the bare accelerator, driven through
    gen/hostlink.py as the pyserial board driver would (cocotb only), ``uart_divisor`` clocks per
    bit. ``quant`` (a :class:`gen.quant.Requant`: fp32 scale per output channel, zero point,
    clamp range) requantises the outputs as onnxruntime does and ``relu`` clamps them, in the
    post-processing unit. ``waves``: "fst" or "vcd"
    (True means "fst"). ``announce(program, model)`` is called once the layer is planned, before
    anything slow (the CLI prints its header)."""
    t0 = time.monotonic()
    if waves is True:
        waves = "fst"
    elif waves is False:
        waves = None
    if driver is None:
        driver = "cocotb" if via_uart else "native"
    if via_uart and driver != "cocotb":
        raise AccelgenError("the UART top runs with the cocotb driver only (driver='cocotb')")
    _check_driver(driver, sim, waves)
    x, w, bias = framing.check_tensors(spec, layer, x, w, bias)
    program = layer.plan(spec, bias=bias is not None, requant=quant is not None, relu=relu)
    if quant is not None:
        framing.check_quant(program, quant)    # a bad parameter is named before anything runs
    model = estimate(program)
    if announce is not None:
        announce(program, model)
    frames = layer.encode(program, x, w, bias, quant)
    expected = layer.golden(spec, x, w, bias, quant, relu)
    if work_dir is None:
        work_dir = Path(tempfile.mkdtemp(prefix="accelgen-sim-"))
    job_dir = Path(work_dir)

    if via_uart:
        vpath, top = verilog_for(spec, via_uart=True, uart_divisor=uart_divisor)
        out_beats = sum(c.count for c in program.commands if c.op == Op.STORE)
        budget = cycle_bound(program, frames, in_pause, out_pause)
        # ten bit times per byte each way, plus CSR polls
        total_bytes = sum(len(f) for f in frames) + out_beats * spec.out_stream_bits // 8
        budget += 30 * uart_divisor * (total_bytes + 64 * len(frames)) + 50 * budget
        bdir = build(vpath, top, sim, waves=waves is not None)
        write_job(job_dir, frames, {
            "n_out": program.count(Op.STORE), "in_pause": in_pause, "out_pause": out_pause,
            "seed": seed, "timeout_cycles": budget, "identity": identity(spec),
            "divisor": uart_divisor, "ops": [int(c.op) for c in program.commands],
            "store_counts": [c.count for c in program.commands if c.op == Op.STORE],
            "out_beat_bytes": spec.out_stream_bits // 8,
        })
        run_job(bdir, top, sim, job_dir, waves=waves is not None, module="sim.cocotb_uart")
        outs, counters = load_result(job_dir)
    else:
        vpath, top = verilog_for(spec)
        if driver == "native":   # build first, so the rate below times the simulation alone
            native.build(vpath, spec, sim, top=top, waves=waves)
        else:
            build(vpath, top, sim, waves=waves is not None)
        t_run = time.monotonic()
        (run,) = simulate_programs(spec, [(program, frames)], sim=sim, driver=driver,
                                   work_dir=job_dir, in_pause=in_pause, out_pause=out_pause,
                                   seed=seed, waves=waves)
        outs, counters = run.outputs, run.counters
        if model.cycles >= 20_000:
            # simulated cycles per second (of a run long enough to hide the simulator's
            # start-up), for the next run's expected wall time
            record_time(rate_key(sim, driver),
                        model.cycles / max(1e-3, time.monotonic() - t_run))
    check_refused(counters, job_dir)
    y = layer.decode(program, outs, quant)
    return SimResult(spec=spec, layer=layer, sim=sim, output=y, expected=expected,
                     counters=counters, verilog=vpath, job_dir=job_dir,
                     program_summary=program.summary(), wall_seconds=time.monotonic() - t0,
                     model=model, driver=driver)
