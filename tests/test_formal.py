"""Bounded proofs (SymbiYosys + Yices) on the generated top of a small spec, at a quick depth;
bench/formal.py runs them deeper (sim/formal.py says what each property is)."""

import pytest

from sim.formal import formal_program, formal_spec, prove

SPEC = formal_spec("ws")


def test_free_stream_protocols():
    # any input stream, any backpressure, any compliant AXI4-Lite manager: the output stream
    # holds tvalid/tdata/tlast while stalled, AXI4-Lite answers by the protocol
    r = prove(SPEC, "free", 10)
    assert r.ok, r.log[-3000:]


def test_store_program_beats_and_addresses():
    # two STOREs under every stall pattern: each output beat is the ISA machine's, tlast on each
    # frame's last beat, never a beat too many, every buffer address below its depth
    r = prove(SPEC, "store", 16)
    assert r.ok, r.log[-3000:]


@pytest.mark.parametrize("what", ["data", "tlast"])
def test_a_wrong_reference_is_caught(what):
    # the beat property can fail: the same proof against a reference one bit off
    beats, outs, lasts = formal_program(SPEC, "store")
    if what == "data":
        outs = [outs[0] ^ 1, *outs[1:]]
    else:
        lasts = [not lasts[0], *lasts[1:]]
    r = prove(SPEC, "store", 16, program=(beats, outs, lasts))
    assert r.status == "FAIL" and "formal.py" in r.message, r.log[-3000:]
