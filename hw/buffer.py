"""Scratchpads: one-write-port SRAM with one or two read ports over ``amaranth.lib.memory.Memory``.

The read port is synchronous (data one cycle after ``en``, held while ``en`` is low), so each buffer
maps to block RAM on FPGAs. With ``registered`` every path into and out of the RAM passes a register:
a block RAM's clock-to-output is most of a fast clock period, and a wide buffer spreads over many RAM
blocks, so its address and enable nets are long; registers on both sides let the logic around it run
at speed. Reads then take 3 cycles, writes land a cycle later. Ports are wiring signatures so the
controller connects to them with ``wiring.connect``.

A second read port (``rd2``, ``read_ports=2``) lets the output buffer stream a STORE while a
COMPUTE accumulates into it; on FPGAs Yosys builds it as a second copy of the block RAMs.
"""

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Scratchpad", "WriteSignature", "ReadSignature", "BANK"]

#: words per bank of a registered scratchpad: an ECP5 DP16KD holds up to 16384 words (of 1 bit), so
#: Yosys builds a buffer up to this deep from full-depth narrow block RAMs with no read mux (4096
#: words of 64 bits: 16 DP16KDs of 4096x4), and each RAM's data register follows it directly;
#: deeper buffers are split into banks chosen by a mux after those registers
BANK = 16384


class WriteSignature(wiring.Signature):
    def __init__(self, addr_bits: int, data_bits: int):
        super().__init__({"addr": Out(addr_bits), "data": Out(data_bits), "en": Out(1)})


class ReadSignature(wiring.Signature):
    def __init__(self, addr_bits: int, data_bits: int):
        super().__init__({"addr": Out(addr_bits), "en": Out(1), "data": In(data_bits)})


def addr_bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


class Scratchpad(wiring.Component):
    def __init__(self, *, depth: int, width: int, registered: bool = False, read_ports: int = 1,
                 bank: int = BANK):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        if read_ports not in (1, 2):
            raise ValueError(f"read_ports must be 1 or 2, not {read_ports!r}")
        self.depth, self.width, self.registered = depth, width, registered
        self.read_ports = read_ports
        self.bank = bank
        self.latency = 3 if registered else 1
        ab = addr_bits(depth)
        ports = {"wr": In(WriteSignature(ab, width)), "rd": In(ReadSignature(ab, width))}
        if read_ports == 2:
            ports["rd2"] = In(ReadSignature(ab, width))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        if not self.registered:
            m.submodules.mem = mem = memory.Memory(shape=unsigned(self.width), depth=self.depth,
                                                   init=[])
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(self.wr.addr), wp.data.eq(self.wr.data), wp.en.eq(self.wr.en)]
            for port in [self.rd] + ([self.rd2] if self.read_ports == 2 else []):
                rp = mem.read_port()
                m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en), port.data.eq(rp.data)]
            return m

        # registered: address and enable registers, the RAM, and a reset-less data register per
        # bank of BANK words (a block RAM's deepest native geometry), so that register directly
        # follows a RAM and the FPGA flow folds it into the block RAM's output register
        # (fpga/absorb.py); the bank is chosen after it, from a select delayed alike. The RAM is
        # marked ``no_rw_check``: the controller never reads a word in the cycle it is written
        # (gen/isa.py's hazard rules, checked by the ISA machine), so Yosys need not emulate a
        # same-cycle collision with a bypass mux behind the RAM
        bank = self.bank
        nb = -(-self.depth // bank)
        lo = addr_bits(min(self.depth, bank)) if nb > 1 else addr_bits(self.depth)
        wa, wd, we = (Signal.like(self.wr.addr), Signal.like(self.wr.data),
                      Signal.like(self.wr.en))
        m.d.sync += [wa.eq(self.wr.addr), wd.eq(self.wr.data), we.eq(self.wr.en)]
        reads = [self.rd] + ([self.rd2] if self.read_ports == 2 else [])
        ras = [Signal.like(r.addr, name=f"rd{k}_addr_r") for k, r in enumerate(reads)]
        res = [Signal(name=f"rd{k}_en_r") for k in range(len(reads))]
        for r, ra, re_ in zip(reads, ras, res, strict=True):
            m.d.sync += [ra.eq(r.addr), re_.eq(r.en)]
        datas = [[] for _ in reads]
        for b in range(nb):
            depth = min(bank, self.depth - b * bank) if nb > 1 else self.depth
            mem = memory.Memory(shape=unsigned(self.width), depth=depth, init=[],
                                attrs={"no_rw_check": 1})
            m.submodules[f"mem{b}" if nb > 1 else "mem"] = mem
            wp = mem.write_port()
            hit = (wa[lo:] == b) if nb > 1 else 1
            m.d.comb += [wp.addr.eq(wa[:lo]), wp.data.eq(wd), wp.en.eq(we & hit)]
            for k, (ra, re_) in enumerate(zip(ras, res, strict=True)):
                rp = mem.read_port()
                hit = (ra[lo:] == b) if nb > 1 else 1
                m.d.comb += [rp.addr.eq(ra[:lo]), rp.en.eq(re_ & hit)]
                data = Signal(self.width, name=f"rd{k}_data{b}", reset_less=True)
                m.d.sync += data.eq(rp.data)
                datas[k].append(data)
        for k, (r, ra, re_) in enumerate(zip(reads, ras, res, strict=True)):
            if nb == 1:
                m.d.comb += r.data.eq(datas[k][0])
                continue
            sel, sel_d = Signal(range(nb), name=f"rd{k}_bank"), Signal(range(nb),
                                                                         name=f"rd{k}_bank_d")
            with m.If(re_):
                m.d.sync += sel.eq(ra[lo:])
            m.d.sync += sel_d.eq(sel)
            with m.Switch(sel_d):
                for b in range(nb):
                    with m.Case(b):
                        m.d.comb += r.data.eq(datas[k][b])
        return m
