"""One executor per engine (gen/engines/ ``Engine``), each behind the shared ports of
:class:`Executor`."""

from .base import Core, Executor, ExecutorSignature
from .input_stationary import InputStationary
from .no_local_reuse import NoLocalReuse
from .output_stationary import OutputStationary
from .row_stationary import RowStationary
from .weight_stationary import WeightStationary

__all__ = ["Executor", "ExecutorSignature", "Core", "EXECUTORS", "executor_class", "executor_for"]

#: Engine -> its executor class
EXECUTORS = {cls.engine: cls for cls in (WeightStationary, InputStationary, OutputStationary,
                                         NoLocalReuse, RowStationary)}


def executor_class(spec) -> type[Executor]:
    """The executor class of ``spec``'s engine; an engine without one raises."""
    try:
        return EXECUTORS[spec.engine]
    except KeyError:
        raise ValueError(f"no executor for engine '{spec.engine}'; hw/engines has "
                         f"{', '.join(sorted(EXECUTORS))}") from None


def executor_for(spec, *, checks: bool = False) -> Executor:
    """The executor of ``spec``'s engine."""
    return executor_class(spec)(spec, checks=checks)
