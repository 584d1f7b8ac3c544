"""Input-stationary executor (``is``): hw/array.py SystolicArray with ``preload="right"``.

For each filter tap: ``PRELOAD`` walks the block's pixels (at most ``cols``, hw/walker.py) into
the rows' shift chains (the stationary operand), ``KSTREAM`` streams ``count`` weight words past
them (one per output channel; output word ``oaddr + k`` holds channel ``k``), ``DRAIN`` waits
for the last sums before the next tap preloads.
"""


from gen.engines import Engine

from ..regs import delay
from .base import Executor

__all__ = ["InputStationary"]


class InputStationary(Executor):
    engine = Engine.IS
    first_state = "PRELOAD"
    tap_words = output_words = "count"

    @classmethod
    def compute_ok(cls, h):
        return super().compute_ok(h) & (h.count != 0)

    def wstep(self, c):
        return c.count

    def taking(self, m, x, q):
        m.d.sync += [x.lin.eq(0), x.lin_last.eq(q.cmd.count - 1)]

    def datapath(self, m, x):
        m.d.comb += [self.ibuf_rd.addr.eq(x.walker.pix), self.ibuf_rd.en.eq(x.x_issue),
                     self.wbuf_rd.addr.eq(x.walker.wtap + x.lin), self.wbuf_rd.en.eq(x.issue),
                     self.array.a.as_value().eq(self.wbuf_rd.data),
                     self.array.w.as_value().eq(self.ibuf_rd.data),
                     self.array.w_shift.eq(delay(m, x.x_issue, self.spec.buffer_latency, "x_issue")),
                     self.activity.moves.eq(x.x_issue)]

    def states(self, m, x):
        spec, wk = self.spec, x.walker
        with m.State("PRELOAD"):
            m.d.comb += [x.x_issue.eq(1), wk.pixel.eq(1)]
            with m.If(wk.pix_last):
                m.next = "KSTREAM"
        with m.State("KSTREAM"):
            m.d.comb += [x.issue.eq(1), x.tok_valid.eq(1), x.tok_addr.eq(x.opix),
                         x.tok_chan.eq(x.lin), x.tok_last.eq((x.lin == x.lin_last) & wk.tap_last)]
            m.d.sync += [x.opix.eq(x.opix + 1), x.lin.eq(x.lin + 1)]
            with m.If(x.lin == x.lin_last):
                m.d.sync += [x.lin.eq(0), x.opix.eq(x.xcmd.oaddr),
                             x.drain.eq(spec.array_latency + spec.buffer_latency + 2)]
                m.d.comb += wk.tap.eq(1)
                m.next = "DRAIN"
        self.drain_state(m, x, once=False)
