"""hw/writeback.py: tokens, sums and the output words they accumulate onto."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from conftest import make_spec
from hw.buffer import Scratchpad
from hw.writeback import WriteBack


def _wrap(v, bits):
    return (v + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))


def _lanes(word, cols, bits):
    return [_wrap((word >> (bits * j)) & ((1 << bits) - 1), bits) for j in range(cols)]


@pytest.mark.parametrize("dataflow,reg,os_tokens", [("ws", True, False), ("ws", False, False),
                                                    ("ws", True, True), ("is", True, False),
                                                    ("is", False, False)])
def test_writeback_accumulates(dataflow, reg, os_tokens):
    """Tokens every cycle or with gaps, each output word revisited no sooner than 8 cycles later
    (the executors' margin); first passes start from zero or the bias (per lane, or per word's
    channel), later ones from the word read back."""
    spec = make_spec(rows=3, cols=2, dataflow=dataflow, buffer_reg=reg, acc_bits=16,
                     output_depth=16)
    cols, acc = spec.cols, spec.acc_bits
    lt = 0 if os_tokens else spec.array_latency
    rl = spec.buffer_latency
    m = Module()
    m.submodules.wb = dut = WriteBack(spec, token_delay=lt, checks=True)
    m.submodules.obuf = obuf = Scratchpad(depth=16, width=spec.output_word_bits, registered=reg)
    wiring.connect(m, dut.obuf_rd, obuf.rd)
    wiring.connect(m, dut.obuf_wr, obuf.wr)
    rng = random.Random(7)
    per_word = spec.per_word_channels
    bias = [rng.randrange(-3000, 3000) for _ in range(spec.chan_depth if per_word else cols)]

    async def tb(ctx):
        for k, b in enumerate(bias):      # LOAD_BIAS beats
            ctx.set(dut.bias_wr.addr, k)
            ctx.set(dut.bias_wr.data, b & ((1 << acc) - 1))
            ctx.set(dut.bias_wr.en, 1)
            await ctx.tick()
        ctx.set(dut.bias_wr.en, 0)
        mem = [[0] * cols for _ in range(16)]
        ys = {}                 # cycle -> the sums at the array's output
        writes = []             # cycle -> (addr, value) expected at obuf_wr
        done = 0
        n_last = 0
        for t in range(400):
            tok = None
            if t < 380 and rng.random() < 0.8:
                addr = (t % 8) + 8 * (rng.random() < 0.5 and t % 16 < 8)
                first, use_bias = rng.random() < 0.3, rng.random() < 0.5
                chan = rng.randrange(len(bias)) if per_word else 0
                last = rng.random() < 0.1
                tok = dict(valid=1, addr=addr, first=first, bias=use_bias, chan=chan, last=last)
                y = [rng.randrange(-4000, 4000) for _ in range(cols)]
                ys[t + lt + rl] = y
                writes.append((t + lt + rl, addr, first, use_bias, chan, y))
                n_last += last
            for name in ("valid", "addr", "first", "bias", "chan", "last"):
                ctx.set(getattr(dut.token, name), tok[name] if tok else 0)
            y = ys.get(t, [0] * cols)
            for j in range(cols):
                ctx.set(dut.y[j], y[j])
            if writes and writes[0][0] == t:
                _, addr, first, use_bias, chan, y = writes.pop(0)
                assert ctx.get(dut.obuf_wr.en) and ctx.get(dut.obuf_wr.addr) == addr
                for j in range(cols):
                    base = (mem[addr][j] if not first else
                            (bias[chan] if per_word else bias[j]) if use_bias else 0)
                    mem[addr][j] = _wrap(base + y[j], acc)
                assert _lanes(ctx.get(dut.obuf_wr.data), cols, acc) == mem[addr], t
            else:
                assert not ctx.get(dut.obuf_wr.en)
            done += ctx.get(dut.done)
            await ctx.tick()
        assert not writes and done == n_last

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def test_writeback_check_catches_a_read_before_the_write():
    """Two tokens for one word a cycle apart: the second's read would miss the first's sums."""
    spec = make_spec(rows=3, cols=2, buffer_reg=True, output_depth=16)
    dut = WriteBack(spec, token_delay=spec.array_latency, checks=True)

    async def tb(ctx):
        for first in (1, 0):
            ctx.set(dut.token.valid, 1)
            ctx.set(dut.token.addr, 5)
            ctx.set(dut.token.first, first)
            await ctx.tick()
        ctx.set(dut.token.valid, 0)
        for _ in range(spec.array_latency + spec.buffer_latency + 2):
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    with pytest.raises(AssertionError, match=r"output word read 1 cycles before its last write"):
        sim.run()
