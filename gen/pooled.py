"""A convolution followed by a max-pooling layer, run as one layer: the pooling on the STORE path.

Gemmini pools on the way out; so does accelgen on a spec with the pooling unit (``[pool]
enabled``, hw/pool.py). A MaxPool whose windows do not overlap (kernel == stride, no padding, the
digits model's 2x2 after conv5) is an exact integer max, which commutes with the monotone
requantisation, so pooling the requantised (or ReLU'd, or raw) outputs as they leave equals the
pooling onnxruntime does after the conv node. :class:`ConvPool` is the layer kind (gen/layer.py's
protocol); :func:`plan_pooled` plans it with gen/tiler.py over the output rows and columns the
windows cover (rows and columns past the last whole window are never computed), in output tiles
of whole windows (on os, blocks of whole windows too), each STORE pooling its tile or block
(gen/isa.py: ``pool``, ``pool_r``, ``pool_s``,
``pool_w``). Overlapping windows (ResNet's 3x3 stride-2 pool) stay on the host: a tile would need
the halo of its neighbours' outputs.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .errors import AccelgenError
from .isa import field_max
from .layer import MAX_DIM, ConvLayer, ConvStage
from .tiler import Cost, model_cycles, plan_layer

if TYPE_CHECKING:
    import numpy as np

    from .program import Program
    from .spec import Spec

__all__ = ["ConvPool", "plan_pooled"]


@dataclasses.dataclass(frozen=True)
class ConvPool(ConvStage):
    """``conv`` then a max-pooling of its (requantised) outputs in non-overlapping
    ``pool_r`` × ``pool_s`` windows (stride = window, no padding, floor mode): outputs
    ``(N, K, P // pool_r, Q // pool_s)``."""

    pool_r: int = 2
    pool_s: int = 2
    kind = "a pooled layer"

    def __post_init__(self):
        super().__post_init__()
        for what, v in (("rows", self.pool_r), ("columns", self.pool_s)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 255:
                raise AccelgenError(f"pooling window {what} must be an integer from 1 to 255, "
                                    f"not {v!r}")
        if self.conv.P < self.pool_r or self.conv.Q < self.pool_s:
            raise AccelgenError(f"a {self.pool_r}x{self.pool_s} pooling window does not fit "
                                f"the {self.conv.P}x{self.conv.Q} output map of {self.name}")

    @property
    def window(self) -> tuple[int, int]:
        return self.pool_r, self.pool_s

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        c = self.conv
        return (c.N, c.K, c.P // self.pool_r, c.Q // self.pool_s)

    def describe(self) -> str:
        n, k, p, q = self.output_shape
        return (f"{self.conv.describe()} + maxpool {self.pool_r}x{self.pool_s} "
                f"-> {n}x{k}x{p}x{q}")

    def golden(self, spec: Spec, x, w, bias=None, quant=None, relu: bool = False) -> np.ndarray:
        from sim.golden import layer_output
        return layer_output(spec, self.conv, x, w, bias, quant=quant, relu=relu,
                            pool=self.window)

    def plan(self, spec: Spec, *, bias: bool = False, requant: bool = False,
             relu: bool = False) -> Program:
        return plan_pooled(spec, self.conv, dict(bias=bias, requant=requant, relu=relu,
                                                 pool=self.window), model_cycles)

    def encode(self, program: Program, x, w, bias=None, quant=None) -> list[bytes]:
        from .frames import encode
        return encode(program, x, w, bias, quant)

    def decode(self, program: Program, frames: list[bytes], quant=None) -> np.ndarray:
        from .frames import decode
        return decode(program, frames, quant)


@dataclasses.dataclass(frozen=True)
class _Cropped(ConvLayer):
    """A convolution whose output map is cut to its first ``p_out`` × ``q_out`` pixels (the
    rows and columns a pooling layer's windows cover; the others are never computed)."""
    p_out: int = MAX_DIM
    q_out: int = MAX_DIM

    @property
    def P(self) -> int:
        return min(super().P, self.p_out)

    @property
    def Q(self) -> int:
        return min(super().Q, self.q_out)


def plan_pooled(spec: Spec, layer: ConvLayer, kw: dict, cost: Cost = model_cycles) -> Program:
    """``layer`` with its outputs max-pooled in non-overlapping ``kw["pool"]`` windows on the
    STORE path: planned over the output rows and columns the windows cover, in output tiles of
    whole windows, each STORE pooling its tile's windows."""
    kr, ks = kw["pool"]
    if not spec.pool:
        raise AccelgenError(f"max-pooling on the STORE path needs the pooling unit, which "
                            f"{spec.name} does not have; set [pool] enabled = true in the spec")
    for what, v, f in (("rows", kr, "pool_r"), ("columns", ks, "pool_s")):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= field_max(f):
            raise AccelgenError(f"pooling window {what} must be an integer from 1 to "
                                f"{field_max(f)}, not {v!r}")
    if layer.P < kr or layer.Q < ks:
        raise AccelgenError(f"a {kr}x{ks} pooling window does not fit the layer's "
                            f"{layer.P}x{layer.Q} output map")
    fields = {f.name: getattr(layer, f.name) for f in dataclasses.fields(ConvLayer)}
    crop = _Cropped(**fields, p_out=layer.P // kr * kr, q_out=layer.Q // ks * ks)
    prog = plan_layer(spec, crop, kw, cost)
    return dataclasses.replace(prog, layer=layer, pool=(kr, ks))
