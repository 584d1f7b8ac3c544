"""A layer's requantisation on the STORE path: what the host gives, checked in one place.

onnxruntime turns a conv or fully-connected layer's int32 accumulators into int8/uint8 with fp32
steps (../shared/NETWORKS.md): ``fp32(acc) * scale[k]`` (one fp32 multiply per output channel
``k``), clamped, rounded to nearest even, plus the output zero point. The post-processing unit
(hw/requant.py) computes exactly that; :class:`Requant` carries its parameters: the fp32 scale per
output channel (sent in LOAD_QUANT beats) and the zero point and clamp range (in each STORE's
header, gen/isa.py). sim/golden.py :func:`~sim.golden.requantize_fp32` is the reference.

A ReLU after the layer is folded the way onnxruntime's quantizer folds it: the clamp range starts
at the zero point (``qmin = max(qmin, zero_point)``); a Clip narrows ``[qmin, qmax]`` the same way.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import AccelgenError

__all__ = ["Requant", "requant_scale", "gap_scale"]


def requant_scale(sx, sw, sy) -> np.ndarray:
    """``fp32(fp32(sx·sw[k]) / sy)`` per output channel, in that order (onnxruntime's
    qlinearconv.cc): the scale of a conv or fully-connected layer with input scale ``sx``,
    weight scales ``sw`` (one or per channel) and output scale ``sy``."""
    f32 = np.float32
    return (f32(sx) * np.asarray(sw, dtype=np.float32)) / f32(sy)


def gap_scale(sx, sy, image_size: int) -> np.float32:
    """``fp32(sx / fp32(sy·H·W))``, in that order (MLAS's QLinearGlobalAveragePool, qlgavgpool.cpp):
    the scale of a global average pool over ``image_size = H·W`` pixels, whose accumulator is the
    integer sum ``Σx - zx·H·W``."""
    f32 = np.float32
    return f32(sx) / (f32(sy) * f32(image_size))


@dataclasses.dataclass(frozen=True, eq=False)
class Requant:
    """Requantisation parameters of one layer.

    ``scale``: fp32, one per output channel or one for all (for a convolution
    ``fp32(fp32(sx * sw[k]) / sy)``, gen/quant.py :func:`~gen.quant.requant_scale`); ``zero_point``: the
    output zero point; ``qmin``/``qmax``: the clamp range of the outputs (default: the spec's signed
    ``out_bits`` range). The range must be a signed or an unsigned ``out_bits`` range or lie
    within one; outputs are decoded as unsigned when ``qmin >= 0``.
    """

    scale: object
    zero_point: int = 0
    qmin: int | None = None
    qmax: int | None = None

    @property
    def signed(self) -> bool:
        """Outputs are two's complement (``qmin < 0``), else unsigned."""
        return self.qmin is None or self.qmin < 0

    def resolved(self, spec, channels: int, relu: bool = False) -> Requant:
        """This requantisation checked against ``spec`` for ``channels`` output channels: scale
        an fp32 array of shape ``(channels,)``, the range filled in and ``relu`` folded into it.
        A bad value raises :class:`~gen.errors.AccelgenError` naming it."""
        if not spec.postproc:
            raise AccelgenError(f"requantisation needs the post-processing unit, which "
                                f"{spec.name} does not have; set [postproc] enabled = true in "
                                f"the spec")
        s = np.asarray(self.scale)
        if s.dtype == object or not (np.issubdtype(s.dtype, np.floating)
                                     or np.issubdtype(s.dtype, np.integer)):
            raise AccelgenError(f"requantisation scale must be numbers, not {s.dtype}")
        if s.ndim == 0:
            s = np.full(channels, s)
        if s.shape != (channels,):
            raise AccelgenError(f"requantisation scale has shape {s.shape} but the layer needs "
                                f"one per output channel ({channels},) or a scalar")
        with np.errstate(over="ignore"):
            s = s.astype(np.float32)
        bad = ~np.isfinite(s) | (s <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            given = np.asarray(self.scale, dtype=np.float64).reshape(-1)
            raise AccelgenError(f"requantisation scale must be positive and finite in fp32, not "
                                f"{float(given[min(i, given.size - 1)])!r} (channel {i})")
        ob = spec.out_bits
        slo, shi = -(1 << (ob - 1)), (1 << (ob - 1)) - 1
        ulo, uhi = 0, (1 << ob) - 1
        qmin = slo if self.qmin is None else self.qmin
        qmax = shi if self.qmax is None else self.qmax
        for name, v in (("zero_point", self.zero_point), ("qmin", qmin), ("qmax", qmax)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise AccelgenError(f"requantisation {name} must be an integer, not {v!r}")
        zp, qmin, qmax = int(self.zero_point), int(qmin), int(qmax)
        if not (slo <= qmin <= qmax <= shi or ulo <= qmin <= qmax <= uhi):
            raise AccelgenError(
                f"requantisation range [{qmin}, {qmax}] must lie within the signed "
                f"[{slo}, {shi}] or the unsigned [{ulo}, {uhi}] range of postproc.out_bits={ob}")
        if not slo <= zp <= uhi:
            raise AccelgenError(f"requantisation zero_point must be from {slo} to {uhi} "
                                f"(postproc.out_bits={ob}), not {zp}")
        if relu:
            if zp > qmax:
                raise AccelgenError(f"a ReLU folded into the requantisation range needs "
                                    f"zero_point <= qmax, not {zp} > {qmax}")
            qmin = max(qmin, zp)
        return Requant(s, zp, qmin, qmax)

    def scale_bits(self) -> np.ndarray:
        """The fp32 scales' IEEE-754 bits (int64), for LOAD_QUANT beats (after :meth:`resolved`)."""
        return np.asarray(self.scale, dtype=np.float32).view(np.uint32).astype(np.int64)
