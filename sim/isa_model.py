"""The ISA reference machine: executes a command stream (the bytes the RTL receives) on numpy buffers.

It implements the architectural semantics of gen/isa.py with no timing, from the encoded bytes, so
tests can check the tiler, the frame encoder and the decoder against the golden model on many shapes
in milliseconds, independently of the RTL.
"""

from __future__ import annotations

import numpy as np

from gen.frames import pack_lanes, unpack_lanes
from gen.isa import HEADER_WORDS, QUANT_SHIFT_BITS, QUANT_SHIFT_OFFSET, Op, decode_header
from gen.spec import Spec
from gen.tiler import TOUCHES
from sim.golden import requantize, wrap

__all__ = ["run", "HazardError"]


class HazardError(AssertionError):
    """A LOAD or STORE without ``sync`` touched buffer words a COMPUTE in the executor touches."""


def _rs_compute(spec, h, ibuf, wbuf, obuf, chan_bias, spads, touched):
    """Row-stationary COMPUTE (gen/isa.py): PE row i convolves filter row i % r of input lane
    lane + i // r; column j < p is output row j; output word (q, k) at oaddr + q*count + k.
    ``spads["filter"]`` holds the filter spads' words, refilled unless ``keep``."""
    R, S, U, D = h["r"], h["s"], h["stride"], h["dilation"]
    P, Q, kn = h["p"], h["q"], h["count"]
    if not h["keep"]:
        spads["filter"] = wbuf[h["waddr"]:h["waddr"] + kn * S].copy()
        touched["wbuf"][h["waddr"]:h["waddr"] + kn * S] = True
    for fy in range(h["fill_h"]):
        a0 = h["addr"] + fy * h["row_step"]
        touched["ibuf"][a0:a0 + h["fill_w"]] = True
    filters = spads["filter"]
    y = np.zeros((Q, kn, spec.cols), dtype=np.int64)
    for i in range(spec.rows):
        r, c = i % R, h["lane"] + i // R
        if c >= spec.rows:              # a lane the input word does not have: zero
            continue
        for s in range(S):
            wv = filters[np.arange(kn) * S + s, i]                             # (k,)
            for j in range(P):
                addr = (h["addr"] + (j * U + r * D) * h["row_step"] + np.arange(Q) * U
                        + s * D)
                y[:, :, j] += np.outer(ibuf[addr, c], wv)
    dst = slice(h["oaddr"], h["oaddr"] + Q * kn)
    touched["obuf"][dst] = True
    y = y.reshape(Q * kn, spec.cols)
    if h["accumulate"]:
        obuf[dst] = wrap(obuf[dst] + y, spec.acc_bits)
    else:
        base = np.tile(chan_bias[:kn], Q)[:, None] if h["bias"] else 0
        obuf[dst] = wrap(y + base, spec.acc_bits)


def run(spec: Spec, frames: list[bytes]) -> list[bytes]:
    """Execute ``frames`` (the input stream) and return the output stream's frames."""
    beat = spec.in_stream_bits // 8
    obeat = spec.out_stream_bits // 8
    stream = b"".join(frames)
    beats = len(stream) // beat
    words = unpack_lanes(stream, 32, 1, beat, signed=False)[:, 0]  # low 32 bits of every beat
    eng = spec.engine
    wlanes = spec.weight_lanes
    ibuf = np.zeros((spec.input_depth, spec.rows), dtype=np.int64)
    wbuf = np.zeros((spec.weight_depth, wlanes), dtype=np.int64)
    chan_bias = np.zeros(max(1, spec.chan_depth), dtype=np.int64)    # per-word (is)
    chan_quant = np.zeros(max(1, spec.chan_depth), dtype=np.int64)
    obuf = np.zeros((spec.output_depth, spec.cols), dtype=np.int64)
    bias_reg = np.zeros(spec.cols, dtype=np.int64)
    q_mult = np.zeros(spec.cols, dtype=np.int64)
    q_shift = np.zeros(spec.cols, dtype=np.int64)
    spads = {"filter": np.zeros((0, spec.rows), dtype=np.int64)}   # row-stationary
    depths = {"ibuf": spec.input_depth, "wbuf": spec.weight_depth, "obuf": spec.output_depth}
    running = []     # per COMPUTE the executor may still hold (at most two: one running, one
    #                  queued): buffer -> the words it touched
    out = []
    i = 0
    while i < beats:
        h = decode_header([int(v) for v in words[i:i + HEADER_WORDS]])
        i += HEADER_WORDS
        op, count = h["op"], h["count"]
        loads = (Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.LOAD_BIAS, Op.LOAD_QUANT)
        payload = stream[i * beat:(i + count) * beat] if op in loads else b""
        # the front end runs LOADs and STOREs beside the executor's COMPUTEs (gen/isa.py):
        # without sync they must not touch what those touch
        if h["sync"] or op == Op.LOAD_BIAS:
            running = []
        elif op in TOUCHES and count:
            buf, field = TOUCHES[op]
            near = running[-1:] if op == Op.STORE else running   # (STOREs wait for the rest)
            if any(t[buf][h[field]:h[field] + count].any() for t in near):
                raise HazardError(
                    f"{op.name} of {count} words at {buf} {h[field]} without sync touches words "
                    f"a COMPUTE in the executor touches")
        if op == Op.COMPUTE:
            running = [*running[-1:], {b: np.zeros(d, dtype=bool) for b, d in depths.items()}]
            touched = running[-1]
        if op == Op.LOAD_INPUT:
            vals = unpack_lanes(payload, spec.act_bits, spec.rows, beat, spec.act_signed)
            ibuf[h["addr"]:h["addr"] + count] = vals
            i += count
        elif op == Op.LOAD_WEIGHT:
            vals = unpack_lanes(payload, spec.weight_bits, wlanes, beat, spec.weight_signed)
            wbuf[h["waddr"]:h["waddr"] + count] = vals
            i += count
        elif op == Op.LOAD_BIAS:
            # a shift register: each beat enters at lane cols-1 and moves the others down one lane
            vals = unpack_lanes(payload, spec.acc_bits, 1, beat, True)[:, 0]
            if spec.per_word_channels:
                chan_bias[h["addr"]:h["addr"] + count] = vals
            bias_reg = np.concatenate([bias_reg, vals])[-spec.cols:]
            i += count
        elif op == Op.LOAD_QUANT:
            vals = unpack_lanes(payload, 32, 1, beat, False)[:, 0]
            if spec.per_word_channels:
                chan_quant[h["addr"]:h["addr"] + count] = vals
            q_mult = np.concatenate([q_mult, vals & ((1 << spec.mult_bits) - 1)])[-spec.cols:]
            q_shift = np.concatenate([q_shift, (vals >> QUANT_SHIFT_OFFSET)
                                      & ((1 << QUANT_SHIFT_BITS) - 1)])[-spec.cols:]
            i += count
        elif op == Op.COMPUTE and eng == "rs":
            _rs_compute(spec, h, ibuf, wbuf, obuf, chan_bias, spads, touched)
        elif op == Op.COMPUTE:
            P, Q = h["p"], h["q"]
            pp, qq = np.meshgrid(np.arange(P), np.arange(Q), indexing="ij")
            rows, cols = spec.rows, spec.cols
            for r in range(h["r"]):
                for s in range(h["s"]):
                    tap = r * h["s"] + s
                    addr = (h["addr"] + pp * h["row_step"] + r * h["dil_step"]
                            + qq * h["stride"] + s * h["dilation"]).reshape(-1)
                    touched["ibuf"][addr] = True
                    if eng == "is":
                        # lane j holds pixel npix-1-j; word k is output channel k of the block
                        kn = h["count"]
                        wk = wbuf[h["waddr"] + tap * kn:][:kn]          # (k, c)
                        touched["wbuf"][h["waddr"] + tap * kn:][:kn] = True
                        y = np.zeros((kn, cols), dtype=np.int64)
                        y[:, :P * Q] = (ibuf[addr] @ wk.T).T[:, ::-1]
                        dst = slice(h["oaddr"], h["oaddr"] + kn)
                        base = chan_bias[:kn, None] if h["bias"] else 0
                    else:
                        if eng == "nlr":
                            blk = wbuf[h["waddr"] + tap].reshape(rows, cols)
                            touched["wbuf"][h["waddr"] + tap] = True
                        else:
                            blk = wbuf[h["waddr"] + tap * rows:][:rows]
                            touched["wbuf"][h["waddr"] + tap * rows:][:rows] = True
                        y = ibuf[addr] @ blk
                        dst = slice(h["oaddr"], h["oaddr"] + P * Q)
                        base = bias_reg if h["bias"] else 0
                    touched["obuf"][dst] = True
                    if r == 0 and s == 0 and not h["accumulate"]:
                        obuf[dst] = wrap(y + base, spec.acc_bits)
                    else:
                        obuf[dst] = wrap(obuf[dst] + y, spec.acc_bits)
        elif op == Op.STORE:
            acc = obuf[h["oaddr"]:h["oaddr"] + count]
            if h["requant"] and spec.per_word_channels:
                qm = chan_quant[:count] & ((1 << spec.mult_bits) - 1)
                qs = (chan_quant[:count] >> QUANT_SHIFT_OFFSET) & ((1 << QUANT_SHIFT_BITS) - 1)
                y = requantize(acc[None, :, :, None], qm, qs, out_bits=spec.out_bits,
                               rounding=spec.rounding, relu=bool(h["relu"]))
                out.append(pack_lanes(y[0, :, :, 0], spec.out_bits, obeat))
            elif h["requant"]:
                y = requantize(acc.T[None, :, :, None], q_mult, q_shift, out_bits=spec.out_bits,
                               rounding=spec.rounding, relu=bool(h["relu"]))
                out.append(pack_lanes(y[0, :, :, 0].T, spec.out_bits, obeat))
            else:
                out.append(pack_lanes(np.maximum(acc, 0) if h["relu"] else acc, spec.acc_bits,
                                      obeat))
    return out
