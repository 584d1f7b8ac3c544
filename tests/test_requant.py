# amaranth: UnusedElaboratable=no
# (constructor-error tests create components that are never elaborated)
"""The fp32-exact requantiser (hw/requant.py) against the golden (sim/golden.py requantize_fp32),
and the golden against onnxruntime itself.

Three layers of evidence: the RTL in Amaranth simulation on corner cases (exact ties, near ties
that only fp32's double rounding decides, accumulators beyond 2**24 including conversion ties,
saturation at both ends, per-lane scales, zero points at both ends of their range, folded ReLU
and Clip ranges, odd scales: subnormal, zero, huge, negative); the RTL's integer algorithm,
stage for stage in vectorised numpy, against numpy's float32 arithmetic on millions of random
inputs; and the golden against onnxruntime's QLinearConv on per-channel models.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.requant import Fp32Requantizer
from sim.golden import requantize_fp32


def _bits(f):
    return np.asarray(f, dtype=np.float32).view(np.uint32).astype(np.int64)


def _ranges(rng, n, ob):
    """Per-vector (zp, qmin, qmax): a signed or unsigned ``ob``-bit range, the zero point at
    either end or inside, sometimes a ReLU folded (qmin = zp) or a Clip narrowing the range."""
    signed = rng.random(n) < 0.5
    lo = np.where(signed, -(1 << (ob - 1)), 0)
    hi = np.where(signed, (1 << (ob - 1)) - 1, (1 << ob) - 1)
    pick = rng.integers(0, 4, n)
    zp = np.where(pick == 0, lo, np.where(pick == 1, hi, rng.integers(lo, hi + 1)))
    qmin, qmax = lo.copy(), hi.copy()
    relu = rng.random(n) < 0.2
    qmin[relu] = zp[relu]
    clip = rng.random(n) < 0.1
    a, b = rng.integers(lo, hi + 1), rng.integers(lo, hi + 1)
    qmin[clip], qmax[clip] = np.minimum(a, b)[clip], np.maximum(a, b)[clip]
    return zp, qmin, qmax


def fp32_ties(rng, count, ob):
    """(acc, scale) whose exact product lies within two fp32 ulps of a half-integer without
    being one: the fp32 multiply's own rounding decides whether it becomes a tie (a fixed-point
    or float64 requantiser rounds some of them the other way). Scales have short significands
    at times, so products end in long runs of zeros (the guard and sticky bits' corner cases).
    |acc| < 2**28, so float64 holds the exact product."""
    accs, scales = [], []
    while sum(map(len, accs)) < count:
        s = (rng.random(20000) * 2.0 ** rng.integers(-20, -13, 20000)).astype(np.float32)
        drop = np.array([0, 8, 16, 20, 21, 22])[rng.integers(0, 6, 20000)]
        s = (_bits(s) >> drop << drop).astype(np.uint32).view(np.float32)
        t = rng.integers(-(1 << (ob - 1)), 1 << (ob - 1), 20000) + 0.5
        a = (np.rint(t / s.astype(np.float64)) + rng.integers(-1, 2, 20000)).astype(np.int64)
        exact = a.astype(np.float64) * s.astype(np.float64)
        off = np.abs(exact - (np.floor(exact) + 0.5))
        ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
        keep = (np.abs(a) < (1 << 28)) & (off > 0) & (off <= 2 * ulp)
        accs.append(a[keep])
        scales.append(s[keep])
    return np.concatenate(accs)[:count], np.concatenate(scales)[:count]


def corner_cases(rng, n, lanes, ob, acc_bits):
    """``n`` cycles of ``lanes`` (acc, scale bits) and per-cycle (zp, qmin, qmax)."""
    amax = 1 << (acc_bits - 1)
    size = (n, lanes)
    kind = rng.integers(0, 10 if acc_bits > 29 else 7, size)
    acc = np.zeros(size, dtype=np.int64)
    scale = np.zeros(size, dtype=np.float32)
    sign = np.where(rng.random(size) < 0.5, -1, 1)
    out = 1 << ob
    # 0: exact ties of acc * scale (scale 2**-k, acc an odd multiple of 2**(k-1))
    k = rng.integers(1, 12, size)
    m = rng.integers(0, out, size)
    tie_acc = (2 * m + 1) << (k - 1)
    ok = tie_acc < amax
    acc = np.where((kind == 0) & ok, sign * tie_acc, acc)
    scale = np.where(kind == 0, np.ldexp(np.float32(1), -k).astype(np.float32), scale)
    # 1: near ties: acc around (t + 1/2) / scale for a random fp32 scale
    s = (rng.random(size) * 2.0 ** rng.integers(-16, 3, size)).astype(np.float32) + np.float32(1e-9)
    t = rng.integers(-out, out, size) + 0.5
    near = np.rint(t / s.astype(np.float64)) + rng.integers(-2, 3, size)
    near = np.clip(near, -amax, amax - 1).astype(np.int64)
    acc = np.where(kind == 1, near, acc)
    scale = np.where(kind == 1, s, scale)
    # 2: |acc| beyond 2**24, scale bringing it into range
    big = rng.integers(1 << min(24, acc_bits - 2), amax, size)
    acc = np.where(kind == 2, sign * big, acc)
    target = rng.integers(-2 * out, 2 * out, size).astype(np.float64) + rng.random(size)
    scale = np.where(kind == 2, np.abs(target / big).astype(np.float32) + np.float32(1e-30), scale)
    # 3: int -> fp32 conversion ties (bit 24 below the leading one is the only one set), +-1
    if acc_bits > 26:
        d = rng.integers(2, acc_bits - 24, size)
        top = rng.integers(1 << 23, 1 << 24, size)
        conv = (top << d) + (1 << (d - 1)) + rng.integers(-1, 2, size)
        conv = np.where(conv < amax, conv, amax - 1)
        acc = np.where(kind == 3, sign * conv, acc)
        scale = np.where(kind == 3, np.abs(target / conv).astype(np.float32), scale)
    # 4: saturation (large scales), both signs
    acc = np.where(kind == 4, sign * rng.integers(1, amax, size), acc)
    scale = np.where(kind == 4, (rng.random(size) * 2.0 ** rng.integers(0, 40, size)
                                 ).astype(np.float32), scale)
    # 5: extremes of the accumulator
    ext = np.array([-amax, amax - 1, 0, 1, -1, 1 << min(24, acc_bits - 2)])
    acc = np.where(kind == 5, ext[rng.integers(0, ext.size, size)], acc)
    scale = np.where(kind == 5, (rng.random(size) * 2.0 ** rng.integers(-40, 8, size)
                                 ).astype(np.float32), scale)
    # 6: plain random accumulators and scales
    acc = np.where(kind == 6, rng.integers(-amax, amax, size), acc)
    scale = np.where(kind == 6, (rng.random(size) * 2.0 ** rng.integers(-(acc_bits - 1) + ob, 2,
                                                                         size)).astype(np.float32),
                     scale)
    # 7, 8, 9: fp32-decided ties
    if acc_bits > 29:
        sel = kind >= 7
        ta, ts = fp32_ties(rng, int(sel.sum()), ob)
        acc[sel], scale[sel] = ta, ts
    bits = _bits(scale)
    # odd scales: subnormal, zero, the largest finite, negative
    odd = rng.random(size) < 0.03
    oddv = np.array([1, 0x7FFFFF, 0, 0x7F7FFFFF, 0x00800000], dtype=np.int64)
    bits = np.where(odd, oddv[rng.integers(0, oddv.size, size)], bits)
    bits = np.where(rng.random(size) < 0.02, bits | (1 << 31), bits)
    return (acc, bits, *_ranges(rng, n, ob))


def golden(acc, bits, zp, qmin, qmax):
    """requantize_fp32 per vector (its zero point and range), per lane (its scale)."""
    scale = bits.astype(np.uint32).view(np.float32)
    with np.errstate(over="ignore"):
        return requantize_fp32(acc, scale, zp[:, None], qmin[:, None], qmax[:, None])


def _run_rtl(dut, acc, bits, zp, qmin, qmax):
    W, ob, lanes = dut.acc_bits, dut.out_bits, dut.lanes
    n = len(acc)
    mask, omask = (1 << W) - 1, (1 << ob) - 1
    ins = [sum((int(acc[t, j]) & mask) << (j * W) for j in range(lanes)) for t in range(n)]
    scs = [sum(int(bits[t, j]) << (32 * j) for j in range(lanes)) for t in range(n)]
    got = []

    async def tb(ctx):
        for t in range(n + dut.latency):
            if t < n:
                ctx.set(dut.i.as_value(), ins[t])
                ctx.set(dut.scale.as_value(), scs[t])
                ctx.set(dut.zero_point, int(zp[t]))
                ctx.set(dut.qmin, int(qmin[t]))
                ctx.set(dut.qmax, int(qmax[t]))
            if t >= dut.latency:
                o = ctx.get(dut.o.as_value())
                got.append([(o >> (j * ob)) & omask for j in range(lanes)])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return np.array(got, dtype=np.int64)


def _check_rtl(lanes, acc_bits, out_bits, n, seed):
    rng = np.random.default_rng(seed)
    vec = corner_cases(rng, n, lanes, out_bits, acc_bits)
    want = golden(*vec) & ((1 << out_bits) - 1)
    got = _run_rtl(Fp32Requantizer(lanes=lanes, acc_bits=acc_bits, out_bits=out_bits), *vec)
    bad = np.argwhere(got != want)
    if len(bad):
        t, j = bad[0]
        acc, bits, zp, qmin, qmax = vec
        raise AssertionError(
            f"{len(bad)} of {want.size} differ; first: acc {acc[t, j]} scale bits "
            f"{bits[t, j]:#010x} zp {zp[t]} range [{qmin[t]}, {qmax[t]}]: rtl {got[t, j]}, "
            f"golden {want[t, j]}")
    return vec, want


@pytest.mark.parametrize("lanes,acc_bits,out_bits", [(4, 32, 8), (2, 20, 8), (2, 48, 16),
                                                     (2, 32, 4)])
def test_rtl_equals_golden(lanes, acc_bits, out_bits):
    """Corner cases through the RTL, parameters changing every cycle."""
    vec, want = _check_rtl(lanes, acc_bits, out_bits, 1500, seed=acc_bits * 100 + out_bits)
    acc, _, zp, qmin, qmax = vec
    # the cases mean something: beyond 2**24, saturating at both ends, in between
    full = golden(*vec)
    assert (np.abs(acc) > (1 << 24)).any() == (acc_bits > 25)
    assert (full == qmin[:, None]).any() and (full == qmax[:, None]).any()
    assert ((full > qmin[:, None]) & (full < qmax[:, None])).mean() > 0.15


@pytest.mark.parametrize("out_bits", [8, 12])
def test_rtl_fp32_decided_ties(out_bits):
    """Products within two fp32 ulps of a half-integer, many with short scale significands (so
    the guard and sticky bits of the fp32 multiply's rounding sit in long runs of zeros)."""
    rng = np.random.default_rng(out_bits)
    n, lanes = 800, 4
    acc, scale = fp32_ties(rng, n * lanes, out_bits)
    acc = acc.reshape(n, lanes) * np.where(rng.random((n, lanes)) < 0.5, -1, 1)
    bits = _bits(scale).reshape(n, lanes)
    half = 1 << (out_bits - 1)
    zp, qmin, qmax = np.zeros(n, np.int64), np.full(n, -half), np.full(n, half - 1)
    want = golden(acc, bits, zp, qmin, qmax)
    dut = Fp32Requantizer(lanes=lanes, acc_bits=32, out_bits=out_bits)
    got = _run_rtl(dut, acc, bits, zp, qmin, qmax)
    assert np.array_equal(got, want & ((1 << out_bits) - 1))
    # float64 arithmetic (one rounding) disagrees on some of them: they are the hard cases
    f64 = np.clip(np.rint(acc * scale.reshape(n, lanes).astype(np.float64)), -half, half - 1)
    assert (f64 != want).sum() > 20


@pytest.mark.parametrize("acc_bits,out_bits", [(32, 8), (20, 8), (48, 16)])
def test_rtl_held_parameters_equal_golden(acc_bits, out_bits):
    """With ``held`` (parameters read where each stage needs them, not carried down the
    pipeline), corner cases in blocks of one parameter set each, held until the block's last word
    has come out (as the store unit holds a STORE's): equal to the golden model."""
    lanes, block, n = 4, 24, 1200
    rng = np.random.default_rng(acc_bits + out_bits)
    acc, bits, zp, qmin, qmax = corner_cases(rng, n, lanes, out_bits, acc_bits)
    first = np.arange(n) // block * block      # each word takes its block's first parameters
    bits, zp, qmin, qmax = bits[first], zp[first], qmin[first], qmax[first]
    want = golden(acc, bits, zp, qmin, qmax) & ((1 << out_bits) - 1)
    dut = Fp32Requantizer(lanes=lanes, acc_bits=acc_bits, out_bits=out_bits, held=True)
    L = dut.latency
    # after each block, L more cycles of the same parameters (their words are not checked)
    idx = np.concatenate([np.r_[b:b + block, [b + block - 1] * L] for b in range(0, n, block)])
    real = np.concatenate([np.r_[[True] * block, [False] * L] for _ in range(0, n, block)])
    got = _run_rtl(dut, acc[idx], bits[idx], zp[idx], qmin[idx], qmax[idx])[real]
    assert np.array_equal(got, want)
    # carried parameters would have been needed: they change between blocks
    assert len(set(zp.tolist())) > 3 and len({tuple(b) for b in bits.tolist()}) > 10


@pytest.mark.slow
def test_rtl_equals_golden_long():
    _check_rtl(8, 32, 8, 20000, seed=7)


def test_constructor_checks():
    dut = Fp32Requantizer(lanes=3, acc_bits=32, out_bits=8)
    assert (dut.lanes, dut.acc_bits, dut.out_bits, dut.latency) == (3, 32, 8, 15)
    with pytest.raises(ValueError, match=r"^out_bits must be an integer from 2 to 16, not 17$"):
        Fp32Requantizer(lanes=3, acc_bits=32, out_bits=17)
    with pytest.raises(ValueError, match=r"^acc_bits must be an integer from 2 to 64, not True$"):
        Fp32Requantizer(lanes=3, acc_bits=True, out_bits=8)


def test_golden_refuses_an_empty_range():
    with pytest.raises(ValueError, match=r"^qmin must not exceed qmax, not 5 > 4$"):
        requantize_fp32(np.zeros(3), 1.0, 0, 5, 4)


# -- the RTL's algorithm in vectorised numpy (int64), stage for stage, for millions of inputs ----

def integer_model(acc, bits, zp, qmin, qmax, ob):
    """hw/requant.py's integer steps (|acc| < 2**53): no floating point anywhere."""
    acc, bits = np.asarray(acc, np.int64), np.asarray(bits, np.int64)
    neg = (acc < 0) ^ ((bits >> 31) & 1).astype(bool)
    a = np.abs(acc)
    e = (bits >> 23) & 0xFF
    man = (bits & 0x7FFFFF) | (1 << 23)
    zero = (a == 0) | (e == 0)
    ea = np.frexp(np.maximum(a, 1).astype(np.float64))[1].astype(np.int64) - 1
    d = np.maximum(ea - 23, 0)
    top = a >> d
    rem = a & ((np.int64(1) << d) - 1)
    half = np.where(d > 0, np.int64(1) << np.maximum(d - 1, 0), 0)
    top = top + ((d > 0) & ((rem > half) | ((rem == half) & (top & 1).astype(bool))))
    carry = top >> 24
    fm = np.where(carry == 1, top >> 1, top) << np.maximum(23 - ea, 0)
    ea = ea + carry
    p = fm * man                                              # < 2**48
    hi = p >> 47
    mant = p >> (23 + hi)
    rem = p & ((np.int64(1) << (23 + hi)) - 1)
    half = np.int64(1) << (22 + hi)
    up = (rem > half) | ((rem == half) & (mant & 1).astype(bool))
    pm = mant + up
    u = 150 - ea - e - hi
    base = 23 - ob
    uc = np.clip(u, base, 24)
    q0 = pm >> uc
    guard = ((pm >> (uc - 1)) & 1).astype(bool)
    low = (np.int64(1) << (uc - 1)) - 1                   # the sticky bits of pm, from mant
    sticky = np.where(up, (mant & low) != low, (mant & low) != 0)
    q = q0 + (guard & (sticky | (q0 & 1).astype(bool)))
    q = np.where(u < base, 1 << (ob + 1), np.where(u > 24, 0, q))
    q = np.where(zero, 0, q)
    t = np.where(neg, zp - q, zp + q)
    return np.clip(t, qmin, qmax)


@pytest.mark.parametrize("ob", [8, 4, 16])
def test_integer_algorithm_equals_fp32_on_millions(ob):
    """The RTL's algorithm, not a float in sight, equals numpy's float32 steps on 2 million
    corner-case and random inputs per output width."""
    rng = np.random.default_rng(ob)
    acc, bits, zp, qmin, qmax = corner_cases(rng, 250_000, 8, ob, 32)
    want = golden(acc, bits, zp, qmin, qmax)
    got = integer_model(acc, bits, zp[:, None], qmin[:, None], qmax[:, None], ob)
    bad = np.argwhere(got != want)
    assert not len(bad), (len(bad), [(acc[t, j], hex(bits[t, j]), zp[t], qmin[t], qmax[t],
                                      got[t, j], want[t, j]) for t, j in bad[:3]])


def test_integer_algorithm_on_all_near_ties():
    """Every accumulator within 40 of an exact half-integer product for 2,000 random scales:
    the cases a fixed-point multiplier gets wrong."""
    rng = np.random.default_rng(5)
    s = (rng.random(2000) * 2.0 ** rng.integers(-20, 0, 2000)).astype(np.float32)
    t = rng.integers(-300, 300, 2000) + 0.5
    acc = np.rint(t / s.astype(np.float64)).astype(np.int64)[:, None] + np.arange(-40, 41)
    acc = np.clip(acc, -(1 << 31), (1 << 31) - 1)
    bits = np.broadcast_to(_bits(s)[:, None], acc.shape)
    n = len(acc)
    for zp, qmin, qmax in ((-128, -128, 127), (127, -128, 127), (0, 0, 255), (255, 0, 255)):
        z = np.full(n, zp)
        want = golden(acc, bits, z, np.full(n, qmin), np.full(n, qmax))
        assert np.array_equal(integer_model(acc, bits, zp, qmin, qmax, 8), want)


# -- the golden against onnxruntime itself ---------------------------------------------------------

def _ort_conv_check(act, fmt, size, seed):
    """A quantized conv-ReLU-conv model (per-channel int8 weights): every QLinearConv output of
    onnxruntime equals requantize_fp32 applied to the exact int32 accumulators. Returns the number
    of requantised outputs compared."""
    pytest.importorskip("onnxruntime")
    from gen.network import load
    from gen.network.zoo import NetBuilder, quantize
    from sim import netgolden, ortref
    rng = np.random.default_rng(seed)
    b = NetBuilder("rq", (1, 16, size, size), seed=seed)
    y = b.conv(b.relu(b.conv(b.input, 32, 3)), 24, 3, stride=2)
    cal = [rng.normal(size=(1, 16, size, size)).astype(np.float32) for _ in range(2)]
    qm = quantize(b.model(y), cal, fmt=fmt, activations=act, per_channel=True)
    x = (rng.normal(size=(1, 16, size, size)) * 1.5).astype(np.float32)
    g = load(qm)
    env = netgolden.run(g, x)
    cmp = ortref.compare(qm, g, env, {"input": x})
    assert cmp.equal, cmp.describe()
    convs = [n for n in g.nodes if n.op == "QLinearConv"]
    assert len(convs) == 2
    seen = 0
    for node in convs:
        a, qx, qy = node.attrs, g.q(node.inputs[0]), g.q(node.output)
        acc = netgolden.conv_acc(env[node.inputs[0]], a["w"], a["bias"], qx.zp, a["w_zp"],
                                 a["strides"], a["pads"], a["dilations"], a["group"])
        scale = netgolden.requant_scale(qx.s, a["w_scale"], qy.s)
        assert np.size(scale) > 1                                  # per-channel
        want = requantize_fp32(acc, scale, qy.zp, qy.qmin, qy.qmax)
        assert node.output in cmp.checked                          # onnxruntime's tensor
        np.testing.assert_array_equal(env[node.output].astype(np.int64), want)
        seen += want.size
    return seen


@pytest.mark.parametrize("act,fmt", [("uint8", "qdq"), ("int8", "qdq"), ("uint8", "qoperator")])
def test_golden_equals_onnxruntime(act, fmt):
    assert _ort_conv_check(act, fmt, 32, seed=1) > 20_000


@pytest.mark.slow
@pytest.mark.parametrize("act", ["uint8", "int8"])
def test_golden_equals_onnxruntime_large(act):
    assert _ort_conv_check(act, "qdq", 256, seed=2) > 2_000_000


@pytest.mark.parametrize("flow", ["ws", "is"])
def test_store_requantizer_switches_per_word(flow):
    """The STORE path's unit: requantised words (out_bits per lane, packed from lane 0) and raw
    accumulators (ReLU'd or not) interleaved cycle by cycle, one fixed latency; the parameters
    change word by word where a channel memory gives them (is), else they hold still (ws: the
    requantiser reads them where it needs them)."""
    from conftest import make_spec
    from hw.requant import StoreRequantizer
    spec = make_spec(rows=2, cols=3, dataflow=flow, postproc=True, out_bits=8, acc_bits=24)
    dut = StoreRequantizer(spec)
    rng = np.random.default_rng(4)
    n = 200
    acc = rng.integers(-(1 << 23), 1 << 23, (n, 3))
    scale = (rng.random((n, 3)) * 2.0 ** -14).astype(np.float32)
    mode = rng.integers(0, 3, n)              # 0 requant, 1 raw, 2 raw + relu
    zp, qmin, qmax = _ranges(rng, n, 8)
    if not spec.per_word_channels:
        scale, zp, qmin, qmax = (np.repeat(v[:1], n, axis=0) for v in (scale, zp, qmin, qmax))
    want = []
    for t in range(n):
        if mode[t] == 0:
            q = golden(acc[t:t + 1], _bits(scale[t:t + 1]), zp[t:t + 1], qmin[t:t + 1],
                       qmax[t:t + 1])[0] & 0xFF
            want.append(sum(int(v) << (8 * j) for j, v in enumerate(q)))
        else:
            y = np.maximum(acc[t], 0) if mode[t] == 2 else acc[t]
            want.append(sum((int(v) & 0xFFFFFF) << (24 * j) for j, v in enumerate(y)))
    got = []

    async def tb(ctx):
        for t in range(n + dut.latency):
            if t < n:
                ctx.set(dut.i.as_value(), sum((int(v) & 0xFFFFFF) << (24 * j)
                                              for j, v in enumerate(acc[t])))
                ctx.set(dut.param.as_value(), sum(int(b) << (32 * j)
                                                  for j, b in enumerate(_bits(scale[t]))))
                ctx.set(dut.requant, int(mode[t] == 0))
                ctx.set(dut.relu, int(mode[t] == 2))
                ctx.set(dut.zero_point, int(zp[t]))
                ctx.set(dut.qmin, int(qmin[t]))
                ctx.set(dut.qmax, int(qmax[t]))
            if t >= dut.latency:
                got.append(ctx.get(dut.o))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert got == want


@pytest.mark.parametrize("act", ["uint8", "int8"])
def test_network_layers_requantised_on_the_isa_model(act):
    """gen/network/lower.py's on-chip requantisation (requant_params on the STORE path, the ISA
    reference machine) gives each conv node's output exactly as onnxruntime's reference does."""
    pytest.importorskip("onnxruntime")
    from conftest import make_spec
    from gen.network import load, lower
    from gen.network.zoo import NetBuilder, quantize
    from sim import netgolden
    rng = np.random.default_rng(3)
    b = NetBuilder("rq", (1, 6, 10, 10), seed=3)
    y = b.conv(b.relu(b.conv(b.input, 9, 3)), 5, 3, stride=2, pads=(1, 0, 2, 1))
    cal = [rng.normal(size=(1, 6, 10, 10)).astype(np.float32) for _ in range(2)]
    qm = quantize(b.model(y), cal, activations=act, per_channel=True)
    g = load(qm)
    env = netgolden.run(g, (rng.normal(size=(1, 6, 10, 10)) * 2).astype(np.float32))
    spec = make_spec(rows=4, cols=3, postproc=True, input_depth=512, weight_depth=256,
                     output_depth=128)
    convs = [n for n in g.nodes if n.op == "QLinearConv"]
    for node in convs:
        hw = lower.lower(spec, g, node, env[node.inputs[0]])
        out = lower.outputs_on_isa(spec, g, node, hw)
        assert out.dtype == env[node.output].dtype
        np.testing.assert_array_equal(out, env[node.output], err_msg=node.name)
