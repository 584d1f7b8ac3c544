"""hw/frontend.py: headers, LOAD payloads, the COMPUTE queue, STORE reads and the hazard waits,
against models of the executor and the store unit that take their time (random ready)."""

import random

import pytest
from amaranth.sim import Simulator

from conftest import make_spec, pool_window_fields
from gen.isa import HEADER_WORDS, Cause, Op, decode_header, encode_header
from hw.frontend import FrontEnd

BAD = 9   # no such opcode
COMPUTE = dict(p=3, q=2, r=2, s=1, addr=4, waddr=9, oaddr=1, stride=1, dilation=1, row_step=5,
               dil_step=5)


#: a pooling STORE: 3 rows of 6 words in 3x2 windows (3 windows), and 2x3 in rows of 3
POOLED = [dict(oaddr=2, count=18, pool=1, pool_r=3, pool_s=2, pool_w=6, sync=1),
          dict(oaddr=7, count=12, pool=1, pool_r=2, pool_s=3, pool_w=3, requant=1)]


def _reads(f):
    """A STORE's reads as the front end must issue them: (addr, idx, last, first, emit)."""
    n = f["count"]
    if not f.get("pool"):
        return [(f["oaddr"] + i, i, i == n - 1, 1, 1) for i in range(n)]
    kr, ks, pw = f["pool_r"], f["pool_s"], f["pool_w"]
    out = []
    for band in range(0, n, kr * pw):
        for c in range(0, pw, ks):
            for a in range(kr):
                for b in range(ks):
                    out.append((f["oaddr"] + band + a * pw + c + b, len(out), len(out) == n - 1,
                                a == b == 0, a == kr - 1 and b == ks - 1))
    return out


def _program(rng, pool=False):
    cmds = [(Op.LOAD_INPUT, dict(addr=5, count=3)), (Op.LOAD_WEIGHT, dict(waddr=7, count=2)),
            (Op.COMPUTE, COMPUTE), (Op.COMPUTE, COMPUTE | dict(p=1, q=2, waddr=20)),
            (Op.STORE, dict(oaddr=3, count=4, requant=1)),
            (Op.LOAD_BIAS, dict(count=2)), (Op.COMPUTE, COMPUTE | dict(s=2, r=1)),
            (Op.NOP, {}), (Op.LOAD_QUANT, dict(count=3)), (Op.COMPUTE, COMPUTE),
            (Op.STORE, dict(oaddr=0, count=2, relu=1, sync=1)), (Op.LOAD_INPUT, dict(count=0)),
            *([(Op.STORE, f) for f in POOLED] if pool else []), (BAD, {})]
    beats = []
    for op, f in cmds:
        beats += encode_header(Op.NOP, **f) if op == BAD else encode_header(op, **f)
        if op == BAD:
            beats[-HEADER_WORDS] |= BAD
        if op in (Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.LOAD_BIAS, Op.LOAD_QUANT):
            beats += [rng.randrange(1 << 32) for _ in range(f["count"])]
    return cmds, beats


@pytest.mark.parametrize("pause,pool", [(0.0, False), (0.4, False), (0.4, True)])
def test_frontend_runs_a_program(pause, pool):
    """``pool``: with the pooling unit and two pooling STOREs (each window's words in turn)."""
    spec = make_spec(rows=3, cols=2, postproc=True, pool=pool)
    dut = FrontEnd(spec, checks=True)
    rng = random.Random(11)
    cmds, beats = _program(rng, pool)
    log = {"wr": [], "computes": [], "stores": [], "commands": 0, "error_at": None}
    state = {"running": [], "queued_not_done": 0}

    async def producer(ctx):
        for b in beats:
            while rng.random() < pause:
                ctx.set(dut.s_axis.tvalid, 0)
                await ctx.tick()
            ctx.set(dut.s_axis.tdata, b)
            ctx.set(dut.s_axis.tvalid, 1)
            await ctx.tick().until(dut.s_axis.tready)
        ctx.set(dut.s_axis.tvalid, 0)

    async def environment(ctx):
        drain_wait = 0
        for cycle in range(3000):
            # the executor: takes a COMPUTE when free, writes its last word 5..25 cycles later
            run = state["running"]
            take = not run and rng.random() >= pause
            ctx.set(dut.compute.ready, take)
            ctx.set(dut.x_idle, not run)
            ctx.set(dut.done, bool(run) and run[0] == cycle)
            ctx.set(dut.store.ready, rng.random() >= pause)
            ctx.set(dut.store_drained, drain_wait == 0)
            await ctx.delay(1e-9)
            if ctx.get(dut.compute.valid) and take:
                c = ctx.get(dut.compute.payload)
                log["computes"].append(c)
                run.append(cycle + rng.randrange(5, 25))
            if bool(run) and run[0] == cycle:
                run.pop(0)
                state["queued_not_done"] -= 1
            for name in ("ibuf_wr", "wbuf_wr", "bias_wr", "quant_wr"):
                port = getattr(dut, name)
                if ctx.get(port.en):
                    if name == "bias_wr":   # LOAD_BIAS waits for every COMPUTE's results
                        assert state["queued_not_done"] == 0
                    log["wr"].append((name, ctx.get(port.addr), ctx.get(port.data)))
            if ctx.get(dut.store.valid) and ctx.get(dut.store.ready):
                log["stores"].append(ctx.get(dut.store.payload))
                assert state["queued_not_done"] <= 1    # a STORE waits for all but the last
                drain_wait = 3
            else:
                drain_wait = max(0, drain_wait - 1)
            log["commands"] += ctx.get(dut.command)
            if ctx.get(dut.error) and log["error_at"] is None:
                log["error_at"] = cycle
            await ctx.tick()
        assert not ctx.get(dut.busy) and ctx.get(dut.error)
        ctx.set(dut.clear_error, 1)
        await ctx.tick()
        assert not ctx.get(dut.error)

    async def queue_count(ctx):
        # COMPUTEs queued and not yet written, as the hardware's hazard waits count them
        prev = 0
        async for _, _, valid in ctx.tick().sample(dut.compute.valid):
            if valid and not prev:
                state["queued_not_done"] += 1
            prev = valid

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(queue_count, background=True)
    sim.add_testbench(environment)
    sim.run()

    # LOAD payloads landed where their headers said, in order
    want, pos = [], 0
    width = {n: len(getattr(dut, n).data) for n in ("ibuf_wr", "wbuf_wr", "bias_wr", "quant_wr")}
    for op, f in cmds:
        pos += HEADER_WORDS
        name = {Op.LOAD_INPUT: "ibuf_wr", Op.LOAD_WEIGHT: "wbuf_wr", Op.LOAD_BIAS: "bias_wr",
                Op.LOAD_QUANT: "quant_wr"}.get(op)
        if name:
            base = f.get("waddr", 0) if op == Op.LOAD_WEIGHT else f.get("addr", 0)
            want += [(name, base + i, beats[pos + i] & ((1 << width[name]) - 1))
                     for i in range(f["count"])]
            pos += f["count"]
    assert log["wr"] == want
    valid = [f for op, f in cmds if op == Op.COMPUTE and f["r"] != 0]
    assert len(log["computes"]) == len(valid)
    for got, f in zip(log["computes"], valid, strict=True):
        for name, v in f.items():
            assert got["cmd"][name] == v, name
        for n in "pqrs":
            assert got["one"][n] == (f[n] == 1) and got["two"][n] == (f[n] == 2)
        assert got["wbot"] == f["waddr"] + spec.rows - 1
    assert [(s["addr"], s["idx"], s["last"], s["first"], s["emit"], s["requant"], s["relu"])
            for s in log["stores"]] \
        == [(*r, f.get("requant", 0), f.get("relu", 0))
            for op, f in cmds if op == Op.STORE for r in _reads(f)]
    assert log["commands"] == len(cmds)
    assert log["error_at"] is not None      # the unknown opcode


def _hdr(op, **f):
    words = encode_header(Op.NOP, **f)
    words[0] |= op
    return words


@pytest.mark.parametrize("bad, cause", [
    (_hdr(9), 1),                                                      # OPCODE
    (_hdr(Op.LOAD_INPUT, addr=4095, count=2) + [1, 2], 2),             # ADDRESS past input_depth
    (_hdr(Op.LOAD_WEIGHT, waddr=1000, count=30) + list(range(30)), 2),  # past weight_depth
    (_hdr(Op.STORE, oaddr=1023, count=2), 2),                          # past output_depth
    (_hdr(Op.COMPUTE, **(COMPUTE | dict(q=0))), 3),                    # FIELD
    (_hdr(Op.STORE, count=4, pool=1, pool_r=2, pool_s=2, pool_w=2), 3),  # no pooling unit
    (_hdr(Op.LOAD_INPUT, addr=0, count=5)[:1], 0),                     # truncated header
    (_hdr(Op.LOAD_INPUT, addr=0, count=5) + [7, 7], 0),                # truncated payload
])
def test_refused_command_then_soft_reset(bad, cause):
    # the first error latches its cause and the front end drops every later beat (it never
    # stalls the stream, writes nothing); a soft reset then lets the next program run
    spec = make_spec(rows=3, cols=2)     # depths 4096 / 1024 / 1024
    dut = FrontEnd(spec)
    after = _hdr(Op.LOAD_INPUT, addr=10, count=2) + [0x11, 0x22]
    seen = {"wr": [], "taken": 0}

    async def bench(ctx):
        ctx.set(dut.x_idle, 1)
        ctx.set(dut.store_drained, 1)
        for b in bad + [0xDEAD, 0xBEEF, *_hdr(Op.LOAD_INPUT, count=1), 5]:
            ctx.set(dut.s_axis.tdata, b)
            ctx.set(dut.s_axis.tvalid, 1)
            for _ in range(20):
                await ctx.delay(1e-9)
                ready = ctx.get(dut.s_axis.tready)
                await ctx.tick()
                if ready:
                    seen["taken"] += 1
                    break
            else:
                raise AssertionError("the front end stopped taking beats")
        ctx.set(dut.s_axis.tvalid, 0)
        for _ in range(3):
            await ctx.tick()
        assert ctx.get(dut.error) == (cause != 0)
        assert ctx.get(dut.cause) == cause
        if cause:            # refused before any payload word was written, and nothing since
            assert seen["wr"] == [] and not ctx.get(dut.busy)
        ctx.set(dut.clear_error, 1)
        await ctx.tick()
        ctx.set(dut.clear_error, 0)
        assert not ctx.get(dut.error) and ctx.get(dut.cause) == 0
        seen["wr"].clear()
        for b in after:
            ctx.set(dut.s_axis.tdata, b)
            ctx.set(dut.s_axis.tvalid, 1)
            await ctx.tick().until(dut.s_axis.tready)
            await ctx.delay(1e-9)
        ctx.set(dut.s_axis.tvalid, 0)
        for _ in range(3):
            await ctx.tick()
        assert not ctx.get(dut.error)

    async def watch(ctx):
        async for _, _, en, addr in ctx.tick().sample(dut.ibuf_wr.en, dut.ibuf_wr.addr):
            if en:
                seen["wr"].append(addr)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(watch, background=True)
    sim.add_testbench(bench)
    sim.run()
    assert seen["wr"] == [10, 11]


@pytest.mark.parametrize("beats", [2, HEADER_WORDS + 1])   # inside a header, a LOAD's payload
def test_starved_inside_a_frame(beats):
    """``starved`` (the status CSR's bit 2) is set while the front end is inside a frame with no
    input beat offered, and only then: not between frames, nor while beats flow; busy stays
    set (a frame is partly in) without an error; a soft reset drops the partial frame and
    clears both."""
    spec = make_spec(rows=3, cols=2)
    dut = FrontEnd(spec)
    frame = _hdr(Op.LOAD_INPUT, addr=0, count=3) + [7, 7, 7]

    async def bench(ctx):
        ctx.set(dut.x_idle, 1)
        ctx.set(dut.store_drained, 1)
        for _ in range(3):
            await ctx.tick()
        assert not ctx.get(dut.starved) and not ctx.get(dut.busy)
        for b in frame[:beats]:
            ctx.set(dut.s_axis.tdata, b)
            ctx.set(dut.s_axis.tvalid, 1)
            await ctx.tick().until(dut.s_axis.tready)
            assert not ctx.get(dut.starved)         # beats flow
        ctx.set(dut.s_axis.tvalid, 0)
        for _ in range(3):
            await ctx.tick()
        assert ctx.get(dut.starved) and ctx.get(dut.busy) and not ctx.get(dut.error)
        ctx.set(dut.clear_error, 1)
        await ctx.tick()
        ctx.set(dut.clear_error, 0)
        for _ in range(3):
            await ctx.tick()
        assert not ctx.get(dut.starved) and not ctx.get(dut.busy)
        for b in frame:                              # a whole frame: never starved after it
            ctx.set(dut.s_axis.tdata, b)
            ctx.set(dut.s_axis.tvalid, 1)
            await ctx.tick().until(dut.s_axis.tready)
        ctx.set(dut.s_axis.tvalid, 0)
        for _ in range(3):
            await ctx.tick()
        assert not ctx.get(dut.starved) and not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _random_compute(rng, spec):
    """A COMPUTE header whose footprint ends near a buffer's depth (or with a zero field): fields
    mostly small, sometimes large or all ones; each buffer's base inside it and one of them put
    so that its highest word is its last word or one past it."""
    def pick(width, small):
        return rng.choice([rng.randrange(1, small)] * 28 + [rng.randrange(1 << width),
                                                             (1 << width) - 1, 0])
    f = {"p": pick(16, 6), "q": pick(16, 6), "r": pick(8, 4), "s": pick(8, 4),
         "stride": pick(4, 3), "dilation": pick(4, 3), "row_step": pick(16, 12),
         "dil_step": pick(16, 12), "count": pick(17, 12), "fill_w": pick(8, 12),
         "lane": rng.randrange(4), "addr": 0, "waddr": 0, "oaddr": 0}
    bases = {"ibuf": ("addr", spec.input_depth), "wbuf": ("waddr", spec.weight_depth),
             "obuf": ("oaddr", spec.output_depth)}
    spans = spec.flow.footprint(spec, decode_header(encode_header(Op.COMPUTE, **f)))
    edge = rng.choice(list(bases))
    for buf, (base, depth) in bases.items():
        top = depth - 1 - spans[buf][1]           # the highest base that keeps it inside
        want = top + rng.choice([0, 1]) if buf == edge else rng.randrange(max(1, top + 1))
        f[base] = want if 0 <= want < 1 << 16 else rng.randrange(1 << 16)
    return f


def _random_load_store(rng, spec):
    """A LOAD or STORE of 1 to 3 words that ends at its buffer's last word or one past it."""
    op, field, depth = rng.choice([(Op.LOAD_INPUT, "addr", spec.input_depth),
                                   (Op.LOAD_WEIGHT, "waddr", spec.weight_depth),
                                   (Op.STORE, "oaddr", spec.output_depth)])
    count = rng.randrange(1, 4)
    return op, {field: rng.choice([depth - count, depth - count + 1, rng.randrange(1 << 16)]),
                "count": count}


def _random_pool_store(rng, spec):
    """A pooling STORE whose windows tile its words, or miss by one (count, pool_w), or have a
    zero field; sometimes past the output buffer too."""
    count, kr, ks, pw = pool_window_fields(rng, 4, 5, 4)
    oaddr = rng.choice([0, 3, spec.output_depth - count, spec.output_depth - count + 1])
    return Op.STORE, {"oaddr": max(0, oaddr), "count": count, "pool": 1, "pool_r": kr,
                      "pool_s": ks, "pool_w": pw, "sync": rng.randrange(2)}


@pytest.mark.parametrize("flow,rows", [("ws", 4), ("os", 4), ("is", 4), ("nlr", 4), ("rs", 4),
                                       ("ws", 3)])
def test_commands_refused_like_the_isa_machine(flow, rows):
    """A LOAD or STORE whose words run past its buffer, or a COMPUTE whose footprint does, is
    refused with ADDRESS exactly when the ISA machine refuses it (sim/isa_model.py
    check_command; the decision, built as the header arrives, is asserted against its full-width
    form), a COMPUTE with a zero field with FIELD, a pooling STORE whose windows do not tile its
    words (or on a spec without the pooling unit: is, rs) with FIELD (hw/poolcheck.py, asserted
    against its arithmetic form); headers arrive back to back or with gaps."""
    from sim.isa_model import check_command
    # (rows = 3: the weight words r*s*rows are a second multiplier's product, hw/footprint.py)
    spec = make_spec(rows=rows, cols=4, dataflow=flow, input_depth=300, weight_depth=200,
                     output_depth=100, pool=flow in ("ws", "os", "nlr"))
    dut = FrontEnd(spec, checks=True)
    rng = random.Random(5)
    cmds = [_random_load_store(rng, spec) if i % 4 == 3 else
            _random_pool_store(rng, spec) if i % 4 == 1 else
            (Op.COMPUTE, _random_compute(rng, spec)) for i in range(200)]
    want, footprint = [], 0
    for op, f in cmds:
        why = check_command(spec, decode_header(encode_header(op, **f)))
        want.append(why[0] if why else Cause.NONE)
        footprint += op == Op.COMPUTE and want[-1] == Cause.ADDRESS
    seen = []

    async def send(ctx, beats, gaps):
        for b in beats:      # back to back, or with gaps
            ctx.set(dut.s_axis.tdata, b)
            ctx.set(dut.s_axis.tvalid, 1)
            await ctx.tick().until(dut.s_axis.tready)
            if gaps:
                ctx.set(dut.s_axis.tvalid, 0)
                await ctx.tick()
        ctx.set(dut.s_axis.tvalid, 0)

    async def bench(ctx):
        ctx.set(dut.x_idle, 1)
        ctx.set(dut.store_drained, 1)
        ctx.set(dut.compute.ready, 1)
        ctx.set(dut.store.ready, 1)
        for i, ((op, f), w) in enumerate(zip(cmds, want, strict=True)):
            await send(ctx, encode_header(op, **f), i % 3 == 1)
            if op in (Op.LOAD_INPUT, Op.LOAD_WEIGHT) and w == Cause.NONE:
                await send(ctx, range(f["count"]), False)
            taken = False
            check = spec.pool_check_latency if f.get("pool") else 0   # the window check
            for _ in range(3 + check + f.get("count", 0) * (op == Op.STORE)):
                await ctx.delay(1e-9)
                taken |= bool(ctx.get(dut.compute.valid))
                await ctx.tick()
            ctx.set(dut.done, taken)    # the executor writes it at once
            await ctx.tick()
            ctx.set(dut.done, 0)
            seen.append((Cause(ctx.get(dut.cause)), taken))
            ctx.set(dut.clear_error, 1)
            await ctx.tick()
            ctx.set(dut.clear_error, 0)
            for _ in range(2):
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for (op, f), w, got in zip(cmds, want, seen, strict=True):
        assert got == (w, op == Op.COMPUTE and w == Cause.NONE), (op, f)
    # the sample covers every outcome, pooling STOREs refused and taken among them
    assert {Cause.NONE, Cause.ADDRESS, Cause.FIELD} <= set(want) and footprint > 5
    pooled = [w for (op, f), w in zip(cmds, want, strict=True) if f.get("pool")]
    assert pooled.count(Cause.FIELD) > 5
    assert pooled.count(Cause.NONE) > 5 or not spec.pool
