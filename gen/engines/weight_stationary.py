"""Weight-stationary (``ws``): a systolic array whose PEs hold a ``rows``×``cols`` weight block.

Array rows hold input channels, columns output channels; each filter tap is one pass in which the
weight block sits in the PEs while the input pixels of an output tile stream through. The weights
are double-buffered in the PEs, so the taps of a COMPUTE run back to back (the next tap's weights
shift in behind the stream) and a COMPUTE queued in time follows the running one as a tap follows a
tap (:attr:`Dataflow.chains`).
"""

from __future__ import annotations

from .base import ComputeCost, Dataflow, Engine

__all__ = ["WeightStationary"]


class WeightStationary(Dataflow):
    engine = Engine.WS
    name = "weight-stationary"
    description = ("weight-stationary systolic array: weights preloaded down the columns, inputs "
                   "forwarded right, partial sums forwarded down")
    stationary = "weight"
    preset = dict(rows=("C",), cols=("K",), stationary="weight", input="forward",
                  weight="stationary", psum="forward")
    hint = "rows = [\"C\"], cols = [\"K\"], input = \"forward\", psum = \"forward\""
    per_pe_cycle = (1, 2)    # reads its held weight; receives the activation and partial sum
    chains = True
    picture = dict(
        pe="W", right=["activations"], down=["partial sums", "weights"],
        left=("activations", "input buffer\n(rows = input\nchannels)", "skew"),
        top=("weights", "weight buffer (cols = output channels)"),
        bottom="deskew  →  output buffer (accumulate over taps and C tiles)",
        legend=[("weights", "preload: shifted down each column, then held"),
                ("activations", "systolic: one PE per cycle, skewed by row"),
                ("partial sums", "systolic: reduced down each column")])

    def accepts(self, m) -> bool:
        return (m.rows == ("C",) and m.cols == ("K",) and m.input == "forward"
                and m.psum == "forward")

    def lead(self, spec) -> int:
        """Cycles from the first state to the first tap's stream (its weights load)."""
        return spec.rows + 1

    def shadow_free(self, spec) -> int:
        """Cycles from a tap's first stream cycle until every PE has taken that tap's weights
        from its shadow (the flipped bank bit reaches the far corner PE): no weight may shift
        into the shadows before then, neither the next tap's (the loader) nor, from ``XIDLE``,
        the next COMPUTE's first tap (``WLOAD`` waits)."""
        return spec.rows + spec.cols + spec.buffer_latency

    def tap_gap(self, spec) -> int:
        """The shortest tap: the next tap's weights load meanwhile, after :meth:`shadow_free`."""
        return self.shadow_free(spec) + spec.rows + 1

    def cost(self, spec, h) -> ComputeCost:
        """rows + 1 (first tap's weights) + per filter tap but the last max(p*q, 2*rows + cols +
        RL + 1) (stream; the next tap's weights load into the other bank meanwhile) + p*q (last
        stream); then the sums drain for L + RL + 3 cycles while it takes the next COMPUTE."""
        taps, pixels = h["r"] * h["s"], h["p"] * h["q"]
        L, RL = spec.array_latency, spec.buffer_latency
        cycles = (self.lead(spec) + (taps - 1) * max(pixels, self.tap_gap(spec)) + pixels
                  + L + RL + 3)
        return ComputeCost(cycles, taps * pixels, (taps * pixels, taps * spec.rows, taps * pixels),
                           extra_array=taps * spec.rows * spec.rows * spec.cols)  # preload shifts

    def array(self, spec, act, wgt, **kw):
        from hw.array import SystolicArray
        return SystolicArray, dict(act_shape=act, weight_shape=wgt, preload="down", banks=2, **kw)
