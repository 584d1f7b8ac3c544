"""The numpy network reference (sim/netgolden.py) against onnxruntime, bit for bit, on every
intermediate tensor; and the conv/FC layers through tiler + frames + ISA model (sim/netisa.py)
against onnxruntime's own int32 accumulators."""

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnxruntime")

from conftest import make_spec  # noqa: E402

from gen.network import load  # noqa: E402
from gen.network.zoo import NetBuilder, quantize  # noqa: E402
from sim import netgolden, netisa, ortref  # noqa: E402

logging.getLogger().setLevel(logging.ERROR)     # quantize_static's advice to pre-process


@st.composite
def networks(draw, residual: bool = False):
    """A random chain of the supported ops and a quantisation mode (``residual``: uint8, with a
    residual block second)."""
    fmt = draw(st.sampled_from(["qdq", "qoperator"]))
    # onnxruntime 1.32 cannot run many QOperator int8 graphs (no int8 QGemm/QLinearMatMul kernel,
    # and its NHWC rewrite of int8 QLinearConv fails in some graphs; the quantizer itself warns
    # against QOperator int8 on x64): QOperator models here are uint8
    act = draw(st.sampled_from(["int8", "uint8"])) if fmt == "qdq" and not residual else "uint8"
    # onnxruntime x86 runs int8 QDQ residual branches in float (refused by the importer, see
    # test_network_import.py)
    residual_ok = act == "uint8"
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 4))
    h, w = draw(st.integers(5, 10)), draw(st.integers(5, 10))
    b = NetBuilder("rand", (n, c, h, w), draw(st.integers(0, 2**16)))
    x = b.input
    for i in range(draw(st.integers(2 if residual else 1, 4))):
        _, c, h, w = b.shapes[x]
        kind = "conv" if i == 0 else "res" if residual and i == 1 else draw(st.sampled_from(
            ["conv", "conv", "dw", "maxpool", "avgpool", "relu", "clip"]
            + (["res"] if residual_ok else [])))
        if kind in ("conv", "dw", "res"):
            kh, kw = draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))
            pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
            dil = draw(st.integers(1, 2)) if kind != "res" and min(h, w) > 2 * kh else 1
            stride = ((1, 1) if kind == "res" else
                      (draw(st.integers(1, 2)), draw(st.integers(1, 2))))
            if kind == "res":
                pads = ((kh - 1) // 2, (kw - 1) // 2, kh // 2, kw // 2)
            if (h + pads[0] + pads[2] - dil * (kh - 1) - 1 < 0
                    or w + pads[1] + pads[3] - dil * (kw - 1) - 1 < 0):
                continue
            k = c if kind != "conv" else draw(st.integers(1, 6))
            y = b.conv(x, k, (kh, kw), stride, pads=pads, dilation=dil,
                       group=c if kind == "dw" else 1, bias=draw(st.booleans()))
            if draw(st.booleans()):
                y = b.relu(y)
            x = b.relu(b.add(y, x)) if kind == "res" else y
        elif kind in ("maxpool", "avgpool") and min(h, w) >= 2:
            kk = draw(st.integers(2, min(3, h, w)))
            pads = tuple(draw(st.integers(0, kk - 1)) for _ in range(4))
            s = draw(st.integers(1, 2))
            x = (b.maxpool(x, kk, s, pads) if kind == "maxpool" else
                 b.avgpool(x, kk, s, pads, count_include_pad=draw(st.integers(0, 1))))
        elif kind == "relu":
            x = b.relu(x)
        elif kind == "clip":
            x = b.clip(x, 0.0, draw(st.sampled_from([1.0, 6.0])))
    x = b.gap(x) if draw(st.booleans()) else x
    x = b.flatten(x)
    if draw(st.booleans()):
        x = b.matmul(x, draw(st.integers(2, 10)))
    else:
        x = b.gemm(x, draw(st.integers(2, 10)))
    if draw(st.booleans()):
        x = b.softmax(x)
    model = b.model(x)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = b.shapes[b.input]
    cal = [rng.normal(size=shape).astype(np.float32) for _ in range(3)]
    qm = quantize(model, cal, fmt=fmt, activations=act, per_channel=draw(st.booleans()))
    x = rng.normal(size=shape).astype(np.float32) * np.float32(draw(st.sampled_from([0.5, 1, 3])))
    return qm, x


def _check(qm, x, spec=None):
    g = load(qm)
    env = netgolden.run(g, x)
    cmp = ortref.compare(qm, g, env, {"input": x})
    assert cmp.intermediates, "exposing intermediates changed onnxruntime's outputs"
    assert cmp.equal, cmp.describe()
    assert len(cmp.checked) == len(g.nodes)
    if spec is not None:
        env2, runs = netisa.run(spec, g, x)
        # a conv whose Add ran on its STORE path (specs with the residual unit): its own output
        # never left the chip
        kept = {g.node(r.node).output for r in runs if r.add}
        assert kept == {n.output for n in g.nodes} - set(env2)
        assert spec.residual or not kept
        for node in g.nodes:
            if node.output not in kept:
                np.testing.assert_array_equal(env2[node.output], env[node.output],
                                              err_msg=node.name)
        for r in runs:
            node = g.node(r.node)
            assert r.reference_equal, r.node
            np.testing.assert_array_equal(
                r.acc, netisa.ort_accumulators(g, node, env[node.inputs[0]]), err_msg=r.node)
    return g


_DATAFLOWS = st.sampled_from(["ws", "ws", "os", "is", "nlr"])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(networks(), st.integers(2, 5), st.integers(2, 5), _DATAFLOWS, st.booleans())
def test_random_networks_bit_exact(net, rows, cols, dataflow, residual):
    """(``residual``: the spec has the residual unit, so the residual blocks' Adds run on their
    convs' STORE path through the ISA machine.)"""
    qm, x = net
    extra = {"postproc": True, "residual": True} if residual else {}
    spec = make_spec(rows=rows, cols=cols, dataflow=dataflow, act_bits=8, weight_bits=8,
                     acc_bits=32, input_depth=256, weight_depth=512, output_depth=128, **extra)
    _check(qm, x, spec)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(networks(residual=True), st.integers(2, 5), st.integers(2, 5),
       st.sampled_from(["ws", "os", "is", "nlr", "rs"]))
def test_random_residual_networks_bit_exact(net, rows, cols, dataflow):
    """Random networks with residual blocks on a spec with the residual unit: every Add runs on
    its conv's STORE path through the ISA machine, bit-exact with onnxruntime."""
    qm, x = net
    spec = make_spec(rows=rows, cols=cols, dataflow=dataflow, input_depth=256,
                     weight_depth=512, output_depth=128, postproc=True, residual=True)
    g = _check(qm, x, spec)
    from sim import netisa
    _, runs = netisa.run(spec, g, x)
    adds = sorted(n.name for n in g.nodes if n.op == "QLinearAdd")
    assert adds and sorted(r.add for r in runs if r.add) == adds


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(networks(), st.integers(2, 9), st.integers(2, 9), _DATAFLOWS, st.booleans())
def test_random_networks_bit_exact_many(net, rows, cols, dataflow, residual):
    test_random_networks_bit_exact.hypothesis.inner_test(net, rows, cols, dataflow, residual)


def _qlinearconv_model(c, k, x_scale, w_scale, y_scale, zx, zy, w, bias, dtype="uint8"):
    from onnx import TensorProto, helper, numpy_helper
    t = TensorProto.UINT8 if dtype == "uint8" else TensorProto.INT8
    npt = np.uint8 if dtype == "uint8" else np.int8
    inits = [numpy_helper.from_array(np.float32(x_scale), "xs"),
             numpy_helper.from_array(np.array(zx, npt), "xz"),
             numpy_helper.from_array(w.astype(np.int8), "w"),
             numpy_helper.from_array(np.asarray(w_scale, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(np.size(w_scale), np.int8), "wz"),
             numpy_helper.from_array(np.float32(y_scale), "ys"),
             numpy_helper.from_array(np.array(zy, npt), "yz"),
             numpy_helper.from_array(bias.astype(np.int32), "b")]
    nodes = [helper.make_node("QuantizeLinear", ["input", "xs", "xz"], ["xq"]),
             helper.make_node("QLinearConv", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                              ["yq"], name="conv"),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["output"])]
    g = helper.make_graph(nodes, "qconv",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                         (1, c, 4, 4))],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)],
                          inits, value_info=[helper.make_tensor_value_info("xq", t, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_requantisation_corner_cases(dtype="uint8"):
    """Accumulators beyond 2**24 (fp32 rounds them), exact ties of acc·scale (scale 0.5),
    saturation at both ends, per-channel scales and zero points at the ends of their range.
    (uint8: with session.x64quantprecision=1, onnxruntime 1.32 has no kernel for an int8
    QOperator QLinearConv, and it runs int8 QDQ models as uint8.)"""
    rng = np.random.default_rng(3)
    c, k = 2000, 6
    w = rng.choice([-127, 127], size=(k, c, 1, 1))
    w[0] = 127                                          # channel 0: |acc| > 2**24
    w_scale = np.array([2.0 ** -8, 0.5, 0.5, 1.0, 3.0, 2.0 ** -12], np.float32)
    bias = rng.integers(-1000, 1000, k)
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    for zx, zy in ((lo, hi), (hi, lo), ((lo + hi) // 2, lo)):
        m = _qlinearconv_model(c, k, 1.0, w_scale, 1.0, zx, zy, w, bias, dtype)
        x = rng.integers(-300, 300, (1, c, 4, 4)).astype(np.float32)
        x[:, :3 * c // 4] = -300 if zx == hi else 300      # saturated: channel 0's |acc| > 2**24
        g = load(m)
        env = netgolden.run(g, x)
        acc = netgolden.conv_acc(env["xq"], g.node("conv").attrs["w"], bias, zx, 0, (1, 1),
                                 (0, 0, 0, 0), (1, 1), 1)
        assert np.abs(acc).max() > 2 ** 24
        cmp = ortref.compare(m, g, env, {"input": x})
        assert cmp.equal, cmp.describe()
        y = env["yq"].astype(np.int64)
        assert (y == lo).any() and (y == hi).any()


def test_float_softmax_is_delegated():
    """A Softmax left unquantized runs in float in onnxruntime (MLAS): the reference runs that op
    through onnxruntime, and the whole network still agrees bit for bit."""
    b = NetBuilder("sm", (2, 2, 6, 6), 5)
    x = b.flatten(b.gap(b.relu(b.conv(b.input, 4, 3))))
    m = b.model(b.softmax(b.gemm(x, 7)))
    rng = np.random.default_rng(0)
    cal = [rng.normal(size=(2, 2, 6, 6)).astype(np.float32) for _ in range(3)]
    qm = quantize(m, cal, activations="uint8")
    # drop the Softmax's Q/DQ pair: the Softmax then reads the Gemm's dequantized output
    qm = _unquantize_last(qm)
    g = load(qm)
    assert [n.op for n in g.nodes][-2:] == ["DequantizeLinear", "Softmax"]
    x = rng.normal(size=(2, 2, 6, 6)).astype(np.float32)
    cmp = ortref.compare(qm, g, netgolden.run(g, x), {"input": x})
    assert cmp.equal, cmp.describe()


def _unquantize_last(qm):
    """The model with the Q/DQ pair after its Softmax removed (Softmax writes the output)."""
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(qm)
    nodes = list(m.graph.node)
    sm = next(n for n in nodes if n.op_type == "Softmax")
    q = next(n for n in nodes if n.op_type == "QuantizeLinear" and n.input[0] == sm.output[0])
    dq = next(n for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] == q.output[0])
    sm.output[0] = dq.output[0]
    m.graph.ClearField("node")
    m.graph.node.extend([n for n in nodes if n is not q and n is not dq])
    return m


def _real(fm, size, spec_path=None, seed=1):
    from gen.spec import load_spec
    rng = np.random.default_rng(seed)
    cal = [rng.normal(size=(1, 3, size, size)).astype(np.float32) for _ in range(3)]
    qm = quantize(fm, cal, activations="uint8", per_channel=True)
    x = rng.normal(size=(1, 3, size, size)).astype(np.float32)
    return _check(qm, x, load_spec(spec_path) if spec_path else None)


def test_mobilenet_v2_blocks():
    """Depthwise 3x3, 1x1 expand/project, ReLU6 folded into the ranges, residual adds."""
    from gen.network.zoo import mobilenet_v2_blocks
    g = _real(mobilenet_v2_blocks(seed=2, size=32), 32, "specs/ws_8x8.toml")
    assert any(n.op == "QLinearConv" and n.attrs["group"] > 1 for n in g.nodes)
    assert sum(n.op == "QLinearAdd" for n in g.nodes) == 2


@pytest.mark.slow
def test_resnet18_224():
    """ResNet-18 at 224x224: the reference and the conv/FC layers on the ISA model (16x16 WS)."""
    from gen.network.zoo import resnet18
    g = _real(resnet18(seed=0), 224, "specs/ws_16x16.toml")
    assert sum(n.op == "QLinearConv" for n in g.nodes) == 20


def test_digits_subset_on_the_isa_model():
    """The committed digits model, 24 test images, conv/GAP/FC layers on the 8x8 WS ISA model."""
    import onnx

    from gen.network import digits
    from gen.spec import load_spec
    _, _, x, y, _ = digits.load_split()
    m = onnx.load(digits.MODEL_PATH)
    g = load(m, batch=24)
    env, runs = netisa.run(load_spec("specs/ws_8x8.toml"), g, x[:24])
    assert [r.reference_equal for r in runs] == [True] * 5     # 3 conv, the GAP, the FC
    cmp = ortref.compare(m, g, env, {"input": x[:24]})
    assert cmp.equal, cmp.describe()
