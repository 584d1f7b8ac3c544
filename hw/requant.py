"""Exact requantisation: onnxruntime's fp32 steps, reproduced bit for bit in integer logic.

onnxruntime (MLAS ``MlasRequantizeOutput``) turns an int32 accumulator into an int8/uint8 output with
fp32 arithmetic: ``f = fp32(acc)`` (round to nearest even once ``|acc| > 2**24``), ``f = f * scale``
(one fp32 multiply, round to nearest even), clamp to ``[qmin - zp, qmax - zp]``, round to nearest
even to an integer, ``+ zp``. sim/golden.py :func:`~sim.golden.requantize_fp32` is the reference;
this unit computes the same function without a floating-point unit, per lane, in
:data:`Fp32Requantizer.latency` registered stages:

1. ``a = |acc|``; the scale's exponent ``e`` and significand ``M = 1.frac`` (23 + 1 bits).
2.–4. normalise ``a`` (shift left by ``2**k`` while its top ``2**k`` bits are zero, two steps a
   stage, both tests on the stage's input and one multiplexer); ``ea`` = the position of ``a``'s
   leading one.
5. round the normalised ``a`` to 24 significant bits, ties to even (only when ``acc_bits > 24``).
6. a carry out of the top renormalises: ``fp32(acc) = ±Fm·2**(ea-23)`` with
   ``2**23 <= Fm < 2**24``, exactly the int-to-float conversion; ``u0 = 150 - ea - e``. These
   are the multipliers' operand registers (on ECP5 the DSPs' input registers).
7.–9. ``P = Fm·M``, exact in 48 bits: four 12×12-bit partial products (a DSP each, registered),
   then the middle two's sum, then the whole.
10.–11. ``P`` lies in ``[2**46, 2**48)``: keep its top 24 bits (position 24 or 23, by bit 47)
   rounded to nearest even with guard and sticky bits — exactly the fp32 product ``±Pm·2**-u``
   with ``u = u0 - P[47]`` (``Pm`` may round up to ``2**24``; its value is what matters).
   Beside ``Pm``'s carry chain, stage 11 keeps the next rounding's sticky bit for each shift it
   may take (from the unrounded significand and its round-up bit), so stage 12 is a LUT and a
   multiplexer on registers.
12.–13. ``q = RNE(Pm / 2**u)``, the integer rounding. ``Pm >= 2**23`` and ``Pm <= 2**24``, so
   ``u <= 22 - out_bits`` means ``|f| >= 2**(out_bits + 1)``: every clamp range (below) is
   narrower, so ``q`` saturates; ``u >= 25`` means ``|f| <= 1/2``, which rounds to 0 (an exact
   1/2 is a tie to even: 0). Only ``out_bits + 2`` shifts remain between: a small multiplexer.
14. ``t = zp ± q`` (the product's sign: the accumulator's xor the scale's); beside it whether
   ``t < qmin`` and ``t > qmax``, as compares of ``q`` with bounds on it for the sign (stage 13
   selects between two registers the lanes share, derived from ``zp``, ``qmin``, ``qmax``).
15. clamp ``t`` to ``[qmin, qmax]`` (a multiplexer); the output is its low ``out_bits`` bits.

No stage holds more than a DSP, a carry chain or a few LUT levels (ECP5: see /work/notes/rq.md).

Why this equals the fp32 steps: stages 1–5 are the IEEE int-to-float conversion and stages 6–11 the
IEEE multiply of two normal numbers, for every product that is a normal fp32 number. The fp32
cases left out all give the same integer: an fp32 overflow (infinity) clamps to the top or bottom
exactly as a large ``q`` does; a product below 2**-126 (subnormal or zero in fp32) and a
subnormal or zero scale (``|f| < 2**acc_bits·2**-126 < 1/2``) round to 0. Clamping before the
integer rounding (onnxruntime) or after it (here) is the same, because the bounds are integers
and rounding is monotone. ``zp``, ``qmin`` and ``qmax`` are within ``[-2**(out_bits-1),
2**out_bits - 1]`` (an int8 or uint8 range for ``out_bits = 8``), so ``|qmax - zp|`` and
``|qmin - zp|`` are below ``2**(out_bits+1)``: the saturation of stage 13 is never visible.
A ReLU folded into the output range, or a Clip, is just a narrower ``[qmin, qmax]``.

Every input (accumulator, scale bits, zero point, clamp bounds) is sampled in the same cycle and
travels down the pipeline with its accumulator, so each word may have its own parameters. The
pipeline's registers have no reset (the store unit tracks which words are valid), so the ones
around the multipliers fold into the ECP5 DSPs' own (fpga/absorb.py). The
scale must not be NaN or infinite (the host refuses those; an exponent of 255 here acts as a
large finite scale).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from gen.spec import Spec

from .regs import delay_line, less

__all__ = ["Fp32Requantizer", "RequantSignature", "StoreRequantizer"]


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
    held : bool
        The parameters (``scale``, ``zero_point``, ``qmin``, ``qmax``) hold still while any
        accumulator is in the pipeline (the store unit's lane registers and STORE fields do: a
        STORE ends when its last word has left), so each stage reads them where it needs them
        instead of carrying them down the pipeline with the words (per lane 147 flip-flops fewer,
        and 369 shared). Default: each word may have its own parameters.
    """

    latency = 15

    def __init__(self, *, lanes: int, acc_bits: int, out_bits: int, held: bool = False):
        for name, value, lo, hi in (("lanes", lanes, 1, 1024), ("acc_bits", acc_bits, 2, 64),
                                    ("out_bits", out_bits, 2, 16)):
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer from {lo} to {hi}, not {value!r}")
        self._lanes, self._acc_bits, self._out_bits = lanes, acc_bits, out_bits
        self.held = bool(held)
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
        # the zero point and clamp bounds travel beside the lanes (shared by all of them):
        # par[k] is their value for the word in stage k's registers (needed up to the last
        # stage but one: the clamp's constants at 13, the zero point at 14, the bounds at 15)
        # (held: two stages of copies beside the lanes, so no path runs from the STORE's
        # registers in the front end to every lane's last stages in one cycle)
        par = [(self.zero_point, self.qmin, self.qmax)]
        for k in range(1, 3 if self.held else self.latency):
            cur = tuple(Signal(signed(ob + 1), name=f"s{k}_{n}", reset_less=True)
                        for n in ("zp", "qmin", "qmax"))
            m.d.sync += [r.eq(v) for r, v in zip(cur, par[-1], strict=True)]
            par.append(cur)
        par += [par[-1]] * (self.latency - len(par))
        # the clamp's bounds on q for either sign (stage 13 selects by the lane's sign), shared
        # by the lanes: registers of stage 12 from the parameters of stage 11
        zp, qmin, qmax = par[11]
        cw = signed(ob + 4)
        bounds = {}
        for n, v in (("lo_n", zp - qmin + 1), ("lo_p", qmin - zp),
                     ("hi_n", zp - qmax), ("hi_p", qmax - zp + 1)):
            bounds[n] = Signal(cw, name=f"s12_{n}", reset_less=True)
            m.d.sync += bounds[n].eq(v)
        for j in range(self._lanes):
            out = self._lane(m, j, self.i[j], self.scale[j], par, bounds)
            m.d.comb += self.o[j].eq(out)
        return m

    def _lane(self, m, j, acc, scale, par, bounds):
        W, ob = self._acc_bits, self._out_bits
        stage = [0]

        def regs(**values):
            """Register ``values`` (name -> value, or (shape, value)) as the next stage."""
            stage[0] += 1
            out = {}
            for name, v in values.items():
                shape, v = v if isinstance(v, tuple) else (v.shape(), v)
                r = Signal(shape, name=f"s{stage[0]}_{name}_{j}", reset_less=True)
                m.d.sync += r.eq(v)
                out[name] = r
            return out

        # 1. magnitude and sign; scale fields
        p = regs(neg=acc[-1] ^ scale[31], mag=(unsigned(W), Mux(acc[-1], -acc, acc)),
                 **({} if self.held else {"exp": scale[23:31], "frac": scale[:23]}))

        def fld(p, name):
            """The scale's exponent or fraction as this stage has it (held: the input)."""
            return {"exp": scale[23:31], "frac": scale[:23]}[name] if self.held else p[name]
        p["zero"] = p["mag"] == 0          # (registered with the next stage)
        keep = ("neg",) if self.held else ("neg", "exp", "frac")

        # 2.-4. normalise: shift left by 2**k while the top 2**k bits are zero, two steps a
        # stage; both steps' tests read the stage's input (the second's top bits as the first
        # step would leave them), so a stage is the tests and one multiplexer of the shifts,
        # not a test, a shift, a test and a shift in a row; lz's bit log2(k): step k shifted
        lz_bits = max(1, W.bit_length())
        steps = [1 << k for k in reversed(range((W - 1).bit_length()))]
        steps = [None] * (6 - len(steps)) + steps          # acc_bits <= 64: at most 6 steps
        v, lz = p["mag"], [Const(0, 1)] * lz_bits
        for g in range(3):
            pair = [k for k in steps[2 * g:2 * g + 2] if k is not None]
            if len(pair) == 2:
                a, b = pair
                za = v[W - a:] == 0
                zb = Mux(za, (v << a)[:W][W - b:] == 0, v[W - b:] == 0)
                v = Mux(za, Mux(zb, v << (a + b), v << a), Mux(zb, v << b, v))
                lz[a.bit_length() - 1], lz[b.bit_length() - 1] = za, zb
            elif pair:
                za = v[W - pair[0]:] == 0
                v = Mux(za, v << pair[0], v)
                lz[pair[0].bit_length() - 1] = za
            zero = (p["zero"] | (fld(p, "exp") == 0)) if g == 0 else p["zero"]
            p = regs(v=(unsigned(W), v), lz=(unsigned(lz_bits), Cat(*lz)), zero=zero,
                     **{k: p[k] for k in keep})
            v, lz = p["v"], [p["lz"][i] for i in range(lz_bits)]
        lz = p["lz"]

        # 5. round to 24 significant bits (fp32(acc)), a carry out of the top renormalises:
        # ea = W - 1 - lz + carry; e1 = 150 - (W - 1 - lz) - e, so u0 = e1 - carry
        e1 = (150 - (W - 1) - fld(p, "exp")) + lz
        if W > 24:
            top = v[W - 24:]
            guard = v[W - 25]
            sticky = v[:W - 25].any() if W > 25 else Const(0)
            rounded = top + (guard & (sticky | top[0]))
        else:
            rounded = Cat(Const(0, 24 - W), v, Const(0, 1))
        p = regs(r=(unsigned(25), rounded), e1=(signed(11), e1), zero=p["zero"], neg=p["neg"],
                 **({} if self.held else {"frac": p["frac"]}))
        # 6. the multipliers' operands, with no more than a multiplexer before them in the
        # cycle: on ECP5 these registers fold into the DSPs' input registers, so the route to
        # the DSP column gets most of a cycle; the exponent of the product's integer point
        r = p["r"]
        p = regs(fm=(unsigned(24), Mux(r[24], r[1:], r[:24])), man=Cat(fld(p, "frac"), Const(1, 1)),
                 u0=(signed(11), p["e1"] - r[24]), zero=p["zero"], neg=p["neg"])

        # 7.-9. the exact product of the significands, as four 12x12-bit partial products (one
        # DSP each, nothing after it in the cycle), then the middle pair's sum, then the whole
        fl, fh, ml, mh = p["fm"][:12], p["fm"][12:], p["man"][:12], p["man"][12:]
        p = regs(ll=(unsigned(24), fl * ml), lh=(unsigned(24), fl * mh),
                 hl=(unsigned(24), fh * ml), hh=(unsigned(24), fh * mh),
                 u0=p["u0"], zero=p["zero"], neg=p["neg"])
        p = regs(out=(unsigned(48), Cat(p["ll"], p["hh"])), mid=(unsigned(25), p["lh"] + p["hl"]),
                 u0=p["u0"], zero=p["zero"], neg=p["neg"])
        p = regs(p=(unsigned(48), p["out"] + (p["mid"] << 12)), u0=p["u0"], zero=p["zero"],
                 neg=p["neg"])

        # 10.-11. round the product to 24 significant bits (the fp32 multiply): Pm
        P = p["p"]
        hi = P[47]
        mant = Mux(hi, P[24:48], P[23:47])
        guard = Mux(hi, P[23], P[22])
        sticky = P[:22].any() | (hi & P[22])
        p = regs(mant=(unsigned(24), mant), up=guard & (sticky | mant[0]),
                 u=(signed(12), p["u0"] - hi), zero=p["zero"], neg=p["neg"])
        base = 23 - ob                       # the smallest shift that does not surely saturate
        shw = (ob + 1).bit_length()
        u, mant, up = p["u"], p["mant"], p["up"]
        # the integer rounding's sticky bit for every shift it may take, beside Pm's carry
        # chain: Pm's low k bits are not all zero when mant's are not (up = 0) or when they
        # are not all ones (up = 1: adding 1 clears them only then)
        stk = Cat(Mux(up, ~mant[:base + sh - 1].all(), mant[:base + sh - 1].any())
                  for sh in range(ob + 2))
        p = regs(pm=(unsigned(25), mant + up), stk=stk, sat=~p["zero"] & (u < base),
                 zero=p["zero"] | (u > 24), sh=(unsigned(shw), (u - base)[:shw]), neg=p["neg"])

        # 12.-13. round to an integer: q = RNE(Pm / 2**u), u = base + sh; for each shift
        # its round-up bit (guard and (sticky or odd)) is one LUT on registers, so the
        # stage is that LUT and the shift's multiplexer
        qw = ob + 3
        q0 = Signal(unsigned(qw), name=f"q0_{j}")
        g = Signal(name=f"g_{j}")
        with m.Switch(p["sh"]):
            for sh in range(ob + 2):
                uu = base + sh
                with m.Case(sh):
                    pm = p["pm"]
                    m.d.comb += [q0.eq(pm[uu:]), g.eq(pm[uu - 1] & (p["stk"][sh] | pm[uu]))]
        p = regs(q0=q0, up=g, sat=p["sat"], zero=p["zero"], neg=p["neg"])
        q = Mux(p["sat"], 1 << (ob + 1), Mux(p["zero"], 0, p["q0"] + p["up"]))
        # (13.) the clamp's bounds as bounds on q, by the sign: t = zp - q < qmin when
        # q >= zp - qmin + 1, t = zp + q < qmin when not q >= qmin - zp; likewise for qmax
        # (both signs' bounds are the shared registers ``bounds``)
        neg = p["neg"]
        cw = signed(ob + 4)
        p = regs(q=(unsigned(qw), q), neg=neg,
                 clo=(cw, Mux(neg, bounds["lo_n"], bounds["lo_p"])),
                 chi=(cw, Mux(neg, bounds["hi_n"], bounds["hi_p"])))

        # 14. the zero point, and whether t lies below or above the range (compares of q with
        # the stage's registers: on FPGAs a carry chain each, beside the add)
        q, neg = p["q"], p["neg"]
        ge_lo, ge_hi = ~less(q, p["clo"]), ~less(q, p["chi"])
        zp = par[13][0]
        p = regs(t=(signed(qw + 2), Mux(neg, zp - q, zp + q)), lo=~(ge_lo ^ neg),
                 hi=ge_hi ^ neg)

        # 15. clamp
        _, qmin, qmax = par[14]
        p = regs(o=(signed(ob + 1), Mux(p["lo"], qmin, Mux(p["hi"], qmax, p["t"]))))
        assert stage[0] == self.latency
        return p["o"][:ob]


class RequantSignature(wiring.Signature):
    """A requantiser seen from the store unit (hw/store.py): accumulator lanes ``i`` with each
    lane's LOAD_QUANT word ``param`` (fp32 scale bits) and the STORE's options and header
    fields (``zero_point``, ``qmin``, ``qmax``: 17-bit two's complement, gen/isa.py) go in; the
    packed output word ``o`` comes out ``latency`` cycles later."""

    def __init__(self, spec: Spec):
        field = 17
        super().__init__({
            "i": Out(data.ArrayLayout(signed(spec.acc_bits), spec.cols)),
            "param": Out(data.ArrayLayout(unsigned(32), spec.cols)),
            "requant": Out(1),
            "relu": Out(1),
            "zero_point": Out(signed(field)),
            "qmin": Out(signed(field)),
            "qmax": Out(signed(field)),
            "o": In(spec.output_word_bits),
        })


class StoreRequantizer(wiring.Component):
    """The STORE path's post-processing (gen/isa.py STORE): with ``requant``, the
    :class:`Fp32Requantizer` on every lane, ``out_bits`` per lane packed from lane 0 up (the
    STORE's ``relu`` is folded into ``qmin`` by the host); without, the accumulators as they
    are, negative ones zeroed with ``relu``, after the same :attr:`latency`, so the STORE path
    has one fixed latency."""

    latency = Fp32Requantizer.latency

    def __init__(self, spec: Spec):
        self.spec = spec
        super().__init__(RequantSignature(spec).flip())

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        ob = spec.out_bits
        # a STORE's parameters hold still while its words are in the pipeline (the STORE ends
        # when its last word has left; LOAD_QUANT and the next header come after it), except a
        # per-word channel memory's scale, which changes word by word
        m.submodules.fp32 = rq = Fp32Requantizer(lanes=spec.cols, acc_bits=spec.acc_bits,
                                                 out_bits=ob, held=not spec.per_word_channels)
        m.d.comb += [rq.i.eq(self.i), rq.scale.eq(self.param),
                     rq.zero_point.eq(self.zero_point[:ob + 1]),
                     rq.qmin.eq(self.qmin[:ob + 1]), rq.qmax.eq(self.qmax[:ob + 1])]
        # the accumulators pass beside it, ReLU'd as they enter, with the word's requant flag,
        # through a memory delay line (hw/regs.py delay_line), so the ReLU'd word comes out
        # ``latency`` cycles after it went in, like the requantised one (ECP5: LUT RAM and one
        # word of flip-flops, where a chain of registers took ``latency`` words of flip-flops:
        # 3,840 on the 8x8 with 32-bit accumulators)
        raw = Signal(data.ArrayLayout(signed(spec.acc_bits), spec.cols), name="raw_in")
        for j in range(spec.cols):
            m.d.comb += raw[j].eq(Mux(self.relu & (self.i[j] < 0), 0, self.i[j]))
        late = delay_line(m, Cat(raw, self.requant), self.latency, "raw_delay")
        raw, use = late[:-1], late[-1]
        m.d.comb += self.o.eq(Mux(use, rq.o.as_value(), raw))
        return m
