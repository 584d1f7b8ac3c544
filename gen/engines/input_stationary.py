"""Input-stationary (``is``): a systolic array whose PEs hold input pixels.

Array rows hold input channels, columns output pixels of a *block* (at most ``cols`` pixels, shaped
by the mapping's pixel dims); the output channels stream through, one weight word (``rows`` input
channels) per channel and tap. An output word holds one channel for the block's pixels (lane j:
pixel ``npix-1-j``), so bias and requantisation parameters are per word.
"""

from __future__ import annotations

import numpy as np

from .base import ComputeCost, Dataflow, Engine, EngineFacts

__all__ = ["InputStationary"]

#: output channels a K tile may hold (the channel memories' depth)
CHANNELS = 256


class InputStationary(Dataflow):
    engine = Engine.IS
    name = "input-stationary"
    description = ("input-stationary systolic array: input pixels preloaded along the rows, "
                   "weights forwarded right, partial sums forwarded down")
    stationary = "input"
    preset = dict(rows=("C",), cols=("P", "Q"), stationary="input", input="stationary",
                  weight="forward", psum="forward")
    hint = ("rows = [\"C\"], cols from [\"P\", \"Q\"], weight = \"forward\", "
            "psum = \"forward\"")
    per_pe_cycle = (1, 2)    # reads its held pixel; receives the weight and partial sum
    per_word_channels = True
    needs_count = True
    compute_fields = ("p", "q", "r", "s", "count")
    picture = dict(
        pe="I", right=["weights", "activations"], down=["partial sums"],
        left=("weights", "weight buffer (stream)\n+ input buffer (preload)\n(rows = "
                         "input channels)", "skew"),
        top=None,
        bottom="deskew  →  output buffer (one output channel per word, lanes = pixels)",
        legend=[("activations", "preload: a pixel per column, shifted along the rows, "
                                "then held"),
                ("weights", "systolic: one output channel per cycle, skewed by row"),
                ("partial sums", "systolic: reduced down each column")])

    def accepts(self, m) -> bool:
        return (m.rows == ("C",) and set(m.cols) <= set("PQ") and m.weight == "forward"
                and m.psum == "forward")

    def weight_lanes(self, spec) -> int:
        return spec.rows          # one per input channel

    def chan_depth(self, spec) -> int:
        return CHANNELS

    def facts(self, spec, layer) -> EngineFacts:
        kt = max(1, min(layer.Kg, self.chan_depth(spec), spec.output_depth,
                        spec.weight_depth // (layer.R * layer.S) or 1))
        return EngineFacts(spec.cols, tuple(spec.mapping.cols), kt, kt, True, spec.rows)

    def weight_count(self, spec, layer, facts, cn, kn) -> int:
        return layer.R * layer.S * kn

    def compute_count(self, kn, pbn, qbn) -> int:
        return kn                 # the channels streamed

    def _tap_weight_words(self, spec, h) -> int:
        return h["count"]

    def _output_words(self, h) -> int:
        return h["count"]

    def cost(self, spec, h) -> ComputeCost:
        """Per filter tap: p*q (pixel preload) + count (channel stream) + L + RL + 3."""
        taps, pixels, kn = h["r"] * h["s"], h["p"] * h["q"], h["count"]
        L, RL = spec.array_latency, spec.buffer_latency
        return ComputeCost(taps * (pixels + kn + L + RL + 3), taps * kn,
                           (taps * pixels, taps * kn, taps * kn),
                           extra_array=taps * pixels * spec.rows * spec.cols)  # preload shifts

    def weight_block(self, spec, layer, src, kn, cn):
        """Word (r, s, k), lane c."""
        blk = np.zeros((layer.R, layer.S, kn, spec.rows), dtype=np.int64)
        blk[:, :, :, :src.shape[2]] = src.transpose(0, 1, 3, 2)
        return blk, spec.rows

    def store_tile(self, spec, cmd, vals, Kg):
        """Word = channel; lane j = pixel npix-1-j of the block."""
        npix, kn = cmd.hn * cmd.wn, cmd.count
        return vals[:, npix - 1::-1][:, :npix].reshape(kn, cmd.hn, cmd.wn), kn

    def _isa_tap(self, spec, h, m, addr, tap):
        kn = h["count"]
        wk = m.wbuf[h["waddr"] + tap * kn:][:kn]          # (k, c)
        m.touched["wbuf"][h["waddr"] + tap * kn:][:kn] = True
        y = np.zeros((kn, spec.cols), dtype=np.int64)
        y[:, :h["p"] * h["q"]] = (m.ibuf[addr] @ wk.T).T[:, ::-1]
        return (slice(h["oaddr"], h["oaddr"] + kn), y,
                m.chan_bias[:kn, None] if h["bias"] else 0)

    def array(self, spec, act, wgt, **kw):
        from hw.array import SystolicArray      # weights stream through, input pixels stay
        return SystolicArray, dict(act_shape=wgt, weight_shape=act, preload="right", **kw)
