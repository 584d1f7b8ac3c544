# amaranth: UnusedElaboratable=no
# (constructor-error tests create components that are never elaborated)
"""hw/resadd.py, the exact QLinearAdd unit, in Amaranth simulation against
sim/golden.py :func:`~sim.golden.qadd_int` (onnxruntime's arithmetic, fp32 FMAs).

Cases: all (A, B) pairs (a strided sample by default; every pair under ``-m slow``) for
ResNet-like parameters with zero points at the ends of the int8 and uint8 ranges; random
parameters over the whole domain (gen/quant.py :func:`~gen.quant.add_params_ok`), different on
every cycle; the outer FMA's double-rounding near-ties (``s`` within half an ulp of ``k + 1/2``);
exact ties of the inner FMA; sums whose rounding only the sticky bit decides (an exact midpoint
plus a tiny addend, in either FMA); zero inputs, ``fixed = 0`` and exact cancellation to 0;
saturation at both ends; a folded ReLU range.
"""

from fractions import Fraction

import numpy as np
import pytest
from amaranth.sim import Simulator

from gen.quant import add_params, add_params_ok
from hw.resadd import ResidualAdd
from sim.golden import qadd_int

f32 = np.float32
LANES = 8


def _bits(f):
    return int(np.asarray(f, dtype=np.float32).view(np.uint32))


def _simulate(a, b, ra, rb, fixed, qmin, qmax, lanes=LANES, bits=8):
    """Outputs of the unit for ``n`` cycles: ``a``, ``b`` of shape (n, lanes), the parameters of
    shape (n,)."""
    dut = ResidualAdd(lanes=lanes, bits=bits)
    n = len(a)
    got = []

    async def bench(ctx):
        for k in range(n + dut.latency):
            if k < n:
                ctx.set(dut.a, [int(v) for v in a[k]])
                ctx.set(dut.b, [int(v) for v in b[k]])
                for port, v in ((dut.ra, ra), (dut.rb, rb), (dut.fixed, fixed)):
                    ctx.set(port, _bits(v[k]))
                ctx.set(dut.qmin, int(qmin[k]))
                ctx.set(dut.qmax, int(qmax[k]))
            else:                              # the pipeline must not need its inputs held
                ctx.set(dut.a, [0] * lanes)
                ctx.set(dut.ra, 0xFFFFFFFF)
            await ctx.tick()
            if k >= dut.latency - 1 and len(got) < n:
                got.append([int(v) for v in ctx.get(dut.o)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.int64).reshape(n, lanes)


def _check(cases, lanes=LANES, seed=0):
    """Compare the unit with qadd_int on ``cases`` (a list of (A, B, rA, rB, fixed, qmin, qmax)).
    A cycle's lanes share their parameters: cases with equal parameters go ``lanes`` to a cycle,
    and the lanes a group leaves empty get random inputs (checked too)."""
    groups = {}
    for a, b, *par in cases:
        ra, rb, fx = (f32(v) for v in par[:3])
        for name, r, zero_ok in (("rA", ra, False), ("rB", rb, False), ("fixed", fx, True)):
            assert (2.0 ** -60 <= abs(float(r)) <= 2.0 ** 60) or (zero_ok and r == 0), \
                f"test case outside the domain: {name} = {r!r}"
        key = (_bits(ra), _bits(rb), _bits(fx), int(par[3]), int(par[4]))
        groups.setdefault(key, []).append((int(a), int(b)))
    rng = np.random.default_rng(seed)
    rows_a, rows_b, par = [], [], []
    for key, ab in groups.items():
        for c in range(0, len(ab), lanes):
            chunk = ab[c:c + lanes]
            fill = rng.integers(-128, 256, (lanes - len(chunk), 2)).tolist()
            rows_a.append([x for x, _ in chunk + fill])
            rows_b.append([y for _, y in chunk + fill])
            par.append(key)
    a, b = np.array(rows_a, np.int64), np.array(rows_b, np.int64)
    ra, rb, fx = (np.array([p[i] for p in par], np.uint32).view(np.float32) for i in range(3))
    lo, hi = (np.array([p[i] for p in par], np.int64) for i in (3, 4))
    want = qadd_int(a, b, ra[:, None], rb[:, None], fx[:, None], lo[:, None], hi[:, None])
    got = _simulate(a, b, ra, rb, fx, lo, hi, lanes=lanes)
    bad = got != want
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise AssertionError(
            f"{int(bad.sum())} of {bad.size} outputs differ; first: A={a[r, c]} B={b[r, c]} "
            f"rA={ra[r]!r} rB={rb[r]!r} fixed={fx[r]!r} [{lo[r]}, {hi[r]}]: unit {got[r, c]}, "
            f"onnxruntime {want[r, c]}")


# -- parameters ---------------------------------------------------------------------------------

INT8, UINT8 = (-128, 127), (0, 255)


def _resnet_like(rng):
    """Scales 0.01..0.1, zero points at the ends of (or inside) each tensor's range, types
    int8 or uint8 each; the output range is its type's, or [zc, top] (a folded ReLU)."""
    ta, tb, tc = (INT8 if rng.random() < 0.5 else UINT8 for _ in range(3))

    def zp(t):
        return int(rng.choice([t[0], t[1], (t[0] + t[1]) // 2, rng.integers(t[0], t[1] + 1)]))
    sa, sb, sc = rng.uniform(0.01, 0.1, 3)
    za, zb, zc = zp(ta), zp(tb), zp(tc)
    lo, hi = tc
    if rng.random() < 0.3:
        lo = zc                                             # ReLU folded
    return ta, tb, (*add_params(sa, za, sb, zb, sc, zc), lo, hi)


def _pairs(ta, tb, params, step=1, offset=0):
    av = np.arange(ta[0], ta[1] + 1)
    bv = np.arange(tb[0], tb[1] + 1)
    aa, bb = np.meshgrid(av, bv, indexing="ij")
    aa, bb = aa.reshape(-1)[offset::step], bb.reshape(-1)[offset::step]
    return [(int(x), int(y), *params) for x, y in zip(aa, bb, strict=True)]


def _random_fp32(rng, n, lo, hi, short=0.3):
    """``n`` random fp32 values with |v| in [2**lo, 2**hi), random signs; some significands
    short (ending in many zero bits)."""
    e = rng.integers(lo, hi, n)
    m = rng.integers(1 << 23, 1 << 24, n)
    drop = np.where(rng.random(n) < short, rng.integers(8, 24, n), 0)
    m = (m >> drop) << drop
    v = np.ldexp(m.astype(np.float64), e - 23)
    return (np.where(rng.random(n) < 0.5, -1, 1) * v).astype(np.float32)


def _domain_cases(rng, n):
    """Random parameters over the whole domain (each case its own), half of them scaled so
    that the result lands inside the output range."""
    cases = []
    wide = rng.random(n) < 0.5
    ra = np.where(wide, _random_fp32(rng, n, -60, 60), _random_fp32(rng, n, -12, 2))
    rb = np.where(wide, _random_fp32(rng, n, -60, 60), _random_fp32(rng, n, -12, 2))
    fx = np.where(wide, _random_fp32(rng, n, -60, 60), _random_fp32(rng, n, -8, 9))
    fx[rng.random(n) < 0.1] = 0
    a = rng.integers(-128, 256, n)
    b = rng.integers(-128, 256, n)
    a[rng.random(n) < 0.05] = 0
    b[rng.random(n) < 0.05] = 0
    for i in range(n):
        t = INT8 if rng.random() < 0.5 else UINT8
        lo, hi = t
        if rng.random() < 0.2:
            lo = int(rng.integers(t[0], t[1] + 1))
        cases.append((int(a[i]), int(b[i]), ra[i], rb[i], fx[i], lo, hi))
    return cases


def _f(v):
    return Fraction(float(v))


def _outer_near_ties(rng, n):
    """``s = A·rA + t`` within a few ulps of ``k + 1/2`` (``t`` = ``fixed`` exactly, or
    ``B·rB + fixed`` with ``B·rB`` a short exact value): where ``round24(s)`` is the tie
    ``k + 1/2`` onnxruntime's result is the even integer, not the nearest one."""
    cases = []
    while len(cases) < n:
        a = int(rng.integers(-128, 256))
        ra = _random_fp32(rng, 1, -8, 0)[0]
        k = int(rng.integers(-140, 260))
        target = Fraction(2 * k + 1, 2) - a * _f(ra)
        t = f32(float(target))
        t = np.nextafter(t, f32(np.inf) if rng.random() < 0.5 else f32(-np.inf)) \
            if rng.random() < 0.4 else t
        if t == 0 or not 2.0 ** -60 <= abs(float(t)) <= 2.0 ** 60:
            continue
        if rng.random() < 0.5:
            cases.append((a, 0, ra, f32(rng.uniform(0.01, 2)), t, -128, 255))
            continue
        b = int(rng.integers(-128, 256))
        rb = f32(2.0 ** -int(rng.integers(4, 16)) * int(rng.integers(1, 8)))
        fixed = _f(t) - b * _f(rb)
        if fixed != 0 and _f(f32(float(fixed))) == fixed and b:
            cases.append((a, b, ra, rb, f32(float(fixed)), -128, 255))
    return cases


def _midpoint(h: Fraction, up: bool) -> Fraction:
    """The fp32 midpoint beside the half-integer ``h`` (above when ``up``)."""
    e = abs(h).numerator.bit_length() - abs(h).denominator.bit_length()
    if Fraction(2) ** e > abs(h):
        e -= 1
    ulp = Fraction(2) ** (e - 23)
    return h + (ulp / 2 if up else -ulp / 2)


def _exact_ratio(m: Fraction, k: int):
    """``m / k`` as an fp32 value when it is one exactly, else None."""
    if k == 0:
        return None
    r = m / k
    v = f32(float(r))
    return v if _f(v) == r and v != 0 else None


def _inner_ties(rng, n):
    """``B·rB + fixed`` exactly on an fp32 midpoint beside a half-integer (``A = 0``, so the
    output is ``rint(t)``): ties to even decide ``t``, and ``t`` decides ``y``."""
    cases = []
    while len(cases) < n:
        h = Fraction(2 * int(rng.integers(-120, 250)) + 1, 2)
        mid = _midpoint(h, rng.random() < 0.5)
        b = int(rng.integers(-128, 256))
        rb = f32(2.0 ** -int(rng.integers(16, 26)) * int(rng.choice([1, 3, 5, 7])))
        fixed = mid - b * _f(rb)
        if b == 0 or fixed == 0 or _f(f32(float(fixed))) != fixed:
            continue
        cases.append((0, b, f32(0.5), rb, f32(float(fixed)), -128, 255))
    return cases


def _sticky_cases(rng, n):
    """A product exactly on an fp32 midpoint beside a half-integer, plus a tiny addend of
    either sign: only the sticky bit of the bits shifted out decides the rounding. Half in
    the inner FMA (``B·rB`` the midpoint, ``fixed`` tiny, ``A = 0``), half in the outer
    (``A·rA`` the midpoint, ``t = B·rB`` tiny, ``fixed = 0``)."""
    cases = []
    while len(cases) < n:
        h = Fraction(2 * int(rng.integers(-120, 250)) + 1, 2)
        mid = _midpoint(h, rng.random() < 0.5)
        k = int(rng.integers(-128, 256))
        r = _exact_ratio(mid, k)
        if r is None or not 2.0 ** -60 <= abs(float(r)) <= 2.0 ** 60:
            continue
        tiny = _random_fp32(rng, 1, -60, -26)[0]
        if rng.random() < 0.5:
            cases.append((0, k, f32(1), r, tiny, -128, 255))
        else:
            cases.append((k, 1, r, tiny, f32(0), -128, 255))
    return cases


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resnet_like_pairs(seed):
    """A sample of the (A, B) pairs (every 31st, a different offset per parameter set) for three
    ResNet-like parameter sets."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(3):
        ta, tb, params = _resnet_like(rng)
        cases += _pairs(ta, tb, params, step=31, offset=int(rng.integers(31)))
    _check(cases)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_resnet_like_all_pairs(seed):
    """Every (A, B) pair for a ResNet-like parameter set."""
    ta, tb, params = _resnet_like(np.random.default_rng(seed))
    _check(_pairs(ta, tb, params), lanes=16)


def test_domain_random():
    """Random parameters over the whole domain, each case its own (so every cycle differs)."""
    _check(_domain_cases(np.random.default_rng(4), 1200))


def test_outer_double_rounding():
    """Near-ties of the outer FMA: onnxruntime's rint(round24(s)), not rint(s)."""
    cases = _outer_near_ties(np.random.default_rng(5), 600)
    # the set must hold cases where the double rounding changes the integer
    s = [a * _f(ra) + b * _f(rb) + _f(fx) for a, b, ra, rb, fx, _, _ in cases]
    single = [round(v) for v in s]                        # Python rounds half to even, exactly
    want = qadd_int(*(np.array(c) for c in zip(*cases, strict=True)))
    assert sum(int(w) != min(max(v, -128), 255) for w, v in zip(want, single, strict=True)) > 20
    _check(cases)


def test_inner_exact_ties():
    cases = _inner_ties(np.random.default_rng(6), 400)
    _check(cases)


def test_sticky_decides():
    cases = _sticky_cases(np.random.default_rng(7), 400)
    _check(cases)


def test_zeros_and_cancellation():
    """A or B zero, fixed zero, t = 0 exactly (fixed = -B·rB), s = 0 exactly (fixed = -A·rA,
    B = 0), and near-cancellations leaving a small rest."""
    rng = np.random.default_rng(8)
    cases = []
    for _ in range(300):
        ra, rb = _random_fp32(rng, 2, -9, 3, short=1.0)       # short: products exact in fp32
        a, b = (int(v) for v in rng.integers(-128, 256, 2))
        fixed = _random_fp32(rng, 1, -9, 8)[0]
        lo, hi = (-128, 127) if rng.random() < 0.5 else (0, 255)
        cases += [(0, b, ra, rb, fixed, lo, hi), (a, 0, ra, rb, fixed, lo, hi),
                  (0, 0, ra, rb, fixed, lo, hi), (a, b, ra, rb, f32(0), lo, hi),
                  (0, 0, ra, rb, f32(0), lo, hi)]
        pb, pa = b * _f(rb), a * _f(ra)
        rest = _f(_random_fp32(rng, 1, -30, 2)[0])
        for fixed in (-pb, rest - pb):              # t = 0, t = rest
            if b and _f(f32(float(fixed))) == fixed:
                cases.append((a, b, ra, rb, f32(float(fixed)), lo, hi))
        for fixed in (-pa, rest - pa):              # s = 0 (B = 0: t = fixed), s = rest
            if a and _f(f32(float(fixed))) == fixed:
                cases.append((a, 0, ra, rb, f32(float(fixed)), lo, hi))
    want = qadd_int(*(np.array(c) for c in zip(*cases, strict=True)))
    assert (want == 0).sum() > 100
    _check(cases)


def test_saturation_and_relu():
    """Results far beyond and just beyond both ends of int8 and uint8, and a folded ReLU
    ([zc, 127])."""
    rng = np.random.default_rng(9)
    cases = []
    for _ in range(300):
        a, b = (int(v) for v in rng.integers(-128, 256, 2))
        ra = _random_fp32(rng, 1, -2, 60)[0]
        rb = _random_fp32(rng, 1, -2, 60)[0]
        fixed = _random_fp32(rng, 1, -60, 60)[0]
        near = (a, b, f32(abs(ra) % 4 + 0.5), f32(abs(rb) % 4 + 0.5),
                f32(rng.uniform(-300, 300)))
        zc = int(rng.integers(-128, 100))
        for lo, hi in ((-128, 127), (0, 255), (zc, 127)):
            cases += [(a, b, ra, rb, fixed, lo, hi), (*near, lo, hi)]
    want = qadd_int(*(np.array(c) for c in zip(*cases, strict=True)))
    lo, hi = np.array([c[5] for c in cases]), np.array([c[6] for c in cases])
    assert (want == lo).sum() > 100 and (want == hi).sum() > 100
    _check(cases)


def test_parameters_per_cycle_and_lanes():
    """Each cycle carries its own parameters; lanes are independent (one lane, and 3)."""
    rng = np.random.default_rng(10)
    cases = _domain_cases(rng, 60)
    for lanes in (1, 3):
        _check(cases, lanes=lanes)


@pytest.mark.parametrize("bits", [3, 10])
def test_other_widths(bits):
    """Lanes of ``bits`` bits (inputs and bounds in [-2**(bits-1), 2**bits - 1]), the window and
    the saturation sized from them."""
    rng = np.random.default_rng(bits)
    n, lanes = 150, 4
    lo_, hi_ = -(1 << (bits - 1)), (1 << bits) - 1
    a, b = (rng.integers(lo_, hi_ + 1, (n, lanes)) for _ in range(2))
    wide = rng.random(n) < 0.3
    ra, rb = (np.where(wide, _random_fp32(rng, n, -60, 60), _random_fp32(rng, n, -bits - 3, 2))
              for _ in range(2))
    fx = np.where(wide, _random_fp32(rng, n, -60, 60), _random_fp32(rng, n, -4, bits + 1))
    fx[rng.random(n) < 0.1] = 0
    signed = rng.random(n) < 0.5
    lo, hi = np.where(signed, lo_, 0), np.where(signed, (1 << (bits - 1)) - 1, hi_)
    want = qadd_int(a, b, ra[:, None], rb[:, None], fx[:, None], lo[:, None], hi[:, None])
    assert len(np.unique(want)) > min(1 << bits, 100)        # not all saturated or 0
    got = _simulate(a, b, ra, rb, fx, lo, hi, lanes=lanes, bits=bits)
    assert (got == want).all(), f"{int((got != want).sum())} of {want.size} outputs differ"


def test_held_parameters():
    """``held``: parameters that change only between runs of words (the pipeline drained in
    between, as the store unit does between STOREs); every word of a run is checked."""
    rng = np.random.default_rng(14)
    dut = ResidualAdd(lanes=4, held=True)
    runs = []
    for _ in range(4):
        ta, tb, (ra, rb, fx, lo, hi) = _resnet_like(rng)
        words = [(rng.integers(ta[0], ta[1] + 1, 4), rng.integers(tb[0], tb[1] + 1, 4))
                 for _ in range(int(rng.integers(1, 12)))]
        runs.append(((ra, rb, fx, lo, hi), words))
    got = []

    async def bench(ctx):
        for (ra, rb, fx, lo, hi), words in runs:
            for port, v in ((dut.ra, ra), (dut.rb, rb), (dut.fixed, fx)):
                ctx.set(port, _bits(v))
            ctx.set(dut.qmin, int(lo))
            ctx.set(dut.qmax, int(hi))
            for k in range(len(words) + dut.latency):
                if k < len(words):
                    ctx.set(dut.a, [int(v) for v in words[k][0]])
                    ctx.set(dut.b, [int(v) for v in words[k][1]])
                await ctx.tick()
                if dut.latency - 1 <= k < len(words) + dut.latency - 1:
                    got.append([int(v) for v in ctx.get(dut.o)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = [qadd_int(a, b, ra, rb, fx, lo, hi).tolist()
            for (ra, rb, fx, lo, hi), words in runs for a, b in words]
    assert got == want


def test_add_params_ok():
    assert add_params_ok(f32(0.5), f32(0.7), f32(-3.25)) is None
    assert add_params_ok(f32(0.5), f32(0.7), f32(0)) is None
    assert "rA" in add_params_ok(f32(2.0 ** -61), f32(0.7), f32(1))
    assert "rB" in add_params_ok(f32(1), f32(0), f32(1))
    assert "fixed" in add_params_ok(f32(1), f32(1), f32(2.0 ** 61))
    assert "fixed" in add_params_ok(f32(1), f32(1), f32(np.nan))
    assert "rA" in add_params_ok(f32(np.inf), f32(1), f32(1))


def test_refuses_bad_widths():
    with pytest.raises(ValueError, match="bits must be an integer from 2 to 10"):
        ResidualAdd(lanes=2, bits=12)
    with pytest.raises(ValueError, match="lanes must be an integer from 1 to 1024"):
        ResidualAdd(lanes=0)
