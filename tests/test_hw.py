# amaranth: UnusedElaboratable=no
# (constructor-error tests create components that are never elaborated)
"""Amaranth-simulator unit tests: PE, array, CSR bank, and the controller through the top."""

import random

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator

from amaranth_stream import run_top
from conftest import make_spec, random_requant
from gen import frames as framing
from gen.isa import ACCEL_ID, CSR_ADDR_BITS, CSRS, Op, csr_offset
from gen.layer import ConvLayer
from gen.quant import Requant
from gen.tiler import plan
from hw.array import SystolicArray
from hw.buffer import BANK, Scratchpad
from hw.host import CsrBank
from hw.pe import MacPE
from hw.top import Accelerator
from sim import golden


def _wrap(v, bits):
    return (v + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))


def test_pe_constructor_checks():
    pe = MacPE(act_shape=signed(8), weight_shape=unsigned(4), acc_bits=20)
    assert pe.act_shape == signed(8) and pe.acc_bits == 20
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer of at least 12, not 10$"):
        MacPE(act_shape=signed(8), weight_shape=unsigned(4), acc_bits=10)


@pytest.mark.parametrize("stages", [0, 1, 2])
@pytest.mark.parametrize("act,wgt,acc", [(signed(8), signed(8), 32), (unsigned(8), signed(8), 16),
                                         (signed(4), unsigned(3), 8)])
def test_pe_mac(act, wgt, acc, stages):
    dut = MacPE(act_shape=act, weight_shape=wgt, acc_bits=acc, stages=stages)
    rng = random.Random(1)

    def rand(shape):
        return rng.randint(-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) \
            if shape.signed else rng.randint(0, (1 << shape.width) - 1)

    async def tb(ctx):
        w = rand(wgt)
        ctx.set(dut.w_in, w)
        ctx.set(dut.w_shift, 1)
        await ctx.tick()
        ctx.set(dut.w_shift, 0)
        ctx.set(dut.w_in, rand(wgt))  # ignored while w_shift is low
        assert ctx.get(dut.w_out) == w
        # the product of a_in at cycle t meets psum_in at cycle t + stages
        acts = [rand(act) for _ in range(50)]
        psums = [rng.randint(-(1 << (acc - 1)), (1 << (acc - 1)) - 1) for _ in range(50)]
        for t in range(50 + stages):
            if t < 50:
                ctx.set(dut.a_in, acts[t])
            if t >= stages:
                ctx.set(dut.psum_in, psums[t - stages])
            await ctx.tick()
            if t < 50:
                assert ctx.get(dut.a_out) == acts[t]
            if t >= stages:
                assert ctx.get(dut.psum_out) == _wrap(psums[t - stages] + acts[t - stages] * w, acc)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("depth,registered,bank", [(70, False, BANK), (70, True, BANK),
                                                  (2500, True, BANK), (2500, True, 1024)])
def test_scratchpad_reads(depth, registered, bank):
    """Random writes and reads on both read ports: data ``latency`` cycles after ``en``, held
    while ``en`` is low; with 1024-word banks 2,500 words span three registered banks."""
    dut = Scratchpad(depth=depth, width=12, registered=registered, read_ports=2, bank=bank)
    rng = random.Random(depth)
    lat = dut.latency

    async def tb(ctx):
        mem = [0] * depth
        pending = []        # per cycle: the words each port's read returns `lat` cycles later
        want = [None, None]
        for t in range(600):
            wen, wa, wd = rng.random() < 0.5, rng.randrange(depth), rng.randrange(1 << 12)
            ctx.set(dut.wr.en, wen)
            ctx.set(dut.wr.addr, wa)
            ctx.set(dut.wr.data, wd)
            reads = []
            for port in (dut.rd, dut.rd2):
                en, a = rng.random() < 0.6, rng.randrange(depth)
                ctx.set(port.en, en)
                ctx.set(port.addr, a)
                reads.append(a if en else None)
            pending.append((reads, list(mem)))    # a read sees the writes landed before it
            await ctx.tick()
            if wen:   # a write is seen by reads issued from the next cycle on
                mem[wa] = wd
            if len(pending) >= lat:   # the reads issued lat - 1 cycles ago have returned
                addrs, snap = pending[-lat]
                for k, a in enumerate(addrs):
                    if a is not None:
                        want[k] = snap[a]
            for k, port in enumerate((dut.rd, dut.rd2)):
                if want[k] is not None:
                    assert ctx.get(port.data) == want[k], (t, k)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("rows,cols,stages", [(1, 1, 0), (3, 5, 2), (4, 2, 1), (7, 7, 2)])
def test_array_matvec(rows, cols, stages):
    dut = SystolicArray(rows=rows, cols=cols, act_shape=signed(8), weight_shape=signed(8),
                        acc_bits=32, stages=stages)
    assert dut.latency == rows + cols - 1 + stages
    rng = np.random.default_rng(rows * 10 + cols)
    W = rng.integers(-128, 128, (rows, cols))
    vecs = rng.integers(-128, 128, (12, rows))

    async def tb(ctx):
        for i in reversed(range(rows)):  # bottom row first
            for j in range(cols):
                ctx.set(dut.w[j], int(W[i, j]))
            ctx.set(dut.w_shift, 1)
            await ctx.tick()
        ctx.set(dut.w_shift, 0)
        outs = []
        for t in range(len(vecs) + dut.latency):
            if t < len(vecs):
                for i in range(rows):
                    ctx.set(dut.a[i], int(vecs[t, i]))
            if t >= dut.latency:
                outs.append([ctx.get(dut.y[j]) for j in range(cols)])
            await ctx.tick()
        assert np.array_equal(np.array(outs), vecs @ W)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def test_csr_bank():
    regs = [("a", 0x0, "ro", ""), ("b", 0x4, "ro", ""), ("ctl", 0x8, "wo", "")]
    dut = CsrBank(regs, addr_bits=8)

    async def tb(ctx):
        ctx.set(dut.a, 0x1234)
        ctx.set(dut.b, 0xCAFEF00D)
        bus = dut.bus
        for addr, want in ((0x0, 0x1234), (0x4, 0xCAFEF00D), (0xC, 0)):
            ctx.set(bus.araddr, addr)
            ctx.set(bus.arvalid, 1)
            await ctx.tick().until(bus.arready)
            ctx.set(bus.arvalid, 0)
            ctx.set(bus.rready, 1)
            *_, data = await ctx.tick().sample(bus.rdata).until(bus.rvalid)
            assert data == want
            ctx.set(bus.rready, 0)
        ctx.set(bus.awaddr, 0x8)
        ctx.set(bus.wdata, 3)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        assert ctx.get(dut.ctl_stb) == 0     # registered: the strobe follows the write
        await ctx.tick()
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        assert ctx.get(dut.ctl_stb) == 1 and ctx.get(dut.ctl) == 3
        assert ctx.get(bus.bvalid) == 1
        ctx.set(bus.bready, 1)
        await ctx.tick()
        assert ctx.get(bus.bvalid) == 0 and ctx.get(dut.ctl_stb) == 0

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def test_csr_map_fits():
    offsets = [off for _, off, _, _ in CSRS]
    assert len(set(offsets)) == len(offsets) and max(offsets) < 1 << CSR_ADDR_BITS
    assert csr_offset("id") == 0 and ACCEL_ID == 0x41434731


@pytest.mark.parametrize("spec_kw,layer,bias,pause", [
    (dict(rows=3, cols=2, input_depth=64, weight_depth=64, output_depth=20),
     ConvLayer(C=4, H=5, W=4, K=3, R=3, S=2, pad=1), True, 0.3),
    (dict(rows=3, cols=2, input_depth=64, weight_depth=64, output_depth=20, mult_stages=0,
          buffer_reg=False), ConvLayer(C=4, H=5, W=4, K=3, R=3, S=2, pad=1), True, 0.3),
    (dict(rows=2, cols=3, acc_bits=16, mult_stages=1), ConvLayer(
        C=3, H=6, W=6, K=4, R=3, S=3, stride=2, dilation=2, pad=2, N=2), False, 0.0),
    (dict(rows=1, cols=1, buffer_reg=False), ConvLayer(C=2, H=3, W=3, K=2, R=2, S=2, groups=2),
     False, 0.5),
])
def test_top_runs_programs(spec_kw, layer, bias, pause):
    """The controller executes tiler programs bit-exactly, with stream backpressure."""
    _run_top(make_spec(**spec_kw), layer, bias, pause)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("requant,relu", [(True, False), (True, True), (False, True)])
def test_top_postprocessing(signed, requant, relu):
    """fp32-exact requantisation (per-channel scales, zero point, int8 or uint8 range,
    saturation at both ends, a folded ReLU) and ReLU alone, through the whole accelerator."""
    spec = make_spec(rows=3, cols=4, postproc=True, out_bits=8, input_depth=64, weight_depth=64,
                     output_depth=40)
    _run_top(spec, ConvLayer(C=4, H=5, W=5, K=6, R=3, S=3, pad=1), True, 0.2, requant=requant,
             relu=relu, signed=signed)


def test_top_rounding_ties():
    """Scale 1/2: every odd accumulator is an exact tie, rounded to even; 16-bit outputs."""
    spec = make_spec(rows=2, cols=2, postproc=True, out_bits=16)
    layer = ConvLayer(C=2, H=4, W=4, K=2, R=1, S=1)
    y, g = _run_top(spec, layer, False, 0.0, requant=True, quant=Requant(np.float32(0.5), 3),
                    small=True)
    assert (g != 3).any()


@pytest.mark.parametrize("postproc,window", [(True, (2, 2)), (False, (3, 2))])
def test_top_pooling(postproc, window):
    """Max-pooling on the STORE path through the whole accelerator with its checks (the front
    end's window walk, the store unit's credits), under backpressure: requantised outputs in
    2x2 windows, raw accumulators in 3x2."""
    from gen.pooled import ConvPool
    spec = make_spec(rows=3, cols=4, postproc=postproc, pool=True, input_depth=64,
                     weight_depth=64, output_depth=40)
    layer = ConvPool(ConvLayer(C=4, H=5, W=6, K=5, R=3, S=3, pad=1), *window)
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, layer.input_shape)
    w = rng.integers(-128, 128, layer.weight_shape)
    b = rng.integers(-1000, 1000, layer.K)
    quant = random_requant(spec, layer.conv, x, w, b, 4, signed=False) if postproc else None
    prog = layer.plan(spec, bias=True, requant=postproc)
    outs, _ = run_top(Accelerator(spec, checks=True), spec, layer.encode(prog, x, w, b, quant),
                      prog.count(Op.STORE), in_pause=0.3, out_pause=0.3)
    assert np.array_equal(layer.decode(prog, outs, quant), layer.golden(spec, x, w, b, quant))


def _run_top(spec, layer, bias, pause, requant=False, relu=False, quant=None, small=False,
             signed=None):
    rng = np.random.default_rng(3)
    lim = 8 if small else 128
    x = rng.integers(-lim, lim, layer.input_shape)
    w = rng.integers(-lim, lim, layer.weight_shape)
    b = rng.integers(-1000, 1000, layer.K) if bias else None
    if requant and quant is None:
        quant = random_requant(spec, layer, x, w, b, 3, signed=signed)
        quant = Requant(quant.scale, (quant.qmin + quant.qmax) // 2 + 9, quant.qmin, quant.qmax)
    prog = plan(spec, layer, bias=bias, requant=requant, relu=relu)
    outs, _ = run_top(Accelerator(spec, checks=True), spec, framing.encode(prog, x, w, b, quant),
                      prog.count(Op.STORE), in_pause=pause, out_pause=pause)
    y = framing.decode(prog, outs, quant)
    g = golden.postprocess(golden.conv2d(x, w, b, stride=layer.stride, pad=layer.pad,
                                         dilation=layer.dilation, groups=layer.groups,
                                         acc_bits=spec.acc_bits), spec, quant, relu)
    assert np.array_equal(y, g)
    if requant and not small:  # the test means something: some outputs saturate, some do not
        q = quant.resolved(spec, layer.K, relu)
        assert (g == q.qmax).any() and (g == q.qmin).any()
        assert ((g > q.qmin) & (g < q.qmax)).mean() > 0.2
    return y, g
