#!/usr/bin/env python3
"""Write a real-architecture network from gen/network/zoo.py, quantized, and an input for it, as
the files ``accelgen run`` takes (no download: seeded weights and calibration set).

    python tools/zoo_model.py [resnet18|mobilenet_v2_blocks] [--size 224] [--seed 0] \\
        [-o build/resnet18]

Builds the float model with seeded He-normal weights (``--seed``), quantizes it with
``quantize_static`` (QDQ, uint8 activations, per-channel int8 weights) on four seeded random
calibration inputs, and writes ``MODEL_int8.onnx`` and ``x.npy`` (one random float32 input of the
model's shape). Then::

    accelgen run specs/ws_16x16.toml build/resnet18/resnet18_int8.onnx \\
        --input build/resnet18/x.npy --sim verilator --check
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NETWORKS = ("resnet18", "mobilenet_v2_blocks")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("network", nargs="?", default="resnet18", choices=NETWORKS)
    ap.add_argument("--size", type=int, help="input height and width (default: 224 for "
                                             "resnet18, 56 for mobilenet_v2_blocks)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the weights, calibration set "
                                                        "and input")
    ap.add_argument("-o", "--out", help="output folder (default: build/NETWORK)")
    args = ap.parse_args(argv)
    size = args.size or (224 if args.network == "resnet18" else 56)
    if size < 32:
        ap.error(f"--size must be at least 32, not {size}")
    logging.getLogger().setLevel(logging.ERROR)     # quantize_static's advice to pre-process
    from gen.network import zoo
    fm = getattr(zoo, args.network)(seed=args.seed, size=size)
    rng = np.random.default_rng(args.seed + 1)
    cal = [rng.normal(size=(1, 3, size, size)).astype(np.float32) for _ in range(4)]
    qm = zoo.quantize(fm, cal, activations="uint8", per_channel=True)
    out = Path(args.out or f"build/{args.network}")
    out.mkdir(parents=True, exist_ok=True)
    model = out / f"{args.network}_int8.onnx"
    model.write_bytes(qm.SerializeToString())
    x = rng.normal(size=(1, 3, size, size)).astype(np.float32)
    np.save(out / "x.npy", x)
    print(f"{model}: {args.network} {size}x{size}, quantized (uint8 activations, per-channel "
          f"int8 weights); {out / 'x.npy'}: input (1, 3, {size}, {size}) float32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
