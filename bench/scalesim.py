"""SCALE-Sim v3 (PyPI ``scalesim``) next to accelgen's cycle model: the same array size, dataflow
and layers, one row per (layer, dataflow), with the ratio accelgen / SCALE-Sim cycles.

    python bench/scalesim.py                                   # ResNet-18 + AlexNet, 16x16, ws/os/is
    python bench/scalesim.py --layers resnet18:conv3_x --dataflows ws os
    python bench/scalesim.py --network resnet18 --size 8 --json
    python bench/scalesim.py --layers "C=64,H=28,W=28,K=64,R=3,S=3,pad=1"
    python bench/scalesim.py --layers resnet18:conv5_x --dataflows ws --rtl   # + Verilator cycles
    python bench/scalesim.py --split-groups                    # grouped layers as G sub-layers

SCALE-Sim needs numpy<2 and pandas<2.3, so it never goes into the project's environment: the first
run creates its own virtual environment (``bench/.scalesim-venv``, or ``--scalesim-venv DIR``; it
holds a ``.gitignore`` of ``*``), installs ``scalesim==3.0.0 "numpy<2" "pandas<2.3"`` there with
pip, and runs SCALE-Sim in it as a subprocess, one process per (layer, dataflow), ``--jobs`` at a
time (its per-cycle memory model runs at ~10k cycles/s or slower: 1-15 min per big layer, ~45 min
for the default set on 2 busy CPUs the first time, about a second afterwards). Each result is
cached in ``<venv>/accelgen-results`` keyed by the SCALE-Sim version, config and layer
(``--no-cache`` reruns and refreshes it).

SCALE-Sim setup, as in ../shared/REFERENCE.md ("SCALE-Sim v3.0.0"): a ``rows x cols`` array,
64 kB ifmap/filter/ofmap SRAMs, ``InterfaceBandwidth: CALC`` (no stalls), no ``[network_presets]``,
a placeholder layout CSV (custom layouts off), batch 1, and inputs passed pre-padded (H + 2*pad,
W + 2*pad) since SCALE-Sim has no padding. It has no grouped convolution and no dilation: such
layers are shown with accelgen's figures only (``--split-groups`` instead runs one group's
C/G -> K/G convolution and counts it G times, as G back-to-back SCALE-Sim layers would be).
Columns: SCALE-Sim's "Total Cycles" and "Overall Util %" (MACs / (cycles x PEs), the same
definition as accelgen's utilisation) and "Compute Util %" (its average PE use while computing);
``--json`` also gives "Total Cycles (incl. prefetch)" and the mapping efficiency. By default
SCALE-Sim runs through its ``scalesim.scale_sim.scalesim`` class, exactly as
``python -m scalesim.scale -c CFG -t TOPO -l LAYOUT -p OUT`` does but with trace saving off
(scale.py parses ``-s N`` but never passes it on, so it always writes the per-cycle SRAM/DRAM
traces, ~300 MB for a 16x16 ResNet layer); ``--via-cli`` runs ``python -m scalesim.scale`` itself
(the traces go to a temporary directory that is deleted).

The accelgen side is ``gen.model.estimate(gen.tiler.plan(spec, layer))`` for the spec
``{dataflow, array rows x cols, buffers 8192/2304/4096 words}`` (as bench/dataflows.py); its cycle
count equals the generated RTL's cycle counter exactly (tests/), hence "model = RTL". ``--rtl``
also runs each layer on the RTL in Verilator (slow for big layers; use with ``--layers``).

At 16x16 the published SCALE-Sim figures of ../shared/REFERENCE.md (ResNet-18 conv2_x, conv3_x,
conv5_x and AlexNet conv3, ws/os/is) are checked against the parsed numbers and the result printed
under the table.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gen.errors import AccelgenError  # noqa: E402
from gen.layer import ConvLayer, network_layers, parse_layer  # noqa: E402
from gen.model import estimate  # noqa: E402
from gen.spec import spec_from_dict  # noqa: E402
from gen.tiler import plan  # noqa: E402
from scalesim_run import SRAM_KB, BenchError, Job, ensure_scalesim, run_scalesim  # noqa: E402

PROG = "bench/scalesim.py"
DEFAULT_VENV = ROOT / "bench" / ".scalesim-venv"
DATAFLOWS = ("ws", "os", "is")
BUFFERS = {"input_depth": 8192, "weight_depth": 2304, "output_depth": 4096}

# ../shared/REFERENCE.md, "SCALE-Sim v3.0.0": 16x16, 64 kB SRAMs -> (cycles, overall util %)
PUBLISHED_16X16 = {
    ("resnet18:conv2_x", "ws"): (458_207, 98.6), ("resnet18:conv2_x", "os"): (475_103, 95.1),
    ("resnet18:conv2_x", "is"): (776_159, 58.2),
    ("resnet18:conv3_x", "ws"): (478_079, 94.5), ("resnet18:conv3_x", "os"): (463_343, 97.5),
    ("resnet18:conv3_x", "is"): (613_871, 73.6),
    ("resnet18:conv5_x", "ws"): (875_519, 51.6), ("resnet18:conv5_x", "os"): (593_663, 76.1),
    ("resnet18:conv5_x", "is"): (642_815, 70.3),
    ("alexnet:conv3", "ws"): (743_039, 78.6), ("alexnet:conv3", "os"): (616_175, 94.8),
    ("alexnet:conv3", "is"): (681_119, 85.8),
}
# the shapes those figures are for (a custom --layers with the same name must not be checked)
PUBLISHED_SHAPES = {
    "resnet18:conv2_x": (64, 56, 56, 64, 3, 3, 1, 1), "resnet18:conv3_x": (128, 28, 28, 128, 3, 3, 1, 1),
    "resnet18:conv5_x": (512, 7, 7, 512, 3, 3, 1, 1), "alexnet:conv3": (256, 13, 13, 384, 3, 3, 1, 1),
}

# ------------------------------------------------------------------------------------------------
# the comparison

def select_layers(args) -> list[tuple[str, ConvLayer]]:
    if args.layers:
        out = []
        for text in args.layers:
            layer = parse_layer(text)
            name = text if "=" not in text else f"custom{len(out) + 1}"
            out.append((name, layer))
        return out
    try:
        return [(n, layer) for net in args.network for n, layer, _ in network_layers(net)]
    except AccelgenError as e:
        raise BenchError(str(e)) from None


def unsupported(layer: ConvLayer, split_groups: bool) -> str | None:
    if layer.N != 1:
        return f"batch {layer.N}: compared at batch 1 only"
    if layer.dilation != 1:
        return f"dilation {layer.dilation}: SCALE-Sim has no dilation"
    if layer.groups != 1 and not split_groups:
        return f"groups={layer.groups}: SCALE-Sim has no grouped conv (--split-groups)"
    return None


def make_spec(df: str, n: int):
    return spec_from_dict({"name": f"{df}_{n}x{n}", "dataflow": df,
                           "array": {"rows": n, "cols": n}, "buffers": BUFFERS})


def run_rtl(spec, layer) -> dict:
    from sim.flow import random_tensors, simulate_layer
    x, w, b = random_tensors(spec, layer, 1)
    with tempfile.TemporaryDirectory(prefix="accelgen-rtl-") as tmp:
        res = simulate_layer(spec, layer, x, w, b, sim="verilator", work_dir=Path(tmp))
    return {"cycles": int(res.counters["cycles"]), "match": bool(res.match)}


def compare(args) -> dict:
    n = args.size
    layers = select_layers(args)
    rows = []
    jobs: dict[int, Job] = {}
    for name, layer in layers:
        for df in args.dataflows:
            spec = make_spec(df, n)
            try:
                est = estimate(plan(spec, layer))
                ag, ag_err = {"cycles": est.cycles, "util": est.utilisation}, None
            except AccelgenError as e:  # e.g. a filter too big for the fixed buffer depths
                ag, ag_err = None, f"accelgen: {e}"
            row = {"layer": name, "dataflow": df, "macs": layer.macs,
                   "shape": {"C": layer.C, "H": layer.H, "W": layer.W, "K": layer.K, "R": layer.R,
                             "S": layer.S, "stride": layer.stride, "pad": layer.pad,
                             "groups": layer.groups},
                   "accelgen": ag, "scalesim": None, "ratio": None,
                   "note": unsupported(layer, args.split_groups)}
            if row["note"] is None:
                g = layer.groups
                jobs[len(rows)] = Job(name, df, layer.H + 2 * layer.pad, layer.W + 2 * layer.pad,
                                      layer.R, layer.S, layer.C // g, layer.K // g, layer.stride, g)
                if g > 1:
                    row["note"] = f"SCALE-Sim: one group ({layer.C // g}->{layer.K // g}) x {g}"
            if ag_err:
                row["note"] = "; ".join(filter(None, [row["note"], ag_err]))
            elif args.rtl:
                row["rtl"] = run_rtl(spec, layer)
            rows.append(row)

    versions = {}
    if jobs:
        py, versions = ensure_scalesim(Path(args.scalesim_venv).resolve(), args.json)
        cache = Path(args.scalesim_venv).resolve() / "accelgen-results"
        order = sorted(jobs, key=lambda i: -jobs[i].predicted_cycles(n, n))
        failed = []
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            futs = {pool.submit(run_scalesim, py, jobs[i], n, n, cache, not args.no_cache,
                                versions, args.via_cli): i
                    for i in order}
            for done, fut in enumerate(concurrent.futures.as_completed(futs), 1):
                i = futs[fut]
                job = jobs[i]
                try:
                    ss = fut.result()
                except BenchError as e:
                    failed.append(str(e))
                    rows[i]["note"] = "SCALE-Sim failed"
                    continue
                ss["cycles"] *= job.times
                ss["cycles_incl_prefetch"] *= job.times
                ss["stall_cycles"] *= job.times
                rows[i]["scalesim"] = ss
                if rows[i]["accelgen"]:
                    rows[i]["ratio"] = rows[i]["accelgen"]["cycles"] / ss["cycles"]
                if not args.json or args.verbose:
                    how = "cached" if ss["cached"] else f"{ss['seconds']:.0f} s"
                    print(f"  [{done}/{len(jobs)}] SCALE-Sim {job.name} {job.dataflow}: "
                          f"{ss['cycles']:,} cycles ({how})", file=sys.stderr, flush=True)
        if failed:
            raise BenchError(failed[0] + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))

    geomean = {}
    for df in args.dataflows:
        rs = [r["ratio"] for r in rows if r["dataflow"] == df and r["ratio"]]
        if rs:
            geomean[df] = {"ratio": math.exp(sum(map(math.log, rs)) / len(rs)), "layers": len(rs)}

    check = None
    if n == 16:
        hits, misses = 0, []
        for r in rows:
            key = (r["layer"], r["dataflow"])
            s = r["shape"]
            shape = (s["C"], s["H"], s["W"], s["K"], s["R"], s["S"], s["stride"], s["pad"])
            if key not in PUBLISHED_16X16 or r["scalesim"] is None \
                    or PUBLISHED_SHAPES[r["layer"]] != shape:
                continue
            cyc, util = PUBLISHED_16X16[key]
            got = r["scalesim"]
            # cycles exactly; utilisation to the published one decimal (+-0.1 point: the
            # published conv2_x OS 95.1% is 95.047% = 115,605,504 / (475,103 x 256))
            if got["cycles"] == cyc and abs(got["overall_util"] * 100 - util) <= 0.1:
                hits += 1
            else:
                misses.append(f"{key[0]} {key[1]}: {got['cycles']:,} ({got['overall_util']:.1%}) "
                              f"vs published {cyc:,} ({util}%)")
        if hits or misses:
            check = {"reproduced": hits, "checked": hits + len(misses), "mismatches": misses}

    return {"array": f"{n}x{n}", "sram_kb": SRAM_KB, "versions": versions, "rows": rows,
            "geomean_ratio": geomean, "reference_check": check}


def print_table(res: dict, rtl: bool) -> None:
    v = res["versions"]
    ver = f"SCALE-Sim {v['scalesim']} (numpy {v['numpy']}, pandas {v['pandas']})" if v else "SCALE-Sim"
    print(f"{ver} vs accelgen on a {res['array']} array; SCALE-Sim: {res['sram_kb']} kB SRAMs, "
          f"CALC bandwidth; accelgen: buffers {BUFFERS['input_depth']}/{BUFFERS['weight_depth']}/"
          f"{BUFFERS['output_depth']} words")
    print("util = MACs / (cycles x PEs); cmp util = SCALE-Sim's 'Compute Util %'; "
          "ratio = accelgen cycles / SCALE-Sim cycles")
    w = max([18] + [len(r["layer"]) for r in res["rows"]])
    ss_w, ag_w = 31, 23
    head1 = (f"{'':{w}} {'':2} {'':>13}  {'---------- SCALE-Sim ----------':^{ss_w}}  "
             f"{'accelgen (model = RTL)':^{ag_w}}")
    head2 = (f"{'layer':{w}} {'df':2} {'MACs':>13}  {'cycles':>12} {'util':>8} {'cmp util':>9}  "
             f"{'cycles':>12} {'util':>10}  {'ratio':>6}")
    if rtl:
        head1 += f"  {'':>13}"
        head2 += f"  {'RTL cycles':>13}"
    print(head1)
    print(head2)
    for r in res["rows"]:
        ag = r["accelgen"]
        ss = r["scalesim"]
        if ss:
            ss_cell = f"{ss['cycles']:>12,} {ss['overall_util']:>8.1%} {ss['compute_util']:>9.1%}"
            ratio = f"{r['ratio']:>6.2f}"
        else:
            ss_cell = f"{'n/a':>12} {'':>8} {'':>9}"
            ratio = f"{'-':>6}"
        ag_cell = f"{ag['cycles']:>12,} {ag['util']:>10.1%}" if ag else f"{'n/a':>12} {'':>10}"
        line = f"{r['layer']:{w}} {r['dataflow']:2} {r['macs']:>13,}  {ss_cell}  {ag_cell}  {ratio}"
        if rtl and "rtl" in r:
            rr = r["rtl"]
            ok = "=" if rr["cycles"] == ag["cycles"] and rr["match"] else "!"
            line += f"  {rr['cycles']:>12,}{ok}"
        elif rtl:
            line += f"  {'':>13}"
        if r["note"]:
            line += f"  [{r['note']}]"
        print(line)
    gm = res["geomean_ratio"]
    if gm:
        print("geomean ratio accelgen/SCALE-Sim cycles: " + ", ".join(
            f"{df} {g['ratio']:.2f} ({g['layers']} layers)" for df, g in gm.items()))
    chk = res["reference_check"]
    if chk:
        ok = chk["reproduced"] == chk["checked"]
        print(f"REFERENCE.md SCALE-Sim figures (16x16): {chk['reproduced']}/{chk['checked']} "
              f"reproduced (cycles exactly, util within 0.1 point)" + ("" if ok else ": MISMATCH"))
        for m in chk["mismatches"]:
            print(f"  {m}")
    if rtl:
        print("RTL cycles: '=' equals the model and the output matched the golden model; "
              "'!' otherwise")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog=PROG,
                                 description="SCALE-Sim v3 vs accelgen's cycle model, per layer "
                                             "and dataflow",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:9]))
    ap.add_argument("--network", nargs="+", default=["resnet18", "alexnet"],
                    help="networks from gen/workloads.csv (default: resnet18 alexnet)")
    ap.add_argument("--layers", nargs="+", metavar="LAYER",
                    help="workload names (resnet18:conv3_x) or KEY=VALUE shapes; replaces --network")
    ap.add_argument("--size", type=int, default=16, help="array rows = cols (default 16)")
    ap.add_argument("--dataflows", nargs="+", default=list(DATAFLOWS), choices=DATAFLOWS)
    ap.add_argument("--split-groups", action="store_true",
                    help="run grouped layers as one group's conv in SCALE-Sim, counted G times")
    ap.add_argument("--scalesim-venv", default=str(DEFAULT_VENV), metavar="DIR",
                    help=f"SCALE-Sim's virtual environment, created if missing "
                         f"(default {DEFAULT_VENV.relative_to(ROOT)})")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="SCALE-Sim processes at a time (default: CPU count)")
    ap.add_argument("--no-cache", action="store_true",
                    help="rerun SCALE-Sim even if cached (and refresh the cache)")
    ap.add_argument("--via-cli", action="store_true",
                    help="run 'python -m scalesim.scale' itself (writes traces to a temp dir)")
    ap.add_argument("--rtl", action="store_true",
                    help="also run each layer on the RTL in Verilator (slow for big layers)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--verbose", action="store_true", help="progress on stderr even with --json")
    args = ap.parse_args(argv)
    if not 1 <= args.size <= 256:
        ap.error("--size must be from 1 to 256")
    args.dataflows = list(dict.fromkeys(args.dataflows))
    try:
        t0 = time.monotonic()
        res = compare(args)
        res["wall_seconds"] = round(time.monotonic() - t0, 1)
    except (BenchError, AccelgenError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_table(res, args.rtl)
        print(f"wall time {res['wall_seconds']:.0f} s")
    chk = res["reference_check"]
    return 1 if chk and chk["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
