"""The cocotb driver: replays a Program's frames on the RTL through cocotbext-axi bus models.

``AcceleratorTB`` owns the clock, the reset and three bus models: an ``AxiStreamSource`` for the
command stream, an ``AxiStreamSink`` for results and an ``AxiLiteMaster`` for the CSRs. Random
backpressure comes from cycling pause generators on both streams.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame,
                           AxiStreamSink, AxiStreamSource)

from gen.isa import COUNTERS, csr_offset

__all__ = ["AcceleratorTB", "COUNTERS"]


def _pauses(probability: float, seed: int):
    rng = random.Random(seed)
    while True:
        yield rng.random() < probability


class AcceleratorTB:
    def __init__(self, dut, *, clock_ns: int = 10):
        self.dut = dut
        dut.rst.value = 0  # registers start at their init values; reset() then pulses rst so
        #                    the bus models see its edges and drive their idle levels
        cocotb.start_soon(Clock(dut.clk, clock_ns, unit="ns").start(start_high=False))
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_"), dut.clk, dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_"), dut.clk, dut.rst)
        self.csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
        for model in (self.source, self.sink, self.csr.write_if, self.csr.read_if):
            model.log.setLevel("WARNING")

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    def set_backpressure(self, in_pause: float, out_pause: float, seed: int):
        if in_pause > 0:
            self.source.set_pause_generator(_pauses(in_pause, seed))
        if out_pause > 0:
            self.sink.set_pause_generator(_pauses(out_pause, seed + 1))

    async def read_csr(self, name: str) -> int:
        return await self.csr.read_dword(csr_offset(name))

    async def write_csr(self, name: str, value: int):
        await self.csr.write_dword(csr_offset(name), value)

    async def read_counters(self) -> dict[str, int]:
        out = {"commands": await self.read_csr("commands")}
        for name in COUNTERS:
            lo = await self.read_csr(f"{name}_lo")
            hi = await self.read_csr(f"{name}_hi")
            out[name] = lo | hi << 32
        return out

    async def check_identity(self, expected: dict[str, int]):
        """Read the identity CSRs (gen.isa.identity) and compare with the program's target."""
        for name, value in expected.items():
            got = await self.read_csr(name)
            if got != value:
                raise AssertionError(f"CSR {name} reads {got:#x}, the program was built for "
                                     f"{value:#x}")

    async def run(self, frames: list[bytes], n_out: int) -> tuple[list[bytes], dict[str, int]]:
        """Send every frame, collect ``n_out`` output frames, wait for idle, read the counters."""
        await self.write_csr("control", 0b11)  # clear counters and error
        results: list[bytes] = []

        async def receive():
            for _ in range(n_out):
                frame = await self.sink.recv()
                results.append(bytes(frame.tdata))

        rx = cocotb.start_soon(receive())
        for f in frames:
            await self.source.send(AxiStreamFrame(f))
        await self.source.wait()
        await rx
        while (await self.read_csr("status")) & 1:
            await RisingEdge(self.dut.clk)
        status = await self.read_csr("status")
        counters = await self.read_counters()
        counters["error"] = (status >> 1) & 1
        counters["cause"] = (status >> 4) & 0xF     # gen/isa.py Cause
        return results, counters
