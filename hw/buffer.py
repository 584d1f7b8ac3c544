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

from amaranth.hdl import Module, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Scratchpad", "WriteSignature", "ReadSignature"]


class WriteSignature(wiring.Signature):
    def __init__(self, addr_bits: int, data_bits: int):
        super().__init__({"addr": Out(addr_bits), "data": Out(data_bits), "en": Out(1)})


class ReadSignature(wiring.Signature):
    def __init__(self, addr_bits: int, data_bits: int):
        super().__init__({"addr": Out(addr_bits), "en": Out(1), "data": In(data_bits)})


def addr_bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


class Scratchpad(wiring.Component):
    def __init__(self, *, depth: int, width: int, registered: bool = False, read_ports: int = 1):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive integer, not {depth!r}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        if read_ports not in (1, 2):
            raise ValueError(f"read_ports must be 1 or 2, not {read_ports!r}")
        self.depth, self.width, self.registered = depth, width, registered
        self.read_ports = read_ports
        self.latency = 3 if registered else 1
        ab = addr_bits(depth)
        ports = {"wr": In(WriteSignature(ab, width)), "rd": In(ReadSignature(ab, width))}
        if read_ports == 2:
            ports["rd2"] = In(ReadSignature(ab, width))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=unsigned(self.width), depth=self.depth, init=[])
        wp = mem.write_port()
        domain = m.d.sync if self.registered else m.d.comb
        domain += [wp.addr.eq(self.wr.addr), wp.data.eq(self.wr.data), wp.en.eq(self.wr.en)]
        for port in [self.rd] + ([self.rd2] if self.read_ports == 2 else []):
            rp = mem.read_port()
            domain += [rp.addr.eq(port.addr), rp.en.eq(port.en)]
            domain += port.data.eq(rp.data)
        return m
