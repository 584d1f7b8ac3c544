"""No local reuse (``nlr``): PEs hold nothing; every PE takes a fresh weight each cycle.

Array rows hold input channels, columns output channels, as in weight-stationary, but a weight
word is the whole ``rows``×``cols`` block of a tap (lane ``c*cols + k``), read every cycle; inputs
are multicast along the rows and a registered adder tree reduces each column.
"""

from __future__ import annotations

import numpy as np

from .base import ComputeCost, Dataflow, Engine, EngineFacts

__all__ = ["NoLocalReuse"]


class NoLocalReuse(Dataflow):
    engine = Engine.NLR
    name = "no-local-reuse"
    description = ("no local reuse: every PE takes a fresh weight from the buffer each cycle, "
                   "inputs multicast along the rows, an adder tree reduces each column")
    stationary = "none"
    preset = dict(rows=("C",), cols=("K",), stationary="none", input="multicast",
                  weight="unicast", psum="tree")
    hint = ("rows = [\"C\"], cols = [\"K\"], input = \"multicast\", weight = \"unicast\", "
            "psum = \"tree\"")
    per_pe_cycle = (0, 1)    # holds nothing; passes each product into the adder tree
    picture = dict(
        pe="×", right=["activations:bus"], down=["partial sums"],
        left=("activations", "input buffer\n(rows = input\nchannels)", "multicast"),
        top=("weights", "weight buffer: rows×cols weights every cycle (unicast)"),
        bottom="adder tree per column  →  output buffer (accumulate)",
        unicast="weights",
        legend=[("weights", "unicast: a fresh weight from the buffer for every MAC"),
                ("activations", "multicast: one value to the whole row, same cycle"),
                ("partial sums", "adder tree down each column")])

    def accepts(self, m) -> bool:
        return (m.rows == ("C",) and m.cols == ("K",) and m.input == "multicast"
                and m.weight == "unicast" and m.psum == "tree")

    def array_latency(self, spec) -> int:
        return 1 + spec.mult_stages + self.tree_levels(spec)

    def tree_levels(self, spec) -> int:
        """Registered levels of the adder tree (a register after every level)."""
        return max(1, (spec.rows - 1).bit_length())

    def weight_lanes(self, spec) -> int:
        return spec.rows * spec.cols

    def facts(self, spec, layer) -> EngineFacts:
        return EngineFacts(None, (), spec.cols, 1, False, spec.rows)

    def _tap_weight_words(self, spec, h) -> int:
        return 1

    def cost(self, spec, h) -> ComputeCost:
        """Per filter tap: p*q (stream) + L + RL + 3 (drain)."""
        taps, pixels = h["r"] * h["s"], h["p"] * h["q"]
        L, RL = spec.array_latency, spec.buffer_latency
        return ComputeCost(taps * (pixels + L + RL + 3), taps * pixels,
                           (taps * pixels, taps * pixels, taps * pixels))

    def weight_block(self, spec, layer, src, kn, cn):
        """Word (r, s), lane c*cols + k."""
        blk = np.zeros((layer.R, layer.S, spec.rows, spec.cols), dtype=np.int64)
        blk[:, :, :src.shape[2], :src.shape[3]] = src
        return blk, spec.rows * spec.cols

    def _isa_tap(self, spec, h, m, addr, tap):
        blk = m.wbuf[h["waddr"] + tap].reshape(spec.rows, spec.cols)
        m.touched["wbuf"][h["waddr"] + tap] = True
        return (slice(h["oaddr"], h["oaddr"] + h["p"] * h["q"]), m.ibuf[addr] @ blk,
                m.bias_reg if h["bias"] else 0)

    def array(self, spec, act, wgt, **kw):
        from hw.array import AdderTreeArray
        return AdderTreeArray, dict(act_shape=act, weight_shape=wgt, **kw)
