"""``accelgen simulate``: a conv layer on the generated RTL, checked against the golden model."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import AccelgenError
from .args import SPEC_HELP, abs_path, layer_options, probability, load_npy, prepare_output

__all__ = ["cmd_simulate", "layer_from_args", "quant_from_args"]


def layer_from_args(args, spec):
    """The layer and its tensors from ``--layer`` (random tensors) or ``--input/--weights``."""
    from sim.flow import random_tensors

    from ..layer import ConvLayer, parse_layer

    overrides = {"stride": args.stride, "pad": args.padding, "dilation": args.dilation,
                 "groups": args.groups, "N": args.batch}
    if args.layer:
        if args.input or args.weights:
            raise AccelgenError("give either --layer (random tensors) or --input/--weights, "
                                "not both")
        layer = parse_layer(args.layer, **overrides)
        x, w, b = random_tensors(spec, layer, args.seed, bias=args.random_bias)
        if args.bias:
            b = load_npy(args.bias, "bias")
        return layer, x, w, b
    if not (args.input and args.weights):
        raise AccelgenError("simulate needs --layer \"C=..,H=..,W=..,K=..,R=..,S=..\" or both "
                            "--input X.npy and --weights W.npy")
    if args.random_bias:
        raise AccelgenError("--random-bias goes with --layer; with --input/--weights give "
                            "--bias B.npy")
    x = load_npy(args.input, "input")
    w = load_npy(args.weights, "weights")
    b = load_npy(args.bias, "bias") if args.bias else None
    if x.ndim != 4:
        raise AccelgenError(f"input tensor must be 4-D NCHW, not shape {x.shape}")
    if w.ndim != 4:
        raise AccelgenError(f"weights tensor must be 4-D KCRS, not shape {w.shape}")
    groups = 1 if args.groups is None else args.groups
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    if Cg * groups != C:
        hint = f"--groups {C // Cg}" if Cg and C % Cg == 0 else \
            "--groups G with C/G channels per filter"
        raise AccelgenError(
            f"weights have {Cg} channels per filter but input has C={C} with groups={groups}; "
            f"weights must be K x C/groups x R x S (pass {hint})")
    if args.batch is not None and args.batch != N:
        raise AccelgenError(f"--batch {args.batch} disagrees with the input tensor's N={N}")
    layer = ConvLayer(N=N, C=C, H=H, W=W, K=K, R=R, S=S,
                      stride=1 if args.stride is None else args.stride,
                      pad=0 if args.padding is None else args.padding,
                      dilation=1 if args.dilation is None else args.dilation, groups=groups,
                      name=Path(args.input).stem)
    return layer, x, w, b


def quant_from_args(args):
    """A :class:`gen.quant.Requant` from --requant SCALE or --quant-scale FILE, with
    --zero-point and --out-range; None without a scale."""
    from gen.quant import Requant
    if args.requant is not None and args.quant_scale:
        raise AccelgenError("give --requant SCALE or --quant-scale FILE, not both")
    if args.requant is not None:
        try:
            scale = float(args.requant)
        except ValueError:
            raise AccelgenError(f"--requant must be an fp32 scale (a number, e.g. 0.0125), not "
                                f"{args.requant!r}") from None
    elif args.quant_scale:
        scale = load_npy(args.quant_scale, "quant-scale")
    else:
        if args.zero_point is not None or args.out_range is not None:
            raise AccelgenError("--zero-point and --out-range go with a requantisation scale: "
                                "add --requant SCALE or --quant-scale FILE")
        return None
    qmin = qmax = None
    if args.out_range is not None:
        try:
            qmin, qmax = (int(v) for v in args.out_range.split(","))
        except ValueError:
            raise AccelgenError(f"--out-range must be QMIN,QMAX (two integers, e.g. 0,255), not "
                                f"{args.out_range!r}") from None
    zp = 0 if args.zero_point is None else args.zero_point
    return Requant(scale, zp, qmin, qmax)


def _output_dtype(spec, quant):
    import numpy as np
    if quant is not None:
        if quant.signed:
            return np.int8 if spec.out_bits <= 8 else np.int16
        return np.uint8 if spec.out_bits <= 8 else np.uint16
    return np.int64 if spec.acc_bits > 32 else np.int32


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _prepare_tensors_dir(args):
    """``--save-tensors DIR``, created (and checked writable) before any work."""
    if not getattr(args, "save_tensors", None):
        return None
    d = Path(args.save_tensors)
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / ".accelgen-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise AccelgenError(f"cannot write tensors to {d}: {e.strerror}; give a writable "
                            f"--save-tensors directory") from None
    return d


def _save_tensors(d: Path, x, w, b, y) -> list[str]:
    """The layer's tensors as .npy files in ``d`` (input, weights, bias, golden output)."""
    import numpy as np
    saved = []
    for name, t in (("input", x), ("weights", w), ("bias", b), ("expected", y)):
        if t is None:
            continue
        try:
            with open(d / f"{name}.npy", "wb") as f:
                np.save(f, np.asarray(t))
        except OSError as e:
            raise AccelgenError(f"cannot write {d / name}.npy: {e.strerror}") from None
        saved.append(f"{name}.npy")
    return saved


def cmd_simulate(args) -> int:
    import numpy as np

    from sim.flow import rate_key, simulate_layer

    from ..progress import last_time
    from ..spec import load_spec

    spec = load_spec(args.spec)
    output = prepare_output(args.output, "--output", (".npy",)) if args.output else None
    tensors_dir = _prepare_tensors_dir(args)
    layer, x, w, b = layer_from_args(args, spec)
    quant = quant_from_args(args)

    def announce(program, model):
        """The header, before the slow part: what runs, and what the model expects of it."""
        if args.json:
            return
        print(f"accelgen simulate: {spec.name} ({spec.label}) on {args.sim}, {args.driver} "
              f"driver")
        print(f"  layer        {layer.describe()}")
        print(f"  program      {len(program.commands)} commands, output tiles "
              f"{program.tile_p}x{program.tile_q}")
        rate = last_time(rate_key(args.sim, args.driver))
        guess = (f"; about {_duration(model.cycles / rate)} of simulation at the last run's "
                 f"{rate:,.0f} cycles/s" if rate else "")
        print(f"  expected     {model.cycles:,} cycles by the model{guess}", flush=True)
        if rate and model.cycles / rate > 120:
            print("  note         a long run: Verilator (--sim verilator) simulates big layers "
                  "much faster than Icarus once built" if args.sim == "icarus" else
                  "  note         a long run", flush=True)

    res = simulate_layer(spec, layer, x, w, b, sim=args.sim, driver=args.driver,
                         work_dir=args.work_dir,
                         in_pause=args.backpressure, out_pause=args.backpressure,
                         seed=args.seed, waves=args.waves, quant=quant, relu=args.relu,
                         announce=announce)
    if tensors_dir is not None:
        saved = _save_tensors(tensors_dir, x, w, b, res.expected.astype(
            _output_dtype(spec, quant)))
    if output is not None:
        try:
            with open(output, "wb") as f:    # exactly this path (np.save(str) may add .npy)
                np.save(f, res.output.astype(_output_dtype(spec, quant)))
        except OSError as e:
            raise AccelgenError(f"cannot write {output}: {e.strerror}") from None
    s = res.summary()
    if args.json:
        print(json.dumps(s, indent=2))
        return 0 if res.match else 1
    c = res.counters
    pes = spec.rows * spec.cols
    print(f"  cycles       {res.cycles:,} (ideal {s['ideal_cycles']:,} = MACs/{pes} PEs)")
    print(f"  MACs         {res.macs:,}")
    print(f"  utilisation  {100 * res.utilisation:.1f}% of {pes} PEs")
    print(f"  counters     array busy {c['array_busy']:,}, input stalls {c['in_stall']:,}, "
          f"output stalls {c['out_stall']:,}")
    print(f"  buffers      words read/written: input {c['ibuf_reads']:,}/{c['ibuf_writes']:,}"
          f", weight {c['wbuf_reads']:,}/{c['wbuf_writes']:,}, output "
          f"{c['obuf_reads']:,}/{c['obuf_writes']:,}")
    mv = s["model"]
    differ = [k for k, v in mv.items() if not v["equal"]]
    print(f"  model        cycles {mv['cycles']['model']:,}; "
          + ("every counter equals the RTL's" if not differ else
             f"differs from the RTL in {', '.join(differ)}"
             + (" (stalls: the model assumes none)" if c["in_stall"] or c["out_stall"]
                else "")))
    if res.match:
        print(f"  result       PASS: {res.output.size:,} outputs match the golden model "
              f"bit-exactly")
    else:
        mm = s["first_mismatch"]
        print(f"  result       FAIL: {mm['mismatches']:,} of {res.output.size:,} outputs differ;"
              f" first at [n,k,p,q]={mm['index']}: rtl={mm['rtl']} golden={mm['golden']}")
    print(f"  verilog      {res.verilog}")
    if args.waves:
        dumps = sorted(p for ext in ("fst", "vcd") for p in res.job_dir.rglob(f"*.{ext}"))
        if dumps:
            print(f"  waves        {dumps[0]} (view with: gtkwave {dumps[0]}, or surfer)")
        else:
            print(f"  waves        none written; see {res.job_dir}")
    if output is not None:
        print(f"  output       {output}")
    if tensors_dir is not None:
        rerun = (f"--input {tensors_dir / 'input.npy'} --weights {tensors_dir / 'weights.npy'}"
                 + (f" --bias {tensors_dir / 'bias.npy'}" if "bias.npy" in saved else "")
                 + f" --stride {layer.stride} --padding {layer.pad} --dilation {layer.dilation}"
                 f" --groups {layer.groups}")
        print(f"  tensors      {tensors_dir}: {', '.join(saved)}")
        print(f"  rerun        accelgen simulate {args.spec} {rerun}")
    print(f"  wall time    {res.wall_seconds:.1f} s")
    return 0 if res.match else 1


def add_parser(sub) -> None:
    """The ``simulate`` command's parser."""
    s = sub.add_parser("simulate", help="run a conv layer on the generated RTL and check it "
                                        "against the golden model")
    s.add_argument("spec", help=SPEC_HELP)
    layer_options(s)
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
