"""The tiler's scheduling passes (gen/schedule.py), each on hand-made command lists."""

from gen.isa import Op
from gen.program import Command
from gen.schedule import Release, Slotted, mark_sync, prefetch, queue_stores, rotate, rotation
from gen.spec import spec_from_dict

SPEC = spec_from_dict({"name": "t", "dataflow": "ws", "array": {"rows": 4, "cols": 4},
                       "buffers": {"input_depth": 100, "weight_depth": 64,
                                   "output_depth": 64}})


def compute(addr=0, waddr=0, oaddr=0, p=2, q=2, wt=4):
    """A 1x1 ws COMPUTE of a p x q tile: reads ibuf addr.., wbuf waddr..+3, writes oaddr.."""
    return Command(Op.COMPUTE, {"addr": addr, "waddr": waddr, "oaddr": oaddr, "p": p, "q": q,
                                "r": 1, "s": 1, "stride": 1, "dilation": 1, "row_step": wt,
                                "dil_step": 0, "accumulate": 0, "count": 0, "bias": 0})


def store(oaddr, hn=2, wn=2):
    return Command(Op.STORE, {"oaddr": oaddr, "count": hn * wn, "requant": 0, "relu": 0},
                   hn=hn, wn=wn)


def load_input(addr, hn=2, wn=4):
    return Command(Op.LOAD_INPUT, {"addr": addr, "count": hn * wn}, hn=hn, wn=wn)


def ops(cmds):
    """(op, its output address for COMPUTE/STORE or input address, count) per command."""
    return [(c.op.name, c.header["oaddr"] if c.op in (Op.COMPUTE, Op.STORE)
             else c.header.get("addr"), c.count) for c in cmds]


def test_rotation_parts():
    assert rotation(100, 30, 3) == (3, 33)
    assert rotation(100, 40, 3) == (2, 50)
    assert rotation(100, 60, 3) == (1, 100)     # one part: no rotation
    assert rotation(100, 0, 2) == (2, 50)


def test_rotate_places_allocations_in_turn():
    items = [Slotted(load_input(0), (("addr", "in", n),)) for n in range(4)]
    rel = Release((Slotted(store(3), (("oaddr", "out", 1),)), Command(Op.LOAD_QUANT, {"count": 4})))
    bias = Command(Op.LOAD_BIAS, {"count": 4})
    out = rotate([*items, rel, bias], {"in": (2, 50), "out": (2, 32)})
    assert [c.header["addr"] for c in out[:4]] == [0, 50, 0, 50]
    assert isinstance(out[4], Release)
    assert out[4].group[0].header["oaddr"] == 35 and out[4].group[1].op == Op.LOAD_QUANT
    assert out[5] is bias
    # a command on several allocations (a COMPUTE): each field from its own
    c = rotate([Slotted(compute(addr=1, waddr=2, oaddr=3),
                        (("addr", "in", 1), ("waddr", "w", 2), ("oaddr", "out", 3)))],
               {"in": (2, 50), "w": (3, 21), "out": (2, 32)})[0]
    assert (c.header["addr"], c.header["waddr"], c.header["oaddr"]) == (51, 44, 35)


def test_queue_stores_one_unit_after_each_compute():
    a, b, c = compute(oaddr=0), compute(oaddr=8), compute(oaddr=16)
    out = queue_stores(SPEC, [a, Release((store(0), store(4))), b, c], band=None)
    # released after a: the first STORE may go once a COMPUTE follows (after b), one per COMPUTE
    assert ops(out) == [("COMPUTE", 0, 0), ("COMPUTE", 8, 0), ("STORE", 0, 4),
                        ("COMPUTE", 16, 0), ("STORE", 4, 4)]


def test_queue_stores_flushes_before_an_overwrite():
    """A COMPUTE writing words a waiting STORE reads takes the queue up to that STORE first."""
    out = queue_stores(SPEC, [compute(oaddr=0), Release((store(0), store(4))),
                              compute(oaddr=4)], band=None)
    assert ops(out) == [("COMPUTE", 0, 0), ("STORE", 0, 4), ("STORE", 4, 4),
                        ("COMPUTE", 4, 0)]


def test_queue_stores_bands_and_quant_head():
    quant = Command(Op.LOAD_QUANT, {"count": 4})
    out = queue_stores(SPEC, [compute(oaddr=0, p=3, q=2), Release((quant, store(0, hn=3))),
                              compute(oaddr=10), compute(oaddr=20), compute(oaddr=30)], band=2)
    assert ops(out) == [("COMPUTE", 0, 0), ("COMPUTE", 10, 0), ("LOAD_QUANT", None, 4),
                        ("STORE", 0, 4), ("COMPUTE", 20, 0), ("STORE", 4, 2),
                        ("COMPUTE", 30, 0)]
    assert [c.h0 for c in out if c.op == Op.STORE] == [0, 2]


def test_queue_stores_leftovers_go_at_the_end():
    out = queue_stores(SPEC, [compute(), Release((store(0),))], band=None)
    assert ops(out) == [("COMPUTE", 0, 0), ("STORE", 0, 4)]


def test_prefetch_spreads_the_next_tile_over_this_ones_computes():
    cmds = [load_input(0, hn=4), compute(), compute(), compute(), load_input(50, hn=4),
            compute(addr=50)]
    out = prefetch(cmds)
    assert [(c.op.name, c.header["addr"], c.count) for c in out] == [
        ("LOAD_INPUT", 0, 16), ("COMPUTE", 0, 0), ("LOAD_INPUT", 50, 8), ("COMPUTE", 0, 0),
        ("LOAD_INPUT", 58, 8), ("COMPUTE", 0, 0), ("COMPUTE", 50, 0)]
    # 4 rows over 3 COMPUTEs: bands of ceil(4/3) = 2 rows
    assert [(c.h0, c.hn) for c in out if c.op == Op.LOAD_INPUT][1:] == [(0, 2), (2, 2)]


def test_prefetch_keeps_a_load_into_the_same_part():
    cmds = [load_input(0), compute(), load_input(0), compute()]
    assert prefetch(cmds) == cmds


def test_mark_sync_where_a_load_or_store_touches_running_computes():
    cmds = [compute(addr=0, oaddr=0), load_input(50), load_input(4), store(0)]
    out = mark_sync(SPEC, cmds)
    assert [c.header.get("sync", 0) for c in out] == [0, 0, 1, 0]
    # the sync waits for every COMPUTE: the STORE after it no longer overlaps a running one
    out = mark_sync(SPEC, [compute(oaddr=0), store(0)])
    assert out[1].header.get("sync") == 1
    out = mark_sync(SPEC, [compute(oaddr=0), Command(Op.LOAD_BIAS, {"count": 4}), store(0)])
    assert "sync" not in out[2].header          # LOAD_BIAS already waited for the executor
