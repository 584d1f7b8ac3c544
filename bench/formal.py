#!/usr/bin/env python3
"""Bounded proofs of the generated top (sim/formal.py: SymbiYosys + Yices 2), deeper than the
default test suite's.

    python bench/formal.py [--ci] [--dataflows ws,os] [--free N] [--store N] [--layer N]

Per dataflow (a 2x2 spec, 4-bit operands, buffer depths 6/5/3): ``free`` (any input stream:
AXI4-Stream output stability, AXI4-Lite protocol), ``free+addr`` (the same with the buffer-address
property, reported, not required: the front end refuses a COMPUTE footprint past a depth, but
whether the executors stay inside it is not proved), ``store``
(two STOREs under any backpressure: output beats equal to the ISA machine's, tlast placement, beat
count, addresses), ``cover-store`` (the whole store program comes out within the depth), ``layer``
(a conv layer's loads, COMPUTE and STORE; every property). ``--ci`` runs the depths of
``make formal``. Prints one row per proof (status, depth, seconds) and exits 1 when a required
proof fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from sim.formal import formal_spec, prove

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ci", action="store_true", help="the depths make formal runs")
    ap.add_argument("--dataflows", default="ws", help="comma-separated engines (default ws)")
    ap.add_argument("--free", type=int, help="depth of the free-stream proofs")
    ap.add_argument("--store", type=int, help="depth of the store-program proof")
    ap.add_argument("--layer", type=int, help="depth of the layer-program proof (0: skip)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per proof")
    args = ap.parse_args(argv)
    depth = {"free": 12, "store": 20, "cover-store": 28, "layer": 0} if args.ci else \
        {"free": 20, "store": 26, "cover-store": 28, "layer": 24}
    for k in ("free", "store", "layer"):
        if getattr(args, k) is not None:
            depth[k] = getattr(args, k)
    runs = [("free", depth["free"], None, True), ("free+addr", depth["free"], True, False),
            ("store", depth["store"], None, True),
            ("cover-store", depth["cover-store"], None, True)]
    if depth["layer"]:
        runs.append(("layer", depth["layer"], None, True))
    failed = 0
    t_all = time.monotonic()
    for flow in [d.strip() for d in args.dataflows.split(",") if d.strip()]:
        spec = formal_spec(flow)
        for name, d, addr, required in runs:
            r = prove(spec, name.split("+")[0], d, addr=addr, timeout=args.timeout)
            bad = required and not r.ok
            failed += bad
            print(f"{flow:4s} {name:12s} depth {d:3d}  {r.status:7s} {r.seconds:7.1f} s"
                  + (f"  {r.message}" if r.message else "")
                  + ("" if required else "  (reported, not required)"), flush=True)
    print(f"formal: {failed} required proofs failed, {time.monotonic() - t_all:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
