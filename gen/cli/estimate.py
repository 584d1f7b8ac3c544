"""``accelgen estimate``: per-layer cycles, utilisation, traffic and energy from the analytic
model of the RTL's timing (the same tile Program the RTL runs), for one spec or several side by
side (``--dataflows ws,os,is,nlr,rs --array 8x8``: the presets with the same buffers and
precisions)."""

from __future__ import annotations

import csv
import json
import sys

from ..errors import AccelgenError
from .args import POSITIVE, SPEC_HELP, prepare_output

__all__ = ["cmd_estimate", "estimate_rows", "network_rows", "specs_from_args"]


def _layers(args):
    """``(layers, graph)``: the (name, layer, repeat) list, or for ``--onnx`` the imported graph
    (its layers depend on the spec: gen/network/placement.py)."""
    from ..layer import load_layers_csv, network_layers, parse_layer

    chosen = [x for x in (args.layer, args.network, args.csv, args.onnx) if x]
    if len(chosen) != 1:
        raise AccelgenError("estimate needs exactly one of --layer, --network, --csv or --onnx")
    if args.batch is not None and not args.onnx:
        raise AccelgenError("--batch sets an ONNX model's batch; it goes with --onnx")
    if args.layer:
        return [(args.layer, parse_layer(args.layer), 1)], None
    if args.network:
        return network_layers(args.network), None
    if args.csv:
        return load_layers_csv(args.csv), None
    from ..network import load
    return None, load(args.onnx, batch=args.batch)


def _array(text: str) -> tuple[int, int]:
    rows, sep, cols = text.lower().partition("x")
    try:
        shape = int(rows), int(cols)
    except ValueError:
        shape = None
    if not sep or shape is None or min(shape) < 1:
        raise AccelgenError(f"--array must be ROWSxCOLS, e.g. 8x8 or 16x12, not {text!r}")
    return shape


def specs_from_args(args) -> list:
    """The specs to estimate: the SPEC arguments, or with ``--dataflows`` one spec per dataflow
    preset made from the first SPEC (or the defaults) with its buffers, precisions and pipeline;
    ``--array`` sets every spec's array shape."""
    from ..mapping import PRESETS
    from ..spec import load_spec, spec_from_dict

    specs = [load_spec(s) for s in args.spec]
    if args.dataflows:
        names = [d.strip().lower() for d in args.dataflows.split(",") if d.strip()]
        bad = [d for d in names if d not in PRESETS]
        if bad or not names:
            raise AccelgenError(f"--dataflows takes presets from {', '.join(PRESETS)}, "
                                f"comma-separated, not {args.dataflows!r}")
        if len(set(names)) != len(names):
            raise AccelgenError(f"--dataflows names a dataflow twice: {args.dataflows!r}")
        if len(specs) > 1:
            raise AccelgenError("--dataflows makes one spec per dataflow from at most one SPEC "
                                "(its buffers and precisions); give one SPEC or none")
        base = specs[0].to_dict() if specs else {"name": "x", "array": {"rows": 8, "cols": 8}}
        base.pop("mapping", None)
        base.pop("spads", None)
        if args.array:
            base["array"] = dict(zip(("rows", "cols"), _array(args.array), strict=True))
        r, c = base["array"]["rows"], base["array"]["cols"]
        specs = [spec_from_dict({**base, "name": f"{d}_{r}x{c}", "dataflow": d},
                                source=f"--dataflows {d}") for d in names]
    elif args.array:
        rows, cols = _array(args.array)
        specs = [spec_from_dict({**s.to_dict(), "name": f"{s.name}_{rows}x{cols}",
                                 "array": {"rows": rows, "cols": cols}}, source=s.name)
                 for s in specs]
    if not specs:
        raise AccelgenError("estimate needs a SPEC (a file or a shipped name such as ws_8x8), "
                            "or --dataflows ws,os,... [--array 8x8]")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise AccelgenError(f"two specs are named alike ({', '.join(names)}); give each its own "
                            f"name")
    return specs


def estimate_rows(spec, layers, on_row=None) -> list[dict]:
    """One dict per layer: the model's figures of ``spec`` running it. ``on_row(row)`` is called
    as each is done (progress). A layer the spec cannot run raises, with the layer's name."""
    from ..model import estimate
    from ..progress import Heartbeat, reporting
    from ..tiler import plan

    rows = []
    for name, layer, repeat in layers:
        # a big layer on a small array has many tilings of many commands: say where it is
        with reporting(Heartbeat(f"planning {name} on {spec.name}")):
            try:
                prog = plan(spec, layer)
            except AccelgenError as e:
                raise AccelgenError(f"{name} on {spec.name}: {e}") from None
            est = estimate(prog)
        rows.append(_row(spec, name, repeat, prog, est))
        if on_row:
            on_row(rows[-1])
    return rows


def network_rows(spec, graph, on_row=None) -> tuple[list[dict], dict]:
    """For an imported ONNX network: one row per conv/FC layer as :func:`estimate_rows` gives
    them (the Programs ``accelgen run`` runs: gen/network/placement.py), and the host's part:
    each op left on the host with its element operations, and their share of all operations
    (MACs + host element operations)."""
    from ..network.placement import place
    from ..progress import Heartbeat, reporting

    with reporting(Heartbeat(f"planning the network's layers on {spec.name}")):
        steps = place(spec, graph)
    rows = []
    for st in steps:
        if st.on_accelerator:
            rows.append(_row(spec, st.node.name, 1, st.program, st.model))
            if on_row:
                on_row(rows[-1])
    ops = [{"node": st.node.name, "op": op, "work": st.host_work}
           for st in steps for op in st.host_ops]
    work = sum(o["work"] for o in ops)
    macs = sum(r["macs"] for r in rows)
    by_op: dict[str, dict] = {}
    for o in ops:
        b = by_op.setdefault(o["op"], {"nodes": 0, "work": 0})
        b["nodes"] += 1
        b["work"] += o["work"]
    return rows, {"ops": ops, "by_op": by_op, "work": work, "macs": macs,
                  "share": work / (work + macs) if work + macs else 0.0}


def _row(spec, name, repeat, prog, est) -> dict:
    """The model's figures of one layer's Program ``prog`` (estimate ``est``) on ``spec``."""
    from ..model import energy
    summ = prog.summary()
    return {"spec": spec.name, "layer": name, "repeat": repeat, "macs": est.macs,
            "cycles": est.cycles, "ideal_cycles": prog.ideal_cycles,
            "utilisation": est.utilisation, "input_words": summ["input_words"],
            "weight_words": summ["weight_words"], "output_words": summ["output_words"],
            "commands": summ["commands"], "buffers": est.buffers, "accesses": est.accesses,
            "energy": energy(spec, est), "tiling": _tiling(prog)}


def _tiling(prog) -> dict:
    """How the tiler laid the layer out (``--explain``)."""
    from ..isa import Op
    return {"tile_p": prog.tile_p, "tile_q": prog.tile_q, "k_tile": prog.k_tile,
            "k_group": prog.k_group, "im2col": prog.lowered is not None,
            "pool": list(prog.pool) if prog.pool else None,   # max-pooled on the STORE path
            "add": prog.add,                                  # a residual added there
            "commands": {op.name.lower(): prog.count(op) for op in Op if prog.count(op)}}


def _total(spec, rows) -> dict:
    macs = sum(r["macs"] * r["repeat"] for r in rows)
    cycles = sum(r["cycles"] * r["repeat"] for r in rows)
    energy = {lv: sum(r["energy"][lv] * r["repeat"] for r in rows)
              for lv in ("mac", "rf", "array", "gb", "dram", "total")}
    return {"spec": spec.name, "macs": macs, "cycles": cycles,
            "utilisation": macs / (cycles * spec.rows * spec.cols) if cycles else 0.0,
            "energy": energy["total"], "energy_levels": energy,
            "energy_per_mac": energy["total"] / macs if macs else 0.0,
            # operands crossing the host stream, counted in elements (words differ per engine)
            "dram_elements": sum(r["accesses"]["dram"] * r["repeat"] for r in rows)}


def _print_header(spec, levels):
    print(f"accelgen estimate: {spec.name} ({spec.label}), analytic model of the RTL's timing")
    print(f"{'layer':<24} {'x':>2} {'MACs':>14} {'cycles':>12} {'ideal':>12} {'util':>6} "
          f"{'GB words':>10} {'E/MAC':>6}  " + " ".join(f"{lv:>5}" for lv in levels), flush=True)


def _print_row(r, levels, explain):
    gb = sum(r["buffers"].values())
    e = r["energy"]
    print(f"{r['layer']:<24} {r['repeat']:>2} {r['macs']:>14,} {r['cycles']:>12,} "
          f"{r['ideal_cycles']:>12,} {100 * r['utilisation']:>5.1f}% {gb:>10,} "
          f"{e['per_mac']:>6.2f}  " + " ".join(f"{e[lv] / r['macs']:>5.2f}" for lv in levels),
          flush=True)
    if explain:
        t = r["tiling"]
        print(f"{'':<27} output tiles of {t['tile_p']}x{t['tile_q']} pixels, K tiles of "
              f"{t['k_tile']} channels ({t['k_group']} on chip at once)"
              + (", im2col (C x R x S laid out as channels)" if t["im2col"] else "")
              + "; commands " + ", ".join(f"{k} {v}" for k, v in t["commands"].items()),
              flush=True)


def cmd_estimate(args) -> int:
    from ..model import ENERGY_LEVELS

    specs = specs_from_args(args)
    plot = prepare_output(args.plot, "--plot", (".png", ".svg")) if args.plot else None
    csv_out = prepare_output(args.csv_out, "--csv-out", (".csv",)) if args.csv_out else None
    layers, graph = _layers(args)
    levels = ENERGY_LEVELS
    stream = not args.json and len(specs) == 1
    results = []
    hosts = {}
    if graph is not None:
        from ..network.lower import LOWERED_OPS, host_reason
    count = (sum(n.op in LOWERED_OPS and not host_reason(graph, n) for n in graph.nodes)
             if graph is not None else len(layers))
    with _Progress(len(specs) * count, quiet=stream) as progress:
        for spec in specs:
            if stream:
                _print_header(spec, levels)

            def on_row(r):
                if stream:
                    _print_row(r, levels, args.explain)
                progress.step(r)

            if graph is not None:
                rows, hosts[spec.name] = network_rows(spec, graph, on_row)
            else:
                rows = estimate_rows(spec, layers, on_row=on_row)
            results.append((spec, rows, _total(spec, rows)))
    if csv_out is not None:
        _write_csv(csv_out, results, levels)
    if plot is not None:
        if len(specs) == 1:
            host = hosts.get(specs[0].name)
            note = (f"\nhost ops (exact numpy): {100 * host['share']:.2f}% of the operations"
                    if host else "")
            _plot_one(specs[0], results[0][1], plot, args.log_scale, note)
        else:
            _plot_compare(results, plot, args.log_scale)
    if args.json:
        costs = {s.name: {lv: getattr(s, f"energy_{lv}") for lv in levels} for s in specs}
        if len(specs) == 1:
            spec, rows, total = results[0]
            print(json.dumps({"spec": spec.name, "energy_costs": costs[spec.name],
                              "layers": rows, "total": total,
                              **({"host": hosts[spec.name]} if hosts else {})}, indent=2))
        else:
            print(json.dumps({"specs": [{"spec": s.name, "label": s.label,
                                         "energy_costs": costs[s.name], "layers": rows,
                                         "total": total,
                                         **({"host": hosts[s.name]} if hosts else {})}
                                        for s, rows, total in results]},
                             indent=2))
        return 0
    if len(specs) == 1:
        spec, rows, total = results[0]
        print(f"{'total (with repeats)':<24} {'':>2} {total['macs']:>14,} {total['cycles']:>12,}"
              f" {'':>12} {100 * total['utilisation']:>5.1f}% {'':>10} "
              f"{total['energy_per_mac']:>6.2f}")
        print("energy in units of one MAC, per useful MAC, by level (costs: "
              + ", ".join(f"{lv} {getattr(spec, f'energy_{lv}'):g}" for lv in levels)
              + "; [energy] in the spec)")
    else:
        _print_compare(results, levels, args.explain)
    distinct = []
    for name, host in hosts.items():
        if all(host != h for _, h in distinct):
            distinct.append((name, host))
    for name, host in distinct:       # one line when every spec leaves the same ops
        _print_host(host, name if len(distinct) > 1 else None)
    for what, path in (("plot", plot), ("csv", csv_out)):
        if path is not None:
            print(f"{what}: {path}")
    return 0


def _print_host(host: dict, spec: str | None) -> None:
    """The ops an ONNX network leaves on the host and their share of its operations."""
    parts = [f"{op}" + (f" x{b['nodes']}" if b["nodes"] > 1 else "") + f" {b['work']:,}"
             for op, b in host["by_op"].items()]
    print(f"host (exact numpy{', ' + spec if spec else ''}): {', '.join(parts)} element "
          f"operations; {host['work']:,} in all, "
          f"{100 * host['share']:.2f}% of the network's {host['work'] + host['macs']:,} "
          f"operations (MACs + host element operations)")


def _print_compare(results, levels, explain):
    print("accelgen estimate: side by side, analytic model of each RTL's timing (= its cycle "
          "counter)")
    layer_names = [r["layer"] for r in results[0][1]]
    print(f"{'spec':<16} {'array':<22} {'cycles':>14} {'util':>6} {'E/MAC':>7}  "
          + " ".join(f"{lv:>6}" for lv in levels) + f" {'DRAM elems':>12}")
    for spec, _, t in results:
        macs = t["macs"] or 1
        print(f"{spec.name:<16} {spec.label:<22} {t['cycles']:>14,} "
              f"{100 * t['utilisation']:>5.1f}% {t['energy_per_mac']:>7.2f}  "
              + " ".join(f"{t['energy_levels'][lv] / macs:>6.2f}" for lv in levels)
              + f" {t['dram_elements']:>12,}")
    if len(layer_names) > 1 or explain:
        print()
        print("per layer: utilisation and cycles")
        print(f"{'layer':<24}" + "".join(f" {spec.name:>22}" for spec, _, _ in results))
        for i, name in enumerate(layer_names):
            print(f"{name:<24}" + "".join(
                f" {100 * rows[i]['utilisation']:>6.1f}% {rows[i]['cycles']:>13,}"
                for _, rows, _ in results))
    print("energy in units of one MAC per useful MAC, by level; DRAM elems: operands crossing "
          "the host stream; totals over the layers with their repeats")


def _write_csv(path, results, levels) -> None:
    fields = ["spec", "layer", "repeat", "macs", "cycles", "ideal_cycles", "utilisation",
              "input_words", "weight_words", "output_words", "commands",
              *(f"energy_{lv}" for lv in levels), "energy_total", "energy_per_mac",
              "tile_p", "tile_q", "k_tile", "k_group", "im2col"]
    try:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for _, rows, _ in results:
                for r in rows:
                    w.writerow({**{k: r[k] for k in fields[:11]},
                                **{f"energy_{lv}": r["energy"][lv] for lv in levels},
                                "energy_total": r["energy"]["total"],
                                "energy_per_mac": r["energy"]["per_mac"],
                                **{k: r["tiling"][k] for k in ("tile_p", "tile_q", "k_tile",
                                                                "k_group", "im2col")}})
    except OSError as e:
        raise AccelgenError(f"cannot write {path}: {e.strerror}") from None


class _Progress:
    """A transient progress bar on standard error while layers are estimated (only on a
    terminal, and only when the rows are not already printed as they come)."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet = total, quiet or not sys.stderr.isatty() or total < 2
        self.bar = None

    def __enter__(self):
        if not self.quiet:
            from rich.progress import Progress
            self.bar = Progress(transient=True, console=_stderr_console())
            self.bar.start()
            self.task = self.bar.add_task("estimating", total=self.total)
        return self

    def step(self, row):
        if self.bar is not None:
            self.bar.update(self.task, advance=1,
                            description=f"{row['spec']} {row['layer']}")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


def _stderr_console():
    from rich.console import Console
    return Console(stderr=True)


def _energy_axis(ax, log: bool):
    ax.set_ylabel("energy per MAC (× one MAC)")
    if log:
        ax.set_yscale("log")


def _plot_one(spec, rows, path, log: bool = False, note: str = ""):
    """Per-layer bars: PE utilisation, and energy per MAC stacked by level, with the totals."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..model import ENERGY_LEVELS

    names = [r["layer"] for r in rows]
    xs = range(len(rows))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(6.0, 0.55 * len(rows) + 2), 6.5),
                                   sharex=True)
    ax1.bar(xs, [100 * r["utilisation"] for r in rows], color="#2471a3")
    ax1.set_ylabel("PE utilisation (%)")
    ax1.set_ylim(0, 100)
    total = _total(spec, rows)
    ax1.set_title(f"{spec.name} ({spec.label}): utilisation and energy per layer (model = RTL "
                  f"cycles)\ntotal {total['cycles']:,} cycles, {100 * total['utilisation']:.1f}%"
                  f" utilisation, {total['energy']:.3g} MAC-units of energy "
                  f"({total['energy_per_mac']:.2f} per MAC){note}", fontsize=8)
    bottom = [0.0] * len(rows)
    for lv in ENERGY_LEVELS:
        vals = [r["energy"][lv] / r["macs"] for r in rows]
        ax2.bar(xs, vals, bottom=bottom, label=lv, color=_COLOURS[lv])
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    _energy_axis(ax2, log)
    ax2.legend(fontsize=7, ncols=len(ENERGY_LEVELS))
    ax2.set_xticks(list(xs), names, rotation=60, ha="right", fontsize=7)
    _save(fig, path)


def _plot_compare(results, path, log: bool = False):
    """Grouped bars: per layer, one bar of utilisation per spec; and per spec, its total energy
    per MAC stacked by level."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..model import ENERGY_LEVELS

    names = [r["layer"] for r in results[0][1]]
    n = len(results)
    width = 0.8 / n
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(7.0, 0.6 * len(names) * n / 2 + 3), 7.5))
    for k, (spec, rows, _) in enumerate(results):
        ax1.bar([i + (k - (n - 1) / 2) * width for i in range(len(names))],
                [100 * r["utilisation"] for r in rows], width, label=spec.name)
    ax1.set_ylabel("PE utilisation (%)")
    ax1.set_ylim(0, 100)
    ax1.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax1.legend(fontsize=7, ncols=min(n, 5))
    ax1.set_title("utilisation per layer and energy per MAC by level (model = RTL cycles)",
                  fontsize=9)
    bottom = [0.0] * n
    for lv in ENERGY_LEVELS:
        vals = [t["energy_levels"][lv] / (t["macs"] or 1) for _, _, t in results]
        ax2.bar(range(n), vals, bottom=bottom, label=lv, color=_COLOURS[lv])
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    for k, (_, _, t) in enumerate(results):
        ax2.text(k, bottom[k], f"{t['energy_per_mac']:.2f} per MAC\n{t['energy']:.3g} in all",
                 ha="center", va="bottom", fontsize=7)
    _energy_axis(ax2, log)
    ax2.set_xticks(range(n), [s.name for s, _, _ in results], fontsize=8)
    ax2.legend(fontsize=7, ncols=len(ENERGY_LEVELS))
    _save(fig, path)


_COLOURS = {"mac": "#7f8c8d", "rf": "#1e8449", "array": "#d4ac0d", "gb": "#2471a3",
            "dram": "#c0392b"}


def _save(fig, path):
    import matplotlib.pyplot as plt
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=150)
    except OSError as e:
        raise AccelgenError(f"cannot write {path}: {e.strerror}") from None
    finally:
        plt.close(fig)


def add_parser(sub) -> None:
    """The ``estimate`` command's parser."""
    e = sub.add_parser("estimate", help="cycles, utilisation and energy from the analytic model "
                                        "(exact against the RTL's counters), for one spec or "
                                        "several side by side")
    e.add_argument("spec", nargs="*", help=SPEC_HELP + "; several are compared side by side")
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
    e.add_argument("--onnx", help="a quantized ONNX model: its accelerator layers (conv, FC, global "
                                  "average pool) as 'accelgen run' "
                                  "runs them, and the share of the ops left on the host")
    e.add_argument("--batch", type=POSITIVE, help="with --onnx: the batch of a model whose "
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
