# amaranth: UnusedElaboratable=no
# (components built only to compare their latencies are never elaborated)
"""hw/engines: one executor per engine; the latencies the controller's timing derives from (the
arrays': tests/test_engines.py)."""

from types import SimpleNamespace

import pytest
from amaranth.hdl import Fragment

from conftest import make_spec
from gen.engines import ENGINES
from hw.buffer import Scratchpad
from hw.engines import EXECUTORS, ExecutorSignature, executor_for
from hw.engines.weight_stationary import WeightStationary
from hw.requant import StoreRequantizer


def test_every_engine_has_an_executor():
    assert set(EXECUTORS) == set(ENGINES)
    for name, cls in EXECUTORS.items():
        kw = dict(rows=6, cols=4) if name == "rs" else {}
        exe = executor_for(make_spec(dataflow=name, **kw))
        assert type(exe) is cls and exe.engine == name
        assert isinstance(exe.signature, ExecutorSignature)
        Fragment.get(exe, None)   # it elaborates


def test_unknown_engine_raises():
    with pytest.raises(ValueError, match=r"^no executor for engine 'xyz'; hw/engines has "
                                         r"is, nlr, os, rs, ws$"):
        executor_for(SimpleNamespace(engine="xyz"))
    with pytest.raises(ValueError, match=r"^WeightStationary runs engine 'ws', not 'is'$"):
        WeightStationary(make_spec(dataflow="is"))


@pytest.mark.parametrize("reg", [False, True])
def test_buffer_latency_is_the_scratchpads(reg):
    spec = make_spec(buffer_reg=reg)
    assert Scratchpad(depth=64, width=8, registered=reg).latency == spec.buffer_latency


def test_postproc_latency_is_the_requantisers():
    spec = make_spec(postproc=True)
    assert StoreRequantizer(spec).latency == spec.postproc_latency
    assert make_spec(postproc=False).postproc_latency == 0
