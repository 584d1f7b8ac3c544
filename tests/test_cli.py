"""The command line: outputs, exit codes and one-line errors without tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gen.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPEC = """
name = "cli_ws"
[array]
rows = 3
cols = 4
[buffers]
input_depth = 256
weight_depth = 128
output_depth = 64
"""


@pytest.fixture
def spec_file(tmp_path):
    p = tmp_path / "spec.toml"
    p.write_text(SPEC)
    return p


def _err_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_generate(spec_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", str(spec_file), "-o", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert Path(info["verilog"]) == out / "cli_ws.v" and info["verilog_bytes"] > 1000
    assert (out / "manifest.json").exists()


def test_simulate_npy_roundtrip(spec_file, tmp_path, capsys):
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (1, 4, 6, 6)).astype(np.int8)
    w = rng.integers(-128, 128, (5, 4, 3, 3)).astype(np.int8)
    b = rng.integers(-100, 100, (5,)).astype(np.int32)
    for name, t in (("x", x), ("w", w), ("b", b)):
        np.save(tmp_path / f"{name}.npy", t)
    y = tmp_path / "y.npy"
    rc = main(["simulate", str(spec_file), "--input", str(tmp_path / "x.npy"), "--weights",
               str(tmp_path / "w.npy"), "--bias", str(tmp_path / "b.npy"), "--padding", "1",
               "--stride", "2", "--output", str(y), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["match"] is True
    from sim.golden import conv2d
    assert np.array_equal(np.load(y), conv2d(x, w, b, stride=2, pad=1))
    assert summary["cycles"] == summary["counters"]["cycles"] > summary["ideal_cycles"]
    assert 0 < summary["utilisation"] <= 1
    # the model's prediction beside every RTL counter it predicts, all equal without stalls
    model = summary["model"]
    assert set(model) == {"cycles", "array_busy", "ibuf_reads", "ibuf_writes", "wbuf_reads",
                          "wbuf_writes", "obuf_reads", "obuf_writes", "pe_macs", "rf_accesses",
                          "array_moves"}
    assert all(v["equal"] and v["rtl"] == summary["counters"][k] for k, v in model.items())
    assert model["ibuf_writes"]["rtl"] > 0 and model["obuf_reads"]["rtl"] > 0


def test_simulate_random_layer_text(spec_file, capsys):
    rc = main(["simulate", str(spec_file), "--layer", "C=3,H=5,W=5,K=2,R=3,S=3", "--seed", "3",
               "--backpressure", "0.2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "PASS: 18 outputs match the golden model bit-exactly" in out
    assert "utilisation" in out and "cli_ws.v" in out


@pytest.mark.parametrize("args,message", [
    (["simulate", "{spec}"], "simulate needs --layer"),
    (["simulate", "{spec}", "--layer", "C=3,H=5"], "layer is missing W="),
    (["simulate", "{spec}", "--layer", "C=3,H=5,W=5,K=2", "--backpressure", "1.5"],
     "--backpressure must be a probability in [0, 1), not 1.5"),
    (["simulate", "{spec}", "--layer", "C=3,H=40,W=40,K=2,R=9,S=9"],
     "layer 9x9 filter needs 243 weight-buffer words per tile on WS but buffers.weight_depth is 128; "
     "raise buffers.weight_depth to at least 243"),
    (["simulate", "{spec}", "--input", "{tmp}/nope.npy", "--weights", "{tmp}/nope.npy"],
     "input file {tmp}/nope.npy not found"),
    (["generate", "{tmp}/missing.toml", "-o", "{tmp}/o"], "spec file not found"),
    (["simulate", "{spec}", "--layer", "C=2,H=3,W=3,K=2", "--sim", "ghdl"],
     "argument --sim: invalid choice"),
])
def test_user_errors_are_one_line(args, message, spec_file, tmp_path, capsys):
    args = [a.format(spec=spec_file, tmp=tmp_path) for a in args]
    try:
        rc = main(args)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    assert rc == 2
    assert message.format(tmp=tmp_path) in _err_line(capsys)


def test_tensor_shape_errors(spec_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 4, 5, 5), dtype=np.int8))
    np.save(tmp_path / "w.npy", np.zeros((2, 3, 3, 3), dtype=np.int8))
    rc = main(["simulate", str(spec_file), "--input", str(tmp_path / "x.npy"),
               "--weights", str(tmp_path / "w.npy")])
    assert rc == 2
    assert "weights have 3 channels per filter but input has C=4 with groups=1" in \
        _err_line(capsys)
    np.save(tmp_path / "w.npy", np.full((2, 4, 3, 3), 1000))
    rc = main(["simulate", str(spec_file), "--input", str(tmp_path / "x.npy"),
               "--weights", str(tmp_path / "w.npy")])
    assert rc == 2 and "weights tensor values span 1000..1000" in _err_line(capsys)


def test_missing_icarus_is_explained(spec_file, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    rc = main(["simulate", str(spec_file), "--layer", "C=2,H=3,W=3,K=2"])
    assert rc == 2
    assert _err_line(capsys) == ("accelgen: error: Icarus Verilog (iverilog) is not installed; "
                                 "install it with 'apt-get install iverilog' (or run 'make setup' "
                                 "as root)")


def test_bad_spec_name_writes_nothing(tmp_path, capsys):
    p = tmp_path / "evil.toml"
    p.write_text('name = "../../evil"\n[array]\nrows = 2\ncols = 2\n')
    rc = main(["generate", str(p), "-o", str(tmp_path / "out")])
    assert rc == 2 and "name must be a plain identifier" in _err_line(capsys)
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil.v").exists()


def test_console_entry_point(spec_file, tmp_path):
    """`python -m gen` (what the accelgen script runs) exits 2 with one line on a bad spec."""
    p = tmp_path / "bad.toml"
    p.write_text("name = 'x'\n[array]\nrows = 0\ncols = 2\n")
    proc = subprocess.run([sys.executable, "-m", "gen", "generate", str(p), "-o",
                           str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"accelgen: error: {p}: array.rows must be an integer from 1 "
                                   f"to 256, not 0")


def test_mismatch_exits_1_and_names_first_index(spec_file, monkeypatch, capsys):
    """The comparison can fail: a golden model off by one at one index is reported, exit 1."""
    import sim.flow
    real = sim.flow.golden.conv2d

    def off_by_one(*a, **kw):
        y = real(*a, **kw)
        y[0, 1, 2, 0] += 1
        return y

    monkeypatch.setattr(sim.flow.golden, "conv2d", off_by_one)
    rc = main(["simulate", str(spec_file), "--layer", "C=3,H=5,W=5,K=2,R=3,S=3", "--seed", "4"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL: 1 of 18 outputs differ; first at [n,k,p,q]=[0, 1, 2, 0]" in out


def test_waves(spec_file, tmp_path, capsys):
    rc = main(["simulate", str(spec_file), "--layer", "C=2,H=3,W=3,K=2", "--waves",
               "--work-dir", str(tmp_path / "job")])
    assert rc == 0
    assert any(p.suffix in (".fst", ".vcd") for p in (tmp_path / "job").rglob("*")), \
        list((tmp_path / "job").rglob("*"))


def test_estimate(spec_file, tmp_path, capsys):
    assert main(["estimate", str(spec_file), "--network", "lenet5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["layer"] for r in out["layers"]] == ["lenet5:conv1", "lenet5:conv2"]
    assert out["total"]["macs"] == 117_600 + 240_000
    assert 0 < out["total"]["utilisation"] < 1
    csv_file = tmp_path / "l.csv"
    csv_file.write_text("layer,C,H,W,K,R,S,pad,repeat\nx,3,8,8,4,3,3,1,2\n")
    assert main(["estimate", str(spec_file), "--csv", str(csv_file)]) == 0
    assert "total (with repeats)" in capsys.readouterr().out
    csv_file.write_text("C,H\n3,8\n")
    assert main(["estimate", str(spec_file), "--csv", str(csv_file)]) == 2
    assert "row 1: needs integer columns C, H, W, K, R, S" in _err_line(capsys)
    assert main(["estimate", str(spec_file), "--network", "vgg99"]) == 2
    assert "unknown network 'vgg99'" in _err_line(capsys)


def test_estimate_energy_and_plot(spec_file, tmp_path, capsys):
    assert main(["estimate", str(spec_file), "--network", "lenet5", "--json",
                 "--plot", str(tmp_path / "e.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"
    assert out["energy_costs"] == {"mac": 1.0, "rf": 1.0, "array": 2.0, "gb": 6.0, "dram": 200.0}
    for r in out["layers"]:
        e, a = r["energy"], r["accesses"]
        assert e["dram"] == 200 * a["dram"] and e["gb"] == 6 * a["gb"] and a["dram"] > 0
        assert e["total"] == sum(e[k] for k in out["energy_costs"])
        assert e["per_mac"] == e["total"] / r["macs"]
    # costs from the spec's [energy] table
    spec = tmp_path / "e.toml"
    spec.write_text(spec_file.read_text() + "\n[energy]\ndram = 100\n")
    assert main(["estimate", str(spec), "--network", "lenet5", "--json"]) == 0
    half = json.loads(capsys.readouterr().out)
    assert half["layers"][0]["energy"]["dram"] == out["layers"][0]["energy"]["dram"] / 2
    assert main(["estimate", str(spec_file), "--network", "lenet5", "--plot", "x.jpg"]) == 2
    assert "--plot writes .png or .svg" in _err_line(capsys)


def test_simulate_requant_cli(tmp_path, capsys):
    spec = tmp_path / "q.toml"
    spec.write_text('name = "cli_q"\n[array]\nrows = 2\ncols = 3\n[buffers]\ninput_depth = 128\n'
                    'weight_depth = 64\noutput_depth = 64\n[postproc]\nenabled = true\n')
    y = tmp_path / "y.npy"
    rc = main(["simulate", str(spec), "--layer", "C=3,H=5,W=5,K=4,R=3,S=3,pad=1",
               "--requant", "300,12", "--relu", "--output", str(y)])
    assert rc == 0 and "PASS" in capsys.readouterr().out
    out = np.load(y)
    assert out.dtype == np.int8 and out.min() >= 0
    rc = main(["simulate", str(spec), "--layer", "C=3,H=5,W=5,K=4", "--requant", "3"])
    assert rc == 2 and "--requant must be MULT,SHIFT" in _err_line(capsys)
    rc = main(["simulate", str(spec), "--layer", "C=3,H=5,W=5,K=4", "--requant", "70000,3"])
    assert rc == 2 and "multiplier values span 70000..70000 but postproc.mult_bits allows " \
        "0..65535" in _err_line(capsys)


def test_requant_needs_the_unit(spec_file, capsys):
    rc = main(["simulate", str(spec_file), "--layer", "C=3,H=5,W=5,K=4", "--relu"])
    assert rc == 2 and "set [postproc] enabled = true in the spec" in _err_line(capsys)


def test_show(spec_file, tmp_path, capsys):
    for name in ("a.png", "a.svg"):
        assert main(["show", str(spec_file), "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()[:500]
    assert main(["show", str(spec_file), "-o", str(tmp_path / "a.jpg")]) == 2
    assert "show writes .png or .svg, not '.jpg'" in _err_line(capsys)


@pytest.mark.parametrize("name", ["is_8x8", "os_8x8", "nlr_8x8", "os_kp_8x8", "rs_12x14"])
def test_shipped_dataflow_specs(name, tmp_path, capsys):
    """Each shipped dataflow spec draws, estimates and runs a small layer bit-exactly."""
    spec = Path(__file__).resolve().parent.parent / "specs" / f"{name}.toml"
    assert main(["show", str(spec), "-o", str(tmp_path / "a.svg")]) == 0
    capsys.readouterr()
    assert main(["estimate", str(spec), "--layer", "resnet18:conv3_x", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["layers"][0]["cycles"] > 0
    assert main(["simulate", str(spec), "--layer", "C=9,H=6,W=5,K=10,R=3,S=3,pad=1",
                 "--random-bias", "--work-dir", str(tmp_path / "w")]) == 0
    assert "PASS" in capsys.readouterr().out
