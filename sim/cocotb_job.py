"""cocotb test module: run one job directory written by :mod:`sim.runner`.

The job holds the input stream (``frames.bin`` + ``job.json``) and the number of output frames to
expect; the results go to ``out.bin`` and ``result.json``. It is generic: all layer knowledge stays in
the tiler and the frames encoder.
"""


import cocotb
from cocotb.triggers import SimTimeoutError, with_timeout
from cocotb.utils import get_sim_time

from sim.driver import AcceleratorTB
from sim.job import load_job, save_result


@cocotb.test()
async def run_job(dut):
    job_dir, job, frames = load_job()

    tb = AcceleratorTB(dut, clock_ns=10)
    tb.set_backpressure(job["in_pause"], job["out_pause"], job["seed"])
    await tb.reset()
    await tb.check_identity({k: int(v) for k, v in job["identity"].items()})
    start = get_sim_time("ns")
    try:
        outs, counters = await with_timeout(tb.run(frames, job["n_out"]),
                                            job["timeout_cycles"] * 10, "ns")
    except SimTimeoutError:   # never hang: say what the hardware was doing (flow.check_refused)
        save_result(job_dir, [], {"fault": await tb.hang(job["timeout_cycles"])})
        return
    counters["sim_cycles"] = int((get_sim_time("ns") - start) // 10)
    save_result(job_dir, outs, counters)
