"""``Accelerator(spec)``: the whole accelerator, wired from the spec. Reads no files, parses no CLI.

::

    s_axil ──> CsrBank  (identity, status, performance counters, control)
    s_axis ──> Controller ──> input/weight Scratchpads ──> SystolicArray ──> output Scratchpad
                    └───────────────────────────────────────────────── m_axis <──┘
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from gen.isa import COUNTERS, CSR_ADDR_BITS, CSRS, identity
from gen.spec import Spec

from .array import array_for
from .buffer import Scratchpad
from .controller import Controller
from .host import AxiLiteSignature, AxiStreamSignature, CsrBank

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """``pe_module``: instantiate the array's PEs as that Verilog module, emitted once by the
    caller (gen/emit.py), instead of elaborating every PE (see hw/array.py)."""

    def __init__(self, spec: Spec, *, checks: bool = False, pe_module: str | None = None):
        """``checks``: simulation assertions on the controller's registered flags (tests)."""
        if not isinstance(spec, Spec):
            raise TypeError(f"spec must be a gen.spec.Spec, not {spec!r}")
        self.spec, self.checks = spec, checks
        self.array = array_for(spec, pe_module=pe_module)
        super().__init__({
            "s_axil": In(AxiLiteSignature(CSR_ADDR_BITS)),
            "s_axis": In(AxiStreamSignature(spec.in_stream_bits)),
            "m_axis": Out(AxiStreamSignature(spec.out_stream_bits)),
        })

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        m.submodules.array = array = self.array
        m.submodules.ctrl = ctrl = Controller(spec, checks=self.checks)
        reg = spec.buffer_reg
        m.submodules.ibuf = ibuf = Scratchpad(depth=spec.input_depth, width=spec.input_word_bits,
                                              registered=reg)
        m.submodules.wbuf = wbuf = Scratchpad(depth=spec.weight_depth,
                                              width=spec.weight_word_bits, registered=reg)
        m.submodules.obuf = obuf = Scratchpad(depth=spec.output_depth,
                                              width=spec.output_word_bits, registered=reg,
                                              read_ports=2)
        for buf in (ibuf, wbuf, obuf):   # the controller's timing assumes Spec.buffer_latency
            if buf.latency != spec.buffer_latency:
                raise ValueError(f"a scratchpad reads in {buf.latency} cycles but "
                                 f"Spec.buffer_latency is {spec.buffer_latency}")
        m.submodules.csr = csr = CsrBank(CSRS, addr_bits=CSR_ADDR_BITS)

        connect(m, flipped(self.s_axis), ctrl.s_axis)
        connect(m, ctrl.m_axis, flipped(self.m_axis))
        connect(m, flipped(self.s_axil), csr.bus)
        connect(m, ctrl.ibuf_wr, ibuf.wr)
        connect(m, ctrl.ibuf_rd, ibuf.rd)
        connect(m, ctrl.wbuf_wr, wbuf.wr)
        connect(m, ctrl.wbuf_rd, wbuf.rd)
        connect(m, ctrl.obuf_wr, obuf.wr)
        connect(m, ctrl.obuf_rd, obuf.rd)
        connect(m, ctrl.obuf_rd2, obuf.rd2)
        connect(m, ctrl.array, array)

        for name, value in identity(spec).items():
            m.d.comb += getattr(csr, name).eq(value)
        m.d.comb += [
            csr.status.eq(ctrl.busy | ctrl.error << 1 | ctrl.starved << 2 | ctrl.cause << 4),
            ctrl.clear_counters.eq(csr.control_stb & csr.control[0]),
            ctrl.clear_error.eq(csr.control_stb & csr.control[1]),
            csr.commands.eq(ctrl.commands),
        ]
        for name in COUNTERS:
            value = getattr(ctrl, name)
            m.d.comb += [getattr(csr, f"{name}_lo").eq(value[:32]),
                         getattr(csr, f"{name}_hi").eq(value[32:])]
        return m
