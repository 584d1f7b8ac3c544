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
