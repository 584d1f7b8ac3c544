"""``accelgen run`` (a whole ONNX network, conv/FC layers on the RTL or the ISA model) and
``accelgen estimate --onnx``: outputs as onnxruntime returns them, --check naming the first
differing node, bad input refused in one line with nothing written."""

import json
import logging

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from gen.cli import main  # noqa: E402
from gen.network import digits  # noqa: E402
from gen.network.zoo import NetBuilder, quantize  # noqa: E402

logging.getLogger().setLevel(logging.ERROR)     # quantize_static's advice to pre-process

MODEL = str(digits.MODEL_PATH)
TINY_SPEC = """
name = "net_ws"
[array]
rows = 4
cols = 4
[buffers]
input_depth = 256
weight_depth = 128
output_depth = 128
"""


@pytest.fixture(scope="module")
def digits_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("digits")
    _, _, x, y, _ = digits.load_split()
    np.save(d / "x.npy", x[:12])
    np.save(d / "y.npy", y[:12])
    return d, x[:12], y[:12]


def _ort(model, x):
    from sim import ortref
    from pathlib import Path
    s = ortref.session(Path(model).read_bytes())
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _err_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


LAYERS = ["conv2", "conv5", "conv9", "globalaveragepool11", "gemm14"]
# ws_8x8 requantises on the STORE path (its [postproc] unit); os_8x8 has no unit: the host does
SPECS = [("ws_8x8", True), ("os_8x8", False)]


@pytest.mark.parametrize("spec,on_chip", SPECS)
def test_digits_on_isa_model_as_onnxruntime(digits_data, tmp_path, capsys, spec, on_chip):
    d, x, y = digits_data
    out = tmp_path / "probs.npy"
    rc = main(["run", spec, MODEL, "--input", str(d / "x.npy"), "--isa", "--check",
               "--labels", str(d / "y.npy"), "--output", str(out), "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["match"]
    got, want = np.load(out), _ort(MODEL, x)
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape == (12, 10)
    np.testing.assert_array_equal(got, want)
    where = {n["node"]: n["where"] for n in s["nodes"]}
    # ws_8x8 pools maxpool7 on conv5's STORE path ([pool]); os_8x8 on the host
    assert [n for n, w in where.items() if w == "ISA"] == (
        [*LAYERS[:2], "maxpool7", *LAYERS[2:]] if on_chip else LAYERS)
    if on_chip:
        assert "requantise" not in s["host_ops"] and "MaxPool" not in s["host_ops"]
        pool = next(n for n in s["nodes"] if n["node"] == "maxpool7")
        assert pool["fused_into"] == "conv5" and pool["host_ops"] == []
        # conv5's own output never leaves the chip: every other tensor is compared
        assert s["check"]["run_vs_reference"]["tensors"] == len(s["nodes"]) - 1
    else:
        assert s["host_ops"]["requantise"] == LAYERS
        assert "MaxPool" in s["host_ops"]
    assert {"QuantizeLinear", "QLinearSoftmax", "DequantizeLinear"} <= set(s["host_ops"])
    assert "QLinearGlobalAveragePool" not in s["host_ops"]      # on the accelerator
    c = s["check"]
    assert c["equal"] and c["reference_vs_onnxruntime"]["tensors"] == len(s["nodes"])
    assert c["run_vs_reference"]["equal"] and c["outputs_vs_onnxruntime"]["equal"]
    assert s["accuracy"]["run"] == s["accuracy"]["onnxruntime"] == pytest.approx(
        float((want.argmax(1) == y).mean()))
    layers = [n for n in s["nodes"] if n["where"] == "ISA" and "fused_into" not in n]
    assert len(layers) == len(LAYERS) and all(n["equal"] for n in layers)
    assert {n["compared"] for n in layers} == {"outputs" if on_chip else "accumulators"}
    assert s["model_cycles"] == sum(n["model_cycles"] for n in layers)


def test_digits_pooled_accumulators_on_nlr(digits_data, capsys):
    """nlr_8x8 has the pooling unit but no post-processing unit: conv5's int32 accumulators are
    max-pooled on its STORE path and requantised on the host (max commutes with the monotone
    requantisation): bit-exact with onnxruntime."""
    d, _, _ = digits_data
    rc = main(["run", "nlr_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--check",
               "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["match"] and s["check"]["equal"]
    nodes = {n["node"]: n for n in s["nodes"]}
    assert nodes["maxpool7"]["fused_into"] == "conv5" and "MaxPool" not in s["host_ops"]
    assert nodes["conv5"]["compared"] == "accumulators" and nodes["conv5"]["equal"]
    assert "conv5" in s["host_ops"]["requantise"]


def test_text_summary_lists_host_ops(digits_data, capsys):
    d, _, _ = digits_data
    assert main(["run", "os_8x8", MODEL, "--input", str(d / "x.npy"), "--isa"]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert lines[0].startswith("accelgen run: digits_cnn")
    assert "requantisation on the host" in lines[2]
    row = next(ln for ln in lines if ln.startswith("conv5 "))
    assert "QLinearConv" in row and " ISA " in row and "requantise" in row
    assert "host ops     QuantizeLinear (input_QuantizeLinear); requantise (5: conv2, conv5, " \
           "conv9, globalaveragepool11, gemm14); MaxPool (maxpool7)" in cap.out
    assert "5 of 5 layers' accumulators equal" in cap.out
    assert "result       PASS" in cap.out
    assert "[5/5] gemm14: model" in cap.err and "accumulators equal to the reference" in cap.err

    assert main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa"]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert "requantisation on the accelerator (STORE path)" in lines[2]
    row = next(ln for ln in lines if ln.startswith("conv5 "))
    assert "requantise" not in row
    assert "host ops     QuantizeLinear (input_QuantizeLinear); Reshape (flatten12)" in cap.out
    assert "1 MaxPool on their STORE path" in lines[2]
    row = next(ln for ln in lines if ln.startswith("maxpool7 "))
    assert " ISA " in row and "in conv5" in row
    assert "5 of 5 layers' outputs equal" in cap.out


@pytest.mark.parametrize("spec,on_chip", SPECS)
def test_check_names_a_perturbed_hardware_layer(digits_data, monkeypatch, capsys, spec, on_chip):
    """A fault in one layer's result (as a broken array or requantiser would give) is caught by
    the per-layer check and named by --check with its index and both values."""
    from gen.network import lower
    if on_chip:            # the node's requantised output
        real_out = lower.outputs_on_isa

        def faulty(spec, graph, node, hw, layer=None):
            y = real_out(spec, graph, node, hw, layer)
            if node.name == "conv5":          # (its 2x2-pooled output on ws_8x8)
                y = y.copy()
                y[1, 3, 2, 3] ^= 1
            return y

        monkeypatch.setattr(lower, "outputs_on_isa", faulty)
    else:                  # its int32 accumulators
        real_acc = lower.accumulators_on_isa

        def faulty(spec, hw, layer=None):
            acc = real_acc(spec, hw, layer)
            if hw.node == "conv5":
                acc = acc.copy()
                acc[1, 3, 2, 4] += 4000
            return acc

        monkeypatch.setattr(lower, "accumulators_on_isa", faulty)
    d, _, _ = digits_data
    rc = main(["run", spec, MODEL, "--input", str(d / "x.npy"), "--isa", "--check"])
    out = capsys.readouterr().out
    what = "outputs" if on_chip else "accumulators"
    assert rc == 1
    assert "result       FAIL" in out
    assert f"4 of 5 layers' {what} equal" in out
    if on_chip:   # conv5's output never leaves the chip: its pooled output is maxpool7's
        assert ("ISA run vs numpy reference: first difference at node 'maxpool7' (MaxPool)"
                in out)
        assert "index [1, 3, 2, 3]" in out
    else:
        assert ("ISA run vs numpy reference: first difference at node 'conv5' (QLinearConv)"
                in out)
        assert "index [1, 3, 2, 4]" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("conv5 "))
    assert f"{what.upper()} DIFFER" in row


def test_check_names_the_node_onnxruntime_disagrees_with(digits_data, monkeypatch, capsys):
    """A fault in the numpy reference itself (here its max-pool) is named against onnxruntime."""
    from sim import netgolden
    real = netgolden.run_node

    def faulty(graph, node, env):
        y = real(graph, node, env)
        if node.name == "maxpool7":
            y = y.copy()
            y[0, 2, 1, 3] ^= 1
        return y

    monkeypatch.setattr(netgolden, "run_node", faulty)
    d, _, _ = digits_data
    rc = main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--check",
               "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 1 and not s["match"]
    first = s["check"]["reference_vs_onnxruntime"]["first"]
    assert first["node"] == "maxpool7" and first["index"] == [0, 2, 1, 3]
    assert first["ours"] == first["ort"] ^ 1


def _tiny_model(tmp_path, act="uint8", fmt="qdq"):
    b = NetBuilder("tiny", (2, 3, 6, 5), seed=3)
    x = b.relu(b.conv(b.input, 5, 3, 1, pads=(1, 0, 1, 2)))
    x = b.maxpool(x, 2)
    x = b.gemm(b.flatten(x), 4)
    m = b.model(x)
    rng = np.random.default_rng(0)
    qm = quantize(m, [rng.normal(size=(2, 3, 6, 5)).astype(np.float32) for _ in range(3)],
                  activations=act, per_channel=True, fmt=fmt)
    path = tmp_path / "tiny.onnx"
    path.write_bytes(qm.SerializeToString())
    xin = rng.normal(size=(2, 3, 6, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", xin)
    return path, xin


@pytest.mark.parametrize("postproc,pool", [(True, True), (False, False), (False, True)])
def test_tiny_network_on_icarus(tmp_path, capsys, postproc, pool):
    """A small network end to end on the RTL (Icarus), requantised and max-pooled on the STORE
    path or both on the host: output bit-exact with onnxruntime, RTL cycles equal to the
    model's."""
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC + ("[postproc]\nenabled = true\n" if postproc else "")
                    + ("[pool]\nenabled = true\n" if pool else ""))
    model, x = _tiny_model(tmp_path)
    out = tmp_path / "y.npy"
    rc = main(["run", str(spec), str(model), "--input", str(tmp_path / "x.npy"), "--check",
               "--output", str(out), "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0, s
    np.testing.assert_array_equal(np.load(out), _ort(str(model), x))
    rtl = [n for n in s["nodes"] if n["where"] == "RTL" and "fused_into" not in n]
    assert len(rtl) == 2 and all(n["cycles"] == n["model_cycles"] for n in rtl)
    pooled = [n["node"] for n in s["nodes"] if "fused_into" in n]
    assert len(pooled) == int(pool) and ("MaxPool" in s["host_ops"]) != pool
    assert s["cycles_equal"] and s["cycles"] == s["model_cycles"] > 0
    assert s["sim"] == "icarus" and s["driver"] == "native"
    assert {n["compared"] for n in rtl} == {"outputs" if postproc else "accumulators"}
    assert ("requantise" in s["host_ops"]) != postproc


@pytest.mark.parametrize("fmt,act", [("qoperator", "uint8"), ("qdq", "int8")])
def test_tiny_network_formats_on_isa(tmp_path, capsys, fmt, act):
    """QOperator and int8 QDQ models (per-channel weights, asymmetric pads, a batch of 2) on
    the ISA model: written output equal to onnxruntime's."""
    model, x = _tiny_model(tmp_path, act, fmt)
    out = tmp_path / "y.npy"
    rc = main(["run", "ws_8x8", str(model), "--input", str(tmp_path / "x.npy"), "--isa",
               "--check", "--output", str(out), "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["check"]["equal"], s["check"]
    want = _ort(str(model), x)
    got = np.load(out)
    assert got.dtype == want.dtype and got.shape == want.shape == (2, 4)
    np.testing.assert_array_equal(got, want)


def test_bad_inputs_one_line_nothing_written(digits_data, tmp_path, capsys):
    d, x, _ = digits_data
    out = tmp_path / "o" / "y.npy"

    def refused(args, message):
        rc = main(["run", "ws_8x8", *args, "--output", str(out), "--isa"])
        line = _err_line(capsys)
        assert rc == 2 and message in line, line
        assert not out.exists()

    np.save(tmp_path / "x64.npy", x.astype(np.float64))
    refused([MODEL, "--input", str(tmp_path / "x64.npy")], "--input is float64, but")
    np.save(tmp_path / "xs.npy", x[:, :, :7])
    refused([MODEL, "--input", str(tmp_path / "xs.npy")],
            "--input has shape (12, 1, 7, 8), but")
    refused([MODEL, "--input", str(tmp_path / "missing.npy")], "not found")
    (tmp_path / "bad.onnx").write_bytes(b"not a model at all")
    refused([str(tmp_path / "bad.onnx"), "--input", str(d / "x.npy")], "is not an ONNX model")

    # a float model, and an unsupported op
    b = NetBuilder("f", (1, 1, 8, 8))
    fm = b.model(b.relu(b.conv(b.input, 2, 3)))
    (tmp_path / "float.onnx").write_bytes(fm.SerializeToString())
    np.save(tmp_path / "x1.npy", x[:1])
    refused([str(tmp_path / "float.onnx"), "--input", str(tmp_path / "x1.npy")],
            "float (unquantized) model")
    from onnx import helper
    fm.graph.node.append(helper.make_node("Sigmoid", ["output"], ["sig"], name="sig"))
    fm.graph.output[0].name = "sig"
    rng = np.random.default_rng(0)
    qm = quantize(fm, [rng.normal(size=(1, 1, 8, 8)).astype(np.float32)])
    (tmp_path / "sig.onnx").write_bytes(qm.SerializeToString())
    refused([str(tmp_path / "sig.onnx"), "--input", str(tmp_path / "x1.npy")], "Sigmoid")

    # a layer the spec cannot run
    spec = tmp_path / "acc16.toml"
    spec.write_text('name = "acc16"\n[array]\nrows = 4\ncols = 4\n[precision]\nacc_bits = 16\n')
    rc = main(["run", str(spec), MODEL, "--input", str(d / "x.npy"), "--output", str(out),
               "--isa"])
    assert rc == 2 and "acc_bits >= 32" in _err_line(capsys) and not out.exists()
    spec.write_text('name = "tinybuf"\n[array]\nrows = 4\ncols = 4\n[buffers]\n'
                    'input_depth = 64\nweight_depth = 2\noutput_depth = 64\n')
    rc = main(["run", str(spec), MODEL, "--input", str(d / "x.npy"), "--output", str(out),
               "--isa"])
    line = _err_line(capsys)
    assert rc == 2 and "node 'conv2'" in line and "cannot run on tinybuf" in line, line
    assert not out.exists()

    rc = main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--sim", "icarus"])
    assert rc == 2 and "not both" in _err_line(capsys)
    rc = main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--labels",
               str(d / "x.npy")])
    assert rc == 2 and "--labels must be" in _err_line(capsys)
    rc = main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--output",
               str(tmp_path / "y.txt"), "--isa"])
    assert rc == 2 and "--output" in _err_line(capsys)


def test_estimate_onnx_same_programs_as_run(digits_data, tmp_path, capsys):
    """estimate --onnx times the Programs run runs (cycles per layer equal), and gives the host
    ops' share; --plot draws it; --batch only with --onnx."""
    d, _, _ = digits_data
    assert main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--json"]) == 0
    ran = {n["node"]: n["model_cycles"] for n in json.loads(capsys.readouterr().out)["nodes"]
           if n["where"] == "ISA" and "fused_into" not in n}
    plot = tmp_path / "p.png"
    assert main(["estimate", "ws_8x8", "--onnx", MODEL, "--batch", "12", "--json",
                 "--plot", str(plot)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert {r["layer"]: r["cycles"] for r in s["layers"]} == ran
    assert plot.stat().st_size > 0
    h = s["host"]
    assert "requantise" not in h["by_op"]         # on ws_8x8's STORE path
    assert "MaxPool" not in h["by_op"]            # pooled on conv5's STORE path
    assert next(r for r in s["layers"] if r["layer"] == "conv5")["tiling"]["pool"] == [2, 2]
    assert h["macs"] == s["total"]["macs"] and h["share"] == pytest.approx(
        h["work"] / (h["work"] + h["macs"]))
    assert main(["estimate", "ws_8x8", "os_8x8", "--onnx", MODEL, "--json"]) == 0
    os_host = json.loads(capsys.readouterr().out)["specs"][1]["host"]
    assert os_host["by_op"]["MaxPool"]["work"] == 16 * 4 * 4 * 4      # 2x2 windows
    assert os_host["by_op"]["requantise"] == {"nodes": 5, "work": 8 * 8 * 8 + 16 * 8 * 8
                                              + 32 * 4 * 4 + 32 + 10}
    assert main(["estimate", "ws_8x8", "os_8x8", "--onnx", MODEL]) == 0
    out = capsys.readouterr().out
    assert "conv9" in out and "host (exact numpy, ws_8x8): QuantizeLinear 64" in out
    assert "host (exact numpy, os_8x8): QuantizeLinear 64, requantise x5 2,090" in out
    assert main(["estimate", "ws_8x8", "--network", "lenet5", "--batch", "2"]) == 2
    assert "--batch sets an ONNX model's batch" in _err_line(capsys)
    assert main(["estimate", "ws_8x8", "--onnx", MODEL, "--network", "lenet5"]) == 2
    assert "exactly one of" in _err_line(capsys)


@pytest.mark.slow
@pytest.mark.verilator
def test_digits_whole_test_split_on_rtl(tmp_path, capsys):
    """Item 5 of issue 14: the digits model on its whole 359-image test split on the ws_8x8 RTL:
    accuracy equal to onnxruntime's, every tensor bit-exact, RTL cycles == model per layer
    (3 min on Verilator on a loaded 2-core machine)."""
    _, _, x, y, _ = digits.load_split()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    rc = main(["run", "ws_8x8", MODEL, "--input", str(tmp_path / "x.npy"), "--labels",
               str(tmp_path / "y.npy"), "--check", "--sim", "verilator", "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["match"] and s["check"]["equal"] and s["cycles_equal"]
    assert s["accuracy"]["run"] == s["accuracy"]["onnxruntime"] > 0.98


def test_overlapping_maxpool_stays_on_the_host_with_its_reason(tmp_path, capsys):
    """ResNet's 3x3 stride-2 padded MaxPool after a conv: its windows overlap, so it runs on the
    host and --json says why; a 2x2 one after the next conv is pooled on its STORE path. Both
    bit-exact with onnxruntime (ISA model)."""
    b = NetBuilder("pools", (1, 4, 12, 12), seed=5)
    x = b.maxpool(b.relu(b.conv(b.input, 8, 3, 1, pads=1)), 3, 2, 1)
    x = b.maxpool(b.relu(b.conv(x, 8, 3, 1, pads=1)), 2)
    rng = np.random.default_rng(1)
    m = quantize(b.model(x), [rng.normal(size=(1, 4, 12, 12)).astype(np.float32)
                              for _ in range(2)], activations="uint8", per_channel=True)
    path = tmp_path / "pools.onnx"
    path.write_bytes(m.SerializeToString())
    np.save(tmp_path / "x.npy", rng.normal(size=(1, 4, 12, 12)).astype(np.float32))
    rc = main(["run", "ws_8x8", str(path), "--input", str(tmp_path / "x.npy"), "--isa",
               "--check", "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["match"] and s["check"]["equal"]
    pools = [n for n in s["nodes"] if n["op"] == "MaxPool"]
    assert len(pools) == 2
    assert pools[0]["where"] == "host" and "overlap or pad" in pools[0]["note"]
    assert pools[1]["where"] == "ISA" and "fused_into" in pools[1]


def _run_json(capsys, *args):
    rc = main(["run", *args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def _layer_rows(s):
    return {n["node"]: (n["equal"], n["cycles"], n["model_cycles"]) for n in s["nodes"]
            if "equal" in n}


def test_jobs_on_isa_model_equal_to_chained(digits_data, tmp_path, capsys):
    """--jobs 2: every layer from the reference's input on two worker processes; the output and
    every layer's result equal the chained run's (the default and the reference)."""
    d, x, _ = digits_data
    args = ["ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--check"]
    rc, chained = _run_json(capsys, *args, "--output", str(tmp_path / "a.npy"))
    assert rc == 0 and chained["mode"] == "chained"
    rc, par = _run_json(capsys, *args, "--jobs", "2", "--output", str(tmp_path / "b.npy"))
    assert rc == 0 and par["match"] and par["check"]["equal"]
    assert par["mode"] == "parallel" and par["jobs"] == 2
    assert _layer_rows(par) == _layer_rows(chained) and len(_layer_rows(par)) == 5
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.load(tmp_path / "a.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), _ort(MODEL, x))


def test_jobs_names_a_faulty_layer(digits_data, monkeypatch, capsys):
    """A layer whose hardware result differs fails the parallel run too, named as in the chain
    (the fault travels to the forked workers)."""
    from gen.network import lower
    real_out = lower.outputs_on_isa

    def faulty(spec, graph, node, *args):
        y = real_out(spec, graph, node, *args)
        if node.name == "conv9":
            y = y.copy()
            y[0, 1, 2, 3] ^= 4
        return y

    monkeypatch.setattr(lower, "outputs_on_isa", faulty)
    d, _, _ = digits_data
    rc = main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--jobs", "2",
               "--check"])
    out = capsys.readouterr().out
    assert rc == 1 and "result       FAIL" in out
    assert "4 of 5 layers' outputs equal to the numpy reference (each run from the " \
           "reference's input)" in out
    assert "first difference at node 'conv9' (QLinearConv)" in out and "index [0, 1, 2, 3]" in out


def test_scheduler_runs_layers_on_dask(digits_data, capsys):
    """--scheduler: the same verification on a Dask cluster (gen/parallel.py, the sweep's)."""
    pytest.importorskip("distributed")
    from distributed import LocalCluster
    d, x, _ = digits_data
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        rc, s = _run_json(capsys, "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa",
                          "--scheduler", cluster.scheduler_address)
    assert rc == 0 and s["match"] and s["mode"] == "parallel"
    assert s["scheduler"] == cluster.scheduler_address and len(_layer_rows(s)) == 5


def test_tiny_network_jobs_on_icarus_equal_to_chained(tmp_path, capsys):
    """The RTL sample: --jobs 2 (each layer in its own simulator process, from the reference's
    input) gives the chained run's output and every layer's cycles (== the model's)."""
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SPEC + "[postproc]\nenabled = true\n")
    model, x = _tiny_model(tmp_path)
    args = [str(spec), str(model), "--input", str(tmp_path / "x.npy")]
    rc, chained = _run_json(capsys, *args, "--output", str(tmp_path / "a.npy"))
    assert rc == 0 and chained["cycles_equal"]
    rc, par = _run_json(capsys, *args, "--jobs", "2", "--output", str(tmp_path / "b.npy"),
                        "--work-dir", str(tmp_path / "wd"))
    assert rc == 0 and par["cycles_equal"] and par["mode"] == "parallel"
    assert _layer_rows(par) == _layer_rows(chained)
    assert par["cycles"] == chained["cycles"] == chained["model_cycles"]
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.load(tmp_path / "a.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), _ort(str(model), x))
    assert len(list((tmp_path / "wd").glob("*/result.txt"))) == 2     # a process per layer


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "two"])
def test_bad_jobs_refused_in_one_line(digits_data, capsys, value):
    d, _, _ = digits_data
    with pytest.raises(SystemExit) as e:
        main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--jobs", value])
    line = _err_line(capsys)
    assert e.value.code == 2 and "argument --jobs: must be an integer" in line, line


def test_jobs_and_scheduler_refused_together(digits_data, capsys):
    d, _, _ = digits_data
    rc = main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--jobs", "2",
               "--scheduler", "tcp://127.0.0.1:1"])
    assert rc == 2 and "not both" in _err_line(capsys)
    rc = main(["run", "ws_8x8", MODEL, "--input", str(d / "x.npy"), "--isa", "--scheduler",
               "tcp://127.0.0.1:1"])
    line = _err_line(capsys)
    assert rc == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in line, line
