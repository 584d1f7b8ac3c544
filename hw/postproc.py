"""Output post-processing: requantisation and ReLU on the STORE path.

Per lane, in three registered stages (so the STORE path keeps its clock speed):

1. ``p = acc * mult`` (``mult`` unsigned, per output channel);
2. ``p + round``: half-up adds ``2**(shift-1)``; half-to-even adds ``2**(shift-1) - 1`` plus bit
   ``shift`` of ``p`` (the quotient's parity), which rounds ties to even and everything else to
   nearest; nothing when ``shift`` is 0;
3. arithmetic shift right by ``shift``, saturation to signed ``out_bits``, ReLU, packing
   ``out_bits`` per lane.

With ``requant`` low the accumulators pass through (ReLU still applies) with the same latency, so
the STORE path has one fixed latency either way. sim/golden.py ``requantize`` is the reference.

The store unit (hw/store.py) holds the LOAD_QUANT words and hands each lane's raw 32-bit word to
``param`` (multiplier in bits [0, 24), shift in bits [24, 30), gen/isa.py); a requantiser is any
component with :class:`RequantSignature` (flipped) and a ``latency``.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from gen.isa import QUANT_SHIFT_BITS, QUANT_SHIFT_OFFSET
from gen.spec import Spec

__all__ = ["Requantizer", "RequantSignature"]


class RequantSignature(wiring.Signature):
    """A requantiser seen from the store unit: accumulator lanes ``i`` with each lane's LOAD_QUANT
    word ``param`` and the STORE's options go in; the packed output word ``o`` comes out
    ``latency`` cycles later."""

    def __init__(self, spec: Spec):
        super().__init__({
            "i": Out(data.ArrayLayout(signed(spec.acc_bits), spec.cols)),
            "param": Out(data.ArrayLayout(unsigned(32), spec.cols)),
            "requant": Out(1),
            "relu": Out(1),
            "o": In(spec.output_word_bits),
        })


class Requantizer(wiring.Component):
    latency = 3

    def __init__(self, spec: Spec):
        self.spec = spec
        super().__init__(RequantSignature(spec).flip())

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        acc, ob = spec.acc_bits, spec.out_bits
        lo, hi = spec.out_range()
        requant = [Signal(name=f"requant{k}") for k in range(3)]
        relu = [Signal(name=f"relu{k}") for k in range(3)]
        m.d.sync += [requant[0].eq(self.requant), relu[0].eq(self.relu)]
        for k in (1, 2):
            m.d.sync += [requant[k].eq(requant[k - 1]), relu[k].eq(relu[k - 1])]
        lanes = []
        for j in range(spec.cols):
            width = acc + spec.mult_bits + 1
            s1_p = Signal(signed(width), name=f"s1_p{j}")
            s1_y = Signal(signed(acc), name=f"s1_y{j}")
            s1_s = Signal(QUANT_SHIFT_BITS, name=f"s1_s{j}")
            mult = self.param[j][:spec.mult_bits]
            shift = self.param[j][QUANT_SHIFT_OFFSET:][:QUANT_SHIFT_BITS]
            m.d.sync += [s1_p.eq(self.i[j] * mult), s1_y.eq(self.i[j]), s1_s.eq(shift)]

            s2_t = Signal(signed(width + 1), name=f"s2_t{j}")
            s2_y = Signal(signed(acc), name=f"s2_y{j}")
            s2_s = Signal(QUANT_SHIFT_BITS, name=f"s2_s{j}")
            half = Signal(width, name=f"half{j}")
            m.d.comb += half.eq((Const(1, width) << s1_s) >> 1)  # 2**(shift-1), 0 for shift 0
            if spec.rounding == "half_up":
                rnd = half
            else:
                parity = s1_p.as_unsigned().bit_select(s1_s, 1)
                rnd = Mux(s1_s == 0, 0, half - 1 + parity)
            m.d.sync += [s2_t.eq(s1_p + rnd), s2_y.eq(s1_y), s2_s.eq(s1_s)]

            q = Signal(signed(width + 1), name=f"q{j}")
            m.d.comb += q.eq(s2_t >> s2_s)
            sat = Signal(signed(ob), name=f"sat{j}")
            m.d.comb += sat.eq(Mux(q > hi, hi, Mux(q < lo, lo, q)))
            s3_q = Signal(signed(ob), name=f"s3_q{j}")
            s3_y = Signal(signed(acc), name=f"s3_y{j}")
            m.d.sync += [s3_q.eq(Mux(relu[1] & (sat < 0), 0, sat)),
                         s3_y.eq(Mux(relu[1] & (s2_y < 0), 0, s2_y))]
            lanes.append((s3_q, s3_y))
        packed_q = Cat(*(q for q, _ in lanes))
        packed_y = Cat(*(y for _, y in lanes))
        m.d.comb += self.o.eq(Mux(requant[2], packed_q, packed_y))
        return m
