"""The controller: executes the tile commands of gen/isa.py, composed of units.

It parses command headers from the input stream, writes LOAD payloads into the buffers, runs
COMPUTE tiles on the spec's PE array and streams STORE results out. Layer shapes are runtime
values from the command headers; nothing of a layer is baked into the hardware. The units meet
through the signatures of hw/interfaces.py:

* :class:`~hw.frontend.FrontEnd` (hw/frontend.py): headers, LOADs, STOREs and the one-deep COMPUTE
  queue, beside the executor (gen/isa.py, Concurrency);
* the engine's executor (hw/engines/): runs one COMPUTE at a time on the array, most of them
  walking the tile with the pixel walker (hw/walker.py), and issues a token per output word;
* :class:`~hw.writeback.WriteBack` (hw/writeback.py): the token line; each output word read, added
  to the sums (or the bias) and written back;
* :class:`~hw.store.StoreUnit` (hw/store.py): STORE reads, requantisation, the output FIFO and its
  credits, ``m_axis``;
* :class:`~hw.counters.Counters` (hw/counters.py): the performance counters.

Every latency derives from the spec: ``RL`` = buffer read latency (1, or 3 with registered
buffers), ``L`` = array latency. ``checks`` adds simulation assertions tying each registered flag
to the expression it shadows (tests enable it; the generated Verilog has none).
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from gen.isa import COUNTERS
from gen.spec import Spec

from .array import array_signature
from .buffer import ReadSignature, WriteSignature, addr_bits
from .counters import Counters
from .engines import executor_for
from .frontend import FrontEnd
from .host import AxiStreamSignature
from .store import StoreUnit
from .writeback import WriteBack

__all__ = ["Controller"]


class Controller(wiring.Component):
    def __init__(self, spec: Spec, *, checks: bool = False):
        self.spec, self.checks = spec, checks
        ia, wa, oa = (addr_bits(d) for d in (spec.input_depth, spec.weight_depth,
                                             spec.output_depth))
        super().__init__({
            "s_axis": In(AxiStreamSignature(spec.in_stream_bits)),
            "m_axis": Out(AxiStreamSignature(spec.out_stream_bits)),
            "ibuf_wr": Out(WriteSignature(ia, spec.input_word_bits)),
            "ibuf_rd": Out(ReadSignature(ia, spec.input_word_bits)),
            "wbuf_wr": Out(WriteSignature(wa, spec.weight_word_bits)),
            "wbuf_rd": Out(ReadSignature(wa, spec.weight_word_bits)),
            "obuf_wr": Out(WriteSignature(oa, spec.output_word_bits)),
            "obuf_rd": Out(ReadSignature(oa, spec.output_word_bits)),
            "obuf_rd2": Out(ReadSignature(oa, spec.output_word_bits)),
            "array": Out(array_signature(spec)),
            "clear_counters": In(1), "clear_error": In(1),
            "busy": Out(1), "error": Out(1), "cause": Out(4), "starved": Out(1),
            "commands": Out(32),
            **{name: Out(64) for name in COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        spec, checks = self.spec, self.checks
        m.submodules.front = fe = FrontEnd(spec, checks=checks)
        m.submodules.exec = exe = executor_for(spec, checks=checks)
        m.submodules.writeback = wb = WriteBack(spec, token_delay=exe.token_delay, checks=checks)
        m.submodules.store = st = StoreUnit(spec, checks=checks)
        m.submodules.counters = ctr = Counters(spec)

        connect(m, flipped(self.s_axis), fe.s_axis)
        connect(m, fe.ibuf_wr, flipped(self.ibuf_wr))
        connect(m, fe.wbuf_wr, flipped(self.wbuf_wr))
        connect(m, fe.compute, exe.compute)
        connect(m, fe.store, st.request)
        connect(m, fe.bias_wr, wb.bias_wr)
        connect(m, fe.quant_wr, st.quant_wr)
        if spec.residual:
            connect(m, fe.add_wr, st.add_wr)
        connect(m, exe.ibuf_rd, flipped(self.ibuf_rd))
        connect(m, exe.wbuf_rd, flipped(self.wbuf_rd))
        connect(m, exe.token, wb.token)
        connect(m, exe.activity, ctr.activity)
        connect(m, wb.obuf_rd, flipped(self.obuf_rd))
        connect(m, wb.obuf_wr, flipped(self.obuf_wr))
        connect(m, st.obuf_rd, flipped(self.obuf_rd2))
        connect(m, st.m_axis, flipped(self.m_axis))
        connect(m, exe.array, flipped(self.array))
        m.d.comb += [wb.y.eq(self.array.y), fe.x_idle.eq(exe.idle), fe.done.eq(wb.done),
                     fe.store_drained.eq(st.drained), fe.clear_error.eq(self.clear_error),
                     self.busy.eq(fe.busy), self.error.eq(fe.error), self.cause.eq(fe.cause),
                     self.starved.eq(fe.starved)]

        s_axis, m_axis, ev = self.s_axis, self.m_axis, ctr.events
        m.d.comb += [
            ev.cycles.eq(~fe.idle | s_axis.tvalid),
            ev.in_stall.eq(fe.waiting_input & ~s_axis.tvalid),
            ev.out_stall.eq(m_axis.tvalid & ~m_axis.tready),
            ev.ibuf_reads.eq(self.ibuf_rd.en), ev.ibuf_writes.eq(self.ibuf_wr.en),
            ev.wbuf_reads.eq(self.wbuf_rd.en), ev.wbuf_writes.eq(self.wbuf_wr.en),
            ev.obuf_reads.eq(self.obuf_rd.en + self.obuf_rd2.en),
            ev.obuf_writes.eq(self.obuf_wr.en),
            ctr.command.eq(fe.command), ctr.clear.eq(self.clear_counters),
            self.commands.eq(ctr.commands),
        ]
        m.d.comb += [getattr(self, name).eq(getattr(ctr, name)) for name in COUNTERS]
        return m
