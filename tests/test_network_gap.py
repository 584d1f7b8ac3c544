"""Global average pooling on the accelerator (gen/network/lower.py: a sum over the array's rows,
onnxruntime's scale ``fp32(sx / fp32(sy·H·W))`` in the STORE path's fp32 requantiser) against
onnxruntime's QLinearGlobalAveragePool, int8 and uint8, on inputs built so that a scale rounded any
other way gives a different output; whole-map AveragePool on chip too, smaller windows on the host;
one layer on the Icarus RTL with every counter equal to the model's."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from gen.network import load  # noqa: E402
from gen.network import lower as low  # noqa: E402
from gen.network.placement import AVGPOOL_NOTE, REQUANT, place  # noqa: E402
from gen.spec import load_spec  # noqa: E402
from sim import netgolden, netrun, ortref  # noqa: E402

_T = {"int8": (TensorProto.INT8, np.int8, -128, 127), "uint8": (TensorProto.UINT8, np.uint8, 0, 255)}
f32 = np.float32


def _model(dtype, shape, sx, zx, sy, zy, pool=None):
    """float input -> QuantizeLinear -> QLinearGlobalAveragePool (or QLinearAveragePool with the
    attributes ``pool``) -> DequantizeLinear, QOperator."""
    t, npt = _T[dtype][:2]
    inits = [numpy_helper.from_array(np.array(v, d), n) for v, d, n in
             ((sx, np.float32, "sx"), (zx, npt, "zx"), (sy, np.float32, "sy"), (zy, npt, "zy"))]
    op = ("QLinearGlobalAveragePool" if pool is None else "QLinearAveragePool")
    nodes = [helper.make_node("QuantizeLinear", ["input", "sx", "zx"], ["xq"]),
             helper.make_node(op, ["xq", "sx", "zx", "sy", "zy"], ["yq"],
                              domain="com.microsoft", name="pool", **(pool or {})),
             helper.make_node("DequantizeLinear", ["yq", "sy", "zy"], ["output"])]
    g = helper.make_graph(nodes, "gap", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                      shape)],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    return m


def _rq(acc, scale, zy, lo, hi):
    return netgolden.requantize(acc, scale, zy, lo, hi)


def _telling_sums(scale, alt, zx, zy, lo, hi, hw):
    """Accumulators ``Σx - zx·hw`` the input can reach whose output differs between ``scale``
    and ``alt`` (an fp32 product on a rounding edge), nearest the middle of the range first."""
    acc = np.arange(max((lo - zx) * hw, -1 << 19), min((hi - zx) * hw, 1 << 19) + 1)
    bad = acc[_rq(acc, scale, zy, lo, hi) != _rq(acc, alt, zy, lo, hi)]
    return bad[np.argsort(np.abs(bad))]


def _input_for(sums, zx, lo, hi, hw, rng):
    """Integer channels (hw values in [lo, hi] each) whose accumulators are ``sums``, shuffled."""
    rows = []
    for s in sums:
        total = int(s) + zx * hw
        base, extra = divmod(total, hw)
        row = np.full(hw, base, dtype=np.int64)
        row[:extra] += 1
        assert row.min() >= lo and row.max() <= hi and row.sum() == total
        rows.append(rng.permutation(row))
    return np.array(rows)


# (N, C, H, W): one pixel, 7x7 (ResNet's), an odd map, a large one, a power of two (every order
# of rounding the scale agrees), the largest (H·W = 65535 of the 65536 a layer's channels allow:
# |acc| up to 255·65535, just under 2**24)
SHAPES = [(3, 5, 1, 1), (2, 8, 7, 7), (1, 6, 3, 17), (1, 4, 63, 65), (2, 3, 8, 16),
          (1, 2, 255, 257)]


def _case(dtype, shape, seed, edges=True):
    """Scales whose fp32 ``sx / fp32(sy·H·W)`` differs from both other orders of rounding, and an
    input whose channels sit on those differences (the rest random, some at the range's ends)."""
    n, c, h, w = shape
    hw = h * w
    _, npt, lo, hi = _T[dtype]
    rng = np.random.default_rng(seed)
    for _ in range(200):
        sx, sy = f32(rng.uniform(0.005, 0.2)), f32(rng.uniform(0.005, 0.2))
        zx, zy = (int(v) for v in rng.integers(lo, hi + 1, 2))
        scale = f32(sx) / (f32(sy) * f32(hw))       # MLAS's order, written out independently
        alts = [f32(f32(sx / sy) / f32(hw)), f32(np.float64(sx) / (np.float64(sy) * hw))]
        telling = [_telling_sums(scale, a, zx, zy, lo, hi, hw)[:2] for a in alts if a != scale]
        if hw & (hw - 1) == 0 or not edges:     # a power of two: every order gives one scale
            assert edges is False or not telling
            sums = np.zeros(0, np.int64)
            break
        if len(telling) == len(alts) and all(len(t) for t in telling):
            sums = np.concatenate(telling)
            break
    else:
        raise AssertionError("no scale with a rounding difference found")
    q = rng.integers(lo, hi + 1, size=(n * c, hw))
    if len(sums):
        q[:len(sums)] = _input_for(sums[:n * c], zx, lo, hi, hw, rng)
    q[-1] = lo if zx > (lo + hi) // 2 else hi                  # the largest |acc|
    q = q.reshape(shape)
    x = ((q - zx) * np.float64(sx)).astype(np.float32)       # quantizes back to q exactly
    return _model(dtype, shape, sx, zx, sy, zy), x, q, (scale, alts, zy, lo, hi)


def _run(spec, m, x):
    g = load(m)
    steps = place(spec, g)
    net = netrun.run(spec, g, {"input": x}, steps, backend="isa")
    return g, steps, net


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_gap_on_chip_as_onnxruntime(dtype, shape):
    """ws_8x8 requantises on the STORE path; the output equals onnxruntime's, which a scale
    rounded as ``fp32(fp32(sx/sy)/hw)`` or from float64 would not."""
    m, x, q, (scale, alts, zy, lo, hi) = _case(dtype, shape, sum(shape))
    spec = load_spec("specs/ws_8x8.toml")
    g, steps, net = _run(spec, m, x)
    gap = next(s for s in steps if s.node.op == "QLinearGlobalAveragePool")
    assert gap.on_accelerator and gap.requant_on_chip and gap.host_ops == ()
    assert net.layers[0].compared == "outputs" and net.layers[0].equal
    np.testing.assert_array_equal(net.env["xq"], q)
    theirs = ortref.run(m, {"input": x}, {"yq": dtype})["yq"]
    np.testing.assert_array_equal(net.env["yq"], theirs)
    acc = netgolden.gap_acc(q, g.q("xq").zp)
    hw = shape[2] * shape[3]
    for alt in alts:                # the test can fail: another rounding of the scale differs
        assert (_rq(acc, alt, zy, lo, hi) != theirs).any() or hw & (hw - 1) == 0
    cmp = ortref.compare(m, g, net.env, {"input": x})
    assert cmp.equal, cmp.describe()


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_gap_accumulators_on_chip_without_the_unit(dtype):
    """os_8x8 has no post-processing unit: the chip sums, the host requantises."""
    m, x, q, _ = _case(dtype, (2, 8, 7, 7), 3)
    g, steps, net = _run(load_spec("specs/os_8x8.toml"), m, x)
    gap = next(s for s in steps if s.node.op == "QLinearGlobalAveragePool")
    assert gap.on_accelerator and gap.host_ops == (REQUANT,)
    assert net.layers[0].compared == "accumulators" and net.layers[0].equal
    cmp = ortref.compare(m, g, net.env, {"input": x})
    assert cmp.equal, cmp.describe()


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_average_pool_whole_map_on_chip_smaller_windows_on_host(dtype):
    """An AveragePool over the whole unpadded map is onnxruntime's global path and runs on chip;
    a smaller (or padded) window sums fp32 values in onnxruntime and stays on the host."""
    rng = np.random.default_rng(7)
    shape = (2, 3, 5, 6)
    x = (rng.normal(size=shape) * 3).astype(np.float32)
    _, _, lo, hi = _T[dtype]
    zx, zy = (int(v) for v in rng.integers(lo, hi + 1, 2))
    spec = load_spec("specs/ws_8x8.toml")
    for pool, where in (({"kernel_shape": [5, 6]}, "accelerator"),
                        ({"kernel_shape": [5, 6], "pads": [1, 0, 0, 0]}, "host"),
                        ({"kernel_shape": [3, 3], "strides": [2, 2]}, "host")):
        m = _model(dtype, shape, f32(0.05), zx, f32(0.03), zy, pool)
        g, steps, net = _run(spec, m, x)
        step = next(s for s in steps if s.node.name == "pool")
        assert step.where == where, pool
        assert step.note == ("" if where == "accelerator" else AVGPOOL_NOTE)
        assert step.node.op == ("QLinearGlobalAveragePool" if where == "accelerator"
                                else "QLinearAveragePool")
        cmp = ortref.compare(m, g, net.env, {"input": x})
        assert cmp.equal, cmp.describe()


def test_gap_over_more_pixels_than_channels_on_the_host():
    """A global average pool over more pixels than a layer has input channels stays on the host
    (with the reason in its note) and still equals onnxruntime."""
    rng = np.random.default_rng(5)
    m = _model("uint8", (1, 1, 257, 256), f32(0.1), 3, f32(0.01), 7)
    x = rng.uniform(-0.3, 25, (1, 1, 257, 256)).astype(np.float32)
    g, steps, net = _run(load_spec("specs/ws_8x8.toml"), m, x)
    step = next(s for s in steps if s.node.name == "pool")
    assert step.where == "host" and not net.layers
    assert "257x256 = 65792 pixels exceeds the 65536 input channels" in step.note
    cmp = ortref.compare(m, g, net.env, {"input": x})
    assert cmp.equal, cmp.describe()


def test_gap_refusals():
    """A pool over a rank-3 tensor (onnxruntime takes any rank from 3) is refused naming the
    node."""
    from gen.errors import AccelgenError
    with pytest.raises(AccelgenError, match="node 'pool' .*only 2-D global average pooling"):
        load(_model("int8", (2, 3, 5), f32(0.1), 0, f32(0.1), 0))


def test_gap_on_icarus_counters_equal_the_model(tmp_path):
    """One global average pool on the RTL (Icarus, requantised on the STORE path): output equal
    to onnxruntime's, every hardware counter equal to the model's."""
    from gen.model import estimate
    from gen.spec import spec_from_dict
    from sim.flow import simulate_layer
    spec = spec_from_dict({"name": "gap_ws_4x4", "array": {"rows": 4, "cols": 4},
                           "buffers": {"input_depth": 64, "weight_depth": 64,
                                       "output_depth": 32},
                           "postproc": {"enabled": True}})
    m, x, q, _ = _case("uint8", (2, 3, 3, 5), 11, edges=False)
    g = load(m)
    node = g.node("pool")
    hw = low.lower(spec, g, node, q)
    quant = low.requant_params(g, node)
    res = simulate_layer(spec, hw.layer, hw.x, hw.w, hw.bias, work_dir=tmp_path, quant=quant)
    assert res.match and res.counters["error"] == 0
    got = low.finish_outputs(g, node, hw, res.output)
    np.testing.assert_array_equal(got, ortref.run(m, {"input": x}, {"yq": "uint8"})["yq"])
    est = estimate(hw.layer.plan(spec, bias=True, requant=True))
    assert {k: res.counters[k] for k in est.counters} == est.counters
    assert res.counters["cycles"] == est.cycles
