"""The synthesis IO wrapper: the same small top around every design, so numbers compare.

A wide accelerator has more ports than a package has pins, and without IO constraints the placer
scatters them. The wrapper gives the design three pins: ``clk``, ``din`` and ``dout``. Every input
of the design (reset included) is a bit of a shift chain fed by a 16-bit LFSR mixed with ``din``, so
nothing is constant and nothing is optimised away; every output is registered and XOR-reduced into
``dout`` (through registered 16-input stages) so every output is observed. Its cost is about one
flip-flop per design input bit plus the XOR tree; it is identical for every config compared.
"""

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Module, ResetInserter, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SynthWrapper"]


class SynthWrapper(wiring.Component):
    clk: In(1)
    din: In(1)
    dout: Out(1)

    def __init__(self, core: wiring.Component):
        self.core = core
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        # no reset pin: the wrapper's registers start from their init values and the core's reset
        # is a bit of the chain, so the only pins are clk, din and dout
        m.domains.sync = ClockDomain("sync", reset_less=True)
        m.d.comb += ClockSignal("sync").eq(self.clk)
        core = self.core
        ins, outs = [], []
        for _, member, value in core.signature.flatten(core):
            # (a lib.data view's len() counts its elements: take its bits)
            (ins if member.flow == In else outs).append(Value.cast(value))
        lfsr = Signal(16, init=0xACE1)
        fb = lfsr[15] ^ lfsr[13] ^ lfsr[12] ^ lfsr[10]
        m.d.sync += lfsr.eq(Cat(fb ^ self.din, lfsr[:15]))
        width = sum(len(v) for v in ins) + 1  # + the core's reset
        chain = Signal(width)
        m.d.sync += chain.eq(Cat(lfsr[15], chain[:-1]))
        pos = 0
        for v in ins:
            m.d.comb += v.eq(chain[pos:pos + len(v)])
            pos += len(v)
        # the core's reset comes from the chain too
        m.submodules.core = ResetInserter(chain[pos])(core)
        captured = Signal(sum(len(v) for v in outs))
        m.d.sync += captured.eq(Cat(*outs))
        # XOR-reduced in registered stages of 16 bits (two LUT levels each), so the wrapper's
        # own logic is never the deepest path of the design it measures
        level, k = captured, 0
        while len(level) > 1:
            nxt = Signal((len(level) + 15) // 16, name=f"xor{k}")
            m.d.sync += nxt.eq(Cat(level[i:i + 16].xor() for i in range(0, len(level), 16)))
            level, k = nxt, k + 1
        m.d.sync += self.dout.eq(level)
        return m
