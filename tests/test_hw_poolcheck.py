"""hw/poolcheck.py: whether a pooling STORE's windows tile its words, a bit per cycle, against
the ISA machine's arithmetic (sim/isa_model.check_command) on random and edge fields."""

import random

from amaranth.sim import Simulator

from conftest import make_spec, pool_window_fields
from gen.isa import field_max
from hw.poolcheck import PoolCheck


def _tiles(count, kr, ks, pw):
    return bool(kr and ks and pw) and pw % ks == 0 and count % (kr * pw) == 0


def _cases(rng, n):
    """Fields that tile, near misses (one off), zeros and the fields' extremes."""
    out = [(0, 1, 1, 1), (0, 0, 1, 1), (4, 2, 2, 0), (field_max("count"), 1, 1, 1),
           (field_max("count"), field_max("pool_r"), field_max("pool_s"), field_max("pool_w")),
           (2 * 32640, 2, 255, 32640), (2 * 32640 + 1, 2, 255, 32640)]
    while len(out) < n:
        count, kr, ks, pw = pool_window_fields(rng, 9, 40, 30, first_rows=0, wild=True)
        out.append((max(0, min(count, field_max("count"))), kr, ks, max(0, pw)))
    return out


def test_pool_check_agrees_with_the_isa_machine():
    dut = PoolCheck()
    assert dut.latency == make_spec(pool=True).pool_check_latency
    rng = random.Random(3)
    cases = _cases(rng, 400)
    got = []

    async def bench(ctx):
        for count, kr, ks, pw in cases:
            ctx.set(dut.count, count)
            ctx.set(dut.pool_r, kr)
            ctx.set(dut.pool_s, ks)
            ctx.set(dut.pool_w, pw)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for k in range(dut.latency):
                assert ctx.get(dut.busy), k
                await ctx.tick()
            assert not ctx.get(dut.busy)
            got.append(bool(ctx.get(dut.ok)))
            for _ in range(rng.randrange(3)):     # the verdict holds until the next start
                await ctx.tick()
                assert bool(ctx.get(dut.ok)) == got[-1] and not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = [_tiles(*c) for c in cases]
    assert got == want
    assert 100 < sum(want) < 300      # both verdicts well represented
