"""Progress of slow steps, on standard error (standard output stays the command's result).

A step prints a line as it starts — with how long it took the last time it ran with the same key,
kept in ``<cache>/timings.json`` — and the time it took when it ends::

    accelgen: yosys (synth_ecp5) ... (last time 52 s)
    accelgen: yosys done in 49.8 s

Long computations inside the library (the tiler trying tilings of a big layer) :func:`report` where
they are; a caller that wants to show it listens with :func:`reporting`, e.g. a :class:`Heartbeat`,
which prints a line every few seconds once the work has run for a while::

    accelgen: planning conv5 on ws_4x4: tiling 3 of 11, output tile 1,200 of 4,096 (35 s)
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

__all__ = ["cache_dir", "last_time", "record_time", "step", "say", "Items", "report",
           "reporting", "Heartbeat"]


def cache_dir() -> Path:
    """accelgen's cache: ``$ACCELGEN_CACHE`` or ``~/.cache/accelgen`` (simulator builds, generated
    Verilog, step timings)."""
    root = os.environ.get("ACCELGEN_CACHE") or Path.home() / ".cache" / "accelgen"
    return Path(root)


def _timings() -> Path:
    return cache_dir() / "timings.json"


def last_time(key: str) -> float | None:
    """Seconds the step ``key`` took the last time, or None."""
    try:
        return float(json.loads(_timings().read_text())[key])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_time(key: str, seconds: float) -> None:
    """Remember how long step ``key`` took (best effort: a read-only cache is no error)."""
    path = _timings()
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(data, dict):
            data = {}
        data[key] = round(seconds, 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, sort_keys=True))
        tmp.replace(path)
    except (OSError, ValueError):
        pass


def say(text: str) -> None:
    print(f"accelgen: {text}", file=sys.stderr, flush=True)


@contextmanager
def step(what: str, key: str | None = None, *, quiet: bool = False):
    """Announce a slow step, time it and remember its time under ``key``."""
    if not quiet:
        last = last_time(key) if key else None
        say(f"{what} ..." + (f" (last time {last:.0f} s)" if last is not None else ""))
    t0 = time.monotonic()
    yield
    dt = time.monotonic() - t0
    if key:
        record_time(key, dt)
    if not quiet:
        say(f"{what.split(' (')[0]} done in {dt:.1f} s")


class Items:
    """Progress through ``total`` items on standard error: a rich bar on a terminal (the finished
    items' lines printed above it), one line per item otherwise (logs, pipes, tests)::

        with Items(4, "layers") as p:
            p.start("conv1 on RTL (model 1,209 cycles)")
            p.done("conv1: 1,209 cycles (model 1,209) in 3.2 s")
    """

    def __init__(self, total: int, what: str, *, quiet: bool = False):
        self.total, self.what, self.quiet = total, what, quiet
        self.n = 0
        self.bar = None

    def __enter__(self):
        if not self.quiet and sys.stderr.isatty() and self.total:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(),
                                console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=self.total)
        return self

    def start(self, text: str, short: str | None = None) -> None:
        """An item begins: ``text`` on a line, or ``short`` (default ``text``) beside the bar."""
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(self.task, description=short or text)
        else:
            say(f"[{self.n + 1}/{self.total}] {text} ...")

    def done(self, text: str) -> None:
        self.n += 1
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.console.print(f"accelgen: [{self.n}/{self.total}] {text}", markup=False,
                                   highlight=False)
            self.bar.update(self.task, advance=1)
        else:
            say(f"[{self.n}/{self.total}] {text}")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


#: who hears :func:`report` (see :func:`reporting`); None: nobody
_LISTENER: ContextVar = ContextVar("accelgen_progress_listener", default=None)


def report(stage: str, i: int, n: int) -> None:
    """A long computation is at item ``i`` (from 0) of ``n`` of ``stage`` (e.g. the tiler's
    "tiling", "output tile"); cheap when nobody listens."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(stage, i, n)


@contextmanager
def reporting(listener):
    """Within the block, :func:`report` calls ``listener(stage, i, n)``."""
    token = _LISTENER.set(listener)
    try:
        yield listener
    finally:
        _LISTENER.reset(token)


class Heartbeat:
    """A :func:`reporting` listener that, once ``after`` seconds have passed, says where the work
    is every ``every`` seconds: ``planning WHAT: tiling 3 of 11, output tile 1,200 of 4,096
    (35 s)`` (the stages in the order they were first reported)."""

    after = 2.0         # seconds of silence before the first line
    every = 5.0         # seconds between lines

    def __init__(self, what: str, *, clock=time.monotonic):
        self.what, self.clock = what, clock
        self.t0 = clock()
        self.next = self.t0 + self.after
        self.stages: dict[str, tuple[int, int]] = {}
        self.lines = 0

    def __call__(self, stage: str, i: int, n: int) -> None:
        self.stages[stage] = (i, n)
        keys = list(self.stages)           # a new outer item restarts the inner stages
        for inner in keys[keys.index(stage) + 1:]:
            del self.stages[inner]
        now = self.clock()
        if now >= self.next:
            self.next = now + self.every
            self.lines += 1
            where = ", ".join(f"{s} {j + 1:,} of {m:,}" for s, (j, m) in self.stages.items())
            say(f"{self.what}: {where} ({now - self.t0:.0f} s)")
