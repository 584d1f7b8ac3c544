"""Exact requantisation: onnxruntime's fp32 steps, reproduced bit for bit in integer logic.

onnxruntime (MLAS ``MlasRequantizeOutput``) turns an int32 accumulator into an int8/uint8 output with
fp32 arithmetic: ``f = fp32(acc)`` (round to nearest even once ``|acc| > 2**24``), ``f = f * scale``
(one fp32 multiply, round to nearest even), clamp to ``[qmin - zp, qmax - zp]``, round to nearest
even to an integer, ``+ zp``. sim/golden.py :func:`~sim.golden.requantize_fp32` is the reference;
this unit computes the same function without a floating-point unit, per lane, in
:data:`Fp32Requantizer.latency` registered stages:

1. ``a = |acc|``; the scale's exponent ``e`` and significand ``M = 1.frac`` (23 + 1 bits).
2. and 3. normalise ``a`` (shift left until its top bit is set: 2**k-bit steps, large ones in stage
   2, small in 3); ``ea`` = the position of ``a``'s leading one.
4. round the normalised ``a`` to 24 significant bits, ties to even (only when ``acc_bits > 24``; a
   carry out renormalises): ``fp32(acc) = ±Fm·2**(ea-23)`` with ``2**23 <= Fm < 2**24``, exactly
   the int-to-float conversion.
5. ``P = Fm·M``, exact in 48 bits, and ``u0 = 150 - ea - e``.
6. ``P`` lies in ``[2**46, 2**48)``: keep its top 24 bits (position 24 or 23, by bit 47) rounded to
   nearest even with guard and sticky bits — exactly the fp32 product ``±Pm·2**-u`` with
   ``u = u0 - P[47]`` (``Pm`` may round up to ``2**24``; its value is what matters).
7. ``q = RNE(Pm / 2**u)``, the integer rounding. ``Pm >= 2**23`` and ``Pm <= 2**24``, so
   ``u <= 22 - out_bits`` means ``|f| >= 2**(out_bits + 1)``: every clamp range (below) is
   narrower, so ``q`` saturates; ``u >= 25`` means ``|f| <= 1/2``, which rounds to 0 (an exact
   1/2 is a tie to even: 0). Only ``out_bits + 2`` shifts remain between: a small multiplexer.
8. ``t = zp ± q`` (the product's sign: the accumulator's xor the scale's).
9. clamp ``t`` to ``[qmin, qmax]``; the output is its low ``out_bits`` bits.

Why this equals the fp32 steps: stages 1–4 are the IEEE int-to-float conversion and stages 5–6 the
IEEE multiply of two normal numbers, for every product that is a normal fp32 number. The fp32
cases left out all give the same integer: an fp32 overflow (infinity) clamps to the top or bottom
exactly as a large ``q`` does; a product below 2**-126 (subnormal or zero in fp32) and a
subnormal or zero scale (``|f| < 2**acc_bits·2**-126 < 1/2``) round to 0. Clamping before the
integer rounding (onnxruntime) or after it (here) is the same, because the bounds are integers
and rounding is monotone. ``zp``, ``qmin`` and ``qmax`` are within ``[-2**(out_bits-1),
2**out_bits - 1]`` (an int8 or uint8 range for ``out_bits = 8``), so ``|qmax - zp|`` and
``|qmin - zp|`` are below ``2**(out_bits+1)``: the saturation of stage 7 is never visible.
A ReLU folded into the output range, or a Clip, is just a narrower ``[qmin, qmax]``.

Every input (accumulator, scale bits, zero point, clamp bounds) is sampled in the same cycle and
travels down the pipeline with its accumulator, so each word may have its own parameters. The
scale must not be NaN or infinite (the host refuses those; an exponent of 255 here acts as a
large finite scale).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Fp32Requantizer"]


class Fp32Requantizer(wiring.Component):
    """Per-lane fp32-exact requantiser (see the module docstring for the stages).

    Parameters
    ----------
    lanes : int
        Accumulators per cycle (one pipeline each).
    acc_bits : int
        Accumulator width (signed), 2 to 64.
    out_bits : int
        Output width, 2 to 16: outputs lie in ``[qmin, qmax]`` and leave as their low ``out_bits``
        bits (two's complement for a signed range, plain for an unsigned one).

    Members
    -------
    i : In(ArrayLayout(signed(acc_bits), lanes))
        The accumulators.
    scale : In(ArrayLayout(unsigned(32), lanes))
        Each lane's fp32 scale, as its IEEE-754 bits.
    zero_point, qmin, qmax : In(signed(out_bits + 1))
        Added after rounding; the clamp range (inclusive) of ``zero_point + q``.
    o : Out(ArrayLayout(unsigned(out_bits), lanes))
        The results, :attr:`latency` cycles after their inputs.
    """

    latency = 9

    def __init__(self, *, lanes: int, acc_bits: int, out_bits: int):
        for name, value, lo, hi in (("lanes", lanes, 1, 1024), ("acc_bits", acc_bits, 2, 64),
                                    ("out_bits", out_bits, 2, 16)):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")
        self._lanes, self._acc_bits, self._out_bits = lanes, acc_bits, out_bits
        super().__init__({
            "i": In(data.ArrayLayout(signed(acc_bits), lanes)),
            "scale": In(data.ArrayLayout(unsigned(32), lanes)),
            "zero_point": In(signed(out_bits + 1)),
            "qmin": In(signed(out_bits + 1)),
            "qmax": In(signed(out_bits + 1)),
            "o": Out(data.ArrayLayout(unsigned(out_bits), lanes)),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def acc_bits(self) -> int:
        return self._acc_bits

    @property
    def out_bits(self) -> int:
        return self._out_bits

    def elaborate(self, platform):
        m = Module()
        ob = self._out_bits
        # the zero point and clamp bounds travel beside the lanes (shared by all of them)
        zp, qmin, qmax = self.zero_point, self.qmin, self.qmax
        for k in range(1, self.latency):
            nzp = Signal(signed(ob + 1), name=f"s{k}_zp")
            nlo = Signal(signed(ob + 1), name=f"s{k}_qmin")
            nhi = Signal(signed(ob + 1), name=f"s{k}_qmax")
            m.d.sync += [nzp.eq(zp), nlo.eq(qmin), nhi.eq(qmax)]
            zp, qmin, qmax = nzp, nlo, nhi
            if k == 7:
                zp_at_8 = zp
        for j in range(self._lanes):
            out = self._lane(m, j, self.i[j], self.scale[j], zp_at_8, qmin, qmax)
            m.d.comb += self.o[j].eq(out)
        return m

    def _lane(self, m, j, acc, scale, zp, qmin, qmax):
        W, ob = self._acc_bits, self._out_bits

        def reg(shape, name, value):
            s = Signal(shape, name=f"{name}_{j}")
            m.d.sync += s.eq(value)
            return s

        # 1. magnitude and sign; scale fields
        s1_neg = reg(1, "s1_neg", acc[-1] ^ scale[31])
        s1_mag = reg(unsigned(W), "s1_mag", Mux(acc[-1], -acc, acc))
        s1_exp = reg(unsigned(8), "s1_exp", scale[23:31])
        s1_frac = reg(unsigned(23), "s1_frac", scale[:23])

        # 2./3. normalise: shift left by 2**k while the top 2**k bits are zero
        steps = [1 << k for k in reversed(range((W - 1).bit_length()))]
        split = (len(steps) + 1) // 2
        lz_bits = max(1, W.bit_length())

        def normalise(v, lz, ks):
            for k in ks:
                top_zero = v[W - k:] == 0
                v2 = Signal(unsigned(W), name=f"norm{k}_{j}")
                lz2 = Signal(unsigned(lz_bits), name=f"lz{k}_{j}")
                m.d.comb += [v2.eq(Mux(top_zero, v << k, v)), lz2.eq(lz + Mux(top_zero, k, 0))]
                v, lz = v2, lz2
            return v, lz

        v, lz = normalise(s1_mag, Const(0, lz_bits), steps[:split])
        s2_v = reg(unsigned(W), "s2_v", v)
        s2_lz = reg(unsigned(lz_bits), "s2_lz", lz)
        s2_zero = reg(1, "s2_zero", (s1_mag == 0) | (s1_exp == 0))
        s2_neg, s2_exp, s2_frac = (reg(s.shape(), n, s) for s, n in
                                   ((s1_neg, "s2_neg"), (s1_exp, "s2_exp"), (s1_frac, "s2_frac")))
        v, lz = normalise(s2_v, s2_lz, steps[split:])
        s3_v = reg(unsigned(W), "s3_v", v)
        s3_lz = reg(unsigned(lz_bits), "s3_lz", lz)
        s3_zero, s3_neg, s3_exp, s3_frac = (reg(s.shape(), n, s) for s, n in (
            (s2_zero, "s3_zero"), (s2_neg, "s3_neg"), (s2_exp, "s3_exp"), (s2_frac, "s3_frac")))

        # 4. round to 24 significant bits (fp32(acc)); ea = W - 1 - lz (+1 on a carry out)
        ea_shape = signed(lz_bits + 2)
        if W > 24:
            top = s3_v[W - 24:]
            guard = s3_v[W - 25]
            sticky = s3_v[:W - 25].any() if W > 25 else Const(0)
            rounded = Signal(unsigned(25), name=f"fround_{j}")
            m.d.comb += rounded.eq(top + (guard & (sticky | top[0])))
            fm = Mux(rounded[24], rounded[1:], rounded[:24])
            ea = (W - 1) - s3_lz + rounded[24]
        else:
            fm = Cat(Const(0, 24 - W), s3_v)
            ea = (W - 1) - s3_lz
        s4_fm = reg(unsigned(24), "s4_fm", fm)
        s4_ea = reg(ea_shape, "s4_ea", ea)
        s4_zero, s4_neg, s4_exp, s4_frac = (reg(s.shape(), n, s) for s, n in (
            (s3_zero, "s4_zero"), (s3_neg, "s4_neg"), (s3_exp, "s4_exp"), (s3_frac, "s4_frac")))

        # 5. the exact product of the significands; the exponent of its integer point
        s5_p = reg(unsigned(48), "s5_p", s4_fm * Cat(s4_frac, Const(1, 1)))
        s5_u0 = reg(signed(11), "s5_u0", 150 - s4_ea - s4_exp)
        s5_zero, s5_neg = reg(1, "s5_zero", s4_zero), reg(1, "s5_neg", s4_neg)

        # 6. round the product to 24 significant bits (the fp32 multiply)
        hi = s5_p[47]
        mant = Mux(hi, s5_p[24:48], s5_p[23:47])
        guard = Mux(hi, s5_p[23], s5_p[22])
        sticky = s5_p[:22].any() | (hi & s5_p[22])
        u = Signal(signed(12), name=f"u_{j}")
        m.d.comb += u.eq(s5_u0 - hi)
        s6_pm = reg(unsigned(25), "s6_pm", mant + (guard & (sticky | mant[0])))
        base = 23 - ob                       # the smallest shift that does not surely saturate
        s6_sat = reg(1, "s6_sat", ~s5_zero & (u < base))
        s6_zero = reg(1, "s6_zero", s5_zero | (u > 24))
        s6_sh = reg(unsigned((ob + 1).bit_length()), "s6_sh", (u - base)[:(ob + 1).bit_length()])
        s6_neg = reg(1, "s6_neg", s5_neg)

        # 7. round to an integer: q = RNE(Pm / 2**u), u = base + sh
        qw = ob + 3
        q0 = Signal(unsigned(qw), name=f"q0_{j}")
        g = Signal(name=f"g_{j}")
        st = Signal(name=f"st_{j}")
        with m.Switch(s6_sh):
            for sh in range(ob + 2):
                uu = base + sh
                with m.Case(sh):
                    m.d.comb += [q0.eq(s6_pm[uu:]), g.eq(s6_pm[uu - 1]),
                                 st.eq(s6_pm[:uu - 1].any())]
        big = 1 << (ob + 1)
        q = Mux(s6_sat, big, Mux(s6_zero, 0, q0 + (g & (st | q0[0]))))
        s7_q = reg(unsigned(qw), "s7_q", q)
        s7_neg = reg(1, "s7_neg", s6_neg)

        # 8. the zero point
        s8_t = reg(signed(qw + 2), "s8_t", Mux(s7_neg, zp - s7_q, zp + s7_q))

        # 9. clamp
        s9_o = reg(signed(ob + 1), "s9_o", Mux(s8_t < qmin, qmin, Mux(s8_t > qmax, qmax, s8_t)))
        return s9_o[:ob]
