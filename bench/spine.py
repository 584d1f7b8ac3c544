"""Benchmarks of the end-to-end spine; prints tables.

1. Generation: wall time to elaborate + emit Verilog, and the Verilog's size, for 8x8, 16x16 and
   32x32 weight-stationary int8 arrays.
2. Utilisation: RTL cycles (the hardware's own cycle counter, read over AXI4-Lite) against the ideal
   MACs / (rows x cols) for ResNet-18 layers on the 16x16 spec, simulated on Verilator and checked
   bit-exactly against the golden model.

    python bench/spine.py                      # everything (~5 minutes on 2 cores)
    python bench/spine.py --only gen
    python bench/spine.py --only util --layers resnet18:conv2_x resnet18:conv5_x
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gen.emit import generate  # noqa: E402
from gen.layer import parse_layer  # noqa: E402
from gen.spec import load_spec, spec_from_dict  # noqa: E402
from sim.flow import random_tensors, simulate_layer  # noqa: E402


def _array_spec(n: int):
    return spec_from_dict({"name": f"ws_{n}x{n}", "array": {"rows": n, "cols": n},
                           "buffers": {"input_depth": 8192, "weight_depth": 2304,
                                       "output_depth": 4096}})


def bench_generation(sizes):
    print("Generation (Amaranth elaboration + Yosys write_verilog), one run each")
    print(f"{'array':>7} {'seconds':>8} {'Verilog bytes':>14} {'lines':>8}")
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            spec = _array_spec(n)
            t0 = time.monotonic()
            vpath, _, _ = generate(spec, Path(d) / spec.name)
            dt = time.monotonic() - t0
            text = vpath.read_text()
            print(f"{n:>3}x{n:<3} {dt:>8.1f} {len(text.encode()):>14,} {text.count(chr(10)):>8,}")
    print()


def bench_utilisation(layers, sim):
    spec = load_spec(ROOT / "specs" / "ws_16x16.toml")
    print(f"Utilisation on {spec.name} ({sim}; cycles from the RTL's cycle counter)")
    print(f"{'layer':<20} {'MACs':>12} {'ideal':>10} {'RTL cycles':>11} {'util':>6} "
          f"{'array busy':>11} {'match':>6} {'wall s':>7}")
    for name in layers:
        layer = parse_layer(name)
        x, w, b = random_tensors(spec, layer, 1)
        r = simulate_layer(spec, layer, x, w, b, sim=sim)
        ideal = -(-layer.macs // (spec.rows * spec.cols))
        print(f"{name:<20} {layer.macs:>12,} {ideal:>10,} {r.cycles:>11,} "
              f"{100 * r.utilisation:>5.1f}% {r.counters['array_busy']:>11,} "
              f"{'yes' if r.match else 'NO':>6} {r.wall_seconds:>7.1f}")
    print()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", choices=["gen", "util"])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--layers", nargs="+", default=["resnet18:conv2_x", "resnet18:conv5_x"])
    p.add_argument("--sim", default="verilator", choices=["icarus", "verilator"])
    args = p.parse_args()
    if args.only in (None, "gen"):
        bench_generation(args.sizes)
    if args.only in (None, "util"):
        bench_utilisation(args.layers, args.sim)


if __name__ == "__main__":
    main()
