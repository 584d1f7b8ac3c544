"""The residual Add on the STORE path, host side: its parameters (gen/quant.py AddQuant), the
conv + add layer kind (gen/residual.py) through the tiler, the frames and the ISA reference
machine against its golden model, on every engine."""

import numpy as np
import pytest

from gen.errors import AccelgenError
from gen.quant import AddQuant, add_params, add_params_ok, add_quant
from sim.golden import qadd_int
from sim.netgolden import fma32

f32 = np.float32


def test_add_params_are_onnxruntimes_steps():
    rng = np.random.default_rng(0)
    for _ in range(200):
        sa, sb, sc = (f32(rng.uniform(1e-3, 1.0)) for _ in range(3))
        za, zb, zc = (int(v) for v in rng.integers(-128, 256, 3))
        ra, rb, fixed = add_params(sa, za, sb, zb, sc, zc)
        assert ra == f32(sa / sc) and rb == f32(sb / sc)
        assert fixed == f32(zc) - fma32(f32(sa / sc), f32(za), f32(sb / sc) * f32(zb))
        assert add_params_ok(ra, rb, fixed) is None


def test_qadd_int_rounds_once_per_fma_and_clamps():
    ra, rb, fixed = f32(0.5), f32(0.25), f32(0.25)
    # 3*0.5 + (1*0.25 + 0.25) = 2.0; 1*0.5 + 0 + 0.25*... ties go to even
    assert qadd_int(3, 1, ra, rb, fixed, -128, 127) == 2
    assert qadd_int(1, 0, ra, rb, f32(0), -128, 127) == 0        # rint(0.5) = 0
    assert qadd_int(3, 0, ra, rb, f32(0), -128, 127) == 2        # rint(1.5) = 2
    assert qadd_int(127, 127, f32(4), f32(4), f32(0), -128, 127) == 127
    assert qadd_int(-128, -128, f32(4), f32(4), f32(0), 0, 255) == 0


@pytest.mark.parametrize("ra, rb, fixed, what", [
    (f32(2.0 ** -61), f32(1), f32(0), "rA"),
    (f32(1), f32(2.0 ** 61), f32(0), "rB"),
    (f32(1), f32(1), f32(2.0 ** -70), "fixed"),
    (f32(1), f32(1), f32(np.inf), "fixed"),
    (f32(1e-40), f32(1), f32(0), "rA"),           # subnormal
    (f32(0), f32(1), f32(0), "rA"),
])
def test_add_params_ok_refuses_outside_the_units_domain(ra, rb, fixed, what):
    why = add_params_ok(ra, rb, fixed)
    assert why is not None and f"the Add's {what} " in why


def test_add_params_ok_edges():
    assert add_params_ok(f32(2.0 ** -60), f32(-2.0 ** 60), f32(0)) is None
    assert add_params_ok(f32(1), f32(1), f32(-2.0 ** 60)) is None


def test_add_quant_beats_and_refusals():
    q = add_quant((0.1, 3), (0.2, -5), (0.15, 7), conv_is_b=True, res_signed=False,
                  qmin=-20, qmax=100)
    ra, rb, fixed = add_params(0.1, 3, 0.2, -5, 0.15, 7)
    assert (q.ra, q.rb, q.fixed, q.swap, q.res_signed) == (ra, rb, fixed, True, False)
    beats = q.beats()
    assert beats.tolist()[:3] == [int(np.asarray(v, f32).view(np.uint32)) for v in (ra, rb, fixed)]
    assert beats[3] == ((-20) & 0xFFFF) | (100 << 16)
    with pytest.raises(AccelgenError, match="the Add's B scale must be positive"):
        add_quant((0.1, 0), (0.0, 0), (0.1, 0), conv_is_b=False, res_signed=True, qmin=-128,
                  qmax=127)


def test_add_quant_resolved_against_the_spec():
    from conftest import make_spec
    plain = make_spec(name="plain", postproc=True)
    res = make_spec(name="res", postproc=True, residual=True)
    q = AddQuant(f32(0.5), f32(0.5), f32(0), -128, 127)
    with pytest.raises(AccelgenError, match=r"set \[postproc\] residual = true"):
        q.resolved(plain)
    assert q.resolved(res) == q
    with pytest.raises(AccelgenError, match=r"range \[-1, 255\] must lie within"):
        AddQuant(f32(0.5), f32(0.5), f32(0), -1, 255).resolved(res)
    with pytest.raises(AccelgenError, match="keep this Add on the host"):
        AddQuant(f32(2.0 ** 70), f32(0.5), f32(0), -128, 127).resolved(res)


# -- the conv + add layer kind through the tiler, the frames and the ISA machine ------------------

_BUF = dict(input_depth=256, weight_depth=128, output_depth=64)


def _random_add(spec, rng, conv_signed: bool):
    """Random Add parameters: the conv's output and the residual each the Add's A or B, the
    residual int8 or uint8, the output range signed, unsigned or ReLU-folded."""
    ob = spec.out_bits
    res_signed = bool(rng.random() < 0.5)
    rlo, rhi = (-(1 << (ob - 1)), (1 << (ob - 1)) - 1) if res_signed else (0, (1 << ob) - 1)
    out_signed = bool(rng.random() < 0.5)
    lo, hi = (-(1 << (ob - 1)), (1 << (ob - 1)) - 1) if out_signed else (0, (1 << ob) - 1)
    zc = int(rng.integers(lo, hi + 1))
    if rng.random() < 0.3:
        lo = zc                                          # a ReLU folded into the range
    zconv = int(rng.integers(-(1 << (ob - 1)), 1 << (ob - 1)) if conv_signed
                else rng.integers(0, 1 << ob))
    zres = int(rng.integers(rlo, rhi + 1))
    conv_q, res_q = (float(rng.uniform(0.005, 0.2)), zconv), (float(rng.uniform(0.005, 0.2)), zres)
    swap = bool(rng.random() < 0.5)
    a, b = (res_q, conv_q) if swap else (conv_q, res_q)
    add = add_quant(a, b, (float(rng.uniform(0.01, 0.3)), zc), conv_is_b=swap,
                    res_signed=res_signed, qmin=lo, qmax=hi)
    return add, (rlo, rhi)


def _isa_conv_add(spec, conv, seed):
    from conftest import random_requant
    from gen.isa import ADD_BEATS, Op
    from gen.residual import ConvAdd
    from sim import isa_model
    from sim.flow import random_tensors
    rng = np.random.default_rng(seed)
    layer = ConvAdd(conv)
    x, w, b = random_tensors(spec, conv, seed, bias=True)
    quant = random_requant(spec, conv, x, w, b, seed)
    add, (rlo, rhi) = _random_add(spec, rng, quant.signed)
    res = rng.integers(rlo, rhi + 1, layer.output_shape)
    prog = layer.plan(spec, bias=True, requant=True)
    ops = [c.op for c in prog.commands]
    assert ops.count(Op.LOAD_ADD) == 1 and ops.index(Op.LOAD_ADD) == ops.index(Op.STORE) - 1
    assert all(c.header["add"] for c in prog.commands if c.op == Op.STORE)
    assert next(c for c in prog.commands if c.op == Op.LOAD_ADD).count == ADD_BEATS
    frames = layer.encode(prog, x, w, b, quant, residual=res, add=add)
    y = layer.decode(prog, isa_model.run(spec, frames), quant, add=add)
    want = layer.golden(spec, x, w, b, quant, residual=res, add=add)
    assert y.shape == layer.output_shape
    assert np.array_equal(y, want), (conv.describe(), add)
    return layer, prog, (x, w, b, quant, res, add), y


_OS_P = {"rows": ["P"], "cols": ["K"], "stationary": "output", "input": "forward",
         "weight": "forward", "psum": "in_place"}


@pytest.mark.parametrize("engine", ["ws", "os", "nlr", "is", "rs"])
def test_isa_conv_add_layers_equal_golden(engine):
    """Random convs (stride, padding, dilation, groups, batches; small buffers that cut the map
    into many tiles, K tiles and row bands, im2col and strided 1x1 rewrites) with random Adds,
    through the tiler, the frames and the ISA machine, equal the golden model."""
    from conftest import make_spec
    from gen.layer import ConvLayer
    rng = np.random.default_rng(41)
    spec = make_spec(name=f"res_{engine}", rows=4, cols=3, dataflow=engine, postproc=True,
                     residual=True, **_BUF)
    done = 0
    while done < 25:
        dims = dict(C=int(rng.integers(1, 9)), H=int(rng.integers(2, 12)),
                    W=int(rng.integers(2, 12)), K=int(rng.integers(1, 8)),
                    R=int(rng.integers(1, 4)), S=int(rng.integers(1, 4)),
                    N=int(rng.integers(1, 3)), stride=int(rng.integers(1, 3)),
                    pad=int(rng.integers(0, 2)), dilation=int(rng.integers(1, 3)))
        g = int(rng.choice([1, 1, 2]))
        if dims["C"] % g or dims["K"] % g:
            g = 1
        try:
            conv = ConvLayer(**dims, groups=g)
        except AccelgenError:       # the filter does not fit the map
            continue
        try:
            _isa_conv_add(spec, conv, int(rng.integers(1 << 30)))
        except AccelgenError as e:
            assert "buffers" in str(e) or "weight_depth" in str(e), e
            continue
        done += 1


def test_the_add_changes_the_outputs_and_swap_matters():
    """The ISA machine's add is not a no-op, and add_swap picks which input is which."""
    import dataclasses

    from conftest import make_spec
    from gen.layer import ConvLayer
    from sim import isa_model
    spec = make_spec(name="res", rows=4, cols=4, postproc=True, residual=True, **_BUF)
    conv = ConvLayer(C=5, H=6, W=5, K=6, R=3, S=3, pad=1)
    layer, prog, (x, w, b, quant, res, add), y = _isa_conv_add(spec, conv, 3)
    plain = conv.golden(spec, x, w, b, quant)
    assert not np.array_equal(y, plain)
    other = dataclasses.replace(add, swap=not add.swap)
    y2 = layer.decode(prog, isa_model.run(spec, layer.encode(prog, x, w, b, quant, residual=res,
                                                             add=other)), quant, add=add)
    assert not np.array_equal(y2, y)
    assert np.array_equal(y2, layer.golden(spec, x, w, b, quant, residual=res, add=other))


def test_conv_add_refusals():
    """One line each: no residual unit, no requantisation, with pooling, a residual of the wrong
    shape or range, missing or unexpected Add parameters."""
    import dataclasses

    from conftest import make_spec, random_requant
    from gen.layer import ConvLayer
    from gen.residual import ConvAdd
    from gen.tiler import plan
    from sim.flow import random_tensors
    spec = make_spec(name="res", rows=4, cols=4, postproc=True, residual=True, pool=True, **_BUF)
    plain = make_spec(name="plain", rows=4, cols=4, postproc=True, **_BUF)
    conv = ConvLayer(C=3, H=4, W=4, K=5, R=3, S=3, pad=1)
    layer = ConvAdd(conv)
    x, w, b = random_tensors(spec, conv, 1, bias=True)
    quant = random_requant(spec, conv, x, w, b, 1, signed=True)
    add = AddQuant(f32(0.5), f32(0.25), f32(1.0), -128, 127, res_signed=False)
    res = np.zeros(conv.output_shape, dtype=np.int64)
    with pytest.raises(AccelgenError, match=r"needs the residual unit.*residual = true"):
        layer.plan(plain, bias=True, requant=True)
    with pytest.raises(AccelgenError, match="adds requantised outputs: plan the layer with"):
        layer.plan(spec, bias=True)
    with pytest.raises(AccelgenError, match="cannot both max-pool and add"):
        plan(spec, conv, requant=True, pool=(2, 2), add=True)
    prog = layer.plan(spec, bias=True, requant=True)
    for kw, message in (
            (dict(residual=res[:, :4], add=add), r"residual tensor has shape \(1, 4, 4, 4\)"),
            (dict(residual=res - 1, add=add), r"residual values span -1..-1 but its unsigned"),
            (dict(residual=res.astype(float), add=add), "must hold integers"),
            (dict(residual=res), r"needs the Add's parameters \(gen.quant.AddQuant"),
            (dict(residual=res, add=(0.5, 0.25)), "must be a gen.quant.AddQuant")):
        with pytest.raises(AccelgenError, match=message):
            layer.encode(prog, x, w, b, quant, **kw)
    from gen import frames
    with pytest.raises(AccelgenError, match="no residual tensor and Add parameters"):
        frames.encode(prog, x, w, b, quant)
    with pytest.raises(AccelgenError, match="cannot both max-pool and add"):
        frames.encode(dataclasses.replace(prog, pool=(2, 2)), x, w, b, quant, residual=res,
                      add=add)
    conv_prog = conv.plan(spec, bias=True, requant=True)
    with pytest.raises(AccelgenError, match="planned without the residual add"):
        frames.encode(conv_prog, x, w, b, quant, residual=res, add=add)
    with pytest.raises(AccelgenError, match="give its Add parameters"):
        frames.decode(prog, [], quant)
