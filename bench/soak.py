#!/usr/bin/env python3
"""Soak: random layers back to back on the RTL, one simulator process per engine's spec, random
backpressure, each layer checked bit-exactly three ways (RTL == ISA reference machine == golden
model) with the RTL's buffer counters equal to the analytic model's and no error flagged.

    python bench/soak.py --layers 1000 [--seed N] [--sim icarus|verilator]

Per engine (ws, os, is, nlr, rs) a random small spec (array shape, buffer depths, pipeline) and
its share of random layers (channels, sizes, filters, stride, padding, bias), all run by the
native driver (sim/native.py) in one simulator process (``sim.flow.simulate_programs``) with
seeded random stalls on both streams. Prints a row per engine (layers, mismatches, cycles, wall
time) and the totals last; exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.frames import decode, encode  # noqa: E402
from gen.layer import ConvLayer  # noqa: E402
from gen.model import estimate  # noqa: E402
from gen.spec import spec_from_dict  # noqa: E402
from gen.tiler import plan  # noqa: E402
from sim import golden  # noqa: E402
from sim.flow import random_tensors, simulate_programs  # noqa: E402
from sim.isa_model import run as isa_run  # noqa: E402

ENGINES = ("ws", "os", "is", "nlr", "rs")
BUFFERS = ("ibuf_reads", "ibuf_writes", "wbuf_reads", "wbuf_writes", "obuf_reads", "obuf_writes")


def random_spec(flow: str, rng):
    return spec_from_dict({
        "name": f"soak_{flow}", "dataflow": flow,
        "array": {"rows": int(rng.integers(2, 7)), "cols": int(rng.integers(2, 7))},
        "buffers": {"input_depth": int(rng.integers(200, 600)),
                    "weight_depth": int(rng.integers(150, 400)),
                    "output_depth": int(rng.integers(100, 300))},
        "pipeline": {"mult_stages": int(rng.integers(0, 3)),
                     "buffer_reg": bool(rng.integers(2))}}, source=f"soak {flow}")


def random_layer(rng) -> ConvLayer:
    while True:
        try:
            return ConvLayer(C=int(rng.integers(1, 13)), H=int(rng.integers(3, 11)),
                             W=int(rng.integers(3, 11)), K=int(rng.integers(1, 13)),
                             R=int(rng.integers(1, 4)), S=int(rng.integers(1, 4)),
                             stride=int(rng.integers(1, 3)), pad=int(rng.integers(0, 2)))
        except Exception:   # noqa: BLE001 — an empty output: draw again
            continue


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=1000, help="layers in all (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sim", default="icarus", choices=["icarus", "verilator"])
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    t0 = time.monotonic()
    total = {"layers": 0, "mismatch": 0, "model": 0, "counters": 0, "cycles": 0}
    for i, flow in enumerate(ENGINES):
        n = args.layers // len(ENGINES) + (i < args.layers % len(ENGINES))
        spec = random_spec(flow, rng)
        progs = []
        for _ in range(n):
            layer = random_layer(rng)
            x, w, b = random_tensors(spec, layer, int(rng.integers(1 << 30)),
                                     bias=bool(rng.integers(2)))
            program = plan(spec, layer, bias=b is not None)
            frames = encode(program, x, w, b)
            progs.append((program, frames, golden.layer_output(spec, layer, x, w, b)))
        in_pause, out_pause = (float(v) for v in rng.uniform(0, 0.5, 2))
        t = time.monotonic()
        runs = simulate_programs(spec, [(p, f) for p, f, _ in progs], sim=args.sim,
                                 driver="native", in_pause=in_pause, out_pause=out_pause,
                                 seed=int(rng.integers(1 << 16)))
        bad = {"mismatch": 0, "model": 0, "counters": 0}
        cycles = 0
        for (program, frames, want), r in zip(progs, runs, strict=True):
            bad["mismatch"] += r.counters.get("error", 0) != 0 or \
                not np.array_equal(decode(program, r.outputs), want)
            bad["model"] += not np.array_equal(decode(program, isa_run(spec, frames)), want)
            est = estimate(program).counters
            bad["counters"] += any(r.counters[k] != est[k] for k in BUFFERS) \
                or r.counters["commands"] != len(program.commands)
            cycles += r.counters["cycles"]
        for k, v in bad.items():
            total[k] += v
        total["layers"] += n
        total["cycles"] += cycles
        print(f"{flow:4s} {spec.label:8s} {n:5d} layers, stalls in {in_pause:.2f} out "
              f"{out_pause:.2f}: {bad['mismatch']} RTL mismatches, {bad['model']} ISA-model "
              f"mismatches, {bad['counters']} counter differences, {cycles:,} cycles, "
              f"{time.monotonic() - t:.0f} s", flush=True)
    failures = total["mismatch"] + total["model"] + total["counters"]
    print(f"soak: {total['layers']:,} layers on {args.sim} across {', '.join(ENGINES)}; "
          f"{total['mismatch']} RTL mismatches, {total['model']} ISA-model mismatches, "
          f"{total['counters']} counter differences; {total['cycles']:,} cycles; "
          f"{time.monotonic() - t0:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
