"""Recovery on the RTL: a malformed command stream then a soft reset, or a hard reset at any
cycle of a program (also while a STORE is held by backpressure), each followed by a program that
must come out bit-exact (the cocotb driver: sim/cocotb_recover.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from gen.isa import Op, identity
from gen.program import Program
from gen.spec import Spec

from .flow import ProgramRun, cycle_bound, verilog_for
from .job import load_result, write_job
from .runner import build, run_job

__all__ = ["after_bad_stream", "after_reset"]


def _run(spec: Spec, program: Program, frames, meta: dict, bad=(), *, sim, in_pause, out_pause,
         seed, work_dir) -> ProgramRun:
    vpath, top = verilog_for(spec)
    bdir = build(vpath, top, sim)
    job_dir = Path(work_dir or tempfile.mkdtemp(prefix="accelgen-recover-"))
    bound = cycle_bound(program, frames, in_pause, out_pause)
    write_job(job_dir, [*bad, *frames], {
        "n_out": program.count(Op.STORE), "in_pause": in_pause, "out_pause": out_pause,
        "seed": seed, "timeout_cycles": 2 * bound + 20 * sum(len(b) for b in bad),
        "identity": identity(spec), "n_bad": len(bad)} | meta)
    run_job(bdir, top, sim, job_dir, module="sim.cocotb_recover")
    return ProgramRun(*load_result(job_dir))


def after_bad_stream(spec: Spec, bad: list[bytes], program: Program, frames, *,
                     sim: str = "icarus", in_pause: float = 0.0, out_pause: float = 0.0,
                     seed: int = 0, work_dir=None) -> ProgramRun:
    """Send ``bad`` (whole beats), read the status (``bad_error``, ``bad_cause``), soft reset,
    run ``program``."""
    return _run(spec, program, frames, {"mode": "stream"}, bad, sim=sim, in_pause=in_pause,
                out_pause=out_pause, seed=seed, work_dir=work_dir)


def after_reset(spec: Spec, program: Program, frames, reset_at: int, *, in_store: bool = False,
                sim: str = "icarus", in_pause: float = 0.0, out_pause: float = 0.0,
                seed: int = 0, work_dir=None) -> ProgramRun:
    """Start ``program``, hard-reset at cycle ``reset_at`` (``in_store``: at the next output beat
    held by backpressure), then run ``program`` again; its run is returned."""
    return _run(spec, program, frames, {"mode": "reset", "reset_at": reset_at,
                                        "in_store": in_store},
                sim=sim, in_pause=in_pause, out_pause=out_pause, seed=seed, work_dir=work_dir)
