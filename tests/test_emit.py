import json
import re

import pytest

from conftest import make_spec
from gen.emit import generate, verilog_text
from gen.isa import CSRS, HEADER_FIELDS


def test_generate_is_byte_identical(tmp_path):
    spec = make_spec(name="acc_a", rows=2, cols=3)
    v1, m1, _ = generate(spec, tmp_path / "one")
    v2, m2, _ = generate(spec, tmp_path / "two")
    assert v1.name == "acc_a.v"
    assert v1.read_bytes() == v2.read_bytes()
    assert m1.read_bytes() == m2.read_bytes()
    assert str(tmp_path) not in v1.read_text()  # no source paths leak into the Verilog
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["acc_a.v", "manifest.json"]


@pytest.mark.parametrize("dataflow", ["ws", "is", "os", "rs"])
def test_pe_module_emitted_once(dataflow):
    """One PE module, instantiated rows x cols times (not one elaborated copy per PE)."""
    spec = make_spec(name=f"t_{dataflow}", rows=4, cols=3, dataflow=dataflow)
    v = verilog_text(spec)
    assert v.count(f"module t_{dataflow}_pe(") == 1
    assert len(re.findall(rf"^\s*t_{dataflow}_pe pe_\d+_\d+ \(", v, re.M)) == 12


def test_manifest_describes_the_design(tmp_path):
    spec = make_spec(name="acc_b", rows=4, cols=2, act_signed=False)
    vpath, mpath, man = generate(spec, tmp_path)
    assert json.loads(mpath.read_text()) == man
    ports = {p["name"]: p for p in man["ports"]}
    assert ports["s_axis__tdata"] == {"name": "s_axis__tdata", "direction": "input",
                                      "width": spec.in_stream_bits}
    assert ports["m_axis__tdata"]["width"] == 64 and ports["m_axis__tdata"]["direction"] == "output"
    assert ports["s_axil__awaddr"]["width"] == 8
    assert {"clk", "rst", "s_axis__tready", "m_axis__tlast"} <= set(ports)
    assert [r["name"] for r in man["csr"]["registers"]] == [c[0] for c in CSRS]
    assert man["commands"]["fields"]["count"] == {"offset": HEADER_FIELDS["count"][0],
                                                  "width": HEADER_FIELDS["count"][1]}
    assert man["payloads"]["input_word"]["signed"] is False
    assert man["spec"] == spec.to_dict()
    assert man["array"]["latency"] == spec.array_latency == 4 + 2 - 1 + 2
    assert len(man["verilog_sha256"]) == 64 and "amaranth" in man["tools"]
    assert f"module {spec.name}(" in vpath.read_text()


def test_unwritable_output(tmp_path):
    from gen.errors import AccelgenError
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AccelgenError, match=r"^cannot write to .*; choose another -o DIR$"):
        generate(make_spec(name="acc_c", rows=1, cols=1), blocker / "sub")
