"""What every engine states about itself: the :class:`Dataflow` base class and the facts it returns.

An engine (ws, is, os, nlr, rs) is one subclass of :class:`Dataflow`, in one module of gen/engines/.
It carries every fact the software needs of the engine: latencies and lanes (gen/spec.py), the
mapping it builds (gen/mapping.py), tiler facts and footprints (gen/tiler.py), the cost of a COMPUTE
(gen/model.py), weight and output packing (gen/frames.py), the COMPUTE semantics of the ISA machine
(sim/isa_model.py), its picture (gen/show.py) and its hardware array (hw/array.py). The defaults
here are those the systolic engines share; an engine overrides what differs.

It imports gen/isa.py and gen/program.py, never gen/spec.py or gen/mapping.py (they import it), and
the hardware only when an array is built.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..isa import Op, field_max
from ..program import Command

if TYPE_CHECKING:
    from ..layer import ConvLayer
    from ..spec import Spec

__all__ = ["Engine", "Dataflow", "EngineFacts", "ComputeCost", "Contribution", "address_step"]


class Engine(StrEnum):
    """The hardware engines, in the order of the ``dataflow`` CSR's codes (gen/isa.py)."""

    WS = "ws"
    IS = "is"
    OS = "os"
    NLR = "nlr"
    RS = "rs"

    @property
    def code(self) -> int:
        """The ``dataflow`` CSR's value (gen/isa.py)."""
        return list(Engine).index(self)


@dataclasses.dataclass(frozen=True)
class EngineFacts:
    """What the tiler needs to know of an engine for one layer."""

    block: int | None       # most output pixels per output tile (None: only the buffers limit)
    block_dims: tuple       # the mapping's pixel dims ("P", "Q") that shape a block
    k_tile: int             # output channels per K tile
    weight_words_per_tap: int
    per_word: bool          # output words hold one channel (lanes = pixels)
    c_tile: int = 0         # input channels per C tile (an input word's lanes it uses)


@dataclasses.dataclass(frozen=True)
class ComputeCost:
    """One COMPUTE on the executor (gen/model.py): its cycles from the first state, the cycles an
    input vector enters the array, its buffer word reads (input, weight, output; each output
    word read is also written back) and the register-file and array accesses not proportional to
    the issued cycles (fills, preloads, drains)."""

    cycles: int
    busy: int
    words: tuple[int, int, int]
    extra_rf: int = 0
    extra_array: int = 0


#: one COMPUTE's effect on the output buffer, in order (sim/isa_model.py): the words ``dst``
#: become ``y + base`` when ``init``, else accumulate ``y``
Contribution = tuple[slice, np.ndarray, bool, object]


def address_step(step: int, uses: int) -> int:
    """An address step for a COMPUTE header. It is applied ``uses - 1`` times inside the input
    tile, so it fits the 16-bit field whenever it matters; with a single use it is never
    applied."""
    if uses == 1:
        return 0
    assert step <= field_max("row_step"), step
    return step


class Dataflow:
    """One engine. Subclasses set the class attributes and override what differs."""

    engine: ClassVar[Engine]
    #: its name in prose ("weight-stationary")
    name: ClassVar[str]
    #: one-line description (what hw/ builds)
    description: ClassVar[str]
    #: the mapping's ``stationary`` value this engine implements, and its preset mapping table
    stationary: ClassVar[str]
    preset: ClassVar[dict]
    #: what a custom mapping with this ``stationary`` must look like (gen/mapping.py's error)
    hint: ClassVar[str]
    #: per issued PE-cycle: (register-file/spad accesses, PE-to-PE transfers), from the PEs'
    #: datapaths in hw/pe.py (the RTL's PE-level counters and the energy model)
    per_pe_cycle: ClassVar[tuple[int, int]]
    #: the picture ``accelgen show`` draws (gen/show.py)
    picture: ClassVar[dict]
    #: output words hold one output channel each (the lanes are pixels): bias and requantisation
    #: parameters are per word, in channel memories
    per_word_channels: ClassVar[bool] = False
    #: the spec has a [spads] table (per-PE scratchpads)
    has_spads: ClassVar[bool] = False
    #: most array rows (a header field bounds it)
    max_rows: ClassVar[int] = 256
    #: the tiler may lower a layer with few channels to im2col
    im2col: ClassVar[bool] = True
    #: a COMPUTE does nothing when its ``count`` is 0 (is, rs: ``count`` is its channels)
    needs_count: ClassVar[bool] = False
    #: the COMPUTE header fields that must not be 0 (the ISA machine refuses such a command)
    compute_fields: ClassVar[tuple[str, ...]] = ("p", "q", "r", "s")
    #: cycles before the end of a COMPUTE that its last output word's write is seen (gen/model.py)
    drain_lag: ClassVar[int] = 3
    #: a COMPUTE queued before the running one's last tap begins follows it as a tap (ws; such
    #: a flow also has lead, tap_gap and shadow_free, gen/model.py)
    chains: ClassVar[bool] = False

    # -- the mapping ------------------------------------------------------------------------------
    def accepts(self, m) -> bool:
        """Whether this engine builds the (checked, legal) mapping ``m`` of its ``stationary``."""
        raise NotImplementedError

    # -- spec facts ---------------------------------------------------------------------------------
    def array_latency(self, spec: Spec) -> int:
        """Cycles from a vector entering the array to its column sums leaving it."""
        return spec.rows + spec.cols - 1 + spec.mult_stages

    def weight_lanes(self, spec: Spec) -> int:
        """Weights in a weight-buffer word (one per output channel)."""
        return spec.cols

    def chan_depth(self, spec: Spec) -> int:
        """Entries of the per-word channel memories (0: none)."""
        return 0

    # -- tiler ------------------------------------------------------------------------------------
    def facts(self, spec: Spec, layer: ConvLayer) -> EngineFacts:
        return EngineFacts(None, (), spec.cols, spec.rows, False, spec.rows)

    def tiling_facts(self, spec: Spec, sizing: Spec, layer: ConvLayer) -> EngineFacts:
        """The facts a tiling sized for ``sizing``'s buffers uses."""
        return self.facts(sizing, layer)

    def weight_words_needed(self, layer: ConvLayer, facts: EngineFacts) -> int:
        """Weight-buffer words one tile needs at the least (the K tile cannot shrink below it)."""
        return layer.R * layer.S * facts.weight_words_per_tap

    def weight_count(self, spec: Spec, layer: ConvLayer, facts: EngineFacts, cn: int,
                     kn: int) -> int:
        """Words of the LOAD_WEIGHT of a C tile of ``cn`` channels and a K tile of ``kn``."""
        return layer.R * layer.S * facts.weight_words_per_tap

    def block_stride(self, kn: int, block_words: int) -> int:
        """Output words between consecutive blocks of a K tile's output tile."""
        return block_words

    def compute_count(self, kn: int, pbn: int, qbn: int) -> int:
        """A COMPUTE's ``count`` field for a block of ``pbn``×``qbn`` pixels and ``kn`` channels."""
        return 0

    def computes(self, spec: Spec, layer: ConvLayer, *, cn, ct, kn, wt, pn, qn, pb, qb, obase,
                 block_words, with_bias, g, c0, k0):
        """The COMPUTE headers of one (C tile, K tile), input and weight addresses relative to
        the tiles' bases: one per block of ``pb``×``qb`` output pixels."""
        U, D = layer.stride, layer.dilation
        b = 0
        for pb0 in range(0, pn, pb):
            for qb0 in range(0, qn, qb):
                pbn, qbn = min(pb, pn - pb0), min(qb, qn - qb0)
                yield Command(Op.COMPUTE, {
                    "addr": pb0 * U * wt + qb0 * U, "waddr": 0,
                    "oaddr": obase + b * block_words,
                    "p": pbn, "q": qbn, "r": layer.R, "s": layer.S, "stride": U,
                    "dilation": D, "row_step": address_step(U * wt, pbn),
                    "dil_step": address_step(D * wt, layer.R), "accumulate": int(ct > 0),
                    "count": self.compute_count(kn, pbn, qbn), "bias": int(with_bias)},
                    g=g, c0=c0, k0=k0)
                b += 1

    def footprint(self, spec: Spec, h: dict) -> dict[str, tuple[int, int]]:
        """The buffer words a COMPUTE with header ``h`` may touch, as inclusive address ranges."""
        P, Q, R, S, U, D = h["p"], h["q"], h["r"], h["s"], h["stride"], h["dilation"]
        ihi = (h["addr"] + (P - 1) * h["row_step"] + (R - 1) * h["dil_step"] + (Q - 1) * U
               + (S - 1) * D)
        wn = R * S * self._tap_weight_words(spec, h)
        on = self._output_words(h)
        return {"ibuf": (h["addr"], ihi), "wbuf": (h["waddr"], h["waddr"] + wn - 1),
                "obuf": (h["oaddr"], h["oaddr"] + on - 1)}

    def _tap_weight_words(self, spec: Spec, h: dict) -> int:
        return spec.rows

    def _output_words(self, h: dict) -> int:
        return h["p"] * h["q"]

    def fold_rows(self, spec: Spec, layer: ConvLayer, fold):
        """The array rows' :class:`~gen.layermap.AxisFold` for ``layer`` (``accelgen show
        --layer``), where the engine packs a pass itself rather than folding the mapping."""
        return fold

    # -- cycle model ------------------------------------------------------------------------------
    def cost(self, spec: Spec, h: dict) -> ComputeCost:
        raise NotImplementedError

    # -- frames -----------------------------------------------------------------------------------
    def weight_block(self, spec: Spec, layer: ConvLayer, src: np.ndarray, kn: int,
                     cn: int) -> tuple[np.ndarray, int]:
        """A LOAD_WEIGHT's words from ``src`` (R, S, c, k) and the lanes per word. Default
        (ws/os): word (r, s, c), lane k."""
        blk = np.zeros((layer.R, layer.S, spec.rows, spec.cols), dtype=np.int64)
        blk[:, :, :src.shape[2], :src.shape[3]] = src
        return blk, spec.cols

    def store_tile(self, spec: Spec, cmd, vals: np.ndarray, Kg: int) -> tuple[np.ndarray, int]:
        """A STORE's output words ``vals`` (words, lanes) as (channels, rows, cols) and the
        channels. Default: word = pixel, lane = channel."""
        kn = min(spec.cols, Kg - cmd.k0)
        return vals[:, :kn].reshape(cmd.hn, cmd.wn, kn).transpose(2, 0, 1), kn

    # -- ISA machine ------------------------------------------------------------------------------
    def isa_compute(self, spec: Spec, h: dict, m) -> list[Contribution]:
        """A COMPUTE's effect on ``m``'s output buffer (``m``: sim/isa_model.py's machine state,
        whose ``touched`` maps marks the words read and written), tap by tap."""
        P, Q = h["p"], h["q"]
        pp, qq = np.meshgrid(np.arange(P), np.arange(Q), indexing="ij")
        out = []
        for r in range(h["r"]):
            for s in range(h["s"]):
                tap = r * h["s"] + s
                addr = (h["addr"] + pp * h["row_step"] + r * h["dil_step"]
                        + qq * h["stride"] + s * h["dilation"]).reshape(-1)
                m.touched["ibuf"][addr] = True
                dst, y, base = self._isa_tap(spec, h, m, addr, tap)
                m.touched["obuf"][dst] = True
                out.append((dst, y, r == 0 and s == 0 and not h["accumulate"], base))
        return out

    def _isa_tap(self, spec: Spec, h: dict, m, addr, tap: int):
        """One tap: (output words, their products, the bias added when they start)."""
        rows = spec.rows
        blk = m.wbuf[h["waddr"] + tap * rows:][:rows]
        m.touched["wbuf"][h["waddr"] + tap * rows:][:rows] = True
        return (slice(h["oaddr"], h["oaddr"] + h["p"] * h["q"]), m.ibuf[addr] @ blk,
                m.bias_reg if h["bias"] else 0)

    # -- hardware ---------------------------------------------------------------------------------
    def array(self, spec: Spec, act, wgt, **kw):
        """The engine's PE array (hw/array.py) as its class and constructor arguments, operand
        shapes ``act`` and ``wgt`` (hw/array.py builds it, and its port signature, from them)."""
        raise NotImplementedError
