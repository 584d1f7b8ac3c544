"""Max-pooling on the STORE path (gen/pooled.py, hw/pool.py): a conv layer and its following
non-overlapping MaxPool as one layer. The ISA machine against the golden model on many random
shapes (fast), the RTL against the golden model with model == RTL on every counter (Icarus)."""

import numpy as np
import pytest

from conftest import make_spec, random_requant
from gen.errors import AccelgenError
from gen.isa import Op, store_beats
from gen.layer import ConvLayer
from gen.model import estimate
from gen.pooled import ConvPool
from sim import isa_model
from sim.flow import random_tensors, simulate_layer

_BUF = dict(input_depth=256, weight_depth=128, output_depth=64)


def _isa(spec, layer, seed, *, quant, relu):
    x, w, b = random_tensors(spec, layer, seed, bias=True)
    q = random_requant(spec, layer.conv, x, w, b, seed) if quant else None
    prog = layer.plan(spec, bias=True, requant=quant, relu=relu)
    stores = [c for c in prog.commands if c.op == Op.STORE]
    assert all(c.header["pool"] and c.count % (layer.pool_r * c.header["pool_w"]) == 0
               for c in stores)
    y = layer.decode(prog, isa_model.run(spec, layer.encode(prog, x, w, b, q)), q)
    want = layer.golden(spec, x, w, b, q, relu)
    assert y.shape == layer.output_shape
    assert np.array_equal(y, want), layer.describe()
    return prog


_OS_P = {"rows": ["P"], "cols": ["K"], "stationary": "output", "input": "forward",
         "weight": "forward", "psum": "in_place"}


@pytest.mark.parametrize("engine", ["ws", "nlr", "os"])
def test_isa_pooled_layers_equal_golden(engine):
    """Random convs (stride, padding, dilation, groups, batches, small buffers that cut the map
    into many tiles and row bands) with random windows, requantised (signed or unsigned), with a
    ReLU, or raw accumulators."""
    rng = np.random.default_rng(14)
    post = engine == "ws"
    spec = make_spec(rows=4, cols=3, dataflow=engine, postproc=post, pool=True, **_BUF)
    done = 0
    while done < 40:
        dims = dict(C=int(rng.integers(1, 9)), H=int(rng.integers(2, 15)),
                    W=int(rng.integers(2, 15)), K=int(rng.integers(1, 8)),
                    R=int(rng.integers(1, 4)), S=int(rng.integers(1, 4)),
                    N=int(rng.integers(1, 3)), stride=int(rng.integers(1, 3)),
                    pad=int(rng.integers(0, 2)), dilation=int(rng.integers(1, 3)))
        kr, ks = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if engine == "os" and kr * ks > spec.rows:    # (an os block is at most rows pixels)
            continue
        try:
            layer = ConvPool(ConvLayer(**dims), kr, ks)
        except AccelgenError:       # the filter or the window does not fit the map
            continue
        quant = post and bool(rng.random() < 0.7)
        _isa(spec, layer, done, quant=quant, relu=post and not quant)
        done += 1


def test_pooled_store_traffic_and_model():
    """The 2x2 pool of the digits model's conv5: the STOREs read every conv output once, send a
    quarter of the words, and the model prices what leaves."""
    spec = make_spec(rows=8, cols=8, postproc=True, pool=True)
    layer = ConvPool(ConvLayer(C=8, H=10, W=10, K=16, R=3, S=3, N=2), 2, 2)
    prog = _isa(spec, layer, 1, quant=True, relu=False)
    stores = [c for c in prog.commands if c.op == Op.STORE]
    assert sum(c.count for c in stores) == 2 * 2 * 8 * 8          # N, K tiles, P, Q
    assert sum(store_beats(c.header) for c in stores) == 2 * 2 * 4 * 4
    plain = ConvLayer(C=8, H=10, W=10, K=16, R=3, S=3, N=2).plan(spec, bias=True, requant=True)
    assert estimate(prog).buffers["obuf_reads"] == estimate(plain).buffers["obuf_reads"]
    assert estimate(prog).accesses["dram"] < estimate(plain).accesses["dram"]


def test_pooling_refused_clearly():
    conv = ConvLayer(C=4, H=6, W=6, K=3, R=3, S=3)
    layer = ConvPool(conv, 2, 2)
    with pytest.raises(AccelgenError, match=r"needs the pooling unit.*\[pool\] enabled = true"):
        layer.plan(make_spec(postproc=True))
    os_p = make_spec(dataflow="custom", mapping=_OS_P, pool=True)   # blocks: runs down P
    with pytest.raises(AccelgenError, match=r"a block of the array \(3 pixels along P\) cannot "
                                            r"hold a whole 2x2 pooling window; keep the pooling "
                                            r"on the host"):
        layer.plan(os_p)
    ConvPool(conv, 2, 1).plan(os_p)          # 2x1 windows fit a column block
    with pytest.raises(AccelgenError, match="pool.enabled needs output words that hold pixels"):
        make_spec(dataflow="is", pool=True)
    with pytest.raises(AccelgenError, match="window does not fit the 4x4 output map"):
        ConvPool(conv, 5, 2)


def test_isa_refuses_pooling_stores():
    """A pooling STORE without the unit, or with windows that do not tile its words."""
    from gen.frames import pack_lanes
    from gen.isa import Cause, encode_header

    def store(spec, **f):
        words = encode_header(Op.STORE, oaddr=0, count=8, pool=1, **f)
        return [pack_lanes(np.array(words).reshape(-1, 1), 32, spec.in_stream_bits // 8)]

    spec = make_spec(pool=True)
    for bad in (make_spec(), spec):
        f = dict(pool_r=2, pool_s=2, pool_w=3) if bad is spec else dict(pool_r=2, pool_s=2,
                                                                          pool_w=4)
        with pytest.raises(isa_model.CommandError) as e:
            isa_model.run(bad, store(bad, **f))
        assert e.value.cause == Cause.FIELD
    assert len(isa_model.run(spec, store(spec, pool_r=2, pool_s=2, pool_w=4))[0]) == \
        2 * spec.out_stream_bits // 8


@pytest.mark.parametrize("case", ["ws_requant", "ws_unsigned_backpressure", "nlr_raw",
                                  "os_raw"])
def test_pooled_layer_on_the_rtl(case, tmp_path):
    """Icarus: the pooled outputs equal the golden model's; every counter equals the model's
    (cycles too without stalls)."""
    engine = case.split("_")[0]
    spec = make_spec(name=f"pool_{engine}", rows=4 if engine == "os" else 3, cols=4,
                     dataflow=engine,
                     postproc=engine == "ws", pool=True, **_BUF)
    conv = ConvLayer(C=4, H=9, W=8, K=6, R=3, S=3, pad=1, N=1 + (engine != "ws"))
    layer = ConvPool(conv, *((3, 2) if case == "ws_unsigned_backpressure" else (2, 2)))
    pause = 0.4 if "backpressure" in case else 0.0
    x, w, b = random_tensors(spec, layer, 5, bias=True)
    q = (random_requant(spec, conv, x, w, b, 5, signed=case == "ws_requant")
         if engine == "ws" else None)
    res = simulate_layer(spec, layer, x, w, b, work_dir=tmp_path, quant=q, in_pause=pause,
                         out_pause=pause, seed=5)
    assert res.output.shape == layer.output_shape and res.match, res.summary()["first_mismatch"]
    assert res.counters["error"] == 0
    est = estimate(layer.plan(spec, bias=True, requant=q is not None))
    assert {k: res.counters[k] for k in est.counters} == est.counters
    if not pause:
        assert res.counters["cycles"] == est.cycles
