# amaranth: UnusedElaboratable=no
# (the refused requantiser is never elaborated)
"""hw/store.py: STORE reads through the requantiser to m_axis, under random backpressure."""

import random

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from conftest import make_spec
from hw.buffer import Scratchpad
from hw.requant import StoreRequantizer
from hw.store import StoreUnit
from sim import golden


def _pack(lanes, bits):
    return sum((int(v) & ((1 << bits) - 1)) << (bits * j) for j, v in enumerate(lanes))


def _run(spec, *, requant, relu, pause, seed, n=40, windows=None, unsigned=False):
    """``windows``: pooled reads, a list of windows (each a list of addresses) whose per-lane
    maximum leaves as one word (the requests' ``first``/``emit`` marks), instead of ``n``
    single reads."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    cols, acc = spec.cols, spec.acc_bits
    words = nrng.integers(-(1 << 14), 1 << 14, (spec.output_depth, cols))
    per_word = spec.per_word_channels
    nparam = spec.chan_depth if per_word else cols
    scale = (nrng.random(nparam) * 2.0 ** -7).astype(np.float32)
    bits = scale.view(np.uint32)
    zp = 100 if unsigned else -5
    qmin, qmax = (zp if relu else -128), 127        # a ReLU is folded into the range
    if unsigned:
        qmin, qmax = (zp if relu else 0), 255
    pool = windows is not None
    if windows is None:
        windows = [[rng.randrange(spec.output_depth)] for _ in range(n)]
    n = len(windows)
    want = []
    for i, win in enumerate(windows):
        if spec.postproc and requant:
            sc = scale[i % nparam] if per_word else scale
            r = golden.requantize_fp32(words[win], sc, zp, qmin, qmax, axis=1)
            want.append(_pack(r.max(axis=0), spec.out_bits))
        else:
            y = words[win]
            want.append(_pack((np.maximum(y, 0) if relu and spec.postproc else y).max(axis=0),
                              acc))
    reads = [(a, k == 0, k == len(win) - 1, i)
             for i, win in enumerate(windows) for k, a in enumerate(win)]

    m = Module()
    m.submodules.store = dut = StoreUnit(spec, checks=True)
    m.submodules.obuf = obuf = Scratchpad(depth=spec.output_depth, width=spec.output_word_bits,
                                          registered=spec.buffer_reg)
    wiring.connect(m, dut.obuf_rd, obuf.rd)
    got = []

    async def producer(ctx):
        for a in range(spec.output_depth):
            ctx.set(obuf.wr.addr, a)
            ctx.set(obuf.wr.data, _pack(words[a], acc))
            ctx.set(obuf.wr.en, 1)
            await ctx.tick()
        ctx.set(obuf.wr.en, 0)
        for k in range(nparam):     # LOAD_QUANT beats: lane (or channel) k
            ctx.set(dut.quant_wr.addr, k)
            ctx.set(dut.quant_wr.data, int(bits[k]))
            ctx.set(dut.quant_wr.en, 1)
            await ctx.tick()
        ctx.set(dut.quant_wr.en, 0)
        await ctx.tick().repeat(4)
        assert ctx.get(dut.drained)
        req = dut.request
        for k, (a, first, emit, i) in enumerate(reads):
            while rng.random() < pause:
                ctx.set(req.valid, 0)
                await ctx.tick()
            ctx.set(req.payload, {"addr": a, "idx": i % nparam if per_word else i,
                                  "last": k == len(reads) - 1, "requant": requant,
                                  "relu": relu, "zero_point": zp, "qmin": qmin, "qmax": qmax,
                                  "first": first, "emit": emit, "pool": pool})
            ctx.set(req.valid, 1)
            await ctx.tick().until(req.ready)
        ctx.set(req.valid, 0)

    async def consumer(ctx):
        for _ in range(20000):
            ready = rng.random() >= pause
            ctx.set(dut.m_axis.tready, ready)
            _, _, valid, last, data = await ctx.tick().sample(
                dut.m_axis.tvalid, dut.m_axis.tlast, dut.m_axis.tdata)
            if valid and ready:
                got.append(int(data))
                assert bool(last) == (len(got) == n)
                if last:
                    break
        await ctx.tick().repeat(2)
        assert ctx.get(dut.drained)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    assert got == want


@pytest.mark.parametrize("reg", [False, True])
@pytest.mark.parametrize("pause", [0.0, 0.5])
def test_store_streams_words_in_order(reg, pause):
    _run(make_spec(rows=2, cols=3, buffer_reg=reg, output_depth=32), requant=False, relu=False,
         pause=pause, seed=1)


@pytest.mark.parametrize("dataflow", ["ws", "is"])
@pytest.mark.parametrize("requant,relu", [(True, False), (True, True), (False, True)])
def test_store_requantises(dataflow, requant, relu):
    """Lane parameters (ws) or per-word channel parameters (is), both options."""
    spec = make_spec(rows=2, cols=3, dataflow=dataflow, postproc=True, out_bits=8,
                     output_depth=32)
    _run(spec, requant=requant, relu=relu, pause=0.3, seed=2)


@pytest.mark.parametrize("postproc,requant,unsigned", [(True, True, False), (True, True, True),
                                                      (True, False, False),
                                                      (False, False, False)])
def test_store_pools_windows(postproc, requant, unsigned):
    """The pooling stage after the requantiser (or on the accumulators): 2x2 windows, 1x3, a
    single word, under backpressure; signed and unsigned requantised lanes."""
    spec = make_spec(rows=2, cols=3, postproc=postproc, pool=True, output_depth=32)
    rng = random.Random(3)
    windows = [rng.sample(range(32), k) for k in (4, 4, 3, 1, 4, 2, 4, 4, 1, 3)]
    _run(spec, requant=requant, relu=False, pause=0.4, seed=3, windows=windows,
         unsigned=unsigned)


def test_store_without_pooling_bypasses_the_pooling_stage():
    """A plain STORE on a spec with the pooling unit: every word leaves, requantised."""
    spec = make_spec(rows=2, cols=3, postproc=True, pool=True, output_depth=32)
    _run(spec, requant=True, relu=False, pause=0.4, seed=4)


def test_store_refuses_a_requantiser_of_another_latency():
    class Slow(StoreRequantizer):
        latency = 4

    spec = make_spec(rows=2, cols=3, postproc=True)
    assert StoreRequantizer.latency == spec.postproc_latency   # the two statements agree
    with pytest.raises(ValueError, match=r"^the requantiser's latency is 4 cycles but "
                                         r"Spec.postproc_latency is 15; make them agree$"):
        StoreUnit(spec, requantizer=Slow(spec))
