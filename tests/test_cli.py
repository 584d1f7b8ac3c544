"""The command line: outputs, exit codes and one-line errors without tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import SPEC, err_line
from gen.cli import main

ROOT = Path(__file__).resolve().parent.parent


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
     "argument --backpressure: must be a probability in [0, 1), not 1.5"),
    (["simulate", "{spec}", "--layer", "C=3,H=40,W=40,K=2,stride=16"],
     "layer stride=16 exceeds the hardware's stride limit of 15; use a layer with stride <= 15"),
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
    assert message.format(tmp=tmp_path) in err_line(capsys)


def test_tensor_shape_errors(spec_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 4, 5, 5), dtype=np.int8))
    np.save(tmp_path / "w.npy", np.zeros((2, 3, 3, 3), dtype=np.int8))
    rc = main(["simulate", str(spec_file), "--input", str(tmp_path / "x.npy"),
               "--weights", str(tmp_path / "w.npy")])
    assert rc == 2
    assert "weights have 3 channels per filter but input has C=4 with groups=1" in \
        err_line(capsys)
    np.save(tmp_path / "w.npy", np.full((2, 4, 3, 3), 1000))
    rc = main(["simulate", str(spec_file), "--input", str(tmp_path / "x.npy"),
               "--weights", str(tmp_path / "w.npy")])
    assert rc == 2 and "weights tensor values span 1000..1000" in err_line(capsys)


def test_missing_icarus_is_explained(spec_file, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    rc = main(["simulate", str(spec_file), "--layer", "C=2,H=3,W=3,K=2"])
    assert rc == 2
    assert err_line(capsys) == ("accelgen: error: Icarus Verilog (iverilog) is not installed; "
                                 "install it with 'apt-get install iverilog' (or run 'make setup' "
                                 "as root)")


def test_bad_spec_name_writes_nothing(tmp_path, capsys):
    p = tmp_path / "evil.toml"
    p.write_text('name = "../../evil"\n[array]\nrows = 2\ncols = 2\n')
    rc = main(["generate", str(p), "-o", str(tmp_path / "out")])
    assert rc == 2 and "name must be a plain identifier" in err_line(capsys)
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
    import sim.golden
    real = sim.golden.conv2d

    def off_by_one(*a, **kw):
        y = real(*a, **kw)
        y[0, 1, 2, 0] += 1
        return y

    monkeypatch.setattr(sim.golden, "conv2d", off_by_one)
    rc = main(["simulate", str(spec_file), "--layer", "C=3,H=5,W=5,K=2,R=3,S=3", "--seed", "4"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL: 1 of 18 outputs differ; first at [n,k,p,q]=[0, 1, 2, 0]" in out


def test_waves(spec_file, tmp_path, capsys):
    rc = main(["simulate", str(spec_file), "--layer", "C=2,H=3,W=3,K=2", "--waves",
               "--work-dir", str(tmp_path / "job")])
    assert rc == 0
    dumps = [p for p in (tmp_path / "job").rglob("*") if p.suffix in (".fst", ".vcd")]
    assert dumps, list((tmp_path / "job").rglob("*"))
    assert f"waves        {dumps[0]} (view with: gtkwave {dumps[0]}" in capsys.readouterr().out


def test_save_tensors_rerun_bit_exact(spec_file, tmp_path, capsys, monkeypatch):
    import sim.flow

    d = tmp_path / "t" / "sub"
    layer = "C=3,H=5,W=5,K=2,R=3,S=3,stride=2,pad=1"
    # the header (with the model's cycles) comes before the simulation runs
    seen = []
    real = sim.flow.simulate_programs
    monkeypatch.setattr(sim.flow, "simulate_programs",
                        lambda *a, **k: (seen.append(capsys.readouterr().out), real(*a, **k))[1])
    assert main(["simulate", str(spec_file), "--layer", layer, "--random-bias", "--seed", "5",
                 "--save-tensors", str(d)]) == 0
    assert "expected     " in seen[0] and "cycles by the model" in seen[0]
    assert "result" not in seen[0]
    out = capsys.readouterr().out
    assert sorted(p.name for p in d.iterdir()) == ["bias.npy", "expected.npy", "input.npy",
                                                   "weights.npy"]
    rerun = out.split("rerun        accelgen simulate ")[1].split("\n")[0].split()
    y = tmp_path / "y.npy"
    assert main(["simulate", *rerun, "--output", str(y)]) == 0
    assert np.array_equal(np.load(y), np.load(d / "expected.npy"))
    # an unwritable directory is refused before any work
    (tmp_path / "file").write_text("")
    assert main(["simulate", str(spec_file), "--layer", layer,
                 "--save-tensors", str(tmp_path / "file" / "d")]) == 2
    assert "cannot write tensors to" in err_line(capsys)


def test_simulate_requant_cli(tmp_path, capsys):
    spec = tmp_path / "q.toml"
    spec.write_text('name = "cli_q"\n[array]\nrows = 2\ncols = 3\n[buffers]\ninput_depth = 128\n'
                    'weight_depth = 64\noutput_depth = 64\n[postproc]\nenabled = true\n')
    y = tmp_path / "y.npy"
    rc = main(["simulate", str(spec), "--layer", "C=3,H=5,W=5,K=4,R=3,S=3,pad=1",
               "--requant", "0.004", "--zero-point", "-20", "--relu", "--output", str(y)])
    assert rc == 0 and "PASS" in capsys.readouterr().out
    out = np.load(y)
    assert out.dtype == np.int8 and out.min() == -20 and out.max() > -20
    sc = tmp_path / "s.npy"
    np.save(sc, np.array([0.01, 0.002, 0.05, 0.001], np.float32))
    rc = main(["simulate", str(spec), "--layer", "C=3,H=5,W=5,K=4,R=3,S=3,pad=1",
               "--quant-scale", str(sc), "--zero-point", "128", "--out-range", "0,255",
               "--output", str(y)])
    assert rc == 0 and "PASS" in capsys.readouterr().out
    out = np.load(y)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    for args, msg in (
            (["--requant", "3,1"], "--requant must be an fp32 scale (a number, e.g. 0.0125), "
                                   "not '3,1'"),
            (["--requant", "-0.5"], "requantisation scale must be positive and finite in fp32, "
                                    "not -0.5 (channel 0)"),
            (["--requant", "1e39"], "requantisation scale must be positive and finite in fp32, "
                                    "not 1e+39"),
            (["--requant", "0.1", "--out-range=-5,200"],
             "requantisation range [-5, 200] must lie within the signed [-128, 127] or the "
             "unsigned [0, 255] range of postproc.out_bits=8"),
            (["--requant", "0.1", "--out-range", "0"], "--out-range must be QMIN,QMAX"),
            (["--requant", "0.1", "--zero-point", "300"],
             "requantisation zero_point must be from -128 to 255 (postproc.out_bits=8), not 300"),
            (["--zero-point", "3"], "--zero-point and --out-range go with a requantisation "
                                    "scale"),
            (["--requant", "0.1", "--quant-scale", str(sc)], "not both"),
            (["--quant-scale", str(sc)], "requantisation scale has shape (4,) but the layer "
                                         "needs one per output channel (5,) or a scalar")):
        rc = main(["simulate", str(spec), "--layer", "C=3,H=5,W=5,K=5", *args])
        assert rc == 2 and msg in err_line(capsys), args


def test_requant_needs_the_unit(spec_file, capsys):
    rc = main(["simulate", str(spec_file), "--layer", "C=3,H=5,W=5,K=4", "--relu"])
    assert rc == 2 and "set [postproc] enabled = true in the spec" in err_line(capsys)


def test_show(spec_file, tmp_path, capsys):
    for name in ("a.png", "a.svg"):
        assert main(["show", str(spec_file), "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()[:500]
    assert main(["show", str(spec_file), "-o", str(tmp_path / "a.jpg")]) == 2
    assert "must end in .png or .svg, not '.jpg'" in err_line(capsys)


def test_show_layer(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["show", "ws_8x8", "--layer", "C=6,H=8,W=8,K=16,R=1,S=1"]) == 0
    out = capsys.readouterr().out
    # C=6 on 8 rows: one pass, 6 lanes; K=16 on 8 columns: two full passes
    assert "rows (8) = C=6: extent 6, 1 pass, 6 of 8 lanes in the first, 75% busy" in out
    assert "cols (8) = K=16: extent 16, 2 passes, 8 of 8 lanes in the first, 100% busy" in out
    assert "75.0% of PEs mapped to work" in out and "in time       P=8, Q=8 and" in out
    assert (tmp_path / "ws_8x8-layer.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["show", "ws_8x8", "--layer", "lenet5:conv2"]) == 0
    assert (tmp_path / "ws_8x8-lenet5_conv2.png").exists()
    # row-stationary packs c_rep channels x filter rows per pass: 2 x 5 of 12 rows
    assert main(["show", "rs_12x14", "--layer", "alexnet:conv2", "-o", "rs.png"]) == 0
    assert "rows (12) = C=48×R=5: extent 240, 24 passes (2 C×5 R per pass), 10 of 12 lanes" \
        in capsys.readouterr().out
    # a layer the tiler runs as its im2col rewrite says so and maps the rewrite
    assert main(["show", "ws_16x16", "--layer", "resnet18:conv1", "-o", "c1.svg"]) == 0
    out = capsys.readouterr().out
    assert "im2col        run as" in out and "rows (16) = C=147: extent 147, 10 passes" in out
    assert b"<svg" in (tmp_path / "c1.svg").read_bytes()[:500]
    assert main(["show", "os_8x8", "--layer", "C=3,H=5,W=5,K=4", "-o", "o.png"]) == 0
    assert "rows (8) = P=5×Q=5: extent 25, 4 passes" in capsys.readouterr().out
    assert main(["show", "ws_8x8", "--layer", "C=3,H=5"]) == 2
    assert "layer is missing W=" in err_line(capsys)


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


@pytest.mark.parametrize("flag,value,message", [
    ("--stride", "0", "argument --stride: must be an integer of at least 1, not 0"),
    ("--dilation", "0", "argument --dilation: must be an integer of at least 1, not 0"),
    ("--groups", "0", "argument --groups: must be an integer of at least 1, not 0"),
    ("--padding", "-1", "argument --padding: must be an integer of at least 0, not -1"),
    ("--batch", "0", "argument --batch: must be an integer of at least 1, not 0"),
    ("--seed", "-3", "argument --seed: must be an integer of at least 0, not -3"),
    ("--stride", "1.5", "argument --stride: must be an integer, not '1.5'"),
])
@pytest.mark.parametrize("source", ["layer", "tensors"])
def test_invalid_layer_options_are_refused(flag, value, message, source, spec_file, tmp_path,
                                           capsys):
    """0 is not 1: an invalid value is refused, never replaced by a default (it used to run as
    stride 1 and print PASS)."""
    if source == "layer":
        args = ["--layer", "C=3,H=5,W=5,K=2,R=3,S=3"]
    else:
        np.save(tmp_path / "x.npy", np.zeros((1, 4, 6, 6), dtype=np.int8))
        np.save(tmp_path / "w.npy", np.zeros((2, 4, 3, 3), dtype=np.int8))
        args = ["--input", str(tmp_path / "x.npy"), "--weights", str(tmp_path / "w.npy")]
    with pytest.raises(SystemExit) as e:
        main(["simulate", str(spec_file), *args, flag, value])
    assert e.value.code == 2
    assert message in err_line(capsys)
    assert not list(tmp_path.glob("*.npy"))[2:]   # nothing written


def test_output_path_is_the_one_reported(spec_file, tmp_path, capsys):
    """--output y.txt used to write y.txt.npy and report y.txt: now a suffix other than .npy is
    refused before any work, and y.npy is written exactly where it is reported."""
    layer = ["--layer", "C=2,H=4,W=4,K=2,R=3,S=3"]
    rc = main(["simulate", str(spec_file), *layer, "--output", str(tmp_path / "y.txt")])
    assert rc == 2 and "--output " in err_line(capsys) and not list(tmp_path.iterdir())[1:]
    out = tmp_path / "new" / "dir" / "y.npy"
    assert main(["simulate", str(spec_file), *layer, "--output", str(out)]) == 0
    assert f"output       {out}" in capsys.readouterr().out
    assert np.load(out).shape == (1, 2, 2, 2)


def test_outputs_are_checked_before_the_work(spec_file, tmp_path, capsys):
    """An output that cannot be written is refused up front, not after a long simulation."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc = main(["simulate", str(spec_file), "--layer", "C=2,H=4,W=4,K=2,R=3,S=3",
               "--output", str(blocker / "y.npy"), "--work-dir", str(tmp_path / "job")])
    assert rc == 2 and "cannot create the folder" in err_line(capsys)
    assert not (tmp_path / "job").exists()          # no simulation ran
    rc = main(["estimate", str(spec_file), "--network", "lenet5", "--plot",
               str(tmp_path / "e.jpg")])
    assert rc == 2 and "must end in .png or .svg, not '.jpg'" in err_line(capsys)


def test_relative_work_dir(spec_file, tmp_path, monkeypatch, capsys):
    """A relative --work-dir is resolved before the simulator (which runs elsewhere) sees it."""
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", str(spec_file), "--layer", "C=2,H=4,W=4,K=2,R=3,S=3",
                 "--work-dir", "rel/job"]) == 0
    assert (tmp_path / "rel" / "job" / "result.txt").exists()     # the native driver's results


def test_unsigned_activations_are_labelled_uint(tmp_path, capsys):
    p = tmp_path / "u.toml"
    p.write_text(SPEC.replace('name = "cli_ws"', 'name = "cli_u"')
                 + "[precision]\nact_bits = 4\nact_signed = false\n")
    assert main(["generate", str(p), "-o", str(tmp_path / "o")]) == 0
    assert "uint4 x int8 -> int32" in capsys.readouterr().out
    from gen.spec import load_spec
    assert load_spec(p).act_type == "uint4" and load_spec(p).weight_type == "int8"


def test_shipped_specs_by_name_and_case_insensitive_dataflow(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["estimate", "ws_8x8", "--layer", "C=8,H=4,W=4,K=8"]) == 0
    assert "ws_8x8 (8x8 WS)" in capsys.readouterr().out
    assert main(["estimate", "no_such_spec", "--layer", "C=8,H=4,W=4,K=8"]) == 2
    assert "shipped one (" in err_line(capsys)
    p = tmp_path / "up.toml"
    p.write_text(SPEC.replace('name = "cli_ws"', 'name = "cli_up"\ndataflow = "NLR"'))
    assert main(["estimate", str(p), "--layer", "C=8,H=4,W=4,K=8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spec"] == "cli_up"


def test_version_and_help_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("accelgen ")
    from gen.cli import build_parser

    import argparse

    def walk(parser):
        yield parser
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for p in a.choices.values():
                    yield from walk(p)
    for parser in walk(build_parser()):
        for a in parser._actions:
            if not isinstance(a, argparse._SubParsersAction):   # (its choices have help)
                assert a.help, (parser.prog, a.option_strings or a.dest)


def test_interrupted_generate_prints_one_line(tmp_path):
    """Ctrl-C while elaborating: one line, not thousands of Amaranth UnusedElaboratable
    warnings about the half-built design."""
    import os
    import signal
    import time
    spec = tmp_path / "big.toml"         # 64x64: elaboration takes far longer than the wait
    spec.write_text('name = "big"\n[array]\nrows = 64\ncols = 64\n')
    proc = subprocess.Popen([sys.executable, "-m", "gen", "generate", str(spec), "-o",
                             str(tmp_path / "o")], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "default"})
    time.sleep(3)
    assert proc.poll() is None, "generation ended before the interrupt"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines() == ["accelgen: interrupted"], err[-2000:]


def test_first_build_shows_progress(spec_file, tmp_path, capsys, monkeypatch):
    # a cold cache: generation and the simulator build each say they are running, then their time
    monkeypatch.setenv("ACCELGEN_CACHE", str(tmp_path / "cache"))
    assert main(["simulate", str(spec_file), "--layer", "C=2,H=3,W=3,K=2"]) == 0
    err = capsys.readouterr().err
    assert "accelgen: generating the cli_ws Verilog ..." in err
    assert "accelgen: building cli_ws for icarus (native harness; cached afterwards in" in err
    assert "accelgen: building cli_ws for icarus done in" in err
    assert main(["simulate", str(spec_file), "--layer", "C=2,H=3,W=3,K=2"]) == 0
    assert "building" not in capsys.readouterr().err       # cached: nothing to say
