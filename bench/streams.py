#!/usr/bin/env python3
"""Malformed command streams on the ISA reference machine (sim/isa_model.py), every engine.

    python bench/streams.py --streams 5000 [--seed N] [--rtl] [--sim icarus|verilator]

Each stream starts from a real program (tiler + frames of a random small layer on a small spec
of one engine) and is then: kept (``valid``: output equal to the golden model), cut at a random
byte (``truncated``), given an unknown opcode in one header (``opcode``), a LOAD or STORE moved
past its buffer's depth (``range``), a COMPUTE moved past the output buffer (``compute``), a
COMPUTE with a zero tile field (``field``), or replaced by random bytes (``random``). The machine
must finish every stream quickly with its outputs or a :class:`~sim.isa_model.CommandError`
whose cause (gen/isa.py Cause) is the one the mutation calls for, at the mutated command, and
never raise anything else. Prints per kind: streams, errors by cause, wrong causes, crashes,
slowest stream; exits 1 on any failure.

``--rtl`` then runs a sample on the RTL of every engine (sim/recover.py, the cocotb driver): per
engine an unknown opcode, a LOAD/STORE past a depth, a zero COMPUTE field and a stream cut inside a
frame, each followed by the driver's soft reset and a valid program: the status CSR must show the
error and the model's cause (no error for the cut stream, which the soft reset drops), the input
must never stall, and the program after it must come out bit-exact with the golden model.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gen.frames import decode, encode, pack_lanes, unpack_lanes  # noqa: E402
from gen.isa import HEADER_FIELDS, HEADER_WORDS, Cause, Op  # noqa: E402
from gen.layer import ConvLayer  # noqa: E402
from gen.spec import spec_from_dict  # noqa: E402
from gen.tiler import plan  # noqa: E402
from sim import golden  # noqa: E402
from sim.flow import random_tensors  # noqa: E402
from sim.isa_model import CommandError, run  # noqa: E402

KINDS = ("valid", "truncated", "opcode", "range", "compute", "field", "random")
ENGINES = ("ws", "os", "is", "nlr", "rs")


def small_spec(flow: str):
    return spec_from_dict({"name": f"streams_{flow}", "dataflow": flow,
                           "array": {"rows": 4, "cols": 4},
                           "buffers": {"input_depth": 300, "weight_depth": 200,
                                       "output_depth": 100}}, source=flow)


def _set_field(frame: bytes, beat: int, name: str, value: int) -> bytes:
    words = unpack_lanes(frame[:HEADER_WORDS * beat], 32, 1, beat, False)[:, 0]
    hv = sum(int(w) << (32 * i) for i, w in enumerate(words))
    off, width = HEADER_FIELDS[name]
    hv = (hv & ~(((1 << width) - 1) << off)) | ((value & ((1 << width) - 1)) << off)
    hdr = np.array([(hv >> (32 * i)) & 0xFFFFFFFF for i in range(HEADER_WORDS)])
    head = bytearray(frame[:HEADER_WORDS * beat])
    new = pack_lanes(hdr.reshape(-1, 1), 32, beat)
    for i in range(HEADER_WORDS):        # only the low 32 bits of each beat carry the header
        head[i * beat:i * beat + 4] = new[i * beat:i * beat + 4]
    return bytes(head) + frame[HEADER_WORDS * beat:]


def make_stream(spec, rng, kind):
    """(frames, program, tensors, expected cause or None, mutated command index or None)."""
    layer = ConvLayer(C=int(rng.integers(1, 9)), H=int(rng.integers(3, 8)),
                      W=int(rng.integers(3, 8)), K=int(rng.integers(1, 9)),
                      R=int(rng.integers(1, 4)), S=int(rng.integers(1, 4)),
                      pad=int(rng.integers(0, 2)))
    x, w, b = random_tensors(spec, layer, int(rng.integers(1 << 30)), bias=bool(rng.integers(2)))
    program = plan(spec, layer, bias=b is not None)
    frames = encode(program, x, w, b)
    beat = spec.in_stream_bits // 8
    cmds = program.commands
    if kind == "valid":
        return frames, program, (layer, x, w, b), None, None
    if kind == "random":
        n = int(rng.integers(0, 40 * beat))
        return [rng.integers(0, 256, n, dtype=np.uint8).tobytes()], program, None, "any", None
    if kind == "truncated":
        stream = b"".join(frames)
        cut = int(rng.integers(1, len(stream)))
        # a cut on a command boundary leaves a shorter valid stream
        bounds = np.cumsum([len(f) for f in frames])
        expect = None if cut in bounds else Cause.TRUNCATED
        return [stream[:cut]], program, None, expect, None
    pick = {"opcode": list(range(len(cmds))),
            "range": [i for i, c in enumerate(cmds)
                      if c.op in (Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.STORE) and c.count],
            "compute": [i for i, c in enumerate(cmds) if c.op == Op.COMPUTE],
            "field": [i for i, c in enumerate(cmds) if c.op == Op.COMPUTE]}[kind]
    j = int(rng.choice(pick))
    c = cmds[j]
    f = frames[j]
    if kind == "opcode":
        op = int(rng.integers(7, 16)) if spec.postproc or rng.integers(2) else int(Op.LOAD_QUANT)
        f = _set_field(f, beat, "op", op)
        expect = Cause.OPCODE
    elif kind == "range":
        field, depth = {Op.LOAD_INPUT: ("addr", spec.input_depth),
                        Op.LOAD_WEIGHT: ("waddr", spec.weight_depth),
                        Op.STORE: ("oaddr", spec.output_depth)}[c.op]
        lo = max(0, depth - c.count + 1)
        f = _set_field(f, beat, field, int(rng.integers(lo, 1 << 16)))
        expect = Cause.ADDRESS
    elif kind == "compute":
        f = _set_field(f, beat, "oaddr", int(rng.integers(spec.output_depth, 1 << 16)))
        expect = Cause.ADDRESS
    else:
        names = ["p", "q", "r", "s"] + (["count"] if spec.engine in ("is", "rs") else [])
        f = _set_field(f, beat, str(rng.choice(names)), 0)
        expect = Cause.FIELD
    return [*frames[:j], f, *frames[j + 1:]], program, None, expect, j


def rtl_sample(seed: int, sim: str, in_pause: float = 0.3, out_pause: float = 0.3) -> int:
    """The RTL sample (see the module doc); returns the number of failures."""
    from sim.recover import after_bad_stream
    rng = np.random.default_rng(seed)
    failures = 0
    for flow in ENGINES:
        spec = small_spec(flow)
        for kind in ("opcode", "range", "field", "truncated"):
            bad, _, _, expect, _ = make_stream(spec, rng, kind)
            beat = spec.in_stream_bits // 8
            stream = b"".join(bad)
            if kind == "truncated":        # cut inside a frame, on a beat boundary
                stream = stream[:max(beat, len(stream) // beat * beat - 3 * beat)]
                expect = Cause.NONE
            try:
                run(spec, [stream], hazards=False)
                model = Cause.NONE
            except CommandError as e:
                model = e.cause if e.cause != Cause.TRUNCATED else Cause.NONE
            frames, program, (layer, x, w, b), _, _ = make_stream(spec, rng, "valid")
            t = time.monotonic()
            r = after_bad_stream(spec, [stream], program, frames, sim=sim, in_pause=in_pause,
                                 out_pause=out_pause, seed=int(rng.integers(1 << 16)))
            got = Cause(r.counters["bad_cause"])
            ok_cause = got == model == expect and r.counters["bad_error"] == (got != 0)
            exact = np.array_equal(decode(program, r.outputs),
                                   golden.layer_output(spec, layer, x, w, b))
            failures += not (ok_cause and exact)
            print(f"rtl {flow:4s} {kind:10s} status cause {got.name:9s} (model {model.name}), "
                  f"then {layer.describe()}: {'bit-exact' if exact else 'MISMATCH'}"
                  f"{'' if ok_cause else '  WRONG CAUSE'} ({time.monotonic() - t:.1f} s)",
                  flush=True)
    return failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=2000, help="streams (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtl", action="store_true", help="also a sample on every engine's RTL")
    ap.add_argument("--sim", default="icarus", choices=["icarus", "verilator"])
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    specs = {e: small_spec(e) for e in ENGINES}
    rows = {k: collections.Counter() for k in KINDS}
    failures = []
    slowest = 0.0
    t0 = time.monotonic()
    for n in range(args.streams):
        kind = KINDS[n % len(KINDS)]
        spec = specs[ENGINES[(n // len(KINDS)) % len(ENGINES)]]
        frames, program, tensors, expect, j = make_stream(spec, rng, kind)
        row = rows[kind]
        row["streams"] += 1
        t = time.monotonic()
        try:
            outs = run(spec, frames, hazards=kind == "valid")
            got = None
        except CommandError as e:
            got, outs = e, None
        except Exception:
            row["crashes"] += 1
            failures.append(f"{kind} {spec.engine}: {traceback.format_exc().splitlines()[-1]}")
            continue
        dt = time.monotonic() - t
        slowest = max(slowest, dt)
        if got is not None:
            row[got.cause.name] += 1
        if expect == "any":
            continue
        if expect is None and got is not None:
            row["wrong"] += 1
            failures.append(f"{kind} {spec.engine}: refused a valid stream: {got}")
        elif expect is not None and (got is None or got.cause != expect
                                     or (j is not None and got.command != j)):
            row["wrong"] += 1
            failures.append(f"{kind} {spec.engine}: expected {expect.name} at command {j}, got "
                            f"{got if got is not None else 'no error'}")
        elif kind == "valid":
            layer, x, w, b = tensors
            y = decode(program, outs)
            if not np.array_equal(y, golden.layer_output(spec, layer, x, w, b)):
                row["wrong"] += 1
                failures.append(f"valid {spec.engine}: output differs from the golden model")
    for kind, row in rows.items():
        causes = ", ".join(f"{c.name} {row[c.name]}" for c in Cause if row[c.name])
        print(f"{kind:10s} {row['streams']:6d} streams; errors: {causes or 'none'}; "
              f"wrong {row['wrong']}, crashes {row['crashes']}")
    for f in failures[:10]:
        print(f"  FAIL {f}")
    total = sum(r["streams"] for r in rows.values())
    bad = sum(r["wrong"] + r["crashes"] for r in rows.values())
    print(f"streams: {total:,} streams on {', '.join(ENGINES)}; {bad} failures; slowest "
          f"{slowest * 1000:.0f} ms; {time.monotonic() - t0:.0f} s")
    if args.rtl:
        t1 = time.monotonic()
        rtl_bad = rtl_sample(args.seed, args.sim)
        print(f"streams --rtl: {4 * len(ENGINES)} malformed streams on the {args.sim} RTL of "
              f"{', '.join(ENGINES)}; {rtl_bad} failures; {time.monotonic() - t1:.0f} s")
        bad += rtl_bad
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
