"""bench/soak.py's host side, without a simulator: its random conv + residual add layers (ConvAdd)
cover the Add's domain, their frames run on the ISA machine equal their golden outputs, and its
check counts a wrong output, so the soak can fail."""

import importlib.util
import types
from pathlib import Path

import numpy as np
import pytest

from gen.isa import Op
from gen.model import estimate
from gen.quant import Requant
from sim.isa_model import run as isa_run

_PATH = Path(__file__).resolve().parents[1] / "bench" / "soak.py"
_spec = importlib.util.spec_from_file_location("soak", _PATH)
soak = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak)


def test_the_default_run_has_no_residual_layers():
    rng = np.random.default_rng(0)
    spec = soak.random_spec("ws", rng)
    assert not spec.residual and not spec.postproc
    jobs = [soak.random_job(spec, rng, 0.0) for _ in range(5)]
    assert all(not j[4] and not j[1].add and not j[1].requant for j in jobs)


def test_random_adds_cover_the_domain():
    rng = np.random.default_rng(1)
    spec = soak.random_spec("ws", rng, residual=True)
    seen = set()
    for signed in (True, False):
        lo, hi = (-128, 127) if signed else (0, 255)
        for zp in (lo, hi):
            q = Requant(np.float32(0.01), zp, lo, hi)
            for _ in range(100):
                add, (rlo, rhi) = soak.random_add(spec, q, rng)
                assert add.resolved(spec) == add and (rlo, rhi) == add.residual_range(spec)
                seen |= {("swap", add.swap), ("res_signed", add.res_signed),
                         ("out_signed", add.signed), ("narrowed", add.qmin not in (-128, 0))}
                seen.add(("ratio>1", bool(add.ra > 1)))
                seen.add(("ratio<1", bool(add.ra < 1)))
                if add.qmin in (-128, 0) and add.qmax in (127, 255):
                    seen.add("full range")
    assert {("swap", True), ("swap", False), ("res_signed", True), ("res_signed", False),
            ("out_signed", True), ("out_signed", False), ("narrowed", True), ("ratio>1", True),
            ("ratio<1", True), "full range"} <= seen


@pytest.mark.parametrize("flow", soak.ENGINES)
def test_residual_jobs_on_the_isa_machine_and_a_wrong_output_counted(flow):
    rng = np.random.default_rng(len(flow))
    spec = soak.random_spec(flow, rng, residual=True)
    jobs = [soak.random_job(spec, rng, 1.0) for _ in range(6)]
    assert all(j[4] and j[1].add and j[1].count(Op.LOAD_ADD) == 1 for j in jobs)
    runs = [types.SimpleNamespace(outputs=isa_run(spec, frames),
                                  counters={**estimate(program).counters, "error": 0,
                                            "commands": len(program.commands), "cycles": 1})
            for _, program, frames, _, _ in jobs]
    bad, cycles, names = soak.check(spec, jobs, runs)
    assert bad == {"mismatch": 0, "model": 0, "counters": 0} and cycles == 6 and not names
    first = runs[0].outputs[0]
    runs[0].outputs[0] = bytes([first[0] ^ 1]) + first[1:]      # one output lane wrong
    runs[1].counters["obuf_reads"] += 1
    bad, _, names = soak.check(spec, jobs, runs)
    assert bad == {"mismatch": 1, "model": 0, "counters": 1}
    assert "RTL" in names[0] and "residual add" in names[0] and "counters" in names[1]


def test_most_residual_layers_are_not_clamped_flat():
    """The random Adds exercise the arithmetic: most layers' outputs are not all at the clamp
    range's ends."""
    rng = np.random.default_rng(5)
    spec = soak.random_spec("ws", rng, residual=True)
    flat = 0
    for _ in range(60):
        _, _, _, want, dec = soak.random_job(spec, rng, 1.0)
        flat += bool(np.isin(want, (dec["add"].qmin, dec["add"].qmax)).all())
    assert flat < 60 * 0.3
