"""The ISA reference machine: executes a command stream (the bytes the RTL receives) on numpy buffers.

It implements the architectural semantics of gen/isa.py with no timing, from the encoded bytes, so
tests can check the tiler, the frame encoder and the decoder against the golden model on many shapes
in milliseconds, independently of the RTL.
"""

from __future__ import annotations

import numpy as np

from gen.frames import pack_lanes, unpack_lanes
from gen.isa import ADD_BEATS, HEADER_WORDS, Cause, Op, decode_header
from gen.schedule import TOUCHES
from gen.spec import Spec
from sim.golden import qadd_int, requantize_fp32, wrap

__all__ = ["run", "HazardError", "CommandError", "check_command"]


class HazardError(AssertionError):
    """A LOAD or STORE without ``sync`` touched buffer words a COMPUTE in the executor touches."""


class CommandError(Exception):
    """The stream holds a command the machine refuses (gen/isa.py :class:`~gen.isa.Cause`):
    ``cause``, the index of the ``command`` and of its first ``beat``, and the output frames the
    commands before it produced (``outputs``)."""

    def __init__(self, cause: Cause, command: int, beat: int, message: str, outputs=()):
        super().__init__(f"command {command} (beat {beat}): {cause.name}: {message}")
        self.cause, self.command, self.beat, self.outputs = cause, command, beat, list(outputs)


def check_command(spec: Spec, h: dict) -> tuple[Cause, str] | None:
    """Why header ``h`` is refused, or None (the checks of gen/isa.py :class:`~gen.isa.Cause`)."""
    op, count = h["op"], h["count"]
    known = ({int(o) for o in Op} - (set() if spec.postproc else {int(Op.LOAD_QUANT)})
             - (set() if spec.residual else {int(Op.LOAD_ADD)}))
    if op not in known:
        return Cause.OPCODE, f"unknown opcode {op}"
    ranges = {Op.LOAD_INPUT: ("addr", spec.input_depth, "input"),
              Op.LOAD_WEIGHT: ("waddr", spec.weight_depth, "weight"),
              Op.STORE: ("oaddr", spec.output_depth, "output")}
    if spec.per_word_channels:
        ranges |= {Op.LOAD_BIAS: ("addr", spec.chan_depth, "channel"),
                   Op.LOAD_QUANT: ("addr", spec.chan_depth, "channel")}
    if op in ranges and count:
        field, depth, what = ranges[op]
        if h[field] + count > depth:
            return Cause.ADDRESS, (f"{Op(op).name} of {count} words at {h[field]} runs past the "
                                   f"{what} buffer's depth {depth}")
    if op == Op.STORE and h["pool"]:
        if not spec.pool:
            return Cause.FIELD, (f"a pooling STORE, but {spec.name} has no pooling unit "
                                 f"([pool] enabled)")
        kr, ks, pw = h["pool_r"], h["pool_s"], h["pool_w"]
        if not (kr and ks and pw) or pw % ks or count % (kr * pw):
            return Cause.FIELD, (f"a pooling STORE of {count} words with {kr}x{ks} windows in "
                                 f"rows of {pw} words: the windows must tile the words")
    if op == Op.STORE and h["add"]:
        if not spec.residual:
            return Cause.FIELD, (f"a STORE with add, but {spec.name} has no residual unit "
                                 f"([postproc] residual)")
        if not h["requant"] or h["pool"]:
            return Cause.FIELD, (f"a STORE with add {'and pool' if h['pool'] else 'without requant'}"
                                 f": the residual add takes requantised words, unpooled")
    if op == Op.LOAD_ADD and count != ADD_BEATS:
        return Cause.FIELD, f"LOAD_ADD of {count} beats, not {ADD_BEATS}"
    if op == Op.COMPUTE:
        zero = [f for f in spec.flow.compute_fields if not h[f]]
        if zero:
            return Cause.FIELD, f"COMPUTE with {', '.join(zero)} = 0"
        depths = {"ibuf": spec.input_depth, "wbuf": spec.weight_depth,
                  "obuf": spec.output_depth}
        for buf, (_lo, hi) in spec.flow.footprint(spec, h).items():
            if hi >= depths[buf]:
                return Cause.ADDRESS, (f"COMPUTE reaches {buf} word {hi}, past its depth "
                                       f"{depths[buf]}")
    return None


class Machine:
    """The machine's state: the buffers, the bias and requantisation registers and channel
    memories, the row-stationary filter spads, and per COMPUTE the words it touched."""

    def __init__(self, spec: Spec):
        self.ibuf = np.zeros((spec.input_depth, spec.rows), dtype=np.int64)
        self.wbuf = np.zeros((spec.weight_depth, spec.weight_lanes), dtype=np.int64)
        self.obuf = np.zeros((spec.output_depth, spec.cols), dtype=np.int64)
        self.chan_bias = np.zeros(max(1, spec.chan_depth), dtype=np.int64)   # per-word channels
        self.chan_quant = np.zeros(max(1, spec.chan_depth), dtype=np.int64)
        self.bias_reg = np.zeros(spec.cols, dtype=np.int64)
        self.q_scale = np.zeros(spec.cols, dtype=np.int64)    # fp32 bits per lane
        self.spads = {"filter": np.zeros((0, spec.rows), dtype=np.int64)}   # row-stationary
        self.add = np.zeros(ADD_BEATS, dtype=np.int64)    # LOAD_ADD's words: rA, rB, fixed, range
        self.touched: dict[str, np.ndarray] = {}


def run(spec: Spec, frames: list[bytes], *, hazards: bool = True) -> list[bytes]:
    """Execute ``frames`` (the input stream) and return the output stream's frames. A command
    the machine refuses raises :class:`CommandError` before it has any effect; ``hazards``
    checks the program's synchronisation (:class:`HazardError`)."""
    beat = spec.in_stream_bits // 8
    obeat = spec.out_stream_bits // 8
    stream = b"".join(frames)
    beats = len(stream) // beat
    whole = len(stream) % beat == 0
    # the low 32 bits of every whole beat
    words = unpack_lanes(stream[:beats * beat], 32, 1, beat, signed=False)[:, 0]
    m = Machine(spec)
    depths = {"ibuf": spec.input_depth, "wbuf": spec.weight_depth, "obuf": spec.output_depth}
    running = []     # per COMPUTE the executor may still hold (at most two: one running, one
    #                  queued): buffer -> the words it touched
    out = []
    i = ncmd = 0
    loads = (Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.LOAD_BIAS, Op.LOAD_QUANT, Op.LOAD_ADD)
    while i < beats or (not whole and i == beats):
        if i + HEADER_WORDS > beats:
            raise CommandError(Cause.TRUNCATED, ncmd, i, f"the stream ends inside a header "
                               f"({beats - i} of {HEADER_WORDS} beats)", out)
        h = decode_header([int(v) for v in words[i:i + HEADER_WORDS]])
        bad = check_command(spec, h)
        if bad:
            raise CommandError(bad[0], ncmd, i, bad[1], out)
        op, count = h["op"], h["count"]
        takes = op in loads or (op == Op.STORE and h["add"])     # a payload of count beats
        if takes and i + HEADER_WORDS + count > beats:
            what = "STORE's residual" if op == Op.STORE else f"{Op(op).name}"
            raise CommandError(Cause.TRUNCATED, ncmd, i, f"the stream ends inside a {what} "
                               f"payload ({beats - i - HEADER_WORDS} of {count} beats)", out)
        i += HEADER_WORDS
        ncmd += 1
        payload = stream[i * beat:(i + count) * beat] if takes else b""
        # the front end runs LOADs and STOREs beside the executor's COMPUTEs (gen/isa.py):
        # without sync they must not touch what those touch
        if h["sync"] or op == Op.LOAD_BIAS:
            running = []
        elif op in TOUCHES and count and hazards:
            buf, field = TOUCHES[op]
            near = running[-1:] if op == Op.STORE else running   # (STOREs wait for the rest)
            if any(t[buf][h[field]:h[field] + count].any() for t in near):
                raise HazardError(
                    f"{op.name} of {count} words at {buf} {h[field]} without sync touches words "
                    f"a COMPUTE in the executor touches")
        if op == Op.COMPUTE:
            running = [*running[-1:], {b: np.zeros(d, dtype=bool) for b, d in depths.items()}]
            m.touched = running[-1]
        if op == Op.LOAD_INPUT:
            vals = unpack_lanes(payload, spec.act_bits, spec.rows, beat, spec.act_signed)
            m.ibuf[h["addr"]:h["addr"] + count] = vals
            i += count
        elif op == Op.LOAD_WEIGHT:
            vals = unpack_lanes(payload, spec.weight_bits, spec.weight_lanes, beat, spec.weight_signed)
            m.wbuf[h["waddr"]:h["waddr"] + count] = vals
            i += count
        elif op == Op.LOAD_BIAS:
            # a shift register: each beat enters at lane cols-1 and moves the others down one lane
            vals = unpack_lanes(payload, spec.acc_bits, 1, beat, True)[:, 0]
            if spec.per_word_channels:
                m.chan_bias[h["addr"]:h["addr"] + count] = vals
            m.bias_reg = np.concatenate([m.bias_reg, vals])[-spec.cols:]
            i += count
        elif op == Op.LOAD_QUANT:
            vals = unpack_lanes(payload, 32, 1, beat, False)[:, 0]
            if spec.per_word_channels:
                m.chan_quant[h["addr"]:h["addr"] + count] = vals
            m.q_scale = np.concatenate([m.q_scale, vals])[-spec.cols:]
            i += count
        elif op == Op.LOAD_ADD:
            m.add = unpack_lanes(payload, 32, 1, beat, False)[:, 0]
            i += count
        elif op == Op.COMPUTE:
            for dst, y, init, base in spec.flow.isa_compute(spec, h, m):
                m.obuf[dst] = wrap(y + base if init else m.obuf[dst] + y, spec.acc_bits)
        elif op == Op.STORE:
            if h["add"]:
                res = unpack_lanes(payload, spec.out_bits, spec.cols, beat,
                                   not h["res_unsigned"])
                i += count
            out.append(_store(spec, m, h, obeat, res if h["add"] else None))
    return out


def _store(spec: Spec, m: Machine, h: dict, obeat: int, residual=None) -> bytes:
    """A STORE's output frame: the words requantised (or ReLU'd), then max-pooled, or added to
    ``residual`` (its payload's words, with ``add``)."""
    count = h["count"]
    acc = m.obuf[h["oaddr"]:h["oaddr"] + count]
    if h["requant"]:   # fp32-exact; relu is folded into qmin by the host
        bits = m.chan_quant[:count, None] if spec.per_word_channels else m.q_scale[None, :]
        scale = bits.astype(np.uint32).view(np.float32)
        lo, hi = h["qmin"], h["qmax"]
        with np.errstate(all="ignore"):     # (scales the host never sends: NaN, inf)
            if lo <= hi:
                y = requantize_fp32(acc, scale, h["zero_point"], lo, hi)
            else:   # outside the ISA's domain: as hw/requant.py's multiplexer, below qmin first
                t = requantize_fp32(acc, scale, h["zero_point"], -(1 << 40), 1 << 40)
                y = np.where(t < lo, lo, hi)
        bits = spec.out_bits
    else:
        y, bits = (np.maximum(acc, 0) if h["relu"] else acc), spec.acc_bits
    if h["add"]:              # each lane: the Add of the requantised value and the residual
        y = _add(m.add, y, residual, h["add_swap"])
    if h["pool"] and count:   # words in rows of pool_w, max over each window (per lane)
        kr, ks, pw = h["pool_r"], h["pool_s"], h["pool_w"]
        y = y.reshape(count // (kr * pw), kr, pw // ks, ks, -1).max(axis=(1, 3))
        y = y.reshape(-1, y.shape[-1])
    return pack_lanes(y, bits, obeat)


def _add(words: np.ndarray, a: np.ndarray, b: np.ndarray, swap: int) -> np.ndarray:
    """onnxruntime's QLinearAdd of the requantised words ``a`` and the residual ``b`` (or ``b``
    and ``a`` with ``swap``) with LOAD_ADD's ``words``: fp32 rA, rB, fixed, then the range."""
    ra, rb, fixed = (np.asarray(int(v), dtype=np.uint32).view(np.float32) for v in words[:3])
    lo, hi = ((((int(words[3]) >> sh) & 0xFFFF) ^ 0x8000) - 0x8000 for sh in (0, 16))
    A, B = (b, a) if swap else (a, b)
    return qadd_int(A, B, ra, rb, fixed, lo, hi)
