"""Weight-stationary executor (``ws``): hw/array.py SystolicArray, double-buffered weights.

For each filter tap (r, s) of a COMPUTE:

* ``WLOAD`` reads the first tap's ``rows`` weight words (bottom row first) and shifts them into
  the PEs' shadow weights (hw/pe.py MacPE ``banks=2``), once every PE has taken the previous
  tap's weights from its shadow (``WB`` cycles into that tap); ``WSETTLE``: the last word
  shifts in;
* ``STREAM`` walks the pixels (one input vector per cycle, hw/walker.py) while the *loader*
  shifts the next tap's words in behind, starting ``WB`` cycles into the stream (when every PE
  has taken the current tap's weights from its shadow) and taking ``rows`` cycles. Each tap's
  vectors carry the flipped bank bit, which makes every PE take its shadow just before the first
  of them. The next tap streams as soon as its predecessor's pixels and its weights are done (a
  cycle after the last shift): a tap lasts ``max(pixels, WB + rows + 1)`` cycles (``WGAP``
  waits when a tap has few pixels), and taps follow each other without draining.
* after the last tap the executor goes back to ``XIDLE`` as soon as its last vector is issued,
  its sums draining meanwhile (``settle``); if a COMPUTE is queued when the last tap starts, it
  is chained on (one ``CHAIN`` cycle takes it from the queue): its first tap loads into the
  shadow weights behind the last tap, exactly like a next tap, so back-to-back COMPUTEs stream
  with no reload and no drain between them. Vectors come in the same pixel order, so an output
  word a COMPUTE accumulates onto was written before it reads it (the tap gap, or
  ``rows + pixels + 2 - RL`` cycles after an early start; a cycle less with the write-back's
  ``read_early``, still at least one as ``rows + 1 >= RL`` there).
"""

from amaranth.hdl import Assert, Mux, Signal

from gen.engines import Engine

from ..interfaces import PTR
from ..regs import delay
from .base import Executor

__all__ = ["WeightStationary"]


class WeightStationary(Executor):
    engine = Engine.WS
    first_state = "WLOAD"

    def wstep(self, c):
        return self.spec.rows

    def datapath(self, m, x):
        spec = self.spec
        rows, RL = spec.rows, spec.buffer_latency
        wk = x.walker
        WB = spec.flow.shadow_free(spec)        # rows + cols + RL
        x.bank, x.more = Signal(), Signal()
        # cycles since the current tap began; out of reset as if long ago (no tap in flight)
        since = Signal(range(WB + rows + 1), init=WB + rows)
        # since's registered flags: = 0; >= WB + rows (the next tap's weights are in, and
        # since stops); in [WB, WB + rows) (the loader's window)
        x.since0, x.wready, x.lwin = Signal(), Signal(init=1), Signal()
        lwin = x.lwin
        x.flip = Signal()       # a tap starts streaming next cycle: restart since, flip bank
        x.laddr = Signal(PTR)   # the loader's next weight word: the next tap's, bottom first
        x.wl = Signal(range(rows))              # WLOAD: words left
        x.more_now = Signal()                   # a tap follows the current one
        l_issue = Signal()
        # (more is 0 from the executor's return to XIDLE until the next tap starts, so the
        # loader needs no state: it runs while more and the window say so)
        m.d.comb += [x.more_now.eq(Mux(x.since0, ~wk.tap_last | self.compute.valid, x.more)),
                     l_issue.eq(x.more & lwin)]
        with m.If(x.flip):
            m.d.sync += [since.eq(0), x.since0.eq(1), x.wready.eq(0), lwin.eq(0),
                         x.bank.eq(~x.bank)]
        with m.Elif(~x.wready):
            m.d.sync += [since.eq(since + 1), x.since0.eq(0),
                         x.wready.eq(since == WB + rows - 1),
                         lwin.eq((since >= WB - 1) & (since < WB + rows - 1))]
        with m.If(x.x_issue | l_issue):
            m.d.sync += x.laddr.eq(x.laddr - 1)
        m.d.comb += [self.ibuf_rd.addr.eq(wk.pix), self.ibuf_rd.en.eq(x.issue),
                     self.wbuf_rd.en.eq(x.x_issue | l_issue), self.wbuf_rd.addr.eq(x.laddr),
                     self.array.a.as_value().eq(self.ibuf_rd.data),
                     self.array.w.as_value().eq(self.wbuf_rd.data),
                     self.array.w_shift.eq(delay(m, x.x_issue | l_issue, RL, "x_issue")),
                     # the bank bit of the vector at the array's input next cycle
                     self.array.sel_next.eq(delay(m, x.bank, RL - 1, "sel_next")),
                     self.activity.moves.eq(x.x_issue | l_issue)]
        if self.checks:
            m.d.sync += [Assert(x.since0 == (since == 0), "since0"),
                         Assert(x.wready == (since >= WB + rows), "wready"),
                         Assert(lwin == ((since >= WB) & (since < WB + rows)), "lwin"),
                         # a weight read now shifts into every PE's shadow RL cycles later
                         Assert(~(x.x_issue | l_issue) | (since >= WB),
                                "a weight shifts into a shadow a PE has not yet taken")]

    def on_start(self, m, x):
        # WLOAD reads the first tap's words, bottom row first
        m.d.sync += [x.laddr.eq(self.compute.payload.wbot), x.wl.eq(self.spec.rows - 1)]

    def states(self, m, x):
        spec = self.spec
        rows, L, RL = spec.rows, spec.array_latency, spec.buffer_latency
        wk, q_valid = x.walker, self.compute.valid
        with m.State("WLOAD"):
            # no word shifts into the shadows before the last tap's weights have left them
            # for every PE (since >= WB): a COMPUTE taken from XIDLE soon after a few-pixel
            # tap waits here (gen/model.py: the first tap no earlier than tl + shadow_free)
            with m.If(x.lwin | x.wready):
                m.d.comb += x.x_issue.eq(1)
                m.d.sync += x.wl.eq(x.wl - 1)
                with m.If(x.wl == 0):
                    m.next = "WSETTLE"
        with m.State("WSETTLE"):  # the last word shifts in; PEs take it next cycle
            m.d.comb += x.flip.eq(1)
            m.next = "STREAM"
        with m.State("CHAIN"):    # take the queued COMPUTE as the next tap
            if self.checks:
                m.d.sync += Assert(q_valid, "CHAIN without a queued COMPUTE")
            self.take(m, x)
            with m.If(x.wready):
                m.d.comb += x.flip.eq(1)
                m.next = "STREAM"
            with m.Else():
                m.next = "WGAP"
        with m.State("WGAP"):     # the next tap's weights are still loading
            with m.If(x.wready):
                m.d.comb += x.flip.eq(1)
                m.next = "STREAM"
        with m.State("STREAM"):   # one input vector per output pixel; sums go to opix
            m.d.comb += [x.issue.eq(1), x.tok_valid.eq(1), x.tok_addr.eq(x.opix),
                         x.tok_last.eq(wk.pix_last & wk.tap_last), wk.pixel.eq(1)]
            m.d.sync += x.opix.eq(x.opix + 1)
            with m.If(x.since0):    # the walker points at this tap
                # after the last tap comes the queued COMPUTE's first, if one is queued by
                # now: its weights load behind this tap like a tap's
                m.d.sync += [x.more.eq(~wk.tap_last | q_valid),
                             x.laddr.eq(Mux(wk.tap_last, self.compute.payload.wbot,
                                            wk.wtap + (2 * rows - 1)))]
            with m.If(wk.pix_last):
                with m.If(~wk.tap_last):
                    m.d.sync += x.opix.eq(x.xcmd.oaddr)
                    m.d.comb += wk.tap.eq(1)
                with m.If(wk.tap_last & x.more_now):   # chain the queued COMPUTE on
                    m.next = "CHAIN"
                with m.Elif(~x.more_now):   # drain while XIDLE takes the next
                    m.d.sync += x.settle.eq(L + RL + 3)
                    m.next = "XIDLE"
                with m.Elif(x.wready):   # weights ready: go on
                    m.d.comb += x.flip.eq(1)
                with m.Else():
                    m.next = "WGAP"
