#!/usr/bin/env python3
"""The input fuzzing campaign at scale (tests/fuzzing.py; the default suite runs a few hundred).

    python bench/fuzz.py --cases 10000 [--seed N] [--family spec,layer,csv,cli,npy,onnx]

Cases are shared among the families: specs (TOML types, ranges, missing and unknown tables and
keys, names that are paths or keywords, corrupt bytes), layer strings, CSV layer tables, CLI
arguments, .npy tensors (dtype, shape, range, corrupt files) and ONNX models (malformed bytes,
unsupported ops, float models). Each CLI case runs ``gen.cli.main`` in process in a fresh folder
with the slow back ends stubbed (tests/fuzzing.py). Prints per family and in total: cases,
refusals, tracebacks, stray writes, protocol breaks (a refusal that is not one line with exit code
2), meaning failures (an invalid value accepted, or a value changed on its way), slow calls, and
the time; the first examples of each failure. Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

KINDS = ("traceback", "stray_write", "protocol", "meaning", "slow")


def _campaign(row, runner, family, examples, slow):
    import fuzz_oracle

    def run(case):
        t = time.monotonic()
        problems = runner(case)
        if time.monotonic() - t > slow:
            problems.append(("slow", f"{time.monotonic() - t:.1f} s: {case!r:.300}"))
        row["cases"] += 1
        row["refused"] += fuzz_oracle.LAST_REFUSED
        for kind, msg in problems:
            row[kind] += 1
            ex = examples.setdefault(f"{family}/{kind}", [])
            if len(ex) < 3:
                ex.append(f"{msg} :: {case!r:.400}")
    return run


def main(argv=None) -> int:
    from hypothesis import HealthCheck, given, seed, settings

    import fuzzing

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000, help="total cases (default 10000)")
    ap.add_argument("--seed", type=int, default=0, help="hypothesis seed")
    ap.add_argument("--family", default=",".join(fuzzing.FAMILIES),
                    help="families to run, comma-separated")
    ap.add_argument("--slow", type=float, default=30.0, help="seconds a case may take (on a "
                    "loaded machine a valid simulate case plans and checks its layer for ~10 s)")
    args = ap.parse_args(argv)
    families = [f.strip() for f in args.family.split(",") if f.strip()]
    bad = [f for f in families if f not in fuzzing.FAMILIES]
    if bad or not families or args.cases < 1:
        ap.error(f"--family takes {', '.join(fuzzing.FAMILIES)}; --cases at least 1")

    warnings.simplefilter("ignore")     # a fuzzed input may make numpy or onnx warn
    rows = {}
    examples: dict[str, list[str]] = {}
    t_all = time.monotonic()
    with fuzzing.stubs():
        for i, family in enumerate(families):
            n = args.cases // len(families) + (i < args.cases % len(families))
            strategy, runner = fuzzing.FAMILIES[family]
            row = {"cases": 0, "refused": 0, **{k: 0 for k in KINDS}}
            t0 = time.monotonic()

            run = _campaign(row, runner, family, examples, args.slow)
            run = settings(max_examples=n, deadline=None, database=None,
                           suppress_health_check=list(HealthCheck),
                           phases=["generate"])(given(case=strategy)(run))
            seed(args.seed + i)(run)()     # reproducible per family
            row["seconds"] = time.monotonic() - t0
            rows[family] = row
            print(f"{family:6s} {row['cases']:6d} cases, {row['refused']:6d} refused, "
                  + ", ".join(f"{row[k]} {k}" for k in KINDS)
                  + f", {row['seconds']:.1f} s", flush=True)

    for key, ex in examples.items():
        print(f"\n{key}:")
        for e in ex:
            print(f"  {e}")
    total = {k: sum(r[k] for r in rows.values()) for k in ("cases", "refused", *KINDS)}
    failures = sum(total[k] for k in KINDS)
    print(f"\nfuzz: {total['cases']:,} cases, {total['refused']:,} refused, "
          f"{total['traceback']} tracebacks, {total['stray_write']} stray writes, "
          f"{total['protocol']} protocol breaks, {total['meaning']} meaning failures, "
          f"{total['slow']} slow, {time.monotonic() - t_all:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
