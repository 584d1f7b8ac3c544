"""SCALE-Sim's side of bench/scalesim.py (see its docstring): SCALE-Sim's own virtual environment
(created and installed once) and one SCALE-Sim run of one layer, cached by version, config and
layer."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROG = "bench/scalesim.py"
REQUIREMENTS = ["scalesim==3.0.0", "numpy<2", "pandas<2.3"]
MARKER = ".accelgen-scalesim.json"
SRAM_KB = 64

# python -m scalesim.scale, minus the trace dump (see the module docstring)
DRIVER = """\
import sys
from scalesim.scale_sim import scalesim
cfg, topo, layout, out = sys.argv[1:5]
s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
             input_type_gemm=False)
s.run_scale(top_path=out)
"""
PROBE = """\
import json, importlib.metadata as m
import numpy, pandas, scalesim.scale_sim  # noqa
print(json.dumps({p: m.version(p) for p in ("scalesim", "numpy", "pandas")}))
"""
TOPO_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
               "Num Filter, Strides,")


class BenchError(Exception):
    """A one-line error for the user (no traceback)."""


# ------------------------------------------------------------------------------------------------
# SCALE-Sim's own environment

def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _probe(py: Path) -> dict | None:
    if not py.exists():
        return None
    r = subprocess.run([str(py), "-c", PROBE], capture_output=True, text=True)
    if r.returncode:
        return None
    try:
        versions = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    if int(versions["numpy"].split(".")[0]) >= 2:
        return None
    return versions


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("ERROR")]
    return (errs or lines or ["no output"])[-1]


def ensure_scalesim(venv: Path, quiet: bool) -> tuple[Path, dict]:
    """The venv's python (creating the venv and installing SCALE-Sim once) and its versions."""
    py = _venv_python(venv)
    versions = _probe(py)
    if versions:
        return py, versions
    log = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not py.exists():
        log(f"{PROG}: creating SCALE-Sim's virtual environment {venv}")
        r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if r.returncode:
            raise BenchError(
                f"could not create the virtual environment {venv} ({_last_line(r.stderr + r.stdout)}); "
                f"install the venv module (Debian/Ubuntu: apt-get install python3-venv) or pass "
                f"--scalesim-venv DIR")
        (venv / ".gitignore").write_text("# created by bench/scalesim.py\n*\n")
    log(f"{PROG}: installing {' '.join(REQUIREMENTS)} into {venv} (once)")
    r = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
                        "--retries", "2", *REQUIREMENTS], capture_output=True, text=True)
    if r.returncode:
        raise BenchError(
            f"pip could not install {' '.join(REQUIREMENTS)} into {venv} "
            f"({_last_line(r.stderr + r.stdout)}); this needs access to PyPI (check the network, "
            f"proxy or PIP_INDEX_URL) and then rerun, or pass --scalesim-venv DIR naming an "
            f"environment that already has them")
    versions = _probe(py)
    if not versions:
        raise BenchError(f"scalesim was installed into {venv} but does not import; delete {venv} "
                         f"and rerun")
    (venv / MARKER).write_text(json.dumps({"requirements": REQUIREMENTS, **versions}) + "\n")
    return py, versions


# ------------------------------------------------------------------------------------------------
# one SCALE-Sim run

def scalesim_config(rows: int, cols: int, dataflow: str) -> str:
    return f"""\
[general]
run_name = accelgen_bench

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {SRAM_KB}
FilterSramSzkB: {SRAM_KB}
OfmapSramSzkB: {SRAM_KB}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 10
Dataflow: {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 512
WriteRequestBuffer: 512

[layout]
IfmapCustomLayout: False
FilterCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    dataflow: str
    H: int  # pre-padded
    W: int
    R: int
    S: int
    C: int  # per group
    K: int
    stride: int
    times: int  # groups run back to back (1 unless --split-groups)

    def topo_row(self) -> str:
        return (f"{self.name.replace(':', '_').replace(',', '_')}, {self.H}, {self.W}, {self.R}, "
                f"{self.S}, {self.C}, {self.K}, {self.stride},")

    def predicted_cycles(self, rows: int, cols: int) -> int:
        """REFERENCE.md's closed form of SCALE-Sim's compute cycles (used to schedule big jobs
        first)."""
        P = (self.H - self.R) // self.stride + 1
        Q = (self.W - self.S) // self.stride + 1
        sr, sc, t = {"ws": (self.R * self.S * self.C, self.K, P * Q),
                     "os": (P * Q, self.K, self.R * self.S * self.C),
                     "is": (self.R * self.S * self.C, P * Q, self.K)}[self.dataflow]
        folds = math.ceil(sr / rows) * math.ceil(sc / cols)
        fill = rows if self.dataflow == "os" else 2 * rows
        return folds * (fill + cols + t - 2)


def parse_compute_report(path: Path) -> dict:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    head = [h.strip() for h in lines[0].split(",")]
    vals = [v.strip() for v in lines[1].split(",")]
    row = dict(zip(head, vals, strict=False))
    return {"cycles": int(row["Total Cycles"]),
            "cycles_incl_prefetch": int(row["Total Cycles (incl. prefetch)"]),
            "stall_cycles": int(row["Stall Cycles"]),
            "overall_util": float(row["Overall Util %"]) / 100,
            "mapping_efficiency": float(row["Mapping Efficiency %"]) / 100,
            "compute_util": float(row["Compute Util %"]) / 100}


def run_scalesim(py: Path, job: Job, rows: int, cols: int, cache: Path, reuse: bool,
                 versions: dict, via_cli: bool) -> dict:
    cfg = scalesim_config(rows, cols, job.dataflow)
    key_src = json.dumps([versions, cfg, dataclasses.astuple(job)[2:-1]], sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    if reuse and (cache / f"{key}.json").exists():
        out = json.loads((cache / f"{key}.json").read_text())
        out["cached"] = True
        return out
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="accelgen-scalesim-") as tmp:
        tmp = Path(tmp)
        (tmp / "scale.cfg").write_text(cfg)
        (tmp / "topo.csv").write_text(f"{TOPO_HEADER}\n{job.topo_row()}\n")
        (tmp / "layout.csv").write_text(f"{TOPO_HEADER}\n")  # placeholder: custom layouts are off
        files = [str(tmp / "scale.cfg"), str(tmp / "topo.csv"), str(tmp / "layout.csv"),
                 str(tmp / "out")]
        if via_cli:
            cmd = [str(py), "-m", "scalesim.scale", "-c", files[0], "-t", files[1], "-l", files[2],
                   "-p", files[3]]
        else:
            cmd = [str(py), "-c", DRIVER, *files]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        report = tmp / "out" / "accelgen_bench" / "COMPUTE_REPORT.csv"
        if r.returncode or not report.exists():
            raise BenchError(f"SCALE-Sim failed on {job.name} {job.dataflow}: "
                             f"{_last_line(r.stderr + r.stdout)}")
        out = parse_compute_report(report)
    out["seconds"] = round(time.monotonic() - t0, 1)
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"{key}.json").write_text(json.dumps(out) + "\n")
    out["cached"] = False
    return out
