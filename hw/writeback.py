"""The write-back: the token line, and each output word read, summed and written back.

A token (hw/interfaces.py :class:`TokenSignature`) enters beside each vector the executor issues.
The vector reaches the array ``RL`` cycles later and its sums leave it ``LT`` cycles after that
(``LT`` = the array latency; 0 for output-stationary, which issues its tokens as it drains), so the
token travels a delay line of ``LT + RL`` registers: the output word is read at ``t + LT`` so it
arrives with the sums, which are added to it (or, on the first pass, to zero or the bias) and
written back at ``t + LT + RL``. ``done`` marks the write of a COMPUTE's last word. With ``checks``
a simulation assertion fails if an accumulating read meets a write of the same word still in
flight (the executors' timing must keep them apart).

The output word is read a cycle early and registered (``read_early``), so the adder starts from a
register beside it rather than from a block RAM across the chip. That moves every read of an
accumulated word a cycle closer to the write before it; the executors' margins afford it when
``LT >= 1`` and ``rows + 1 >= RL`` (output-stationary, with no cycle to spare, reads on time).

The bias is a register of ``cols`` lanes shifted in by LOAD_BIAS beats, or, when each output word
holds one output channel (``Spec.per_word_channels``), a channel memory read at the token's
``chan`` two cycles ahead of the write.
"""

from amaranth.hdl import Assert, Cat, Module, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from gen.spec import Spec

from .buffer import ReadSignature, WriteSignature, addr_bits
from .interfaces import TokenSignature
from .regs import delay

__all__ = ["WriteBack"]


class WriteBack(wiring.Component):
    """``token_delay``: cycles from a vector entering the array to its sums at ``y`` (``LT``)."""

    def __init__(self, spec: Spec, *, token_delay: int, checks: bool = False):
        self.spec, self.token_delay, self.checks = spec, token_delay, checks
        oa = addr_bits(spec.output_depth)
        super().__init__({
            "token": In(TokenSignature()),
            "y": In(data.ArrayLayout(signed(spec.acc_bits), spec.cols)),
            "obuf_rd": Out(ReadSignature(oa, spec.output_word_bits)),
            "obuf_wr": Out(WriteSignature(oa, spec.output_word_bits)),
            "bias_wr": In(WriteSignature(16, spec.in_stream_bits)),
            "done": Out(1),
        })

    @property
    def read_early(self) -> bool:
        return self.token_delay >= 1 and self.spec.rows + 1 >= self.spec.buffer_latency

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        cols, acc_bits = spec.cols, spec.acc_bits
        LT, RL = self.token_delay, spec.buffer_latency
        layout = data.StructLayout({n: len(getattr(self.token, n))
                                    for n in TokenSignature().members})
        toks = [Signal(layout, name=f"tok{k}") for k in range(LT + RL + 1)]
        m.d.comb += [getattr(toks[0], n).eq(getattr(self.token, n)) for n in layout.members]
        for k in range(1, LT + RL + 1):
            m.d.sync += toks[k].eq(toks[k - 1])
        rd = LT - 1 if self.read_early else LT
        rd_tok, wr_tok = toks[rd], toks[LT + RL]
        if self.checks:   # an accumulating read never meets a write still in flight to its word
            for k in range(rd + 1, LT + RL + 1):
                m.d.sync += Assert(~(rd_tok.valid & ~rd_tok.first & toks[k].valid
                                     & (toks[k].addr == rd_tok.addr)),
                                   f"output word read {k - rd} cycles before its last write")
        m.d.comb += [self.obuf_rd.addr.eq(rd_tok.addr), self.obuf_rd.en.eq(rd_tok.valid)]
        old = data.View(data.ArrayLayout(signed(acc_bits), cols),
                        delay(m, self.obuf_rd.data, 1, "old", reset_less=True) if self.read_early
                        else self.obuf_rd.data)
        if spec.per_word_channels:
            # per-output-channel biases indexed by the word's channel, not by the lane; read a
            # cycle early and registered, so the memory's output does not feed the adder directly
            m.submodules.bias_mem = bias_mem = memory.Memory(
                shape=signed(acc_bits), depth=spec.chan_depth, init=[])
            bias_wr, bias_rd = bias_mem.write_port(), bias_mem.read_port()
            assert LT + RL >= 2
            m.d.comb += [bias_wr.addr.eq(self.bias_wr.addr),
                         bias_wr.data.eq(self.bias_wr.data[:acc_bits]),
                         bias_wr.en.eq(self.bias_wr.en),
                         bias_rd.addr.eq(toks[LT + RL - 2].chan), bias_rd.en.eq(1)]
            chan_bias = delay(m, bias_rd.data, 1, "chan_bias")
            lane_bias = [chan_bias] * cols
        else:
            bias_reg = Signal(data.ArrayLayout(signed(acc_bits), cols))
            with m.If(self.bias_wr.en):
                m.d.sync += bias_reg.eq(Cat(bias_reg.as_value()[acc_bits:],
                                            self.bias_wr.data[:acc_bits]))
            lane_bias = [bias_reg[j] for j in range(cols)]
        sums = Signal(data.ArrayLayout(signed(acc_bits), cols))
        for j in range(cols):
            base = Signal(signed(acc_bits), name=f"base{j}")
            with m.If(~wr_tok.first):
                m.d.comb += base.eq(old[j])
            with m.Elif(wr_tok.bias):
                m.d.comb += base.eq(lane_bias[j])
            m.d.comb += sums[j].eq(self.y[j] + base)
        m.d.comb += [self.obuf_wr.addr.eq(wr_tok.addr), self.obuf_wr.en.eq(wr_tok.valid),
                     self.obuf_wr.data.eq(sums), self.done.eq(wr_tok.valid & wr_tok.last)]
        return m
