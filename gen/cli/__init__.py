"""``accelgen``: generate accelerators, run layers on them, estimate, synthesise and sweep.

    accelgen generate SPEC -o DIR
    accelgen simulate SPEC (--layer "C=..,H=..,..." | --input X.npy --weights W.npy) [options]
    accelgen estimate SPEC (--layer L | --network NET | --csv FILE | --onnx MODEL.onnx)
    accelgen run SPEC MODEL.onnx --input X.npy [--output Y.npy] [--check]
    accelgen show SPEC | layers | synth SPEC | sweep SWEEP.toml | fpga build|run SPEC

``SPEC`` is a spec file or the name of a shipped one (``ws_8x8``). User errors print one line
(``accelgen: error: ...``) and exit 2; a simulation whose output differs from the golden model
exits 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import AccelgenError
from . import estimate, hardware, run, simulate
from .args import Parser

__all__ = ["main", "build_parser"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("accelgen")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The parser: each command's module adds its own subcommand (``add_parser(sub)``)."""
    p = Parser(prog="accelgen", description="DNN accelerator generator: a dataflow spec in, "
                                            "verified Verilog out.")
    p.add_argument("--version", action="version", version=f"accelgen {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    # in this order in --help
    hardware.add_generate(sub)
    simulate.add_parser(sub)
    run.add_parser(sub)
    estimate.add_parser(sub)
    hardware.add_parser(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AccelgenError as e:
        print(f"accelgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # half-built Amaranth designs would warn that they were never elaborated
        warnings.simplefilter("ignore")
        print("accelgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stderr.close()
        return 0
