import os

import pytest

from gen.spec import spec_from_dict


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory):
    """Simulator builds go to a per-session cache unless the caller chose one."""
    if "ACCELGEN_CACHE" not in os.environ:
        base = tmp_path_factory.getbasetemp()
        if os.environ.get("PYTEST_XDIST_WORKER"):
            base = base.parent  # shared by all workers of this run; builds are locked
        os.environ["ACCELGEN_CACHE"] = str(base / "accelgen-cache")
    yield


def make_spec(name="t", rows=3, cols=5, dataflow="ws", mapping=None, **kw):
    prec = {k: kw.pop(k) for k in list(kw) if k in ("act_bits", "act_signed", "weight_bits",
                                                     "weight_signed", "acc_bits")}
    bufs = {k: kw.pop(k) for k in list(kw) if k in ("input_depth", "weight_depth",
                                                     "output_depth")}
    pipe = {k: kw.pop(k) for k in list(kw) if k in ("mult_stages", "buffer_reg")}
    post = {k: kw.pop(k) for k in list(kw) if k in ("out_bits", "residual")}
    if "postproc" in kw:
        post["enabled"] = kw.pop("postproc")
    extra = {"mapping": mapping} if mapping is not None else {}
    if "pool" in kw:
        extra["pool"] = {"enabled": kw.pop("pool")}
    if "spads" in kw:
        extra["spads"] = kw.pop("spads")
    if "footprint_check" in kw:
        extra["frontend"] = {"footprint_check": kw.pop("footprint_check")}
    assert not kw, kw
    return spec_from_dict({"name": name, "dataflow": dataflow, **extra,
                           "array": {"rows": rows, "cols": cols},
                           "precision": prec, "buffers": bufs, "pipeline": pipe,
                           "postproc": post})


def random_requant(spec, layer, x, w, b=None, seed=0, signed=None):
    """A gen.quant.Requant for the layer's accumulators: per-channel fp32 scales that bring each
    channel's typical accumulator near the range's edge (so outputs spread and some saturate at
    both ends), a signed or unsigned range, the zero point at an end or inside."""
    import numpy as np

    from gen.quant import Requant
    from sim import golden
    rng = np.random.default_rng(seed)
    acc = golden.conv2d(x, w, b, stride=layer.stride, pad=layer.pad, dilation=layer.dilation,
                        groups=layer.groups, acc_bits=spec.acc_bits)
    mag = np.maximum(np.percentile(np.abs(acc), 80, axis=(0, 2, 3)), 1.0)
    ob = spec.out_bits
    scale = ((1 << (ob - 1)) / mag * rng.uniform(0.5, 2.0, layer.K)).astype(np.float32)
    if signed is None:
        signed = bool(rng.random() < 0.5)
    lo, hi = (-(1 << (ob - 1)), (1 << (ob - 1)) - 1) if signed else (0, (1 << ob) - 1)
    zp = int(rng.choice([lo, hi, (lo + hi) // 2]))
    return Requant(scale, zp, lo, hi)


@pytest.fixture
def spec_file(tmp_path):
    """A small spec (tests/cli_helpers.py ``SPEC``) written to ``spec.toml``."""
    from cli_helpers import SPEC
    p = tmp_path / "spec.toml"
    p.write_text(SPEC)
    return p


def pool_window_fields(rng, window: int, widths: int, rows: int, *, first_rows: int = 1,
                       wild: bool = False) -> tuple[int, int, int, int]:
    """A pooling STORE's (count, pool_r, pool_s, pool_w) from ``rng`` (a random.Random): windows
    of 1 to ``window - 1`` words a side in rows of ``pool_s`` times 1 to ``widths - 1`` words,
    ``first_rows`` to ``rows - 1`` bands, so the windows tile the words; or, one time in five
    each, ``count`` or ``pool_w`` one off, or some fields zero (``wild``: one in six each, and
    random fields of their header widths besides)."""
    kr, ks = rng.randrange(1, window), rng.randrange(1, window)
    pw = ks * rng.randrange(1, widths)
    count = kr * pw * rng.randrange(first_rows, rows)
    tweak = rng.randrange(6 if wild else 5)
    if tweak == 1:
        count += rng.choice([-1, 1])
    elif tweak == 2:
        pw += rng.choice([-1, 1])
    elif tweak == 3:
        kr, ks, pw = (v * rng.randrange(2) for v in (kr, ks, pw))
    elif tweak == 4 and wild:
        count, kr, ks, pw = (rng.randrange(1 << w) for w in (17, 8, 8, 15))
    return count, kr, ks, pw
