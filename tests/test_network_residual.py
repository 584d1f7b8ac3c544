"""Residual QLinearAdds on the STORE path of the conv producing one of their inputs
(gen/network/addfuse.py, gen/residual.py): a tiny ResNet-like network through ``accelgen run
--isa`` with its Adds on the chip, bit-exact with onnxruntime and the numpy reference, on every
engine with the residual unit; the Adds stay on the host, with their reason, where they cannot
run there."""

import dataclasses
import json
import logging

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from gen.cli import main  # noqa: E402
from gen.network.zoo import NetBuilder, quantize  # noqa: E402

logging.getLogger().setLevel(logging.ERROR)     # quantize_static's advice to pre-process

SHAPE = (1, 4, 8, 8)


def _tiny(fmt="qdq", act="uint8", per_channel=True, seed=3):
    """Two residual blocks: the first adds a conv's output to the block's input (computed
    before), the second a 3x3 stride-2 conv's to a 1x1 downsampling conv's (the later of the
    two convs takes the Add), then GAP, a classifier and Softmax."""
    b = NetBuilder("tinyres", SHAPE, seed=seed)
    x = b.relu(b.conv(b.input, 8, 3, 1))
    y = b.relu(b.conv(x, 8, 3, 1))
    x = b.relu(b.add(b.conv(y, 8, 3, 1), x))
    y = b.conv(x, 16, 3, 2)
    x = b.relu(b.add(y, b.conv(x, 16, 1, 2, pads=0)))
    m = b.model(b.softmax(b.gemm(b.flatten(b.gap(x)), 5)))
    rng = np.random.default_rng(1)
    cal = [rng.normal(size=SHAPE).astype(np.float32) for _ in range(3)]
    return quantize(m, cal, fmt=fmt, activations=act, per_channel=per_channel)


def _spec_file(tmp_path, base="ws_8x8", residual=True, **extra):
    from gen.spec import load_spec
    import tomllib
    from pathlib import Path
    text = Path(f"specs/{base}.toml").read_text()
    data = tomllib.loads(text)
    data["name"] = f"{base}_res"
    data.setdefault("postproc", {}).update({"enabled": True, "out_bits": 8,
                                            "residual": residual})
    for k, v in extra.items():
        data.setdefault(k, {}).update(v)
    lines = [f'name = "{data.pop("name")}"', f'dataflow = "{data.pop("dataflow")}"']
    for sec, vals in data.items():
        lines.append(f"[{sec}]")
        for k, v in vals.items():
            lines.append(f"{k} = {json.dumps(v)}")
    p = tmp_path / f"{base}_res.toml"
    p.write_text("\n".join(lines) + "\n")
    load_spec(str(p))
    return p


def _run(tmp_path, capsys, spec, model, *extra):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(model.SerializeToString())
    np.save(tmp_path / "x.npy", np.random.default_rng(2).normal(size=SHAPE).astype(np.float32))
    rc = main(["run", str(spec), str(path), "--input", str(tmp_path / "x.npy"), "--isa",
               "--check", "--json", *extra])
    s = json.loads(capsys.readouterr().out)
    return rc, s


@pytest.mark.parametrize("base", ["ws_8x8", "os_8x8", "nlr_8x8", "is_8x8", "rs_12x14"])
def test_residual_adds_on_the_store_path_bit_exact(tmp_path, capsys, base):
    rc, s = _run(tmp_path, capsys, _spec_file(tmp_path, base), _tiny())
    assert rc == 0 and s["match"] and s["check"]["equal"] and s["layers_equal"]
    adds = [n for n in s["nodes"] if n["op"] == "QLinearAdd"]
    assert len(adds) == 2 and all(a["where"] == "ISA" and "fused_into" in a for a in adds)
    convs = {n["node"]: n for n in s["nodes"] if n["op"] == "QLinearConv"}
    assert all(convs[a["fused_into"]]["equal"] for a in adds)
    assert "QLinearAdd" not in s["host_ops"]


@pytest.mark.parametrize("fmt, act, per_channel", [("qdq", "uint8", False),
                                                   ("qoperator", "uint8", True)])
def test_residual_adds_formats(tmp_path, capsys, fmt, act, per_channel):
    """(int8 QDQ activations feeding two nodes are refused at import: onnxruntime runs such
    groups in float on x86, gen/network/onnx_import.py.)"""
    rc, s = _run(tmp_path, capsys, _spec_file(tmp_path), _tiny(fmt, act, per_channel, seed=7))
    assert rc == 0 and s["match"] and s["check"]["equal"]
    assert all(n["where"] == "ISA" for n in s["nodes"] if n["op"] == "QLinearAdd")


def test_adds_stay_on_the_host_without_the_residual_unit(tmp_path, capsys):
    rc, s = _run(tmp_path, capsys, "ws_8x8", _tiny())
    assert rc == 0 and s["match"] and s["check"]["equal"]
    adds = [n for n in s["nodes"] if n["op"] == "QLinearAdd"]
    assert len(adds) == 2 and all(a["where"] == "host" for a in adds)
    assert all("has no residual unit ([postproc] residual)" in a["note"] for a in adds)
    assert len(s["host_ops"]["QLinearAdd"]) == 2


def test_jobs_equal_to_chained_with_adds(tmp_path, capsys):
    spec = _spec_file(tmp_path)
    rc, chained = _run(tmp_path, capsys, spec, _tiny())
    rc2, par = _run(tmp_path, capsys, spec, _tiny(), "--jobs", "1")
    assert rc == rc2 == 0 and par["match"]
    rows = {n["node"]: n.get("equal") for n in chained["nodes"]}
    assert rows == {n["node"]: n.get("equal") for n in par["nodes"]}


def _graph(spec_path):
    from gen.network.onnx_import import load
    from gen.spec import load_spec
    return load_spec(str(spec_path)), load(_tiny())


def test_why_an_add_stays_on_the_host(tmp_path):
    """The placement's reasons: the other input computed after the conv (the earlier conv of a
    downsampling block), parameters outside the unit's domain, a conv output read twice."""
    from gen.network.addfuse import fusable_add
    from gen.network.placement import place
    spec, g = _graph(_spec_file(tmp_path))
    adds = [n for n in g.nodes if n.op == "QLinearAdd"]
    first = next(n for n in g.nodes if n.output == adds[0].inputs[0])
    assert first.op == "QLinearConv" and fusable_add(spec, g, first)[1] is adds[0]
    # the block's input (the other one) feeds a conv too: it is not a fusable conv of this Add
    shared = next(n for n in g.nodes if n.output == adds[0].inputs[1])
    _, fused, why = fusable_add(spec, g, shared)
    assert fused is None and "is read by more than the Add" in why
    convs = [n for n in g.nodes if n.op == "QLinearConv" and n.output in adds[1].inputs]
    early, late = convs
    _, fused, why = fusable_add(spec, g, early)
    assert fused is None and "is computed after" in why
    assert fusable_add(spec, g, late)[1] is adds[1]
    # an output scale that makes rA and rB too large for the unit: the Add stays, with why
    q = g.tensors[adds[0].output].q
    g.tensors[adds[0].output].q = dataclasses.replace(q, scale=np.array(1e-30, np.float32))
    _, fused, why = fusable_add(spec, g, first)
    assert fused is None and "outside the residual unit's range" in why
    step = next(s for s in place(spec, g) if s.node is adds[0])
    assert step.where == "host" and "outside the residual unit's range" in step.note


def test_netisa_runs_the_adds_on_the_chip(tmp_path):
    """sim/netisa.py: each fused Add's output comes from the ISA machine with its conv's, and
    every model output equals the numpy reference's."""
    from sim import netgolden, netisa
    spec, g = _graph(_spec_file(tmp_path))
    x = np.random.default_rng(4).normal(size=SHAPE).astype(np.float32)
    env, runs = netisa.run(spec, g, x)
    ref = netgolden.run(g, x)
    assert sorted(r.add for r in runs if r.add) == sorted(n.name for n in g.nodes
                                                          if n.op == "QLinearAdd")
    assert all(r.reference_equal for r in runs)
    for n in g.nodes:
        if n.output in env:
            np.testing.assert_array_equal(env[n.output], ref[n.output], err_msg=n.name)
    assert all(o in env for o in g.outputs)


def test_an_add_of_no_conv_output_stays_on_the_host(tmp_path, capsys):
    b = NetBuilder("poolsum", SHAPE, seed=2)
    x = b.relu(b.conv(b.input, 8, 3, 1))
    x = b.add(b.maxpool(x, 3, 1, 1), b.avgpool(x, 3, 1, 1))
    m = b.model(b.gemm(b.flatten(b.gap(x)), 5))
    rng = np.random.default_rng(1)
    qm = quantize(m, [rng.normal(size=SHAPE).astype(np.float32) for _ in range(2)],
                  activations="uint8")
    rc, s = _run(tmp_path, capsys, _spec_file(tmp_path), qm)
    assert rc == 0 and s["match"] and s["check"]["equal"]
    [add] = [n for n in s["nodes"] if n["op"] == "QLinearAdd"]
    assert add["where"] == "host" and "neither input is a QLinearConv's output" in add["note"]
