"""The engine registry (gen/engines/): one Dataflow per Engine, looked up by the enum, nothing
falling through to another engine."""

import pytest

from gen import engines
from gen.engines import ENGINES, Engine
from gen.errors import AccelgenError
from gen.isa import identity
from gen.layer import ConvLayer
from gen.mapping import PRESETS, validate
from gen.spec import spec_from_dict


def _spec(engine, rows=4, cols=4, **more):
    return spec_from_dict({"name": "t", "dataflow": str(engine),
                           "array": {"rows": rows, "cols": cols}, **more})


def test_every_engine_has_one_dataflow():
    assert list(ENGINES) == list(Engine)
    for engine, flow in ENGINES.items():
        assert flow.engine is engine
        assert engines.get(engine) is flow and engines.get(str(engine)) is flow
    assert len({f.stationary for f in ENGINES.values()}) == len(ENGINES)


@pytest.mark.parametrize("name", ["xs", "", "WS ", None, 3])
def test_unknown_engine_is_refused(name):
    with pytest.raises(AccelgenError, match="unknown engine .*; the engines are ws, is, os, nlr, rs"):
        engines.get(name)


@pytest.mark.parametrize("engine", list(Engine))
def test_preset_mapping_is_built_by_its_engine(engine):
    assert validate(PRESETS[engine]) is engine
    spec = _spec(engine)
    assert spec.engine is engine and spec.flow is ENGINES[engine]
    assert identity(spec)["dataflow"] == list(Engine).index(engine) == engine.code


@pytest.mark.parametrize("engine", list(Engine))
def test_array_latency_is_the_hardware_arrays(engine):
    """The registry's latency and the array its factory builds agree (hw/array.py asserts it as
    it builds; this builds every engine at two sizes)."""
    from amaranth.hdl import Fragment

    from hw.array import array_for
    for rows, cols in ((2, 3), (5, 4)):
        spec = _spec(engine, rows, cols)
        arr = array_for(spec)
        assert arr.latency == spec.array_latency == spec.flow.array_latency(spec)
        Fragment.get(arr, None)   # (it elaborates)


@pytest.mark.parametrize("engine", list(Engine))
def test_footprint_covers_the_tilers_computes(engine):
    """Every COMPUTE the tiler plans lies inside the buffers by its engine's footprint."""
    from gen.isa import Op
    from gen.tiler import plan
    spec = _spec(engine, buffers={"input_depth": 256, "weight_depth": 128, "output_depth": 128})
    prog = plan(spec, ConvLayer(C=6, H=9, W=7, K=9, R=3, S=3, pad=1), bias=True)
    depths = {"ibuf": spec.input_depth, "wbuf": spec.weight_depth, "obuf": spec.output_depth}
    computes = [c for c in prog.commands if c.op == Op.COMPUTE]
    assert computes
    for c in computes:
        for buf, (lo, hi) in spec.flow.footprint(spec, c.header).items():
            assert 0 <= lo <= hi < depths[buf], (buf, lo, hi, c.header)


def test_a_mapping_no_engine_holds_is_refused():
    from gen.mapping import Mapping
    m = Mapping(rows=("C",), cols=("K",), stationary="psum", input="multicast",
                weight="unicast", psum="tree")     # legal by the laws; no engine holds "psum"
    with pytest.raises(AccelgenError, match="stationary must be one of weight, input, output, "
                                            "none, row, not 'psum'"):
        validate(m, "t")


def _engine_name_comparisons(path):
    """``x.engine == "ws"``-like comparisons (an engine attribute or ``eng`` against a name)."""
    import ast
    names = {str(e) for e in Engine}
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        consts = [c for s in sides for c in ([s] if not isinstance(s, ast.Tuple | ast.Set | ast.List)
                                              else s.elts)
                  if isinstance(c, ast.Constant) and c.value in names]
        subject = any((isinstance(s, ast.Attribute) and s.attr == "engine")
                      or (isinstance(s, ast.Name) and s.id in ("eng", "engine")) for s in sides)
        if consts and subject:
            found.append(f"{path}:{node.lineno}")
    return found


def test_no_engine_name_comparisons_outside_the_registry(tmp_path):
    """gen/, sim/ and hw/ ask the registry; comparing an engine with a name is the old way (and
    one that can silently send a new engine down another's path)."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    found = [hit for pkg in ("gen", "sim", "hw") for p in (root / pkg).rglob("*.py")
             if "engines" not in p.relative_to(root).parts[1:2]
             for hit in _engine_name_comparisons(p)]
    assert found == []
    bad = tmp_path / "bad.py"
    bad.write_text('if spec.engine in ("is", "rs"):\n    pass\nif eng == "ws":\n    pass\n')
    assert len(_engine_name_comparisons(bad)) == 2
