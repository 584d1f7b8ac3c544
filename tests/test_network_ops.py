"""Single quantized ops of sim/netgolden.py against onnxruntime's kernels, int8 and uint8, on
random scales and zero points (QOperator graphs of one op: without a QLinearConv onnxruntime
runs int8 too)."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from gen.network import load  # noqa: E402
from sim import netgolden, ortref  # noqa: E402

_T = {"int8": (TensorProto.INT8, np.int8, -128, 127), "uint8": (TensorProto.UINT8, np.uint8, 0, 255)}


def _model(op_nodes, inits, ishape, dtype):
    t, npt = _T[dtype][:2]
    inits = [numpy_helper.from_array(np.array(v, d), n) for v, d, n in inits]
    nodes = [helper.make_node("QuantizeLinear", ["input", "sx", "zx"], ["xq"]), *op_nodes,
             helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["output"])]
    g = helper.make_graph(nodes, "op", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                      ishape)],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    return m


def _params(rng, dtype, *names):
    _, npt, lo, hi = _T[dtype]
    out = []
    for n in names:
        out.append((np.float32(rng.uniform(0.002, 0.2)), np.float32, "s" + n))
        out.append((int(rng.integers(lo, hi + 1)), npt, "z" + n))
    return out


def _check(m, x):
    g = load(m)
    cmp = ortref.compare(m, g, netgolden.run(g, x), {"input": x})
    assert cmp.equal, cmp.describe()


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("seed", range(4))
def test_qlinear_add(dtype, seed):
    rng = np.random.default_rng(seed)
    inits = _params(rng, dtype, "x", "b", "y")
    nodes = [helper.make_node("QuantizeLinear", ["input", "sb", "zb"], ["bq"]),
             helper.make_node("QLinearAdd", ["xq", "sx", "zx", "bq", "sb", "zb", "sy", "zy"],
                              ["yq"], domain="com.microsoft", name="add")]
    m = _model(nodes, inits, (2, 3, 17, 19), dtype)
    _check(m, (rng.normal(size=(2, 3, 17, 19)) * 4).astype(np.float32))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("seed", range(4))
def test_qlinear_softmax(dtype, seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 40))
    inits = _params(rng, dtype, "x")
    inits += [(np.float32(1 / 256), np.float32, "sy"), (_T[dtype][2], _T[dtype][1], "zy")]
    nodes = [helper.make_node("QLinearSoftmax", ["xq", "sx", "zx", "sy", "zy"], ["yq"],
                              domain="com.microsoft", axis=-1, opset=13, name="softmax")]
    m = _model(nodes, inits, (32, d), dtype)
    _check(m, (rng.normal(size=(32, d)) * rng.uniform(0.5, 20)).astype(np.float32))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("kernel,stride,pads,include", [
    ((3, 3), (1, 1), (1, 1, 1, 1), 0), ((2, 3), (2, 1), (0, 1, 1, 0), 1),
    ((5, 7), (1, 1), (0, 0, 0, 0), 0),           # the whole map: onnxruntime's global path
])
def test_qlinear_average_pool(dtype, kernel, stride, pads, include):
    rng = np.random.default_rng(sum(kernel))
    inits = _params(rng, dtype, "x", "y")
    nodes = [helper.make_node("QLinearAveragePool", ["xq", "sx", "zx", "sy", "zy"], ["yq"],
                              domain="com.microsoft", kernel_shape=list(kernel),
                              strides=list(stride), pads=list(pads), count_include_pad=include,
                              name="pool")]
    m = _model(nodes, inits, (2, 4, 5, 7), dtype)
    _check(m, (rng.normal(size=(2, 4, 5, 7)) * 3).astype(np.float32))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_qlinear_global_average_pool(dtype):
    rng = np.random.default_rng(5)
    inits = _params(rng, dtype, "x", "y")
    nodes = [helper.make_node("QLinearGlobalAveragePool", ["xq", "sx", "zx", "sy", "zy"], ["yq"],
                              domain="com.microsoft", channels_last=0, name="gap")]
    m = _model(nodes, inits, (2, 16, 9, 11), dtype)
    _check(m, (rng.normal(size=(2, 16, 9, 11)) * 3).astype(np.float32))


def test_fma32_matches_exact_rounding():
    """fp32 fused multiply-add: one rounding of the exact a*b + c, including fp32 ties."""
    from fractions import Fraction
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 256, 4000).astype(np.float32)
    b = (1 + rng.integers(0, 8, 4000) * 2.0 ** -23).astype(np.float32)
    c = rng.integers(-2 ** 24, 2 ** 24, 4000).astype(np.float32)
    r = netgolden.fma32(a, b, c)
    for i in range(len(a)):
        v = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        f = np.float32(float(v))
        near = [np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))]
        best = min(near, key=lambda t: (abs(Fraction(float(t)) - v), int(t.view(np.int32)) & 1))
        assert r[i] == best, (a[i], b[i], c[i])
