#!/usr/bin/env python3
"""Soak: random layers back to back on the RTL, one simulator process per engine's spec, random
backpressure, each layer checked bit-exactly three ways (RTL == ISA reference machine == golden
model) with the RTL's buffer counters equal to the analytic model's and no error flagged.

    python bench/soak.py --layers 1000 [--residual 0.5] [--seed N] [--sim icarus|verilator]

Per engine (ws, os, is, nlr, rs) a random small spec (array shape, buffer depths, pipeline) and
its share of random layers (channels, sizes, filters, stride, padding, bias), all run by the
native driver (sim/native.py) in one simulator process (``sim.flow.simulate_programs``) with
seeded random stalls on both streams. By default the layers are plain convolutions (raw
accumulators out). ``--residual F`` gives every spec the post-processing and residual units
(``[postproc] enabled = residual = true``) and makes a share F of the layers conv + residual add
layers (gen/residual.py ConvAdd): a random requantisation (signed or unsigned, zero point at an
end or inside, sometimes a folded ReLU), then onnxruntime's QLinearAdd with a random residual
tensor and random Add parameters (scales over a few decades, zero points at the ends of the int8
and uint8 ranges, the conv as the Add's A or B, the residual int8 or uint8, the output range
signed, unsigned, ReLU-folded [zc, qmax] or narrower). Prints a row per engine (layers, of
them residual, mismatches, cycles, wall time) and the totals last; names each mismatching layer
(engine, its seed, the layer); exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.errors import AccelgenError  # noqa: E402
from gen.frames import decode, encode  # noqa: E402
from gen.layer import ConvLayer  # noqa: E402
from gen.model import estimate  # noqa: E402
from gen.quant import Requant, add_params_ok, add_quant  # noqa: E402
from gen.residual import ConvAdd  # noqa: E402
from gen.spec import spec_from_dict  # noqa: E402
from gen.tiler import plan  # noqa: E402
from sim import golden  # noqa: E402
from sim.flow import random_tensors, simulate_programs  # noqa: E402
from sim.isa_model import run as isa_run  # noqa: E402

ENGINES = ("ws", "os", "is", "nlr", "rs")
BUFFERS = ("ibuf_reads", "ibuf_writes", "wbuf_reads", "wbuf_writes", "obuf_reads", "obuf_writes")


def random_spec(flow: str, rng, residual: bool = False):
    data = {
        "name": f"soak_{flow}", "dataflow": flow,
        "array": {"rows": int(rng.integers(2, 7)), "cols": int(rng.integers(2, 7))},
        "buffers": {"input_depth": int(rng.integers(200, 600)),
                    "weight_depth": int(rng.integers(150, 400)),
                    "output_depth": int(rng.integers(100, 300))},
        "pipeline": {"mult_stages": int(rng.integers(0, 3)),
                     "buffer_reg": bool(rng.integers(2))}}
    if residual:
        data["postproc"] = {"enabled": True, "residual": True}
    return spec_from_dict(data, source=f"soak {flow}")


def random_layer(rng) -> ConvLayer:
    while True:
        try:
            return ConvLayer(C=int(rng.integers(1, 13)), H=int(rng.integers(3, 11)),
                             W=int(rng.integers(3, 11)), K=int(rng.integers(1, 13)),
                             R=int(rng.integers(1, 4)), S=int(rng.integers(1, 4)),
                             stride=int(rng.integers(1, 3)), pad=int(rng.integers(0, 2)))
        except Exception:   # noqa: BLE001 — an empty output: draw again
            continue


def _ranges(ob: int):
    return (-(1 << (ob - 1)), (1 << (ob - 1)) - 1), (0, (1 << ob) - 1)


def _zero_point(rng, lo: int, hi: int) -> int:
    """A zero point at an end of ``[lo, hi]`` (half the time), else inside."""
    r = rng.random()
    return lo if r < 0.25 else hi if r < 0.5 else int(rng.integers(lo, hi + 1))


def random_requant(spec, layer, x, w, b, rng) -> Requant:
    """Per-channel fp32 scales that bring each channel's typical accumulator near the range's
    edge (outputs spread, some saturate), a signed or unsigned range, the zero point at an end or
    inside."""
    acc = golden.conv2d(x, w, b, stride=layer.stride, pad=layer.pad, acc_bits=spec.acc_bits)
    mag = np.maximum(np.percentile(np.abs(acc), 80, axis=(0, 2, 3)), 1.0)
    ob = spec.out_bits
    scale = ((1 << (ob - 1)) / mag * rng.uniform(0.3, 3.0, layer.K)).astype(np.float32)
    lo, hi = _ranges(ob)[int(rng.integers(2))]
    return Requant(scale, _zero_point(rng, lo, hi), lo, hi)


def _ratio(rng) -> float:
    r = rng.random()
    return float(10.0 ** rng.uniform(-6, 6) if r < 0.125 else 2.0 ** int(rng.integers(-4, 2))
                 if r < 0.25 else 10.0 ** rng.uniform(-1.5, 0.3))


def random_add(spec, quant: Requant, rng):
    """Random Add parameters inside add_params_ok's domain and a residual range."""
    signed_r, unsigned_r = _ranges(spec.out_bits)
    res_signed = bool(rng.integers(2))
    rlo, rhi = signed_r if res_signed else unsigned_r
    lo, hi = signed_r if rng.integers(2) else unsigned_r
    zc = _zero_point(rng, lo, hi)
    r = rng.random()
    if r < 0.3:                     # a ReLU folded into the range: [zc, qmax] (16 values or more)
        zc = lo = int(rng.integers(lo, hi - 14))
    elif r < 0.4:                   # a narrower range (a Clip folded in), 32 values or more
        lo = int(rng.integers(lo, hi - 30))
        hi = int(rng.integers(lo + 31, hi + 1))
    # the conv side's zero point is its requantisation's (as in a network), or any
    qlo, qhi = quant.qmin, quant.qmax
    zconv = quant.zero_point if rng.random() < 0.6 else _zero_point(rng, qlo, qhi)
    zres = _zero_point(rng, rlo, rhi)
    while True:
        # the output scale over four decades; each input's scale mostly 0.03..2 times it (the
        # outputs spread over the range), one time in eight 1e-6..1e6 times it (mostly clamped),
        # one in eight a power of two times it (exact products: halfway cases for rint's ties)
        sc = float(10.0 ** rng.uniform(-4, 0))
        sconv, sres = (sc * _ratio(rng) for _ in range(2))
        swap = bool(rng.integers(2))
        a, b = ((sres, zres), (sconv, zconv)) if swap else ((sconv, zconv), (sres, zres))
        add = add_quant(a, b, (sc, zc), conv_is_b=swap, res_signed=res_signed, qmin=lo, qmax=hi)
        if add_params_ok(add.ra, add.rb, add.fixed) is None:
            return add, (rlo, rhi)


def random_residual(shape, lo: int, hi: int, rng) -> np.ndarray:
    """Uniform values, a share of them at the range's ends."""
    res = rng.integers(lo, hi + 1, shape)
    ends = rng.random(shape) < rng.uniform(0, 0.3)
    return np.where(ends, rng.choice([lo, hi], shape), res)


def random_job(spec, rng, residual_share: float):
    """A random layer on ``spec``: (what it is, its program, frames, expected output, decode
    arguments)."""
    conv = random_layer(rng)
    seed = int(rng.integers(1 << 30))
    x, w, b = random_tensors(spec, conv, seed, bias=bool(rng.integers(2)))
    if not (residual_share and rng.random() < residual_share):
        program = plan(spec, conv, bias=b is not None)
        return (f"{conv.describe()} (seed {seed})", program, encode(program, x, w, b),
                golden.layer_output(spec, conv, x, w, b), {})
    lrng = np.random.default_rng(seed)
    layer = ConvAdd(conv)
    quant = random_requant(spec, conv, x, w, b, lrng)
    relu = bool(lrng.random() < 0.2) and quant.zero_point <= quant.qmax
    add, (rlo, rhi) = random_add(spec, quant, lrng)
    res = random_residual(layer.output_shape, rlo, rhi, lrng)
    program = layer.plan(spec, bias=b is not None, requant=True, relu=relu)
    frames = layer.encode(program, x, w, b, quant, residual=res, add=add)
    want = layer.golden(spec, x, w, b, quant, relu, residual=res, add=add)
    what = f"{layer.describe()} (seed {seed}; relu {relu}; {quant!r}; {add!r})"
    return what, program, frames, want, {"quant": quant, "add": add}


def check(spec, jobs, runs) -> tuple[dict, int, list[str]]:
    """Count each job's RTL, ISA-model and counter mismatches; name the mismatching layers."""
    bad = {"mismatch": 0, "model": 0, "counters": 0}
    cycles, names = 0, []
    for (what, program, frames, want, dec), r in zip(jobs, runs, strict=True):
        rtl = r.counters.get("error", 0) != 0 or \
            not np.array_equal(decode(program, r.outputs, **dec), want)
        model = not np.array_equal(decode(program, isa_run(spec, frames), **dec), want)
        est = estimate(program).counters
        counters = any(r.counters[k] != est[k] for k in BUFFERS) \
            or r.counters["commands"] != len(program.commands)
        for k, v in (("mismatch", rtl), ("model", model), ("counters", counters)):
            bad[k] += v
        if rtl or model or counters:
            names.append(f"  {spec.label} {'RTL ' * rtl}{'ISA ' * model}"
                         f"{'counters ' * counters}: {what}")
        cycles += r.counters["cycles"]
    return bad, cycles, names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=1000, help="layers in all (default 1000)")
    ap.add_argument("--residual", type=float, default=0.0, metavar="F",
                    help="give the specs the residual unit and make a share F (0..1) of the "
                         "layers conv + residual add layers (default 0: plain convolutions)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sim", default="icarus", choices=["icarus", "verilator"])
    args = ap.parse_args(argv)
    if not 0.0 <= args.residual <= 1.0:
        ap.error(f"--residual is a share of the layers from 0 to 1, not {args.residual}")
    rng = np.random.default_rng(args.seed)
    t0 = time.monotonic()
    total = {"layers": 0, "residual": 0, "mismatch": 0, "model": 0, "counters": 0, "cycles": 0}
    for i, flow in enumerate(ENGINES):
        n = args.layers // len(ENGINES) + (i < args.layers % len(ENGINES))
        spec = random_spec(flow, rng, residual=args.residual > 0)
        jobs = [random_job(spec, rng, args.residual) for _ in range(n)]
        nres = sum(bool(j[4]) for j in jobs)
        in_pause, out_pause = (float(v) for v in rng.uniform(0, 0.5, 2))
        t = time.monotonic()
        runs = simulate_programs(spec, [(p, f) for _, p, f, _, _ in jobs], sim=args.sim,
                                 driver="native", in_pause=in_pause, out_pause=out_pause,
                                 seed=int(rng.integers(1 << 16)))
        bad, cycles, names = check(spec, jobs, runs)
        for k, v in bad.items():
            total[k] += v
        total["layers"] += n
        total["residual"] += nres
        total["cycles"] += cycles
        print(f"{flow:4s} {spec.label:8s} {n:5d} layers ({nres} residual), stalls in "
              f"{in_pause:.2f} out {out_pause:.2f}: {bad['mismatch']} RTL mismatches, "
              f"{bad['model']} ISA-model mismatches, {bad['counters']} counter differences, "
              f"{cycles:,} cycles, {time.monotonic() - t:.0f} s", flush=True)
        for line in names:
            print(line, flush=True)
    failures = total["mismatch"] + total["model"] + total["counters"]
    print(f"soak: {total['layers']:,} layers ({total['residual']:,} conv + residual add) on "
          f"{args.sim} across {', '.join(ENGINES)}; {total['mismatch']} RTL mismatches, "
          f"{total['model']} ISA-model mismatches, {total['counters']} counter differences; "
          f"{total['cycles']:,} cycles; {time.monotonic() - t0:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AccelgenError as e:
        sys.exit(f"soak: error: {e}")
