"""Malformed command streams on the ISA reference machine: a defined error (gen/isa.py Cause) at
the offending command, before it has any effect, and nothing else (bench/streams.py at scale)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gen.frames import pack_lanes
from gen.isa import HEADER_WORDS, Cause, Op, encode_header
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


def test_streams_bench_every_engine():
    assert streams.main(["--streams", "140", "--seed", "5"]) == 0
