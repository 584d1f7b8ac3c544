"""The controller's front end: headers, LOADs and STOREs, and the one-deep COMPUTE queue.

A state machine (``HDR``, ``DISP``, ``LOAD``, ``STORE``) takes command headers from ``s_axis``,
decodes each as its last header word arrives (every dispatch decision then starts from registered
flags, not from comparisons of the header's fields; the decode is in one place, :meth:`_decode`,
which asks the engine's executor whether a COMPUTE's fields make a tile it can run),
writes LOAD payloads into the buffers (``ibuf_wr``, ``wbuf_wr``) and the bias and requantisation
parameters (``bias_wr``, ``quant_wr``), issues a STORE's output-buffer reads on ``store`` (a
stream: the store unit takes a read while it has room for its word), and puts each COMPUTE on
``compute``, a stream whose payload register is the queue of one.

In ``DISP`` a COMPUTE waits for the queue to be free; a command the tiler marked ``sync`` and any
LOAD_BIAS wait for every queued COMPUTE to be written; a STORE waits until at most one is
unwritten (gen/isa.py, Concurrency); a pooling STORE also for the check of its window fields
(hw/poolcheck.py, started at the header's last word). ``n_out`` counts COMPUTEs queued and not
yet written (``done``: the write-back wrote a COMPUTE's last word).
"""

from amaranth.hdl import Assert, Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.isa import ADD_BEATS, HEADER_WORDS, Cause, Op
from gen.spec import Spec

from .buffer import WriteSignature, addr_bits
from .engines import executor_class
from .header import LAST, HeaderBeats
from .host import AxiStreamSignature
from .interfaces import PTR, ComputeLayout, HeaderLayout, store_request
from .poolcheck import PoolCheck

__all__ = ["FrontEnd"]


class FrontEnd(wiring.Component):
    """``x_idle``: the executor holds no COMPUTE and its results are written; ``store_drained``:
    every STORE word has left on ``m_axis``. Outputs for the counters: ``command`` (a header
    completes), ``waiting_input`` (a header or LOAD payload is awaited) and ``idle``. For the
    status CSR: ``busy`` (registered ``~idle``), ``error``, ``cause`` and ``starved``
    (registered: inside a frame, a partial header or LOAD payload, with no input beat offered:
    a host that has sent its whole stream and reads it set knows the stream ended inside a
    frame, which a soft reset drops)."""

    def __init__(self, spec: Spec, *, checks: bool = False):
        self.spec, self.checks = spec, checks
        ia, wa = addr_bits(spec.input_depth), addr_bits(spec.weight_depth)
        extra = {"add_wr": Out(WriteSignature(16, spec.in_stream_bits))} if spec.residual else {}
        super().__init__({
            "s_axis": In(AxiStreamSignature(spec.in_stream_bits)),
            "ibuf_wr": Out(WriteSignature(ia, spec.input_word_bits)),
            "wbuf_wr": Out(WriteSignature(wa, spec.weight_word_bits)),
            "bias_wr": Out(WriteSignature(16, spec.in_stream_bits)),
            "quant_wr": Out(WriteSignature(16, spec.in_stream_bits)),
            "compute": Out(stream.Signature(ComputeLayout)),
            "store": Out(stream.Signature(store_request(spec))),
            "store_drained": In(1),
            "x_idle": In(1),
            "done": In(1),
            "clear_error": In(1),
            "busy": Out(1), "error": Out(1), "cause": Out(4), "starved": Out(1),
            "idle": Out(1),
            "command": Out(1), "waiting_input": Out(1),
            **extra,
        })

    def _decode(self, h, past):
        """The decode of header ``h``: the command's class, whether its fields are valid, its
        buffer base address, and ``past``: whether a LOAD or STORE runs past its buffer, or a
        COMPUTE's footprint does (built as the header arrives, :meth:`_past_depth` and
        hw/footprint.py). The front end registers it as a header's last word arrives, so
        dispatch and refusal start from flip-flops."""
        spec = self.spec
        loads = [Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.LOAD_BIAS]
        if spec.postproc:
            loads.append(Op.LOAD_QUANT)
        if spec.residual:
            loads.append(Op.LOAD_ADD)
        known = [Op.NOP, Op.COMPUTE, Op.STORE, *loads]
        base = Mux(h.op == Op.LOAD_WEIGHT, h.waddr,   # the first buffer address
                   Mux(h.op == Op.STORE, h.oaddr, h.addr))
        pooling = (h.op == Op.STORE) & h.pool
        ok = executor_class(spec).compute_ok(h)
        return {"compute": h.op == Op.COMPUTE, "ok": ok,
                "cq": (h.op == Op.COMPUTE) & ok,    # a COMPUTE the queue takes unless past
                "nopool": 0 if spec.pool else pooling,   # a pooling STORE, no pooling unit
                "pooled": pooling if spec.pool else 0,   # its windows checked: PoolCheck
                "all": h.sync | (h.op == Op.LOAD_BIAS),   # waits for every COMPUTE
                "store": h.op == Op.STORE, "load": h.op.matches(*loads),
                "count": h.count != 0, "one": h.count == 1, "base": base,
                "past": past,
                # a LOAD_ADD of other than its 4 beats, or a STORE with add the unit cannot run
                "addbad": (((h.op == Op.LOAD_ADD) & (h.count != ADD_BEATS))
                           | ((h.op == Op.STORE) & h.add
                              & (~h.requant | h.pool if spec.residual else 1))),
                "bad": ~h.op.matches(*known)}

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        s_axis = self.s_axis
        hdr = Signal(32 * (HEADER_WORDS - 1))
        hidx = Signal(range(HEADER_WORDS))
        word = s_axis.tdata[:32]
        new = HeaderLayout(Cat(hdr, word))
        cmd = Signal(HeaderLayout)        # the command in DISP, LOAD or STORE
        cnt = Signal(17)                  # LOAD/STORE beats left
        cnt_nz, cnt_one = Signal(), Signal()   # registered cnt != 0, cnt == 1
        cnt_dec = Signal()                # a LOAD/STORE beat: cnt counts down
        ptr = Signal(PTR)                 # LOAD/STORE buffer address
        sidx = Signal(17)                 # STORE: word index within the command
        queue = self.compute              # its payload and valid are the queue's registers
        with m.If(queue.valid & queue.ready):
            m.d.sync += queue.valid.eq(0)
        x_queue = Signal()                   # a COMPUTE enters the queue
        counts = self._n_out(m, x_queue)
        n_zero, n_le1 = counts[3:]
        with m.If(cnt_dec):
            m.d.sync += [cnt.eq(cnt - 1), cnt_nz.eq(~cnt_one), cnt_one.eq(cnt == 2)]
        # the command in DISP, decoded as its last header word arrives: dispatch decisions start
        # from these registers, not from comparisons of the header's fields
        take = Signal()                   # a header beat is taken
        hb = HeaderBeats(m, hdr, word, hidx, take)
        exe = executor_class(spec)        # a COMPUTE's footprint: hw/footprint.py
        new_past = self._past_depth(m, hb)
        if spec.footprint_check:
            new_past = new_past | ((hb.field("op", LAST) == Op.COMPUTE)
                                   & exe.footprint_past(spec, hb))
        d = {n: Signal(16 if n == "base" else 1, name=f"d_{n}") for n in self._decode(cmd, 0)}
        # a pooling STORE's window fields: whether they tile its words (hw/poolcheck.py), from
        # the header's last beat on; its dispatch waits for the verdict
        pool_wait, pool_bad = self._pool_check(m, d, new, cmd, take & (hidx == HEADER_WORDS - 1))
        if self.checks:   # the registered flags equal what they shadow
            self._assert_flags(m, d, cmd, exe, counts, cnt, cnt_nz, cnt_one)
        req, adding = self._payload(m, cmd, ptr, sidx, cnt_one)

        fe_idle = Signal()
        m.d.comb += self.idle.eq(fe_idle & self.x_idle & ~queue.valid)
        m.d.sync += self.busy.eq(~self.idle)   # (a cycle late, like the counts)
        m.d.sync += self.starved.eq(self.waiting_input & ~s_axis.tvalid)
        with m.If(self.clear_error):
            m.d.sync += [self.error.eq(0), self.cause.eq(0)]
        with m.FSM(name="ctrl") as fsm:
            with m.State("HDR"):
                m.d.comb += [s_axis.tready.eq(1), fe_idle.eq(hidx == 0),
                             self.waiting_input.eq(hidx != 0)]
                with m.If(s_axis.tvalid):
                    m.d.comb += take.eq(1)
                    with m.If(hidx != HEADER_WORDS - 1):
                        m.d.sync += [hdr.eq(Cat(hdr[32:], word)), hidx.eq(hidx + 1)]
                    with m.Else():
                        m.d.comb += self.command.eq(1)
                        m.d.sync += [hidx.eq(0), cmd.eq(new)]
                        m.d.sync += [d[n].eq(v) for n, v in self._decode(new, new_past).items()]
                        m.next = "DISP"
                self._soft_reset(m, hidx)

            with m.State("DISP"):
                # a COMPUTE enters the queue: four registers (the refusals and waits below
                # leave exactly these for a COMPUTE; asserted under checks)
                m.d.comb += x_queue.eq(d["cq"] & ~d["past"] & ~queue.valid)
                # a LOAD's or STORE's counter and pointer, loaded whatever the command (only
                # LOAD and STORE use them), so they wait for no dispatch decision
                m.d.sync += [cnt.eq(cmd.count), cnt_nz.eq(d["count"]), cnt_one.eq(d["one"]),
                             ptr.eq(d["base"]), sidx.eq(0)]
                wait = Mux(d["compute"], queue.valid,
                           Mux(d["all"], ~n_zero, d["store"] & ~n_le1)) | pool_wait
                # a command the machine refuses (gen/isa.py Cause): the first error latches its
                # cause, and the front end drops every further beat until a soft reset
                # (in the ISA machine's order: a COMPUTE's fields before its footprint, a
                # STORE's range before its pooling)
                refuse = self._refusal(m, d, pool_bad)
                if self.checks:
                    m.d.sync += Assert(~x_queue | ((refuse == 0) & ~wait), "x_queue")
                with m.If(refuse != 0):
                    m.d.sync += self.error.eq(1)
                    with m.If(~self.error):
                        m.d.sync += self.cause.eq(refuse)
                    m.next = "ERR"
                with m.Elif(~wait):
                    m.next = "HDR"
                    with m.If(d["load"] & d["count"]):
                        m.next = "LOAD"
                    with m.If(d["store"] & d["count"]):
                        m.next = "STORE"
                    with m.If(d["compute"]):
                        p = queue.payload
                        m.d.sync += [p.cmd.eq(cmd), queue.valid.eq(d["ok"]),
                                     p.wbot.eq(cmd.waddr + (spec.rows - 1))]
                        m.d.sync += [getattr(p.one, n).eq(getattr(cmd, n) == 1) for n in "pqrs"]
                        m.d.sync += [getattr(p.two, n).eq(getattr(cmd, n) == 2) for n in "pqrs"]
                        if self.checks:
                            m.d.sync += Assert(x_queue == d["ok"], "x_queue")

            with m.State("LOAD"):
                m.d.comb += [s_axis.tready.eq(1), self.waiting_input.eq(1)]
                with m.If(s_axis.tvalid):
                    m.d.comb += [self.ibuf_wr.en.eq(cmd.op == Op.LOAD_INPUT),
                                 self.wbuf_wr.en.eq(cmd.op == Op.LOAD_WEIGHT),
                                 self.bias_wr.en.eq(cmd.op == Op.LOAD_BIAS),
                                 self.quant_wr.en.eq(cmd.op == Op.LOAD_QUANT),
                                 cnt_dec.eq(1)]
                    if spec.residual:
                        m.d.comb += self.add_wr.en.eq(cmd.op == Op.LOAD_ADD)
                    m.d.sync += ptr.eq(ptr + 1)
                    with m.If(cnt_one):
                        m.next = "HDR"
                self._soft_reset(m, hidx)

            with m.State("ERR"):     # refused: take and drop every beat until a soft reset
                m.d.comb += [s_axis.tready.eq(1), fe_idle.eq(1)]
                self._soft_reset(m, hidx)

            with m.State("DRAIN"):   # soft reset: the executor's COMPUTEs finish first
                m.d.comb += fe_idle.eq(1)
                with m.If(self.x_idle & ~queue.valid & self.store_drained):
                    m.next = "HDR"

            with m.State("STORE"):
                # a STORE with add reads a word as its residual beat arrives (its payload)
                m.d.comb += [self.store.valid.eq(cnt_nz & (~adding | s_axis.tvalid)),
                             s_axis.tready.eq(adding & cnt_nz & self.store.ready),
                             self.waiting_input.eq(adding & cnt_nz),
                             cnt_dec.eq(self.store.valid & self.store.ready)]
                with m.If(cnt_dec):
                    m.d.sync += [ptr.eq(ptr + 1), sidx.eq(sidx + 1)]
                with m.If(~cnt_nz & self.store_drained):   # every word has left
                    m.next = "HDR"
                if spec.residual:   # a truncated payload: the words read so far leave first
                    with m.If(adding & cnt_nz):
                        self._soft_reset(m, hidx)

        if spec.pool:
            self._pool_walk(m, cmd, ptr, d["base"], fsm.ongoing("DISP"),
                            cnt_dec & fsm.ongoing("STORE"), req)
        return m

    def _n_out(self, m, x_queue):
        """COMPUTEs queued and not yet fully written (``x_queue``: one enters the queue;
        ``done``: one is written), with registered flags: (n_out, n_out + 1, n_out - 1 (mod its
        width), n_out == 0, n_out <= 1), so a dispatch only selects the next count."""
        spec = self.spec
        n_out = Signal(range(spec.array_latency + spec.buffer_latency + 8))   # (a COMPUTE
        #                                                             lasts at least 3 cycles)
        n_inc = Signal(len(n_out), init=1)
        n_dec = Signal(len(n_out), init=(1 << len(n_out)) - 1)
        n_zero, n_le1 = Signal(init=1), Signal(init=1)
        with m.If(x_queue & ~self.done):
            m.d.sync += [n_out.eq(n_inc), n_inc.eq(n_inc + 1), n_dec.eq(n_out),
                         n_zero.eq(0), n_le1.eq(n_zero)]
        with m.Elif(self.done & ~x_queue):
            m.d.sync += [n_out.eq(n_dec), n_inc.eq(n_out), n_dec.eq(n_dec - 1),
                         n_zero.eq(n_out == 1), n_le1.eq(n_out <= 2)]
        return n_out, n_inc, n_dec, n_zero, n_le1

    def _payload(self, m, cmd, ptr, sidx, cnt_one):
        """The payload beats' ports: each LOAD's write port at ``ptr`` with the input beat, and
        the STORE's read request (the word at ``ptr``, its index ``sidx``, the STORE's options;
        with the residual unit, an add STORE's residual beat). Returns (the request, whether
        the STORE takes payload beats)."""
        spec, s_axis = self.spec, self.s_axis
        writes = [self.ibuf_wr, self.wbuf_wr, self.bias_wr, self.quant_wr]
        if spec.residual:
            writes.append(self.add_wr)
        for wr in writes:
            m.d.comb += [wr.addr.eq(ptr), wr.data.eq(s_axis.tdata)]
        req = self.store.payload
        m.d.comb += [req.addr.eq(ptr), req.idx.eq(sidx), req.last.eq(cnt_one),
                     req.requant.eq(cmd.requant), req.relu.eq(cmd.relu), req.first.eq(1),
                     req.emit.eq(1),
                     req.zero_point.eq(cmd.zero_point), req.qmin.eq(cmd.qmin),
                     req.qmax.eq(cmd.qmax)]
        if not spec.residual:
            return req, 0
        m.d.comb += [req.add.eq(cmd.add), req.add_swap.eq(cmd.add_swap),
                     req.res_unsigned.eq(cmd.res_unsigned),
                     req.res.eq(s_axis.tdata[:len(req.res)])]
        return req, cmd.add

    def _refusal(self, m, d, pool_bad):
        """The cause (gen/isa.py Cause) the command in DISP is refused for, 0 if none, from
        its registered decode ``d``, in the ISA machine's order: a COMPUTE's fields before its
        footprint, a STORE's range before its pooling and its add."""
        refuse = Signal(4)
        m.d.comb += refuse.eq(Mux(d["bad"], Cause.OPCODE,
                                  Mux(d["compute"] & ~d["ok"], Cause.FIELD,
                                      Mux(d["past"], Cause.ADDRESS,
                                          Mux(d["nopool"] | pool_bad | d["addbad"],
                                              Cause.FIELD, 0)))))
        return refuse

    def _pool_check(self, m, d, new, cmd, start):
        """A pooling STORE's verdict (hw/poolcheck.py, started at the header's last beat):
        (its dispatch waits, it is refused); (0, 0) without the pooling unit."""
        spec = self.spec
        if not spec.pool:
            return 0, 0
        m.submodules.poolcheck = chk = PoolCheck()
        if chk.latency != spec.pool_check_latency:
            raise ValueError(f"the pooling STORE check takes {chk.latency} cycles but "
                             f"Spec.pool_check_latency is {spec.pool_check_latency}")
        m.d.comb += [chk.start.eq(start),
                     *[getattr(chk, n).eq(getattr(new, n))
                       for n in ("count", "pool_r", "pool_s", "pool_w")]]
        if self.checks:
            c = cmd
            tiles = ((c.pool_r != 0) & (c.pool_s != 0) & (c.pool_w != 0)
                     & (c.pool_w % c.pool_s == 0) & (c.count % (c.pool_r * c.pool_w) == 0))
            m.d.sync += Assert(~d["pooled"] | chk.busy | (chk.ok == tiles), "pool check")
        return d["pooled"] & chk.busy, d["pooled"] & ~chk.busy & ~chk.ok

    def _assert_flags(self, m, d, cmd, exe, count, cnt, cnt_nz, cnt_one):
        """Simulation assertions: each registered flag equals the expression it shadows."""
        spec, queue = self.spec, self.compute
        ref = 0       # past its buffer, at full width
        for op, (field, dep) in self._ranges().items():
            ref = ref | ((cmd.op == op) & (cmd.count != 0)
                         & (getattr(cmd, field) + cmd.count > dep))
        depth = {"ibuf": spec.input_depth, "wbuf": spec.weight_depth,
                 "obuf": spec.output_depth}
        fp = 0
        for buf, hi in exe.footprint_hi(spec, cmd).items():
            fp = fp | (hi >= depth[buf])
        ref = ref | ((cmd.op == Op.COMPUTE) & fp & spec.footprint_check)
        # (a COMPUTE refused for a zero field first may wrap in the registered decision)
        m.d.sync += [Assert((d[n] == v) | ((n == "past") & d["compute"] & ~d["ok"]),
                            f"d_{n}") for n, v in self._decode(cmd, ref).items()]
        n_out, n_inc, n_dec, n_zero, n_le1 = count
        m.d.sync += [Assert(n_inc == (n_out + 1)[:len(n_out)], "n_inc"),
                     Assert(n_dec == (n_out - 1)[:len(n_out)], "n_dec")]
        m.d.sync += [Assert(n_zero == (n_out == 0), "n_zero"),
                     Assert(n_le1 == (n_out <= 1), "n_le1"),
                     Assert(cnt_nz == (cnt != 0), "cnt_nz"),
                     Assert(cnt_one == (cnt == 1), "cnt_one")]
        q = queue.payload   # the queued COMPUTE's facts, registered as it was queued
        m.d.sync += [Assert(~queue.valid | ((getattr(q.one, n) == (getattr(q.cmd, n) == 1))
                                            & (getattr(q.two, n) == (getattr(q.cmd, n) == 2))),
                            f"queued {n} flags") for n in "pqrs"]
        m.d.sync += Assert(~queue.valid | (q.wbot == q.cmd.waddr + (spec.rows - 1)), "wbot")

    def _pool_walk(self, m, cmd, ptr, base, disp, step, req):
        """A pooling STORE's read order (gen/isa.py): window by window, each row by row, in rows
        of ``pool_w`` words; ``first`` and ``emit`` mark a window's first and last word. The
        counters count down to zero and load in DISP (``disp``) from the registered command;
        ``step``: a read is taken. A STORE without ``pool`` reads its words in order."""
        b = Signal(8, name="pool_b")             # words left in this row of the window
        a = Signal(8, name="pool_a")             # rows left in the window
        cleft = Signal(15, name="pool_c")        # words of the row right of this window
        wbase = Signal(PTR, name="pool_wbase")   # the window's first word
        rowp = Signal(PTR, name="pool_rowp")     # this row of the window's first word
        first = Signal(name="pool_first")
        pooled = cmd.pool
        b_last, a_last, c_last = b == 0, a == 0, cleft == 0
        done = b_last & a_last                   # this read completes a window
        m.d.comb += [req.first.eq(~pooled | first), req.emit.eq(~pooled | done),
                     req.pool.eq(pooled)]
        restart = [b.eq(cmd.pool_s - 1), a.eq(cmd.pool_r - 1)]
        with m.If(disp):
            m.d.sync += [*restart, cleft.eq(cmd.pool_w - cmd.pool_s), wbase.eq(base),
                         rowp.eq(base), first.eq(1)]
        with m.Elif(step & pooled):
            m.d.sync += first.eq(done)
            with m.If(~b_last):                  # the next word of the row
                m.d.sync += b.eq(b - 1)
            with m.Elif(~a_last):                # the window's next row
                m.d.sync += [b.eq(cmd.pool_s - 1), a.eq(a - 1), rowp.eq(rowp + cmd.pool_w),
                             ptr.eq(rowp + cmd.pool_w)]
            with m.Elif(~c_last):                # the next window of the band
                nxt = wbase + cmd.pool_s
                m.d.sync += [*restart, cleft.eq(cleft - cmd.pool_s), wbase.eq(nxt),
                             rowp.eq(nxt), ptr.eq(nxt)]
            with m.Else():                       # the next band starts after this word
                m.d.sync += [*restart, cleft.eq(cmd.pool_w - cmd.pool_s), wbase.eq(ptr + 1),
                             rowp.eq(ptr + 1)]

    def _soft_reset(self, m, hidx):
        """Soft reset (control bit 1), in ERR, HDR, LOAD and an add STORE's payload: drop a
        partial header or payload (a truncated frame), wait in DRAIN until the executor has
        written every COMPUTE it holds and every STORE word has left, then take a header's
        first word. A STORE without add finishes."""
        with m.If(self.clear_error):
            m.d.sync += hidx.eq(0)
            m.next = "DRAIN"

    def _ranges(self):
        """The LOAD or STORE ops checked against a depth: op -> (base field, depth)."""
        spec = self.spec
        out = {Op.LOAD_INPUT: ("addr", spec.input_depth),
               Op.LOAD_WEIGHT: ("waddr", spec.weight_depth),
               Op.STORE: ("oaddr", spec.output_depth)}
        if spec.per_word_channels:
            out |= {Op.LOAD_BIAS: ("addr", spec.chan_depth),
                    Op.LOAD_QUANT: ("addr", spec.chan_depth)}
        return out

    def _past_depth(self, m, hb):
        """At the header's last beat: a LOAD or STORE whose words run past its buffer (or channel
        memory), ``count > depth - base``, with the room ``depth - base`` latched at beat 4
        (hw/header.py; an add and a compare in the last beat's cycle took 6.7 ns on ECP5)."""
        f, last = hb.field, LAST
        op = f("op", 4)
        room = 0
        for o, (field, depth) in self._ranges().items():
            room = Mux(op == o, depth - f(field, 4), room)
        room = hb.latch(room, 4, signed(18), "room")
        count, op = f("count", last), f("op", last)
        return op.matches(*self._ranges()) & (count != 0) & (count > room)
