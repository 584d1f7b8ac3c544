"""Independent tasks on a local process pool or on a Dask cluster: the one home of both, for
``accelgen sweep`` (fpga/sweep.py: a synthesis per config) and ``accelgen run --jobs/--scheduler``
(sim/netrun.py: a network's layers verified in parallel)::

    for i, result in completed(fn, [(a, b), (c, d)], jobs=2):          # or scheduler="tcp://..."
        ...                                      # fn(*tasks[i]) == result, in completion order

A Dask cluster's workers import ``fn`` by its module, so they need this repository on their path
(``pip install -e .`` or ``PYTHONPATH``) and the same dependencies.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from .errors import AccelgenError

__all__ = ["completed", "WorkerDied"]


class WorkerDied(AccelgenError):
    """A local worker process died (killed, out of memory) before returning its result."""

    def __init__(self, reason: str):
        super().__init__(f"a worker process died ({reason})")
        self.reason = reason


def _dask_client(scheduler: str):
    try:
        from distributed import Client
    except ImportError:
        raise AccelgenError("--scheduler needs Dask: pip install 'dask[distributed]'") from None
    try:
        return Client(scheduler, timeout="10s")
    except OSError as e:
        raise AccelgenError(f"cannot reach the Dask scheduler at {scheduler} ({e}); start one "
                            f"with 'dask scheduler' or drop --scheduler") from None


def completed(fn, tasks, *, jobs: int | None = None, scheduler: str | None = None):
    """Run ``fn(*args)`` for each ``args`` of ``tasks`` on ``jobs`` local worker processes
    (default: every core), or on the Dask cluster whose scheduler listens at ``scheduler``; yield
    ``(index, result)`` as each finishes. A task's exception is raised here; a dead local worker
    raises :class:`WorkerDied`. Leaving the loop early cancels the tasks not yet started."""
    tasks = list(tasks)
    if not tasks:
        return
    if scheduler:
        client = _dask_client(scheduler)
        from distributed import as_completed as dask_completed
        with client:
            futs = {client.submit(fn, *args, pure=False): i for i, args in enumerate(tasks)}
            try:
                for fut in dask_completed(list(futs)):
                    yield futs[fut], fut.result()
            finally:
                client.cancel([f for f in futs if not f.done()])
        return
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        futs = {pool.submit(fn, *args): i for i, args in enumerate(tasks)}
        try:
            for fut in as_completed(futs):
                yield futs[fut], fut.result()
        except BrokenProcessPool as e:
            raise WorkerDied(str(e) or "killed") from None
        finally:
            for f in futs:
                f.cancel()
