"""Amaranth-simulator helpers: drive the accelerator's streams from Python testbenches."""

import random

from amaranth.sim import Simulator

from gen.frames import unpack_lanes


def run_top(dut, spec, frames, n_out_frames, *, in_pause=0.0, out_pause=0.0, seed=0,
            max_cycles=200_000):
    """Send ``frames`` on s_axis and collect ``n_out_frames`` from m_axis, with random pauses.

    Returns (out_frames: list[bytes], cycles)."""
    rng = random.Random(seed)
    ibeat = spec.in_stream_bits // 8
    obeat = spec.out_stream_bits // 8
    beats = []
    for fr in frames:
        n = len(fr) // ibeat
        for i in range(n):
            beats.append((int.from_bytes(fr[i * ibeat:(i + 1) * ibeat], "little"), i == n - 1))
    out_frames = []
    state = {"cycles": 0}

    async def producer(ctx):
        for value, last in beats:
            while rng.random() < in_pause:
                ctx.set(dut.s_axis.tvalid, 0)
                await ctx.tick()
            ctx.set(dut.s_axis.tdata, value)
            ctx.set(dut.s_axis.tlast, last)
            ctx.set(dut.s_axis.tvalid, 1)
            await ctx.tick().until(dut.s_axis.tready)
        ctx.set(dut.s_axis.tvalid, 0)

    async def consumer(ctx):
        cur = bytearray()
        cycles = 0
        while len(out_frames) < n_out_frames:
            ready = rng.random() >= out_pause
            ctx.set(dut.m_axis.tready, ready)
            _, _, valid, last, tdata = await ctx.tick().sample(
                dut.m_axis.tvalid, dut.m_axis.tlast, dut.m_axis.tdata)
            cycles += 1
            if cycles > max_cycles:
                raise AssertionError(f"timeout after {max_cycles} cycles, "
                                     f"{len(out_frames)}/{n_out_frames} frames")
            if valid and ready:
                cur += int(tdata).to_bytes(obeat, "little")
                if last:
                    out_frames.append(bytes(cur))
                    cur = bytearray()
        state["cycles"] = cycles

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return out_frames, state["cycles"]


__all__ = ["run_top", "unpack_lanes"]
