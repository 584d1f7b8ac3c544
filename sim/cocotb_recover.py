"""cocotb test module: recovery on the RTL (sim/recover.py writes the job).

Mode ``stream``: the first ``n_bad`` frames (a malformed stream) go in first; the status CSR's
error bit, starved bit and cause are read once the front end has taken them all (it must: a
refused stream never stalls the input) and the accelerator is idle (the COMPUTEs taken before
the error have finished) or starved (waiting inside a frame: the stream ended inside one), within
a bound; then the program runs after the driver's soft reset. Mode ``reset``: the
program starts, and at cycle ``reset_at`` (or, with ``in_store``, at the first output beat held
by backpressure after that cycle) the reset is asserted; the program then runs again from the
start. The results are the second run's, with ``bad_error``/``bad_starved``/``bad_cause``/
``reset_cycle``.
"""

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiStreamFrame

from sim.driver import AcceleratorTB
from sim.job import load_job, save_result


@cocotb.test()
async def recover(dut):
    job_dir, job, frames = load_job()
    bad, good = frames[:job["n_bad"]], frames[job["n_bad"]:]
    tb = AcceleratorTB(dut, clock_ns=10)
    tb.set_backpressure(job["in_pause"], job["out_pause"], job["seed"])
    await tb.reset()
    await tb.check_identity({k: int(v) for k, v in job["identity"].items()})
    limit = job["timeout_cycles"] * 10
    extra = {}
    if job["mode"] == "stream":
        for f in bad:
            await tb.source.send(AxiStreamFrame(f))
        try:     # every beat taken (no stall), then the COMPUTEs taken before an error finish
            await with_timeout(tb.source.wait(), limit, "ns")
            await ClockCycles(dut.clk, 4)
            status = await with_timeout(tb.settle(), limit, "ns")
            await with_timeout(tb.soft_reset(), limit, "ns")
        except SimTimeoutError:
            save_result(job_dir, [], {"fault": await tb.hang(job["timeout_cycles"])})
            return
        extra = {f"bad_{k}": status[k] for k in ("error", "starved", "cause")}
        tb.sink.clear()
    else:
        async def send():
            for f in good:
                await tb.source.send(AxiStreamFrame(f))
        sender = cocotb.start_soon(send())
        await ClockCycles(dut.clk, job["reset_at"])
        if job["in_store"]:     # wait for an output beat held by backpressure
            for _ in range(job["timeout_cycles"]):
                await RisingEdge(dut.clk)
                if dut.m_axis__tvalid.value == 1 and dut.m_axis__tready.value == 0:
                    break
        extra["reset_cycle"] = int(get_sim_time("ns") // 10)
        extra["reset_in_store"] = int(dut.m_axis__tvalid.value == 1)
        sender.cancel()
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        tb.source.clear()
        tb.sink.clear()
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2)
    start = get_sim_time("ns")
    try:
        outs, counters = await with_timeout(tb.run(good, job["n_out"]), limit, "ns")
    except SimTimeoutError:
        save_result(job_dir, [], {"fault": await tb.hang(job["timeout_cycles"])})
        return
    counters["sim_cycles"] = int((get_sim_time("ns") - start) // 10)
    save_result(job_dir, outs, counters | extra)
