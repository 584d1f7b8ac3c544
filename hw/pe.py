"""The MAC processing element.

A weight-stationary PE: a weight register loaded through a per-column shift chain (``w_in`` → ``w``
→ ``w_out`` to the PE below when ``w_shift`` is high), an activation forwarded to the right one cycle
later (``a_out``), and a partial sum that arrives from above and leaves below one cycle later with this
PE's product added: ``psum_out <= psum_in + a_in * w``. The accumulate is a plain two-input add so
synthesis maps the multiplier and a carry chain rather than a multi-operand adder; the sum wraps at
``acc_bits`` exactly like the golden model.

``stages`` pipeline registers sit around the multiplier (1: after it; 2: before and after it, the
shape of a DSP block with input and output registers). Each stage delays this PE's product by a
cycle; since every PE of a column is delayed alike, partial sums still meet their products, and the
array's latency grows by ``stages`` without costing throughput.
"""

from amaranth.hdl import Module, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .regs import check_stages, pipelined_product

__all__ = ["MacPE", "OsPE"]


class MacPE(wiring.Component):
    """Parameters: ``act_shape``, ``weight_shape`` (Amaranth shapes, signed or unsigned) and
    ``acc_bits`` (signed accumulator/partial-sum width)."""

    def __init__(self, *, act_shape, weight_shape, acc_bits: int, stages: int = 0):
        act_shape, weight_shape = Shape.cast(act_shape), Shape.cast(weight_shape)
        if not isinstance(acc_bits, int) or acc_bits < act_shape.width + weight_shape.width:
            raise ValueError(f"acc_bits must be an integer of at least "
                             f"{act_shape.width + weight_shape.width}, not {acc_bits!r}")
        check_stages(stages)
        self.act_shape, self.weight_shape, self.acc_bits = act_shape, weight_shape, acc_bits
        self.stages = stages
        super().__init__({
            "a_in": In(act_shape), "a_out": Out(act_shape),
            "w_in": In(weight_shape), "w_out": Out(weight_shape), "w_shift": In(1),
            "psum_in": In(signed(acc_bits)), "psum_out": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        w = Signal(self.weight_shape)
        with m.If(self.w_shift):
            m.d.sync += w.eq(self.w_in)
        m.d.comb += self.w_out.eq(w)
        m.d.sync += self.a_out.eq(self.a_in)
        product = pipelined_product(m, self.a_in, w, self.stages, "x")
        m.d.sync += self.psum_out.eq(self.psum_in + product)
        return m


class OsPE(wiring.Component):
    """An output-stationary PE: ``a`` passes right and ``b`` down one cycle later, and the
    accumulator adds ``a * b`` (after ``stages`` multiplier registers, as in :class:`MacPE`).
    While ``drain`` is high it takes ``acc_in`` (the accumulator above) instead, so a column shifts
    its results out downwards; wrapping at ``acc_bits`` like the golden model."""

    def __init__(self, *, act_shape, weight_shape, acc_bits: int, stages: int = 0):
        act_shape, weight_shape = Shape.cast(act_shape), Shape.cast(weight_shape)
        check_stages(stages)
        self.act_shape, self.weight_shape, self.acc_bits = act_shape, weight_shape, acc_bits
        self.stages = stages
        super().__init__({
            "a_in": In(act_shape), "a_out": Out(act_shape),
            "b_in": In(weight_shape), "b_out": Out(weight_shape),
            "drain": In(1), "acc_in": In(signed(acc_bits)), "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        m.d.sync += [self.a_out.eq(self.a_in), self.b_out.eq(self.b_in)]
        product = pipelined_product(m, self.a_in, self.b_in, self.stages, "x")
        with m.If(self.drain):
            m.d.sync += self.acc.eq(self.acc_in)
        with m.Else():
            m.d.sync += self.acc.eq(self.acc + product)
        return m
