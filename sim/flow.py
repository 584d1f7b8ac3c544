"""Run a layer on the RTL end to end: plan → frames → Verilog → cocotb → output → golden check.

One function, :func:`simulate_layer`, shared by the CLI, the tests and the benchmarks.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from gen import frames as framing
from gen.emit import generate, hardware_fingerprint
from gen.errors import AccelgenError
from gen.isa import Op, identity
from gen.layer import ConvLayer
from gen.model import Estimate, estimate
from gen.progress import record_time, step
from gen.spec import Spec
from gen.tiler import plan

from . import golden
from .job import load_result, write_job
from .runner import build, cache_dir, locked, run_job

__all__ = ["SimResult", "simulate_layer", "random_tensors", "first_mismatch", "rate_key"]


def rate_key(sim: str) -> str:
    """The timings-store key (gen/progress.py) of ``sim``'s last simulated cycles per second."""
    return f"simulate on {sim}: cycles per second"


@dataclasses.dataclass
class SimResult:
    spec: Spec
    layer: ConvLayer
    sim: str
    output: np.ndarray
    expected: np.ndarray
    counters: dict
    verilog: Path
    job_dir: Path
    program_summary: dict
    wall_seconds: float
    model: Estimate | None = None   # the analytic model's prediction for the same Program

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


def random_tensors(spec: Spec, layer: ConvLayer, seed: int = 0, *, bias: bool = False,
                   extreme: str | None = None):
    """Random input/weight (and bias) tensors within the spec's precisions.

    ``extreme`` = "min" or "max" fills input and weights with the extreme value instead. A layer
    whose tensors would not fit in memory (more than :data:`MAX_TENSOR_ELEMENTS`) is refused."""
    elements = layer.N * layer.C * layer.H * layer.W + layer.K * layer.Cg * layer.R * layer.S
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
    b = rng.integers(-lim, lim, layer.K) if bias else None
    return x, w, b


def _uart_verilog(spec: Spec, divisor: int, path: Path) -> None:
    from amaranth.back import verilog

    from hw.bridge import UartTop
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(UartTop(spec, divisor=divisor), name=f"{spec.name}_uart",
                                    emit_src=False))


def simulate_layer(spec: Spec, layer: ConvLayer, x, w, bias=None, *, sim: str = "icarus",
                   work_dir: Path | None = None, in_pause: float = 0.0, out_pause: float = 0.0,
                   seed: int = 0, waves: bool = False, via_uart: bool = False,
                   uart_divisor: int = 8, quant=None, relu: bool = False,
                   announce=None) -> SimResult:
    """Run ``layer`` on the RTL and compare with the golden model.

    ``via_uart`` runs the board-level UART top (hw/bridge.py) instead of the bare accelerator,
    driven through gen/hostlink.py as the pyserial board driver would, ``uart_divisor`` clocks
    per bit. ``quant = (multiplier, shift)`` (per output channel, or scalars) requantises the
    outputs and ``relu`` clamps them, in the post-processing unit. ``announce(program, model)``
    is called once the layer is planned, before anything slow (the CLI prints its header)."""
    t0 = time.monotonic()
    x, w, bias = framing.check_tensors(spec, layer, x, w, bias)
    program = plan(spec, layer, bias=bias is not None, requant=quant is not None, relu=relu)
    if quant is not None:
        quant = framing.check_quant(spec, layer, *quant)
    model = estimate(program)
    if announce is not None:
        announce(program, model)
    frames = framing.encode(program, x, w, bias, quant)
    expected = golden.layer_output(spec, layer, x, w, bias, quant, relu)

    # keyed by the spec and the generator's sources: a changed generator never reuses old RTL
    gen_dir = cache_dir() / "generated" / f"{spec.name}-{spec.digest()}-{hardware_fingerprint()}"
    top = f"{spec.name}_uart" if via_uart else spec.name
    vpath = gen_dir / (f"{top}-div{uart_divisor}.v" if via_uart else f"{top}.v")
    with locked(gen_dir.parent / f"{gen_dir.name}.lock"):
        if not (gen_dir / "manifest.json").exists():
            with step(f"generating the {spec.name} Verilog", key=f"generate {spec.name}"):
                generate(spec, gen_dir)
        if via_uart and not vpath.exists():
            _uart_verilog(spec, uart_divisor, vpath)
    bdir = build(vpath, top, sim, waves=waves)

    if work_dir is None:
        work_dir = Path(tempfile.mkdtemp(prefix="accelgen-sim-"))
    job_dir = Path(work_dir)
    total_beats = sum(len(f) for f in frames) // (spec.in_stream_bits // 8)
    stores = program.count(Op.STORE)
    out_beats = sum(c.count for c in program.commands if c.op == Op.STORE)
    # generous watchdog: the model's exact cycles (which assume no stalls), tripled, plus pauses
    budget = int((model.cycles + total_beats + out_beats) * 3
                 / max(0.05, (1 - max(in_pause, out_pause)))) + 10_000
    if via_uart:  # ten bit times per byte each way, plus CSR polls
        total_bytes = sum(len(f) for f in frames) + out_beats * spec.out_stream_bits // 8
        budget += 30 * uart_divisor * (total_bytes + 64 * len(frames)) + 50 * budget
    write_job(job_dir, frames, {
        "n_out": stores, "in_pause": in_pause, "out_pause": out_pause, "seed": seed,
        "timeout_cycles": budget, "identity": identity(spec), "divisor": uart_divisor,
        "ops": [int(c.op) for c in program.commands],
        "store_counts": [c.count for c in program.commands if c.op == Op.STORE],
        "out_beat_bytes": spec.out_stream_bits // 8,
    })
    t_run = time.monotonic()
    run_job(bdir, top, sim, job_dir, waves=waves,
            module="sim.cocotb_uart" if via_uart else "sim.cocotb_job")
    if not via_uart and model.cycles >= 20_000:
        # simulated cycles per second (of a run long enough to hide the simulator's start-up),
        # for the next run's expected wall time
        record_time(rate_key(sim), model.cycles / max(1e-3, time.monotonic() - t_run))
    outs, counters = load_result(job_dir)
    y = framing.decode(program, outs)
    if counters.get("error"):
        raise AccelgenError(f"the hardware flagged a command error (status.error); see "
                            f"{job_dir / 'sim.log'}")
    return SimResult(spec=spec, layer=layer, sim=sim, output=y, expected=expected,
                     counters=counters, verilog=vpath, job_dir=job_dir,
                     program_summary=program.summary(), wall_seconds=time.monotonic() - t0,
                     model=model)
