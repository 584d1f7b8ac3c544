"""The tiler: split a convolution layer into tile commands the hardware executes.

This is the compiler of accelgen. It is the one source of truth for how a layer runs: the cocotb
driver replays its :class:`Program` on the RTL, the frames encoder packs the tensors for it, and
reports count its work.

Mapping (weight-stationary): array rows hold input channels (a C tile of ``rows``), array columns hold
output channels (a K tile of ``cols``); each (r, s) filter tap is one pass in which a ``rows``×``cols``
weight block sits in the PEs while the input pixels of an output tile stream through. Loop nest, outer
to inner::

    for n, for group g, for output tile (p0, q0)            # spatial tiles sized by the buffers
      for K group (kb K tiles whose outputs fit the output buffer together)
        for C tile:      LOAD_INPUT (the tile's receptive field, zero padding included)
          for K tile:    LOAD_WEIGHT, [LOAD_BIAS], COMPUTE (accumulate over C tiles in place)
        for K tile:      STORE

The input tile is loaded once per (C tile, K group) and reused by every K tile of the group; outputs
stay in the output buffer until all C tiles have been accumulated, so partial sums never leave the chip.
"""

from __future__ import annotations

import dataclasses
import math

from .errors import AccelgenError
from .isa import Op, field_max
from .layer import ConvLayer
from .spec import Spec

__all__ = ["Command", "Program", "plan"]


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

    @property
    def count(self) -> int:
        return self.header.get("count", 0)


@dataclasses.dataclass(frozen=True)
class Program:
    spec: Spec
    layer: ConvLayer
    commands: tuple[Command, ...]
    tile_p: int
    tile_q: int
    k_group: int
    has_bias: bool
    requant: bool = False
    relu: bool = False

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
            "output_words": sum(c.count for c in self.commands if c.op == Op.STORE),
        }


def _check_limits(spec: Spec, layer: ConvLayer) -> None:
    for name, value, field, knob in (
        ("R", layer.R, "r", "filter height"), ("S", layer.S, "s", "filter width"),
        ("stride", layer.stride, "stride", "stride"), ("dilation", layer.dilation, "dilation",
                                                       "dilation"),
    ):
        if value > field_max(field):
            raise AccelgenError(
                f"layer {name}={value} exceeds the hardware's {knob} limit of {field_max(field)}; "
                f"use a layer with {name} <= {field_max(field)}")
    need = layer.R * layer.S * spec.rows
    if need > spec.weight_depth:
        raise AccelgenError(
            f"layer {layer.R}x{layer.S} filter needs R*S*rows = {need} weight-buffer words but "
            f"buffers.weight_depth is {spec.weight_depth}; raise buffers.weight_depth to at least "
            f"{need}")


def _spatial_tile(spec: Spec, layer: ConvLayer) -> tuple[int, int]:
    """Choose the output tile (pt, qt): fewest tiles, then largest, within the buffers."""
    U, D = layer.stride, layer.dilation
    P, Q = layer.P, layer.Q
    best = None
    last_qt = None
    for nq in range(1, Q + 1):
        qt = -(-Q // nq)
        if qt == last_qt:
            continue
        last_qt = qt
        wt = (qt - 1) * U + (layer.S - 1) * D + 1
        ht_max = spec.input_depth // wt
        need_h = (layer.R - 1) * D + 1
        if ht_max < need_h:
            continue
        pt = min(P, spec.output_depth // qt, (ht_max - need_h) // U + 1, field_max("p"))
        if pt < 1 or qt > field_max("q"):
            continue
        np_ = -(-P // pt)
        pt = -(-P // np_)  # balance the tiles
        key = (np_ * nq, -(pt * qt))
        if best is None or key < best[0]:
            best = (key, pt, qt)
    if best is None:
        rf = ((layer.R - 1) * D + 1) * ((layer.S - 1) * D + 1)
        raise AccelgenError(
            f"the input buffer cannot hold one output pixel's {layer.R}x{layer.S} receptive field "
            f"({rf} words with dilation {D}); raise buffers.input_depth to at least {rf}")
    return best[1], best[2]


def _step(step: int, uses: int) -> int:
    """An address step for the header. It is applied ``uses - 1`` times inside the input tile, so
    it fits the 16-bit field whenever it matters; with a single use it is never applied."""
    if uses == 1:
        return 0
    assert step <= field_max("row_step"), step
    return step


def plan(spec: Spec, layer: ConvLayer, *, bias: bool = False, requant: bool = False,
         relu: bool = False) -> Program:
    """Tile ``layer`` for the hardware described by ``spec``. ``requant`` and ``relu`` run the
    outputs through the post-processing unit (per-channel multipliers and shifts are loaded with
    LOAD_QUANT before each STORE)."""
    if (requant or relu) and not spec.postproc:
        raise AccelgenError(f"requantisation and ReLU need the post-processing unit, which "
                            f"{spec.name} does not have; set [postproc] enabled = true in the spec")
    _check_limits(spec, layer)
    rows, cols = spec.rows, spec.cols
    U, D, pad = layer.stride, layer.dilation, layer.pad
    R, S = layer.R, layer.S
    pt, qt = _spatial_tile(spec, layer)
    n_ct = -(-layer.Cg // rows)
    n_kt = -(-layer.Kg // cols)
    kb = max(1, min(n_kt, spec.output_depth // (pt * qt)))

    cmds: list[Command] = []
    for n in range(layer.N):
        for g in range(layer.groups):
            for p0 in range(0, layer.P, pt):
                pn = min(pt, layer.P - p0)
                for q0 in range(0, layer.Q, qt):
                    qn = min(qt, layer.Q - q0)
                    ht = (pn - 1) * U + (R - 1) * D + 1
                    wt = (qn - 1) * U + (S - 1) * D + 1
                    for kg0 in range(0, n_kt, kb):
                        kts = range(kg0, min(kg0 + kb, n_kt))
                        for ct in range(n_ct):
                            c0 = ct * rows
                            cmds.append(Command(
                                Op.LOAD_INPUT, {"addr": 0, "count": ht * wt},
                                n=n, g=g, c0=c0, h0=p0 * U - pad, w0=q0 * U - pad, hn=ht, wn=wt))
                            for j, kt in enumerate(kts):
                                k0 = kt * cols
                                cmds.append(Command(
                                    Op.LOAD_WEIGHT, {"waddr": 0, "count": R * S * rows},
                                    g=g, c0=c0, k0=k0))
                                with_bias = bias and ct == 0
                                if with_bias:
                                    cmds.append(Command(Op.LOAD_BIAS, {"count": cols}, g=g, k0=k0))
                                cmds.append(Command(Op.COMPUTE, {
                                    "addr": 0, "waddr": 0, "oaddr": j * pn * qn,
                                    "p": pn, "q": qn, "r": R, "s": S, "stride": U, "dilation": D,
                                    "row_step": _step(U * wt, pn), "dil_step": _step(D * wt, R),
                                    "accumulate": int(ct > 0),
                                    "bias": int(with_bias)}, g=g, c0=c0, k0=k0))
                        for j, kt in enumerate(kts):
                            if requant:
                                cmds.append(Command(Op.LOAD_QUANT, {"count": cols}, g=g,
                                                    k0=kt * cols))
                            cmds.append(Command(
                                Op.STORE, {"oaddr": j * pn * qn, "count": pn * qn,
                                           "requant": int(requant), "relu": int(relu)},
                                n=n, g=g, k0=kt * cols, h0=p0, w0=q0, hn=pn, wn=qn))
    return Program(spec=spec, layer=layer, commands=tuple(cmds), tile_p=pt, tile_q=qt,
                   k_group=kb, has_bias=bias, requant=requant, relu=relu)
