"""No-local-reuse executor (``nlr``): hw/array.py AdderTreeArray.

For each filter tap: ``STREAM`` walks the pixels (hw/walker.py), reading the tap's
``rows``×``cols`` weight word with every input vector (nothing is held in the PEs), then ``DRAIN``
waits for the adder trees' last sums.
"""


from gen.engines import Engine

from .base import Executor

__all__ = ["NoLocalReuse"]


class NoLocalReuse(Executor):
    engine = Engine.NLR
    first_state = "STREAM"
    tap_words = 1

    def wstep(self, c):
        return 1

    def taking(self, m, x, q):
        m.d.sync += x.lin.eq(0)

    def datapath(self, m, x):
        m.d.comb += [self.ibuf_rd.addr.eq(x.walker.pix), self.ibuf_rd.en.eq(x.issue),
                     self.wbuf_rd.addr.eq(x.walker.wtap + x.lin), self.wbuf_rd.en.eq(x.issue),
                     self.array.a.as_value().eq(self.ibuf_rd.data),
                     self.array.w.as_value().eq(self.wbuf_rd.data)]

    def states(self, m, x):
        spec, wk = self.spec, x.walker
        with m.State("STREAM"):   # one input vector per output pixel; sums go to opix
            m.d.comb += [x.issue.eq(1), x.tok_valid.eq(1), x.tok_addr.eq(x.opix),
                         x.tok_last.eq(wk.pix_last & wk.tap_last), wk.pixel.eq(1)]
            m.d.sync += x.opix.eq(x.opix + 1)
            with m.If(wk.pix_last):
                m.d.sync += [x.opix.eq(x.xcmd.oaddr),
                             x.drain.eq(spec.array_latency + spec.buffer_latency + 2)]
                m.d.comb += wk.tap.eq(1)
                m.next = "DRAIN"
        self.drain_state(m, x, once=False)
