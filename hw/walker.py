"""The pixel walker: input-buffer addresses of a COMPUTE tile's output pixels, tap by tap.

For filter tap (r, s) and output pixel (p, q) of the tile, the input word is
``addr + p*row_step + r*dil_step + q*stride + s*dilation`` (gen/isa.py COMPUTE). The walker keeps
it in incremental pointers (no multiplier: the tiler sends ``row_step = stride*pitch`` and
``dil_step = dilation*pitch``): ``r_base`` at (0, 0) of tap (r, 0), ``tap_base`` at (0, 0) of tap
(r, s), ``row_ptr`` at (p, 0), ``pix`` at (p, q). ``wtap`` is the weight address of the tap,
stepping by ``wstep`` words per tap (sampled with ``start``).

Strobes: ``start`` sets the walker on the COMPUTE ``cmd`` at pixel (0, 0) of tap (0, 0); ``pixel``
moves to the next pixel of the tile; ``tap`` moves to pixel (0, 0) of the next tap (it overrides
``pixel``). ``pix_last`` and ``tap_last`` say the walker is at the tile's last pixel and at the
last tap. They, and the flags they are computed from, are registered, computed a cycle ahead from
the walker's position, so an executor's decisions do not wait for 16-bit comparisons; with
``checks`` a simulation assertion ties each to the comparison it stands for.
"""

from amaranth.hdl import Assert, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .interfaces import PTR, ComputeLayout

__all__ = ["PixelWalker"]


class PixelWalker(wiring.Component):
    start: In(1)
    cmd: In(ComputeLayout)
    wstep: In(17)
    pixel: In(1)
    tap: In(1)
    pix: Out(PTR)
    wtap: Out(PTR)
    pix_last: Out(1)
    tap_last: Out(1)
    first_tap: Out(1)    # at tap (0, 0)
    origin: Out(1)       # at pixel (0, 0)
    ri: Out(9)

    def __init__(self, *, checks: bool = False):
        self.checks = checks
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        c = self.cmd.cmd
        pi, qi = Signal(16), Signal(16)   # output pixel within the tile
        ri, si = self.ri, Signal(8)       # filter tap
        r_base, tap_base, row_ptr, pix = Signal(PTR), Signal(PTR), Signal(PTR), self.pix
        wtap, wstep = self.wtap, Signal(17)
        row_step, dil_step, stride, dilation = (Signal.like(c.row_step), Signal.like(c.dil_step),
                                                Signal.like(c.stride), Signal.like(c.dilation))
        # loop bounds minus one, and minus three, latched at start
        p_last, q_last, s_last, r_last = Signal(16), Signal(16), Signal(8), Signal(8)
        pm3, qm3, sm3, rm3 = Signal(16), Signal(16), Signal(8), Signal(8)
        # bounds compared with 1 and 2 (from the queue), latched at start
        p_one, p_two, q_one, q_two, s_one, s_two = (Signal(name=n) for n in (
            "p_one", "p_two", "q_one", "q_two", "s_one", "s_two"))
        # where the walker is: q at its last / last but one, p likewise; s at its last / last but
        # one, r likewise
        qe, qe1, pe, pe1 = Signal(), Signal(), Signal(), Signal()
        s_end, sl1, rl0, rl1 = Signal(), Signal(), Signal(), Signal()
        pix_last, tap_last = self.pix_last, self.tap_last
        m.d.comb += [self.first_tap.eq((ri == 0) & (si == 0)),
                     self.origin.eq((pi == 0) & (qi == 0))]

        with m.If(self.start):
            one, two = self.cmd.one, self.cmd.two
            m.d.sync += [
                ri.eq(0), si.eq(0), r_base.eq(c.addr), tap_base.eq(c.addr), row_ptr.eq(c.addr),
                pix.eq(c.addr), pi.eq(0), qi.eq(0), wtap.eq(c.waddr), wstep.eq(self.wstep),
                row_step.eq(c.row_step), dil_step.eq(c.dil_step), stride.eq(c.stride),
                dilation.eq(c.dilation),
                p_last.eq(c.p - 1), q_last.eq(c.q - 1), s_last.eq(c.s - 1), r_last.eq(c.r - 1),
                pm3.eq(c.p - 3), qm3.eq(c.q - 3), sm3.eq(c.s - 3), rm3.eq(c.r - 3),
                q_one.eq(one.q), q_two.eq(two.q), p_one.eq(one.p), p_two.eq(two.p),
                s_one.eq(one.s), s_two.eq(two.s),
                pix_last.eq(one.p & one.q), qe.eq(one.q), qe1.eq(two.q), pe.eq(one.p),
                pe1.eq(two.p), tap_last.eq(one.r & one.s), s_end.eq(one.s), sl1.eq(two.s),
                rl0.eq(one.r), rl1.eq(two.r)]
        with m.Elif(self.tap):   # the next tap, the walker rewound onto its pixel (0, 0)
            nb = Signal(PTR)
            m.d.comb += nb.eq(Mux(s_end, r_base + dil_step, tap_base + dilation))
            with m.If(s_end):
                m.d.sync += [si.eq(0), ri.eq(ri + 1), r_base.eq(nb), tap_last.eq(rl1 & s_one),
                             s_end.eq(s_one), sl1.eq(s_two), rl0.eq(rl1), rl1.eq(ri == rm3)]
            with m.Else():
                m.d.sync += [si.eq(si + 1), tap_last.eq(rl0 & sl1), s_end.eq(sl1),
                             sl1.eq(si == sm3)]
            m.d.sync += [tap_base.eq(nb), row_ptr.eq(nb), pix.eq(nb), pi.eq(0), qi.eq(0),
                         wtap.eq(wtap + wstep),
                         pix_last.eq(p_one & q_one), qe.eq(q_one), qe1.eq(q_two), pe.eq(p_one),
                         pe1.eq(p_two)]
        with m.Elif(self.pixel):
            with m.If(qe):
                m.d.sync += [qi.eq(0), pi.eq(pi + 1), row_ptr.eq(row_ptr + row_step),
                             pix.eq(row_ptr + row_step),
                             pix_last.eq(pe1 & q_one), qe.eq(q_one), qe1.eq(q_two), pe.eq(pe1),
                             pe1.eq(pi == pm3)]
            with m.Else():
                m.d.sync += [qi.eq(qi + 1), pix.eq(pix + stride),
                             pix_last.eq(pe & qe1), qe.eq(qe1), qe1.eq(qi == qm3)]

        if self.checks:   # each registered flag equals the comparison it stands for
            live = Signal()   # (from the first start on)
            with m.If(self.start):
                m.d.sync += live.eq(1)
            eqs = {"qe": (qe, qi == q_last), "qe1": (qe1, qi + 1 == q_last),
                   "pe": (pe, pi == p_last), "pe1": (pe1, pi + 1 == p_last),
                   "pix_last": (pix_last, (qi == q_last) & (pi == p_last)),
                   "s_end": (s_end, si == s_last), "sl1": (sl1, si + 1 == s_last),
                   "rl0": (rl0, ri == r_last), "rl1": (rl1, ri + 1 == r_last),
                   "tap_last": (tap_last, (ri == r_last) & (si == s_last)),
                   "p_one": (p_one, p_last == 0), "p_two": (p_two, p_last == 1),
                   "q_one": (q_one, q_last == 0), "q_two": (q_two, q_last == 1),
                   "s_one": (s_one, s_last == 0), "s_two": (s_two, s_last == 1)}
            m.d.sync += [Assert(~live | (flag == value), f"walker flag {name}")
                         for name, (flag, value) in eqs.items()]
        return m
