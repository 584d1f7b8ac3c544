#!/usr/bin/env python3
"""Write test images of the digits model as the .npy files ``accelgen run`` takes.

    python tools/digits_data.py [--count N] [--first I] [-o build/digits]

Writes ``x.npy`` (float32, N x 1 x 8 x 8: what models/digits_cnn_int8.onnx takes) and
``labels.npy`` (int64 class indices, for ``accelgen run --labels``): test images I..I+N-1 of the
seeded split (gen/network/digits.py), N = all 359 when not given. Then::

    accelgen run specs/ws_8x8.toml models/digits_cnn_int8.onnx --input build/digits/x.npy \\
        --labels build/digits/labels.npy --check
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.network import digits  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, help="how many test images (default: all)")
    ap.add_argument("--first", type=int, default=0, help="index of the first test image")
    ap.add_argument("-o", "--out", default="build/digits", help="output folder")
    args = ap.parse_args(argv)
    _, _, x, y, _ = digits.load_split()
    end = len(y) if args.count is None else args.first + args.count
    if not (0 <= args.first < end <= len(y)):
        ap.error(f"--first/--count must pick images within the {len(y)} test images")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "x.npy", x[args.first:end])
    np.save(out / "labels.npy", y[args.first:end])
    print(f"{out}/x.npy: {end - args.first} test images {x[args.first:end].shape} float32; "
          f"{out}/labels.npy: their classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
