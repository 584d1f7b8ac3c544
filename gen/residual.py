"""A convolution whose requantised outputs meet a residual on the STORE path: a QLinearAdd, run as
one layer.

ResNet's blocks end in an Add of a conv's output and a tensor computed earlier (the block's
input, or its downsampling conv's output). On a spec with the residual unit (``[postproc]
residual``, hw/resadd.py) the Add runs on the conv's way out: each STORE (gen/isa.py ``add``)
takes the residual's words for its output words as its payload, in the same word order, and each
lane leaves as onnxruntime's x86 QLinearAdd of the requantised value and the residual lane, with
the parameters of one LOAD_ADD before the first STORE (gen/quant.py :class:`~gen.quant.AddQuant`).
The conv's own output never leaves the chip. :class:`ConvAdd` is the layer kind (gen/layer.py's
protocol; its golden, encode and decode also take the ``residual`` tensor and the ``add``
parameters); gen/tiler.py :func:`~gen.tiler.plan` with ``add`` plans it (the conv's tiling, then
gen/schedule.py :func:`~gen.schedule.residual_add`), gen/frames.py encodes the residual.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .errors import AccelgenError
from .layer import ConvStage

if TYPE_CHECKING:
    import numpy as np

    from .program import Program
    from .quant import AddQuant
    from .spec import Spec

__all__ = ["ConvAdd", "check_add_plan"]


def check_add_plan(spec: Spec, *, requant: bool, pool) -> None:
    """Refuse a residual add the STORE path cannot run (gen/isa.py STORE ``add``)."""
    if not spec.residual:
        raise AccelgenError(f"a residual add on the STORE path needs the residual unit, which "
                            f"{spec.name} does not have; set [postproc] residual = true in the "
                            f"spec, or keep the Add on the host")
    if not requant:
        raise AccelgenError("a residual add on the STORE path adds requantised outputs: plan "
                            "the layer with requant (give its requantisation)")
    if pool is not None:
        raise AccelgenError("a STORE cannot both max-pool and add a residual; keep the Add or "
                            "the MaxPool on the host")


@dataclasses.dataclass(frozen=True)
class ConvAdd(ConvStage):
    """``conv``, requantised, then a QLinearAdd with a residual of the conv's output shape
    (NKPQ): outputs ``(N, K, P, Q)``, the Add's."""

    kind = "a conv + add layer"

    def describe(self) -> str:
        return f"{self.conv.describe()} + residual add"

    def golden(self, spec: Spec, x, w, bias=None, quant=None, relu: bool = False, *,
               residual=None, add: AddQuant | None = None) -> np.ndarray:
        from sim.golden import layer_output
        if quant is None:
            raise AccelgenError("a residual add on the STORE path adds requantised outputs: "
                                "give the layer's requantisation (gen.quant.Requant)")
        return layer_output(spec, self.conv, x, w, bias, quant=quant, relu=relu,
                            residual=residual, add=_needed(add))

    def plan(self, spec: Spec, *, bias: bool = False, requant: bool = False,
             relu: bool = False) -> Program:
        from .tiler import plan
        return plan(spec, self.conv, bias=bias, requant=requant, relu=relu, add=True)

    def encode(self, program: Program, x, w, bias=None, quant=None, *, residual=None,
               add: AddQuant | None = None) -> list[bytes]:
        from .frames import encode
        return encode(program, x, w, bias, quant, residual=residual, add=_needed(add))

    def decode(self, program: Program, frames: list[bytes], quant=None, *,
               add: AddQuant | None = None) -> np.ndarray:
        from .frames import decode
        return decode(program, frames, quant, add=_needed(add))


def _needed(add):
    if add is None:
        raise AccelgenError("a conv + residual add layer needs the Add's parameters "
                            "(gen.quant.AddQuant, from gen.quant.add_quant)")
    return add
