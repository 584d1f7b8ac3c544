#!/usr/bin/env python3
"""Malformed command streams on the ISA reference machine (sim/isa_model.py), every engine.

    python bench/streams.py --streams 5000 [--seed N] [--rtl [M]] [--sim icarus|verilator]

Each stream starts from a real program (tiler + frames of a random small layer on a small spec
of one engine) and is then: kept (``valid``: output equal to the golden model), cut at a random
byte (``truncated``), given an unknown opcode in one header (``opcode``), a LOAD or STORE moved
past its buffer's depth (``range``), a COMPUTE moved past the output buffer (``compute``), a
COMPUTE with a zero tile field (``field``), a STORE made a pooling STORE whose windows do not
tile its words (``pool``; on is and rs, whose specs have no pooling unit, any pooling STORE), or
replaced by random bytes (``random``). The specs of ws, os and nlr have the pooling unit. The machine
must finish every stream quickly with its outputs or a :class:`~sim.isa_model.CommandError`
whose cause (gen/isa.py Cause) is the one the mutation calls for, at the mutated command, and
never raise anything else. Prints per kind: streams, errors by cause, wrong causes, crashes,
slowest stream; exits 1 on any failure.

``--rtl [M]`` then runs M streams (default 35) on the RTL, every engine in turn (sim/recover.py, the
cocotb driver): in turn an unknown opcode, a LOAD/STORE past a depth, a COMPUTE past the output
buffer, a zero COMPUTE field, a pooling STORE whose windows do not tile its words, a valid
stream cut inside a frame (a header or a LOAD's payload) and random whole beats, each followed by
the driver's soft reset and a valid program: the status CSR must show the model's cause (for the
cut stream no error but ``starved``, which the driver reports as TRUNCATED: gen/isa.py
stream_cause; for random beats whatever the model says, NONE included), the input must never
stall, the driver's waits are bounded (a timeout is a failure with its one line), and the program
after it must come out bit-exact with the golden model.
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

from gen.errors import AccelgenError  # noqa: E402
from gen.frames import decode, encode, pack_lanes, unpack_lanes  # noqa: E402
from gen.isa import HEADER_FIELDS, HEADER_WORDS, Cause, Op, stream_cause  # noqa: E402
from gen.layer import ConvLayer  # noqa: E402
from gen.spec import spec_from_dict  # noqa: E402
from gen.tiler import plan  # noqa: E402
from sim import golden  # noqa: E402
from sim.flow import random_tensors  # noqa: E402
from sim.isa_model import CommandError, run  # noqa: E402

KINDS = ("valid", "truncated", "opcode", "range", "compute", "field", "pool", "random")
ENGINES = ("ws", "os", "is", "nlr", "rs")


def small_spec(flow: str):
    return spec_from_dict({"name": f"streams_{flow}", "dataflow": flow,
                           "array": {"rows": 4, "cols": 4},
                           "buffers": {"input_depth": 300, "weight_depth": 200,
                                       "output_depth": 100},
                           "pool": {"enabled": flow in ("ws", "os", "nlr")}}, source=flow)


def _bad_windows(rng, count: int) -> dict:
    """Pooling window fields that do not tile ``count`` words (gen/isa.py STORE): a zero field,
    ``pool_w`` not a multiple of ``pool_s``, or ``count`` not a multiple of ``pool_r * pool_w``."""
    for _ in range(50):
        kr, ks = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        pw = ks * int(rng.integers(1, 5))
        how = int(rng.integers(3))
        if how == 0:
            f = {"pool_r": kr, "pool_s": ks, "pool_w": pw}
            f[str(rng.choice(list(f)))] = 0
            return f
        if how == 1 and ks > 1:
            return {"pool_r": kr, "pool_s": ks, "pool_w": pw + int(rng.integers(1, ks))}
        if how == 2 and count % (kr * pw):
            return {"pool_r": kr, "pool_s": ks, "pool_w": pw}
    return {"pool_r": 0, "pool_s": 1, "pool_w": 1}


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
            "pool": [i for i, c in enumerate(cmds) if c.op == Op.STORE],
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
    elif kind == "pool":       # (on a spec without the pooling unit any pooling STORE)
        for name, v in {"pool": 1, **_bad_windows(rng, c.count)}.items():
            f = _set_field(f, beat, name, v)
        expect = Cause.FIELD
    elif kind == "compute":
        f = _set_field(f, beat, "oaddr", int(rng.integers(spec.output_depth, 1 << 16)))
        expect = Cause.ADDRESS
    else:
        names = ["p", "q", "r", "s"] + (["count"] if spec.engine in ("is", "rs") else [])
        f = _set_field(f, beat, str(rng.choice(names)), 0)
        expect = Cause.FIELD
    return [*frames[:j], f, *frames[j + 1:]], program, None, expect, j


def cut_inside_a_frame(spec, rng) -> bytes:
    """A valid program's stream cut on a beat boundary strictly inside one of its frames (a
    header, or a LOAD's payload): what the hardware cannot know has ended."""
    frames = make_stream(spec, rng, "valid")[0]
    beat = spec.in_stream_bits // 8
    j = int(rng.integers(len(frames)))
    k = int(rng.integers(1, len(frames[j]) // beat))
    return b"".join(frames[:j]) + frames[j][:k * beat]


RTL_KINDS = ("opcode", "range", "compute", "field", "pool", "truncated", "random")


def rtl_sample(seed: int, sim: str, n: int = len(RTL_KINDS) * len(ENGINES),
               in_pause: float = 0.3, out_pause: float = 0.3) -> int:
    """``n`` malformed streams on the RTL (see the module doc), the kinds of RTL_KINDS in turn on
    each engine in turn; returns the number of failures."""
    from sim.recover import after_bad_stream
    rng = np.random.default_rng(seed)
    specs = {e: small_spec(e) for e in ENGINES}
    failures = 0
    for i in range(n):
        kind = RTL_KINDS[i % len(RTL_KINDS)]
        flow = ENGINES[(i // len(RTL_KINDS)) % len(ENGINES)]
        spec = specs[flow]
        if kind == "truncated":
            stream, expect = cut_inside_a_frame(spec, rng), Cause.TRUNCATED
        elif kind == "random":     # whole beats (no partial beat reaches the hardware)
            beat = spec.in_stream_bits // 8
            stream = rng.integers(0, 256, int(rng.integers(1, 40)) * beat, np.uint8).tobytes()
            expect = None          # whatever the model says
        else:
            bad, _, _, expect, _ = make_stream(spec, rng, kind)
            stream = b"".join(bad)
        try:
            run(spec, [stream], hazards=False)
            model = Cause.NONE
        except CommandError as e:
            model = e.cause
        frames, program, (layer, x, w, b), _, _ = make_stream(spec, rng, "valid")
        t = time.monotonic()
        try:
            r = after_bad_stream(spec, [stream], program, frames, sim=sim, in_pause=in_pause,
                                 out_pause=out_pause, seed=int(rng.integers(1 << 16)))
        except AccelgenError as e:     # a timeout: the driver's one line
            failures += 1
            print(f"rtl {flow:4s} {kind:10s} FAILED: {e}", flush=True)
            continue
        got = stream_cause({k: r.counters[f"bad_{k}"] for k in ("error", "starved", "cause")})
        ok_cause = got == model and expect in (None, model)
        exact = np.array_equal(decode(program, r.outputs),
                               golden.layer_output(spec, layer, x, w, b))
        failures += not (ok_cause and exact)
        print(f"rtl {flow:4s} {kind:10s} status: {getattr(got, 'name', got)!s:9s} (model "
              f"{model.name}), then {layer.describe()}: {'bit-exact' if exact else 'MISMATCH'}"
              f"{'' if ok_cause else '  WRONG CAUSE'} ({time.monotonic() - t:.1f} s)", flush=True)
    return failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=2000, help="streams (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtl", type=int, nargs="?", const=len(RTL_KINDS) * len(ENGINES), default=0,
                    metavar="M", help="also M malformed streams on the RTL, every engine in turn "
                    f"(default {len(RTL_KINDS) * len(ENGINES)}: each RTL kind on each engine)")
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
        rtl_bad = rtl_sample(args.seed, args.sim, args.rtl)
        print(f"streams --rtl: {args.rtl} malformed streams ({', '.join(RTL_KINDS)}) on the "
              f"{args.sim} RTL of {', '.join(ENGINES[:-(-args.rtl // len(RTL_KINDS))])}, each "
              f"then a valid layer; "
              f"{rtl_bad} failures (wrong cause, mismatch or timeout); "
              f"{time.monotonic() - t1:.0f} s")
        bad += rtl_bad
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
