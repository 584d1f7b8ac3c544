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
    post = {k: kw.pop(k) for k in list(kw) if k in ("out_bits", "mult_bits", "rounding")}
    if "postproc" in kw:
        post["enabled"] = kw.pop("postproc")
    extra = {"mapping": mapping} if mapping is not None else {}
    if "spads" in kw:
        extra["spads"] = kw.pop("spads")
    assert not kw, kw
    return spec_from_dict({"name": name, "dataflow": dataflow, **extra,
                           "array": {"rows": rows, "cols": cols},
                           "precision": prec, "buffers": bufs, "pipeline": pipe,
                           "postproc": post})
