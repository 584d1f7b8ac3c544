import pytest

from gen.errors import AccelgenError
from gen.layer import ConvLayer, parse_layer, workload_layers


def test_output_size_formula():
    L = ConvLayer(C=3, H=224, W=224, K=64, R=7, S=7, stride=2, pad=3)
    assert (L.P, L.Q) == (112, 112)
    L = ConvLayer(C=1, H=10, W=9, K=1, R=3, S=3, pad=1, dilation=2, stride=2)
    assert (L.P, L.Q) == (4, 4)
    assert L.macs == 1 * 1 * 4 * 4 * 1 * 9


def test_parse_and_overrides():
    L = parse_layer("C=16, H=14, W=14, K=32, R=3, S=3, stride=2, pad=1")
    assert (L.C, L.K, L.stride, L.pad, L.P) == (16, 32, 2, 1, 7)
    L = parse_layer("C=4,H=5,W=5,K=4,G=2", stride=2, N=3)
    assert (L.groups, L.stride, L.N) == (2, 2, 3)
    L = parse_layer("resnet18:conv2_x")
    assert (L.C, L.K, L.H, L.R, L.pad) == (64, 64, 56, 3, 1)


def test_workloads():
    layers = workload_layers()
    assert "alexnet:conv2" in layers and layers["alexnet:conv2"].groups == 2
    for L in layers.values():
        assert L.P > 0 and L.Q > 0


@pytest.mark.parametrize("text,message", [
    ("C=4,H=4", r"^layer is missing W=\.\.\.; C, H, W and K are required$"),
    ("C=4,H=4,W=4,K=4,X=1", r"^bad layer field 'X=1': use KEY=VALUE"),
    ("C=four,H=4,W=4,K=4", r"^layer field C must be an integer, not 'four'$"),
    ("C=4,H=4,W=4,K=6,groups=4", r"^layer groups=4 must divide C=4 and K=6$"),
    ("C=4,H=2,W=2,K=4,R=5,S=5", r"^layer 5x5 filter .* does not fit the 2x2 input"),
    ("C=0,H=2,W=2,K=4", r"^layer C must be an integer from 1 to 65536, not 0$"),
    ("vgg99:conv1", r"^unknown layer 'vgg99:conv1'"),
])
def test_layer_errors(text, message):
    with pytest.raises(AccelgenError, match=message):
        parse_layer(text)


# -- the Layer protocol ---------------------------------------------------------------------------

def _run_on_isa_model(layer, spec, x, w, bias, quant=None, relu=False):
    """A layer through its own protocol: plan, encode, the ISA machine, decode."""
    from sim import isa_model
    prog = layer.plan(spec, bias=bias is not None, requant=quant is not None, relu=relu)
    return layer.decode(prog, isa_model.run(spec, layer.encode(prog, x, w, bias, quant)), quant)


@pytest.mark.parametrize("dataflow", ["ws", "is", "os", "nlr", "rs"])
def test_layer_kinds_through_the_protocol(dataflow):
    import numpy as np

    from gen.layer import FullyConnected, Layer
    from gen.quant import Requant
    from gen.spec import spec_from_dict
    spec = spec_from_dict({"name": "t", "dataflow": dataflow, "array": {"rows": 4, "cols": 3},
                           "postproc": {"enabled": True}})
    rng = np.random.default_rng(7)
    for layer in (ConvLayer(C=5, H=6, W=5, K=4, R=3, S=2, pad=1, stride=2),
                  FullyConnected(C=11, K=7, N=3)):
        assert isinstance(layer, Layer)
        x = rng.integers(-128, 128, size=layer.input_shape)
        w = rng.integers(-128, 128, size=layer.weight_shape)
        b = rng.integers(-500, 500, size=layer.output_shape[1])
        y = _run_on_isa_model(layer, spec, x, w, b)
        assert y.shape == layer.output_shape
        assert np.array_equal(y, layer.golden(spec, x, w, b))
        quant = Requant(np.full(layer.output_shape[1], 0.01, np.float32), -3)
        y = _run_on_isa_model(layer, spec, x, w, None, quant, relu=True)
        assert np.array_equal(y, layer.golden(spec, x, w, None, quant, relu=True))
        assert y.min() == -3 and y.max() > -3       # the ReLU folded: nothing below the zero point


def test_fully_connected_shapes_and_refusals():
    import numpy as np

    from gen.layer import FullyConnected
    from gen.spec import spec_from_dict
    fc = FullyConnected(C=6, K=2, N=2)
    assert (fc.input_shape, fc.weight_shape, fc.output_shape, fc.macs) == ((2, 6), (2, 6),
                                                                          (2, 2), 24)
    assert fc.conv == ConvLayer(C=6, H=1, W=1, K=2, N=2, name="fc")
    spec = spec_from_dict({"name": "t", "array": {"rows": 4, "cols": 4}})
    with pytest.raises(AccelgenError, match=r"input tensor has shape \(6,\) but the "
                                            r"fully-connected layer needs \(2, 6\)"):
        fc.golden(spec, np.zeros(6, dtype=int), np.zeros((2, 6), dtype=int))
    with pytest.raises(AccelgenError, match=r"fully-connected layer K \(out_features\) must be "
                                            r"an integer from 1 to 65536, not 0"):
        FullyConnected(C=3, K=0)


def test_fully_connected_speaks_fc_terms():
    """A fully-connected layer's program records the layer itself, and its errors name features
    (N x in_features, out_features x in_features), not NCHW/KCRS or filters."""
    import numpy as np

    from gen.layer import FullyConnected
    from gen.spec import spec_from_dict
    spec = spec_from_dict({"name": "t", "array": {"rows": 4, "cols": 4}})
    fc = FullyConnected(C=6, K=3, N=2)
    x, w = np.zeros((2, 6), dtype=int), np.zeros((3, 6), dtype=int)
    prog = fc.plan(spec, bias=True)
    assert prog.layer == fc and prog.macs == fc.macs
    assert prog.layer.describe() == "fc (fully connected N=2 C=6 K=3) -> 2x3"
    cases = [
        (lambda: fc.encode(prog, np.zeros((2, 7), dtype=int), w, np.zeros(3, dtype=int)),
         r"input tensor has shape \(2, 7\) but the fully-connected layer needs \(2, 6\) "
         r"\(N x in_features\)"),
        (lambda: fc.golden(spec, x, w.T), r"weights tensor has shape \(6, 3\) but the "
         r"fully-connected layer needs \(3, 6\) \(out_features x in_features\)"),
        # the golden model used to fail with a numpy reshape error here
        (lambda: fc.golden(spec, x, w, np.zeros(4, dtype=int)),
         r"bias tensor has shape \(4,\) but the fully-connected layer needs \(3,\) "
         r"\(out_features\)"),
        (lambda: fc.encode(prog, x, w, np.zeros(4, dtype=int)), r"needs \(3,\) \(out_features\)"),
        (lambda: FullyConnected(C=70000, K=3), r"fully-connected layer C \(in_features\) must "
         r"be an integer from 1 to 65536, not 70000"),
        (lambda: FullyConnected(C=50, K=3).plan(spec_from_dict(
            {"name": "t", "array": {"rows": 4, "cols": 4},
             "buffers": {"input_depth": 2, "weight_depth": 1, "output_depth": 2}})),
         r"^fully-connected layer fc \(N=1, in_features C=50, out_features K=3\), planned as a "
         r"1x1 convolution: .*raise buffers.weight_depth"),
        (lambda: FullyConnected(C=6, K=3, N=1).encode(prog, x, w),
         r"the program was planned for fc \(fully connected N=2 C=6 K=3\)"),
    ]
    for call, message in cases:
        with pytest.raises(AccelgenError, match=message) as e:
            call()
        assert "NCHW" not in str(e.value) and "KCRS" not in str(e.value)


def test_fully_connected_on_the_rtl(tmp_path):
    """A second layer kind runs on the RTL through sim/flow.simulate_layer by the protocol alone:
    output equal to its golden model, the model's cycles equal to the RTL's counter."""
    from gen.layer import FullyConnected
    from gen.spec import spec_from_dict
    from sim.flow import random_tensors, simulate_layer
    spec = spec_from_dict({"name": "fc_ws_4x3", "array": {"rows": 4, "cols": 3},
                           "buffers": {"input_depth": 64, "weight_depth": 64,
                                       "output_depth": 32}})
    fc = FullyConnected(C=9, K=5, N=3)
    x, w, b = random_tensors(spec, fc, seed=3, bias=True)
    res = simulate_layer(spec, fc, x, w, b, work_dir=tmp_path)
    assert res.output.shape == (3, 5) and res.match
    assert res.counters["cycles"] == res.model.cycles
