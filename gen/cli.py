"""``accelgen``: generate accelerators and run layers on them.

    accelgen generate SPEC.toml -o DIR
    accelgen simulate SPEC.toml (--layer "C=..,H=..,..." | --input X.npy --weights W.npy) [options]
    accelgen layers

User errors print one line (``accelgen: error: ...``) and exit 2; a simulation whose output differs
from the golden model exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .errors import AccelgenError

__all__ = ["main"]


def _load_npy(path: str, what: str):
    import numpy as np
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise AccelgenError(f"{what} file {path} not found") from None
    except (ValueError, OSError) as e:
        raise AccelgenError(f"{what} file {path} is not a readable .npy array ({e})") from None


def _cmd_generate(args) -> int:
    from .emit import generate
    from .spec import load_spec

    spec = load_spec(args.spec)
    t0 = time.monotonic()
    vpath, mpath, man = generate(spec, args.output)
    dt = time.monotonic() - t0
    if args.json:
        print(json.dumps({"verilog": str(vpath), "manifest": str(mpath),
                          "verilog_bytes": vpath.stat().st_size, "seconds": round(dt, 3),
                          "sha256": man["verilog_sha256"]}))
    else:
        print(f"accelgen: generated {spec.name} ({spec.label}, "
              f"int{spec.act_bits} x int{spec.weight_bits} -> int{spec.acc_bits}) in {dt:.1f} s")
        print(f"  verilog   {vpath} ({vpath.stat().st_size:,} bytes)")
        print(f"  manifest  {mpath}")
    return 0


def _layer_from_args(args, spec):
    from .layer import ConvLayer, parse_layer
    from sim.flow import random_tensors

    overrides = {"stride": args.stride, "pad": args.padding, "dilation": args.dilation,
                 "groups": args.groups, "N": args.batch}
    if args.layer:
        if args.input or args.weights:
            raise AccelgenError("give either --layer (random tensors) or --input/--weights, "
                                "not both")
        layer = parse_layer(args.layer, **overrides)
        x, w, b = random_tensors(spec, layer, args.seed, bias=args.random_bias)
        if args.bias:
            b = _load_npy(args.bias, "bias")
        return layer, x, w, b
    if not (args.input and args.weights):
        raise AccelgenError("simulate needs --layer \"C=..,H=..,W=..,K=..,R=..,S=..\" or both "
                            "--input X.npy and --weights W.npy")
    x = _load_npy(args.input, "input")
    w = _load_npy(args.weights, "weights")
    b = _load_npy(args.bias, "bias") if args.bias else None
    if x.ndim != 4:
        raise AccelgenError(f"input tensor must be 4-D NCHW, not shape {x.shape}")
    if w.ndim != 4:
        raise AccelgenError(f"weights tensor must be 4-D KCRS, not shape {w.shape}")
    groups = args.groups or 1
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    if Cg * groups != C:
        hint = f"--groups {C // Cg}" if C % Cg == 0 else "--groups G with C/G channels per filter"
        raise AccelgenError(
            f"weights have {Cg} channels per filter but input has C={C} with groups={groups}; "
            f"weights must be K x C/groups x R x S (pass {hint})")
    if args.batch is not None and args.batch != N:
        raise AccelgenError(f"--batch {args.batch} disagrees with the input tensor's N={N}")
    layer = ConvLayer(N=N, C=C, H=H, W=W, K=K, R=R, S=S, stride=args.stride or 1,
                      pad=args.padding or 0, dilation=args.dilation or 1, groups=groups,
                      name=Path(args.input).stem)
    return layer, x, w, b


def _quant_from_args(args):
    """(multiplier, shift) from --requant M,S or --quant-mult/--quant-shift .npy files."""
    if args.requant and (args.quant_mult or args.quant_shift):
        raise AccelgenError("give --requant MULT,SHIFT or --quant-mult/--quant-shift files, "
                            "not both")
    if args.requant:
        try:
            mult, shift = (int(v) for v in args.requant.split(","))
        except ValueError:
            raise AccelgenError(f"--requant must be MULT,SHIFT (two integers), not "
                                f"{args.requant!r}") from None
        return mult, shift
    if args.quant_mult or args.quant_shift:
        if not (args.quant_mult and args.quant_shift):
            raise AccelgenError("per-channel requantisation needs both --quant-mult and "
                                "--quant-shift")
        return _load_npy(args.quant_mult, "quant-mult"), _load_npy(args.quant_shift, "quant-shift")
    return None


def _cmd_simulate(args) -> int:
    import numpy as np

    from .spec import load_spec
    from sim.flow import simulate_layer

    spec = load_spec(args.spec)
    if not 0 <= args.backpressure < 1:
        raise AccelgenError(f"--backpressure must be a probability in [0, 1), "
                            f"not {args.backpressure}")
    layer, x, w, b = _layer_from_args(args, spec)
    quant = _quant_from_args(args)
    res = simulate_layer(spec, layer, x, w, b, sim=args.sim, work_dir=args.work_dir,
                         in_pause=args.backpressure, out_pause=args.backpressure,
                         seed=args.seed, waves=args.waves, quant=quant, relu=args.relu)
    if args.output:
        dtype = np.int8 if quant is not None and spec.out_bits <= 8 else \
            np.int16 if quant is not None else np.int64 if spec.acc_bits > 32 else np.int32
        try:
            np.save(args.output, res.output.astype(dtype))
        except OSError as e:
            raise AccelgenError(f"cannot write {args.output}: {e.strerror}") from None
    s = res.summary()
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        c = res.counters
        print(f"accelgen simulate: {spec.name} ({spec.label}) "
              f"on {args.sim}")
        print(f"  layer        {layer.describe()}")
        print(f"  program      {s['program']['commands']} commands, output tiles "
              f"{s['program']['tile_p']}x{s['program']['tile_q']}")
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
            print(f"  waves        {res.job_dir}")
        if args.output:
            print(f"  output       {args.output}")
        print(f"  wall time    {res.wall_seconds:.1f} s")
    return 0 if res.match else 1


def _cmd_synth(args) -> int:
    from fpga.synth import synthesize

    from .spec import load_spec
    spec = load_spec(args.spec)
    res = synthesize(spec, args.target, freq=args.freq, seed=args.seed, work_dir=args.work_dir,
                     timeout=args.timeout)
    if args.json:
        print(json.dumps(res.as_dict(), indent=2))
    elif res.status != "ok":
        print(f"accelgen synth: {spec.name} on {args.target}: {res.status}: {res.message}")
        print(f"  logs         {res.work_dir}")
    else:
        pes = spec.rows * spec.cols
        t = res.seconds
        print(f"accelgen synth: {spec.name} ({spec.label}) on "
              f"{args.target}, seed {args.seed}")
        print(f"  LUTs         {res.luts:,} ({res.luts / pes:.1f}/PE, incl. the IO wrapper)")
        print(f"  FFs          {res.ffs:,} ({res.ffs / pes:.1f}/PE)")
        print(f"  DSPs         {res.dsps}")
        print(f"  BRAMs        {res.brams}")
        print(f"  Fmax         {res.fmax_mhz:.1f} MHz (asked {args.freq:g} MHz)")
        print(f"  critical     {res.crit_from} -> {res.crit_to}")
        print(f"  wall time    elaborate {t['elaborate']:.1f} s, yosys {t['yosys']:.1f} s, "
              f"nextpnr {t['nextpnr']:.1f} s")
        print(f"  logs         {res.work_dir}")
    return 0 if res.status == "ok" else 1


def _cmd_sweep(args) -> int:
    from fpga import sweep as sw
    if args.sweep == "report":
        return _sweep_report(args)
    if args.what:
        raise AccelgenError(f"unexpected argument {args.what[0]!r}; use 'accelgen sweep SWEEP.toml'"
                            f" or 'accelgen sweep report DB --plot FILE.png'")
    if args.jobs is not None and args.jobs < 1:
        raise AccelgenError(f"--jobs must be at least 1, not {args.jobs}")
    sweep = sw.load_sweep(args.sweep)
    db = args.db or Path(args.sweep).with_suffix(".db")
    t0 = time.monotonic()
    counts = sw.run_sweep(sweep, db, jobs=args.jobs, scheduler=args.scheduler,
                          retry_failed=args.retry_failed, progress=not args.quiet)
    print(f"accelgen sweep: {counts['total']} configs: {counts['ok']} ok, {counts['failed']} "
          f"failed, {counts['skipped']} already in {db} ({time.monotonic() - t0:.0f} s)")
    if args.csv:
        with sw.open_db(db) as conn:
            n = sw.export_csv(conn, args.csv)
        print(f"  csv          {args.csv} ({n} rows)")
    return 0


def _sweep_report(args) -> int:
    from fpga import report
    from fpga import sweep as sw
    if len(args.what) != 1:
        raise AccelgenError("usage: accelgen sweep report DB [--plot FILE.png] [--csv FILE]")
    db = Path(args.what[0])
    if not db.exists():
        raise AccelgenError(f"{db}: no such sweep database; run 'accelgen sweep SWEEP.toml' first")
    with sw.open_db(db) as conn:
        data = sw.rows(conn)
        if args.csv:
            sw.export_csv(conn, args.csv)
            print(f"accelgen sweep report: {len(data)} rows -> {args.csv}")
    print(report.table(data))
    if args.plot:
        report.pareto_plot(data, args.plot)
        print(f"  plot         {args.plot}")
    return 0


def _cmd_fpga(args) -> int:
    from fpga.boards import build_board

    from .spec import load_spec
    spec = load_spec(args.spec)
    if args.action == "build":
        res = build_board(spec, args.board, out_dir=args.output, baud=args.baud,
                          do_build=not args.plan_only, seed=args.seed)
        if args.json:
            print(json.dumps(res, indent=2))
        elif args.plan_only:
            print(f"accelgen fpga: {spec.name} on {args.board}: elaborated, "
                  f"{len(res['planned'])} build files planned (no tools run)")
        else:
            util = res.get("utilisation", {})
            print(f"accelgen fpga: {spec.name} on {args.board} ({args.baud} baud UART)")
            print(f"  bitstream    {res['bitstream']}")
            if res.get("fmax_mhz"):
                print(f"  Fmax         {res['fmax_mhz']:.1f} MHz")
            print("  resources    " + ", ".join(f"{k} {v}" for k, v in sorted(util.items())))
            print(f"  wall time    {res['seconds']:.0f} s")
        return 0
    # run: the host driver over pyserial
    from fpga.host import run_layer_on_board
    if not args.port:
        raise AccelgenError("fpga run needs --port, the board's serial port (e.g. /dev/ttyUSB0)")
    from sim import golden
    layer, x, w, b = _layer_from_args(args, spec)
    y, counters = run_layer_on_board(spec, layer, x, w, b, port=args.port, baud=args.baud)
    g = golden.layer_output(spec, layer, x, w, b)
    ok = bool((y == g).all())
    print(f"accelgen fpga run: {layer.describe()} on {args.port}: cycles {counters['cycles']:,}, "
          f"{'PASS' if ok else 'FAIL'}")
    if args.output:
        import numpy as np
        np.save(args.output, y)
    return 0 if ok else 1


def _cmd_estimate(args) -> int:
    import csv as csvmod

    from .layer import ConvLayer, parse_layer, workload_table
    from .model import ENERGY_LEVELS, energy, estimate
    from .spec import load_spec
    from .tiler import plan

    spec = load_spec(args.spec)
    chosen = [x for x in (args.layer, args.network, args.csv) if x]
    if len(chosen) != 1:
        raise AccelgenError("estimate needs exactly one of --layer, --network or --csv")
    if args.layer:
        layers = [(args.layer, parse_layer(args.layer), 1)]
    elif args.network:
        layers = [row for row in workload_table() if row[0].split(":")[0] == args.network]
        if not layers:
            nets = sorted({row[0].split(":")[0] for row in workload_table()})
            raise AccelgenError(f"unknown network {args.network!r}; choose one of "
                                f"{', '.join(nets)}")
    else:
        try:
            with open(args.csv, newline="") as f:
                reader = csvmod.DictReader(f)
                layers = []
                for i, row in enumerate(reader):
                    try:
                        kw = {k: int(row[k]) for k in ("C", "H", "W", "K", "R", "S")}
                        for k in ("N", "stride", "pad", "dilation", "groups"):
                            if row.get(k):
                                kw[k] = int(row[k])
                        name = row.get("layer") or f"row{i + 1}"
                        layers.append((name, ConvLayer(name=name, **kw),
                                       int(row.get("repeat") or 1)))
                    except (KeyError, ValueError, TypeError) as e:
                        raise AccelgenError(f"{args.csv}: row {i + 1}: needs integer columns C, H, "
                                            f"W, K, R, S (optional N, stride, pad, dilation, "
                                            f"groups, repeat) ({e})") from None
        except FileNotFoundError:
            raise AccelgenError(f"{args.csv}: file not found") from None
    rows = []
    for name, layer, repeat in layers:
        prog = plan(spec, layer)
        est = estimate(prog)
        summ = prog.summary()
        rows.append({"layer": name, "repeat": repeat, "macs": est.macs, "cycles": est.cycles,
                     "ideal_cycles": prog.ideal_cycles, "utilisation": est.utilisation,
                     "input_words": summ["input_words"], "weight_words": summ["weight_words"],
                     "output_words": summ["output_words"], "commands": summ["commands"],
                     "buffers": est.buffers, "accesses": est.accesses,
                     "energy": energy(spec, est)})
    macs = sum(r["macs"] * r["repeat"] for r in rows)
    cycles = sum(r["cycles"] * r["repeat"] for r in rows)
    total_energy = sum(r["energy"]["total"] * r["repeat"] for r in rows)
    total = {"macs": macs, "cycles": cycles,
             "utilisation": macs / (cycles * spec.rows * spec.cols) if cycles else 0.0,
             "energy": total_energy, "energy_per_mac": total_energy / macs if macs else 0.0}
    costs = {lv: getattr(spec, f"energy_{lv}") for lv in ENERGY_LEVELS}
    if args.plot:
        path = plot_estimate(spec, rows, args.plot)
    if args.json:
        print(json.dumps({"spec": spec.name, "energy_costs": costs, "layers": rows,
                          "total": total}, indent=2))
        return 0
    print(f"accelgen estimate: {spec.name} ({spec.label}), "
          f"analytic model of the RTL's timing")
    print(f"{'layer':<24} {'x':>2} {'MACs':>14} {'cycles':>12} {'ideal':>12} {'util':>6} "
          f"{'GB words':>10} {'E/MAC':>6}  " + " ".join(f"{lv:>5}" for lv in ENERGY_LEVELS))
    for r in rows:
        gb = sum(r["buffers"].values())
        e = r["energy"]
        print(f"{r['layer']:<24} {r['repeat']:>2} {r['macs']:>14,} {r['cycles']:>12,} "
              f"{r['ideal_cycles']:>12,} {100 * r['utilisation']:>5.1f}% {gb:>10,} "
              f"{e['per_mac']:>6.2f}  "
              + " ".join(f"{e[lv] / r['macs']:>5.2f}" for lv in ENERGY_LEVELS))
    print(f"{'total (with repeats)':<24} {'':>2} {macs:>14,} {cycles:>12,} {'':>12} "
          f"{100 * total['utilisation']:>5.1f}% {'':>10} {total['energy_per_mac']:>6.2f}")
    print("energy in units of one MAC, per useful MAC, by level (costs: "
          + ", ".join(f"{lv} {c:g}" for lv, c in costs.items()) + "; [energy] in the spec)")
    if args.plot:
        print(f"plot: {path}")
    return 0


def plot_estimate(spec, rows, path):
    """Per-layer bars: PE utilisation, and energy per MAC stacked by level (PNG or SVG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .model import ENERGY_LEVELS

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise AccelgenError(f"--plot writes .png or .svg, not {path.suffix or 'no extension'!r}")
    names = [r["layer"] for r in rows]
    xs = range(len(rows))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(6.0, 0.55 * len(rows) + 2), 6.5),
                                   sharex=True)
    ax1.bar(xs, [100 * r["utilisation"] for r in rows], color="#2471a3")
    ax1.set_ylabel("PE utilisation (%)")
    ax1.set_ylim(0, 100)
    ax1.set_title(f"{spec.name} ({spec.label}): per-layer utilisation and energy (model = RTL "
                  f"cycles)", fontsize=9)
    bottom = [0.0] * len(rows)
    colours = {"mac": "#7f8c8d", "rf": "#1e8449", "array": "#d4ac0d", "gb": "#2471a3",
               "dram": "#c0392b"}
    for lv in ENERGY_LEVELS:
        vals = [r["energy"][lv] / r["macs"] for r in rows]
        ax2.bar(xs, vals, bottom=bottom, label=lv, color=colours[lv])
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax2.set_ylabel("energy per MAC (× one MAC)")
    ax2.legend(fontsize=7, ncols=len(ENERGY_LEVELS))
    ax2.set_xticks(list(xs), names, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=150)
    except OSError as e:
        raise AccelgenError(f"cannot write {path}: {e.strerror}") from None
    finally:
        plt.close(fig)
    return path


def _cmd_show(args) -> int:
    from .show import draw
    from .spec import load_spec
    spec = load_spec(args.spec)
    out = args.output or f"{spec.name}.png"
    path = draw(spec, out)
    print(f"accelgen show: {spec.name} -> {path}")
    return 0


def _cmd_layers(args) -> int:
    from .layer import workload_layers
    for name, layer in workload_layers().items():
        print(f"{name:24s} {layer.describe().split(' ', 1)[1]}  MACs {layer.macs:,}")
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other user error
        print(f"accelgen: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="accelgen", description="DNN accelerator generator: spec in, verified "
                                              "Verilog out.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser("generate", help="emit Verilog and manifest.json for a spec")
    g.add_argument("spec", help="spec TOML file (see specs/)")
    g.add_argument("-o", "--output", required=True, help="output directory")
    g.add_argument("--json", action="store_true", help="print a machine-readable summary")
    g.set_defaults(func=_cmd_generate)

    s = sub.add_parser("simulate", help="run a conv layer on the generated RTL and check it "
                                        "against the golden model")
    s.add_argument("spec", help="spec TOML file")
    s.add_argument("--layer", help="layer shape 'C=..,H=..,W=..,K=..,R=..,S=..,stride=..,pad=..' "
                                   "or a workload name like resnet18:conv2_x (random tensors)")
    s.add_argument("--input", help="activations, NCHW .npy (integers in the spec's precision)")
    s.add_argument("--weights", help="weights, KCRS .npy (C/groups channels per filter)")
    s.add_argument("--bias", help="per-output-channel bias, (K,) .npy")
    s.add_argument("--random-bias", action="store_true", help="with --layer: add a random bias")
    s.add_argument("--requant", help="requantise every output channel: MULT,SHIFT (needs "
                                     "[postproc] enabled in the spec)")
    s.add_argument("--quant-mult", help="per-output-channel multipliers, (K,) .npy")
    s.add_argument("--quant-shift", help="per-output-channel right shifts, (K,) .npy")
    s.add_argument("--relu", action="store_true", help="clamp negative outputs to zero")
    s.add_argument("--stride", type=int)
    s.add_argument("--padding", type=int)
    s.add_argument("--dilation", type=int)
    s.add_argument("--groups", type=int)
    s.add_argument("--batch", type=int, help="with --layer: batch size N")
    s.add_argument("--seed", type=int, default=0, help="random tensors and backpressure seed")
    s.add_argument("--sim", default="icarus", choices=["icarus", "verilator"])
    s.add_argument("--backpressure", type=float, default=0.0,
                   help="probability of a stall cycle on each AXI stream (default 0)")
    s.add_argument("--output", help="write the output tensor (NKPQ) to this .npy")
    s.add_argument("--waves", action="store_true", help="record waveforms in the work directory")
    s.add_argument("--work-dir", type=Path, help="keep the simulation job here (default: a "
                                                 "temporary directory)")
    s.add_argument("--json", action="store_true", help="print a machine-readable summary")
    s.set_defaults(func=_cmd_simulate)

    y = sub.add_parser("synth", help="synthesise and place & route a spec (YoWASP Yosys + nextpnr)")
    y.add_argument("spec", help="spec TOML file")
    y.add_argument("--target", default="ecp5-85k",
                   choices=["ecp5-85k", "ecp5-25k", "ice40-up5k"])
    y.add_argument("--freq", type=float, default=100.0, help="clock asked of nextpnr, MHz")
    y.add_argument("--seed", type=int, default=1, help="placement seed")
    y.add_argument("--timeout", type=float, help="seconds allowed per tool step")
    y.add_argument("--work-dir", type=Path, help="where the netlist, reports and logs go "
                                                 "(default build/synth/...)")
    y.add_argument("--json", action="store_true", help="print a machine-readable summary")
    y.set_defaults(func=_cmd_synth)

    w = sub.add_parser("sweep", help="synthesis sweep over spec fields into SQLite "
                                     "('sweep SWEEP.toml', or 'sweep report DB --plot F.png')")
    w.add_argument("sweep", help="sweep TOML file, or the word 'report'")
    w.add_argument("what", nargs="*", help="with 'report': the sweep database")
    w.add_argument("--db", type=Path, help="results database (default: SWEEP.db beside the file)")
    w.add_argument("--jobs", type=int, help="local worker processes (default: all cores)")
    w.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786) instead of the "
                                       "local pool")
    w.add_argument("--retry-failed", action="store_true", help="rerun configs recorded as failed")
    w.add_argument("--csv", help="export the results to this CSV file")
    w.add_argument("--plot", help="with 'report': Pareto plot PNG")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=_cmd_sweep)

    f = sub.add_parser("fpga", help="board bitstreams (amaranth-boards + YoWASP) and the host "
                                     "driver")
    f.add_argument("action", choices=["build", "run"], help="build a bitstream, or run a layer "
                                                            "on a board over its serial port")
    f.add_argument("spec", help="spec TOML file")
    f.add_argument("--board", default="ulx3s", choices=["ulx3s", "icebreaker"])
    f.add_argument("--baud", type=int, default=115200)
    f.add_argument("--seed", type=int, default=1, help="placement seed (build), random tensors "
                                                       "(run)")
    f.add_argument("-o", "--output", help="build directory (build), or output .npy (run)")
    f.add_argument("--plan-only", action="store_true",
                   help="elaborate and write the build plan without running any tool")
    f.add_argument("--port", help="serial port of the board (run), e.g. /dev/ttyUSB0")
    f.add_argument("--json", action="store_true")
    for name in ("layer", "input", "weights", "bias"):
        f.add_argument(f"--{name}")
    f.add_argument("--random-bias", action="store_true")
    for name in ("stride", "padding", "dilation", "groups", "batch"):
        f.add_argument(f"--{name}", type=int)
    f.set_defaults(func=_cmd_fpga)

    e = sub.add_parser("estimate", help="cycles and utilisation from the analytic model (exact "
                                        "against the RTL's counters)")
    e.add_argument("spec", help="spec TOML file")
    e.add_argument("--layer", help="one layer, as for simulate")
    e.add_argument("--network", help="a shipped network: lenet5, alexnet, vgg16, resnet18, "
                                     "mobilenetv2")
    e.add_argument("--csv", help="a CSV of layers with columns C,H,W,K,R,S[,N,stride,pad,"
                                 "dilation,groups,repeat,layer]")
    e.add_argument("--json", action="store_true")
    e.add_argument("--plot", help="per-layer utilisation and energy bars (.png or .svg)")
    e.set_defaults(func=_cmd_estimate)

    sh = sub.add_parser("show", help="draw the PE array and its interconnect (PNG or SVG)")
    sh.add_argument("spec", help="spec TOML file")
    sh.add_argument("-o", "--output", help="picture file, .png or .svg (default NAME.png)")
    sh.set_defaults(func=_cmd_show)

    ls = sub.add_parser("layers", help="list the shipped workload layers")
    ls.set_defaults(func=_cmd_layers)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AccelgenError as e:
        print(f"accelgen: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("accelgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
