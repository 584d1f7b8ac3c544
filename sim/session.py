"""One simulator process that takes programs one at a time: the native harness (sim/native.py)
reading its program file from a named pipe.

A network's chained run needs each layer's output before it can encode the next layer's input, so
its programs cannot be written to the program file up front as ``sim.native.run`` does. The
harness reads the program file with ``$fread`` only as it needs the next words, and a blocking
``$fread`` blocks the whole simulation (no simulated time passes), so a named pipe in place of the
file hands programs over one at a time without any change to the harness: :meth:`Session.run`
writes a program into the pipe and reads its outputs and counters from the result file (flushed
after every program); :meth:`Session.close` writes the end word. The counters are cleared at every
program's start, as in a batch run, so each program's figures are its own::

    with Session(bdir, spec, work_dir, sim="verilator") as s:
        r = s.run(NativeProgram(frames, n_out, bound))        # a NativeResult
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import subprocess
import time
from pathlib import Path

from gen.errors import AccelgenError

from .native import END, NativeProgram, NativeResult, ResultReader, executable, \
    pause_threshold, program_bytes
from .runner import prepare_simulator

__all__ = ["Session"]

#: how long to wait for the simulator to open the program pipe (it loads the design first)
OPEN_TIMEOUT = 600.0


class Session:
    """The simulator of the build ``bdir`` running in ``work_dir`` (``program.pipe``,
    ``result.txt``, ``sim.log``), taking programs one at a time."""

    def __init__(self, bdir: Path, spec, work_dir: Path, *, sim: str):
        prepare_simulator(sim)
        self.sim, self.spec = sim, spec
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.in_bytes = spec.in_stream_bits // 8
        self.pipe = self.work_dir / "program.pipe"
        self.result = self.work_dir / "result.txt"
        self.log_path = self.work_dir / "sim.log"
        for f in (self.pipe, self.result):
            f.unlink(missing_ok=True)
        os.mkfifo(self.pipe)
        self.reader = ResultReader(spec, spec.out_stream_bits // 8, sim, self.result,
                                   self.log_path)
        cmd = executable(bdir, sim) + [f"+program={self.pipe}", f"+result={self.result}",
                                       f"+in_pause={pause_threshold(0)}",
                                       f"+out_pause={pause_threshold(0)}", "+seed=0"]
        self.log = open(self.log_path, "w")
        try:
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                         cwd=self.work_dir)
        except OSError as e:
            self.log.close()
            raise AccelgenError(f"the {sim} build in {bdir} does not run ({e.strerror}); "
                                f"delete that directory to rebuild it") from None
        self.fd = None
        self.offset = 0
        self.pending = b""
        try:
            self.fd = self._open_pipe()
        except BaseException:
            self.abort()
            raise

    def _open_pipe(self) -> int:
        """The pipe's write end, once the simulator has opened its read end (blocking writes)."""
        t0 = time.monotonic()
        while True:
            try:
                fd = os.open(self.pipe, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                if e.errno != errno.ENXIO:
                    raise
            if self.proc.poll() is not None:
                raise self._failed()
            if time.monotonic() - t0 > OPEN_TIMEOUT:
                raise AccelgenError(f"the {self.sim} simulation did not open its program pipe "
                                    f"in {OPEN_TIMEOUT:.0f} s; see {self.log_path}")
            time.sleep(0.01)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return fd

    def _failed(self) -> AccelgenError:
        """The error the results explain (a timeout, a deadlock, a wrong build), else an early
        end; the process has exited."""
        self._read_lines()          # raises on a fault line
        rc = self.proc.returncode
        if rc:
            return AccelgenError(f"the {self.sim} simulation exited with status {rc}; see "
                                 f"{self.log_path}")
        return self.reader.stopped()

    def _read_lines(self) -> NativeResult | None:
        """Feed the result file's new complete lines to the reader; the first program result."""
        try:
            with open(self.result, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return None
        self.offset += len(data)
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        result = None
        for i, raw in enumerate(lines):
            r = self.reader.line(raw.decode())
            if r is not None:
                # a program's lines end at its ``p`` line, which the harness flushes last
                result = r
                rest = lines[i + 1:]
                if rest:
                    self.pending = b"\n".join([*rest, self.pending])
                break
        return result

    def run(self, program: NativeProgram) -> NativeResult:
        """Run one program; its output frames and counters. A fault (a timeout, a deadlock, the
        simulator gone) raises and ends the session."""
        if self.fd is None:
            raise AccelgenError("the simulation session is closed (a program failed)")
        data = program_bytes(program, self.in_bytes)
        try:
            return self._run(memoryview(data))
        except BaseException:
            self.abort()
            raise

    def _run(self, view: memoryview) -> NativeResult:
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except BrokenPipeError:
            self.proc.wait()
            raise self._failed() from None
        delay = 0.001
        while True:
            r = self._read_lines()
            if r is not None:
                return r
            if self.proc.poll() is not None:
                r = self._read_lines()
                if r is not None:
                    return r
                raise self._failed()
            time.sleep(delay)
            delay = min(0.01, delay * 2)

    def _close_fd(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def close(self) -> None:
        """End the run (the end word) and wait for the simulator to finish."""
        if self.fd is None:
            self.abort()
            return
        try:
            os.write(self.fd, struct.pack(">I", END))
        except BrokenPipeError:
            pass
        self._close_fd()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.abort()
            raise AccelgenError(f"the {self.sim} simulation did not end after its last "
                                f"program; see {self.log_path}") from None
        finally:
            self.log.close()
            self.pipe.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop the simulator (after a fault, or when the caller failed mid-run)."""
        self._close_fd()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.pipe.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()
