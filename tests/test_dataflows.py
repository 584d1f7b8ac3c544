"""Every engine of the mapping description on the RTL (Icarus; a Verilator sample), against the
golden model: a table of layer shapes per engine, and hypothesis drawing random mappings × layer
shapes × data. The model's cycles must equal the RTL's whenever nothing stalls, and its buffer
access counts always.

The default run draws a handful of random cases; the campaign (``pytest -m slow -k campaign``)
draws many more. Either prints nothing unless a case fails, when hypothesis shrinks it and shows
the smallest failing layer.
"""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_spec, random_requant
from gen.layer import ConvLayer
from gen.model import estimate
from gen.tiler import plan
from sim.flow import random_tensors, simulate_layer

_OS_P = {"rows": ["P"], "cols": ["K"], "stationary": "output", "input": "forward",
         "weight": "forward", "psum": "in_place"}
_IS_Q = {"rows": ["C"], "cols": ["Q"], "stationary": "input", "input": "stationary",
         "weight": "forward", "psum": "forward"}
_RS_R = {"rows": ["R"], "cols": ["P"], "stationary": "row", "input": "multicast",
         "weight": "multicast", "psum": "forward"}
_BUF = dict(input_depth=160, weight_depth=400, output_depth=48, postproc=True)

#: small non-square arrays with small buffers, so layers tile in every dim
SPECS = {
    "is": dict(name="is_3x5", rows=3, cols=5, dataflow="is", **_BUF),
    "os": dict(name="os_3x5", rows=3, cols=5, dataflow="os", **_BUF),
    "nlr": dict(name="nlr_3x5", rows=3, cols=5, dataflow="nlr", **_BUF),
    "ws": dict(name="ws_3x5p", rows=3, cols=5, dataflow="ws", **_BUF),
    "os_p": dict(name="os_p_4x2", rows=4, cols=2, dataflow="custom", mapping=_OS_P,
                 mult_stages=0, **_BUF),
    "is_q": dict(name="is_q_2x4", rows=2, cols=4, dataflow="custom", mapping=_IS_Q,
                 buffer_reg=False, **_BUF),
    # small spads so layers fold R (7 > 3 rows) and S (ifmap spad of 8), and K (4 filters)
    "rs": dict(name="rs_3x4", rows=3, cols=4, dataflow="rs",
               spads={"filter": 16, "ifmap": 8, "psum": 4}, **_BUF),
    "rs_r": dict(name="rs_r_4x2", rows=4, cols=2, dataflow="custom", mapping=_RS_R,
                 mult_stages=1, buffer_reg=False,
                 spads={"filter": 9, "ifmap": 5, "psum": 3}, **_BUF),
}

LAYERS = {
    "3x3_pad1": (ConvLayer(C=7, H=7, W=6, K=11, R=3, S=3, pad=1), {"bias": True}),
    "1x1": (ConvLayer(C=5, H=5, W=4, K=6, R=1, S=1), {}),
    "1x1_s2_p1": (ConvLayer(C=6, H=9, W=7, K=5, R=1, S=1, stride=2, pad=1), {}),
    "fc": (ConvLayer(C=13, H=1, W=1, K=9, R=1, S=1), {"bias": True}),
    "7x7_s2_p3": (ConvLayer(C=3, H=10, W=9, K=4, R=7, S=7, stride=2, pad=3), {}),
    "1x3_3x1": (ConvLayer(C=4, H=6, W=7, K=5, R=1, S=3, pad=1), {}),
    "3x1_s4_d2": (ConvLayer(C=4, H=13, W=9, K=3, R=3, S=1, stride=4, pad=2, dilation=2), {}),
    "batch2_groups2": (ConvLayer(C=6, H=5, W=5, K=4, R=3, S=3, pad=1, N=2, groups=2), {}),
    "depthwise": (ConvLayer(C=5, H=6, W=6, K=5, R=3, S=3, pad=1, groups=5), {"bias": True}),
    "tiny": (ConvLayer(C=1, H=2, W=2, K=1, R=2, S=2), {}),
    "requant_relu": (ConvLayer(C=4, H=5, W=5, K=7, R=3, S=3, pad=1),
                     {"bias": True, "quant": True, "relu": True}),
    "backpressure": (ConvLayer(C=4, H=5, W=4, K=6, R=3, S=3, pad=1),
                     {"bias": True, "pause": 0.4}),
}


def run(spec_kw, layer, tmp_path, *, sim="icarus", bias=False, quant=False, relu=False,
        pause=0.0, seed=0):
    spec = make_spec(**spec_kw)
    x, w, b = random_tensors(spec, layer, seed, bias=bias)
    q = random_requant(spec, layer, x, w, b, seed) if quant else None
    res = simulate_layer(spec, layer, x, w, b, sim=sim, work_dir=tmp_path, in_pause=pause,
                         out_pause=pause, seed=seed, quant=q, relu=relu)
    assert res.match, (spec.engine, layer.describe(), res.summary()["first_mismatch"])
    assert res.counters["error"] == 0
    est = estimate(plan(spec, layer, bias=bias, requant=quant, relu=relu))
    assert {k: res.counters[k] for k in est.counters} == est.counters   # stalls or not
    if not pause:
        assert (res.counters["cycles"], res.counters["array_busy"]) == \
            (est.cycles, est.array_busy)
    return res


@pytest.mark.parametrize("layer_name", list(LAYERS))
@pytest.mark.parametrize("engine", ["is", "os", "nlr", "rs"])
def test_engine_layers(engine, layer_name, tmp_path):
    layer, opts = LAYERS[layer_name]
    run(SPECS[engine], layer, tmp_path, **opts)


def test_ws_compute_soon_after_a_few_pixel_tap(tmp_path):
    """A 16x16 WS layer of 3 pixels and two C tiles: the second COMPUTE is taken from XIDLE
    fewer than rows + cols + RL cycles after the first one's only tap began, so its weights
    wait until every PE has taken that tap's from its shadow (the classifier of ResNet-18 was
    wrong in output channels 8-15 before), and the model waits as long."""
    spec = dict(name="ws_16x16_few", rows=16, cols=16, dataflow="ws", **_BUF)
    run(spec, ConvLayer(C=32, H=1, W=3, K=16), tmp_path)


@pytest.mark.parametrize("custom", ["os_p", "is_q", "rs_r"])
@pytest.mark.parametrize("layer_name", ["3x3_pad1", "7x7_s2_p3", "requant_relu"])
def test_custom_mappings(custom, layer_name, tmp_path):
    layer, opts = LAYERS[layer_name]
    run(SPECS[custom], layer, tmp_path, **opts)


@pytest.mark.verilator
@pytest.mark.parametrize("engine", ["is", "os", "nlr", "rs"])
def test_engine_verilator(engine, tmp_path):
    layer, opts = LAYERS["backpressure"]
    assert run(SPECS[engine], layer, tmp_path, sim="verilator", **opts).sim == "verilator"


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["ws", "is", "os", "nlr", "rs"])
def test_layer_far_larger_than_array_and_buffers(engine, tmp_path):
    """A layer with 7x the array's rows in channels, 5x its columns in filters and an input map
    of 2,890 words against a 160-word input buffer: hundreds of tiles."""
    layer = ConvLayer(C=19, H=17, W=17, K=21, R=3, S=3, pad=1, N=1)
    run(SPECS[engine], layer, tmp_path, bias=True, quant=True, relu=True)


@st.composite
def layers(draw):
    R, S = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    D = draw(st.integers(1, 2))
    pad = draw(st.integers(0, 3))
    U = draw(st.integers(1, 4))
    H = draw(st.integers(max(1, (R - 1) * D + 1 - 2 * pad), 9))
    W = draw(st.integers(max(1, (S - 1) * D + 1 - 2 * pad), 9))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C = groups * draw(st.integers(1, 5))
    K = groups * draw(st.integers(1, 4))
    return ConvLayer(N=draw(st.integers(1, 2)), C=C, H=H, W=W, K=K, R=R, S=S, stride=U,
                     pad=pad, dilation=D, groups=groups)


def _random_case(data, tmp_path):
    spec_kw = SPECS[data.draw(st.sampled_from(sorted(SPECS)), label="spec")]
    layer = data.draw(layers(), label="layer")
    bias = data.draw(st.booleans(), label="bias")
    quant = data.draw(st.booleans(), label="requant")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    run(spec_kw, layer, tmp_path / f"s{seed}", bias=bias, quant=quant, relu=quant, seed=seed)


_HS = dict(deadline=None, derandomize=False, suppress_health_check=list(HealthCheck))


@settings(max_examples=int(os.environ.get("ACCELGEN_RANDOM_CASES", "10")), **_HS)
@given(data=st.data())
def test_random_mappings_layers_data(data, tmp_path_factory):
    _random_case(data, tmp_path_factory.mktemp("rand"))


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("ACCELGEN_CAMPAIGN_CASES", "150")), **_HS)
@given(data=st.data())
def test_random_campaign(data, tmp_path_factory):
    _random_case(data, tmp_path_factory.mktemp("camp"))
