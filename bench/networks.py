#!/usr/bin/env python3
"""Whole networks against onnxruntime: the numpy reference (sim/netgolden.py) and the network with
its accelerator layers (conv, FC, global average pool) on the ISA reference machine
(sim/netisa.py), bit for bit, with wall times.

    python bench/networks.py [--isa] [--resnet] [--spec specs/ws_16x16.toml]

Rows: the committed digits CNN on its whole test split (accuracy too), MobileNetV2's first
inverted-residual blocks at 56x56, and with --resnet ResNet-18 at 224x224 (built with
onnx.helper, seeded He weights, quantize_static uint8 per-channel with a seeded random
calibration set). --isa also runs each network with its accelerator layers through gen.tiler.plan +
gen.frames.encode + sim.isa_model.run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _row(name, model, graph, x, labels, spec, isa):
    from sim import netgolden, netisa, ortref
    t0 = time.monotonic()
    env = netgolden.run(graph, x)
    t_ref = time.monotonic() - t0
    s = ortref.session(model)
    t0 = time.monotonic()
    s.run(None, {graph.inputs[0]: x})
    t_ort = time.monotonic() - t0
    cmp = ortref.compare(model, graph, env, {graph.inputs[0]: x})
    row = {"network": name, "nodes": len(graph.nodes), "reference s": f"{t_ref:.2f}",
           "onnxruntime s": f"{t_ort:.4f}", "reference": cmp.describe()}
    if labels is not None:
        out = env[graph.outputs[0]]
        ort_out = cmp.outputs[graph.outputs[0]]
        row["accuracy"] = (f"ref {(out.argmax(1) == labels).mean():.4f} / "
                           f"ort {(ort_out.argmax(1) == labels).mean():.4f}")
    if isa:
        t0 = time.monotonic()
        env2, runs = netisa.run(spec, graph, x)
        row["ISA s"] = f"{time.monotonic() - t0:.1f}"
        row["ISA"] = (ortref.compare(model, graph, env2, {graph.inputs[0]: x}).describe()
                      + f"; {sum(r.reference_equal for r in runs)}/{len(runs)} layers' "
                        f"accumulators equal")
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isa", action="store_true",
                    help="also run the accelerator layers on the ISA model")
    ap.add_argument("--resnet", action="store_true", help="include ResNet-18 at 224x224")
    ap.add_argument("--spec", default="specs/ws_16x16.toml")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)
    import onnx

    from gen.network import digits, load
    from gen.network.zoo import mobilenet_v2_blocks, quantize, resnet18
    from gen.spec import load_spec
    spec = load_spec(args.spec)
    rows = []
    _, _, x, y, _ = digits.load_split()
    m = onnx.load(digits.MODEL_PATH)
    rows.append(_row(f"digits CNN (int8 QDQ), {len(y)} test images", m, load(m, batch=len(y)),
                     x, y, spec, args.isa))
    rng = np.random.default_rng(1)
    nets = [("MobileNetV2 blocks 56x56 (uint8, per-channel)", mobilenet_v2_blocks(seed=0), 56)]
    if args.resnet:
        nets.append(("ResNet-18 224x224 (uint8, per-channel)", resnet18(seed=0), 224))
    for name, fm, size in nets:
        cal = [rng.normal(size=(1, 3, size, size)).astype(np.float32) for _ in range(4)]
        t0 = time.monotonic()
        qm = quantize(fm, cal, activations="uint8", per_channel=True)
        t_q = time.monotonic() - t0
        xin = rng.normal(size=(1, 3, size, size)).astype(np.float32)
        row = _row(name, qm, load(qm), xin, None, spec, args.isa)
        row["quantize s"] = f"{t_q:.1f}"
        rows.append(row)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    for r in rows:
        print()
        for k in keys:
            if k in r:
                print(f"  {k:14s} {r[k]}")


if __name__ == "__main__":
    main()
