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


def test_zero_memories_are_zeroed_by_one_loop_each():
    """Amaranth's all-zero initial contents are written as one loop per memory, not per word."""
    v = verilog_text(make_spec(name="acc_z", rows=2, cols=2))
    mems = re.findall(r"^\s*reg (?:\[\d+:0\] )?(\S+) \[(\d+):0\];\n", v, re.M)
    i = "accelgen_word"     # a name no signal has (test_lint: no VARHIDDEN)
    loops = re.findall(rf"initial begin : accelgen_zeroed_\d+\n\s+integer {i};\n"
                       rf"\s+for \({i} = 0; {i} <= (\d+); {i} = {i} \+ 1\)\n"
                       rf"\s+(\S+)\[{i}\] = \d+'d0;\n", v)
    assert len(mems) >= 3 and sorted(loops) == sorted((d, n) for n, d in mems)
    assert "accelgen_zero_init" not in v
    assert not re.search(r"^\s*\S+\[\d+\] = \d+'h", v, re.M)     # no word-by-word contents


def test_memory_contents_survive_emission(tmp_path):
    """A memory with contents keeps them and a zero one reads zero, in a simulator."""
    import shutil
    import subprocess

    from amaranth.back import verilog
    from amaranth.hdl import Module
    from amaranth.lib import memory, wiring
    from amaranth.lib.wiring import In, Out

    from gen.emit import _zero_inits, _zero_loops

    class Two(wiring.Component):
        addr: In(2)
        a: Out(8)
        z: Out(8)

        def elaborate(self, platform):
            m = Module()
            m.submodules.ma = ma = memory.Memory(shape=8, depth=4, init=[5, 0, 7, 200])
            m.submodules.mz = mz = memory.Memory(shape=8, depth=4, init=[])
            for mem, out in ((ma, self.a), (mz, self.z)):
                rp = mem.read_port(domain="comb")
                m.d.comb += [rp.addr.eq(self.addr), out.eq(rp.data)]
            return m

    with _zero_inits():
        v = _zero_loops(verilog.convert(Two(), name="two", emit_src=False))
    assert v.count("initial begin : accelgen_zeroed_") == 1
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed")
    (tmp_path / "two.v").write_text(v)
    (tmp_path / "tb.v").write_text(
        "module tb; reg [1:0] addr = 0; wire [7:0] a, z; integer k;\n"
        "two dut(.addr(addr), .a(a), .z(z));\n"
        "initial begin #1; for (k = 0; k < 4; k = k + 1) begin addr = k; #1 "
        "$display(\"%0d %0d\", a, z); end end endmodule\n")
    subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "tb.vvp"), str(tmp_path / "tb.v"),
                    str(tmp_path / "two.v")], check=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "tb.vvp")], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert [line for line in out if line and not line.startswith("VCD")] == \
        ["5 0", "0 0", "7 0", "200 0"]
