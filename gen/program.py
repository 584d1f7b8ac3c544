"""A tiled layer: the commands the hardware executes (:class:`Command`) and the :class:`Program`
that holds them with the tiling's facts. gen/tiler.py builds Programs; the model (gen/model.py),
the frames encoder (gen/frames.py), the ISA machine and the RTL driver read them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from .isa import Op, store_beats

if TYPE_CHECKING:
    from .layer import ConvLayer, Layer
    from .spec import Spec

__all__ = ["Command", "Program"]


@dataclasses.dataclass(frozen=True)
class Command:
    """One tile command: its header fields, and where its payload comes from or goes (host side)."""

    op: Op
    header: dict
    n: int = 0
    g: int = 0
    c0: int = 0   # first input channel (within the group) of a LOAD_INPUT / LOAD_WEIGHT
    k0: int = 0   # first output channel (within the group) of a LOAD_WEIGHT / LOAD_BIAS / STORE
    h0: int = 0   # LOAD_INPUT: top-left input coordinate of the region (negative inside padding)
    w0: int = 0
    hn: int = 0   # LOAD_INPUT: region rows, columns; STORE: output tile rows, columns
    wn: int = 0
    step: int = 1  # LOAD_INPUT: the region samples every step-th row and column of the input

    @property
    def count(self) -> int:
        return self.header.get("count", 0)


@dataclasses.dataclass(frozen=True)
class Program:
    spec: Spec
    layer: Layer
    commands: tuple[Command, ...]
    tile_p: int
    tile_q: int
    k_group: int
    has_bias: bool
    k_tile: int = 0        # output channels per K tile (LOAD_WEIGHT k0 .. k0 + k_tile)
    #: the layer the commands address when it is not ``layer``: its im2col lowering (a 1x1
    #: layer over every (c, r, s) of the receptive field; gen/frames.py lowers the tensors)
    lowered: ConvLayer | None = None
    requant: bool = False
    relu: bool = False
    #: the STOREs max-pool their words in non-overlapping (rows, cols) windows (gen/pooled.py):
    #: the output is the pooled map
    pool: tuple[int, int] | None = None
    #: the STOREs add a residual streamed after each header (gen/residual.py; gen/isa.py STORE
    #: ``add``, one LOAD_ADD before the first): the output is the Add's
    add: bool = False

    @property
    def macs(self) -> int:
        return self.layer.macs

    @property
    def ideal_cycles(self) -> int:
        """MACs / (rows × cols): the cycles of a perfectly used array."""
        return math.ceil(self.layer.macs / (self.spec.rows * self.spec.cols))

    def count(self, op: Op) -> int:
        return sum(1 for c in self.commands if c.op == op)

    def summary(self) -> dict:
        return {
            "commands": len(self.commands),
            "tile_p": self.tile_p, "tile_q": self.tile_q, "k_group": self.k_group,
            "input_words": sum(c.count for c in self.commands if c.op == Op.LOAD_INPUT),
            "weight_words": sum(c.count for c in self.commands if c.op == Op.LOAD_WEIGHT),
            "output_words": sum(store_beats(c.header) for c in self.commands
                                if c.op == Op.STORE),
        }
