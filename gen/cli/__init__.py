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
from .args import abs_path, int_at_least, positive_float, probability
from .estimate import cmd_estimate
from .hardware import cmd_fpga, cmd_generate, cmd_layers, cmd_show, cmd_sweep, cmd_synth
from .run import cmd_run
from .simulate import cmd_simulate

__all__ = ["main", "build_parser"]

_SPEC_HELP = "spec TOML file, or the name of a shipped spec (e.g. ws_8x8; see specs/)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("accelgen")
    except PackageNotFoundError:
        return "unknown (not installed)"


_POSITIVE, _NONNEG = int_at_least(1), int_at_least(0)


class _Formatter(argparse.HelpFormatter):
    """Help text with each option's default where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("%(default)" not in text and action.option_strings and default is not None
                and default is not False and default is not argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, exit 2, like every other user error
        print(f"accelgen: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def _layer_options(p):
    """The layer options shared by simulate and fpga run."""
    p.add_argument("--layer", help="layer shape 'C=..,H=..,W=..,K=..,R=..,S=..,stride=..,pad=..' "
                                   "or a workload name like resnet18:conv2_x (random tensors)")
    p.add_argument("--input", help="activations, NCHW .npy (integers in the spec's precision)")
    p.add_argument("--weights", help="weights, KCRS .npy (C/groups channels per filter)")
    p.add_argument("--bias", help="per-output-channel bias, (K,) .npy")
    p.add_argument("--random-bias", action="store_true", help="with --layer: add a random bias")
    p.add_argument("--stride", type=_POSITIVE, help="convolution stride (overrides --layer's; "
                                                   "with --input: 1 when not given)")
    p.add_argument("--padding", type=_NONNEG, help="zero padding on every side (with --input: "
                                                  "0 when not given)")
    p.add_argument("--dilation", type=_POSITIVE, help="filter dilation (with --input: 1 when not "
                                                     "given)")
    p.add_argument("--groups", type=_POSITIVE, help="convolution groups (with --input: 1 when "
                                                   "not given)")
    p.add_argument("--batch", type=_POSITIVE, help="with --layer: batch size N")
    p.add_argument("--seed", type=_NONNEG, default=0, help="seed of the random tensors and of "
                                                          "the backpressure pattern")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="accelgen", description="DNN accelerator generator: a dataflow spec in, "
                                             "verified Verilog out.")
    p.add_argument("--version", action="version", version=f"accelgen {_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser("generate", help="emit Verilog and manifest.json for a spec")
    g.add_argument("spec", help=_SPEC_HELP)
    g.add_argument("-o", "--output", required=True, help="output directory (created)")
    g.add_argument("--json", action="store_true", help="print a machine-readable summary")
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("simulate", help="run a conv layer on the generated RTL and check it "
                                        "against the golden model")
    s.add_argument("spec", help=_SPEC_HELP)
    _layer_options(s)
    s.add_argument("--requant", metavar="SCALE",
                   help="requantise every output channel as onnxruntime does: fp32(acc) * SCALE "
                        "(fp32), round to nearest even, + zero point, clamp (needs [postproc] "
                        "enabled in the spec)")
    s.add_argument("--quant-scale", metavar="FILE",
                   help="per-output-channel fp32 requantisation scales, (K,) .npy")
    s.add_argument("--zero-point", type=int, metavar="ZP",
                   help="requantised outputs' zero point (default 0)")
    s.add_argument("--out-range", metavar="QMIN,QMAX",
                   help="clamp range of requantised outputs, e.g. 0,255 for uint8 (default: "
                        "signed postproc.out_bits; write --out-range=-128,0 when QMIN is negative)")
    s.add_argument("--relu", action="store_true",
                   help="clamp negative outputs to zero (with requantisation: outputs below the "
                        "zero point, as a ReLU folded into the range)")
    s.add_argument("--sim", default="icarus", choices=["icarus", "verilator"],
                   help="the simulator")
    s.add_argument("--driver", default="native", choices=["native", "cocotb"],
                   help="native: clock, streams and CSRs inside the simulator (fast); cocotb: "
                        "cocotbext-axi bus models driven from Python (protocol checks)")
    s.add_argument("--backpressure", type=probability, default=0.0,
                   help="probability of a pause cycle on each AXI stream (seeded by --seed)")
    s.add_argument("--output", help="write the output tensor (NKPQ) to this .npy file")
    s.add_argument("--waves", nargs="?", const="fst", choices=["fst", "vcd"],
                   help="record waveforms in the work directory (FST unless 'vcd' is given)")
    s.add_argument("--save-tensors", metavar="DIR",
                   help="write the layer's tensors (input, weights, bias, expected output) as "
                        ".npy files in DIR, to rerun them with --input/--weights/--bias")
    s.add_argument("--work-dir", type=abs_path, help="keep the simulation job here (default: a "
                                                     "temporary directory)")
    s.add_argument("--json", action="store_true", help="print a machine-readable summary")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("run", help="run a quantized ONNX network end to end, its conv/FC layers "
                                   "on the generated RTL, and write its output as onnxruntime "
                                   "would")
    r.add_argument("spec", help=_SPEC_HELP)
    r.add_argument("model", help="the quantized .onnx model (onnxruntime quantize_static, QDQ "
                                 "or QOperator)")
    r.add_argument("--input", required=True,
                   help="what the model takes: a float32 .npy of its input shape, the first "
                        "dimension the batch")
    r.add_argument("--output", help="write the model's output here (.npy; .npz for several "
                                    "outputs), dtype and shape as onnxruntime returns it")
    r.add_argument("--sim", choices=["icarus", "verilator"],
                   help="the simulator (default: icarus)")
    r.add_argument("--driver", choices=["native", "cocotb"],
                   help="native: clock, streams and CSRs inside the simulator (fast, the "
                        "default); cocotb: cocotbext-axi bus models driven from Python")
    r.add_argument("--isa", action="store_true",
                   help="run the conv/FC layers on the ISA reference model instead of the RTL "
                        "(fast, no cycle counts)")
    r.add_argument("--check", action="store_true",
                   help="also run onnxruntime and the numpy reference: compare every tensor, "
                        "name the first differing node; exit 1 on any difference")
    r.add_argument("--labels", help="class indices, one per batch item (.npy): print the "
                                    "top-1 accuracy")
    r.add_argument("--work-dir", type=abs_path, help="keep each layer's simulation job here "
                                                     "(default: a temporary folder, removed)")
    r.add_argument("--json", action="store_true", help="print a machine-readable summary")
    r.set_defaults(func=cmd_run)

    e = sub.add_parser("estimate", help="cycles, utilisation and energy from the analytic model "
                                        "(exact against the RTL's counters), for one spec or "
                                        "several side by side")
    e.add_argument("spec", nargs="*", help=_SPEC_HELP + "; several are compared side by side")
    e.add_argument("--dataflows", help="compare these presets (e.g. ws,os,is,nlr,rs), each built "
                                       "with the buffers and precisions of SPEC (or the "
                                       "defaults)")
    e.add_argument("--array", help="array shape ROWSxCOLS for every spec (e.g. 8x8)")
    e.add_argument("--layer", help="one layer, as for simulate")
    e.add_argument("--network", help="a shipped network: lenet5, alexnet, vgg16, resnet18, "
                                     "mobilenetv2")
    e.add_argument("--csv", help="a CSV layer table: columns C,H,W,K,R,S[,N,stride,pad,"
                                 "dilation,groups,repeat,layer,network] (case-insensitive), or a "
                                 "SCALE-Sim topology file")
    e.add_argument("--onnx", help="a quantized ONNX model: its conv/FC layers as 'accelgen run' "
                                  "runs them, and the share of the ops left on the host")
    e.add_argument("--batch", type=_POSITIVE, help="with --onnx: the batch of a model whose "
                                                   "batch dimension is symbolic (default 1)")
    e.add_argument("--json", action="store_true", help="print every figure as JSON")
    e.add_argument("--plot", help="utilisation and energy bars (.png or .svg); grouped by spec "
                                  "when several")
    e.add_argument("--log-scale", action="store_true", help="energy axis of --plot on a log "
                                                            "scale")
    e.add_argument("--csv-out", help="write one row per (spec, layer) to this .csv file")
    e.add_argument("--explain", action="store_true",
                   help="show how the tiler laid out each layer (tiles, K groups, rewrites, "
                        "commands)")
    e.set_defaults(func=cmd_estimate)

    sh = sub.add_parser("show", help="draw the PE array and its interconnect (PNG or SVG)")
    sh.add_argument("spec", help=_SPEC_HELP)
    sh.add_argument("-o", "--output", help="picture file, .png or .svg (default NAME.png, "
                                           "or NAME-LAYER.png with --layer)")
    sh.add_argument("--layer", help="draw how this layer maps onto the array (as for simulate: "
                                    "KEY=VALUE pairs or NETWORK:LAYER) and print its folds and "
                                    "tiling")
    sh.set_defaults(func=cmd_show)

    ls = sub.add_parser("layers", help="list the shipped workload layers")
    ls.set_defaults(func=cmd_layers)

    y = sub.add_parser("synth", help="synthesise and place & route a spec (YoWASP Yosys + "
                                     "nextpnr)")
    y.add_argument("spec", help=_SPEC_HELP)
    y.add_argument("--target", default="ecp5-85k", choices=["ecp5-85k", "ecp5-25k", "ice40-up5k"],
                   help="FPGA device")
    y.add_argument("--freq", type=positive_float, default=100.0,
                   help="clock asked of nextpnr, MHz")
    y.add_argument("--seed", type=_POSITIVE, default=1, help="placement seed")
    y.add_argument("--timeout", type=positive_float, help="seconds allowed per tool step "
                                                          "(default: no limit)")
    y.add_argument("--work-dir", type=abs_path, help="where the netlist, reports and logs go "
                                                     "(default build/synth/...)")
    y.add_argument("--no-pnr", action="store_true",
                   help="Yosys only: cell counts (LUTs, FFs before register folding, DSPs, "
                        "BRAMs) without place and route, for design-space loops")
    y.add_argument("--json", action="store_true", help="print a machine-readable summary")
    y.set_defaults(func=cmd_synth)

    w = sub.add_parser("sweep", help="synthesis sweep over spec fields into SQLite "
                                     "('sweep SWEEP.toml', or 'sweep report DB --plot F.png')")
    w.add_argument("sweep", help="sweep TOML file, or the word 'report'")
    w.add_argument("what", nargs="*", help="with 'report': the sweep database")
    w.add_argument("--db", type=abs_path, help="results database (default: SWEEP.db beside "
                                               "the file)")
    w.add_argument("--jobs", type=_POSITIVE, help="local worker processes (default: all "
                                                        "cores)")
    w.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) instead of the "
                                       "local pool")
    w.add_argument("--retry-failed", action="store_true", help="rerun configs recorded as failed")
    w.add_argument("--csv", help="export the results to this CSV file")
    w.add_argument("--plot", help="with 'report': Pareto plot (.png or .svg)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=cmd_sweep)

    f = sub.add_parser("fpga", help="board bitstreams (amaranth-boards + YoWASP) and the host "
                                     "driver ('fpga build SPEC', 'fpga run SPEC --port P')")
    fs = f.add_subparsers(dest="action", required=True, parser_class=_Parser)
    fb = fs.add_parser("build", help="build a board bitstream: the accelerator behind a UART "
                                     "host bridge")
    fb.add_argument("spec", help=_SPEC_HELP)
    fb.add_argument("--board", default="ulx3s", choices=["ulx3s", "icebreaker"], help="board")
    fb.add_argument("--baud", type=_POSITIVE, default=115200, help="UART baud rate")
    fb.add_argument("--seed", type=_POSITIVE, default=1, help="placement seed")
    fb.add_argument("-o", "--output", help="build directory (default build/fpga/SPEC-BOARD)")
    fb.add_argument("--plan-only", action="store_true",
                    help="elaborate and write the build plan without running any tool")
    fb.add_argument("--json", action="store_true", help="print a machine-readable summary")
    fr = fs.add_parser("run", help="run a conv layer on a board over its serial port and check "
                                   "it against the golden model")
    fr.add_argument("spec", help=_SPEC_HELP)
    fr.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0")
    fr.add_argument("--board", default="ulx3s", choices=["ulx3s", "icebreaker"], help="board")
    fr.add_argument("--baud", type=_POSITIVE, default=115200, help="UART baud rate")
    _layer_options(fr)
    fr.add_argument("-o", "--output", help="write the output tensor (NKPQ) to this .npy file")
    f.set_defaults(func=cmd_fpga)
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
