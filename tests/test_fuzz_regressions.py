"""Bugs the input fuzzing campaign (bench/fuzz.py, tests/fuzzing.py) found, one test each."""

import onnx
import pytest

from gen.cli import main
from gen.errors import AccelgenError
from gen.layer import parse_layer
from gen.network.onnx_import import load

MODEL = "models/digits_cnn_int8.onnx"


def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("accelgen: error: "), err
    return err[0]


def test_layer_field_given_twice_is_refused():
    # 'pad=1,...,padding=5' ran with pad=5: the first value was silently replaced
    with pytest.raises(AccelgenError, match="pad is given twice"):
        parse_layer("C=4,H=8,W=8,K=4,pad=1,padding=5")
    with pytest.raises(AccelgenError, match="C is given twice"):
        parse_layer("C=4,H=8,W=8,K=4,C=8")


@pytest.mark.parametrize("text", ["C=99999999999999999999,H=1,W=1,K=3",
                                  "C=1,H=65537,W=1,K=1", "C=1,H=1,W=1,K=1,pad=70000"])
def test_huge_layer_dimension_is_refused(text, capsys):
    # C=10**20 reached numpy ("Maximum allowed dimension exceeded") with a traceback, and
    # large-but-finite layers allocated tensors until the machine ran out of memory
    assert main(["simulate", "ws_8x8", "--layer", text]) == 2
    assert "must be an integer from" in _one_line(capsys)


def test_simulated_tensors_have_a_size_limit(capsys):
    # every dimension within its limit, but 2**32 input values: refused before allocating
    assert main(["simulate", "ws_8x8", "--layer", "C=256,H=4096,W=4096,K=8"]) == 2
    assert "a simulation holds" in _one_line(capsys)


def _model():
    return onnx.load(MODEL)


def test_onnx_node_missing_an_input_is_refused():
    # a Conv with one input reached fuse.group and failed with IndexError
    m = _model()
    node = next(n for n in m.graph.node if n.op_type == "MaxPool")
    node.op_type = "Conv"
    with pytest.raises(AccelgenError, match="not a valid ONNX model"):
        load(m.SerializeToString())


def test_onnx_node_missing_a_required_attribute_is_refused():
    # a MaxPool without kernel_shape failed with KeyError in shapes.pool_attrs
    m = _model()
    node = next(n for n in m.graph.node if n.op_type == "MaxPool")
    keep = [a for a in node.attribute if a.name != "kernel_shape"]
    del node.attribute[:]
    node.attribute.extend(keep)
    with pytest.raises(AccelgenError, match="not a valid ONNX model"):
        load(m.SerializeToString())


def test_onnx_unknown_tensor_type_is_refused():
    # an initializer of data type 76 failed with KeyError in onnx.numpy_helper
    m = _model()
    m.graph.initializer[0].data_type = 76
    with pytest.raises(AccelgenError):
        load(m.SerializeToString())


def test_onnx_initializer_data_not_matching_its_shape_is_refused():
    # a scalar zero point holding two values failed with ValueError in numpy_helper.to_array
    m = _model()
    t = next(t for t in m.graph.initializer if not t.dims)
    if t.raw_data:
        t.raw_data = t.raw_data * 2
    else:
        t.int32_data.append(0)
    with pytest.raises(AccelgenError, match="malformed"):
        load(m.SerializeToString())
