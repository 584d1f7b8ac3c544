"""Whether a pooling STORE's windows tile its words, for the front end's refusal (FIELD).

gen/isa.py's STORE with ``pool`` reads ``count`` words as rows of ``pool_w`` words cut into
``pool_r`` × ``pool_s`` windows; sim/isa_model.check_command refuses one whose windows do not
tile its words: a zero ``pool_r``, ``pool_s`` or ``pool_w``, ``pool_w`` not a multiple of
``pool_s``, or ``count`` not a multiple of ``pool_r * pool_w``. The hardware must refuse the same
ones: the front end's window walk (hw/frontend.py ``_pool_walk``) would otherwise read words
outside the STORE's (past the buffer's depth) and end the STORE inside a window, its last output
beat without ``tlast``.

Restoring remainders a bit per cycle, most significant bit first (shift the next bit in,
subtract the divisor where it fits), from registers loaded as the header's last word arrives
(``start``): ``count = pool_w * Q + R`` a bit of ``count`` per cycle, each quotient bit of ``Q``
(registered) feeding ``Q mod pool_r`` a cycle later, so ``count`` is a multiple of
``pool_r * pool_w`` exactly when both remainders are zero, with no multiplier; beside them
``pool_w mod pool_s``. Every cycle is a compare and subtract of at most 16 bits between
registers: no long path, no divider, no DSP. :attr:`PoolCheck.latency` cycles after ``start``
(count's width and the quotient's one cycle, ``Spec.pool_check_latency``) ``busy`` falls and
``ok`` holds the verdict until the next ``start``.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.isa import HEADER_FIELDS

__all__ = ["PoolCheck"]

_W = {n: HEADER_FIELDS[n][1] for n in ("count", "pool_r", "pool_s", "pool_w")}


class PoolCheck(wiring.Component):
    """``start`` loads ``count``, ``pool_r``, ``pool_s`` and ``pool_w`` (a header's fields);
    ``latency`` cycles later ``busy`` is low and ``ok`` says whether the windows tile the words."""

    #: cycles from ``start`` until ``busy`` falls: one per bit of ``count``, and one for the
    #: last quotient bit to reach ``Q mod pool_r``
    latency = _W["count"] + 1

    def __init__(self):
        super().__init__({"start": In(1), **{n: In(w) for n, w in _W.items()},
                          "busy": Out(1), "ok": Out(1)})

    def elaborate(self, platform):
        m = Module()
        bits, last = _W["count"], self.latency
        n = Signal(range(last + 1), name="left")       # cycles left
        kr, ks, pw = (Signal(_W[f], name=f) for f in ("pool_r", "pool_s", "pool_w"))
        num = Signal(bits)                 # count, its next bit at the top
        rem = Signal(len(pw))              # count's bits so far mod pool_w
        qbit = Signal()                    # the quotient bit of the last step
        qrem = Signal(len(kr))             # the quotient's bits so far mod pool_r
        wnum = Signal(bits)                # pool_w (zero-extended: leading zeros first)
        wrem = Signal(len(ks))             # pool_w's bits so far mod pool_s
        nonzero = Signal()
        with m.If(self.start):
            m.d.sync += [n.eq(last), num.eq(self.count), wnum.eq(self.pool_w), rem.eq(0),
                         qbit.eq(0), qrem.eq(0), wrem.eq(0),
                         kr.eq(self.pool_r), ks.eq(self.pool_s), pw.eq(self.pool_w),
                         nonzero.eq((self.pool_r != 0) & (self.pool_s != 0)
                                    & (self.pool_w != 0))]
        with m.Else():
            with m.If(n != 0):
                m.d.sync += n.eq(n - 1)
            with m.If(n > 1):              # a bit of count (and of pool_w)
                t, wt = Cat(num[-1], rem), Cat(wnum[-1], wrem)
                m.d.sync += [num.eq(num << 1), wnum.eq(wnum << 1), qbit.eq(t >= pw),
                             rem.eq(Mux(t >= pw, t - pw, t)),
                             wrem.eq(Mux(wt >= ks, wt - ks, wt))]
            with m.If((n != 0) & (n < last)):   # the previous step's quotient bit
                qt = Cat(qbit, qrem)
                m.d.sync += qrem.eq(Mux(qt >= kr, qt - kr, qt))
        m.d.comb += [self.busy.eq(n != 0),
                     self.ok.eq(nonzero & (rem == 0) & (qrem == 0) & (wrem == 0))]
        return m
