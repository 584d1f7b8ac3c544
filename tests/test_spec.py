import re
from pathlib import Path

import pytest

from gen.errors import AccelgenError
from gen.mapping import PRESETS
from gen.spec import load_spec, spec_from_dict

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _spec(**over):
    d = {"name": "t", "array": {"rows": 4, "cols": 4}}
    for k, v in over.items():
        if "." in k:
            sec, key = k.split(".")
            d.setdefault(sec, {})[key] = v
        else:
            d[k] = v
    return d


def test_shipped_specs_load():
    names = sorted(p.stem for p in SPECS.glob("*.toml"))
    assert {"ws_8x8", "ws_16x16"} <= set(names)
    for p in SPECS.glob("*.toml"):
        spec = load_spec(p)
        assert spec.name == p.stem


def test_defaults_and_derived():
    s = spec_from_dict(_spec())
    assert (s.rows, s.cols, s.act_bits, s.weight_bits, s.acc_bits) == (4, 4, 8, 8, 32)
    assert s.dataflow == "ws" and s.act_signed and s.weight_signed
    assert s.in_stream_bits == 32 and s.out_stream_bits == 128
    assert spec_from_dict(s.to_dict()) == s
    assert s.act_range() == (-128, 127)


@pytest.mark.parametrize("field,value,message", [
    ("array.rows", 0, "t: array.rows must be an integer from 1 to 256, not 0"),
    ("array.cols", "8", "t: array.cols must be an integer from 1 to 256, not '8'"),
    ("array.rows", True, "t: array.rows must be an integer from 1 to 256, not True"),
    ("precision.act_signed", 1, "t: precision.act_signed must be true or false, not 1"),
    ("buffers.input_depth", 70000, "t: buffers.input_depth must be an integer from 1 to 65536, "
                                   "not 70000"),
    ("dataflow", "xs", "t: dataflow must be one of ws, is, os, nlr, rs, custom, not 'xs'"),
    ("pipeline.mult_stages", 3, "t: pipeline.mult_stages must be an integer from 0 to 2, not 3"),
    ("energy.dram", -1, "t: energy.dram must be a number from 0 to 1e+06 (energy per access in "
                        "units of one MAC), not -1"),
    ("energy.gb", "6", "t: energy.gb must be a number from 0 to 1e+06 (energy per access in "
                       "units of one MAC), not '6'"),
    ("precision.acc_bits", 12, "t: precision.acc_bits must be at least act_bits + weight_bits (16) "
                               "to hold one product, not 12"),
])
def test_field_errors(field, value, message):
    with pytest.raises(AccelgenError, match=f"^{re.escape(message)}$"):
        spec_from_dict(_spec(**{field: value}), source="t")


@pytest.mark.parametrize("name", ["../evil", "a/b", "1abc", "", "module", "with space",
                                  "x" * 65, "class"])
def test_name_must_be_identifier(name):
    with pytest.raises(AccelgenError, match=r"^t: name must be a plain identifier"):
        spec_from_dict(_spec(name=name), source="t")


def test_unknown_fields_named():
    with pytest.raises(AccelgenError, match=r"^t: unknown field array\.row; allowed: cols, rows$"):
        spec_from_dict({"name": "t", "array": {"row": 4, "cols": 4}}, source="t")
    with pytest.raises(AccelgenError, match=r"^t: unknown field 'arrays'"):
        spec_from_dict({"name": "t", "arrays": {}}, source="t")
    with pytest.raises(AccelgenError, match=r"^t: missing required field array\.rows$"):
        spec_from_dict({"name": "t", "array": {"cols": 4}}, source="t")


@pytest.mark.parametrize("key,value", [("mult_bits", 16), ("rounding", "half_even")])
def test_removed_postproc_fields_named(key, value):
    d = _spec()
    d["postproc"] = {"enabled": True, key: value}
    with pytest.raises(AccelgenError, match=rf"^t: postproc\.{key} is no longer a field: "
                                            rf"requantisation .*; delete it$"):
        spec_from_dict(d, source="t")


@pytest.mark.parametrize("postproc,message", [
    ({"residual": True}, r"postproc\.residual adds a residual to requantised outputs; set "
                         r"postproc\.enabled = true"),
    ({"enabled": True, "residual": True, "out_bits": 12},
     r"postproc\.residual works on outputs of at most 10 bits .*not out_bits = 12"),
])
def test_residual_unit_refusals(postproc, message):
    d = _spec()
    d["postproc"] = postproc
    with pytest.raises(AccelgenError, match=rf"^t: {message}"):
        spec_from_dict(d, source="t")
    d["postproc"] = {"enabled": True, "residual": True, "out_bits": 10}
    assert spec_from_dict(d, source="t").residual


def test_load_errors(tmp_path):
    with pytest.raises(AccelgenError, match=r"spec file not found"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(AccelgenError, match=r"bad\.toml: not valid TOML"):
        load_spec(bad)


def _mapping(**kw):
    m = {"rows": ["C"], "cols": ["K"], "stationary": "weight", "input": "forward",
         "weight": "stationary", "psum": "forward"}
    m.update(kw)
    return m


@pytest.mark.parametrize("preset,engine", [("ws", "ws"), ("is", "is"), ("os", "os"),
                                           ("nlr", "nlr"), ("rs", "rs")])
def test_presets_pick_their_engine(preset, engine):
    s = spec_from_dict({**_spec(), "dataflow": preset}, source="t")
    assert s.engine == engine and s.mapping == PRESETS[preset]


@pytest.mark.parametrize("mapping,engine", [
    (_mapping(), "ws"),
    (_mapping(rows=["P"], stationary="output", input="forward", weight="forward",
              psum="in_place"), "os"),
    (_mapping(rows=["Q"], stationary="output", input="forward", weight="forward",
              psum="in_place"), "os"),
    (_mapping(cols=["Q"], stationary="input", input="stationary", weight="forward"), "is"),
    (_mapping(cols=["P"], stationary="input", input="stationary", weight="forward"), "is"),
    (_mapping(rows=["R"], cols=["P"], stationary="row", input="multicast", weight="multicast"),
     "rs"),
])
def test_custom_mappings_build(mapping, engine):
    s = spec_from_dict({**_spec(), "dataflow": "custom", "mapping": mapping}, source="t")
    assert s.engine == engine
    assert spec_from_dict(s.to_dict(), source="t") == s  # round-trips with its mapping


@pytest.mark.parametrize("mapping,message", [
    (_mapping(rows=["K"], cols=["C"]), "psum reduction over C mapped to columns needs a "
                                       "forwarding path along the rows"),
    (_mapping(rows=["C"], cols=["C"]), "C is split across rows and cols"),
    (_mapping(rows=["C", "P"], stationary="output", input="forward", weight="forward",
              psum="in_place"), "output-stationary PEs each own one output and accumulate it "
                                "in place, so the reduction dim C cannot be unrolled on rows"),
    (_mapping(stationary="output", weight="forward"), "output-stationary PEs each own one "
                                                      "output"),
    (_mapping(rows=["P"], cols=["K"], stationary="output", input="forward", weight="forward",
              psum="forward"), "reduces partial sums in place"),
    (_mapping(input="unicast"), "gives every PE its own input, but inputs do not depend on K"),
    (_mapping(weight="forward"), "contradicts stationary"),
    (_mapping(rows=["R"]), "needs per-PE row buffers: set stationary = \"row\""),
    (_mapping(rows=["C"], cols=["P"], stationary="row", input="multicast", weight="multicast"),
     "row-stationary PEs each hold one filter row, so rows must unroll R"),
    (_mapping(rows=["R", "S"], cols=["P"], stationary="row", input="multicast",
              weight="multicast"), "unrolling the filter width S on rows is not built"),
    (_mapping(rows=["C", "R"], cols=["Q"], stationary="row", input="multicast",
              weight="multicast"), "depends on the dims of both axes"),
    (_mapping(rows=["C", "R"], cols=["P"], stationary="row", input="multicast",
              weight="multicast", psum="tree"), "with stationary = \"row\" this generator builds"),
    (_mapping(rows=["C"], cols=["N"], stationary="input", input="stationary",
              weight="forward"), "batch N on the array is not supported"),
    (_mapping(rows=["X"]), "unknown loop dim 'X'"),
    (_mapping(psum="sideways"), "mapping.psum must be one of forward, tree, in_place"),
    (_mapping(input="multicast"), "is a legal mapping but no engine here builds it"),
])
def test_bad_mappings_say_why(mapping, message):
    with pytest.raises(AccelgenError, match=re.escape(message)):
        spec_from_dict({**_spec(), "dataflow": "custom", "mapping": mapping}, source="t")


def test_spads_belong_to_row_stationary():
    s = spec_from_dict({**_spec(), "dataflow": "rs", "spads": {"filter": 9, "ifmap": 5}},
                       source="t")
    assert (s.filter_spad, s.ifmap_spad, s.psum_spad) == (9, 5, 24)
    assert spec_from_dict(s.to_dict(), source="t") == s
    assert "spads" not in spec_from_dict(_spec(), source="t").to_dict()
    with pytest.raises(AccelgenError, match=r"\[spads\] sizes the per-PE scratchpads of the "
                                            r"row-stationary engine"):
        spec_from_dict({**_spec(), "spads": {"filter": 9}}, source="t")
    with pytest.raises(AccelgenError, match=r"t: spads.ifmap must be an integer from 1 to 255"):
        spec_from_dict({**_spec(), "dataflow": "rs", "spads": {"ifmap": 0}}, source="t")


def test_mapping_table_needs_custom():
    with pytest.raises(AccelgenError, match="set dataflow = \"custom\""):
        spec_from_dict({**_spec(), "mapping": _mapping()}, source="t")
    with pytest.raises(AccelgenError, match=r"needs a \[mapping\] table"):
        spec_from_dict({**_spec(), "dataflow": "custom"}, source="t")
