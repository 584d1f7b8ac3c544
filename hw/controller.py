"""The controller: executes the tile commands of gen/isa.py.

It parses command headers from the input stream, writes LOAD payloads into the buffers, runs COMPUTE
tiles on the weight-stationary array and streams STORE results out. Layer shapes are runtime values
from the command headers; nothing of a layer is baked into the hardware.

COMPUTE, per filter tap (r, s):

* ``WLOAD``: read the tap's ``rows`` weight words (bottom row first) and shift them into the array.
* ``STREAM``: one input word per cycle, addresses from incremental pointers (no multiplier anywhere
  in the controller: the tiler sends ``row_step = stride*pitch`` and ``dil_step = dilation*pitch``):
  ``pix = addr + p*row_step + r*dil_step + q*stride + s*dilation``. A token (output address,
  first-pass flag) travels beside each vector through a delay line matched to the buffer and array
  latencies; when the column sums appear, the output word has been read just in time and is written
  back with the sums added (or over it on the first pass, starting from zero or the bias register).
* ``DRAIN``: wait until the last vector has left the array and its sums are written before the next
  tap's weights shift in.

Every latency derives from the spec: ``RL`` = buffer read latency (1, or 2 with output registers),
``L`` = array latency. STORE issues output-buffer reads into a small FIFO with credits, so ``m_axis``
runs at one beat per cycle and honours backpressure whatever ``RL`` is.
"""

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from gen.isa import HEADER_FIELDS, HEADER_WORDS, QUANT_SHIFT_BITS, QUANT_SHIFT_OFFSET, Op
from gen.spec import Spec

from .buffer import ReadSignature, WriteSignature, addr_bits
from .host import AxiStreamSignature
from .postproc import Requantizer

__all__ = ["Controller", "HeaderLayout"]

HeaderLayout = data.FlexibleLayout(32 * HEADER_WORDS, {
    name: data.Field(unsigned(width), offset) for name, (offset, width) in HEADER_FIELDS.items()
})

_PTR = 24  # pointer register width: above every 16-bit address plus one increment


class Controller(wiring.Component):
    def __init__(self, spec: Spec):
        self.spec = spec
        act = signed(spec.act_bits) if spec.act_signed else unsigned(spec.act_bits)
        wgt = signed(spec.weight_bits) if spec.weight_signed else unsigned(spec.weight_bits)
        ia, wa, oa = (addr_bits(d) for d in (spec.input_depth, spec.weight_depth,
                                             spec.output_depth))
        super().__init__({
            "s_axis": In(AxiStreamSignature(spec.in_stream_bits)),
            "m_axis": Out(AxiStreamSignature(spec.out_stream_bits)),
            "ibuf_wr": Out(WriteSignature(ia, spec.input_word_bits)),
            "ibuf_rd": Out(ReadSignature(ia, spec.input_word_bits)),
            "wbuf_wr": Out(WriteSignature(wa, spec.weight_word_bits)),
            "wbuf_rd": Out(ReadSignature(wa, spec.weight_word_bits)),
            "obuf_wr": Out(WriteSignature(oa, spec.output_word_bits)),
            "obuf_rd": Out(ReadSignature(oa, spec.output_word_bits)),
            "a": Out(data.ArrayLayout(act, spec.rows)),
            "w": Out(data.ArrayLayout(wgt, spec.cols)),
            "w_shift": Out(1),
            "y": In(data.ArrayLayout(signed(spec.acc_bits), spec.cols)),
            "clear_counters": In(1),
            "clear_error": In(1),
            "busy": Out(1),
            "error": Out(1),
            "commands": Out(32),
            "cycles": Out(64),
            "array_busy": Out(64),
            "in_stall": Out(64),
            "out_stall": Out(64),
        })

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        rows, cols, acc_bits = spec.rows, spec.cols, spec.acc_bits
        s_axis, m_axis = self.s_axis, self.m_axis
        L, RL = spec.array_latency, spec.buffer_latency
        PP = spec.postproc_latency

        # -- header collection ------------------------------------------------------------------
        hdr = Signal(32 * (HEADER_WORDS - 1))
        hidx = Signal(range(HEADER_WORDS))
        word = s_axis.tdata[:32]
        new = data.View(HeaderLayout, Cat(hdr, word))
        cmd = Signal(HeaderLayout)

        # -- registers of the running command ---------------------------------------------------
        cnt = Signal(17)                  # LOAD/STORE beats left
        ptr = Signal(_PTR)                # LOAD/STORE buffer address
        pi, qi = Signal(16), Signal(16)   # output pixel within the tile
        ri, si = Signal(9), Signal(8)     # filter tap
        r_base = Signal(_PTR)             # input address of (p, q) = (0, 0) at tap (r, 0)
        tap_base = Signal(_PTR)           # ... at tap (r, s)
        row_ptr = Signal(_PTR)            # ... of (p, 0) at tap (r, s)
        pix = Signal(_PTR)                # ... of (p, q) at tap (r, s)
        opix = Signal(_PTR)               # output address of (p, q)
        wtap = Signal(_PTR)               # weight address of tap (r, s)
        wk = Signal(range(rows))          # weight row being read (rows-1 down to 0)
        # loop bounds minus one, latched at dispatch: every loop test is a plain equality
        p_last, q_last, s_last = Signal(16), Signal(16), Signal(8)
        first_pass = Signal()
        drain = Signal(range(L + RL + 3))
        bias_reg = Signal(data.ArrayLayout(signed(acc_bits), cols))

        # -- outputs defaults -------------------------------------------------------------------
        issue = Signal()                  # an input vector is read this cycle (enters the array next)
        w_issue = Signal()
        w_shift = w_issue
        for k in range(RL):               # the weight read's data arrives RL cycles later
            w_shift_d = Signal(name=f"w_shift_d{k}")
            m.d.sync += w_shift_d.eq(w_shift)
            w_shift = w_shift_d
        m.d.comb += [
            self.w_shift.eq(w_shift),
            self.w.as_value().eq(self.wbuf_rd.data),
            self.a.as_value().eq(self.ibuf_rd.data),
            self.ibuf_wr.addr.eq(ptr), self.ibuf_wr.data.eq(s_axis.tdata),
            self.wbuf_wr.addr.eq(ptr), self.wbuf_wr.data.eq(s_axis.tdata),
        ]

        # -- token delay line: (valid, output address, first pass, bias) beside each vector -------
        # input read at t -> array at t+RL -> sums at t+RL+L; the output word is read at t+L so it
        # arrives with them, and written at t+RL+L
        tok_layout = data.StructLayout({"valid": 1, "addr": 16, "first": 1, "bias": 1})
        toks = [Signal(tok_layout, name=f"tok{k}") for k in range(L + RL + 1)]
        m.d.comb += [toks[0].valid.eq(issue), toks[0].addr.eq(opix), toks[0].first.eq(first_pass),
                     toks[0].bias.eq(cmd.bias)]
        for k in range(1, L + RL + 1):
            m.d.sync += toks[k].eq(toks[k - 1])
        rd_tok, wr_tok = toks[L], toks[L + RL]
        old = data.View(data.ArrayLayout(signed(acc_bits), cols), self.obuf_rd.data)
        sums = Signal(data.ArrayLayout(signed(acc_bits), cols))
        for j in range(cols):
            base = Signal(signed(acc_bits), name=f"base{j}")
            with m.If(~wr_tok.first):
                m.d.comb += base.eq(old[j])
            with m.Elif(wr_tok.bias):
                m.d.comb += base.eq(bias_reg[j])
            m.d.comb += sums[j].eq(self.y[j] + base)
        m.d.comb += [
            self.obuf_wr.addr.eq(wr_tok.addr), self.obuf_wr.en.eq(wr_tok.valid),
            self.obuf_wr.data.eq(sums),
        ]

        # -- STORE: reads land RL (+PP post-processing) cycles later in a FIFO; credits keep it
        #    from overflowing ----------------------------------------------------------------------
        obits = spec.output_word_bits
        SL = RL + PP
        m.submodules.ofifo = ofifo = fifo.SyncFIFOBuffered(width=obits + 1, depth=SL + 3)
        inflight = Signal(range(SL + 2))
        store_en = Signal()
        st = [Signal(2, name=f"st{k}") for k in range(SL + 1)]  # (valid, last) beside each read
        m.d.comb += st[0].eq(Cat(store_en, cnt == 1))
        for k in range(1, SL + 1):
            m.d.sync += st[k].eq(st[k - 1])
        out_word = self.obuf_rd.data
        if spec.postproc:
            m.submodules.requant = rq = Requantizer(spec)
            q_mult = Signal(data.ArrayLayout(unsigned(spec.mult_bits), cols))
            q_shift = Signal(data.ArrayLayout(unsigned(QUANT_SHIFT_BITS), cols))
            m.d.comb += [rq.i.as_value().eq(self.obuf_rd.data), rq.mult.eq(q_mult),
                         rq.shift.eq(q_shift), rq.requant.eq(cmd.requant), rq.relu.eq(cmd.relu)]
            out_word = rq.o
        m.d.comb += [ofifo.w_en.eq(st[SL][0]), ofifo.w_data.eq(Cat(out_word, st[SL][1]))]
        m.d.sync += inflight.eq(inflight + store_en - st[SL][0])
        m.d.comb += [m_axis.tvalid.eq(ofifo.r_rdy), m_axis.tdata.eq(ofifo.r_data[:obits]),
                     m_axis.tlast.eq(ofifo.r_data[obits]), ofifo.r_en.eq(m_axis.tready)]

        in_store = Signal()
        with m.If(in_store):
            m.d.comb += [self.obuf_rd.addr.eq(ptr), self.obuf_rd.en.eq(store_en)]
        with m.Else():
            m.d.comb += [self.obuf_rd.addr.eq(rd_tok.addr), self.obuf_rd.en.eq(rd_tok.valid)]

        # -- counters -------------------------------------------------------------------------
        waiting_input = Signal()
        idle = Signal()
        with m.If(self.clear_counters):
            m.d.sync += [self.commands.eq(0), self.cycles.eq(0), self.array_busy.eq(0),
                         self.in_stall.eq(0), self.out_stall.eq(0)]
        with m.Else():
            with m.If(~idle | s_axis.tvalid):
                m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(issue):
                m.d.sync += self.array_busy.eq(self.array_busy + 1)
            with m.If(waiting_input & ~s_axis.tvalid):
                m.d.sync += self.in_stall.eq(self.in_stall + 1)
            with m.If(m_axis.tvalid & ~m_axis.tready):
                m.d.sync += self.out_stall.eq(self.out_stall + 1)
        with m.If(self.clear_error):
            m.d.sync += self.error.eq(0)
        m.d.comb += self.busy.eq(~idle)

        with m.FSM(name="ctrl"):
            with m.State("HDR"):
                m.d.comb += [s_axis.tready.eq(1), idle.eq(hidx == 0), waiting_input.eq(hidx != 0)]
                with m.If(s_axis.tvalid):
                    with m.If(hidx != HEADER_WORDS - 1):
                        m.d.sync += [hdr.eq(Cat(hdr[32:], word)), hidx.eq(hidx + 1)]
                    with m.Else():
                        m.d.sync += [hidx.eq(0), cmd.eq(new), self.commands.eq(self.commands + 1)]
                        loads = [Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.LOAD_BIAS]
                        if spec.postproc:
                            loads.append(Op.LOAD_QUANT)
                        with m.Switch(new.op):
                            with m.Case(*loads):
                                m.d.sync += cnt.eq(new.count)
                                with m.If(new.op == Op.LOAD_WEIGHT):
                                    m.d.sync += ptr.eq(new.waddr)
                                with m.Else():
                                    m.d.sync += ptr.eq(new.addr)
                                with m.If(new.count != 0):
                                    m.next = "LOAD"
                            with m.Case(Op.COMPUTE):
                                m.d.sync += [
                                    ri.eq(0), si.eq(0), r_base.eq(new.addr), tap_base.eq(new.addr),
                                    wtap.eq(new.waddr), wk.eq(rows - 1),
                                    p_last.eq(new.p - 1), q_last.eq(new.q - 1),
                                    s_last.eq(new.s - 1),
                                ]
                                with m.If((new.p != 0) & (new.q != 0) & (new.r != 0) &
                                          (new.s != 0)):
                                    m.next = "WLOAD"
                            with m.Case(Op.STORE):
                                m.d.sync += [cnt.eq(new.count), ptr.eq(new.oaddr)]
                                with m.If(new.count != 0):
                                    m.next = "STORE"
                            with m.Case(Op.NOP):
                                pass
                            with m.Default():
                                m.d.sync += self.error.eq(1)

            with m.State("LOAD"):
                m.d.comb += [s_axis.tready.eq(1), waiting_input.eq(1)]
                with m.If(s_axis.tvalid):
                    m.d.comb += [self.ibuf_wr.en.eq(cmd.op == Op.LOAD_INPUT),
                                 self.wbuf_wr.en.eq(cmd.op == Op.LOAD_WEIGHT)]
                    with m.If(cmd.op == Op.LOAD_BIAS):
                        m.d.sync += bias_reg.eq(Cat(bias_reg.as_value()[acc_bits:],
                                                    s_axis.tdata[:acc_bits]))
                    if spec.postproc:  # lane registers shift like the bias register
                        mb = spec.mult_bits
                        with m.If(cmd.op == Op.LOAD_QUANT):
                            m.d.sync += [
                                q_mult.eq(Cat(q_mult.as_value()[mb:], s_axis.tdata[:mb])),
                                q_shift.eq(Cat(q_shift.as_value()[QUANT_SHIFT_BITS:],
                                               s_axis.tdata[QUANT_SHIFT_OFFSET:][
                                                   :QUANT_SHIFT_BITS])),
                            ]
                    m.d.sync += [ptr.eq(ptr + 1), cnt.eq(cnt - 1)]
                    with m.If(cnt == 1):
                        m.next = "HDR"

            with m.State("WLOAD"):
                m.d.comb += [self.wbuf_rd.addr.eq(wtap + wk), self.wbuf_rd.en.eq(1),
                             w_issue.eq(1)]
                m.d.sync += wk.eq(wk - 1)
                with m.If(wk == 0):
                    m.d.sync += [
                        pi.eq(0), qi.eq(0), row_ptr.eq(tap_base), pix.eq(tap_base),
                        opix.eq(cmd.oaddr),
                        first_pass.eq((ri == 0) & (si == 0) & ~cmd.accumulate),
                    ]
                    m.next = "STREAM"

            with m.State("STREAM"):
                m.d.comb += [self.ibuf_rd.addr.eq(pix), self.ibuf_rd.en.eq(1), issue.eq(1)]
                m.d.sync += opix.eq(opix + 1)
                with m.If(qi == q_last):
                    m.d.sync += [qi.eq(0), pi.eq(pi + 1), row_ptr.eq(row_ptr + cmd.row_step),
                                 pix.eq(row_ptr + cmd.row_step)]
                    with m.If(pi == p_last):
                        m.d.sync += [drain.eq(L + RL + 2), wtap.eq(wtap + rows), wk.eq(rows - 1)]
                        with m.If(si == s_last):
                            m.d.sync += [si.eq(0), ri.eq(ri + 1),
                                         r_base.eq(r_base + cmd.dil_step),
                                         tap_base.eq(r_base + cmd.dil_step)]
                        with m.Else():
                            m.d.sync += [si.eq(si + 1), tap_base.eq(tap_base + cmd.dilation)]
                        m.next = "DRAIN"
                with m.Else():
                    m.d.sync += [qi.eq(qi + 1), pix.eq(pix + cmd.stride)]

            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    with m.If(ri == cmd.r):
                        m.next = "HDR"
                    with m.Else():
                        m.next = "WLOAD"

            with m.State("STORE"):
                m.d.comb += [in_store.eq(1),
                             store_en.eq((cnt != 0) & (ofifo.level + inflight < ofifo.depth))]
                with m.If(store_en):
                    m.d.sync += [ptr.eq(ptr + 1), cnt.eq(cnt - 1)]
                with m.If((cnt == 0) & (inflight == 0) & (ofifo.level == 0)):
                    m.next = "HDR"
        return m
