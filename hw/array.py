"""The weight-stationary systolic PE array (TPU-style).

``rows`` × ``cols`` :class:`~hw.pe.MacPE`\\ s. Array row ``i`` holds input channel ``i`` of the tile,
column ``j`` output channel ``j``. Weights enter at the top of each column and shift down one PE per
cycle while ``w_shift`` is high (after ``rows`` shifts, the word pushed first sits in the bottom row).
Activations enter at the left, skewed so row ``i`` enters ``i`` cycles after row 0, and move right one
PE per cycle; partial sums start at zero in the top row and move down one PE per cycle, collecting
``a[i] * w[i][j]``. Column ``j`` finishes ``j`` cycles after column 0, so a deskew delays it by
``cols - 1 - j``: the dot products of the input vector presented at cycle ``t`` appear together on
``y`` at cycle ``t + latency``, ``latency = rows + cols - 1 + stages`` (the PEs' multiplier
pipeline stages).

Weights are held for as long as ``w_shift`` is low: the controller must not shift while a vector it
cares about is still inside the array (``latency`` cycles).
"""

from amaranth.hdl import Module, Shape, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pe import MacPE

__all__ = ["SystolicArray"]


def _delay(m, value, n, name):
    """``value`` delayed by ``n`` registers (n may be 0)."""
    for k in range(n):
        reg = Signal.like(value, name=f"{name}_d{k}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class SystolicArray(wiring.Component):
    def __init__(self, *, rows: int, cols: int, act_shape, weight_shape, acc_bits: int,
                 stages: int = 0):
        for name, v in (("rows", rows), ("cols", cols)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self.rows, self.cols = rows, cols
        self.act_shape, self.weight_shape = Shape.cast(act_shape), Shape.cast(weight_shape)
        self.acc_bits = acc_bits
        self.stages = stages
        self.latency = self.latency_of(rows, cols, stages)
        super().__init__({
            "a": In(data.ArrayLayout(self.act_shape, rows)),
            "w": In(data.ArrayLayout(self.weight_shape, cols)),
            "w_shift": In(1),
            "y": Out(data.ArrayLayout(signed(acc_bits), cols)),
        })

    @staticmethod
    def latency_of(rows: int, cols: int, stages: int = 0) -> int:
        """Cycles from an input vector at ``a`` to its dot products at ``y``."""
        return rows + cols - 1 + stages

    def elaborate(self, platform):
        m = Module()
        pes = [[MacPE(act_shape=self.act_shape, weight_shape=self.weight_shape,
                      acc_bits=self.acc_bits, stages=self.stages)
                for _ in range(self.cols)] for _ in range(self.rows)]
        for i in range(self.rows):
            for j in range(self.cols):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += pe.w_shift.eq(self.w_shift)
                m.d.comb += pe.a_in.eq(_delay(m, self.a[i], i, f"skew{i}") if j == 0
                                       else pes[i][j - 1].a_out)
                m.d.comb += pe.w_in.eq(self.w[j] if i == 0 else pes[i - 1][j].w_out)
                m.d.comb += pe.psum_in.eq(0 if i == 0 else pes[i - 1][j].psum_out)
        for j in range(self.cols):
            bottom = pes[self.rows - 1][j].psum_out
            m.d.comb += self.y[j].eq(_delay(m, bottom, self.cols - 1 - j, f"deskew{j}"))
        return m
