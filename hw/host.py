"""The host interface: AXI4-Lite CSRs and AXI4-Stream signatures.

Port names follow the AXI spec with Amaranth's ``__`` separator (``s_axis__tdata``,
``s_axil__awaddr``), so cocotbext-axi's bus models find them with the prefixes ``s_axis_`` and
``s_axil_``. The CSR bank is a small AXI4-Lite slave (one outstanding read and write, OKAY responses;
unmapped addresses read as zero) built from the register table in :mod:`gen.isa`.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiStreamSignature", "AxiLiteSignature", "CsrBank"]


class AxiStreamSignature(wiring.Signature):
    """AXI4-Stream as seen from the transmitter."""

    def __init__(self, data_bits: int):
        if data_bits % 8:
            raise ValueError(f"data_bits must be a multiple of 8, not {data_bits!r}")
        super().__init__({"tdata": Out(data_bits), "tvalid": Out(1), "tlast": Out(1),
                          "tready": In(1)})


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite as seen from the manager."""

    def __init__(self, addr_bits: int, data_bits: int = 32):
        super().__init__({
            "awaddr": Out(addr_bits), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_bits), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_bits), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })


class CsrBank(wiring.Component):
    """32-bit registers at the byte offsets of ``csrs`` (``(name, offset, access, doc)`` rows).

    A read-only register ``name`` is an input port sampled when read (reads take three cycles); a
    write-only register is an output port ``name`` carrying the written data and a one-cycle strobe
    ``name_stb``, both registered (a cycle after the write)."""

    def __init__(self, csrs, *, addr_bits: int):
        self.csrs = list(csrs)
        self.addr_bits = addr_bits
        sig = {"bus": In(AxiLiteSignature(addr_bits))}
        for name, offset, access, _ in self.csrs:
            if offset % 4 or offset >> addr_bits:
                raise ValueError(f"CSR {name} offset must be word-aligned and below "
                                 f"{1 << addr_bits}, not {offset:#x}")
            if access == "ro":
                sig[name] = In(32)
            elif access == "wo":
                sig[name] = Out(32)
                sig[name + "_stb"] = Out(1)
            else:
                raise ValueError(f"CSR {name} access must be 'ro' or 'wo', not {access!r}")
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        word = slice(2, self.addr_bits)

        write = bus.awvalid & bus.wvalid & ~bus.bvalid
        m.d.comb += [bus.awready.eq(write), bus.wready.eq(write), bus.bresp.eq(0)]
        with m.If(write):
            m.d.sync += bus.bvalid.eq(1)
        with m.Elif(bus.bready):
            m.d.sync += bus.bvalid.eq(0)

        # a read takes three cycles: the address is registered, then each group of eight
        # registers is narrowed to one word (registered), then the group is chosen, so neither
        # half of the wide read mux starts from the bus or ends far from a register
        ro = [(offset >> 2, getattr(self, name)) for name, offset, access, _ in self.csrs
              if access == "ro"]
        groups = sorted({idx >> 3 for idx, _ in ro})
        ra, pending, stage = Signal(self.addr_bits - 2), Signal(), Signal()
        picked = {g: Signal(32, name=f"rgroup{g}") for g in groups}
        m.d.comb += [bus.arready.eq(~bus.rvalid & ~pending & ~stage), bus.rresp.eq(0)]
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [ra.eq(bus.araddr[word]), pending.eq(1)]
        for g in groups:
            m.d.sync += picked[g].eq(0)
            with m.Switch(ra[:3]):
                for idx, value in ro:
                    if idx >> 3 == g:
                        with m.Case(idx & 7):
                            m.d.sync += picked[g].eq(value)
        with m.If(pending):
            m.d.sync += [pending.eq(0), stage.eq(1)]
        with m.If(stage):
            m.d.sync += [stage.eq(0), bus.rvalid.eq(1), bus.rdata.eq(0)]
            with m.Switch(ra[3:]):
                for g in groups:
                    with m.Case(g):
                        m.d.sync += bus.rdata.eq(picked[g])
        with m.Elif(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)

        # written values and their strobes are registered: they reach the design a cycle after
        # the write, from a register rather than from the bus's address decode
        for name, offset, access, _ in self.csrs:
            if access == "wo":
                m.d.sync += [
                    getattr(self, name).eq(bus.wdata),
                    getattr(self, name + "_stb").eq(write & (bus.awaddr[word] == offset >> 2)),
                ]
        return m
