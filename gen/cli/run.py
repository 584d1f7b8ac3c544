"""``accelgen run``: a quantized ONNX network end to end, its conv, FC and global-average-pool
layers on the generated RTL.

    accelgen run SPEC MODEL.onnx --input X.npy [--output Y.npy] [--sim icarus|verilator]
                 [--isa] [--check] [--labels L.npy] [--json] [--work-dir DIR]
                 [--jobs N | --scheduler ADDRESS]

The input is what the ONNX model takes (float32, quantized by its first QuantizeLinear as
onnxruntime does; the first dimension is the batch); the output is written exactly as onnxruntime
returns it. Which node runs where: gen/network/placement.py; the run: sim/netrun.py (``run``, the
chained run; ``verify`` with ``--jobs``/``--scheduler``: every layer from the reference's input, in
parallel); ``--check`` adds onnxruntime (sim/ortref.py) and the numpy reference
(sim/netgolden.py), tensor by tensor.
"""

from __future__ import annotations

import json
import time

from ..errors import AccelgenError
from .args import SPEC_HELP, abs_path, int_at_least, load_npy, prepare_output

__all__ = ["cmd_run"]


def _model_input(proto, what: str, x) -> str:
    """The model's one input's name; ``x`` checked against its declared type and shape."""
    import numpy as np
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise AccelgenError(f"{what} has {len(inputs)} inputs "
                            f"({', '.join(i.name for i in inputs)}); accelgen run takes models "
                            f"with one input")
    inp = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in inp.type.tensor_type.shape.dim]
    shown = "(" + ", ".join("N" if d is None else str(d) for d in dims) + ")"
    if x.dtype != np.float32:
        raise AccelgenError(f"--input is {x.dtype}, but {what} takes float32 (its first "
                            f"QuantizeLinear quantizes it); save the array as float32")
    if x.ndim != len(dims) or any(d is not None and d != s for d, s in
                                  zip(dims, x.shape, strict=False)):
        raise AccelgenError(f"--input has shape {tuple(x.shape)}, but {what} takes input "
                            f"{inp.name!r} of shape {shown} (N: any batch)")
    if x.ndim == 0 or x.shape[0] < 1:
        raise AccelgenError(f"--input has shape {tuple(x.shape)}: no items in the batch")
    return inp.name


def _fmt(v) -> str:
    return "-" if v is None else f"{v:,}"


def _rows(graph, steps, net, backend_label):
    by_layer = {r.node: r for r in net.layers}
    rows = []
    for s in steps:
        n = s.node
        r = by_layer.get(n.name)
        row = {"node": n.name, "op": n.op,
               "where": backend_label if s.on_accelerator or s.fused_into else "host",
               "host_ops": list(s.host_ops), "output": n.output,
               "shape": list(graph.tensors[n.output].shape)}
        if s.fused_into:    # a MaxPool or Add run on its conv's STORE path
            row["fused_into"] = s.fused_into
        if s.note:
            row["note"] = s.note
        if r is not None:
            row.update({k: v for k, v in r.as_dict().items() if k not in ("node", "op", "where")})
        else:
            row["seconds"] = round(net.host_seconds.get(n.name, 0.0), 4)
        rows.append(row)
    return rows


def _host_ops(steps) -> dict:
    """Each op left on the host -> the nodes it runs for."""
    out: dict[str, list[str]] = {}
    for s in steps:
        for op in s.host_ops:
            out.setdefault(op, []).append(s.node.name)
    return out


def _first_tensor_difference(graph, env, ref) -> dict | None:
    """The first node (graph order) whose output differs between two runs of ``graph``."""
    from sim.netrun import first_difference
    for n in graph.nodes:
        if n.output not in env:   # a conv whose MaxPool/Add ran on its STORE path: never left
            continue
        d = first_difference(env[n.output], ref[n.output])
        if d is not None:
            return {"node": n.name, "op": n.op, "tensor": n.output,
                    "size": int(ref[n.output].size), **d}
    return None


def _check(proto, graph, inputs, env, outputs) -> dict:
    """onnxruntime and the numpy reference beside the hardware run: the reference against
    onnxruntime on every tensor onnxruntime exposes, the hardware run against the reference on
    every tensor, the written outputs against onnxruntime's."""
    from sim import netgolden, ortref
    ref = netgolden.run(graph, inputs)
    cmp = ortref.compare(proto, graph, ref, inputs)
    hw = _first_tensor_difference(graph, env, ref)
    out_diff = None
    for name, v in outputs.items():
        theirs = cmp.outputs[name]
        if v.dtype != theirs.dtype:
            out_diff = {"output": name, "index": None, "value": f"dtype {v.dtype}",
                        "onnxruntime": f"dtype {theirs.dtype}", "mismatches": -1}
        else:
            from sim.netrun import first_difference
            d = first_difference(v, theirs)
            if d is not None:
                out_diff = {"output": name, "index": d["index"], "value": d["value"],
                            "onnxruntime": d["reference"], "mismatches": d["mismatches"]}
        if out_diff:
            break
    return {"reference_vs_onnxruntime": {"equal": cmp.equal, "tensors": len(cmp.checked),
                                         "intermediates": cmp.intermediates,
                                         "first": cmp.first, "text": cmp.describe()},
            "run_vs_reference": {"equal": hw is None,
                                 "tensors": sum(n.output in env for n in graph.nodes),
                                 "first": hw},
            "outputs_vs_onnxruntime": {"equal": out_diff is None, "first": out_diff},
            "equal": cmp.equal and hw is None and out_diff is None,
            "onnxruntime_outputs": cmp.outputs}


def _describe_check(c: dict, where: str) -> list[str]:
    lines = []
    r = c["reference_vs_onnxruntime"]
    lines.append(("numpy reference " + r["text"]) if r["equal"] else
                 ("numpy reference vs onnxruntime: " + r["text"]))
    h = c["run_vs_reference"]
    if h["equal"]:
        lines.append(f"{where} run equal to the numpy reference on all {h['tensors']} tensors")
    else:
        f = h["first"]
        lines.append(f"{where} run vs numpy reference: first difference at node {f['node']!r} "
                     f"({f['op']}) output {f['tensor']!r} index {f['index']}: {where} run "
                     f"{f['value']}, reference {f['reference']} ({f['mismatches']} of "
                     f"{f['size']} values differ)")
    o = c["outputs_vs_onnxruntime"]
    if o["equal"]:
        lines.append("outputs bit-exact with onnxruntime (values, dtype, shape)")
    else:
        f = o["first"]
        lines.append(f"output {f['output']!r} differs from onnxruntime's at index {f['index']}: "
                     f"{f['value']} vs onnxruntime {f['onnxruntime']} ({f['mismatches']} values)")
    return lines


def _accuracy(labels, outputs):
    import numpy as np
    out = next(iter(outputs.values()))
    return float((np.asarray(out).reshape(len(labels), -1).argmax(axis=1) == labels).mean())


def _labels(path, n):
    import numpy as np
    y = load_npy(path, "--labels")
    if y.ndim != 1 or y.shape[0] != n or not np.issubdtype(y.dtype, np.integer):
        raise AccelgenError(f"--labels must be a 1-D integer array of {n} class indices (one per "
                            f"batch item), not {y.dtype} of shape {tuple(y.shape)}")
    return y


def cmd_run(args) -> int:
    from gen.network import load
    from gen.network.onnx_import import load_model_proto
    from gen.network.placement import place
    from sim import netrun

    from ..progress import Items
    from ..spec import load_spec

    t_start = time.monotonic()
    if args.isa and (args.sim or args.driver):
        raise AccelgenError("--isa runs the layers on the ISA model, not a simulator; give "
                            "--isa or --sim/--driver, not both")
    if args.jobs is not None and args.scheduler:
        raise AccelgenError("--jobs sets the local processes, --scheduler a Dask cluster's; give "
                            "one of them, not both")
    parallel = args.jobs is not None or bool(args.scheduler)
    sim = args.sim or "icarus"
    backend = "isa" if args.isa else "rtl"
    where = "ISA" if args.isa else "RTL"
    spec = load_spec(args.spec)
    output = prepare_output(args.output, "--output", (".npy", ".npz")) if args.output else None
    x = load_npy(args.input, "--input")
    proto, what = load_model_proto(args.model)
    in_name = _model_input(proto, what, x)
    outs = [o.name for o in proto.graph.output]
    if output is not None and output.suffix.lower() == ".npy" and len(outs) != 1:
        raise AccelgenError(f"{what} has {len(outs)} outputs ({', '.join(outs)}); give --output "
                            f"a .npz file to hold them all")
    labels = _labels(args.labels, x.shape[0]) if args.labels else None
    graph = load(args.model, batch=x.shape[0])
    steps = place(spec, graph)
    inputs = {in_name: x}
    accel = [s for s in steps if s.on_accelerator]
    model_total = sum(s.model.cycles for s in accel)
    on_chip = sum(s.requant_on_chip for s in accel)
    where_rq = ("on the accelerator (STORE path)" if accel and on_chip == len(accel) else
                "on the host" if not on_chip else f"on the accelerator for {on_chip} layers")
    if not args.json:
        _print_header(args, graph, what, spec, x, in_name, steps, where_rq, where=where, sim=sim,
                      backend=backend, parallel=parallel)

    def started(step, i):
        extra = step.pool if step.pool is not None else step.add
        pooled = f" + {extra.name} on its STORE path" if extra is not None else ""
        p.start(f"{step.hw.layer.describe()}{pooled} on {where}, model {step.model.cycles:,} "
                f"cycles",
                f"{step.node.name} on {where} (model {step.model.cycles:,} cycles)")

    def finished(step, r):
        cyc = (f"{r.cycles:,} cycles (model {r.model_cycles:,}"
               + (", equal)" if r.cycles == r.model_cycles else ", DIFFERENT)")
               if r.cycles is not None else f"model {r.model_cycles:,} cycles")
        p.done(f"{r.node}: {cyc}, {r.compared} "
               + ("equal to the reference" if r.equal else "DIFFER from the reference")
               + f", {r.seconds:.1f} s")

    with Items(len(accel), "layers", quiet=args.json) as p:
        if parallel:
            net = netrun.verify(spec, graph, inputs, steps, jobs=args.jobs,
                                scheduler=args.scheduler, backend=backend, sim=sim,
                                driver=args.driver or "native", work_dir=args.work_dir,
                                on_done=finished)
        else:
            net = netrun.run(spec, graph, inputs, steps, backend=backend, sim=sim,
                             driver=args.driver or "native", work_dir=args.work_dir,
                             on_start=started, on_done=finished)
    outputs = netrun.model_outputs(proto, graph, net.env)
    check = _check(proto, graph, inputs, net.env, outputs) if args.check else None
    if output is not None:
        _write_output(output, outputs)

    layers_ok = all(r.equal for r in net.layers)
    cycles_ok = all(r.cycles == r.model_cycles for r in net.layers if r.cycles is not None)
    match = layers_ok and (check is None or check["equal"])
    rows = _rows(graph, steps, net, where)
    host = _host_ops(steps)
    accuracy = None
    if labels is not None:
        accuracy = {"run": _accuracy(labels, outputs)}
        if check is not None:
            accuracy["onnxruntime"] = _accuracy(labels, check["onnxruntime_outputs"])
    wall = time.monotonic() - t_start
    if args.json:
        summary = {
            "model": str(args.model), "graph": graph.name, "spec": spec.name,
            "backend": backend, "sim": sim if backend == "rtl" else None,
            "mode": "parallel" if parallel else "chained",
            "jobs": args.jobs, "scheduler": args.scheduler,
            "driver": (args.driver or "native") if backend == "rtl" else None,
            "input": {"name": in_name, "shape": list(x.shape), "dtype": "float32"},
            "outputs": [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype)}
                        for k, v in outputs.items()],
            "output_file": str(output) if output else None,
            "nodes": rows, "host_ops": host,
            "cycles": sum(r.cycles for r in net.layers) if backend == "rtl" else None,
            "model_cycles": model_total,
            "layers_equal": layers_ok, "cycles_equal": cycles_ok if backend == "rtl" else None,
            "check": None if check is None else {k: v for k, v in check.items()
                                                 if k != "onnxruntime_outputs"},
            "accuracy": accuracy, "match": match, "wall_seconds": round(wall, 2)}
        print(json.dumps(summary, indent=2, default=_json_default))
        return 0 if match else 1

    _print_report(rows, net, host, model_total, check, accuracy, labels, outputs, output,
                  where=where, backend=backend, parallel=parallel, match=match, wall=wall)
    return 0 if match else 1


def _print_header(args, graph, what, spec, x, in_name, steps, where_rq, *, where, sim, backend,
                  parallel):
    """The run's first lines: what runs where, its input, its nodes and the model's cycles."""
    accel = [s for s in steps if s.on_accelerator]
    model_total = sum(s.model.cycles for s in accel)
    label = (f"{where} on {sim} ({args.driver or 'native'} driver)" if backend == "rtl"
             else "ISA model (no timing)")
    if parallel:
        label += (f", layers in parallel on {args.jobs} local processes" if args.jobs
                  else f", layers in parallel on the Dask cluster at {args.scheduler}")
        label += " from the reference's inputs"
    print(f"accelgen run: {graph.name} ({what}) on {spec.name} ({spec.label}), {label}")
    print(f"  input        {in_name} {tuple(x.shape)} float32, batch {x.shape[0]}")
    fused = [s for s in steps if s.fused_into]
    kinds = [f"{sum(s.node.op == op for s in fused)} {op}" for op in ("MaxPool", "QLinearAdd")
             if any(s.node.op == op for s in fused)]
    pooled = f", {' and '.join(kinds)} on their STORE path" if fused else ""
    print(f"  nodes        {len(steps)}: {len(accel)} layers on the accelerator "
          f"(model {model_total:,} cycles){pooled}, "
          f"{len(steps) - len(accel) - len(fused)} on the host; "
          f"requantisation {where_rq}", flush=True)


def _write_output(output, outputs):
    """Write the model's outputs to exactly ``output`` (np.save(str) may add .npy)."""
    import numpy as np
    try:
        with open(output, "wb") as f:
            if output.suffix.lower() == ".npz":
                np.savez(f, **outputs)
            else:
                np.save(f, next(iter(outputs.values())))
    except OSError as e:
        raise AccelgenError(f"cannot write {output}: {e.strerror}") from None


def _print_report(rows, net, host, model_total, check, accuracy, labels, outputs, output, *,
                  where, backend, parallel, match, wall):
    """The per-node table and the summary lines after a run."""
    print(f"{'node':<28} {'op':<26} {'where':<5} {'cycles':>12} {'model':>12}  "
          f"{'on host':<12} {'s':>6}")
    for r in rows:
        acc = ("" if r["where"] == "host" or r.get("equal", True)
               else f"  {r['compared'].upper()} DIFFER")
        on_host = ("all" if r["where"] == "host" else
                   f"in {r['fused_into']}" if "fused_into" in r else
                   ", ".join(r["host_ops"]) or "-")
        print(f"{r['node'][:28]:<28} {r['op'][:26]:<26} {r['where']:<5} "
              f"{_fmt(r.get('cycles')) if r['where'] != 'host' else '':>12} "
              f"{_fmt(r.get('model_cycles')) if r['where'] != 'host' else '':>12}  "
              f"{on_host:<12} "
              f"{r['seconds']:>6.2f}{acc}")
    rtl_total = sum(r.cycles for r in net.layers) if backend == "rtl" else None
    print(f"{'total':<28} {'':<26} {'':<5} {_fmt(rtl_total):>12} {model_total:>12,}")
    print("  host ops     " + "; ".join(
        f"{op} ({len(ns)}: {', '.join(ns)})" if len(ns) > 1 else f"{op} ({ns[0]})"
        for op, ns in host.items()))
    n = len(net.layers)
    eq = sum(r.equal for r in net.layers)
    what = " and ".join(dict.fromkeys(r.compared for r in net.layers)) or "outputs"
    line = f"{eq} of {n} layers' {what} equal to the numpy reference" + (
        " (each run from the reference's input)" if parallel else "")
    if backend == "rtl":
        line += (f"; RTL cycles == model on "
                 f"{sum(r.cycles == r.model_cycles for r in net.layers)} of {n}")
    print(f"  layers       {line}")
    if check is not None:
        for i, text in enumerate(_describe_check(check, where)):
            print(f"  {'check' if i == 0 else '':<12} {text}")
    if accuracy is not None:
        print(f"  accuracy     {100 * accuracy['run']:.2f}% on {len(labels)} labelled items"
              + (f" (onnxruntime {100 * accuracy['onnxruntime']:.2f}%)"
                 if "onnxruntime" in accuracy else ""))
    for k, v in outputs.items():
        print(f"  output       {k} {tuple(v.shape)} {v.dtype}"
              + (f" -> {output}" if output is not None else ""))
    print(f"  result       {'PASS' if match else 'FAIL'}"
          + ("" if check is not None else " (layers against the numpy reference; --check adds "
                                          "onnxruntime)"))
    print(f"  wall time    {wall:.1f} s")


def _json_default(v):
    import numpy as np
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v))


def add_parser(sub) -> None:
    """The ``run`` command's parser."""
    r = sub.add_parser("run", help="run a quantized ONNX network end to end, its conv, FC and "
                                   "global-average-pool layers "
                                   "on the generated RTL, and write its output as onnxruntime "
                                   "would")
    r.add_argument("spec", help=SPEC_HELP)
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
                   help="run the accelerator's layers (conv, FC, global average pool) on the "
                        "ISA reference model instead of the RTL "
                        "(fast, no cycle counts)")
    r.add_argument("--check", action="store_true",
                   help="also run onnxruntime and the numpy reference: compare every tensor, "
                        "name the first differing node; exit 1 on any difference")
    r.add_argument("--labels", help="class indices, one per batch item (.npy): print the "
                                    "top-1 accuracy")
    r.add_argument("--work-dir", type=abs_path, help="keep the simulation's files here: the "
                                                     "chained run's, or each layer's job with "
                                                     "--jobs (default: a temporary folder, "
                                                     "removed)")
    r.add_argument("--jobs", type=int_at_least(1),
                   help="verify the layers in parallel on N local processes, each from the "
                        "numpy reference's input for that layer (default: the chained run)")
    r.add_argument("--scheduler", help="as --jobs, on the Dask cluster of this scheduler "
                                       "(tcp://host:8786)")
    r.add_argument("--json", action="store_true", help="print a machine-readable summary")
    r.set_defaults(func=cmd_run)
