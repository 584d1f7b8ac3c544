"""hw/walker.py: the pixel walker's addresses and flags against the COMPUTE formula."""

import random

import pytest
from amaranth.sim import Simulator

from hw.walker import PixelWalker


def _run(p, q, r, s, seed, *, past_end=False):
    rng = random.Random(seed)
    c = dict(p=p, q=q, r=r, s=s, addr=rng.randrange(1000), waddr=rng.randrange(1000),
             row_step=rng.randrange(1, 40), dil_step=rng.randrange(1, 60),
             stride=rng.randrange(1, 4), dilation=rng.randrange(1, 4))
    wstep = rng.randrange(1, 20)
    dut = PixelWalker(checks=True)

    async def tb(ctx):
        cmd = dut.cmd
        for name in ("p", "q", "r", "s", "addr", "waddr", "row_step", "dil_step", "stride",
                     "dilation"):
            ctx.set(getattr(cmd.cmd, name), c[name])
        for n in "pqrs":
            ctx.set(getattr(cmd.one, n), c[n] == 1)
            ctx.set(getattr(cmd.two, n), c[n] == 2)
        ctx.set(dut.wstep, wstep)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for tr in range(r):
            for ts in range(s):
                for pi in range(p):
                    for qi in range(q):
                        while rng.random() < 0.3:      # the walker holds while idle
                            await ctx.tick()
                        want = (c["addr"] + pi * c["row_step"] + tr * c["dil_step"]
                                + qi * c["stride"] + ts * c["dilation"])
                        assert ctx.get(dut.pix) == want, (tr, ts, pi, qi)
                        assert ctx.get(dut.wtap) == c["waddr"] + (tr * s + ts) * wstep
                        last_pix = pi == p - 1 and qi == q - 1
                        assert ctx.get(dut.pix_last) == last_pix
                        assert ctx.get(dut.tap_last) == (tr == r - 1 and ts == s - 1)
                        assert ctx.get(dut.first_tap) == (tr == 0 and ts == 0)
                        assert ctx.get(dut.origin) == (pi == 0 and qi == 0)
                        final = last_pix and tr == r - 1 and ts == s - 1
                        # at a tap's last pixel the walker moves to the next tap; both strobes
                        # may be high (tap wins), as the weight-stationary stream raises them
                        ctx.set(dut.tap, last_pix and not final)
                        ctx.set(dut.pixel, past_end if final
                                else (not last_pix) or rng.random() < 0.5)
                        await ctx.tick()
                        ctx.set(dut.tap, 0)
                        ctx.set(dut.pixel, 0)
        assert ctx.get(dut.ri) == r - 1
        await ctx.tick()   # (the checks see the final position)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("p,q,r,s", [(1, 1, 1, 1), (1, 2, 1, 2), (2, 1, 2, 1), (2, 2, 2, 2),
                                     (3, 4, 3, 2), (4, 3, 2, 3), (1, 5, 5, 1), (3, 3, 1, 1)])
def test_walker_addresses_and_flags(p, q, r, s):
    _run(p, q, r, s, seed=p * 1000 + q * 100 + r * 10 + s)


def test_walker_past_the_last_pixel():
    """Weight-stationary walks one pixel past the last tap's last; the flags stay true."""
    _run(3, 2, 2, 2, seed=5, past_end=True)
