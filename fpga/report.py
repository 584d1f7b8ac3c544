"""Sweep reports: a table of configs (median Fmax over seeds) and Pareto plots.

Throughput is peak MACs/s at the achieved Fmax (``rows * cols * Fmax``) and the same weighted by the
analytic model's utilisation on the sweep's network. A config is Pareto-optimal when no other config
has at most its cost (LUTs or DSPs) and more throughput.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict

__all__ = ["aggregate", "pareto", "table", "pareto_plot"]


def aggregate(data: list[dict]) -> list[dict]:
    """One row per (spec, target): median Fmax and throughputs over the seeds that placed."""
    groups = defaultdict(list)
    for r in data:
        groups[(r["spec_digest"], r["target"])].append(r)
    out = []
    for rs in groups.values():
        ok = [r for r in rs if r["status"] == "ok"]
        first = (ok or rs)[0]
        row = {k: first[k] for k in ("spec_name", "params", "dataflow", "rows", "cols", "target",
                                     "luts", "ffs", "dsps", "brams", "network", "utilisation")}
        row["seeds"] = len(rs)
        row["ok"] = len(ok)
        row["status"] = "ok" if ok else first["status"]
        row["message"] = "" if ok else first["message"]
        for k in ("fmax_mhz", "peak_gmacs", "effective_gmacs"):
            vals = [r[k] for r in ok if r[k] is not None]
            row[k] = statistics.median(vals) if vals else None
        out.append(row)
    return sorted(out, key=lambda r: (r["target"], r["rows"] * r["cols"], r["spec_name"]))


def pareto(rows: list[dict], cost: str, value: str) -> list[dict]:
    pts = sorted((r for r in rows if r.get(cost) is not None and r.get(value) is not None),
                 key=lambda r: (r[cost], -r[value]))
    front, best = [], float("-inf")
    for r in pts:
        if r[value] > best:
            front.append(r)
            best = r[value]
    return front


def table(data: list[dict]) -> str:
    rows = aggregate(data)
    head = (f"{'config':<22} {'params':<34} {'target':<10} {'LUTs':>7} {'FFs':>7} {'DSP':>4} "
            f"{'BRAM':>4} {'Fmax':>6} {'GMAC/s':>7} {'util':>5} {'eff':>6}  status")
    lines = [head]
    for r in rows:
        def f(v, spec):
            return format(v, spec) if v is not None else "-"
        params = ",".join(f"{k.split('.')[-1]}={v}" for k, v in json.loads(r["params"]).items())
        lines.append(
            f"{r['spec_name']:<22} {params[:34]:<34} {r['target']:<10} {f(r['luts'], '>7,')} "
            f"{f(r['ffs'], '>7,')} {f(r['dsps'], '>4')} {f(r['brams'], '>4')} "
            f"{f(r['fmax_mhz'], '>6.1f')} {f(r['peak_gmacs'], '>7.2f')} "
            f"{f(r['utilisation'] and 100 * r['utilisation'], '>4.0f')}% "
            f"{f(r['effective_gmacs'], '>6.2f')}  {r['status']} ({r['ok']}/{r['seeds']} seeds)"
            + (f": {r['message']}" if r["message"] else ""))
    return "\n".join(lines)


def pareto_plot(data: list[dict], path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in aggregate(data) if r["status"] == "ok"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    network = next((r["network"] for r in rows if r["network"]), None)
    for ax, (cost, value) in zip(axes.flat, [("luts", "peak_gmacs"), ("dsps", "peak_gmacs"),
                                             ("luts", "effective_gmacs"),
                                             ("dsps", "effective_gmacs")], strict=True):
        for dataflow in sorted({r["dataflow"] for r in rows}):
            series = [r for r in rows if r["dataflow"] == dataflow and r.get(value) is not None]
            if not series:
                continue
            pts = ax.scatter([r[cost] for r in series], [r[value] for r in series],
                             label=dataflow.upper(), alpha=0.7)
            front = pareto(series, cost, value)
            ax.step([r[cost] for r in front], [r[value] for r in front], where="post",
                    color=pts.get_facecolor()[0], linewidth=1.5)
            for r in front:
                ax.annotate(f"{r['rows']}x{r['cols']}", (r[cost], r[value]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel({"luts": "LUT4s", "dsps": "DSP blocks"}[cost])
        ax.set_ylabel("peak GMAC/s (Fmax x PEs)" if value == "peak_gmacs"
                      else f"effective GMAC/s on {network or 'network'}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    targets = ", ".join(sorted({r["target"] for r in rows}))
    fig.suptitle(f"accelgen sweep: throughput vs resources ({targets}; lines: Pareto frontier)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
