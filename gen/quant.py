"""A layer's requantisation on the STORE path: what the host gives, checked in one place.

onnxruntime turns a conv or fully-connected layer's int32 accumulators into int8/uint8 with fp32
steps (../shared/NETWORKS.md): ``fp32(acc) * scale[k]`` (one fp32 multiply per output channel
``k``), clamped, rounded to nearest even, plus the output zero point. The post-processing unit
(hw/requant.py) computes exactly that; :class:`Requant` carries its parameters: the fp32 scale per
output channel (sent in LOAD_QUANT beats) and the zero point and clamp range (in each STORE's
header, gen/isa.py). sim/golden.py :func:`~sim.golden.requantize_fp32` is the reference.

A ReLU after the layer is folded the way onnxruntime's quantizer folds it: the clamp range starts
at the zero point (``qmin = max(qmin, zero_point)``); a Clip narrows ``[qmin, qmax]`` the same way.

A residual Add fused into the STORE (gen/isa.py STORE ``add``, LOAD_ADD) is onnxruntime's x86
QLinearAdd of the conv's requantised output and a residual tensor: :class:`AddQuant` carries its
fp32 parameters (:func:`add_params`: ``rA = fp32(sa/sc)``, ``rB = fp32(sb/sc)``, ``fixed =
fp32(zc) - fma32(rA, za, fp32(rB·zb))``), its output range, which input the conv is and whether
the residual is signed; :func:`add_params_ok` is the domain hw/resadd.py is exact on.
sim/golden.py :func:`~sim.golden.qadd_int` is the reference.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import AccelgenError

__all__ = ["Requant", "requant_scale", "gap_scale", "fma32", "add_params", "add_params_ok",
           "AddQuant", "add_quant"]


def fma32(a, b, c) -> np.ndarray:
    """fp32 fused multiply-add ``a*b + c`` with one rounding (as ``vfmadd`` computes it), for fp32
    ``a``, ``b``, ``c``. The product is exact in float64; the float64 sum's rounding error is
    recovered exactly (TwoSum), and decides the fp32 rounding where the sum sits on an fp32 tie."""
    a, b, c = (np.asarray(v, dtype=np.float32).astype(np.float64) for v in (a, b, c))
    p = a * b
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)                    # p + c == s + err exactly
    r = s.astype(np.float32)
    # only where s sits exactly on a midpoint between two fp32 values (low 29 bits == 1 << 28)
    # can the exact sum round differently: then the error's sign decides
    bits = s.view(np.int64)
    tie = ((bits & ((1 << 29) - 1)) == (1 << 28)) & (err != 0)
    if tie.any():
        toward0 = (bits & ~np.int64((1 << 29) - 1)).view(np.float64).astype(np.float32)
        away = np.nextafter(toward0, np.where(s > 0, np.float32(np.inf), np.float32(-np.inf)))
        r = np.where(tie, np.where((err > 0) == (s > 0), away, toward0), r)
    return r


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


def add_params(sa, za, sb, zb, sc, zc) -> tuple[np.float32, np.float32, np.float32]:
    """onnxruntime's (MLAS x86) QLinearAdd parameters for inputs A (scale ``sa``, zero point
    ``za``), B and the output C: ``rA = fp32(sa/sc)``, ``rB = fp32(sb/sc)``, ``fixed = fp32(zc) -
    fma32(rA, za, fp32(rB·zb))``, in that order."""
    f32 = np.float32
    with np.errstate(all="ignore"):      # (out-of-range values: add_params_ok names them)
        ra, rb = f32(f32(sa) / f32(sc)), f32(f32(sb) / f32(sc))
        fixed = f32(f32(zc) - fma32(ra, f32(za), rb * f32(zb)))
    return ra, rb, fixed


#: The residual-add unit's domain (hw/resadd.py): |rA|, |rB| and a non-zero |fixed| within it
ADD_PARAM_RANGE = (2.0 ** -60, 2.0 ** 60)


def add_params_ok(ra, rb, fixed) -> str | None:
    """Why the residual unit (hw/resadd.py) cannot compute a QLinearAdd with these fp32
    parameters exactly, or None: ``rA`` and ``rB`` must be normal with ``|r|`` in ``[2**-60,
    2**60]``, ``fixed`` zero or normal in that range."""
    for name, v, zero_ok in (("rA", ra, False), ("rB", rb, False), ("fixed", fixed, True)):
        v = np.float32(v)
        if zero_ok and v == 0:
            continue
        if not np.isfinite(v) or not ADD_PARAM_RANGE[0] <= abs(float(v)) <= ADD_PARAM_RANGE[1]:
            return (f"the Add's {name} = {float(v)!r} is outside the residual unit's range "
                    f"(|{name}| from 2**-60 to 2**60{', or 0' if zero_ok else ''})")
    return None


def _check_range(what: str, lo, hi, ob: int) -> tuple[int, int]:
    """An integer range ``[lo, hi]`` within the signed or unsigned ``ob``-bit range."""
    for name, v in (("qmin", lo), ("qmax", hi)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise AccelgenError(f"{what} {name} must be an integer, not {v!r}")
    lo, hi = int(lo), int(hi)
    slo, shi, uhi = -(1 << (ob - 1)), (1 << (ob - 1)) - 1, (1 << ob) - 1
    if not (slo <= lo <= hi <= shi or 0 <= lo <= hi <= uhi):
        raise AccelgenError(f"{what} range [{lo}, {hi}] must lie within the signed [{slo}, "
                            f"{shi}] or the unsigned [0, {uhi}] range of postproc.out_bits={ob}")
    return lo, hi


@dataclasses.dataclass(frozen=True)
class AddQuant:
    """A residual QLinearAdd on the STORE path (gen/isa.py STORE ``add``): its fp32 parameters
    ``ra``, ``rb``, ``fixed`` (:func:`add_params`; ``ra`` belongs to the Add's input A), its
    output range ``[qmin, qmax]`` (a ReLU folded in as for :class:`Requant`; unsigned outputs
    when ``qmin >= 0``), ``swap``: the conv's output is the Add's B (the residual its A), and
    ``res_signed``: the residual is int (else uint) ``out_bits``. Build it with
    :func:`add_quant`."""

    ra: np.float32
    rb: np.float32
    fixed: np.float32
    qmin: int
    qmax: int
    swap: bool = False
    res_signed: bool = True

    @property
    def signed(self) -> bool:
        """The Add's outputs are two's complement (``qmin < 0``), else unsigned."""
        return self.qmin < 0

    def resolved(self, spec) -> AddQuant:
        """This Add checked against ``spec``: its unit, its range within ``out_bits``, its
        parameters in the unit's domain. A bad value raises :class:`~gen.errors.AccelgenError`
        naming it."""
        if not spec.residual:
            raise AccelgenError(f"a residual add on the STORE path needs the residual unit, "
                                f"which {spec.name} does not have; set [postproc] residual = "
                                f"true in the spec")
        qmin, qmax = _check_range("the Add's", self.qmin, self.qmax, spec.out_bits)
        why = add_params_ok(self.ra, self.rb, self.fixed)
        if why:
            raise AccelgenError(f"{why}; keep this Add on the host")
        f32 = np.float32
        return AddQuant(f32(self.ra), f32(self.rb), f32(self.fixed), qmin, qmax,
                        bool(self.swap), bool(self.res_signed))

    def residual_range(self, spec) -> tuple[int, int]:
        """The values a residual lane holds: the signed or unsigned ``out_bits`` range."""
        ob = spec.out_bits
        return (-(1 << (ob - 1)), (1 << (ob - 1)) - 1) if self.res_signed else (0, (1 << ob) - 1)

    def beats(self) -> np.ndarray:
        """LOAD_ADD's payload (gen/isa.py :data:`~gen.isa.ADD_BEATS` words): the fp32 bits of
        ``ra``, ``rb``, ``fixed``, then ``qmin`` (bits 0..15) and ``qmax`` (bits 16..31)."""
        bits = [int(np.asarray(v, dtype=np.float32).view(np.uint32))
                for v in (self.ra, self.rb, self.fixed)]
        return np.array(bits + [(self.qmin & 0xFFFF) | (self.qmax & 0xFFFF) << 16],
                        dtype=np.int64)


def add_quant(a: tuple, b: tuple, c: tuple, *, conv_is_b: bool, res_signed: bool,
              qmin: int, qmax: int) -> AddQuant:
    """The :class:`AddQuant` of a QLinearAdd with inputs ``a``, ``b`` and output ``c``, each
    ``(scale, zero_point)``, whose input B (``conv_is_b``) or A is the conv's output, the other
    the residual (``res_signed``: int8, else uint8), output range ``[qmin, qmax]``."""
    for what, t in (("A", a), ("B", b), ("output", c)):
        s = np.float32(t[0])
        if not (np.isfinite(s) and s > 0):
            raise AccelgenError(f"the Add's {what} scale must be positive and finite in fp32, "
                                f"not {float(t[0])!r}")
    ra, rb, fixed = add_params(a[0], a[1], b[0], b[1], c[0], c[1])
    return AddQuant(ra, rb, fixed, int(qmin), int(qmax), bool(conv_is_b), bool(res_signed))
