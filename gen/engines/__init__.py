"""The engine registry: one :class:`~gen.engines.base.Dataflow` object per hardware engine, looked up
by :class:`Engine`.

Every fact the software knows of an engine lives in its module here (latencies, lanes, the mapping it
builds, tiler facts, footprints, the model's COMPUTE cost, frame packing, the ISA machine's COMPUTE,
its picture, its hardware array); the rest of gen/ and sim/ asks the registry instead of comparing
engine names. :func:`get` refuses a name that is not an engine, so nothing falls through to another
engine's path. CONTRIBUTING.md lists the steps of adding one.
"""

from __future__ import annotations

from ..errors import AccelgenError
from .base import ComputeCost, Dataflow, Engine, EngineFacts
from .input_stationary import InputStationary
from .no_local_reuse import NoLocalReuse
from .output_stationary import OutputStationary
from .row_stationary import RowStationary
from .weight_stationary import WeightStationary

__all__ = ["Engine", "Dataflow", "EngineFacts", "ComputeCost", "ENGINES", "get"]

#: Engine -> its Dataflow, in the order of the dataflow CSR's codes (gen/isa.py)
ENGINES: dict[Engine, Dataflow] = {d.engine: d for d in (
    WeightStationary(), InputStationary(), OutputStationary(), NoLocalReuse(), RowStationary())}
assert tuple(ENGINES) == tuple(Engine), "every Engine has one Dataflow, in Engine order"


def get(engine: str | Engine) -> Dataflow:
    """The Dataflow of ``engine`` (an :class:`Engine` or its name); anything else is refused."""
    try:
        return ENGINES[Engine(engine)]
    except ValueError:
        raise AccelgenError(f"unknown engine {engine!r}; the engines are "
                            f"{', '.join(ENGINES)}") from None
