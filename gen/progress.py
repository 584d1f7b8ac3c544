"""Progress of slow steps, on standard error (standard output stays the command's result).

A step prints a line as it starts — with how long it took the last time it ran with the same key,
kept in ``<cache>/timings.json`` — and the time it took when it ends::

    accelgen: yosys (synth_ecp5) ... (last time 52 s)
    accelgen: yosys done in 49.8 s
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["cache_dir", "last_time", "record_time", "step", "say", "Items"]


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
