"""Output-stationary executor (``os``): hw/array.py OutputStationaryArray.

For each filter tap: ``FILL`` reads the block's pixel words (at most ``rows``, hw/walker.py) into
the *transposer*, ``OSTREAM`` presents lane ``c`` of every pixel beside weight word ``c`` for
``c`` in 0..rows-1 while the PEs accumulate. After the last tap ``OWAIT`` waits until every PE
holds its final sum, ``ODRAIN`` shifts the ``rows`` results out (bottom row first: pixel
``rows - 1`` down to pixel 0), issuing their tokens as they leave, and ``OTAIL`` waits for the
last writes. The tokens need no array delay (``token_delay`` 0) and cover the whole window.
"""

from amaranth.hdl import Cat, Mux, Signal

from gen.engines import Engine

from ..regs import delay
from .base import Executor

__all__ = ["OutputStationary"]


class OutputStationary(Executor):
    engine = Engine.OS
    first_state = "FILL"
    output_words = "count"
    whole = True

    @property
    def token_delay(self):
        return 0

    def wstep(self, c):
        return self.spec.rows

    def taking(self, m, x, q):
        m.d.sync += x.lin.eq(0)

    def datapath(self, m, x):
        # the transposer: the block's pixel words (lanes = input channels) are written into its
        # rows as they arrive; each stream cycle every row hands its lowest lane to the array
        # and shifts down one lane
        spec = self.spec
        rows, ab, RL = spec.rows, spec.act_bits, spec.buffer_latency
        tp = [Signal(rows * ab, name=f"tp{i}") for i in range(rows)]
        fidx = Signal(range(rows + 1))
        x.fill_first, x.tok_step = Signal(), Signal()   # a drain step starts
        fill = delay(m, Cat(x.x_issue, x.fill_first), RL, "fill")
        a_valid = delay(m, x.issue, RL, "a_valid")
        with m.If(fill[0]):
            for i in range(rows):
                with m.If(Mux(fill[1], 0, fidx) == i):
                    m.d.sync += tp[i].eq(self.ibuf_rd.data)
            m.d.sync += fidx.eq(Mux(fill[1], 1, fidx + 1))
        with m.If(a_valid):
            for i in range(rows):
                m.d.sync += tp[i].eq(tp[i] >> ab)
                m.d.comb += self.array.a[i].eq(tp[i][:ab])
            m.d.comb += self.array.b.as_value().eq(self.wbuf_rd.data)
        m.d.comb += [self.ibuf_rd.addr.eq(x.walker.pix), self.ibuf_rd.en.eq(x.x_issue),
                     self.wbuf_rd.addr.eq(x.walker.wtap + x.lin), self.wbuf_rd.en.eq(x.issue),
                     # the drain step reaches the array with the write of the word it drains
                     self.array.drain.eq(delay(m, x.tok_step, RL, "drain_step")),
                     self.activity.moves.eq(x.tok_step)]

    def states(self, m, x):
        spec, wk = self.spec, x.walker
        rows, L, RL = spec.rows, spec.array_latency, spec.buffer_latency
        with m.State("FILL"):
            m.d.comb += [x.x_issue.eq(1), x.fill_first.eq(wk.origin), wk.pixel.eq(1)]
            with m.If(wk.pix_last):
                m.next = "OSTREAM"
        with m.State("OSTREAM"):
            m.d.comb += x.issue.eq(1)
            m.d.sync += x.lin.eq(x.lin + 1)
            with m.If(x.lin == rows - 1):
                m.d.sync += x.lin.eq(0)
                with m.If(wk.tap_last):
                    m.d.sync += x.drain.eq(L - 1)
                    m.next = "OWAIT"
                with m.Else():
                    m.d.comb += wk.tap.eq(1)
                    m.next = "FILL"
        with m.State("OWAIT"):     # until every PE holds its final sum
            m.d.sync += x.drain.eq(x.drain - 1)
            with m.If(x.drain == 0):
                m.d.sync += x.lin.eq(rows - 1)
                m.next = "ODRAIN"
        with m.State("ODRAIN"):    # bottom row first: pixel rows-1 down to pixel 0
            m.d.comb += [x.tok_step.eq(1), x.tok_valid.eq(x.lin < x.xcmd.count),
                         x.tok_last.eq(x.lin == 0), x.tok_addr.eq(x.xcmd.oaddr + x.lin)]
            m.d.sync += x.lin.eq(x.lin - 1)
            with m.If(x.lin == 0):
                m.d.sync += x.drain.eq(RL + 1)
                m.next = "OTAIL"
        with m.State("OTAIL"):     # the last results are written
            m.d.sync += x.drain.eq(x.drain - 1)
            with m.If(x.drain == 0):
                m.next = "XIDLE"
