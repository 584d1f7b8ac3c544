"""The store unit: STORE reads of the output buffer, requantisation, and ``m_axis``.

Each transfer on ``request`` reads one output word on ``obuf_rd`` (the output buffer's second read
port, so a STORE streams while a COMPUTE accumulates into the buffer). The word lands ``RL``
cycles later (plus the requantiser's ``latency`` PP, and for a pooling STORE the pooling
stage's PL, hw/pool.py: a window's maximum, one word per window) in a FIFO of ``RL + PP + PL +
3`` words that feeds ``m_axis``; ``credits`` counts the FIFO places not yet claimed by a read in
flight (a read takes one, a word leaving on ``m_axis`` gives one back), and a request is accepted
only with a credit, so ``m_axis`` runs at one beat per cycle and honours backpressure whatever
the latencies are.

The requantiser is a sub-unit with :class:`~hw.requant.RequantSignature` (flipped) and a
``latency`` equal to ``Spec.postproc_latency`` (``requantizer`` plugs one in;
:class:`~hw.requant.StoreRequantizer`, exact with onnxruntime, by default); it gets the STORE's
``requant``/``relu`` options and its zero point and clamp range. The store unit keeps the LOAD_QUANT
words it takes on ``quant_wr`` and hands each lane its raw word: per lane in shift registers (a
LOAD_QUANT's ``cols`` beats, lane 0 first), or per output word from a channel memory addressed
by the word's index in the STORE when words hold one channel each (``Spec.per_word_channels``).

With the residual unit (``Spec.residual``) a STORE with ``add`` brings each word's residual on
its request (the front end reads a word as its residual beat arrives); the residual waits in a
memory delay line for the word's requantised lanes, and both enter hw/resadd.py (onnxruntime's
QLinearAdd, exact) with the parameters LOAD_ADD left in four registers (``add_wr``): the word
leaves ``Spec.add_latency`` cycles later than a plain STORE's, which bypass the unit.
"""

from amaranth.hdl import Assert, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from gen.isa import ADD_BEATS
from gen.spec import Spec

from .buffer import ReadSignature, WriteSignature, addr_bits
from .host import AxiStreamSignature
from .interfaces import store_request
from .pool import PoolMax
from .regs import delay, delay_line
from .requant import RequantSignature, StoreRequantizer
from .resadd import ResidualAdd

__all__ = ["StoreUnit"]


class StoreUnit(wiring.Component):
    """``drained``: no read in flight and the FIFO empty (every word of the STORE has left)."""

    def __init__(self, spec: Spec, *, requantizer=None, checks: bool = False):
        self.spec, self.checks = spec, checks
        if requantizer is not None and not spec.postproc:
            raise ValueError(f"spec {spec.name!r} has no post-processing unit, so it takes no "
                             f"requantiser; enable [postproc] or leave requantizer unset")
        self.requantizer = rq = None
        if spec.postproc:
            rq = StoreRequantizer(spec) if requantizer is None else requantizer
            if rq.signature.members != RequantSignature(spec).flip().members:
                raise TypeError(f"the requantiser {type(rq).__name__} must have the ports of "
                                f"hw.requant.RequantSignature(spec), flipped")
            if rq.latency != spec.postproc_latency:
                raise ValueError(f"the requantiser's latency is {rq.latency} cycles but "
                                 f"Spec.postproc_latency is {spec.postproc_latency}; make them "
                                 f"agree")
            self.requantizer = rq
        members = {
            "request": In(stream.Signature(store_request(spec))),
            "obuf_rd": Out(ReadSignature(addr_bits(spec.output_depth), spec.output_word_bits)),
            "quant_wr": In(WriteSignature(16, spec.in_stream_bits)),
            "m_axis": Out(AxiStreamSignature(spec.out_stream_bits)),
            "drained": Out(1),
        }
        if spec.residual:   # LOAD_ADD's beats: the residual add's parameters
            members["add_wr"] = In(WriteSignature(16, spec.in_stream_bits))
        super().__init__(members)

    def _requant(self, m, req, en):
        """The requantiser on the read data, with each lane's parameter word; its latency."""
        spec, rq = self.spec, self.requantizer
        m.submodules.requant = rq
        port = RequantSignature(spec).create(path=("rq",))
        connect(m, port, rq)
        m.d.comb += [port.zero_point.eq(req.zero_point), port.qmin.eq(req.qmin),
                     port.qmax.eq(req.qmax)]
        m.d.comb += [port.i.as_value().eq(self.obuf_rd.data), port.requant.eq(req.requant),
                     port.relu.eq(req.relu)]
        # LOAD_QUANT beats are written a cycle after they arrive (registered here), so the
        # input stream's valid does not fan out to every parameter bit in the cycle it arrives
        # (a STORE reads them at the earliest after a whole header)
        q_en = Signal(name="q_en")
        q_addr = Signal.like(self.quant_wr.addr, name="q_addr", reset_less=True)
        q_data = Signal(32, name="q_data", reset_less=True)
        m.d.sync += [q_en.eq(self.quant_wr.en), q_addr.eq(self.quant_wr.addr),
                     q_data.eq(self.quant_wr.data[:32])]
        if spec.per_word_channels:
            m.submodules.quant_mem = mem = memory.Memory(shape=unsigned(32),
                                                         depth=spec.chan_depth, init=[])
            wr, rd = mem.write_port(), mem.read_port()
            m.d.comb += [wr.addr.eq(q_addr), wr.data.eq(q_data), wr.en.eq(q_en),
                         rd.addr.eq(req.idx), rd.en.eq(en)]
            word = delay(m, rd.data, spec.buffer_latency - 1, "q_word")
            m.d.comb += [port.param[j].eq(word) for j in range(spec.cols)]
        else:   # lane registers shift like the bias register
            lanes = Signal(data.ArrayLayout(unsigned(32), spec.cols))
            with m.If(q_en):
                m.d.sync += lanes.eq(Cat(lanes.as_value()[32:], q_data))
            m.d.comb += port.param.eq(lanes)
        return port.o, rq.latency

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        req, m_axis = self.request.payload, self.m_axis
        obits = spec.output_word_bits
        en = Signal()                     # a read this cycle
        m.d.comb += [en.eq(self.request.valid & self.request.ready),
                     self.obuf_rd.addr.eq(req.addr), self.obuf_rd.en.eq(en)]
        out_word, pp = self.obuf_rd.data, 0
        if spec.postproc:
            out_word, pp = self._requant(m, req, en)
        # a pooling STORE's words pass the pooling stage's output register (hw/pool.py), PL
        # cycles more than a plain STORE's, which bypass it; an add STORE's the residual add's
        # AL cycles (hw/resadd.py)
        SL0 = spec.buffer_latency + pp
        PL, AL = spec.pool_latency, spec.add_latency
        SL = SL0 + max(PL, AL)
        m.submodules.ofifo = ofifo = fifo.SyncFIFOBuffered(width=obits + 1, depth=SL + 3)
        credits = Signal(range(SL + 4), init=SL + 3)
        # beside each read: (valid, last, the window's first word, its last word (a word
        # leaves), the STORE's requant, its range unsigned, pool, add, add_swap, res_unsigned)
        flags = [en, req.last, req.first, req.emit, req.requant, req.qmin >= 0, req.pool]
        if spec.residual:
            flags += [req.add, req.add_swap, req.res_unsigned]
        st = [Signal(len(flags), name=f"st{k}") for k in range(SL + 1)]
        m.d.comb += st[0].eq(Cat(*flags))
        for k in range(1, SL + 1):
            m.d.sync += st[k].eq(st[k - 1])
        plain = st[SL0][0] & ~st[SL0][6]
        if spec.residual:
            plain = plain & ~st[SL0][7]
        w_en, w_word, w_last = plain, out_word, st[SL0][1]
        if spec.pool:   # (a STORE's words are all out before the next STORE's first read)
            p_en, p_word = self._pool(m, out_word, st[SL0], st[SL0 + 1], st[SL0 + PL])
            w_en = w_en | p_en
            w_word, w_last = Mux(p_en, p_word, w_word), Mux(p_en, st[SL0 + PL][1], w_last)
        if spec.residual:
            a_en = st[SL0 + AL][0] & st[SL0 + AL][7]
            a_word = self._add(m, out_word, req.res, SL0, st[SL0])
            w_en = w_en | a_en
            w_word, w_last = Mux(a_en, a_word, w_word), Mux(a_en, st[SL0 + AL][1], w_last)
        m.d.comb += [ofifo.w_en.eq(w_en), ofifo.w_data.eq(Cat(w_word, w_last))]
        # only a word that completes a window takes a FIFO place
        m.d.sync += credits.eq(credits - (en & req.emit) + (ofifo.r_rdy & m_axis.tready))
        m.d.comb += [m_axis.tvalid.eq(ofifo.r_rdy), m_axis.tdata.eq(ofifo.r_data[:obits]),
                     m_axis.tlast.eq(ofifo.r_data[obits]), ofifo.r_en.eq(m_axis.tready),
                     self.request.ready.eq(credits != 0), self.drained.eq(credits == SL + 3)]
        if self.checks:   # every FIFO place is free, claimed by a read in flight, or full
            inflight = sum(s[0] & s[3] for s in st[1:SL0 + 1])
            inflight += sum(s[0] & s[3] & s[6] for s in st[SL0 + 1:SL0 + PL + 1])
            if spec.residual:
                inflight += sum(s[0] & s[7] for s in st[SL0 + 1:SL0 + AL + 1])
            m.d.sync += Assert(credits + inflight + ofifo.level == SL + 3, "store credits")
        return m

    def _add(self, m, word, res, SL0, st):
        """The residual add (hw/resadd.py) on the words leaving the requantiser (``st``: their
        flags): the word's residual, which came with its read, delayed ``SL0`` cycles to meet
        it; both extended to ``out_bits + 1`` signed lanes (the requantised lanes signed or
        unsigned by the STORE's range, the residual's by ``res_unsigned``) and put in the Add's
        input order (``add_swap``: the requantised word is its B) in a register, so the flags
        fan out a cycle before the unit; the parameters from LOAD_ADD's beats (``add_wr``), in
        registers. Returns the packed output word, ``Spec.add_latency`` cycles after ``word``."""
        spec = self.spec
        cols, ob = spec.cols, spec.out_bits
        # (held: LOAD_ADD's registers change only between STOREs, when no word is in the unit:
        # the front end leaves a STORE once its last word has left)
        m.submodules.resadd = unit = ResidualAdd(lanes=cols, bits=ob, held=True)
        if unit.latency + 1 != spec.add_latency:
            raise ValueError(f"the residual add takes {unit.latency} cycles and its input "
                             f"register one, but Spec.add_latency is {spec.add_latency}")
        # LOAD_ADD: rA, rB, fixed, then the range word shift in (registered like LOAD_QUANT's)
        par = Signal(data.ArrayLayout(unsigned(32), ADD_BEATS), name="add_par")
        a_en = Signal(name="add_wr_en")
        a_data = Signal(32, name="add_wr_data", reset_less=True)
        m.d.sync += [a_en.eq(self.add_wr.en), a_data.eq(self.add_wr.data[:32])]
        with m.If(a_en):
            m.d.sync += par.eq(Cat(par.as_value()[32:], a_data))
        res_d = delay_line(m, res, SL0, "res_delay")
        unsigned_, swap, res_unsigned = st[5], st[8], st[9]
        lanes = {n: Signal(data.ArrayLayout(signed(ob + 1), cols), name=f"add_{n}",
                           reset_less=True) for n in "ab"}
        for j in range(cols):
            q, r = word[j * ob:(j + 1) * ob], res_d[j * ob:(j + 1) * ob]
            a = Mux(unsigned_, q.as_unsigned(), q.as_signed())
            b = Mux(res_unsigned, r.as_unsigned(), r.as_signed())
            m.d.sync += [lanes["a"][j].eq(Mux(swap, b, a)), lanes["b"][j].eq(Mux(swap, a, b))]
        m.d.comb += [unit.a.eq(lanes["a"]), unit.b.eq(lanes["b"]), unit.ra.eq(par[0]),
                     unit.rb.eq(par[1]), unit.fixed.eq(par[2]),
                     unit.qmin.eq(par[3][:ob + 1]), unit.qmax.eq(par[3][16:17 + ob])]
        packed = Signal(spec.output_word_bits, name="added")
        m.d.comb += packed.eq(Cat(unit.o[j][:ob] for j in range(cols)))
        return packed

    def _pool(self, m, word, st, st_in, st_out):
        """The pooling stage (hw/pool.py) on the words leaving the requantiser (``st``: their
        flags): their lanes (requantised ``out_bits``, signed or unsigned by the STORE's range,
        or accumulators) extended to one signed width into a register (so the STORE's flags
        fan out to the lanes' selects a cycle before the compare: ECP5 ws_8x8 measured 77.5 MHz
        with them in one path), reduced per window (``st_in``: the flags beside the register),
        and packed back as they leave the unit (``st_out``: the flags then); the FIFO's
        write."""
        spec = self.spec
        cols, acc, ob = spec.cols, spec.acc_bits, spec.out_bits
        width = max(acc, ob + 1) if spec.postproc else acc
        m.submodules.pool = pool = PoolMax(cols, width)
        assert pool.latency + 1 == spec.pool_latency, "hw/pool.py and Spec.pool_latency agree"
        requant, unsigned_ = st[4], st[5]
        lanes = Signal(data.ArrayLayout(signed(width), cols), name="pool_lanes",
                       reset_less=True)
        for j in range(cols):
            raw = word[j * acc:(j + 1) * acc].as_signed()
            lane = raw
            if spec.postproc:
                q = word[j * ob:(j + 1) * ob]
                lane = Mux(requant, Mux(unsigned_, q.as_unsigned(), q.as_signed()), raw)
            m.d.sync += lanes[j].eq(lane)
        m.d.comb += [pool.i.payload.data.eq(lanes), pool.i.valid.eq(st_in[0] & st_in[6]),
                     pool.i.payload.first.eq(st_in[2]), pool.i.payload.last.eq(st_in[3]),
                     pool.o.ready.eq(1)]
        out = Cat(pool.o.payload[j][:acc] for j in range(cols))
        if spec.postproc:
            out = Mux(st_out[4], Cat(pool.o.payload[j][:ob] for j in range(cols)), out)
        packed = Signal(spec.output_word_bits, name="pooled")
        m.d.comb += packed.eq(out)
        return pool.o.valid, packed
