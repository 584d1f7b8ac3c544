"""The max-pooling stage of the STORE path: a per-lane running maximum over each window's words.

A pooling STORE (gen/isa.py) reads the words of each non-overlapping window in turn, after the
requantiser; this unit takes them on ``i`` with ``first`` (the window's first word: start from
it) and ``last`` (its last: the window is complete) and answers with one word per window on
``o``, each lane the maximum of that lane over the window. A word that is both first and last (a
STORE without pooling) passes through unchanged. Lanes compare as ``signed(width)``: the store
unit extends requantised lanes (signed or unsigned ``out_bits``) and accumulators into that
width. Pads never reach it: the tiler's windows lie inside the output tile.

A window's maximum leaves on ``o`` from a register, :attr:`PoolMax.latency` = 1 cycle after its
last word arrives (the store unit registers the lanes a cycle before: ``Spec.pool_latency`` = 2,
which the model adds to each pooling STORE; plain STOREs bypass the unit), so the compare of a
lane (up to the accumulator's width) starts and ends at flip-flops: on ECP5 the 32-bit compare
and select, fed straight into the store unit's output FIFO, had limited the whole ws_8x8 to
74.6 MHz. ``i.ready`` is ``o``'s register free or
leaving (a one-deep pipeline stage), so the unit obeys amaranth.lib.stream's rules: ``o.valid``
never waits for ``o.ready``.
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .regs import less

__all__ = ["PoolMax", "pool_tap_layout"]


def pool_tap_layout(lanes: int, width: int) -> data.StructLayout:
    """One word of a window: its lanes, and whether it is the window's first and last word."""
    return data.StructLayout({"data": data.ArrayLayout(signed(width), lanes), "first": 1,
                              "last": 1})


class PoolMax(wiring.Component):
    """Per-lane maximum over windows of words.

    Parameters
    ----------
    lanes : int
        Lanes per word (the array's columns: output channels).
    width : int
        Lane width; lanes compare as two's complement.

    Members
    -------
    i : In(stream.Signature(pool_tap_layout(lanes, width)))
        The windows' words, in order.
    o : Out(stream.Signature(ArrayLayout(signed(width), lanes)))
        One word per window: each lane's maximum.
    """

    latency = 1

    def __init__(self, lanes: int, width: int):
        if lanes < 1 or width < 2:
            raise ValueError(f"a pooling stage needs at least one lane of at least 2 bits, not "
                             f"{lanes} lanes of {width}")
        self.lanes, self.width = lanes, width
        super().__init__({
            "i": In(stream.Signature(pool_tap_layout(lanes, width))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(width), lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        held = Signal(data.ArrayLayout(signed(self.width), self.lanes))  # the window so far
        best = [Mux(i.payload.first | less(held[j], i.payload.data[j]), i.payload.data[j],
                    held[j]) for j in range(self.lanes)]
        m.d.comb += i.ready.eq(~o.valid | o.ready)
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(i.valid & i.ready):
            with m.If(i.payload.last):
                m.d.sync += [o.valid.eq(1), *(o.payload[j].eq(best[j])
                                               for j in range(self.lanes))]
            with m.Else():
                m.d.sync += [held[j].eq(best[j]) for j in range(self.lanes)]
        return m
