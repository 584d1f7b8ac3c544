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

from gen.isa import COUNTERS, csr_offset, status_fields, stream_cause

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

    async def settle(self) -> dict[str, int]:
        """Once the hardware has taken the whole stream: poll ``status`` until it is idle, or
        starved (waiting inside a frame: the stream ended inside a header or a LOAD's payload,
        gen/isa.py stream_cause); return its fields (gen/isa.py status_fields)."""
        while True:
            f = status_fields(await self.read_csr("status"))
            if not f["busy"] or f["starved"]:
                return f
            await RisingEdge(self.dut.clk)

    async def soft_reset(self):
        """Soft reset (``control`` bit 1: clear the error, drop a partial frame), then wait until
        the COMPUTEs the executor still holds are written (a cut stream's may still run), so the
        next program's counters count its own work alone."""
        await self.write_csr("control", 0b10)
        while (await self.read_csr("status")) & 1:
            await RisingEdge(self.dut.clk)

    async def run(self, frames: list[bytes], n_out: int) -> tuple[list[bytes], dict[str, int]]:
        """Send every frame, wait until the hardware is idle (or starved), collect the output
        frames (``n_out`` unless a command was refused or the stream ended inside a frame: then
        those it sent, and a soft reset), read the counters and the status fields."""
        await self.write_csr("control", 0b11)  # clear the counters; soft reset
        results: list[bytes] = []

        async def receive():
            for _ in range(n_out):
                frame = await self.sink.recv()
                results.append(bytes(frame.tdata))

        rx = cocotb.start_soon(receive())
        for f in frames:
            await self.source.send(AxiStreamFrame(f))
        await self.source.wait()
        status = await self.settle()
        if stream_cause(status):   # refused or cut short: every frame it will send has left
            rx.cancel()
            await self.soft_reset()
        else:
            await rx
        counters = await self.read_counters()
        return results, counters | {k: status[k] for k in ("error", "starved", "cause")}

    async def hang(self, cycles: int) -> str:
        """After a run passed its bound of ``cycles``: one line saying what the hardware was
        doing (the status fields, input still queued); then a soft reset."""
        f = status_fields(await self.read_csr("status"))
        await self.write_csr("control", 0b10)
        state = ", ".join(f"{k} {v}" for k, v in f.items())
        return (f"timeout: the run passed its bound of {cycles:,} cycles (status: {state}; "
                f"{self.source.queue_occupancy_bytes} input bytes still queued); soft reset")
