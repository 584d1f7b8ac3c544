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
