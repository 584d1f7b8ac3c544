"""cocotb test module: run one job directory written by :mod:`sim.runner`.

The job holds the input stream (``frames.bin`` + ``job.json``) and the number of output frames to
expect; the results go to ``out.bin`` and ``result.json``. It is generic: all layer knowledge stays in
the tiler and the frames encoder.
"""

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import with_timeout
from cocotb.utils import get_sim_time

from sim.driver import AcceleratorTB


@cocotb.test()
async def run_job(dut):
    job_dir = Path(os.environ["ACCELGEN_JOB"])
    job = json.loads((job_dir / "job.json").read_text())
    blob = (job_dir / "frames.bin").read_bytes()
    frames, pos = [], 0
    for n in job["frame_bytes"]:
        frames.append(blob[pos:pos + n])
        pos += n

    tb = AcceleratorTB(dut, clock_ns=10)
    tb.set_backpressure(job["in_pause"], job["out_pause"], job["seed"])
    await tb.reset()
    await tb.check_identity({k: int(v) for k, v in job["identity"].items()})
    start = get_sim_time("ns")
    outs, counters = await with_timeout(tb.run(frames, job["n_out"]),
                                        job["timeout_cycles"] * 10, "ns")
    counters["sim_cycles"] = int((get_sim_time("ns") - start) // 10)
    (job_dir / "out.bin").write_bytes(b"".join(outs))
    (job_dir / "result.json").write_text(json.dumps({
        "out_frame_bytes": [len(o) for o in outs], "counters": counters}))
