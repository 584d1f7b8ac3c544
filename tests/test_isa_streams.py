"""Malformed command streams on the ISA reference machine: a defined error (gen/isa.py Cause) at
the offending command, before it has any effect, and nothing else (bench/streams.py at scale)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gen.frames import pack_lanes
from gen.isa import ADD_BEATS, HEADER_WORDS, Cause, Op, encode_header
from gen.spec import spec_from_dict
from sim.isa_model import CommandError, run

_path = Path(__file__).resolve().parents[1] / "bench" / "streams.py"
_spec = importlib.util.spec_from_file_location("bench_streams", _path)
streams = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(streams)

SPEC = streams.small_spec("ws")
BEAT = SPEC.in_stream_bits // 8


def _frame(op, payload=0, **fields):
    hdr = pack_lanes(np.array(encode_header(op, **fields)).reshape(HEADER_WORDS, 1), 32, BEAT)
    return hdr + bytes(BEAT * payload)


@pytest.mark.parametrize("frames, cause, command", [
    ([_frame(Op.NOP), _frame(Op.NOP)[:-1]], Cause.TRUNCATED, 1),
    ([_frame(Op.LOAD_INPUT, 3, addr=0, count=4)], Cause.TRUNCATED, 0),
    ([_frame(Op.NOP), bytes(BEAT * (HEADER_WORDS - 1))],
     Cause.TRUNCATED, 1),
    ([_frame(9)], Cause.OPCODE, 0),
    ([_frame(Op.LOAD_QUANT, 1, count=1)], Cause.OPCODE, 0),   # no post-processor in SPEC
    ([_frame(Op.LOAD_INPUT, 2, addr=299, count=2)], Cause.ADDRESS, 0),
    ([_frame(Op.LOAD_WEIGHT, 1, waddr=200, count=1)], Cause.ADDRESS, 0),
    ([_frame(Op.STORE, oaddr=99, count=2)], Cause.ADDRESS, 0),
    ([_frame(Op.COMPUTE, p=1, q=1, r=1, s=1, oaddr=100)], Cause.ADDRESS, 0),
    ([_frame(Op.COMPUTE, p=1, q=0, r=1, s=1)], Cause.FIELD, 0),
])
def test_a_malformed_command_is_refused_with_its_cause(frames, cause, command):
    with pytest.raises(CommandError) as e:
        run(SPEC, frames)
    assert e.value.cause == cause and e.value.command == command


def test_outputs_before_the_error_are_kept():
    with pytest.raises(CommandError) as e:
        run(SPEC, [_frame(Op.STORE, oaddr=0, count=2), _frame(12)])
    assert e.value.cause == Cause.OPCODE and len(e.value.outputs) == 1


# a spec with the residual unit (and the pooling unit, to refuse add with pool)
RES = spec_from_dict({"name": "res", "dataflow": "ws", "array": {"rows": 4, "cols": 4},
                       "buffers": {"input_depth": 300, "weight_depth": 200,
                                   "output_depth": 100},
                       "postproc": {"enabled": True, "residual": True},
                       "pool": {"enabled": True}})
RBEAT = RES.in_stream_bits // 8


def _rframe(op, payload=0, **fields):
    hdr = pack_lanes(np.array(encode_header(op, **fields)).reshape(HEADER_WORDS, 1), 32, RBEAT)
    return hdr + bytes(RBEAT * payload)


_ADD = dict(requant=1, add=1, qmin=-128, qmax=127)


@pytest.mark.parametrize("spec, frames, cause, command", [
    (SPEC, [_frame(Op.LOAD_ADD, ADD_BEATS, count=ADD_BEATS)], Cause.OPCODE, 0),
    (RES, [_rframe(Op.LOAD_ADD, 3, count=3)], Cause.FIELD, 0),
    (RES, [_rframe(Op.LOAD_ADD, 5, count=5)], Cause.FIELD, 0),
    (RES, [_rframe(Op.NOP), _rframe(Op.LOAD_ADD)], Cause.FIELD, 1),
    (RES, [_rframe(Op.LOAD_ADD, 2, count=ADD_BEATS)], Cause.TRUNCATED, 0),
    (SPEC, [_frame(Op.STORE, 2, oaddr=0, count=2, add=1)], Cause.FIELD, 0),
    (RES, [_rframe(Op.STORE, 2, oaddr=0, count=2, add=1)], Cause.FIELD, 0),      # no requant
    (RES, [_rframe(Op.STORE, 4, oaddr=0, count=4, pool=1, pool_r=2, pool_s=2, pool_w=2,
                   **_ADD)], Cause.FIELD, 0),
    (RES, [_rframe(Op.STORE, 1, oaddr=0, count=3, **_ADD)], Cause.TRUNCATED, 0),
    (RES, [_rframe(Op.STORE, 2, oaddr=0, count=2, **_ADD),
           _rframe(Op.STORE, 0, oaddr=0, count=2, **_ADD)], Cause.TRUNCATED, 1),
    (RES, [_rframe(Op.STORE, 2, oaddr=99, count=2, **_ADD)], Cause.ADDRESS, 0),
])
def test_a_malformed_add_is_refused_with_its_cause(spec, frames, cause, command):
    with pytest.raises(CommandError) as e:
        run(spec, frames)
    assert e.value.cause == cause and e.value.command == command


def test_an_add_store_takes_exactly_count_payload_beats():
    """A STORE with add consumes its residual (count beats), and LOAD_ADD its four: the next
    header follows; the Add's range word is two 16-bit two's complement halves."""
    one = np.float32(1.0).view(np.uint32)
    rng_word = (-5 & 0xFFFF) | (7 << 16)
    load_add = _rframe(Op.LOAD_ADD, count=ADD_BEATS) + pack_lanes(
        np.array([[one], [one], [0], [rng_word]]), 32, RBEAT)
    res = pack_lanes(np.array([[3, -9, 100, 0], [-100, 2, 4, 6]]), RES.out_bits, RBEAT)
    out = run(RES, [load_add, _rframe(Op.STORE, oaddr=0, count=2, zero_point=0, **_ADD) + res,
                    _rframe(Op.STORE, oaddr=0, count=1, requant=1, qmin=-128, qmax=127)])
    assert len(out) == 2
    got = np.frombuffer(out[0], dtype=np.int8).reshape(2, -1)[:, :4]
    # the requantised words are 0 (an empty output buffer): A + B = the residual, clamped
    assert got.tolist() == [[3, -5, 7, 0], [-5, 2, 4, 6]]


def test_streams_bench_every_engine():
    assert streams.main(["--streams", "140", "--seed", "5"]) == 0


#: fp32 NaN, +-inf, a subnormal, 0, 1.0, 2**100
_SPECIAL = [0x7FC00000, 0x7F800000, 0xFF800000, 0x00000001, 0, 0x3F800000, 0x71800000]


def test_random_streams_on_a_residual_spec_end_in_outputs_or_a_cause():
    """Random headers (LOAD_ADD and add STOREs among them, with random fp32 parameters: NaN and
    infinities too) and payloads on a spec with the residual unit: the machine returns outputs or
    raises a CommandError, nothing else (warnings are errors here)."""
    rng = np.random.default_rng(11)
    ops = [Op.LOAD_ADD, Op.STORE, Op.LOAD_QUANT, Op.NOP]
    for _ in range(300):
        frames = []
        for i in range(int(rng.integers(1, 5))):
            op = Op.LOAD_ADD if i == 0 and rng.random() < 0.5 else ops[int(rng.integers(4))]
            count = ADD_BEATS if op == Op.LOAD_ADD and rng.random() < 0.8 else int(
                rng.integers(0, 6))
            fields = dict(count=count, oaddr=int(rng.integers(0, 100)))
            if op == Op.STORE:
                fields.update(add=int(rng.random() < 0.8), requant=int(rng.random() < 0.8),
                              add_swap=int(rng.integers(2)), res_unsigned=int(rng.integers(2)),
                              qmin=int(rng.integers(-128, 1)), qmax=int(rng.integers(0, 256)))
            beats = count if op != Op.STORE or fields["add"] else 0
            payload = rng.integers(0, 256, RBEAT * (beats + int(rng.random() < 0.1)
                                                    - int(rng.random() < 0.1)),
                                   dtype=np.uint8).tobytes() if beats else b""
            if op == Op.LOAD_ADD and count == ADD_BEATS:     # special fp32 values too
                words = [int(rng.choice(_SPECIAL)) if rng.random() < 0.5
                         else int(rng.integers(1 << 32)) for _ in range(ADD_BEATS)]
                payload = pack_lanes(np.array(words).reshape(-1, 1), 32, RBEAT)
            hdr = pack_lanes(np.array(encode_header(op, **fields)).reshape(HEADER_WORDS, 1), 32,
                             RBEAT)
            frames.append(hdr + payload)
        try:
            run(RES, frames, hazards=False)
        except CommandError:
            pass
    for _ in range(200):              # and whole beats of random bytes
        blob = rng.integers(0, 256, RBEAT * int(rng.integers(1, 40)), dtype=np.uint8).tobytes()
        try:
            run(RES, [blob], hazards=False)
        except CommandError:
            pass
