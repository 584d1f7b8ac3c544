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

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .regs import check_stages, delay, pipelined_product

__all__ = ["MacPE", "OsPE", "RsPE", "rs_control_layout"]


class MacPE(wiring.Component):
    """Parameters: ``act_shape``, ``weight_shape`` (Amaranth shapes, signed or unsigned) and
    ``acc_bits`` (signed accumulator/partial-sum width).

    With ``banks=2`` the PE double-buffers its weight: ``w_shift`` loads a *shadow* register (and
    ``w_out`` passes the shadow down the chain) while the products use the *active* one. A bank bit
    travels with the activations: ``sel_next`` is the bit of the activation arriving next cycle
    (the left neighbour's ``sel_out``); when it differs from the bit of the current one, the shadow
    is copied into the active register, just in time for that activation. So the next filter
    tap's weights shift in behind the current tap's stream and each activation meets its own
    tap's weights; the multiplier still reads a plain register (a DSP input), and the copy is a
    clock enable."""

    def __init__(self, *, act_shape, weight_shape, acc_bits: int, stages: int = 0,
                 banks: int = 1):
        act_shape, weight_shape = Shape.cast(act_shape), Shape.cast(weight_shape)
        if not isinstance(acc_bits, int) or acc_bits < act_shape.width + weight_shape.width:
            raise ValueError(f"acc_bits must be an integer of at least "
                             f"{act_shape.width + weight_shape.width}, not {acc_bits!r}")
        check_stages(stages)
        if banks not in (1, 2):
            raise ValueError(f"banks must be 1 or 2, not {banks!r}")
        self.act_shape, self.weight_shape, self.acc_bits = act_shape, weight_shape, acc_bits
        self.stages, self.banks = stages, banks
        ports = {
            "a_in": In(act_shape), "a_out": Out(act_shape),
            "w_in": In(weight_shape), "w_out": Out(weight_shape), "w_shift": In(1),
            "psum_in": In(signed(acc_bits)), "psum_out": Out(signed(acc_bits)),
        }
        if banks == 2:
            ports |= {"sel_next": In(1), "sel_out": Out(1)}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        if self.banks == 1:
            w = Signal(self.weight_shape)
            with m.If(self.w_shift):
                m.d.sync += w.eq(self.w_in)
            m.d.comb += self.w_out.eq(w)
        else:
            shadow, w = Signal(self.weight_shape), Signal(self.weight_shape)
            with m.If(self.w_shift):
                m.d.sync += shadow.eq(self.w_in)
            m.d.comb += self.w_out.eq(shadow)
            with m.If(self.sel_next != self.sel_out):    # the next activation is a new tap's
                m.d.sync += w.eq(shadow)
            m.d.sync += self.sel_out.eq(self.sel_next)
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


def rs_control_layout(filter_spad: int, ifmap_spad: int, psum_spad: int):
    """The compute control a row-stationary PE row receives (one step of its 1-D convolution):
    which filter-spad and ifmap-spad entries to multiply, which psum-spad entry (filter) takes the
    product, and whether this is the row's first (``first``: start from zero) or last
    (``last``: the psum row is complete and leaves down the column) filter tap."""
    return data.StructLayout({
        "valid": 1, "first": 1, "last": 1,
        "fidx": range(filter_spad), "iidx": range(ifmap_spad), "k": range(psum_spad),
    })


class RsPE(wiring.Component):
    """A row-stationary PE (Eyeriss v1): three scratchpads and a MAC.

    * filter spad (``filter_spad`` weights), written through ``fw_*`` (multicast to the row);
    * ifmap spad (``ifmap_spad`` pixels, one ifmap row segment), written through ``iw_*`` when the
      array's tag match selects this PE;
    * psum spad (``psum_spad`` partial sums, one per filter the PE interleaves).

    Each valid ``ctl`` step multiplies ``filter[fidx] * ifmap[iidx]`` (``stages`` multiplier
    registers) into ``psum[k]``: from zero on the ``first`` tap; on the ``last`` tap the completed
    sum goes to ``fin`` instead, and ``down_out <= down_in + fin`` adds it to the psum row coming
    down the column. ``active`` low (a column beyond the tile) contributes zero."""

    def __init__(self, *, act_shape, weight_shape, acc_bits: int, stages: int,
                 filter_spad: int, ifmap_spad: int, psum_spad: int):
        act_shape, weight_shape = Shape.cast(act_shape), Shape.cast(weight_shape)
        check_stages(stages)
        self.act_shape, self.weight_shape, self.acc_bits = act_shape, weight_shape, acc_bits
        self.stages = stages
        self.depths = (filter_spad, ifmap_spad, psum_spad)
        super().__init__({
            "fw_en": In(1), "fw_addr": In(range(filter_spad)), "fw_data": In(weight_shape),
            "iw_en": In(1), "iw_addr": In(range(ifmap_spad)), "iw_data": In(act_shape),
            "ctl": In(rs_control_layout(filter_spad, ifmap_spad, psum_spad)),
            "active": In(1),
            "down_in": In(signed(acc_bits)), "down_out": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        fdepth, idepth, pdepth = self.depths
        acc = signed(self.acc_bits)
        m.submodules.fspad = fspad = memory.Memory(shape=self.weight_shape, depth=fdepth, init=[])
        m.submodules.ispad = ispad = memory.Memory(shape=self.act_shape, depth=idepth, init=[])
        m.submodules.pspad = pspad = memory.Memory(shape=acc, depth=pdepth, init=[])
        fw, fr = fspad.write_port(), fspad.read_port(domain="comb")
        iw, ir = ispad.write_port(), ispad.read_port(domain="comb")
        pw, pr = pspad.write_port(), pspad.read_port(domain="comb")
        m.d.comb += [fw.en.eq(self.fw_en), fw.addr.eq(self.fw_addr), fw.data.eq(self.fw_data),
                     iw.en.eq(self.iw_en), iw.addr.eq(self.iw_addr), iw.data.eq(self.iw_data),
                     fr.addr.eq(self.ctl.fidx), ir.addr.eq(self.ctl.iidx)]
        product = pipelined_product(m, fr.data, ir.data, self.stages, "x")
        ctl = delay(m, self.ctl, self.stages, "ctl")   # beside the product
        total = Signal(acc)
        m.d.comb += [pr.addr.eq(ctl.k), total.eq(Mux(ctl.first, 0, pr.data) + product),
                     pw.addr.eq(ctl.k), pw.data.eq(total),
                     pw.en.eq(ctl.valid & ~ctl.last)]
        fin = Signal(acc)
        m.d.sync += [fin.eq(Mux(ctl.valid & ctl.last & self.active, total, 0)),
                     self.down_out.eq(self.down_in + fin)]
        return m
