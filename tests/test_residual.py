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
