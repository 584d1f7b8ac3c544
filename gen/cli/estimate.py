"""``accelgen estimate``: per-layer cycles, utilisation, traffic and energy from the analytic
model of the RTL's timing (the same tile Program the RTL runs)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import AccelgenError
from .args import prepare_output

__all__ = ["cmd_estimate", "plot_estimate"]


def _layers(args):
    from ..layer import load_layers_csv, network_layers, parse_layer

    chosen = [x for x in (args.layer, args.network, args.csv) if x]
    if len(chosen) != 1:
        raise AccelgenError("estimate needs exactly one of --layer, --network or --csv")
    if args.layer:
        return [(args.layer, parse_layer(args.layer), 1)]
    if args.network:
        return network_layers(args.network)
    return load_layers_csv(args.csv)


def cmd_estimate(args) -> int:
    from ..model import ENERGY_LEVELS, energy, estimate
    from ..spec import load_spec
    from ..tiler import plan

    spec = load_spec(args.spec)
    plot = prepare_output(args.plot, "--plot", (".png", ".svg")) if args.plot else None
    layers = _layers(args)
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
    if plot is not None:
        plot_estimate(spec, rows, plot)
    if args.json:
        print(json.dumps({"spec": spec.name, "energy_costs": costs, "layers": rows,
                          "total": total}, indent=2))
        return 0
    print(f"accelgen estimate: {spec.name} ({spec.label}), analytic model of the RTL's timing")
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
    if plot is not None:
        print(f"plot: {plot}")
    return 0


def plot_estimate(spec, rows, path):
    """Per-layer bars: PE utilisation, and energy per MAC stacked by level (PNG or SVG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..model import ENERGY_LEVELS

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
