"""Row-stationary executor (``rs``): hw/array.py RowStationaryArray (Eyeriss v1).

One pass for the whole filter window: ``FFILL`` multicasts the ``count``×``s`` weight words into
the rows' filter spads (lasting at least ``Spec.rs_setup_cycles`` while the PEs' tags settle;
skipped when the COMPUTE says ``keep``), ``IFILL`` walks the ``fill_h``×``fill_w`` input region
onto the diagonal ifmap bus, ``RCOMP`` steps every PE through ``for q, for s, for k`` (filter
``k`` of the psum spad), an output word leaving the array for every (q, k) at the last ``s``;
``DRAIN``. Fills land on the buses ``RL`` cycles after their buffer reads, with their spad
addresses; compute steps reach the array ``RL`` cycles after issue, like a buffer read, so the
token line is the same as the other engines'. It walks its own addresses (not hw/walker.py).
"""

from amaranth.hdl import Signal

from gen.engines import Engine

from .. import footprint as fp
from ..header import LAST
from ..interfaces import PTR
from ..regs import delay
from .base import Executor

__all__ = ["RowStationary"]


class RowStationary(Executor):
    engine = Engine.RS
    first_state = "FFILL"
    uses_walker = False
    whole = True

    @classmethod
    def compute_ok(cls, h):
        return super().compute_ok(h) & (h.count != 0) & (h.fill_h != 0) & (h.fill_w != 0)

    @classmethod
    def footprint_hi(cls, spec, h):
        return {"ibuf": h.addr + (h.fill_h - 1) * h.row_step + h.fill_w - 1,
                "wbuf": h.waddr + h.count * h.s - 1, "obuf": h.oaddr + h.q * h.count - 1}

    @classmethod
    def footprint_past(cls, spec, hb):
        room, f = fp.rooms(spec, hb), hb.field
        return (fp.rs_ibuf_past(spec, hb) | fp.count_past(hb, room["wbuf"], f("s", LAST))
                | fp.count_past(hb, room["obuf"], f("q", LAST)))

    def datapath(self, m, x):
        spec = self.spec
        RL = spec.buffer_latency
        x.pix, x.row_ptr = Signal(PTR), Signal(PTR)   # the input fill's address, row start
        x.qi, x.si = Signal(16), Signal(8)            # output column, filter column
        x.q_last, x.s_last = Signal(16), Signal(8)
        x.fdone, x.tcnt = Signal(), Signal(range(spec.rs_setup_cycles + 1))
        x.fy, x.fx, x.fy_last, x.fx_last = Signal(16), Signal(8), Signal(16), Signal(8)
        x.iidx, x.ibase = Signal(16), Signal(16)
        x.fidx = Signal(range(spec.filter_spad + 256))
        x.f_issue = Signal()
        x.rs_ctl = Signal.like(self.array.ctl)
        x.fcnt = Signal(range(spec.filter_spad + 1))
        c = x.xcmd
        fills = x.f_issue.as_unsigned() + (x.x_issue & (x.fy == 0)).as_unsigned()
        m.d.comb += [
            self.array.cfg_r.eq(c.r), self.array.cfg_d.eq(c.dilation), self.array.cfg_u.eq(c.stride),
            self.array.cfg_lane.eq(c.lane), self.array.cfg_p.eq(c.p),
            self.ibuf_rd.addr.eq(x.pix), self.ibuf_rd.en.eq(x.x_issue),
            self.wbuf_rd.en.eq(x.f_issue), self.wbuf_rd.addr.eq(c.waddr + x.fcnt),
            self.array.fw_en.eq(delay(m, x.f_issue, RL, "fw_en")),
            self.array.fw_addr.eq(delay(m, x.fcnt, RL, "fw_addr")),
            self.array.fw_data.as_value().eq(self.wbuf_rd.data),
            self.array.iw_en.eq(delay(m, x.x_issue, RL, "iw_en")),
            self.array.iw_addr.eq(delay(m, x.fx, RL, "iw_addr")),
            self.array.iw_y.eq(delay(m, x.fy, RL, "iw_y")),
            self.array.iw_data.as_value().eq(self.ibuf_rd.data),
            self.array.ctl.eq(delay(m, x.rs_ctl, RL, "rs_ctl")),
            # every PE's filter spad takes a filter word, its ifmap spad a row segment (one per
            # fill column), and a psum row moves down per output word
            self.activity.fills.eq(fills), self.activity.moves.eq(fills + x.tok_valid),
        ]

    def taking(self, m, x, q):
        c = q.cmd
        m.d.sync += [x.si.eq(0), x.qi.eq(0), x.row_ptr.eq(c.addr), x.pix.eq(c.addr),
                     x.q_last.eq(c.q - 1), x.s_last.eq(c.s - 1),
                     x.lin.eq(0), x.lin_last.eq(c.count - 1), x.fcnt.eq(0), x.fdone.eq(0),
                     x.tcnt.eq(0), x.fy.eq(0), x.fx.eq(0), x.fy_last.eq(c.fill_h - 1),
                     x.fx_last.eq(c.fill_w - 1), x.iidx.eq(0), x.ibase.eq(0), x.fidx.eq(0)]

    def on_start(self, m, x):
        with m.If(self.compute.payload.cmd.keep):   # the filter spads hold its filters
            m.next = "IFILL"

    def states(self, m, x):
        spec, c = self.spec, x.xcmd
        setup = spec.rs_setup_cycles
        with m.State("FFILL"):     # filter words multicast to the rows' filter spads
            m.d.comb += x.f_issue.eq(~x.fdone)
            with m.If(x.tcnt != setup - 1):
                m.d.sync += x.tcnt.eq(x.tcnt + 1)
            f_end = Signal()
            m.d.comb += f_end.eq(x.fdone | ((x.lin == x.lin_last) & (x.si == x.s_last)))
            with m.If(~x.fdone):
                m.d.sync += x.fcnt.eq(x.fcnt + 1)
                with m.If(x.si == x.s_last):
                    m.d.sync += [x.si.eq(0), x.lin.eq(x.lin + 1)]
                with m.Else():
                    m.d.sync += x.si.eq(x.si + 1)
                with m.If(f_end):
                    m.d.sync += [x.fdone.eq(1), x.si.eq(0), x.lin.eq(0)]
            with m.If(f_end & (x.tcnt >= setup - 1)):
                m.next = "IFILL"
        with m.State("IFILL"):     # the input region onto the diagonal ifmap bus
            m.d.comb += x.x_issue.eq(1)
            with m.If(x.fx == x.fx_last):
                m.d.sync += [x.fx.eq(0), x.fy.eq(x.fy + 1), x.row_ptr.eq(x.row_ptr + c.row_step),
                             x.pix.eq(x.row_ptr + c.row_step)]
                with m.If(x.fy == x.fy_last):
                    m.next = "RCOMP"
            with m.Else():
                m.d.sync += [x.fx.eq(x.fx + 1), x.pix.eq(x.pix + 1)]
        with m.State("RCOMP"):     # for q, for s, for k: one MAC step of every PE
            k_last, s_end = x.lin == x.lin_last, x.si == x.s_last
            ctl = x.rs_ctl
            m.d.comb += [x.issue.eq(1), ctl.valid.eq(1), ctl.first.eq(x.si == 0),
                         ctl.last.eq(s_end), ctl.fidx.eq(x.fidx), ctl.iidx.eq(x.iidx),
                         ctl.k.eq(x.lin), x.tok_valid.eq(s_end), x.tok_addr.eq(x.opix),
                         x.tok_chan.eq(x.lin),
                         x.tok_last.eq(s_end & k_last & (x.qi == x.q_last))]
            with m.If(s_end):
                m.d.sync += x.opix.eq(x.opix + 1)
            m.d.sync += [x.lin.eq(x.lin + 1), x.fidx.eq(x.fidx + c.s)]
            with m.If(k_last):
                m.d.sync += [x.lin.eq(0), x.si.eq(x.si + 1), x.fidx.eq(x.si + 1),
                             x.iidx.eq(x.iidx + c.dilation)]
                with m.If(s_end):
                    m.d.sync += [x.si.eq(0), x.fidx.eq(0), x.qi.eq(x.qi + 1),
                                 x.ibase.eq(x.ibase + c.stride), x.iidx.eq(x.ibase + c.stride)]
                    with m.If(x.qi == x.q_last):
                        m.d.sync += [x.drain.eq(spec.array_latency + spec.buffer_latency + 2),
                                     x.opix.eq(c.oaddr)]
                        m.next = "DRAIN"
        self.drain_state(m, x, once=True)
