"""onnxruntime's QLinearAdd, exact, per lane: two fp32 fused multiply-adds in integer logic.

MLAS's AVX2 QLinearAdd (sim/golden.py :func:`~sim.golden.qadd_int` is the reference) turns two
quantized inputs ``A``, ``B`` into the output with fp32 parameters the host computes (gen/quant.py
:func:`~gen.quant.add_params`: ``rA = fp32(sa/sc)``, ``rB = fp32(sb/sc)``,
``fixed = fp32(zc) - fma32(rA, za, fp32(rB·zb))``)::

    t = fma32(B, rB, fixed)        # one fp32 rounding, to nearest even
    s = fma32(A, rA, t)            # likewise
    y = clip(rint(s), qmin, qmax)  # rint: half to even; a folded ReLU is qmin = zc

This unit computes the same ``y`` without a floating-point unit, per lane, in
:attr:`ResidualAdd.latency` registered stages. Both FMAs are one exact datapath ("the core"):
the product ``P = |k|·M`` (``k`` the integer input, ``M = 1.frac`` the 24-bit significand of
``r``) is exact in ``PW = bits + 24`` bits, and the addend ``F`` (24-bit significand, 0 for a
zero) is placed beside it in a window ``E`` of ``WE = PW + 29`` bits (``bits = 8``: 61)::

    E bit:   0        1..2    3 .. PW+2     PW+3..PW+4   PW+5 .. PW+28
             sticky   guard   P (exact)     gap (zero)   F before its shift

``F`` shifts right by ``sh = (PW + 2) - e_F + e_r`` (the biased exponents of the addend and of
``r``) in two stages: by ``sh mod 8``, then by 8s; a negative ``sh`` (the clamp at 0) shifts by
0, one of 64 or more leaves only the sticky bit. ``F``'s bits shifted below bit 1 are ORed into
the sticky bit 0, computed beside the shifter as "``F``'s trailing zeros < ``sh - PW - 4``". Then
``E``'s exponent (the weight of bit 0) is ``e_r - 153`` (unbiased), or ``e_F - 155 - PW`` where the
clamp at 0 cut the shift. The signed sum ``X ± F`` (``X = P·8``) takes two carry chains on
registers (``F ± X`` and ``F + ~X``, whose complement is ``X - F``), the magnitude picked by the
sign (``WE + 1`` bits); it is normalised (shifted left by 16s, 4s, then 1s: the count of all-zero
groups at its top, 0 to 3, a stage each) and rounded to 24 bits, ties to even, with a guard bit
and the sticky OR of everything below.

Why the window's sum rounds to the exact sum's fp32 rounding:

* No bit is lost unless ``F``'s LSB falls below bit 1 (``sh >= PW + 5``). Then ``F < 2**24`` in
  ``E``'s units while ``P·8 >= 2**26`` (``k != 0``, ``M >= 2**23``), so the sum is at least
  ``2**25``, its 24-bit result's LSB is at bit 2 or higher and its guard bit at 1 or higher. The
  sum's true value and the window's (the lost bits replaced by one sticky half-unit at bit 0) lie
  strictly between the same two consecutive integers of bit 1's weight, and every rounding
  boundary at that resolution or coarser is such an integer: both round the same.
* The clamp at 0 (``F`` more than ``PW + 2`` bits above ``P``): in the window ``P·8 < 2**(PW+3)``
  sits at least two bits below ``F``'s LSB, as it does (further below) in the true sum. Adding
  ``P`` leaves a guard bit of 0 (round down to ``F``); subtracting it leaves a value within a
  quarter of ``F``'s ulp below ``F`` (round up to ``F``, also when ``F = 2**23`` and the result's
  ulp halves). Both sums round to ``F``, so the result is ``F`` with ``F``'s exponent.
* ``k = 0``: the sum is ``F`` exactly. The outer FMA forces ``sh = 0`` (``F`` whole in the
  window, ``E``'s exponent from ``F``); the inner one shares its shifter across lanes, so its
  result is replaced by ``fixed`` itself. A zero addend (``fixed`` 0, or ``t`` 0) contributes no
  bits and the window keeps ``P``'s exponent. A zero sum gives ``t = 0``, or ``y`` = the clamp
  of 0.
* The sum is below ``2**(WE+1)``, so the magnitude never overflows.

The outer FMA's result ``round24(s) = Sm·2**-u`` (``2**23 <= Sm <= 2**24``) is then rounded to an
integer as hw/requant.py rounds its product: ``u < 24 - bits`` means ``|round24(s)| >= 2**bits``,
beyond every clamp bound, so it saturates; ``u > 24`` rounds to 0; the ``bits + 1`` shifts between
are a multiplexer, each shift's sticky bit precomputed beside ``Sm``'s carry chain. Rounding
``round24(s)`` and not ``s`` reproduces onnxruntime's double rounding: an ``s`` within half an ulp
of ``k + 1/2`` becomes the tie ``k + 1/2`` and goes to the even integer.

Domain (gen/quant.py :func:`~gen.quant.add_params_ok` checks it on the host, which keeps any other
Add in software; nothing is checked here): ``rA`` and ``rB`` normal fp32 with ``|r|`` in
``[2**-60, 2**60]``, ``fixed`` zero or normal with ``|fixed|`` in ``[2**-60, 2**60]``, inputs and
bounds in ``[-2**(bits-1), 2**bits - 1]``. Then the exact inner sum is 0 or a multiple of
``2**-83`` below ``2**69``: ``t`` is 0 or a normal fp32 number, and the datapath needs no
subnormal, infinite or NaN case.

Stages (inner FMA ``t``, outer FMA ``s``; the shared column is computed once for all lanes):

====  =====================================  ==========================================
 #    per lane                               shared
====  =====================================  ==========================================
1     ``|A|``, ``|B|``, signs, zero flags     fields of ``rA``, ``rB``, ``fixed``; ``sh``
2     the DSPs' operand registers             ``fixed`` shifted by ``sh mod 8``; its
                                             trailing zeros; ``E``'s exponent
3     ``|B|·Mb``: two 12-bit partial          ``fixed`` shifted by 8s, the sticky bit
      products (a DSP each)
4     ``X = |B|·Mb·8`` (inverted to
      subtract); the lane's copy of the
      aligned ``fixed``
5     ``X ± F``, its magnitude and sign
6-8   normalise (by 16s | 4s | 1s)
9     24-bit significand, round-up bit;
      exponents for ``t`` and for the outer
      shift
10    round: ``t``'s significand
11    ``t`` renormalised (or ``fixed`` when
      ``B = 0``); the outer ``sh``
12    ``|A|·Ma`` partial products; ``t``
      shifted by ``sh mod 8``, its trailing
      zeros; ``E``'s exponent
13    ``X = |A|·Ma·8``; ``t`` shifted by 8s
14    ``X ± t``
15-17 normalise
18    24-bit significand, round-up bit, ``u``
19    ``Sm``, sticky bits per shift, saturate
20    integer and its round-up bit
21    ``y = ±q`` (or ±2**bits, or 0)
22    clamp to ``[qmin, qmax]``
====  =====================================  ==========================================

No stage holds more than a DSP, a carry chain with a multiplexer after it, three levels of
shift multiplexers, or one normalisation step. Every input is sampled in the same cycle and its
parameters travel with its word, so each cycle may carry different parameters; the registers
have no reset, so the ones around the multipliers fold into the ECP5 DSPs' own (fpga/absorb.py).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .regs import less

__all__ = ["ResidualAdd"]


class _Pipe:
    """One pipeline's registers (a lane's, or the shared parameters'), stage by stage."""

    def __init__(self, m, tag: str):
        self.m, self.tag, self.stage = m, tag, 0

    def __call__(self, **values) -> dict:
        """Register ``values`` (name -> value, or (shape, value)) as the next stage."""
        self.stage += 1
        out = {}
        for name, v in values.items():
            shape, v = v if isinstance(v, tuple) else (Value.cast(v).shape(), v)
            r = Signal(shape, name=f"s{self.stage}_{name}{self.tag}", reset_less=True)
            self.m.d.sync += r.eq(v)
            out[name] = r
        return out


def _trailing_zeros(v):
    """The number of trailing zero bits of ``v`` (``len(v)`` when it is 0)."""
    tz = Const(len(v), range(len(v) + 1))
    for i in reversed(range(len(v))):
        tz = Mux(v[i], i, tz)
    return tz


class ResidualAdd(wiring.Component):
    """Per-lane exact QLinearAdd (see the module docstring for the arithmetic and the stages).

    Parameters
    ----------
    lanes : int
        Words per cycle (one pipeline each).
    bits : int
        Lane width of the quantized values, 2 to 10: inputs and outputs lie in
        ``[-2**(bits-1), 2**bits - 1]`` (int8 or uint8 for 8), as ``signed(bits + 1)``.

    Members
    -------
    a, b : In(ArrayLayout(signed(bits + 1), lanes))
        The Add's inputs ``A`` (the conv's requantised output) and ``B`` (the residual).
    ra, rb, fixed : In(unsigned(32))
        ``rA``, ``rB``, ``fixed`` as IEEE-754 fp32 bits (gen/quant.py :func:`add_params_ok`).
    qmin, qmax : In(signed(bits + 1))
        The output's clamp range (inclusive).
    o : Out(ArrayLayout(signed(bits + 1), lanes))
        The outputs, :attr:`latency` cycles after their inputs.
    held : bool
        The parameters (``ra``, ``rb``, ``fixed``, ``qmin``, ``qmax``) hold still while any word
        is in the pipeline (as a STORE's do in the store unit, like hw/requant.py's ``held``):
        the shared stages 1-3 compute from them beside the first word and every later stage
        reads stage 3's registers instead of copies carried down the pipeline (about 1,000
        flip-flops fewer). Default: each word may have its own parameters.
    """

    latency = 22

    def __init__(self, *, lanes: int, bits: int = 8, held: bool = False):
        for name, value, lo, hi in (("lanes", lanes, 1, 1024), ("bits", bits, 2, 10)):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")
        self._lanes, self._bits = lanes, bits
        self.held = bool(held)
        lane = signed(bits + 1)
        super().__init__({
            "a": In(data.ArrayLayout(lane, lanes)),
            "b": In(data.ArrayLayout(lane, lanes)),
            "ra": In(unsigned(32)),
            "rb": In(unsigned(32)),
            "fixed": In(unsigned(32)),
            "qmin": In(lane),
            "qmax": In(lane),
            "o": Out(data.ArrayLayout(lane, lanes)),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def bits(self) -> int:
        return self._bits

    # the window's geometry (module docstring)
    @property
    def _pw(self) -> int:
        return self._bits + 24

    @property
    def _we(self) -> int:
        return self._pw + 29

    def elaborate(self, platform):
        m = Module()
        shared = self._shared(m)
        for j in range(self._lanes):
            m.d.comb += self.o[j].eq(self._lane(m, j, shared))
        return m

    # -- the core's pieces, used by both FMAs ------------------------------------------------

    def _align_fine(self, f, sh_raw, force, fzero):
        """The alignment's first stage: ``F`` shifted right by ``sh mod 8``, the coarse shift
        ``sh // 8`` (both 0 where the clamp at 0 cuts the shift, or ``force``), whether the shift
        exceeds the window (``F`` all sticky), and for the sticky bit's compare (module
        docstring) ``F``'s trailing zeros and ``sh - PW - 4``."""
        pw = self._pw
        low = force | sh_raw[-1]
        return {"fine": (unsigned(31), Cat(Const(0, 7), f) >> Mux(low, 0, sh_raw[:3])),
                "coarse": Mux(low, 0, sh_raw[3:6]),
                "high": ~low & sh_raw[6:].any(),
                "tz": _trailing_zeros(f), "shm": (signed(12), sh_raw - (pw + 4)),
                "nostk": fzero | low}

    def _align_coarse(self, p):
        """The alignment's second stage: ``E``'s addend, ``F``'s bits below bit 1 ORed into bit
        0 (none when the shift was forced to 0, all when it exceeds the window)."""
        we = self._we
        vec = Cat(Const(0, we - 7), p["fine"])          # F's bit i at we + i - sh mod 8
        vec = vec >> (p["coarse"] * 8)
        sticky = ~p["nostk"] & less(p["tz"], p["shm"])
        return Cat(sticky, Mux(p["high"], 0, vec[25:we + 24]))

    def _operand(self, p, sub):
        """``X = P·8`` as the sum's operand, ``WE + 2`` bits, inverted for a subtraction."""
        w = self._we + 2
        return Cat(Const(0, 3), p[:self._pw], Const(0, w - 3 - self._pw)) ^ sub.replicate(w)

    def _add(self, xs, y, sub, np_, nf):
        """The sum ``±X ± F`` as (magnitude, sign), from ``xs`` (:meth:`_operand`) and ``sub``
        (the signs differ), all registers: two carry chains, ``e1 = F + xs + sub`` (``F ± X``;
        the +1 as a carry into an extra low bit) and ``e2 = F + xs``; where ``F - X < 0``,
        ``X - F = ~e2``. (ECP5: the unit's slowest stage, 7.8 ns, half of it routing; with the
        magnitude's multiplexer moved into the first normalisation stage, that one took 8.6.)"""
        w = len(xs)
        sw = w - 1
        yy = Cat(y, Const(0, w - len(y)))
        e1 = (Cat(sub, yy) + Cat(sub, xs))[1:w + 1]
        e2 = (yy + xs)[:w]
        flip = sub & e1[w - 1]
        return Mux(flip, ~e2, e1)[:sw], Mux(sub & ~flip, nf, np_)

    def _normalise_stages(self, m, reg, mag, keep, name):
        """Three stages that shift ``mag`` left until its top bit is set: by 16, 4 and 1 times
        the number (0 to 3) of all-zero 16-, 4- and 1-bit groups at its top; returns the last
        stage's registers (``v``, ``lz``, ``zero`` and ``keep``)."""
        sw = len(mag)
        assert sw <= 64
        v, p, lz = mag, None, Const(0, 6)
        for unit in (16, 4, 1):
            z = [v[sw - unit * (i + 1):sw - unit * i] == 0 for i in range(3)]
            n = Mux(~z[0], 0, Mux(~z[1], 1, Mux(~z[2], 2, 3)))
            shifted = Signal(unsigned(sw), name=f"{name}n{unit}")
            with m.Switch(n):
                for k in range(4):
                    with m.Case(k):
                        m.d.comb += shifted.eq(v << (unit * k))
            extra = {"zero": mag == 0} if p is None else {"zero": p["zero"]}
            p = reg(v=shifted, lz=(unsigned(6), lz + n * unit), **extra, **keep)
            keep = {k: p[k] for k in keep}
            v, lz = p["v"], p["lz"]
        return p

    @staticmethod
    def _round_bits(v):
        """The 24 top bits of a normalised ``v`` and their round-to-nearest-even increment."""
        w = len(v)
        mant = v[w - 24:]
        guard = v[w - 25]
        sticky = v[:w - 25].any()
        return mant, guard & (sticky | mant[0])

    # -- the shared parameters ----------------------------------------------------------------

    def _shared(self, m):
        """Per stage, the parameters' registers shared by the lanes (a list, index = stage)."""
        pw, we = self._pw, self._we
        sw = we + 1
        reg = _Pipe(m, "")
        ra, rb, fx = self.ra, self.rb, self.fixed
        ef = fx[23:31]
        s1 = reg(ea=ra[23:31], eb=rb[23:31], ef=ef, sf=fx[31],
                 ma=Cat(ra[:23], Const(1, 1)), mb=Cat(rb[:23], Const(1, 1)),
                 mf=Cat(fx[:23], ef != 0), fzero=ef == 0,
                 sh_raw=(signed(11), (pw + 2) + rb[23:31] - ef),
                 qmin=self.qmin, qmax=self.qmax)
        carried = ("ea", "ef", "sf", "ma", "mb", "mf", "fzero", "qmin", "qmax")
        low = s1["sh_raw"][-1] & ~s1["fzero"]
        s2 = reg(e0=(signed(11), Mux(low, s1["ef"] - (pw + 5), s1["eb"] - 3)),
                 **self._align_fine(s1["mf"], s1["sh_raw"], Const(0, 1), s1["fzero"]),
                 **{k: s1[k] for k in carried})
        # the exponent of t's significand is ebase - lz (+1 after a carry); the outer shift
        # (pw + 2) - e_t + ea is c2 + lz (-1 after a carry); with B = 0 (t = fixed) it is c3
        ebase = s2["e0"] + (sw - 24)
        s3 = reg(y=self._align_coarse(s2),
                 ebase=(signed(11), ebase), c2=(signed(11), (pw + 2) + s2["ea"] - ebase),
                 c3=(signed(11), (pw + 2) + s2["ea"] - s2["ef"]),
                 **{k: s2[k] for k in carried if k != "mb"})
        stages = [None, s1, s2, s3]
        if self.held:
            return stages + [s3] * (self.latency - 3)
        last = {"y": 3, "sf": 10, "ebase": 8, "c2": 8, "c3": 10, "ef": 10, "mf": 10,
                "fzero": 10, "mb": 2, "ea": 11, "ma": 11, "qmin": 21, "qmax": 21}
        while reg.stage < self.latency - 1:
            prev = stages[-1]
            stages.append(reg(**{k: prev[k] for k in prev if last.get(k, 0) > reg.stage}))
        return stages

    # -- one lane -------------------------------------------------------------------------------

    def _lane(self, m, j, S):
        b, pw, we = self._bits, self._pw, self._we
        sw = we + 1
        reg = _Pipe(m, f"_{j}")
        a, bb = self.a[j], self.b[j]

        # 1. magnitudes (the DSPs' operands), signs (the input's xor r's), zero flags
        p = reg(kb=(unsigned(b), Mux(bb[-1], -bb, bb)[:b]), nb=bb[-1] ^ self.rb[31],
                kbz=bb == 0, ka=(unsigned(b), Mux(a[-1], -a, a)[:b]), na=a[-1] ^ self.ra[31],
                kaz=a == 0)
        outer = ("ka", "na", "kaz")

        def keep(p, names):
            return {k: p[k] for k in names}

        # 2.-4. P = |B|·Mb: the DSPs' operand registers, two 12-bit partial products (a DSP
        # each), their sum, inverted for a subtraction (the sum's operand ``xs``); beside it
        # the lane's own copy of the aligned fixed (one shared register drove every lane's
        # carry chains: the routing took a third of the cycle)
        mb = S[2]["mb"]
        p = reg(kb=p["kb"], nb=p["nb"], kbz=p["kbz"], **keep(p, outer))
        p = reg(lo=p["kb"] * mb[:12], hi=p["kb"] * mb[12:], nb=p["nb"], kbz=p["kbz"],
                **keep(p, outer))
        sub = p["nb"] ^ S[3]["sf"]
        p = reg(xs=self._operand(p["lo"] + (p["hi"] << 12), sub), y=S[3]["y"], sub=sub,
                nb=p["nb"], nf=S[3]["sf"], kbz=p["kbz"], **keep(p, outer))

        # 5. the inner sum
        mag, sgn = self._add(p["xs"], p["y"], p["sub"], p["nb"], p["nf"])
        p = reg(mag=(unsigned(sw), mag), sgn=sgn, kbz=p["kbz"], **keep(p, outer))

        # 6.-8. normalise
        p = self._normalise_stages(m, reg, p["mag"], {"sgn": p["sgn"], "kbz": p["kbz"],
                                                      **keep(p, outer)}, f"i{j}_")

        # 9. round bits; t's exponent and the outer shift, before the rounding's carry
        mant, up = self._round_bits(p["v"])
        p = reg(mant=mant, up=up, er=(signed(11), S[8]["ebase"] - p["lz"]),
                shr=(signed(11), S[8]["c2"] + p["lz"]), zero=p["zero"], sgn=p["sgn"],
                kbz=p["kbz"], **keep(p, outer))
        # 10. t's significand
        p = reg(rm=(unsigned(25), p["mant"] + p["up"]), er=p["er"], shr=p["shr"],
                zero=p["zero"], sgn=p["sgn"], kbz=p["kbz"], **keep(p, outer))

        # 11. t renormalised after a carry; B = 0: t = fixed
        s10 = S[10]
        rm, c, kbz = p["rm"], p["rm"][24], p["kbz"]
        p = reg(mt=Mux(kbz, s10["mf"], Mux(c, rm[1:], rm[:24])),
                et=(signed(11), Mux(kbz, s10["ef"], p["er"] + c)),
                sh_raw=(signed(11), Mux(kbz, s10["c3"], p["shr"] - c)),
                nt=Mux(kbz, s10["sf"], p["sgn"]),
                tzero=Mux(kbz, s10["fzero"], p["zero"]), **keep(p, outer))

        # 12. |A|·Ma partial products; the outer shift's first stage (0 when A = 0), E's
        # exponent, as the integer rounding's u0 = 174 - sw - e0 (u = u0 + lz)
        ma = S[11]["ma"]
        low = p["kaz"] | (p["sh_raw"][-1] & ~p["tzero"])
        e0 = Mux(low, p["et"] - (pw + 5), S[11]["ea"] - 3)
        p = reg(lo=p["ka"] * ma[:12], hi=p["ka"] * ma[12:], na=p["na"], nt=p["nt"],
                u0=(signed(12), (174 - sw) - e0),
                **self._align_fine(p["mt"], p["sh_raw"], p["kaz"], p["tzero"]))
        # 13. P = |A|·Ma (the sum's operand); t aligned
        sub = p["na"] ^ p["nt"]
        p = reg(xs=self._operand(p["lo"] + (p["hi"] << 12), sub), na=p["na"], sub=sub,
                y=self._align_coarse(p), nt=p["nt"], u0=p["u0"])
        # 14. the outer sum
        mag, sgn = self._add(p["xs"], p["y"], p["sub"], p["na"], p["nt"])
        p = reg(mag=(unsigned(sw), mag), sgn=sgn, u0=p["u0"])
        # 15.-17. normalise
        p = self._normalise_stages(m, reg, p["mag"], {"sgn": p["sgn"], "u0": p["u0"]},
                                   f"o{j}_")
        # 18. round bits; round24(s) = (mant + up)·2**-u
        mant, up = self._round_bits(p["v"])
        p = reg(mant=mant, up=up, u=(signed(12), p["u0"] + p["lz"]), zero=p["zero"],
                sgn=p["sgn"])
        return self._to_integer(m, reg, j, p, S)

    def _to_integer(self, m, reg, j, p, S):
        """Stages 19-22: ``clip(rint(round24(s)), qmin, qmax)`` from stage 18's registers."""
        b = self._bits
        base = 24 - b                  # u < base: |round24(s)| >= 2**bits, saturate
        shw = b.bit_length()
        u, mant, up = p["u"], p["mant"], p["up"]
        # 19. Sm, and the integer rounding's sticky bit for every shift it may take: Sm's low
        # k bits are not all zero when mant's are not (up = 0) or not all ones (up = 1)
        stk = Cat(Mux(up, ~mant[:base + sh - 1].all(), mant[:base + sh - 1].any())
                  for sh in range(b + 1))
        p = reg(pm=(unsigned(25), mant + up), stk=stk, sat=~p["zero"] & less(u, base),
                zero=p["zero"] | less(24, u), sh=(unsigned(shw), (u - base)[:shw]),
                sgn=p["sgn"])
        # 20. q = RNE(Sm / 2**(base + sh)): the shift's bits and its round-up bit
        q0 = Signal(unsigned(b + 1), name=f"q0_{j}")
        g = Signal(name=f"g_{j}")
        with m.Switch(p["sh"]):
            for sh in range(b + 1):
                uu = base + sh
                with m.Case(sh):
                    pm = p["pm"]
                    m.d.comb += [q0.eq(pm[uu:]), g.eq(pm[uu - 1] & (p["stk"][sh] | pm[uu]))]
        p = reg(q0=q0, g=g, sat=p["sat"], zero=p["zero"], sgn=p["sgn"])
        # 21. y = ±(q0 + g) in one carry chain (-(q0 + g) = ~q0 + ~g), or saturated, or 0
        neg = p["sgn"]
        qs = Cat(p["q0"], Const(0, 1)).as_signed()
        ys = Mux(neg, ~qs, qs) + (p["g"] ^ neg)
        top = 1 << b
        y = Mux(p["sat"], Mux(neg, -top, top), Mux(p["zero"], 0, ys))
        p = reg(y=(signed(b + 2), y))
        # 22. clamp
        qmin, qmax = S[21]["qmin"], S[21]["qmax"]
        y = p["y"]
        p = reg(o=(signed(b + 1), Mux(less(y, qmin), qmin, Mux(less(qmax, y), qmax, y))))
        assert reg.stage == self.latency
        return p["o"]
