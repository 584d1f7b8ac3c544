"""The analytic performance model: cycles and work of a :class:`~gen.tiler.Program` on the RTL.

It evaluates the same Program the driver replays, command by command, with the controller's timing
(hw/controller.py), so its figures are the hardware's, not an idealised array's. With a host that
keeps the input stream full and never stalls the output stream, ``cycles`` equals the RTL's cycle
counter exactly (tests/test_model.py checks it against Icarus); stalls add to both.

Per command (``L`` = array latency, ``RL`` = buffer read latency, both from the spec)::

    header                 HEADER_WORDS cycles (one beat each)
    LOAD_*                 count cycles
    COMPUTE  ws            per filter tap: rows (weight preload) + p*q (stream) + L + RL + 3 (drain)
             nlr           per filter tap: p*q (stream) + L + RL + 3 (drain)
             is            per filter tap: p*q (pixel preload) + count (channel stream) + L + RL + 3
             os            per filter tap: p*q (transposer fill) + rows (stream); then
                           L (wait) + rows (drain) + RL + 2
             rs            once per COMPUTE: max(count*s, rs_setup_cycles) (filter fill; 0 with
                           keep) + fill_h*fill_w (ifmap fill) + q*s*count (compute) + L + RL + 3
    STORE                  count + RL + PP + 3 cycles (reads, read latency, post-processing
                           pipeline PP, output FIFO)
"""

from __future__ import annotations

import dataclasses

from .isa import HEADER_WORDS, Op
from .tiler import Program

__all__ = ["Estimate", "estimate"]


@dataclasses.dataclass(frozen=True)
class Estimate:
    cycles: int
    array_busy: int
    commands: int
    macs: int
    pes: int

    @property
    def utilisation(self) -> float:
        return self.macs / (self.cycles * self.pes) if self.cycles else 0.0

    def as_dict(self) -> dict:
        return {"cycles": self.cycles, "array_busy": self.array_busy, "commands": self.commands,
                "macs": self.macs, "utilisation": self.utilisation}


def estimate(program: Program) -> Estimate:
    spec = program.spec
    L, RL = spec.array_latency, spec.buffer_latency
    cycles = busy = 0
    for cmd in program.commands:
        h = cmd.header
        cycles += HEADER_WORDS
        if cmd.op in (Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.LOAD_BIAS, Op.LOAD_QUANT):
            cycles += h["count"]
        elif cmd.op == Op.COMPUTE:
            taps = h["r"] * h["s"]
            pixels = h["p"] * h["q"]
            eng = spec.engine
            if eng == "ws":
                cycles += taps * (spec.rows + pixels + L + RL + 3)
                busy += taps * pixels
            elif eng == "nlr":
                cycles += taps * (pixels + L + RL + 3)
                busy += taps * pixels
            elif eng == "rs":
                steps = h["q"] * h["s"] * h["count"]
                ffill = 0 if h["keep"] else max(h["count"] * h["s"], spec.rs_setup_cycles)
                cycles += ffill + h["fill_h"] * h["fill_w"] + steps + L + RL + 3
                busy += steps
            elif eng == "is":
                cycles += taps * (pixels + h["count"] + L + RL + 3)
                busy += taps * h["count"]
            else:
                cycles += taps * (pixels + spec.rows) + L + spec.rows + RL + 2
                busy += taps * spec.rows
        elif cmd.op == Op.STORE:
            cycles += h["count"] + RL + spec.postproc_latency + 3
    return Estimate(cycles=cycles, array_busy=busy, commands=len(program.commands),
                    macs=program.macs, pes=spec.rows * spec.cols)
