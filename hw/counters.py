"""The performance counters (gen/isa.py COUNTERS): 64-bit sums of per-cycle events.

``events`` carries each counter's raw event of this cycle (a strobe, or a small count such as the
output buffer's two read ports); the PE-level counters are derived here from the executor's
``activity`` times the elements each event moves in the engine's datapath
(``Dataflow.per_pe_cycle``, gen/engines/: every PE works on an issued cycle; ``fills`` and
``moves`` add what an engine moves into every PE besides). Each event is registered first, so a
64-bit add does not follow the logic that raises it: every count lags its event by a cycle (they
are read when the design is idle).
``command`` counts headers as they complete, without the lag.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from gen.isa import COUNTERS
from gen.spec import Spec

from .interfaces import ActivitySignature

__all__ = ["Counters", "EventLayout"]

#: the raw events (the PE-level counters are derived from ``activity``)
EventLayout = data.StructLayout({
    "cycles": 1, "in_stall": 1, "out_stall": 1, "ibuf_reads": 1, "ibuf_writes": 1,
    "wbuf_reads": 1, "wbuf_writes": 1, "obuf_reads": 2, "obuf_writes": 1,
})


class Counters(wiring.Component):
    def __init__(self, spec: Spec):
        self.spec = spec
        super().__init__({
            "events": In(EventLayout),
            "activity": In(ActivitySignature()),
            "command": In(1),
            "clear": In(1),
            "commands": Out(32),
            **{name: Out(64) for name in COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        pes = spec.rows * spec.cols
        rf_pp, arr_pp = spec.flow.per_pe_cycle
        act = self.activity
        events = {name: getattr(self.events, name) for name in EventLayout.members}
        events |= {"array_busy": act.issue, "pe_macs": act.issue * pes,
                   "rf_accesses": act.issue * (rf_pp * pes) + act.fills * pes,
                   "array_moves": act.issue * (arr_pp * pes) + act.moves * pes}
        assert set(events) == set(COUNTERS), set(events) ^ set(COUNTERS)
        evs = {}
        for name in COUNTERS:
            evs[name] = Signal(range(6 * pes + 4), name=f"{name}_ev")
            m.d.sync += evs[name].eq(events[name])
        with m.If(self.clear):   # (a header completing as the counters clear counts)
            m.d.sync += [self.commands.eq(self.command)]
            m.d.sync += [getattr(self, n).eq(0) for n in COUNTERS]
        with m.Else():
            m.d.sync += self.commands.eq(self.commands + self.command)
            m.d.sync += [getattr(self, n).eq(getattr(self, n) + evs[n]) for n in COUNTERS]
        return m
