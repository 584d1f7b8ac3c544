"""Output-stationary (``os``): a systolic array whose PEs each accumulate one output in place.

Array rows hold the output pixels of a *block* (at most ``rows`` pixels, shaped by the mapping's
pixel dims: ``["Q"]`` a run along a row, ``["P"]`` a run down a column, both any rectangle), columns
output channels. Per filter tap a transposer fills with the block's pixels and the input channels
stream through; at the end the columns drain down into the output buffer.
"""

from __future__ import annotations

from .base import ComputeCost, Dataflow, Engine, EngineFacts

__all__ = ["OutputStationary"]


class OutputStationary(Dataflow):
    engine = Engine.OS
    name = "output-stationary"
    description = ("output-stationary systolic array: inputs forwarded right, weights forwarded "
                   "down, each PE accumulating its own output in place, drained down the columns")
    stationary = "output"
    preset = dict(rows=("P", "Q"), cols=("K",), stationary="output", input="forward",
                  weight="forward", psum="in_place")
    hint = "rows from [\"P\", \"Q\"], cols = [\"K\"], input and weight \"forward\""
    per_pe_cycle = (2, 2)    # reads and writes its accumulator; receives both operands
    drain_lag = 2
    picture = dict(
        pe="O", right=["activations"], down=["weights", "partial sums"],
        left=("activations", "input buffer\n→ transposer\n(rows = output\npixels)", "skew"),
        top=("weights", "weight buffer (cols = output channels), skewed"),
        bottom="drain (shift down)  →  output buffer (accumulate over C tiles)",
        legend=[("partial sums", "in place: each PE accumulates its output, then the "
                                 "column drains"),
                ("activations", "systolic: channel c of each row's pixel, skewed"),
                ("weights", "systolic: channel c of each column's filter, skewed")])

    def accepts(self, m) -> bool:
        return (set(m.rows) <= set("PQ") and m.cols == ("K",) and m.input == "forward"
                and m.weight == "forward")

    def facts(self, spec, layer) -> EngineFacts:
        return EngineFacts(spec.rows, tuple(spec.mapping.rows), spec.cols, spec.rows, False,
                           spec.rows)

    def compute_count(self, kn, pbn, qbn) -> int:
        return pbn * qbn          # the block's pixels

    def _output_words(self, h) -> int:
        return h["count"]

    def cost(self, spec, h) -> ComputeCost:
        """Per filter tap: p*q (transposer fill) + rows (stream); then L (wait) + rows (drain)
        + RL + 2."""
        taps, pixels = h["r"] * h["s"], h["p"] * h["q"]
        L, RL, rows = spec.array_latency, spec.buffer_latency, spec.rows
        return ComputeCost(taps * (pixels + rows) + L + rows + RL + 2, taps * rows,
                           (taps * pixels, taps * rows, h["count"]),
                           extra_array=rows * rows * spec.cols)      # drain shifts

    def array(self, spec, act, wgt, **kw):
        from hw.array import OutputStationaryArray
        return OutputStationaryArray, dict(act_shape=act, weight_shape=wgt, **kw)
