"""The hardware commands: ``generate``, ``show``, ``layers``, ``synth``, ``sweep`` and ``fpga``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import AccelgenError
from .args import (POSITIVE, SPEC_HELP, Parser, abs_path, layer_options, positive_float,
                   prepare_output)

__all__ = ["cmd_generate", "cmd_show", "cmd_layers", "cmd_synth", "cmd_sweep", "cmd_fpga"]


def cmd_generate(args) -> int:
    from ..emit import generate
    from ..spec import load_spec

    spec = load_spec(args.spec)
    prepare_output(Path(args.output) / f"{spec.name}.v", "the Verilog")   # before elaborating
    t0 = time.monotonic()
    vpath, mpath, man = generate(spec, args.output)
    dt = time.monotonic() - t0
    if args.json:
        print(json.dumps({"verilog": str(vpath), "manifest": str(mpath),
                          "verilog_bytes": vpath.stat().st_size, "seconds": round(dt, 3),
                          "sha256": man["verilog_sha256"]}))
    else:
        print(f"accelgen: generated {spec.name} ({spec.label}, "
              f"{spec.act_type} x {spec.weight_type} -> int{spec.acc_bits}) in {dt:.1f} s")
        print(f"  verilog   {vpath} ({vpath.stat().st_size:,} bytes)")
        print(f"  manifest  {mpath}")
    return 0


def cmd_synth(args) -> int:
    from fpga.synth import synthesize

    from ..progress import last_time, record_time, say
    from ..spec import load_spec
    spec = load_spec(args.spec)
    what = {"elaborate": "elaborating the design", "yosys": "yosys synthesis",
            "nextpnr": "nextpnr place and route"}

    def progress(step, seconds):
        key = f"synth/{spec.digest()}/{args.target}/{step}"
        if seconds is None:
            last = last_time(key)
            say(f"{what[step]} ..." + (f" (last time {last:.0f} s)" if last is not None else ""))
        else:
            record_time(key, seconds)
            say(f"{step} done in {seconds:.1f} s")

    say(f"synth {spec.name} ({spec.label}) for {args.target}"
        + ("" if args.no_pnr else f" at {args.freq:g} MHz, seed {args.seed}")
        + (" (first use of a YoWASP tool compiles it: 30-80 s more)" if not _yowasp_warm() else ""))
    res = synthesize(spec, args.target, freq=args.freq, seed=args.seed, work_dir=args.work_dir,
                     timeout=args.timeout, pnr=not args.no_pnr, progress=progress,
                     router=args.router)
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
        folded = res.ffs_synth - res.ffs if res.ffs_synth is not None else 0
        print(f"  FFs          {res.ffs:,} ({res.ffs / pes:.1f}/PE)"
              + (f"; Yosys's netlist (stat.json) has {res.ffs_synth:,}: {folded:,} were folded "
                 f"into block RAM/DSP registers" if folded > 0 else ""))
        print(f"  DSPs         {res.dsps}")
        print(f"  BRAMs        {res.brams}")
        if res.pnr:
            print(f"  Fmax         {res.fmax_mhz:.1f} MHz (asked {args.freq:g} MHz)")
            print(f"  critical     {res.crit_from} -> {res.crit_to}")
        else:
            print("  Fmax         not measured (--no-pnr: Yosys cell counts only; FFs before "
                  "register folding)")
        print("  wall time    " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items())
              + (" (Yosys's netlist reused from the last run in the work directory)"
                 if res.reused_netlist else ""))
        print(f"  logs         {res.work_dir} (yosys.log"
              + (", nextpnr.log, report.json)" if res.pnr else ", stat.json)"))
    return 0 if res.status == "ok" else 1


def _yowasp_warm() -> bool:
    """Whether the YoWASP tools have been compiled once already (their first call takes
    30-80 s more)."""
    import os
    root = Path(os.environ.get("YOWASP_CACHE_DIR") or Path.home() / ".cache" / "YoWASP")
    return root.exists() and any(root.iterdir())


def cmd_sweep(args) -> int:
    from fpga import sweep as sw
    if args.sweep == "report":
        return _sweep_report(args)
    if args.what:
        raise AccelgenError(f"unexpected argument {args.what[0]!r}; use 'accelgen sweep SWEEP.toml'"
                            f" or 'accelgen sweep report DB --plot FILE.png'")
    csv = prepare_output(args.csv, "--csv", (".csv",)) if args.csv else None
    sweep = sw.load_sweep(args.sweep)
    db = args.db or Path(args.sweep).with_suffix(".db")
    t0 = time.monotonic()
    counts = sw.run_sweep(sweep, db, jobs=args.jobs, scheduler=args.scheduler,
                          retry_failed=args.retry_failed, progress=not args.quiet)
    print(f"accelgen sweep: {counts['total']} configs: {counts['ok']} ok, {counts['failed']} "
          f"failed, {counts['skipped']} already in {db} ({time.monotonic() - t0:.0f} s)")
    if csv is not None:
        with sw.open_db(db) as conn:
            n = sw.export_csv(conn, csv)
        print(f"  csv          {csv} ({n} rows)")
    return 0


def _sweep_report(args) -> int:
    from fpga import report
    from fpga import sweep as sw
    if len(args.what) != 1:
        raise AccelgenError("usage: accelgen sweep report DB [--plot FILE.png] [--csv FILE]")
    db = Path(args.what[0])
    if not db.exists():
        raise AccelgenError(f"{db}: no such sweep database; run 'accelgen sweep SWEEP.toml' first")
    csv = prepare_output(args.csv, "--csv", (".csv",)) if args.csv else None
    plot = prepare_output(args.plot, "--plot", (".png", ".svg")) if args.plot else None
    with sw.open_db(db) as conn:
        data = sw.rows(conn)
        if csv is not None:
            sw.export_csv(conn, csv)
            print(f"accelgen sweep report: {len(data)} rows -> {csv}")
    print(report.table(data))
    if plot is not None:
        report.pareto_plot(data, plot)
        print(f"  plot         {plot}")
    return 0


def cmd_fpga(args) -> int:
    from fpga.boards import build_board

    from ..spec import load_spec
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
    from sim import golden

    from .simulate import layer_from_args
    output = prepare_output(args.output, "--output", (".npy",)) if args.output else None
    layer, x, w, b = layer_from_args(args, spec)
    y, counters = run_layer_on_board(spec, layer, x, w, b, port=args.port, baud=args.baud)
    g = golden.layer_output(spec, layer, x, w, b)
    ok = bool((y == g).all())
    print(f"accelgen fpga run: {layer.describe()} on {args.port}: cycles {counters['cycles']:,}, "
          f"{'PASS' if ok else 'FAIL'}")
    if output is not None:
        import numpy as np
        with open(output, "wb") as f:
            np.save(f, y)
    return 0 if ok else 1


def cmd_show(args) -> int:
    from ..show import draw
    from ..spec import load_spec
    spec = load_spec(args.spec)
    if args.layer:
        return _show_layer(spec, args)
    out = prepare_output(args.output or f"{spec.name}.png", "picture", (".png", ".svg"))
    path = draw(spec, out)
    print(f"accelgen show: {spec.name} -> {path}")
    return 0


def _show_layer(spec, args) -> int:
    import re

    from ..layer import parse_layer
    from ..layermap import draw_layer, layer_map
    layer = parse_layer(args.layer)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.layer if "=" not in args.layer else layer.name)
    out = prepare_output(args.output or f"{spec.name}-{stem}.png", "picture", (".png", ".svg"))
    lm = layer_map(spec, layer)
    print("accelgen show: " + "\n".join(lm.lines()))
    print(f"  picture       {draw_layer(lm, out)}")
    return 0


def cmd_layers(args) -> int:
    from ..layer import workload_layers
    for name, layer in workload_layers().items():
        print(f"{name:24s} {layer.describe().split(' ', 1)[1]}  MACs {layer.macs:,}")
    return 0


def add_generate(sub) -> None:
    """The ``generate`` command's parser."""
    g = sub.add_parser("generate", help="emit Verilog and manifest.json for a spec")
    g.add_argument("spec", help=SPEC_HELP)
    g.add_argument("-o", "--output", required=True, help="output directory (created)")
    g.add_argument("--json", action="store_true", help="print a machine-readable summary")
    g.set_defaults(func=cmd_generate)


def add_parser(sub) -> None:
    """The parsers of ``show``, ``layers``, ``synth``, ``sweep`` and ``fpga``."""
    sh = sub.add_parser("show", help="draw the PE array and its interconnect (PNG or SVG)")
    sh.add_argument("spec", help=SPEC_HELP)
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
    y.add_argument("spec", help=SPEC_HELP)
    y.add_argument("--target", default="ecp5-85k", choices=["ecp5-85k", "ecp5-25k", "ice40-up5k"],
                   help="FPGA device")
    y.add_argument("--freq", type=positive_float, default=100.0,
                   help="clock asked of nextpnr, MHz")
    y.add_argument("--seed", type=POSITIVE, default=1, help="placement seed")
    y.add_argument("--router", choices=["router1", "router2"], default="router1",
                   help="nextpnr's router (default router1; router2 can route a congested "
                        "design much faster)")
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
    w.add_argument("--jobs", type=POSITIVE, help="local worker processes (default: all "
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
    fs = f.add_subparsers(dest="action", required=True, parser_class=Parser)
    fb = fs.add_parser("build", help="build a board bitstream: the accelerator behind a UART "
                                     "host bridge")
    fb.add_argument("spec", help=SPEC_HELP)
    fb.add_argument("--board", default="ulx3s", choices=["ulx3s", "icebreaker"], help="board")
    fb.add_argument("--baud", type=POSITIVE, default=115200, help="UART baud rate")
    fb.add_argument("--seed", type=POSITIVE, default=1, help="placement seed")
    fb.add_argument("-o", "--output", help="build directory (default build/fpga/SPEC-BOARD)")
    fb.add_argument("--plan-only", action="store_true",
                    help="elaborate and write the build plan without running any tool")
    fb.add_argument("--json", action="store_true", help="print a machine-readable summary")
    fr = fs.add_parser("run", help="run a conv layer on a board over its serial port and check "
                                   "it against the golden model")
    fr.add_argument("spec", help=SPEC_HELP)
    fr.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0")
    fr.add_argument("--board", default="ulx3s", choices=["ulx3s", "icebreaker"], help="board")
    fr.add_argument("--baud", type=POSITIVE, default=115200, help="UART baud rate")
    layer_options(fr)
    fr.add_argument("-o", "--output", help="write the output tensor (NKPQ) to this .npy file")
    f.set_defaults(func=cmd_fpga)
