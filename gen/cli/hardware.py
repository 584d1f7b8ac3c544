"""The hardware commands: ``generate``, ``show``, ``layers``, ``synth``, ``sweep`` and ``fpga``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import AccelgenError
from .args import prepare_output

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
                     timeout=args.timeout, pnr=not args.no_pnr, progress=progress)
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
