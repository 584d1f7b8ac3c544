"""The dataflow family side by side: PE utilisation of every preset (and the shipped custom mapping)
on the same layers and array size, from the analytic model, which equals the RTL's cycle counter
(tests/test_dataflows.py checks it on every engine); ``--rtl`` also simulates each layer on
Verilator to show it (slow for big layers).

    python bench/dataflows.py                                   # 16x16, three layers
    python bench/dataflows.py --size 8 --layers resnet18:conv5_x
    python bench/dataflows.py --layers mobilenetv2:b1_dw --rtl  # + RTL cycles, bit-exact check

Default layers: a 3x3 (ResNet-18 conv3_x), a 1x1 (MobileNetV2 b1_pw) and a depthwise 3x3
(MobileNetV2 b1_dw), all from gen/workloads.csv (= ../shared/workloads/conv_layers.csv).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gen.layer import parse_layer  # noqa: E402
from gen.mapping import PRESETS  # noqa: E402
from gen.model import estimate  # noqa: E402
from gen.spec import load_spec, spec_from_dict  # noqa: E402
from gen.tiler import plan  # noqa: E402

LAYERS = ["resnet18:conv3_x", "mobilenetv2:b1_pw", "mobilenetv2:b1_dw"]


def specs(n: int):
    bufs = {"input_depth": 8192, "weight_depth": 2304, "output_depth": 4096}
    out = [spec_from_dict({"name": f"{df}_{n}x{n}", "dataflow": df, "array": {"rows": n,
                           "cols": n}, "buffers": bufs}) for df in PRESETS]
    kp = load_spec(ROOT / "specs" / "os_kp_8x8.toml").to_dict()
    kp.update(name=f"os_kp_{n}x{n}", array={"rows": n, "cols": n}, buffers=bufs)
    out.append(spec_from_dict(kp))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=16, help="array rows = cols (default 16)")
    ap.add_argument("--layers", nargs="+", default=LAYERS)
    ap.add_argument("--rtl", action="store_true", help="also run each layer on Verilator")
    args = ap.parse_args(argv)
    layers = [parse_layer(s) for s in args.layers]
    print(f"PE utilisation on a {args.size}x{args.size} array (MACs / (cycles x PEs)); "
          f"cycles from the model (= RTL)")
    head = f"{'spec':>14} {'mapping':>10}" + "".join(f" {s:>22}" for s in args.layers)
    print(head)
    for spec in specs(args.size):
        cells = []
        for layer in layers:
            est = estimate(plan(spec, layer))
            cell = f"{est.utilisation:6.1%} {est.cycles:>12,}"
            if args.rtl:
                from sim.flow import random_tensors, simulate_layer
                x, w, _ = random_tensors(spec, layer, 1)
                res = simulate_layer(spec, layer, x, w, sim="verilator")
                ok = "=" if res.cycles == est.cycles and res.match else "!"
                cell += ok
            cells.append(f" {cell:>22}")
        m = spec.mapping
        print(f"{spec.name:>14} {'x'.join(m.rows) + '|' + 'x'.join(m.cols):>10}" + "".join(cells))


if __name__ == "__main__":
    main()
