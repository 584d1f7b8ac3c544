"""Importing quantized ONNX models (gen/network/onnx_import.py): the node graph, its quantisation
parameters, agreement with the graph onnxruntime executes, the digits model, and bad input."""

import logging
import re
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import onnx  # noqa: E402
from onnx import helper  # noqa: E402

from gen.errors import AccelgenError  # noqa: E402
from gen.network import digits, load  # noqa: E402
from gen.network.zoo import NetBuilder, quantize  # noqa: E402
from sim import netgolden, ortref  # noqa: E402

logging.getLogger().setLevel(logging.ERROR)


def _net(residual=True, n=1):
    b = NetBuilder("t", (n, 3, 12, 12), 1)
    x = b.relu(b.conv(b.input, 8, 3))
    x = b.maxpool(x, 2)
    y = b.conv(x, 8, (1, 3), pads=(0, 1, 0, 1))
    x = b.relu(b.add(y, x)) if residual else b.relu(y)
    x = b.avgpool(x, 3, 1, pads=1)
    x = b.conv(x, 8, 3, 2, group=8)
    x = b.flatten(b.gap(x))
    return b.model(b.softmax(b.gemm(x, 10)))


def _cal(shape=(1, 3, 12, 12)):
    rng = np.random.default_rng(0)
    return [rng.normal(size=shape).astype(np.float32) for _ in range(3)]


# onnxruntime's executed op for each of ours (NHWC and contrib variants)
_ORT_OP = {"QLinearConv": "QLinearConv", "QLinearMatMul": ("QGemm", "QLinearMatMul"),
           "QLinearAdd": "QLinearAdd", "QLinearAveragePool": "QLinearAveragePool",
           "QLinearGlobalAveragePool": "QLinearGlobalAveragePool",
           "QLinearSoftmax": "QLinearSoftmax", "MaxPool": ("MaxPool", "NhwcMaxPool"),
           "QuantizeLinear": "QuantizeLinear", "DequantizeLinear": "DequantizeLinear"}


@pytest.mark.parametrize("fmt,act,per_channel", [("qdq", "uint8", False), ("qdq", "uint8", True),
                                                 ("qoperator", "uint8", True)])
def test_graph_matches_what_onnxruntime_executes(fmt, act, per_channel):
    qm = quantize(_net(), _cal(), fmt=fmt, activations=act, per_channel=per_channel)
    g = load(qm)
    ours = Counter(_ORT_OP[n.op] if isinstance(_ORT_OP.get(n.op), str) else n.op
                   for n in g.nodes if n.op in _ORT_OP)
    theirs = Counter(op for op in ortref.optimized_ops(qm)
                     if op not in ("Transpose", "Flatten", "Reshape"))
    for op in ("QGemm", "QLinearMatMul"):
        ours["QLinearMatMul"] -= theirs.pop(op, 0)
    ours["MaxPool"] -= theirs.pop("NhwcMaxPool", 0) + theirs.pop("MaxPool", 0)
    assert +ours == +theirs
    assert "Conv" not in theirs                     # nothing left in float


def test_quantisation_parameters():
    qm = quantize(_net(), _cal(), activations="uint8", per_channel=True)
    g = load(qm)
    conv = g.nodes[1]
    assert conv.op == "QLinearConv" and conv.source[0].startswith("conv")
    p = g.params(conv)
    assert p["w_scale"].shape == (8,) and len(set(p["w_scale"].tolist())) == 8
    assert p["w_zp"].tolist() == [0] * 8 and p["bias"].dtype == np.int32
    assert p["x_zp"] == g.q(g.inputs[0] + "_QuantizeLinear_Output").zp
    # the ReLU after the conv is folded into the output range: zero point at the bottom
    assert p["relu_folded"] and p["clamp"] == (0, 255) and p["y_zp"] == 0
    assert p["clamp_real"][0] == 0.0
    fc = next(n for n in g.nodes if n.op == "QLinearMatMul")
    assert g.params(fc)["w"].shape == (8, 10)
    assert [r["op"] for r in g.summary()][-2:] == ["QLinearSoftmax", "DequantizeLinear"]


def test_int8_qdq_is_run_as_uint8():
    """onnxruntime x86 turns single-consumer int8 QDQ pairs into uint8 (zero point + 128); the
    graph holds them so and the reference agrees bit for bit."""
    qm = quantize(_net(residual=False), _cal(), activations="int8")
    g = load(qm)
    assert g.s8_to_u8 and all(g.tensors[t].dtype == "uint8" for t in g.s8_to_u8)
    x = _cal()[0] * 2
    cmp = ortref.compare(qm, g, netgolden.run(g, x), {"input": x})
    assert cmp.equal and cmp.intermediates, cmp.describe()


def test_int8_residual_is_refused_because_onnxruntime_runs_it_in_float():
    qm = quantize(_net(residual=True), _cal(), activations="int8")
    assert "Conv" in ortref.optimized_ops(qm)       # onnxruntime's own graph: float Conv
    with pytest.raises(AccelgenError, match=r"int8 activation '.*' feeds 2 nodes; onnxruntime on "
                                            r"x86 runs .* in float.*activation_type=QUInt8"):
        load(qm)


def test_dynamic_batch_is_set():
    m = digits.export(_digits_params())
    qm = quantize(m, [np.zeros((1, 1, 8, 8), np.float32)])
    assert load(qm).tensors["input"].shape == (1, 1, 8, 8)
    assert load(qm, batch=5).tensors["input"].shape == (5, 1, 8, 8)


def _digits_params():
    rng = np.random.default_rng(0)
    p, c = {}, 1
    for name, k in digits.ARCH:
        p[name + "_w"], p[name + "_b"] = rng.normal(size=(k, c, 3, 3)), np.zeros(k)
        c = k
    p["fc_w"], p["fc_b"] = rng.normal(size=(10, c)), np.zeros(10)
    return p


def test_digits_model_reference_equals_onnxruntime():
    """The committed digits model on its whole test split: the reference is bit-exact with
    onnxruntime on every tensor and so are the predictions and accuracy."""
    _, _, x, y, idx = digits.load_split()
    assert len(y) == 359 and idx[:3].tolist() == sorted(idx.tolist())[:3]
    assert digits.MODEL_PATH.stat().st_size < 100_000
    m = onnx.load(digits.MODEL_PATH)
    g = load(m, batch=len(y))
    env = netgolden.run(g, x)
    cmp = ortref.compare(m, g, env, {"input": x})
    assert cmp.equal and cmp.intermediates, cmp.describe()
    acc = float((env["probabilities"].argmax(axis=1) == y).mean())
    assert acc > 0.97


# ---- bad input -----------------------------------------------------------------------------

def test_not_onnx(tmp_path):
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x00\x01 definitely not protobuf \xff\xfe" * 10)
    with pytest.raises(AccelgenError, match=r"^.*model\.onnx is not an ONNX model .*quantized with "
                                            r"onnxruntime$"):
        load(p)
    with pytest.raises(AccelgenError, match=r"cannot read ONNX model .*missing\.onnx"):
        load(tmp_path / "missing.onnx")


def test_float_model_is_refused():
    with pytest.raises(AccelgenError, match=r"^t is a float \(unquantized\) model: .*"
                                            r"quantize_static first$"):
        load(_net())


def test_unsupported_op_is_named():
    qm = quantize(_net(residual=False), _cal(), activations="uint8")
    out = qm.graph.output[0].name
    qm.graph.node.append(helper.make_node("Sigmoid", [out], ["sig"], name="head"))
    qm.graph.output[0].name = "sig"
    with pytest.raises(AccelgenError, match=r"node 'head' \(Sigmoid\): operator Sigmoid is not "
                                            r"supported; supported: "):
        load(qm)


def test_dynamic_spatial_shape_is_refused():
    qm = quantize(_net(residual=False), _cal(), activations="uint8")
    dim = qm.graph.input[0].type.tensor_type.shape.dim[2]
    dim.ClearField("dim_value")
    dim.dim_param = "H"
    with pytest.raises(AccelgenError, match=re.escape(
            "input 'input' has a dynamic dimension 2 (H); export the model with a fixed input "
            "shape")):
        load(qm)


def test_unquantized_node_is_named():
    """A Conv left in float (excluded from quantisation) is named with what to do."""
    b = NetBuilder("t", (1, 3, 8, 8), 1)
    x = b.conv(b.relu(b.conv(b.input, 4, 3)), 4, 3)
    m = b.model(b.flatten(b.gap(x)))
    last = [n for n in m.graph.node if n.op_type == "Conv"][-1].name
    qm = quantize(m, _cal((1, 3, 8, 8)), activations="uint8", nodes_to_exclude=[last])
    with pytest.raises(AccelgenError, match=rf"node '{last}' \(Conv\): weight .* is not "
                                            rf"quantized .* so onnxruntime computes this node in "
                                            rf"float; quantize the whole model"):
        load(qm)


def test_bad_inputs_to_the_reference():
    qm = quantize(_net(residual=False), _cal(), activations="uint8")
    g = load(qm)
    with pytest.raises(AccelgenError, match=r"input 'input' must be float32 .*not float64"):
        netgolden.run(g, np.zeros((1, 3, 12, 12)))
    with pytest.raises(AccelgenError, match=r"input 'input' has shape \(1, 3, 12, 11\) but the "
                                            r"model takes \(1, 3, 12, 12\)"):
        netgolden.run(g, np.zeros((1, 3, 12, 11), np.float32))
