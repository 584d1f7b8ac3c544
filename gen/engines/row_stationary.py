"""Row-stationary (``rs``, Eyeriss): every PE runs 1-D row convolutions from its scratchpads.

Filter rows are unrolled down the array and output rows across it: PE row i holds filter row
``i % rn`` of channel ``lane + i // rn`` in its filter spad, column j computes output row j. A block
is a run of at most ``cols`` output rows at one output column, and one COMPUTE covers the whole
filter window for ``q_block`` columns (as many as the ifmap spad holds) and a K tile of filters
interleaved in the psum spad. :func:`rs_geometry` decides the *replication* (channels stacked down
the rows when ``R`` is small) and the *folding* (filter rows split over passes when ``R > rows``,
filter columns when ``S`` exceeds a spad); every pass accumulates into the output buffer. An output
word holds one filter for the block's output rows (lane j: output row j).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from ..isa import Op
from ..program import Command
from .base import ComputeCost, Dataflow, Engine, EngineFacts, address_step

if TYPE_CHECKING:
    from ..layer import ConvLayer
    from ..spec import Spec

__all__ = ["RowStationary", "RsGeometry", "rs_geometry", "rs_passes"]


@dataclasses.dataclass(frozen=True)
class RsGeometry:
    """How a layer lies on the row-stationary array."""

    c_rep: int                      # channels stacked down the rows per pass (replication)
    r_parts: tuple                  # (r0, rn): filter rows per pass (folding R over the rows)
    s_parts: tuple                  # (s0, sn): filter columns per pass (folding S over the spads)
    q_block: int                    # output columns per COMPUTE (the ifmap spad's row segment)
    k_tile: int                     # filters interleaved per PE (psum and filter spads)
    words_per_k: int                # weight words per filter and C tile: c groups × R × S
    c_tile: int                     # channels per C tile: a whole number of c_rep groups


def _parts(n: int, most: int) -> tuple:
    """``range(n)`` split into the fewest balanced (start, length) parts of at most ``most``."""
    k = -(-n // most)
    size = -(-n // k)
    return tuple((a, min(size, n - a)) for a in range(0, n, size))


def rs_geometry(spec: Spec, layer: ConvLayer) -> RsGeometry:
    rows, D, U = spec.rows, layer.dilation, layer.stride
    r_parts = _parts(layer.R, rows)
    rn = max(n for _, n in r_parts)
    c_rep = rows // rn if "C" in spec.mapping.rows else 1
    s_parts = _parts(layer.S, min(spec.filter_spad, (spec.ifmap_spad - 1) // D + 1))
    sn = max(n for _, n in s_parts)
    q_block = max(1, min(layer.Q, (spec.ifmap_spad - (sn - 1) * D - 1) // U + 1))
    c_tile = c_rep * (rows // c_rep)      # 16 rows, R = 3: 15 channels, never a 1-channel pass
    groups = -(-min(c_tile, layer.Cg) // c_rep)
    words_per_k = groups * len(r_parts) * layer.S
    kt = max(1, min(layer.Kg, spec.psum_spad, spec.filter_spad // sn,
                    spec.weight_depth // words_per_k))
    return RsGeometry(c_rep, r_parts, s_parts, q_block, kt, words_per_k, c_tile)


def rs_passes(geom: RsGeometry, channels: int):
    """The passes of one C tile of ``channels`` channels, in weight-buffer order: (lane of the
    first channel, r0, rn, s0, sn); each pass's weight words are (filter k, column s) with lane i
    = PE row i's weight (channel ``lane + i // rn``, filter row ``r0 + i % rn``)."""
    for lane in range(0, channels, geom.c_rep):
        for r0, rn in geom.r_parts:
            for s0, sn in geom.s_parts:
                yield lane, r0, rn, s0, sn


class RowStationary(Dataflow):
    engine = Engine.RS
    name = "row-stationary"
    description = ("row-stationary (Eyeriss): every PE runs 1-D row convolutions from its "
                   "filter, ifmap and psum scratchpads; filter rows multicast along the rows, "
                   "ifmap rows multicast diagonally, psum rows summed down the columns")
    stationary = "row"
    # array row i: filter row r of channel c (R × P logical PE sets replicated down the rows
    # over C); column j: output row p. Inputs are indexed by P and R (row p*U + r*D), so an
    # ifmap row is shared along a diagonal of the array: "multicast" here is the tag-matched
    # diagonal bus
    preset = dict(rows=("C", "R"), cols=("P",), stationary="row", input="multicast",
                  weight="multicast", psum="forward")
    hint = ("rows = [\"C\", \"R\"] or [\"R\"], cols = [\"P\"], input and weight "
            "\"multicast\", psum = \"forward\"")
    # reads its filter and ifmap spads, reads and writes its psum spad; the psum row leaves once
    # per filter row (counted per COMPUTE in :meth:`cost`)
    per_pe_cycle = (4, 0)
    per_word_channels = True
    has_spads = True
    max_rows = 128            # the COMPUTE's lane field
    im2col = False
    needs_count = True
    compute_fields = ("p", "q", "r", "s", "count", "fill_h", "fill_w")
    picture = dict(
        pe="1-D", right=["weights:bus"], down=["partial sums"],
        left=("weights", "weight buffer\n→ filter spads\n(row i: filter row\ni % R, "
                         "channel i / R)", "multicast"),
        top=("activations", "input buffer → ifmap spads: row y to every PE with "
                            "y = j·U + r·D (a diagonal)"),
        diagonal="activations",
        bottom="psum rows summed down each column  →  output buffer (a word per filter, "
               "lanes = output rows)",
        legend=[("weights", "filter rows: multicast along each row into the filter "
                            "spads, reused across the ifmap sweep"),
                ("activations", "ifmap rows: multicast along the diagonals (tag match) "
                                "into the ifmap spads"),
                ("partial sums", "psum spad per PE (a sum per filter); psum rows summed "
                                 "down the columns")])

    def accepts(self, m) -> bool:
        return (m.rows in (("C", "R"), ("R",)) and m.cols == ("P",) and m.input == "multicast"
                and m.weight == "multicast" and m.psum == "forward")

    def array_latency(self, spec) -> int:
        return spec.rows + 1 + spec.mult_stages   # a product register, then a psum register per row

    def weight_lanes(self, spec) -> int:
        return spec.rows          # one per PE row (its filter row's tap)

    def chan_depth(self, spec) -> int:
        return spec.psum_spad     # one channel per psum-spad entry

    def facts(self, spec, layer) -> EngineFacts:
        g = rs_geometry(spec, layer)
        return EngineFacts(spec.cols, ("P",), g.k_tile, g.words_per_k, True, g.c_tile)

    def tiling_facts(self, spec, sizing, layer) -> EngineFacts:
        return self.facts(spec, layer)       # the spads, not the buffers, size the K tile

    def weight_words_needed(self, layer, facts) -> int:
        return facts.weight_words_per_tap    # per filter; the K tile shrinks to fit

    def weight_count(self, spec, layer, facts, cn, kn) -> int:
        return sum(kn * sn for *_, sn in rs_passes(rs_geometry(spec, layer), cn))

    def block_stride(self, kn, block_words) -> int:
        return kn

    def computes(self, spec, layer, *, cn, ct, kn, wt, pn, qn, pb, qb, obase, block_words,
                 with_bias, g, c0, k0):
        """Every pass of :func:`rs_passes` over every block row (``pb`` output rows) and run of
        ``q_block`` output columns. Output column q of block row b sits at
        ``obase + (b*qn + q)*kn``, one word per filter."""
        geom = rs_geometry(spec, layer)
        U, D = layer.stride, layer.dilation
        woff = 0
        for lane, r0, rn, s0, sn in rs_passes(geom, cn):
            first = ct == 0 and lane == 0 and r0 == 0 and s0 == 0
            keep = 0     # the first COMPUTE of a pass fills the filter spads; the rest reuse them
            for pb0 in range(0, pn, pb):
                pbn = min(pb, pn - pb0)
                fill_h = (pbn - 1) * U + (rn - 1) * D + 1
                for qb0 in range(0, qn, geom.q_block):
                    qbn = min(geom.q_block, qn - qb0)
                    yield Command(Op.COMPUTE, {
                        "addr": (pb0 * U + r0 * D) * wt + qb0 * U + s0 * D, "waddr": woff,
                        "oaddr": obase + ((pb0 // pb) * qn + qb0) * kn,
                        "p": pbn, "q": qbn, "r": rn, "s": sn, "stride": U, "dilation": D,
                        "row_step": address_step(wt, fill_h), "fill_h": fill_h,
                        "fill_w": (qbn - 1) * U + (sn - 1) * D + 1, "lane": lane, "count": kn,
                        "accumulate": int(not first), "bias": int(with_bias and first),
                        "keep": keep}, g=g, c0=c0, k0=k0)
                    keep = 1
            woff += kn * sn

    def fold_rows(self, spec, layer, fold):
        if fold.dims != ("C", "R"):
            return fold
        g = rs_geometry(spec, layer)
        rn = max(n for _, n in g.r_parts)
        # filter rows split into parts of at most rn: each part is a pass of c_rep channels
        return dataclasses.replace(fold, extents=(layer.Cg, len(g.r_parts) * rn),
                                   pass_shape=(g.c_rep, rn))

    def footprint(self, spec, h):
        ihi = h["addr"] + (h["fill_h"] - 1) * h["row_step"] + h["fill_w"] - 1
        wn, on = h["count"] * h["s"], h["q"] * h["count"]
        return {"ibuf": (h["addr"], ihi), "wbuf": (h["waddr"], h["waddr"] + wn - 1),
                "obuf": (h["oaddr"], h["oaddr"] + on - 1)}

    def cost(self, spec, h) -> ComputeCost:
        """Once per COMPUTE: max(count*s, rs_setup_cycles) (filter fill; 0 with keep) +
        fill_h*fill_w (ifmap fill) + q*s*count (compute) + L + RL + 3."""
        L, RL = spec.array_latency, spec.buffer_latency
        steps = h["q"] * h["s"] * h["count"]
        fwords = 0 if h["keep"] else h["count"] * h["s"]
        ffill = fwords and max(fwords, spec.rs_setup_cycles)
        pes = spec.rows * spec.cols     # fills write every PE's spads over the buses;
        fills = pes * (fwords + h["fill_w"])   # psum rows move down once per output
        return ComputeCost(ffill + h["fill_h"] * h["fill_w"] + steps + L + RL + 3, steps,
                           (h["fill_h"] * h["fill_w"], fwords, h["q"] * h["count"]),
                           extra_rf=fills, extra_array=fills + pes * h["q"] * h["count"])

    def weight_block(self, spec, layer, src, kn, cn):
        """Per pass: word (k, s), lane i = PE row i's filter row."""
        rows = spec.rows
        geom = rs_geometry(spec, layer)
        parts = []
        for lane, r0, rn, s0, sn in rs_passes(geom, cn):
            blk = np.zeros((kn, sn, rows), dtype=np.int64)
            for i in range(min(rows, geom.c_rep * rn)):
                c = lane + i // rn
                if c < cn:
                    blk[:, :, i] = src[r0 + i % rn, s0:s0 + sn, c, :].T
            parts.append(blk.reshape(-1, rows))
        return np.concatenate(parts), rows

    def store_tile(self, spec, cmd, vals, Kg):
        """Word = channel; lane j = output row j of the block."""
        kn = cmd.count
        return vals[:, :cmd.hn].reshape(kn, cmd.hn, cmd.wn), kn

    def isa_compute(self, spec, h, m):
        """PE row i convolves filter row i % r of input lane lane + i // r; column j < p is
        output row j; output word (q, k) at oaddr + q*count + k. ``m.spads["filter"]`` holds
        the filter spads' words, refilled unless ``keep``."""
        R, S, U, D = h["r"], h["s"], h["stride"], h["dilation"]
        P, Q, kn = h["p"], h["q"], h["count"]
        if not h["keep"]:
            m.spads["filter"] = m.wbuf[h["waddr"]:h["waddr"] + kn * S].copy()
            m.touched["wbuf"][h["waddr"]:h["waddr"] + kn * S] = True
        for fy in range(h["fill_h"]):
            a0 = h["addr"] + fy * h["row_step"]
            m.touched["ibuf"][a0:a0 + h["fill_w"]] = True
        filters = m.spads["filter"]
        y = np.zeros((Q, kn, spec.cols), dtype=np.int64)
        for i in range(spec.rows):
            r, c = i % R, h["lane"] + i // R
            if c >= spec.rows:              # a lane the input word does not have: zero
                continue
            for s in range(S):
                wv = filters[np.arange(kn) * S + s, i]                             # (k,)
                for j in range(P):
                    addr = (h["addr"] + (j * U + r * D) * h["row_step"] + np.arange(Q) * U
                            + s * D)
                    y[:, :, j] += np.outer(m.ibuf[addr, c], wv)
        dst = slice(h["oaddr"], h["oaddr"] + Q * kn)
        m.touched["obuf"][dst] = True
        base = np.tile(m.chan_bias[:kn], Q)[:, None] if h["bias"] else 0
        return [(dst, y.reshape(Q * kn, spec.cols), not h["accumulate"], base)]

    def array(self, spec, act, wgt, **kw):
        from hw.array import RowStationaryArray
        return RowStationaryArray, dict(act_shape=act, weight_shape=wgt,
                                        filter_spad=spec.filter_spad, ifmap_spad=spec.ifmap_spad,
                                        psum_spad=spec.psum_spad, **kw)
