"""The controller: executes the tile commands of gen/isa.py.

It parses command headers from the input stream, writes LOAD payloads into the buffers, runs COMPUTE
tiles on the spec's PE array and streams STORE results out. Layer shapes are runtime values from the
command headers; nothing of a layer is baked into the hardware. Header parsing, loads, stores, the
output write-back and the counters are shared by every engine; COMPUTE is sequenced per engine from
two address walkers: the *pixel walker* (input-buffer addresses of the output pixels of a tile at
one filter tap) and a *linear* counter over weight words.

Two state machines run side by side (gen/isa.py, Concurrency):

* the *front end* (``HDR``, ``DISP``, ``LOAD``, ``STORE``) takes headers, writes LOAD payloads,
  streams STOREs out of the output buffer's second read port, and puts each COMPUTE in a queue of
  one (``qcmd``); in ``DISP`` a COMPUTE waits for the queue, a ``sync`` command or LOAD_BIAS for
  every COMPUTE to be written (``n_out`` = 0), a STORE for at most one to be unwritten;
* the *executor* takes the queued COMPUTE in ``XIDLE`` and runs it. Weight-stationary goes back to
  ``XIDLE`` as soon as its last vector is issued, its sums draining meanwhile (``settle``), and if
  a COMPUTE is queued when the last tap starts it chains it on (one ``CHAIN`` cycle takes it from
  the queue): the queued COMPUTE's first tap loads into the shadow weights behind the last tap,
  exactly like a next tap, so back-to-back COMPUTEs stream with no reload and no drain between
  them. Vectors come in the same pixel order, so an output word a COMPUTE accumulates onto was
  written before it reads it (the tap gap, or ``rows + pixels + 2 - RL`` cycles after an early
  start, a cycle less where the adder reads the word a cycle early: see ``read_early``).

Every output word's token carries a ``last`` flag on the COMPUTE's last word; its write counts the
COMPUTE as written (``n_out``).

COMPUTE per engine, for each filter tap (r, s):

* ``ws``: ``WLOAD`` shifts the first tap's ``rows`` weight words into the PEs' shadow registers,
  ``STREAM`` walks the pixels (one input vector per cycle) while the next tap's words shift in
  behind (double buffering; ``WGAP`` waits for them when a tap has few pixels), taps follow each
  other without draining, and the last sums drain in ``XIDLE`` (``settle``).
* ``is``: ``PRELOAD`` walks the pixels of the block (at most ``cols``) into the rows' shift chains,
  ``KSTREAM`` streams ``count`` weight words (one per output channel), ``DRAIN``.
* ``nlr``: ``STREAM`` walks the pixels, reading the tap's ``rows``×``cols`` weight word with every
  input vector (nothing is held), ``DRAIN``.
* ``os``: ``FILL`` reads the block's pixel words (at most ``rows``) into the transposer, ``OSTREAM``
  presents lane ``c`` of every pixel beside weight word ``c`` for ``c`` in 0..rows-1 while the PEs
  accumulate; after the last tap ``OWAIT``, ``ODRAIN`` shifts the ``rows`` results out, ``OTAIL``.
* ``rs`` (one pass for the whole filter window): ``FFILL`` multicasts the ``count``×``s`` weight
  words into the rows' filter spads (lasting at least ``rs_setup_cycles`` while the PEs' tags
  settle), ``IFILL`` walks the ``fill_h``×``fill_w`` input region onto the diagonal ifmap bus,
  ``RCOMP`` steps every PE through ``for q, for s, for k`` (filter ``k`` of the psum spad), an
  output word leaving the array for every (q, k) at the last ``s``; ``DRAIN``.

Weight-stationary in detail:

* ``WLOAD``: read the first tap's ``rows`` weight words (bottom row first) and shift them into the
  array's shadow weights; later taps' words are read and shifted the same way during the stream.
* ``STREAM``: one input word per cycle, addresses from incremental pointers (no multiplier anywhere
  in the controller: the tiler sends ``row_step = stride*pitch`` and ``dil_step = dilation*pitch``):
  ``pix = addr + p*row_step + r*dil_step + q*stride + s*dilation``. A token (output address,
  first-pass flag) travels beside each vector through a delay line matched to the buffer and array
  latencies; when the column sums appear, the output word has been read just in time and is written
  back with the sums added (or over it on the first pass, starting from zero or the bias register).
* drain: after the last tap the executor is back in ``XIDLE`` while the last vectors leave the
  array; ``settle`` counts until their sums are written.

Every latency derives from the spec: ``RL`` = buffer read latency (1, or 3 with registered buffers),
``L`` = array latency. STORE issues output-buffer reads into a small FIFO with credits, so ``m_axis``
runs at one beat per cycle and honours backpressure whatever ``RL`` is.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from gen.isa import (COUNTERS, HEADER_FIELDS, HEADER_WORDS, PER_PE_CYCLE, QUANT_SHIFT_BITS,
                     QUANT_SHIFT_OFFSET, Op)
from gen.spec import Spec

from .buffer import ReadSignature, WriteSignature, addr_bits
from .host import AxiStreamSignature
from .postproc import Requantizer
from .regs import delay

__all__ = ["Controller", "HeaderLayout"]

HeaderLayout = data.FlexibleLayout(32 * HEADER_WORDS, {
    name: data.Field(unsigned(width), offset) for name, (offset, width) in HEADER_FIELDS.items()
})

_PTR = 24  # pointer register width: above every 16-bit address plus one increment


class Controller(wiring.Component):
    def __init__(self, spec: Spec):
        self.spec = spec
        eng = spec.engine
        act = signed(spec.act_bits) if spec.act_signed else unsigned(spec.act_bits)
        wgt = signed(spec.weight_bits) if spec.weight_signed else unsigned(spec.weight_bits)
        ia, wa, oa = (addr_bits(d) for d in (spec.input_depth, spec.weight_depth,
                                             spec.output_depth))
        ports = {
            "s_axis": In(AxiStreamSignature(spec.in_stream_bits)),
            "m_axis": Out(AxiStreamSignature(spec.out_stream_bits)),
            "ibuf_wr": Out(WriteSignature(ia, spec.input_word_bits)),
            "ibuf_rd": Out(ReadSignature(ia, spec.input_word_bits)),
            "wbuf_wr": Out(WriteSignature(wa, spec.weight_word_bits)),
            "wbuf_rd": Out(ReadSignature(wa, spec.weight_word_bits)),
            "obuf_wr": Out(WriteSignature(oa, spec.output_word_bits)),
            "obuf_rd": Out(ReadSignature(oa, spec.output_word_bits)),
            "obuf_rd2": Out(ReadSignature(oa, spec.output_word_bits)),
            "y": In(data.ArrayLayout(signed(spec.acc_bits), spec.cols)),
        }
        # the array's operand ports (see hw/array.py: array_for)
        if eng == "ws":
            ports |= {"a": Out(data.ArrayLayout(act, spec.rows)),
                      "w": Out(data.ArrayLayout(wgt, spec.cols)), "w_shift": Out(1),
                      "sel_next": Out(1)}
        elif eng == "is":
            ports |= {"a": Out(data.ArrayLayout(wgt, spec.rows)),
                      "w": Out(data.ArrayLayout(act, spec.rows)), "w_shift": Out(1)}
        elif eng == "os":
            ports |= {"a": Out(data.ArrayLayout(act, spec.rows)),
                      "b": Out(data.ArrayLayout(wgt, spec.cols)), "drain": Out(1)}
        elif eng == "rs":
            from .pe import rs_control_layout
            fd, idp, pd = spec.filter_spad, spec.ifmap_spad, spec.psum_spad
            ports |= {
                "cfg_r": Out(8), "cfg_d": Out(4), "cfg_u": Out(4), "cfg_lane": Out(7),
                "cfg_p": Out(16),
                "fw_en": Out(1), "fw_addr": Out(range(fd)),
                "fw_data": Out(data.ArrayLayout(wgt, spec.rows)),
                "iw_en": Out(1), "iw_addr": Out(range(idp)), "iw_y": Out(16),
                "iw_data": Out(data.ArrayLayout(act, spec.rows)),
                "ctl": Out(rs_control_layout(fd, idp, pd)),
            }
        else:
            ports |= {"a": Out(data.ArrayLayout(act, spec.rows)),
                      "w": Out(data.ArrayLayout(wgt, spec.rows * spec.cols))}
        ports |= {
            "clear_counters": In(1),
            "clear_error": In(1),
            "busy": Out(1),
            "error": Out(1),
            "commands": Out(32),
        }
        ports |= {name: Out(64) for name in COUNTERS}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        eng = spec.engine
        rows, cols, acc_bits = spec.rows, spec.cols, spec.acc_bits
        s_axis, m_axis = self.s_axis, self.m_axis
        L, RL = spec.array_latency, spec.buffer_latency
        PP = spec.postproc_latency
        # tokens enter with the vector that produces the sums (systolic/tree engines: the sums
        # leave the array L cycles after the vector enters); output-stationary issues them when it
        # drains, so they need no array delay
        LT = 0 if eng == "os" else L
        whole = eng in ("os", "rs")   # one token per output word of the whole window
        per_word = spec.per_word_channels  # input-stationary: one output channel per word

        # -- header collection ------------------------------------------------------------------
        hdr = Signal(32 * (HEADER_WORDS - 1))
        hidx = Signal(range(HEADER_WORDS))
        word = s_axis.tdata[:32]
        new = data.View(HeaderLayout, Cat(hdr, word))
        cmd = Signal(HeaderLayout)        # the front end's command
        xcmd = Signal(HeaderLayout)       # the executor's COMPUTE
        qcmd = Signal(HeaderLayout)       # the executor's queue: the next COMPUTE
        q_valid = Signal()

        # -- registers of the running command ---------------------------------------------------
        cnt = Signal(17)                  # LOAD/STORE beats left
        cnt_nz, cnt_one = Signal(), Signal()   # registered cnt != 0, cnt == 1
        cnt_dec = Signal()                # a LOAD/STORE beat: cnt counts down
        ptr = Signal(_PTR)                # LOAD/STORE buffer address
        pi, qi = Signal(16), Signal(16)   # pixel walker: output pixel within the tile
        ri, si = Signal(9), Signal(8)     # filter tap
        r_base = Signal(_PTR)             # input address of (p, q) = (0, 0) at tap (r, 0)
        tap_base = Signal(_PTR)           # ... at tap (r, s)
        row_ptr = Signal(_PTR)            # ... of (p, 0) at tap (r, s)
        pix = Signal(_PTR)                # ... of (p, q) at tap (r, s)
        opix = Signal(_PTR)               # output address of the next streamed vector
        wtap = Signal(_PTR)               # weight address of tap (r, s)
        lin = Signal(17)                  # linear counter: weight word
        wstep = Signal(17)                # weight words per tap
        # loop bounds minus one, latched at dispatch: every loop test is a plain equality
        p_last, q_last, s_last, r_last = Signal(16), Signal(16), Signal(8), Signal(8)
        lin_last = Signal(17)
        drain = Signal(range(max(L, rows) + RL + 3))
        if eng == "rs":   # fill walkers and the compute step's spad pointers
            fdone, tcnt = Signal(), Signal(range(spec.rs_setup_cycles + 1))
            fy_last, fx_last = Signal(16), Signal(8)
            iidx, ibase = Signal(16), Signal(16)
            fidx = Signal(range(spec.filter_spad + 256))
        bias_reg = Signal(data.ArrayLayout(signed(acc_bits), cols))
        first_pass = Signal()
        m.d.comb += first_pass.eq((ri == 0) & (si == 0) & ~xcmd.accumulate)
        pix_last = Signal()    # the walker is at the tile's last pixel
        tap_last = Signal()    # ... at the last filter tap
        flags = eng != "rs"    # (rs walks qi and si its own way and tests them directly)
        if flags:
            # registered, computed a cycle ahead from the walker's current position, so the
            # state machine's decisions do not wait for 16-bit comparisons
            sm3, rm3 = Signal(8), Signal(8)      # tap bounds minus three
            pm3, qm3 = Signal(16), Signal(16)    # pixel bounds minus three
            # where the walker is: q at its last / last but one, p likewise
            qe, qe1, pe, pe1 = Signal(), Signal(), Signal(), Signal()
            q_one, q_two, p_one, p_two, s_one = (Signal(), Signal(), Signal(), Signal(),
                                                 Signal())
            s_end = Signal()                     # the tap is at s = s_last
            sl1, rl0, rl1 = Signal(), Signal(), Signal()   # si = s_last - 1, ri = r_last, - 1
            s_two = Signal()
            # the queued COMPUTE's bounds compared with 1 and 2 as it is queued, so taking it
            # copies flags
            qf = {n: Signal(name=f"qf_{n}") for n in ("p1", "p2", "q1", "q2", "r1", "r2",
                                                       "s1", "s2")}
        else:
            m.d.comb += [pix_last.eq((qi == q_last) & (pi == p_last)),
                         tap_last.eq((ri == r_last) & (si == s_last))]

        def rewind():
            """The pixel walker's flags at pixel (0, 0)."""
            m.d.sync += [pix_last.eq(p_one & q_one), qe.eq(q_one), qe1.eq(q_two), pe.eq(p_one),
                         pe1.eq(p_two)]

        def walk_pixel():
            """Advance the pixel walker to the next output pixel of the tile (same tap)."""
            with m.If(qe if flags else qi == q_last):
                m.d.sync += [qi.eq(0), pi.eq(pi + 1), row_ptr.eq(row_ptr + xcmd.row_step),
                             pix.eq(row_ptr + xcmd.row_step)]
                if flags:
                    m.d.sync += [pix_last.eq(pe1 & q_one), qe.eq(q_one), qe1.eq(q_two),
                                 pe.eq(pe1), pe1.eq(pi == pm3)]
            with m.Else():
                m.d.sync += [qi.eq(qi + 1), pix.eq(pix + xcmd.stride)]
                if flags:
                    m.d.sync += [pix_last.eq(pe & qe1), qe.eq(qe1), qe1.eq(qi == qm3)]

        def next_tap():
            """Advance to the next filter tap and rewind the pixel walker onto it."""
            nb = Signal(_PTR)
            last_s = s_end if flags else si == s_last
            m.d.comb += nb.eq(Mux(last_s, r_base + xcmd.dil_step, tap_base + xcmd.dilation))
            with m.If(last_s):
                m.d.sync += [si.eq(0), ri.eq(ri + 1), r_base.eq(nb)]
                if flags:
                    m.d.sync += [tap_last.eq(rl1 & s_one), s_end.eq(s_one), sl1.eq(s_two),
                                 rl0.eq(rl1), rl1.eq(ri == rm3)]
            with m.Else():
                m.d.sync += si.eq(si + 1)
                if flags:
                    m.d.sync += [tap_last.eq(rl0 & sl1), s_end.eq(sl1), sl1.eq(si == sm3)]
            m.d.sync += [tap_base.eq(nb), row_ptr.eq(nb), pix.eq(nb), pi.eq(0), qi.eq(0),
                         wtap.eq(wtap + wstep)]
            if flags:
                rewind()

        # -- strobes ------------------------------------------------------------------------------
        issue = Signal()     # a vector is read this cycle and enters the array RL cycles later
        x_issue = Signal()   # a stationary-operand word is read (ws/is preload, os fill)
        tok_valid = Signal()  # a token for an output word starts down the delay line
        tok_step = Signal()   # (os) a drain step starts down the delay line
        tok_last = Signal()   # ... and it is the COMPUTE's last output word
        tok_addr = Signal(16)
        tok_chan = Signal(16)

        m.d.comb += [
            self.ibuf_wr.addr.eq(ptr), self.ibuf_wr.data.eq(s_axis.tdata),
            self.wbuf_wr.addr.eq(ptr), self.wbuf_wr.data.eq(s_axis.tdata),
            self.ibuf_rd.addr.eq(pix), self.wbuf_rd.addr.eq(wtap + lin),
        ]
        if eng == "ws":
            # double-buffered weights (hw/pe.py MacPE banks=2): WLOAD shifts the first tap of a
            # COMPUTE into the PEs' shadow registers; while a tap streams, the loader shifts the
            # next tap's words in behind it, starting WB cycles into the stream (when every PE
            # has taken the current tap's weights from its shadow) and taking `rows` cycles. Each
            # tap's vectors carry the flipped bank bit, which makes every PE take its shadow just
            # before the first of them. The next tap streams as soon as its predecessor's pixels
            # and its weights are done (a cycle after the last shift, as the PEs copy their
            # shadows a cycle ahead of the vector): a tap lasts max(pixels, WB + rows + 1)
            # cycles, and the array drains once per COMPUTE
            WB = rows + cols + RL
            bank, more = Signal(), Signal()
            since = Signal(range(WB + rows + 1))    # cycles since the current tap began
            # since's registered flags: = 0; >= WB + rows (the next tap's weights are in, and
            # since stops); in [WB, WB + rows) (the loader's window)
            since0, wready, lwin = Signal(init=1), Signal(), Signal()
            flip = Signal()         # a tap starts streaming next cycle: restart since, flip bank
            laddr = Signal(_PTR)    # the loader's next weight word: the next tap's, bottom first
            q_wbot = Signal(_PTR)   # the queued COMPUTE's first tap's bottom word
            wl = Signal(range(rows))                # WLOAD: words left
            more_now = Signal()                     # a tap follows the current one
            l_issue = Signal()
            # (more is 0 from the executor's return to XIDLE until the next tap starts, so the
            # loader needs no state: it runs while more and the window say so)
            m.d.comb += [more_now.eq(Mux(since0, ~tap_last | q_valid, more)),
                         l_issue.eq(more & lwin)]
            with m.If(flip):
                m.d.sync += [since.eq(0), since0.eq(1), wready.eq(0), lwin.eq(0), bank.eq(~bank)]
            with m.Elif(~wready):
                m.d.sync += [since.eq(since + 1), since0.eq(0),
                             wready.eq(since == WB + rows - 1),
                             lwin.eq((since >= WB - 1) & (since < WB + rows - 1))]
            with m.If(x_issue | l_issue):
                m.d.sync += laddr.eq(laddr - 1)
            m.d.comb += [self.ibuf_rd.en.eq(issue), self.wbuf_rd.en.eq(x_issue | l_issue),
                         self.wbuf_rd.addr.eq(laddr),
                         self.a.as_value().eq(self.ibuf_rd.data),
                         self.w.as_value().eq(self.wbuf_rd.data),
                         self.w_shift.eq(delay(m, x_issue | l_issue, RL, "x_issue")),
                         # the bank bit of the vector at the array's input next cycle
                         self.sel_next.eq(delay(m, bank, RL - 1, "sel_next"))]
        elif eng == "is":
            m.d.comb += [self.ibuf_rd.en.eq(x_issue), self.wbuf_rd.en.eq(issue),
                         self.a.as_value().eq(self.wbuf_rd.data),
                         self.w.as_value().eq(self.ibuf_rd.data),
                         self.w_shift.eq(delay(m, x_issue, RL, "x_issue"))]
        elif eng == "nlr":
            m.d.comb += [self.ibuf_rd.en.eq(issue), self.wbuf_rd.en.eq(issue),
                         self.a.as_value().eq(self.ibuf_rd.data),
                         self.w.as_value().eq(self.wbuf_rd.data)]
        elif eng == "rs":
            # fills: buffer reads land RL cycles later on the multicast buses, with their spad
            # addresses; compute steps reach the array RL cycles after issue, like a buffer read,
            # so the token line is the same as the other engines'
            f_issue, fy, fx = Signal(), Signal(16), Signal(8)
            rs_ctl = Signal.like(self.ctl)
            fcnt = Signal(range(spec.filter_spad + 1))
            m.d.comb += [
                self.cfg_r.eq(xcmd.r), self.cfg_d.eq(xcmd.dilation), self.cfg_u.eq(xcmd.stride),
                self.cfg_lane.eq(xcmd.lane), self.cfg_p.eq(xcmd.p),
                self.ibuf_rd.en.eq(x_issue), self.wbuf_rd.en.eq(f_issue),
                self.wbuf_rd.addr.eq(xcmd.waddr + fcnt),
                self.fw_en.eq(delay(m, f_issue, RL, "fw_en")),
                self.fw_addr.eq(delay(m, fcnt, RL, "fw_addr")),
                self.fw_data.as_value().eq(self.wbuf_rd.data),
                self.iw_en.eq(delay(m, x_issue, RL, "iw_en")),
                self.iw_addr.eq(delay(m, fx, RL, "iw_addr")),
                self.iw_y.eq(delay(m, fy, RL, "iw_y")),
                self.iw_data.as_value().eq(self.ibuf_rd.data),
                self.ctl.eq(delay(m, rs_ctl, RL, "rs_ctl")),
            ]
        else:
            # the transposer: the block's pixel words (lanes = input channels) are written into
            # its rows as they arrive; each stream cycle every row hands its lowest lane to the
            # array and shifts down one lane
            ab = spec.act_bits
            tp = [Signal(rows * ab, name=f"tp{i}") for i in range(rows)]
            fidx = Signal(range(rows + 1))
            fill_first = Signal()
            fill = delay(m, Cat(x_issue, fill_first), RL, "fill")
            a_valid = delay(m, issue, RL, "a_valid")
            with m.If(fill[0]):
                for i in range(rows):
                    with m.If(Mux(fill[1], 0, fidx) == i):
                        m.d.sync += tp[i].eq(self.ibuf_rd.data)
                m.d.sync += fidx.eq(Mux(fill[1], 1, fidx + 1))
            with m.If(a_valid):
                for i in range(rows):
                    m.d.sync += tp[i].eq(tp[i] >> ab)
                    m.d.comb += self.a[i].eq(tp[i][:ab])
                m.d.comb += self.b.as_value().eq(self.wbuf_rd.data)
            m.d.comb += [self.ibuf_rd.en.eq(x_issue), self.wbuf_rd.en.eq(issue)]

        # -- token delay line: (valid, output address, first pass, bias, channel, step) -----------
        # a vector read at t reaches the array at t+RL and its sums leave it at t+RL+LT; the output
        # word is read at t+LT so that it arrives with them, and written at t+RL+LT
        tok_layout = data.StructLayout({"valid": 1, "last": 1, "addr": 16, "first": 1, "bias": 1,
                                        "chan": 16, "step": 1})
        toks = [Signal(tok_layout, name=f"tok{k}") for k in range(LT + RL + 1)]
        m.d.comb += [toks[0].valid.eq(tok_valid), toks[0].last.eq(tok_last),
                     toks[0].addr.eq(tok_addr),
                     toks[0].first.eq(~xcmd.accumulate if whole else first_pass),
                     toks[0].bias.eq(xcmd.bias), toks[0].chan.eq(tok_chan),
                     toks[0].step.eq(tok_step)]
        for k in range(1, LT + RL + 1):
            m.d.sync += toks[k].eq(toks[k - 1])
        # the output word is read a cycle early and registered, so the adder starts from a
        # register beside it rather than from a block RAM across the chip. That moves every read
        # of an accumulated word a cycle closer to the write before it: the margins of the
        # controller's docstring lose a cycle, which WS's early start affords when rows + 1 >= RL
        # (output-stationary issues its tokens as it drains, with no cycle to spare)
        read_early = LT >= 1 and rows + 1 >= RL
        rd_tok, wr_tok = toks[LT - 1 if read_early else LT], toks[LT + RL]
        if eng == "os":
            m.d.comb += self.drain.eq(wr_tok.step)
        old = data.View(data.ArrayLayout(signed(acc_bits), cols),
                        delay(m, self.obuf_rd.data, 1, "old", reset_less=True) if read_early
                        else self.obuf_rd.data)
        sums = Signal(data.ArrayLayout(signed(acc_bits), cols))
        if per_word:
            # per-output-channel values indexed by the word's channel, not by the lane; read a
            # cycle early and registered, so the memory's output does not feed the adder directly
            m.submodules.bias_mem = bias_mem = memory.Memory(
                shape=signed(acc_bits), depth=spec.chan_depth, init=[])
            bias_wr = bias_mem.write_port()
            bias_rd = bias_mem.read_port()
            assert LT + RL >= 2
            m.d.comb += [bias_wr.addr.eq(ptr), bias_wr.data.eq(s_axis.tdata[:acc_bits]),
                         bias_rd.addr.eq(toks[LT + RL - 2].chan), bias_rd.en.eq(1)]
            chan_bias = delay(m, bias_rd.data, 1, "chan_bias")
        for j in range(cols):
            base = Signal(signed(acc_bits), name=f"base{j}")
            with m.If(~wr_tok.first):
                m.d.comb += base.eq(old[j])
            with m.Elif(wr_tok.bias):
                m.d.comb += base.eq(chan_bias if per_word else bias_reg[j])
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
        # free FIFO places not yet claimed by a read in flight: a read takes one, a word leaving
        # on m_axis gives one back
        credits = Signal(range(SL + 4), init=SL + 3)
        store_en = Signal()
        sidx = Signal(17)                 # STORE: word index within the command
        st = [Signal(2, name=f"st{k}") for k in range(SL + 1)]  # (valid, last) beside each read
        m.d.comb += st[0].eq(Cat(store_en, cnt_one))
        for k in range(1, SL + 1):
            m.d.sync += st[k].eq(st[k - 1])
        out_word = self.obuf_rd2.data
        if spec.postproc:
            m.submodules.requant = rq = Requantizer(spec)
            mb = spec.mult_bits
            m.d.comb += [rq.i.as_value().eq(self.obuf_rd2.data), rq.requant.eq(cmd.requant),
                         rq.relu.eq(cmd.relu)]
            if per_word:
                m.submodules.quant_mem = quant_mem = memory.Memory(
                    shape=unsigned(32), depth=spec.chan_depth, init=[])
                quant_wr = quant_mem.write_port()
                quant_rd = quant_mem.read_port()
                m.d.comb += [quant_wr.addr.eq(ptr), quant_wr.data.eq(s_axis.tdata[:32]),
                             quant_rd.addr.eq(sidx), quant_rd.en.eq(store_en)]
                q_word = delay(m, quant_rd.data, RL - 1, "q_word")
                for j in range(cols):
                    m.d.comb += [rq.mult[j].eq(q_word[:mb]),
                                 rq.shift[j].eq(q_word[QUANT_SHIFT_OFFSET:][:QUANT_SHIFT_BITS])]
            else:
                q_mult = Signal(data.ArrayLayout(unsigned(mb), cols))
                q_shift = Signal(data.ArrayLayout(unsigned(QUANT_SHIFT_BITS), cols))
                m.d.comb += [rq.mult.eq(q_mult), rq.shift.eq(q_shift)]
            out_word = rq.o
        m.d.comb += [ofifo.w_en.eq(st[SL][0]), ofifo.w_data.eq(Cat(out_word, st[SL][1]))]
        m.d.sync += credits.eq(credits - store_en + (ofifo.r_rdy & m_axis.tready))
        m.d.comb += [m_axis.tvalid.eq(ofifo.r_rdy), m_axis.tdata.eq(ofifo.r_data[:obits]),
                     m_axis.tlast.eq(ofifo.r_data[obits]), ofifo.r_en.eq(m_axis.tready)]

        # STORE reads the output buffer's second port, so it streams while a COMPUTE accumulates
        m.d.comb += [self.obuf_rd2.addr.eq(ptr), self.obuf_rd2.en.eq(store_en),
                     self.obuf_rd.addr.eq(rd_tok.addr), self.obuf_rd.en.eq(rd_tok.valid)]

        # -- counters -------------------------------------------------------------------------
        waiting_input = Signal()
        idle = Signal()
        events = {"ibuf_reads": self.ibuf_rd.en, "ibuf_writes": self.ibuf_wr.en,
                  "wbuf_reads": self.wbuf_rd.en, "wbuf_writes": self.wbuf_wr.en,
                  "obuf_reads": self.obuf_rd.en + self.obuf_rd2.en,
                  "obuf_writes": self.obuf_wr.en}
        # the PE-level counters: elements per event, from each engine's datapath (the per-PE
        # figures of gen/isa.py PER_PE_CYCLE): every PE works on an issued cycle; ws shifts a
        # weight word through every PE of the array, is a pixel word, os drains a row, rs fills
        # every PE's filter spad with a filter word and its ifmap spad with a row segment (one
        # per fill column), and moves a psum row down per output word
        pes = rows * cols
        rf_pp, arr_pp = PER_PE_CYCLE[eng]
        if eng == "ws":
            fills, moves = 0, x_issue | l_issue
        elif eng == "is":
            fills, moves = 0, x_issue
        elif eng == "os":
            fills, moves = 0, tok_step
        elif eng == "rs":
            fills = f_issue.as_unsigned() + (x_issue & (fy == 0)).as_unsigned()
            moves = fills + tok_valid
        else:
            fills, moves = 0, 0
        events |= {"cycles": ~idle | s_axis.tvalid, "array_busy": issue,
                   "in_stall": waiting_input & ~s_axis.tvalid,
                   "out_stall": m_axis.tvalid & ~m_axis.tready}
        events["pe_macs"] = issue * pes
        events["rf_accesses"] = issue * (rf_pp * pes) + fills * pes
        events["array_moves"] = issue * (arr_pp * pes) + moves * pes
        # each event is registered first, so a 64-bit add does not follow the logic that raises
        # it (every count lags its event by a cycle; they are read when the design is idle)
        evs = {}
        for name, strobe in events.items():
            evs[name] = Signal(range(6 * pes + 4), name=f"{name}_ev")
            m.d.sync += evs[name].eq(strobe)
        with m.If(self.clear_counters):
            m.d.sync += [self.commands.eq(0)] + [getattr(self, n).eq(0) for n in COUNTERS]
        with m.Else():
            for name, ev in evs.items():
                m.d.sync += getattr(self, name).eq(getattr(self, name) + ev)
        with m.If(self.clear_error):
            m.d.sync += self.error.eq(0)
        m.d.sync += self.busy.eq(~idle)   # (a cycle late, like the counts)

        first_state = {"ws": "WLOAD", "is": "PRELOAD", "nlr": "STREAM", "os": "FILL",
                       "rs": "FFILL"}[eng]
        # -- the front end: headers, loads and stores, running beside the executor ---------------
        x_idle = Signal()      # the executor has no COMPUTE (and its last results are written)
        x_done = Signal()      # no COMPUTE queued or running, every result written
        x_queue = Signal()     # a COMPUTE enters the queue
        # COMPUTEs queued and not yet fully written: a STORE reads outputs, so without sync it
        # waits until at most the last one issued (the one the tiler checked it against) is
        n_out = Signal(range(L + RL + 8))   # (a COMPUTE lasts at least 3 cycles)
        n_zero, n_le1 = Signal(init=1), Signal(init=1)   # registered n_out == 0, n_out <= 1
        n_dec = Signal()
        m.d.comb += n_dec.eq(wr_tok.valid & wr_tok.last)
        m.d.sync += n_out.eq(n_out + x_queue - n_dec)
        with m.If(x_queue & ~n_dec):
            m.d.sync += [n_zero.eq(0), n_le1.eq(n_zero)]
        with m.Elif(n_dec & ~x_queue):
            m.d.sync += [n_zero.eq(n_out == 1), n_le1.eq(n_out <= 2)]
        # the command in DISP, decoded as its last header word arrives: dispatch decisions start
        # from these flags, not from comparisons of the header's fields
        d_compute, d_ok, d_all, d_store, d_load, d_count, d_one, d_bad = (
            Signal(name=n) for n in ("d_compute", "d_ok", "d_all", "d_store", "d_load",
                                     "d_count", "d_one", "d_bad"))
        d_base = Signal(16)    # the LOAD's or STORE's first buffer address
        with m.If(cnt_dec):
            m.d.sync += [cnt.eq(cnt - 1), cnt_nz.eq(~cnt_one), cnt_one.eq(cnt == 2)]
        loads = [Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.LOAD_BIAS]
        if spec.postproc:
            loads.append(Op.LOAD_QUANT)
        ok = (new.p != 0) & (new.q != 0) & (new.r != 0) & (new.s != 0)
        if eng in ("is", "rs"):
            ok &= new.count != 0
        if eng == "rs":
            ok &= (new.fill_h != 0) & (new.fill_w != 0)
        known = [Op.NOP, Op.COMPUTE, Op.STORE, *loads]
        # (ws) the executor takes the next COMPUTE while the last one's sums drain: its weights
        # shift into the PEs' shadow registers behind the draining vectors, as from tap to tap.
        # Its vectors enter at least rows + 2 cycles after the last one's last (XIDLE, WLOAD,
        # WSETTLE), in the same pixel order, so a COMPUTE accumulating onto the same outputs
        # reads pixel i's word rows + pixels + 2 - RL >= 1 cycles after it was written (a cycle
        # less with ``read_early``, still >= 1 as rows + 1 >= RL there)
        settle = Signal(range(L + RL + 4))   # cycles until the drained sums are written
        fe_idle = Signal()
        m.d.comb += [idle.eq(fe_idle & x_done), x_done.eq(x_idle & ~q_valid)]
        with m.FSM(name="ctrl"):
            with m.State("HDR"):
                m.d.comb += [s_axis.tready.eq(1), fe_idle.eq(hidx == 0),
                             waiting_input.eq(hidx != 0)]
                with m.If(s_axis.tvalid):
                    with m.If(hidx != HEADER_WORDS - 1):
                        m.d.sync += [hdr.eq(Cat(hdr[32:], word)), hidx.eq(hidx + 1)]
                    with m.Else():
                        m.d.sync += [hidx.eq(0), cmd.eq(new), self.commands.eq(self.commands + 1),
                                     d_compute.eq(new.op == Op.COMPUTE), d_ok.eq(ok),
                                     d_all.eq(new.sync | (new.op == Op.LOAD_BIAS)),
                                     d_store.eq(new.op == Op.STORE),
                                     d_load.eq(new.op.matches(*loads)),
                                     d_count.eq(new.count != 0), d_one.eq(new.count == 1),
                                     d_base.eq(Mux(new.op == Op.LOAD_WEIGHT, new.waddr,
                                                   Mux(new.op == Op.STORE, new.oaddr,
                                                       new.addr))),
                                     d_bad.eq(~new.op.matches(*known))]
                        m.next = "DISP"

            with m.State("DISP"):
                # a COMPUTE waits for the executor's queue, a LOAD_BIAS (the bias register is
                # the COMPUTEs') and any command the tiler marked ``sync`` (it touches what a
                # COMPUTE in the executor reads or writes) for every COMPUTE to finish
                wait = Mux(d_compute, q_valid, Mux(d_all, ~n_zero, d_store & ~n_le1))
                with m.If(~wait):
                    m.next = "HDR"
                    with m.If(d_load):
                        m.d.sync += [cnt.eq(cmd.count), cnt_nz.eq(d_count), cnt_one.eq(d_one),
                                     ptr.eq(d_base)]
                        with m.If(d_count):
                            m.next = "LOAD"
                    with m.If(d_compute):
                        m.d.sync += [qcmd.eq(cmd), q_valid.eq(d_ok)]
                        if flags:
                            m.d.sync += [qf[f"{n}{v}"].eq(getattr(cmd, n) == v)
                                         for n in "pqrs" for v in (1, 2)]
                        if eng == "ws":
                            m.d.sync += q_wbot.eq(cmd.waddr + (rows - 1))
                        m.d.comb += x_queue.eq(d_ok)
                    with m.If(d_store):
                        m.d.sync += [cnt.eq(cmd.count), cnt_nz.eq(d_count), cnt_one.eq(d_one),
                                     ptr.eq(d_base), sidx.eq(0)]
                        with m.If(d_count):
                            m.next = "STORE"
                    with m.If(d_bad):
                        m.d.sync += self.error.eq(1)

            with m.State("LOAD"):
                m.d.comb += [s_axis.tready.eq(1), waiting_input.eq(1)]
                with m.If(s_axis.tvalid):
                    m.d.comb += [self.ibuf_wr.en.eq(cmd.op == Op.LOAD_INPUT),
                                 self.wbuf_wr.en.eq(cmd.op == Op.LOAD_WEIGHT)]
                    if per_word:
                        m.d.comb += bias_wr.en.eq(cmd.op == Op.LOAD_BIAS)
                        if spec.postproc:
                            m.d.comb += quant_wr.en.eq(cmd.op == Op.LOAD_QUANT)
                    else:
                        with m.If(cmd.op == Op.LOAD_BIAS):
                            m.d.sync += bias_reg.eq(Cat(bias_reg.as_value()[acc_bits:],
                                                        s_axis.tdata[:acc_bits]))
                        if spec.postproc:  # lane registers shift like the bias register
                            with m.If(cmd.op == Op.LOAD_QUANT):
                                m.d.sync += [
                                    q_mult.eq(Cat(q_mult.as_value()[mb:], s_axis.tdata[:mb])),
                                    q_shift.eq(Cat(q_shift.as_value()[QUANT_SHIFT_BITS:],
                                                   s_axis.tdata[QUANT_SHIFT_OFFSET:][
                                                       :QUANT_SHIFT_BITS])),
                                ]
                    m.d.comb += cnt_dec.eq(1)
                    m.d.sync += ptr.eq(ptr + 1)
                    with m.If(cnt_one):
                        m.next = "HDR"

            with m.State("STORE"):
                m.d.comb += [store_en.eq(cnt_nz & (credits != 0)), cnt_dec.eq(store_en)]
                with m.If(store_en):
                    m.d.sync += [ptr.eq(ptr + 1), sidx.eq(sidx + 1)]
                with m.If(~cnt_nz & (credits == SL + 3)):   # every word has left
                    m.next = "HDR"

        # -- the executor: one COMPUTE at a time, beside the front end ---------------------------
        def take(c):
            """Start COMPUTE ``c`` from the queue: latch it and set the walkers on it."""
            m.d.sync += [
                xcmd.eq(c), q_valid.eq(0),
                ri.eq(0), si.eq(0), r_base.eq(c.addr), tap_base.eq(c.addr), row_ptr.eq(c.addr),
                pix.eq(c.addr), pi.eq(0), qi.eq(0), wtap.eq(c.waddr), opix.eq(c.oaddr),
                p_last.eq(c.p - 1), q_last.eq(c.q - 1), s_last.eq(c.s - 1), r_last.eq(c.r - 1),
            ]
            if flags:
                assert c is qcmd
                m.d.sync += [pm3.eq(c.p - 3), qm3.eq(c.q - 3), sm3.eq(c.s - 3), rm3.eq(c.r - 3),
                             q_one.eq(qf["q1"]), q_two.eq(qf["q2"]), p_one.eq(qf["p1"]),
                             p_two.eq(qf["p2"]), s_one.eq(qf["s1"]), s_two.eq(qf["s2"]),
                             pix_last.eq(qf["p1"] & qf["q1"]), qe.eq(qf["q1"]),
                             qe1.eq(qf["q2"]), pe.eq(qf["p1"]), pe1.eq(qf["p2"]),
                             tap_last.eq(qf["r1"] & qf["s1"]), s_end.eq(qf["s1"]),
                             sl1.eq(qf["s2"]), rl0.eq(qf["r1"]), rl1.eq(qf["r2"])]
            if eng == "ws":
                m.d.sync += wstep.eq(rows)
            elif eng == "is":
                m.d.sync += [lin.eq(0), wstep.eq(c.count), lin_last.eq(c.count - 1)]
            elif eng == "os":
                m.d.sync += [lin.eq(0), wstep.eq(rows)]
            elif eng == "rs":
                m.d.sync += [lin.eq(0), lin_last.eq(c.count - 1), fcnt.eq(0), fdone.eq(0),
                             tcnt.eq(0), fy.eq(0), fx.eq(0), fy_last.eq(c.fill_h - 1),
                             fx_last.eq(c.fill_w - 1), iidx.eq(0), ibase.eq(0), fidx.eq(0)]
            else:
                m.d.sync += [lin.eq(0), wstep.eq(1)]

        with m.If(settle != 0):
            m.d.sync += settle.eq(settle - 1)
        with m.FSM(name="exec") as xfsm:
            with m.State("XIDLE"):
                with m.If(q_valid):
                    take(qcmd)
                    if eng == "ws":   # WLOAD reads the first tap's words, bottom row first
                        m.d.sync += [laddr.eq(q_wbot), wl.eq(rows - 1)]
                    m.next = first_state
                    if eng == "rs":
                        with m.If(qcmd.keep):
                            m.next = "IFILL"

            if eng == "ws":
                with m.State("WLOAD"):
                    m.d.comb += x_issue.eq(1)
                    m.d.sync += wl.eq(wl - 1)
                    with m.If(wl == 0):
                        m.next = "WSETTLE"
                with m.State("WSETTLE"):  # the last word shifts in; PEs take it next cycle
                    m.d.comb += flip.eq(1)
                    m.next = "STREAM"
                with m.State("CHAIN"):    # take the queued COMPUTE as the next tap
                    take(qcmd)
                    with m.If(wready):
                        m.d.comb += flip.eq(1)
                        m.next = "STREAM"
                    with m.Else():
                        m.next = "WGAP"
                with m.State("WGAP"):     # the next tap's weights are still loading
                    with m.If(wready):
                        m.d.comb += flip.eq(1)
                        m.next = "STREAM"

            if eng in ("ws", "nlr"):
                with m.State("STREAM"):   # one input vector per output pixel; sums go to opix
                    m.d.comb += [issue.eq(1), tok_valid.eq(1), tok_addr.eq(opix),
                                 tok_last.eq(pix_last & tap_last)]
                    m.d.sync += opix.eq(opix + 1)
                    walk_pixel()
                    if eng == "ws":
                        with m.If(since0):    # the walker points at this tap
                            # after the last tap comes the queued COMPUTE's first, if one is
                            # queued by now: its weights load behind this tap like a tap's
                            m.d.sync += [more.eq(~tap_last | q_valid),
                                         laddr.eq(Mux(tap_last, q_wbot, wtap + (2 * rows - 1)))]
                    with m.If(pix_last):
                        if eng == "ws":
                            with m.If(~tap_last):
                                m.d.sync += opix.eq(xcmd.oaddr)
                                next_tap()
                        else:
                            m.d.sync += opix.eq(xcmd.oaddr)
                            next_tap()
                        if eng == "ws":
                            with m.If(tap_last & more_now):   # chain the queued COMPUTE on
                                m.next = "CHAIN"
                            with m.Elif(~more_now):   # drain while XIDLE takes the next
                                m.d.sync += settle.eq(L + RL + 3)
                                m.next = "XIDLE"
                            with m.Elif(wready):   # weights ready: go on
                                m.d.comb += flip.eq(1)
                            with m.Else():
                                m.next = "WGAP"
                        else:
                            m.d.sync += drain.eq(L + RL + 2)
                            m.next = "DRAIN"

            if eng == "is":
                with m.State("PRELOAD"):
                    m.d.comb += x_issue.eq(1)
                    walk_pixel()
                    with m.If(pix_last):
                        m.next = "KSTREAM"
                with m.State("KSTREAM"):
                    m.d.comb += [issue.eq(1), tok_valid.eq(1), tok_addr.eq(opix),
                                 tok_chan.eq(lin), tok_last.eq((lin == lin_last) & tap_last)]
                    m.d.sync += [opix.eq(opix + 1), lin.eq(lin + 1)]
                    with m.If(lin == lin_last):
                        m.d.sync += [lin.eq(0), opix.eq(xcmd.oaddr), drain.eq(L + RL + 2)]
                        next_tap()
                        m.next = "DRAIN"

            if eng == "rs":
                with m.State("FFILL"):     # filter words multicast to the rows' filter spads
                    m.d.comb += f_issue.eq(~fdone)
                    with m.If(tcnt != spec.rs_setup_cycles - 1):
                        m.d.sync += tcnt.eq(tcnt + 1)
                    f_end = Signal()
                    m.d.comb += f_end.eq(fdone | ((lin == lin_last) & (si == s_last)))
                    with m.If(~fdone):
                        m.d.sync += fcnt.eq(fcnt + 1)
                        with m.If(si == s_last):
                            m.d.sync += [si.eq(0), lin.eq(lin + 1)]
                        with m.Else():
                            m.d.sync += si.eq(si + 1)
                        with m.If(f_end):
                            m.d.sync += [fdone.eq(1), si.eq(0), lin.eq(0)]
                    with m.If(f_end & (tcnt >= spec.rs_setup_cycles - 1)):
                        m.next = "IFILL"
                with m.State("IFILL"):     # the input region onto the diagonal ifmap bus
                    m.d.comb += x_issue.eq(1)
                    with m.If(fx == fx_last):
                        m.d.sync += [fx.eq(0), fy.eq(fy + 1), row_ptr.eq(row_ptr + xcmd.row_step),
                                     pix.eq(row_ptr + xcmd.row_step)]
                        with m.If(fy == fy_last):
                            m.next = "RCOMP"
                    with m.Else():
                        m.d.sync += [fx.eq(fx + 1), pix.eq(pix + 1)]
                with m.State("RCOMP"):     # for q, for s, for k: one MAC step of every PE
                    k_last, s_end = lin == lin_last, si == s_last
                    m.d.comb += [issue.eq(1), rs_ctl.valid.eq(1), rs_ctl.first.eq(si == 0),
                                 rs_ctl.last.eq(s_end), rs_ctl.fidx.eq(fidx),
                                 rs_ctl.iidx.eq(iidx), rs_ctl.k.eq(lin),
                                 tok_valid.eq(s_end), tok_addr.eq(opix), tok_chan.eq(lin),
                                 tok_last.eq(s_end & k_last & (qi == q_last))]
                    with m.If(s_end):
                        m.d.sync += opix.eq(opix + 1)
                    m.d.sync += [lin.eq(lin + 1), fidx.eq(fidx + xcmd.s)]
                    with m.If(k_last):
                        m.d.sync += [lin.eq(0), si.eq(si + 1), fidx.eq(si + 1),
                                     iidx.eq(iidx + xcmd.dilation)]
                        with m.If(s_end):
                            m.d.sync += [si.eq(0), fidx.eq(0), qi.eq(qi + 1),
                                         ibase.eq(ibase + xcmd.stride),
                                         iidx.eq(ibase + xcmd.stride)]
                            with m.If(qi == q_last):
                                m.d.sync += [drain.eq(L + RL + 2), opix.eq(xcmd.oaddr)]
                                m.next = "DRAIN"

            if eng in ("is", "nlr", "rs"):
                with m.State("DRAIN"):
                    m.d.sync += drain.eq(drain - 1)
                    with m.If(drain == 0):
                        if eng == "rs":   # it drains once, after the whole window
                            m.next = "XIDLE"
                        else:
                            with m.If(ri == xcmd.r):
                                m.next = "XIDLE"
                            with m.Else():
                                m.next = first_state

            if eng == "os":
                with m.State("FILL"):
                    m.d.comb += [x_issue.eq(1), fill_first.eq((pi == 0) & (qi == 0))]
                    walk_pixel()
                    with m.If(pix_last):
                        m.next = "OSTREAM"
                with m.State("OSTREAM"):
                    m.d.comb += issue.eq(1)
                    m.d.sync += lin.eq(lin + 1)
                    with m.If(lin == rows - 1):
                        m.d.sync += lin.eq(0)
                        with m.If(tap_last):
                            m.d.sync += drain.eq(L - 1)
                            m.next = "OWAIT"
                        with m.Else():
                            next_tap()
                            m.next = "FILL"
                with m.State("OWAIT"):     # until every PE holds its final sum
                    m.d.sync += drain.eq(drain - 1)
                    with m.If(drain == 0):
                        m.d.sync += lin.eq(rows - 1)
                        m.next = "ODRAIN"
                with m.State("ODRAIN"):    # bottom row first: pixel rows-1 down to pixel 0
                    m.d.comb += [tok_step.eq(1), tok_valid.eq(lin < xcmd.count),
                                 tok_last.eq(lin == 0),
                                 tok_addr.eq(xcmd.oaddr + lin)]
                    m.d.sync += lin.eq(lin - 1)
                    with m.If(lin == 0):
                        m.d.sync += drain.eq(RL + 1)
                        m.next = "OTAIL"
                with m.State("OTAIL"):     # the last results are written
                    m.d.sync += drain.eq(drain - 1)
                    with m.If(drain == 0):
                        m.next = "XIDLE"

        m.d.comb += x_idle.eq(xfsm.ongoing("XIDLE") & (settle == 0))
        return m
