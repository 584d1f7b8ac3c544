# amaranth: UnusedElaboratable=no
# (the refused unit is never elaborated)
"""hw/pool.py: the max-pooling stage, window by window, under random valid/ready."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.pool import PoolMax


def _run(lanes, width, sizes, pause, seed):
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    windows = [nrng.integers(lo, hi, (n, lanes)) for n in sizes]
    want = [w.max(axis=0).tolist() for w in windows]
    dut = PoolMax(lanes, width)
    got = []

    async def producer(ctx):
        for w in windows:
            for k, word in enumerate(w):
                while rng.random() < pause:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i.payload, {"data": [int(v) for v in word], "first": k == 0,
                                        "last": k == len(w) - 1})
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        while len(got) < len(want):
            ready = rng.random() >= pause
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append([int(payload[j]) for j in range(lanes)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    assert got == want


@pytest.mark.parametrize("pause", [0.0, 0.5])
def test_pool_max_per_lane(pause):
    """2x2 windows (4 words), 3x3 (9), single words (a STORE without pooling), mixed."""
    _run(3, 8, [4, 4, 9, 1, 1, 2, 4, 6], pause, seed=1)


def test_pool_signed_extremes():
    """The most negative and positive lane values, wide lanes."""
    _run(2, 33, [4] * 6, 0.3, seed=2)


def test_pool_refuses_empty_lanes():
    with pytest.raises(ValueError, match="at least one lane of at least 2 bits"):
        PoolMax(0, 8)
