"""hw/counters.py: every counter sums its events (a cycle late); PE-level counts per engine."""

import random

import pytest
from amaranth.sim import Simulator

from conftest import make_spec
from gen.isa import COUNTERS
from hw.counters import Counters, EventLayout


@pytest.mark.parametrize("dataflow", ["ws", "rs"])
def test_counters_sum_events_and_clear(dataflow):
    spec = make_spec(rows=3, cols=2, dataflow=dataflow)
    dut = Counters(spec)
    rng = random.Random(4)
    pes = spec.rows * spec.cols
    rf_pp, arr_pp = spec.flow.per_pe_cycle

    async def tb(ctx):
        want = dict.fromkeys(COUNTERS, 0)
        commands = 0
        pending = None     # this cycle's events are counted after the next edge
        for cycle in range(300):
            clear = cycle == 150
            ev = {n: rng.randrange(1 << EventLayout[n].width)
                  for n in EventLayout.members}
            issue, fills, moves = rng.randrange(2), rng.randrange(3), rng.randrange(4)
            cmd = clear or rng.random() < 0.2   # (a header completing as they clear)
            for n, v in ev.items():
                ctx.set(getattr(dut.events, n), v)
            ctx.set(dut.activity.issue, issue)
            ctx.set(dut.activity.fills, fills)
            ctx.set(dut.activity.moves, moves)
            ctx.set(dut.command, cmd)
            ctx.set(dut.clear, clear)
            await ctx.tick()
            if clear:
                want = dict.fromkeys(COUNTERS, 0)
                commands = 0
            elif pending is not None:
                for n, v in pending.items():
                    want[n] += v
            commands += cmd
            pending = ev | {"array_busy": issue, "pe_macs": issue * pes,
                            "rf_accesses": issue * rf_pp * pes + fills * pes,
                            "array_moves": issue * arr_pp * pes + moves * pes}
            for n in COUNTERS:
                assert ctx.get(getattr(dut, n)) == want[n], (cycle, n)
            assert ctx.get(dut.commands) == commands

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
