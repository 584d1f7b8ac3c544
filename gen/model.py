"""The analytic performance model: cycles and work of a :class:`~gen.program.Program` on the RTL.

It evaluates the same Program the driver replays, command by command, with the controller's timing
(hw/controller.py and its units), so its figures are the hardware's, not an idealised array's. With
a host that keeps the input stream full and never stalls the output stream, ``cycles`` equals the
RTL's cycle counter exactly (tests/test_cocotb.py and tests/test_dataflows.py check every counter
against Icarus); stalls add to both.

It replays the controller's two state machines (hw/frontend.py, hw/engines/) on a timeline: the
*front end* spends HEADER_WORDS cycles per header and one dispatch cycle, then ``count`` cycles per
LOAD and ``count + RL + PP + 3`` per STORE (reads, read latency, post-processing pipeline PP,
output FIFO; a pooling STORE reads its ``count`` words as fast, and its windows' maxima take the
pooling stage's register PL more; it dispatches no sooner than the check of its window fields,
``Spec.pool_check_latency`` cycles after its header; a STORE with ``add`` reads a word as its
residual beat arrives, and its words take the residual add's AL more, ``Spec.add_latency``);
it queues each COMPUTE for the *executor* as soon as the queue is free, and waits,
for a ``sync`` command or LOAD_BIAS, until every COMPUTE is written, for a STORE until all but the
last are. The executor takes a queued COMPUTE a cycle after it is free and spends, from its first
state, the cycles its engine's ``cost`` gives (gen/engines/; ``L`` = array latency, ``RL`` =
buffer read latency, both from the spec). On an engine that ``chains`` (ws) a COMPUTE queued
before the running one's last tap begins follows that tap as a tap follows a tap, a cycle later:
no weight load, no drain. The run ends when both units are done.

Buffer accesses (``buffers``) are the word counts the RTL's buffer counters report (gen/isa.py
COUNTERS); they do not depend on stalls, so they equal the RTL's exactly even under backpressure.

Energy (:func:`energy`) prices the accesses per storage level in units of one MAC, with the
Eyeriss paper's normalised costs by default (register file 1, PE-to-PE 2, global buffer 6, DRAM
200; the spec's ``[energy]`` table overrides them). Levels, counted per data element:

* DRAM: every element crossing the host stream (LOAD payloads, an add STORE's residual, STORE
  results);
* global buffer: every buffer word access from the counters, times its lanes;
* array (PE to PE, or bus to PE): the operands and partial sums each issued PE-cycle passes
  between PEs (each engine's ``per_pe_cycle``, gen/engines/), plus preload/fill deliveries;
* register file / scratchpad: the operand and partial-sum accesses inside each PE.

Every PE of the array performs each issued cycle (lanes the tile leaves empty multiply zeros), so
``pe_cycles = array_busy × PEs`` is what the MAC term prices; ``macs`` counts the layer's own. The
RTL counts the MAC, register-file and array levels too (``pe_macs``, ``rf_accesses``,
``array_moves``), from the same events; :attr:`Estimate.counters` is every counter predicted.
"""

from __future__ import annotations

import dataclasses

from .isa import COUNTERS, HEADER_WORDS, PE_COUNTERS, Op, store_beats
from .program import Program
from .progress import report

__all__ = ["Estimate", "estimate", "BUFFER_COUNTERS", "energy", "ENERGY_LEVELS"]

#: energy levels, cheapest first (spec fields ``energy_<level>``)
ENERGY_LEVELS = ("mac", "rf", "array", "gb", "dram")



#: the buffer counters of gen/isa.py COUNTERS, which the model predicts
BUFFER_COUNTERS = tuple(c for c in COUNTERS if c.split("_")[0] in ("ibuf", "wbuf", "obuf"))


@dataclasses.dataclass(frozen=True)
class Estimate:
    cycles: int
    array_busy: int
    commands: int
    macs: int
    pes: int
    buffers: dict = dataclasses.field(default_factory=dict)   # BUFFER_COUNTERS -> word accesses
    accesses: dict = dataclasses.field(default_factory=dict)  # ENERGY_LEVELS -> element accesses

    @property
    def counters(self) -> dict:
        """Every RTL counter the model predicts beyond cycles: the buffer counters and the
        PE-level ones (gen/isa.py COUNTERS)."""
        return {**self.buffers, **{c: self.accesses[lv] for c, lv in PE_COUNTERS.items()}}

    @property
    def utilisation(self) -> float:
        return self.macs / (self.cycles * self.pes) if self.cycles else 0.0

    def as_dict(self) -> dict:
        return {"cycles": self.cycles, "array_busy": self.array_busy, "commands": self.commands,
                "macs": self.macs, "utilisation": self.utilisation, **self.counters}


def estimate(program: Program) -> Estimate:
    spec = program.spec
    L, RL = spec.array_latency, spec.buffer_latency
    busy = 0
    # fe: the cycle the front end starts its next header; qfree: the executor's queue is empty
    # from then; xr: the executor is back in XIDLE (ws: while its last sums drain) and xf:
    # every result is written; tl: the cycle the last COMPUTE's last tap began (ws), pl: its
    # pixels (hw/engines/weight_stationary.py: the queue, the drain in XIDLE and the chaining)
    fe = qfree = xr = xf = 0
    tl = pl = -1
    written = [0]      # per COMPUTE: the cycle its last output word's write is seen (n_out)
    flow = spec.flow
    wlag = flow.drain_lag          # ... before xf: the drain's last cycles
    if flow.chains:
        lead, gap = flow.lead(spec), flow.tap_gap(spec)  # a tap lasts at least gap (weights load)
        shadow = flow.shadow_free(spec)
    acc = dict.fromkeys(BUFFER_COUNTERS, 0)
    extra_rf = extra_array = 0     # fills and drains not proportional to issued cycles
    n_cmds = len(program.commands)
    for i, cmd in enumerate(program.commands):
        if not i & 0xFFFF:
            report("model: command", i, n_cmds)
        h = cmd.header
        d = fe + HEADER_WORDS          # the dispatch cycle
        if cmd.op == Op.COMPUTE:
            d = max(d, qfree)
        elif cmd.op == Op.LOAD_BIAS or h.get("sync"):
            d = max(d, written[-1])
        elif cmd.op == Op.STORE and len(written) > 2:
            d = max(d, written[-2])
        if cmd.op == Op.STORE and h.get("pool"):     # the window check (hw/poolcheck.py)
            d = max(d, fe + HEADER_WORDS + spec.pool_check_latency)
        fe = d + 1
        if cmd.op in (Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.LOAD_BIAS, Op.LOAD_QUANT, Op.LOAD_ADD):
            fe += h["count"]
            if cmd.op == Op.LOAD_INPUT:
                acc["ibuf_writes"] += h["count"]
            elif cmd.op == Op.LOAD_WEIGHT:
                acc["wbuf_writes"] += h["count"]
        elif cmd.op == Op.COMPUTE:
            taps = h["r"] * h["s"]
            pixels = h["p"] * h["q"]
            cost = flow.cost(spec, h)
            busy += cost.busy
            extra_rf += cost.extra_rf
            extra_array += cost.extra_array
            if taps and pixels and (h["count"] or not flow.needs_count):
                if flow.chains and d + 1 <= tl:
                    # queued before the running COMPUTE's last tap began: its first tap follows
                    # that tap as a tap follows a tap (its weights load behind it)
                    qfree = tl + pl + 1       # (taken in CHAIN, the cycle after its last)
                    first = tl + max(pl + 1, gap)
                    tl = first + (taps - 1) * max(pixels, gap)
                    xr = tl + pixels
                    xf = xr + L + RL + 3
                else:          # XIDLE takes it from the queue; the first state follows
                    start = max(d + 1, xr) + 1
                    qfree = start
                    if flow.chains and tl >= 0:   # its weights wait for the shadows to free
                        start = max(start, tl + shadow)
                    xf = start + cost.cycles
                    if flow.chains:
                        tl = start + lead + (taps - 1) * max(pixels, gap)
                        xr = tl + pixels
                    else:
                        xr = xf
                pl = pixels
                written.append(xf - wlag)
            acc["ibuf_reads"] += cost.words[0]
            acc["wbuf_reads"] += cost.words[1]
            acc["obuf_reads"] += cost.words[2]
            acc["obuf_writes"] += cost.words[2]
        elif cmd.op == Op.STORE:
            if h["count"]:
                fe += (h["count"] + RL + spec.postproc_latency + 3
                       + (spec.pool_latency if h.get("pool") else 0)
                       + (spec.add_latency if h.get("add") else 0))
            acc["obuf_reads"] += h["count"]
    rf, arr = flow.per_pe_cycle
    pe_cycles = busy * spec.rows * spec.cols
    dram = sum((store_beats(c.header) if c.op == Op.STORE else c.count) * _lanes(spec, c.op)
               for c in program.commands if c.op in (Op.LOAD_INPUT, Op.LOAD_WEIGHT, Op.STORE))
    # an add STORE's residual (its payload, a word per output word) crosses the host stream too
    dram += sum(c.count * spec.cols for c in program.commands
                if c.op == Op.STORE and c.header.get("add"))
    gb = ((acc["ibuf_reads"] + acc["ibuf_writes"]) * spec.rows
           + (acc["wbuf_reads"] + acc["wbuf_writes"]) * spec.weight_lanes
           + (acc["obuf_reads"] + acc["obuf_writes"]) * spec.cols)
    levels = {"mac": pe_cycles, "rf": rf * pe_cycles + extra_rf,
              "array": arr * pe_cycles + extra_array, "gb": gb, "dram": dram}
    return Estimate(cycles=max(fe, xf), array_busy=busy, commands=len(program.commands),
                    macs=program.macs, pes=spec.rows * spec.cols, buffers=acc, accesses=levels)


def _lanes(spec, op) -> int:
    if op == Op.LOAD_INPUT:
        return spec.rows
    if op == Op.LOAD_WEIGHT:
        return spec.weight_lanes
    return spec.cols


def energy(spec, est: Estimate) -> dict:
    """Energy per level in MAC units (``accesses × cost``), with the spec's costs, and the total
    and total per useful MAC."""
    out = {lv: est.accesses[lv] * getattr(spec, f"energy_{lv}") for lv in ENERGY_LEVELS}
    total = sum(out.values())
    return {**out, "total": total, "per_mac": total / est.macs if est.macs else 0.0}
