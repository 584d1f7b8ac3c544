"""RTL (Icarus and Verilator; the native driver by default, cocotb + cocotbext-axi where named)
against the golden model."""

import numpy as np
import pytest

from conftest import make_spec, random_requant
from gen.layer import ConvLayer
from gen.model import estimate
from gen.quant import Requant
from gen.tiler import plan
from sim.flow import random_tensors, simulate_layer

# a non-square, non-power-of-two array with small buffers, so every layer is tiled in C, K, P and Q
RAGGED = dict(name="ws_3x5", rows=3, cols=5, input_depth=96, weight_depth=80, output_depth=24)
SQUARE = dict(name="ws_4x4", rows=4, cols=4, input_depth=512, weight_depth=256, output_depth=256)

CASES = {
    "aligned": (SQUARE, ConvLayer(C=8, H=6, W=6, K=8, R=3, S=3, pad=1), {}),
    "ragged": (RAGGED, ConvLayer(C=7, H=9, W=7, K=11, R=3, S=3, pad=1), {}),
    "1x1": (RAGGED, ConvLayer(C=5, H=5, W=6, K=6, R=1, S=1), {}),
    "7x7_s2_p3": (SQUARE, ConvLayer(C=3, H=12, W=11, K=5, R=7, S=7, stride=2, pad=3), {}),
    "stride2_dil2": (RAGGED, ConvLayer(C=4, H=9, W=9, K=4, R=3, S=3, stride=2, pad=2,
                                       dilation=2), {}),
    "batch2_groups2": (SQUARE, ConvLayer(C=6, H=5, W=5, K=4, R=3, S=3, pad=1, N=2, groups=2), {}),
    "depthwise": (RAGGED, ConvLayer(C=4, H=6, W=6, K=4, R=3, S=3, pad=1, groups=4), {}),
    "bias": (RAGGED, ConvLayer(C=4, H=5, W=5, K=6, R=2, S=2), {"bias": True}),
    "min_values": (SQUARE, ConvLayer(C=8, H=4, W=4, K=4, R=3, S=3, pad=1), {"extreme": "min"}),
    "max_values": (SQUARE, ConvLayer(C=8, H=4, W=4, K=4, R=3, S=3, pad=1), {"extreme": "max"}),
    "backpressure": (RAGGED, ConvLayer(C=4, H=6, W=5, K=7, R=3, S=3, pad=1),
                     {"pause": 0.4, "bias": True}),
    # one-pixel COMPUTEs accumulating over 4 C tiles back to back: each starts while the last
    # one drains, the shortest read-after-write the accumulation meets. On 1 row the adder reads
    # the output word as its sums arrive, on 2 rows a cycle early (hw/writeback.py ``read_early``).
    # (Six header words per COMPUTE space them wider than the controller's bound, so this
    # checks the path end to end rather than the bound itself)
    "back_to_back_1px": (dict(name="ws_1x3", rows=1, cols=3, input_depth=8, weight_depth=8,
                              output_depth=4), ConvLayer(C=4, H=1, W=1, K=5, R=1, S=1), {}),
    "back_to_back_1px_2rows": (dict(name="ws_2x3", rows=2, cols=3, input_depth=8,
                                    weight_depth=8, output_depth=4),
                               ConvLayer(C=8, H=1, W=1, K=5, R=1, S=1), {}),
    "strided_1x1": (RAGGED, ConvLayer(C=4, H=9, W=8, K=6, R=1, S=1, stride=2, pad=1), {}),
    # C = 2 on 4 rows: the tiler lays the 5x5 receptive field out as channels (im2col)
    "im2col": (SQUARE, ConvLayer(C=2, H=9, W=9, K=5, R=5, S=5, stride=2, pad=2), {}),
}


def _run(spec_kw, layer, sim, tmp_path, *, bias=False, extreme=None, pause=0.0, seed=0,
         quant=None, relu=False, driver="native"):
    spec = make_spec(**spec_kw)
    x, w, b = random_tensors(spec, layer, seed, bias=bias, extreme=extreme)
    res = simulate_layer(spec, layer, x, w, b, sim=sim, work_dir=tmp_path, in_pause=pause,
                         out_pause=pause, seed=seed, quant=quant, relu=relu, driver=driver)
    assert res.driver == driver
    assert res.match, res.summary()["first_mismatch"]
    c = res.counters
    assert c["error"] == 0
    assert c["commands"] == res.program_summary["commands"]
    # every issue is at most rows x cols MACs
    assert c["array_busy"] * spec.rows * spec.cols >= res.layer.macs
    assert res.cycles >= c["array_busy"]
    est = estimate(plan(spec, layer, bias=bias, requant=quant is not None, relu=relu))
    # buffer accesses do not depend on stalls: the model's counts are exact either way
    assert {k: c[k] for k in est.counters} == est.counters
    if pause:
        assert c["in_stall"] > 0
        # whether a random sink pause meets a valid beat is chance: ask for output stalls only
        # where missing every one is beyond it (64 beats at p = 0.2: 0.8**64 < 1e-6)
        if res.program_summary["output_words"] >= 64:
            assert c["out_stall"] > 0
    else:  # a full input stream and a ready output: the analytic model is exact
        assert (c["cycles"], c["array_busy"]) == (est.cycles, est.array_busy)
    return res


@pytest.mark.parametrize("case", list(CASES))
def test_icarus(case, tmp_path):
    spec_kw, layer, opts = CASES[case]
    _run(spec_kw, layer, "icarus", tmp_path, **opts)


@pytest.mark.parametrize("case", ["ragged", "backpressure"])
def test_icarus_cocotb_driver(case, tmp_path):
    """The cocotbext-axi bus models (AXI protocol checks, Python-driven backpressure)."""
    spec_kw, layer, opts = CASES[case]
    _run(spec_kw, layer, "icarus", tmp_path, driver="cocotb", **opts)


def test_icarus_accumulator_wraps(tmp_path):
    """A 16-bit accumulator wraps exactly like the golden model (72 products of 16384 overflow)."""
    res = _run(dict(name="ws_acc16", rows=4, cols=2, acc_bits=16), ConvLayer(
        C=8, H=3, W=3, K=2, R=3, S=3, pad=1), "icarus", tmp_path, extreme="min")
    assert np.abs(res.expected).max() < 1 << 15
    assert (res.expected != 8 * 9 * 16384).all()  # the exact sum would not fit: it wrapped


@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_icarus_requant_relu(pause, tmp_path):
    """Per-channel fp32 requantisation to int8 with a folded ReLU (outputs from the zero point)."""
    layer = ConvLayer(C=5, H=6, W=6, K=7, R=3, S=3, pad=1)
    spec_kw = dict(RAGGED, name="ws_q", postproc=True)
    x, w, b = random_tensors(make_spec(**spec_kw), layer, 0, bias=True)
    quant = random_requant(make_spec(**spec_kw), layer, x, w, b, 11, signed=True)
    quant = Requant(quant.scale, -7, quant.qmin, quant.qmax)
    res = _run(spec_kw, layer, "icarus", tmp_path, bias=True, quant=quant, relu=True, pause=pause)
    assert res.output.min() == -7 and res.output.max() == 127 and (res.output > -7).mean() > 0.3


def test_icarus_unsigned_activations_and_1x1_array(tmp_path):
    _run(dict(name="ws_1x1u", rows=1, cols=1, act_signed=False), ConvLayer(
        C=2, H=4, W=4, K=3, R=2, S=2, stride=2), "icarus", tmp_path, pause=0.2)


@pytest.mark.verilator
@pytest.mark.parametrize("case", ["ragged", "backpressure", "min_values", "7x7_s2_p3"])
def test_verilator(case, tmp_path):
    spec_kw, layer, opts = CASES[case]
    res = _run(spec_kw, layer, "verilator", tmp_path, **opts)
    assert res.sim == "verilator"


def test_simulators_agree_on_cycles(tmp_path):
    """Without backpressure the design is deterministic: both simulators count the same cycles."""
    spec_kw, layer, _ = CASES["ragged"]
    a = _run(spec_kw, layer, "icarus", tmp_path / "i")
    b = _run(spec_kw, layer, "verilator", tmp_path / "v")
    # every hardware counter; sim_cycles is the harness's own count, up to the status poll that
    # sees the design idle, whose phase depends on when the simulator resumes the CSR master
    dut = [k for k in a.counters if k != "sim_cycles"]
    assert {k: a.counters[k] for k in dut} == {k: b.counters[k] for k in dut}
    assert abs(a.counters["sim_cycles"] - b.counters["sim_cycles"]) <= 8


@pytest.mark.slow
@pytest.mark.parametrize("spec_file,layer", [
    ("ws_8x8", "lenet5:conv2"), ("ws_8x8", "lenet5:conv1"),
    ("ws_16x16", "C=32,H=14,W=14,K=32,R=3,S=3,pad=1"),
])
def test_shipped_specs_real_layers(spec_file, layer, tmp_path):
    from pathlib import Path

    from gen.layer import parse_layer
    from gen.spec import load_spec
    spec = load_spec(Path(__file__).resolve().parent.parent / "specs" / f"{spec_file}.toml")
    L = parse_layer(layer)
    x, w, b = random_tensors(spec, L, 7, bias=True)
    res = simulate_layer(spec, L, x, w, b, sim="icarus", work_dir=tmp_path, in_pause=0.1,
                         out_pause=0.1)
    assert res.match


@pytest.mark.slow
def test_icarus_32x32(tmp_path):
    """The largest array the issue asks for, with C and K ragged over it (about 70 s)."""
    _run(dict(name="ws_32x32", rows=32, cols=32, input_depth=1024, weight_depth=1024,
              output_depth=512), ConvLayer(C=40, H=6, W=6, K=36, R=3, S=3, pad=1), "icarus",
         tmp_path, bias=True)
