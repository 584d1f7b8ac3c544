"""RTL simulation speed: the native driver (sim/native.py) against the cocotb driver; prints tables.

1. ``build``: generate + build from a cold cache, for 8x8, 16x16 and 32x32 weight-stationary int8
   arrays (Verilog size, generate seconds, native build seconds, cocotb build seconds).
2. ``rate``: simulated cycles per second of wall time, native vs cocotb, per array size (the same
   layer on each; builds cached, so only the simulation is timed).
3. ``conv3x``: ResNet-18 conv3_x (C=K=128, 28x28, 3x3; 115.6 M MACs) on specs/ws_16x16.toml,
   bit-exact and every counter equal to the model, native vs cocotb in the same run, with the
   ratio.
4. ``network``: every ResNet-18 conv layer (repeats included) on ws_16x16 in one simulator run
   (``sim.flow.simulate_programs``), total wall time.

    python bench/simspeed.py                                    # everything (long: cocotb builds)
    python bench/simspeed.py --only conv3x rate --cocotb-sizes 16
    python bench/simspeed.py --only build --sizes 8,16,32 --cocotb-sizes ""
    ACCELGEN_CACHE=/tmp/c python bench/simspeed.py --cold-in-place     # each build once

The cold-cache builds go to a fresh temporary cache; the other sections use ``$ACCELGEN_CACHE``
(or ~/.cache/accelgen), so a second run times cached builds only.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from gen import frames as framing  # noqa: E402
from gen.layer import ConvLayer, network_layers  # noqa: E402
from gen.model import estimate  # noqa: E402
from gen.spec import load_spec, spec_from_dict  # noqa: E402
from gen.tiler import plan  # noqa: E402
from sim import golden, native  # noqa: E402
from sim.flow import random_tensors, simulate_programs, verilog_for  # noqa: E402
from sim.runner import build as cocotb_build  # noqa: E402

CONV3X = ConvLayer(C=128, H=28, W=28, K=128, R=3, S=3, pad=1, name="resnet18:conv3_x")
RATE_LAYER = ConvLayer(C=64, H=28, W=28, K=64, R=3, S=3, pad=1, name="C64 28x28 K64 3x3")


def _cpu() -> float:
    """CPU seconds used so far by this process and its finished children (Yosys, Verilator, the
    C++ compiler, the simulator): steadier than wall time on a shared machine."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def _spec(n: int):
    if n == 16:
        return load_spec(ROOT / "specs" / "ws_16x16.toml")
    return spec_from_dict({"name": f"ws_{n}x{n}", "array": {"rows": n, "cols": n},
                           "buffers": {"input_depth": 8192, "weight_depth": 2304,
                                       "output_depth": 4096}})


def _program(spec, layer, seed=1):
    x, w, b = random_tensors(spec, layer, seed, bias=True)
    program = plan(spec, layer, bias=True)
    return program, framing.encode(program, x, w, b), golden.layer_output(spec, layer, x, w, b)


def _checked(spec, program, expected, run) -> str:
    """'yes' when the output is bit-exact and every counter equals the model's."""
    y = framing.decode(program, run.outputs)
    est = estimate(program)
    want = {"cycles": est.cycles, "array_busy": est.array_busy, **est.counters}
    bad = [k for k, v in want.items() if run.counters[k] != v]
    if not np.array_equal(y, expected):
        return "NO: output differs"
    return "yes" if not bad else f"NO: {', '.join(bad)} differ from the model"


def _timed_run(spec, prog, driver, sim):
    program, frames, expected = prog
    t0, c0 = time.monotonic(), _cpu()
    (run,) = simulate_programs(spec, [(program, frames)], sim=sim, driver=driver)
    dt, cpu = time.monotonic() - t0, _cpu() - c0
    return dt, run, _checked(spec, program, expected, run), cpu


def _build(spec, driver, sim):
    vpath, top = verilog_for(spec)
    if driver == "native":
        return native.build(vpath, spec, sim, top=top)
    return cocotb_build(vpath, top, sim)


def bench_build(sizes, cocotb_sizes, sim, in_place=False):
    where = "in $ACCELGEN_CACHE, kept" if in_place else "a fresh cache each"
    print(f"Cold generate + build ({sim}; {where}; 2-core machine, other jobs running; "
          f"CPU: seconds of CPU time, this process and its children)")
    print(f"{'array':>7} {'Verilog MB':>10} {'generate s':>10} {'CPU s':>6} {'native build s':>14} "
          f"{'CPU s':>6} {'cocotb build s':>14} {'load':>5}")
    saved = os.environ.get("ACCELGEN_CACHE")
    try:
        for n in sizes:
            with tempfile.TemporaryDirectory() as d:
                if in_place:
                    if saved is None or any((Path(saved) / "generated").glob(f"ws_{n}x{n}-*")):
                        sys.exit("--cold-in-place needs $ACCELGEN_CACHE set to a cache without "
                                 f"ws_{n}x{n} builds")
                else:
                    os.environ["ACCELGEN_CACHE"] = d
                spec = _spec(n)
                t0, c0 = time.monotonic(), _cpu()
                vpath, _ = verilog_for(spec)
                t_gen, c_gen = time.monotonic() - t0, _cpu() - c0
                t0, c0 = time.monotonic(), _cpu()
                _build(spec, "native", sim)
                t_nat, c_nat = time.monotonic() - t0, _cpu() - c0
                t_coc = "-"
                if n in cocotb_sizes:
                    t0 = time.monotonic()
                    _build(spec, "cocotb", sim)
                    t_coc = f"{time.monotonic() - t0:.1f}"
                print(f"{n:>3}x{n:<3} {vpath.stat().st_size / 1e6:>10.2f} {t_gen:>10.1f} "
                      f"{c_gen:>6.1f} {t_nat:>14.1f} {c_nat:>6.1f} {t_coc:>14} "
                      f"{os.getloadavg()[0]:>5.1f}", flush=True)
    finally:
        if saved is None:
            os.environ.pop("ACCELGEN_CACHE", None)
        else:
            os.environ["ACCELGEN_CACHE"] = saved
    print()


def bench_rate(sizes, cocotb_sizes, sim):
    print(f"Simulated cycles per second of wall time ({sim}, {RATE_LAYER.name}; builds cached)")
    print(f"{'array':>7} {'cycles':>10} {'native s':>9} {'native cyc/s':>13} {'cyc/CPU-s':>10} "
          f"{'cocotb s':>9} {'cocotb cyc/s':>13} {'ratio':>6} {'exact':>6} {'load':>5}")
    for n in sizes:
        spec = _spec(n)
        prog = _program(spec, RATE_LAYER)
        _build(spec, "native", sim)
        dt_n, run, ok, cpu_n = _timed_run(spec, prog, "native", sim)
        cyc = run.counters["cycles"]
        coc = ("-", "-", "-")
        if n in cocotb_sizes:
            _build(spec, "cocotb", sim)
            dt_c, run_c, ok_c, _ = _timed_run(spec, prog, "cocotb", sim)
            ok = ok if ok != "yes" else ok_c
            coc = (f"{dt_c:.1f}", f"{cyc / dt_c:,.0f}", f"{dt_c / dt_n:.1f}x")
        print(f"{n:>3}x{n:<3} {cyc:>10,} {dt_n:>9.1f} {cyc / dt_n:>13,.0f} {cyc / cpu_n:>10,.0f} "
              f"{coc[0]:>9} {coc[1]:>13} {coc[2]:>6} {ok:>6} {os.getloadavg()[0]:>5.1f}",
              flush=True)
    print()


def bench_conv3x(sim, with_cocotb):
    spec = _spec(16)
    prog = _program(spec, CONV3X)
    print(f"ResNet-18 conv3_x ({CONV3X.macs / 1e6:.1f} M MACs) on {spec.name}, {sim}, builds "
          f"cached")
    print(f"{'driver':>7} {'cycles':>10} {'wall s':>8} {'cycles/s':>10} {'exact, counters == model'}")
    rows = {}
    for driver in ("native", "cocotb") if with_cocotb else ("native",):
        _build(spec, driver, sim)
        dt, run, ok, _ = _timed_run(spec, prog, driver, sim)
        rows[driver] = dt
        cyc = run.counters["cycles"]
        print(f"{driver:>7} {cyc:>10,} {dt:>8.1f} {cyc / dt:>10,.0f} {ok}", flush=True)
    if len(rows) == 2:
        print(f"native is {rows['cocotb'] / rows['native']:.1f}x faster than cocotb")
    print()


def bench_network(sim):
    spec = _spec(16)
    layers = [layer for _, layer, repeat in network_layers("resnet18") for _ in range(repeat)]
    t0 = time.monotonic()
    progs = [_program(spec, layer, seed=k) for k, layer in enumerate(layers)]
    t_prep = time.monotonic() - t0
    _build(spec, "native", sim)
    t0 = time.monotonic()
    runs = simulate_programs(spec, [(p, f) for p, f, _ in progs], sim=sim, driver="native")
    dt = time.monotonic() - t0
    cycles = sum(r.counters["cycles"] for r in runs)
    bad = [layer.describe() for layer, (p, _, e), r in zip(layers, progs, runs, strict=True)
           if _checked(spec, p, e, r) != "yes"]
    print(f"Every ResNet-18 conv layer ({len(layers)} with repeats, "
          f"{sum(la.macs for la in layers) / 1e9:.2f} G MACs) on {spec.name}, {sim}, one "
          f"simulator run")
    print(f"  {cycles:,} cycles in {dt:.1f} s ({cycles / dt:,.0f} cycles/s); tensors, golden "
          f"and frames took {t_prep:.1f} s; "
          + ("every layer bit-exact, counters == model" if not bad else f"FAILED: {bad}"))
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=["build", "rate", "conv3x", "network"],
                    default=["build", "rate", "conv3x", "network"])
    ap.add_argument("--sizes", default="8,16,32", help="array sizes (N for NxN)")
    ap.add_argument("--cocotb-sizes", default="16",
                    help="sizes also run with the cocotb driver ('' for none)")
    ap.add_argument("--sim", default="verilator", choices=["icarus", "verilator"])
    ap.add_argument("--cold-in-place", action="store_true",
                    help="time the cold builds in $ACCELGEN_CACHE (which must not hold them yet) "
                         "and keep them for the other sections")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    cocotb_sizes = [int(s) for s in args.cocotb_sizes.split(",") if s]
    if "build" in args.only:
        bench_build(sizes, cocotb_sizes, args.sim, args.cold_in_place)
    if "rate" in args.only:
        bench_rate(sizes, cocotb_sizes, args.sim)
    if "conv3x" in args.only:
        bench_conv3x(args.sim, 16 in cocotb_sizes)
    if "network" in args.only:
        bench_network(args.sim)


if __name__ == "__main__":
    main()
