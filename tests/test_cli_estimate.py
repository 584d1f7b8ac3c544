"""The command line's ``estimate``: layers, networks, CSV tables, several specs side by side,
plots and their one-line errors."""

import json

import pytest

from cli_helpers import err_line
from gen.cli import main


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
    assert "l.csv: line 1: missing columns W, K, R, S" in err_line(capsys)
    assert main(["estimate", str(spec_file), "--network", "vgg99"]) == 2
    assert "unknown network 'vgg99'" in err_line(capsys)


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
    assert "must end in .png or .svg" in err_line(capsys)


CSV_CASES = [
    # a misspelt column used to be ignored silently (padding gave results without padding)
    ("layer,C,H,W,K,R,S,paddin\nx,3,8,8,4,3,3,1\n", "line 1: unknown column 'paddin'; known "
     "columns: network, layer, N, C, H, W, K, R, S, stride, pad, dilation, groups, repeat"),
    ("layer,C,H,W,K,R,S,pad,padding\nx,3,8,8,4,3,3,1,1\n",
     "column 'padding' gives pad a second time"),
    ("layer,C,H,W,K,R,S\nx,3,8,8,4,3,three\n", "line 2 (layer x): S must be an integer, not "
     "'three'"),
    ("layer,C,H,W,K,R,S,stride\nok,3,8,8,4,3,3,1\nbad,3,8,8,4,3,3,0\n",
     "line 3 (layer bad): layer stride must be an integer from 1 to 65536, not 0"),
    ("layer,C,H,W,K,R,S\nx,3,8,8,4,3,3,9\n", "line 2 (layer x): more values than named columns"),
    ("", "empty; a layer table has a header row"),
]


@pytest.mark.parametrize("text,message", CSV_CASES)
def test_estimate_csv_errors(text, message, spec_file, tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text(text)
    assert main(["estimate", str(spec_file), "--csv", str(f)]) == 2
    err = err_line(capsys)
    assert f"{f}: " in err and message in err, err


def test_estimate_csv_formats(spec_file, tmp_path, capsys):
    """Headers are matched case-insensitively with spaces trimmed, ``padding`` is ``pad``, and a
    SCALE-Sim topology file reads as the same layers (no padding, so H and W come padded)."""
    ours = tmp_path / "ours.csv"
    ours.write_text(" Layer , c, h ,w,K,r,s, Stride ,Padding\nconv,3,8,8,4,3,3,1,1\n")
    scalesim = tmp_path / "topo.csv"
    scalesim.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                        "Channels, Num Filter, Strides,\nconv, 10, 10, 3, 3, 3, 4, 1,\n")
    results = []
    for f in (ours, scalesim):
        assert main(["estimate", str(spec_file), "--csv", str(f), "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out)["layers"][0])
    assert results[0]["layer"] == results[1]["layer"] == "conv"
    assert results[0]["macs"] == results[1]["macs"] == 4 * 8 * 8 * 3 * 9


def test_estimate_dataflows_side_by_side(tmp_path, capsys):
    """Five dataflows, one command: one table, one grouped plot, one CSV (the figures equal the
    single-spec estimates of the same presets)."""
    out = tmp_path / "cmp"
    assert main(["estimate", "--dataflows", "WS,os,is,nlr,rs", "--array", "4x6", "--network",
                 "lenet5", "--plot", str(out / "c.png"), "--csv-out", str(out / "c.csv"),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["specs"]
    assert [s["spec"] for s in res] == ["ws_4x6", "os_4x6", "is_4x6", "nlr_4x6", "rs_4x6"]
    assert (out / "c.png").read_bytes()[:4] == b"\x89PNG"
    rows = (out / "c.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 * 2 and rows[0].startswith("spec,layer,repeat,macs,cycles")
    from gen.layer import parse_layer
    from gen.model import estimate
    from gen.spec import spec_from_dict
    from gen.tiler import plan
    spec = spec_from_dict({"name": "x", "dataflow": "os", "array": {"rows": 4, "cols": 6}})
    assert res[1]["layers"][1]["cycles"] == estimate(plan(spec, parse_layer("lenet5:conv2"))).cycles
    assert main(["estimate", "--dataflows", "ws,os", "--array", "4x6", "--layer",
                 "C=8,H=6,W=6,K=8,R=3,S=3"]) == 0
    text = capsys.readouterr().out
    assert "side by side" in text and "ws_4x6" in text and "os_4x6" in text


@pytest.mark.parametrize("args,message", [
    (["--dataflows", "ws,xs"], "--dataflows takes presets from ws, is, os, nlr, rs"),
    (["--dataflows", "ws,ws"], "--dataflows names a dataflow twice"),
    (["--dataflows", "ws", "--array", "8by8"], "--array must be ROWSxCOLS"),
    (["--array", "0x4", "ws_8x8"], "--array must be ROWSxCOLS"),
    ([], "estimate needs a SPEC"),
    (["ws_8x8", "ws_8x8"], "two specs are named alike"),
])
def test_estimate_compare_errors(args, message, capsys):
    assert main(["estimate", *args, "--layer", "C=8,H=6,W=6,K=8"]) == 2
    assert message in err_line(capsys)


def test_estimate_explain_and_csv_out(spec_file, tmp_path, capsys):
    assert main(["estimate", str(spec_file), "--network", "lenet5", "--explain", "--csv-out",
                 str(tmp_path / "r.csv")]) == 0
    out = capsys.readouterr().out
    assert "output tiles of" in out and "commands load_input" in out
    assert "lenet5:conv2" in (tmp_path / "r.csv").read_text()


def test_layer_beyond_the_weight_buffer_runs_as_im2col(spec_file, capsys):
    # 9x9 taps x 3 lanes = 243 words > weight_depth 128: the im2col rewrite (C=243, 1x1) fits
    assert main(["estimate", str(spec_file), "--layer", "C=3,H=40,W=40,K=2,R=9,S=9",
                 "--explain"]) in (0, None)
    assert "im2col" in capsys.readouterr().out


def test_heartbeat_says_where_a_long_computation_is(capsys):
    from gen.progress import Heartbeat, report, reporting
    now = [0.0]
    with reporting(Heartbeat("planning x", clock=lambda: now[0])):
        report("tiling", 0, 3)
        report("output tile", 5, 10)
        assert capsys.readouterr().err == ""        # quiet for the first 2 s
        now[0] = 2.5
        report("output tile", 6, 10)
        now[0] = 4.0
        report("output tile", 7, 10)                # within 5 s of the last line: quiet
        now[0] = 7.6
        report("tiling", 1, 3)                      # a new tiling: its output tiles start over
    report("tiling", 2, 3)                          # nobody listens any more
    assert capsys.readouterr().err.splitlines() == [
        "accelgen: planning x: tiling 1 of 3, output tile 7 of 10 (2 s)",
        "accelgen: planning x: tiling 2 of 3 (8 s)"]


def test_estimate_of_a_big_layer_shows_progress(capsys, monkeypatch, tmp_path):
    """Issue 15 item 1: planning a big layer on a small array (many tilings of many commands)
    says where it is on stderr."""
    from gen.progress import Heartbeat
    monkeypatch.setattr(Heartbeat, "after", 0.0)
    monkeypatch.setattr(Heartbeat, "every", 0.0)
    spec = tmp_path / "s.toml"
    spec.write_text('name = "s4"\n[array]\nrows = 4\ncols = 4\n')
    assert main(["estimate", str(spec), "--layer", "C=16,H=16,W=16,K=16,R=3,S=3,pad=1"]) == 0
    out, err = capsys.readouterr()
    assert "C=16,H=16,W=16,K=16,R=3,S=3,pad=1" in out
    lines = err.splitlines()
    assert any(ln.startswith("accelgen: planning C=16,H=16,W=16,K=16,R=3,S=3,pad=1 on s4: "
                             "tiling 1 of ") and ", output tile 1 of " in ln for ln in lines), err
    assert any("model: command 1 of " in ln for ln in lines), err
