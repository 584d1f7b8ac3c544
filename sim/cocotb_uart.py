"""cocotb test module: run a job through the UART top (hw/bridge.py) with cocotbext-uart.

The host side is gen/hostlink.py, the same generator the pyserial board driver runs.
"""

import logging

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.uart import UartSink, UartSource

from gen.hostlink import link_steps
from sim.job import load_job, save_result


@cocotb.test()
async def run_uart_job(dut):
    job_dir, job, frames = load_job()

    dut.rx.value = 1
    dut.rst.value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
    baud = 1e9 / (10 * job["divisor"])
    source = UartSource(dut.rx, baud=baud)
    sink = UartSink(dut.tx, baud=baud)
    for model in (source, sink):
        model.log.setLevel(logging.WARNING)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 4)

    async def drive():
        steps = link_steps(frames, job["ops"], job["store_counts"], job["out_beat_bytes"],
                           {k: int(v) for k, v in job["identity"].items()})
        reply = None
        try:
            while True:
                data, n = steps.send(reply)
                await source.write(data)
                buf = bytearray()
                while len(buf) < n:
                    buf += await sink.read(1)
                reply = bytes(buf)
        except StopIteration as done:
            return done.value

    start = get_sim_time("ns")
    outs, counters = await with_timeout(drive(), job["timeout_cycles"] * 10, "ns")
    counters["sim_cycles"] = int((get_sim_time("ns") - start) // 10)
    save_result(job_dir, outs, counters)
