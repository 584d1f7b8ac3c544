"""Tile sizes: how big a layer's output tiles, blocks, K and C tiles are on a spec's buffers.

gen/tiler.py plans a layer's loop nest over a :class:`Tiling`; this module sizes them. Engines that
stream a whole output tile through the array (ws, nlr) size it by :func:`spatial_tile` (fewest
tiles, then largest, within the buffers) and try smaller tilings of the map
(:func:`tile_candidates`) that let one input tile serve more K tiles; the block engines (os, is,
rs) unroll output pixels on the array, so their tile is a grid of blocks (``_block_shape``,
``_block_tile``). A tiling whose program would need more than :data:`MAX_COMPUTES` COMPUTEs is
refused before it is planned (:class:`TooManyCommands`).
"""

from __future__ import annotations

import dataclasses

from .engines.base import EngineFacts
from .errors import AccelgenError
from .isa import field_max
from .layer import ConvLayer
from .spec import Spec

__all__ = ["Tiling", "tiling", "spatial_tile", "tile_candidates", "MAX_COMPUTES",
           "TooManyCommands"]


def spatial_tile(spec: Spec, layer: ConvLayer) -> tuple[int, int]:
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


def _block_shape(layer: ConvLayer, facts: EngineFacts,
                 pool: tuple[int, int] | None = None) -> tuple[int, int]:
    """The (rows, cols) of output pixels one block of the array holds: fewest blocks over the
    layer's output map, then the fullest, within the mapping's pixel dims (with ``pool``, of
    whole pooling windows: each block's STORE pools its own)."""
    P, Q, blk = layer.P, layer.Q, facts.block
    kr, ks = pool or (1, 1)
    dims = facts.block_dims
    if (dims == ("Q",) and kr > 1) or (dims == ("P",) and ks > 1) or kr * ks > blk:
        raise AccelgenError(f"a block of the array ({blk} pixels along {', '.join(dims)}) "
                            f"cannot hold a whole {kr}x{ks} pooling window; keep the pooling "
                            f"on the host")
    if dims == ("Q",):
        return 1, min(Q, blk) // ks * ks
    if dims == ("P",):
        return min(P, blk) // kr * kr, 1
    best = None
    for qb in range(ks, min(Q, blk) + 1, ks):
        pb = min(P, blk // qb) // kr * kr
        if pb < 1:
            continue
        key = (-(-P // pb) * -(-Q // qb), -(pb * qb))
        if best is None or key < best[0]:
            best = (key, pb, qb)
    return best[1], best[2]


def _block_tile(spec: Spec, layer: ConvLayer, pb: int, qb: int,
                block_words: int) -> tuple[int, int]:
    """Output tile (pt, qt) for the block engines: a grid of whole blocks (ragged only at the map's
    edge) whose receptive field fits the input buffer and whose outputs fit the output buffer."""
    U, D = layer.stride, layer.dilation
    P, Q = layer.P, layer.Q
    need_h = (layer.R - 1) * D + 1
    best = None
    for mq in range(1, -(-Q // qb) + 1):
        qt = min(Q, mq * qb)
        wt = (qt - 1) * U + (layer.S - 1) * D + 1
        ht_max = spec.input_depth // wt
        if ht_max < need_h or qt > field_max("q"):
            break
        pt_in = min(P, (ht_max - need_h) // U + 1)
        per_row = -(-qt // qb) * block_words
        mp = min(pt_in // pb if pt_in < P else -(-P // pb), spec.output_depth // per_row)
        if mp < 1:
            continue
        pt = min(P, mp * pb)
        key = (-(-P // pt) * -(-Q // qt), -(pt * qt))
        if best is None or key < best[0]:
            best = (key, pt, qt)
    if best is None:
        rf = (((pb - 1) * U + need_h) * ((qb - 1) * U + (layer.S - 1) * D + 1))
        raise AccelgenError(
            f"the input buffer cannot hold one {pb}x{qb} block's receptive field ({rf} words) "
            f"with its outputs; raise buffers.input_depth to at least {rf}")
    return best[1], best[2]


def tile_candidates(spec: Spec, layer: ConvLayer, first: tuple[int, int]):
    """Output tiles worth timing besides ``first`` (the fewest, largest tiles). A smaller tile
    lets one input tile serve a larger group of K tiles (the output buffer holds the group's
    outputs), which can beat reloading the input for every group; so when ``first`` leaves K
    tiles over, yield for a group of 2×, 4× and all the K tiles the fewest (then largest) tiles
    of the map, cut into up to 8 row bands × 4 column bands, that the buffers hold."""
    U, D = layer.stride, layer.dilation
    n_kt = -(-layer.Kg // spec.flow.facts(spec, layer).k_tile)
    kb = max(1, min(n_kt, spec.output_depth // (first[0] * first[1])))
    if kb >= n_kt:
        return
    for group in sorted({min(2 * kb, n_kt), min(4 * kb, n_kt), n_kt}):
        best = None
        for a in range(1, 9):
            for b in range(1, 5):
                pt, qt = -(-layer.P // a), -(-layer.Q // b)
                ht = (pt - 1) * U + (layer.R - 1) * D + 1
                wt = (qt - 1) * U + (layer.S - 1) * D + 1
                if (ht * wt > spec.input_depth or pt * qt * group > spec.output_depth
                        or pt > field_max("p") or qt > field_max("q")):
                    continue
                key = (-(-layer.P // pt) * -(-layer.Q // qt), -pt * qt)
                if best is None or key < best[0]:
                    best = (key, (pt, qt))
        if best is not None and best[1] != first:
            yield best[1]


#: the most COMPUTEs a planned program may need: planning runs at some ten thousand commands a
#: second, so a layer past this (C=H=W=K=65536 on 8x8: 10^17) would plan for hours or forever
MAX_COMPUTES = 1 << 24


class TooManyCommands(AccelgenError):
    """A tiling whose program would exceed :data:`MAX_COMPUTES` (refused before planning it)."""


@dataclasses.dataclass(frozen=True)
class Tiling:
    """One tiling of a layer: the output tile, its blocks, the K and C tiles and the K group."""

    facts: EngineFacts
    pt: int                 # output tile rows, columns
    qt: int
    pb: int                 # block rows, columns (the whole tile on ws/nlr)
    qb: int
    block_words: int        # output words of one block of one K tile
    tile_words: int         # output words of one output tile of one K tile
    n_ct: int               # C tiles, K tiles, K tiles per group
    n_kt: int
    kb: int

    def blocks(self, pn: int, qn: int):
        """The blocks of a ``pn``×``qn`` output tile: (index, row, column, rows, columns)."""
        b = 0
        for pb0 in range(0, pn, self.pb):
            for qb0 in range(0, qn, self.qb):
                yield b, pb0, qb0, min(self.pb, pn - pb0), min(self.qb, qn - qb0)
                b += 1


def tiling(spec: Spec, sizing: Spec, layer: ConvLayer, tile,
            pool: tuple[int, int] | None = None) -> Tiling:
    """The tiling for output tile ``tile`` (ws/nlr; the block engines size theirs) in buffers
    of ``sizing``'s depths."""
    facts = spec.flow.tiling_facts(spec, sizing, layer)
    if facts.block is None:           # the whole tile streams through the array at once
        pt, qt = tile
        pb, qb, block_words = pt, qt, pt * qt
    else:                             # the tile is a grid of blocks, computed one by one
        pb, qb = _block_shape(layer, facts, pool)
        block_words = facts.k_tile if facts.per_word else pb * qb
        pt, qt = _block_tile(sizing, layer, pb, qb, block_words)
    tile_words = -(-pt // pb) * -(-qt // qb) * block_words
    n_kt = -(-layer.Kg // facts.k_tile)
    n_ct = -(-layer.Cg // facts.c_tile)
    # a COMPUTE per block, K tile and C tile of every output tile
    least = (layer.N * layer.groups * -(-layer.P // pt) * -(-layer.Q // qt)
             * -(-pt // pb) * -(-qt // qb) * n_kt * n_ct)
    if least > MAX_COMPUTES:
        raise TooManyCommands(
            f"it needs at least {least:,} COMPUTEs (output tiles of {pt}x{qt}, {n_kt:,} K "
            f"tiles, {n_ct:,} C tiles), more than the "
            f"{MAX_COMPUTES:,} a program may have; give the spec a bigger array or buffers, or "
            f"split the layer")
    return Tiling(facts, pt, qt, pb, qb, block_words, tile_words,
                  n_ct=n_ct, n_kt=n_kt,
                  kb=max(1, min(n_kt, sizing.output_depth // tile_words)))
