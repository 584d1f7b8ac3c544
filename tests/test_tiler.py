"""Tiler + frame encoding against the golden model through the ISA reference machine (no RTL)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import make_spec, random_requant
from gen import frames as framing
from gen.errors import AccelgenError
from gen.isa import Op, decode_header, encode_header
from gen.layer import ConvLayer, workload_layers
from gen.tiler import plan
from sim import golden, isa_model


def _check(spec, layer, seed=0, bias=False, requant=False, relu=False):
    rng = np.random.default_rng(seed)
    lo, hi = spec.act_range()
    x = rng.integers(lo, hi + 1, layer.input_shape)
    lo, hi = spec.weight_range()
    w = rng.integers(lo, hi + 1, layer.weight_shape)
    lim = 1 << min(20, spec.acc_bits - 2)
    b = rng.integers(-lim, lim, layer.K) if bias else None
    quant = random_requant(spec, layer, x, w, b, seed) if requant else None
    prog = plan(spec, layer, bias=bias, requant=requant, relu=relu)
    y = framing.decode(prog, isa_model.run(spec, framing.encode(prog, x, w, b, quant)), quant)
    g = golden.postprocess(golden.conv2d(x, w, b, stride=layer.stride, pad=layer.pad,
                                         dilation=layer.dilation, groups=layer.groups,
                                         acc_bits=spec.acc_bits), spec, quant, relu)
    assert np.array_equal(y, g)
    return prog


@st.composite
def cases(draw):
    dataflow = draw(st.sampled_from(["ws", "is", "os", "nlr", "rs"]))
    extra = {}
    if dataflow == "rs":
        extra["spads"] = {"filter": draw(st.integers(1, 40)), "ifmap": draw(st.integers(1, 12)),
                          "psum": draw(st.integers(1, 8))}
    spec = make_spec(dataflow=dataflow, **extra,
                     rows=draw(st.integers(1, 6)), cols=draw(st.integers(1, 6)),
                     input_depth=draw(st.integers(16, 200)),
                     weight_depth=draw(st.integers(16, 200)),
                     output_depth=draw(st.integers(1, 60)),
                     act_signed=draw(st.booleans()),
                     acc_bits=draw(st.sampled_from([16, 20, 32])),
                     postproc=draw(st.booleans()), out_bits=draw(st.integers(2, 16)))
    groups = draw(st.integers(1, 3))
    layer_kw = dict(
        N=draw(st.integers(1, 2)), C=groups * draw(st.integers(1, 5)),
        K=groups * draw(st.integers(1, 5)), H=draw(st.integers(1, 9)), W=draw(st.integers(1, 9)),
        R=draw(st.integers(1, 4)), S=draw(st.integers(1, 4)), stride=draw(st.integers(1, 3)),
        pad=draw(st.integers(0, 3)), dilation=draw(st.integers(1, 2)), groups=groups)
    try:
        layer = ConvLayer(**layer_kw)
    except AccelgenError:
        assume(False)
    post = spec.postproc
    return (spec, layer, draw(st.booleans()), draw(st.integers(0, 2**16)),
            post and draw(st.booleans()), post and draw(st.booleans()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_random_layers_bit_exact(case):
    spec, layer, bias, seed, requant, relu = case
    try:
        prog = plan(spec, layer, bias=bias, requant=requant, relu=relu)
    except AccelgenError:
        assume(False)
    _check(spec, layer, seed, bias, requant, relu)
    # every command respects the buffers
    for c in prog.commands:
        h = c.header
        if c.op == Op.LOAD_INPUT:
            assert h["addr"] + h["count"] <= spec.input_depth
        if c.op == Op.LOAD_WEIGHT:
            assert h["waddr"] + h["count"] <= spec.weight_depth
        if c.op in (Op.STORE,):
            assert h["oaddr"] + h["count"] <= spec.output_depth
        if c.op == Op.COMPUTE:
            words = {"is": h["count"], "rs": h["q"] * h["count"]}.get(spec.engine,
                                                                      h["p"] * h["q"])
            assert h["oaddr"] + words <= spec.output_depth


def test_real_layers_on_16x16():
    spec = make_spec(rows=16, cols=16, input_depth=8192, weight_depth=2304, output_depth=4096)
    layers = workload_layers()
    for name in ("resnet18:conv5_x", "mobilenetv2:b7_dw", "alexnet:conv2", "lenet5:conv1"):
        _check(spec, layers[name])


def test_input_reuse_across_k_tiles():
    spec = make_spec(rows=4, cols=4, output_depth=1024)
    prog = plan(spec, ConvLayer(C=4, H=8, W=8, K=16, R=3, S=3, pad=1))
    assert prog.k_group == 4 and prog.count(Op.LOAD_INPUT) == 1 and prog.count(Op.STORE) == 4


@pytest.mark.parametrize("layer,spec_kw,message", [
    (ConvLayer(C=4, H=8, W=8, K=4, R=5, S=5), dict(weight_depth=2),
     r"^layer 5x5 filter needs 75 weight-buffer words per tile on WS \(3 as its 1x1 im2col "
     r"rewrite\) but buffers.weight_depth is 2; raise buffers.weight_depth to at least 3$"),
    (ConvLayer(C=4, H=8, W=8, K=4, R=3, S=3, dilation=2), dict(dataflow="rs", input_depth=20),
     r"^the input buffer cannot hold one 4x1 block's receptive field \(40 words\) with its "
     r"outputs; raise buffers.input_depth to at least 40$"),
    (ConvLayer(C=4, H=40, W=40, K=4, stride=16), dict(),
     r"^layer stride=16 exceeds the hardware's stride limit of 15"),
])
def test_limits_named(layer, spec_kw, message):
    with pytest.raises(AccelgenError, match=message):
        plan(make_spec(**spec_kw), layer)


@pytest.mark.parametrize("dataflow", ["ws", "os", "rs"])
def test_layer_too_big_to_plan_refused_at_once(dataflow):
    """A layer whose program would need more COMPUTEs than MAX_COMPUTES is refused before any
    command is planned, with the count, whichever rewrite is tried (C=H=W=K=65536 planned for
    centuries before: 34 billion output tiles)."""
    from gen.tiling import MAX_COMPUTES
    spec = make_spec(dataflow=dataflow, rows=8, cols=8)
    with pytest.raises(AccelgenError, match=r"^it needs at least [\d,]+ COMPUTEs \(output tiles "
                                            r"of \d+x\d+, [\d,]+ K tiles, [\d,]+ C tiles\), "
                                            r"more than the 16,777,216"):
        plan(spec, ConvLayer(C=65536, H=65536, W=65536, K=65536, R=3, S=3))
    assert MAX_COMPUTES == 1 << 24


def test_header_roundtrip():
    words = encode_header(Op.COMPUTE, p=300, q=7, r=11, s=3, stride=4, dilation=2, row_step=4000,
                          addr=65535, waddr=9, oaddr=123, accumulate=1, bias=1, count=65536)
    h = decode_header(words)
    assert (h["op"], h["p"], h["q"], h["r"], h["count"], h["addr"]) == (4, 300, 7, 11, 65536,
                                                                        65535)
    with pytest.raises(ValueError):
        encode_header(Op.STORE, count=1 << 17)
    # a requantising STORE's signed fields: two's complement, sign-extended on decode
    h = decode_header(encode_header(Op.STORE, requant=1, oaddr=5, count=9, zero_point=-128,
                                    qmin=-65536, qmax=65535))
    assert (h["zero_point"], h["qmin"], h["qmax"], h["oaddr"], h["count"]) == \
        (-128, -65536, 65535, 5, 9)
    with pytest.raises(ValueError, match="header field qmax must fit in 17 bits, not 65536"):
        encode_header(Op.STORE, qmax=65536)


@pytest.mark.parametrize("bits,signed", [(8, True), (4, False), (5, True), (32, True), (16, False)])
def test_lane_packing_roundtrip(bits, signed):
    rng = np.random.default_rng(bits)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    v = rng.integers(lo, hi + 1, (7, 5))
    beat = -(-5 * bits // 8) + 2
    data = framing.pack_lanes(v, bits, beat)
    assert len(data) == 7 * beat
    assert np.array_equal(framing.unpack_lanes(data, bits, 5, beat, signed), v)


def test_tensor_checks():
    spec = make_spec()
    layer = ConvLayer(C=2, H=3, W=3, K=2)
    x = np.zeros((1, 2, 3, 3), dtype=np.int8)
    w = np.zeros((2, 2, 1, 1), dtype=np.int8)
    with pytest.raises(AccelgenError, match=r"^input tensor has shape \(2, 3, 3\) but the layer "
                                            r"needs \(1, 2, 3, 3\)"):
        framing.check_tensors(spec, layer, x[0], w)
    with pytest.raises(AccelgenError, match=r"^weights tensor values span 200\.\.200 but the spec.s "
                                            r"precision\.weight_bits/weight_signed allow -128\.\.127; "
                                            r"quantise the tensor or change the spec$"):
        framing.check_tensors(spec, layer, x, np.full((2, 2, 1, 1), 200))
    with pytest.raises(AccelgenError, match=r"^input tensor must hold integers, not float64$"):
        framing.check_tensors(spec, layer, x.astype(float), w)


def test_layer_too_big_for_weight_buffer_runs_as_im2col():
    # LeNet-5 conv1 (C=1, 5x5) needs 25 taps x 8 lanes = 200 weight words per tile on an 8x8 WS
    # array; its im2col rewrite (C=25, 1x1) needs 8: the tiler uses it rather than refusing
    spec = make_spec(rows=8, cols=8, weight_depth=64, input_depth=1024, output_depth=256)
    layer = workload_layers()["lenet5:conv1"]
    prog = _check(spec, layer, seed=3)
    assert prog.lowered is not None and prog.lowered.R == prog.lowered.S == 1
    # a dilated 3x3 whose receptive field (25 words) exceeds the input buffer: im2col too
    prog = _check(make_spec(input_depth=20), ConvLayer(C=4, H=8, W=8, K=4, R=3, S=3, dilation=2))
    assert prog.lowered is not None


def test_weight_buffer_refusal_names_the_smallest_buffer_that_works():
    spec = make_spec(rows=8, cols=8, weight_depth=4, input_depth=1024, output_depth=256)
    with pytest.raises(AccelgenError, match="at least 8$"):
        plan(spec, workload_layers()["lenet5:conv1"])
    spec = make_spec(dataflow="rs", rows=3, cols=3, weight_depth=2,
                     spads={"filter": 16, "ifmap": 8, "psum": 4})
    with pytest.raises(AccelgenError, match="weight_depth"):
        plan(spec, ConvLayer(C=2, H=6, W=6, K=2, R=3, S=3))
