"""Sweeps: expansion, SQLite results, resumability, failures, Dask, reports; one real synthesis."""

import json
import sqlite3

import pytest

from fpga import report
from fpga import sweep as sw
from gen.errors import AccelgenError

BASE = """
name = "sw"
[array]
rows = 2
cols = 2
[buffers]
input_depth = 64
weight_depth = 64
output_depth = 64
"""


@pytest.fixture
def sweep_file(tmp_path):
    (tmp_path / "base.toml").write_text(BASE)
    p = tmp_path / "grid.toml"
    p.write_text('base = "base.toml"\ntargets = ["ice40-up5k"]\nseeds = [1, 2]\n'
                 'network = "lenet5"\n[grid]\n"array.rows" = [1, 2, 3]\n"array.cols" = [2, 4]\n')
    return p


def fake_runner(cfg, work_root, timeout, network):
    """Stands in for synthesis: 'fails to fit' when rows*cols > 8, else plausible figures."""
    from gen.spec import spec_from_dict
    spec = spec_from_dict(cfg["spec"])
    ok = spec.rows * spec.cols <= 8
    util, _ = sw.network_utilisation(spec, network)
    fmax = 100.0 + cfg["seed"] if ok else None
    return {f: None for f in sw.FIELDS} | {
        "key": cfg["key"], "spec_name": spec.name, "spec_digest": spec.digest(),
        "params": json.dumps(cfg["params"], sort_keys=True), "dataflow": spec.dataflow,
        "rows": spec.rows, "cols": spec.cols, "target": cfg["target"], "freq_mhz": cfg["freq"],
        "seed": cfg["seed"], "status": "ok" if ok else "no-fit",
        "message": "" if ok else "ERROR: not enough LUTs", "luts": 100 * spec.rows * spec.cols,
        "dsps": spec.rows * spec.cols, "fmax_mhz": fmax, "network": network,
        "utilisation": util,
        "peak_gmacs": spec.rows * spec.cols * fmax / 1e3 if ok else None,
        "effective_gmacs": spec.rows * spec.cols * fmax / 1e3 * util if ok and util else None,
        "seconds": "{}", "tools": "{}", "log_dir": work_root, "finished": 0.0}


def test_expand(sweep_file):
    cfgs = sw.expand(sw.load_sweep(sweep_file))
    assert len(cfgs) == 3 * 2 * 2
    names = {c["spec"]["name"] for c in cfgs}
    assert len(names) == 6 and all(n.startswith("sw_") for n in names)
    assert {(c["spec"]["array"]["rows"], c["spec"]["array"]["cols"]) for c in cfgs} == \
        {(r, c) for r in (1, 2, 3) for c in (2, 4)}


@pytest.mark.parametrize("text,message", [
    ('base = "base.toml"\n[grid]\n"array.rows" = [0]\n', r"array\.rows must be an integer"),
    ('base = "base.toml"\n[grid]\n"array.rows" = 4\n', r"must be a non-empty list"),
    ('base = "base.toml"\ntargets = ["xc7"]\n', r"sweep target must be one of"),
    ('base = "nope.toml"\n', r"base spec .*nope\.toml not found"),
    ('bsae = "base.toml"\n', r"unknown field 'bsae'"),
])
def test_sweep_file_errors(tmp_path, text, message):
    (tmp_path / "base.toml").write_text(BASE)
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(AccelgenError, match=message):
        sw.expand(sw.load_sweep(p))


def test_run_resume_and_failures(sweep_file, tmp_path):
    db = tmp_path / "r.db"
    counts = sw.run_sweep(sw.load_sweep(sweep_file), db, jobs=2, progress=False,
                          runner=fake_runner)
    assert counts == {"total": 12, "skipped": 0, "ok": 10, "failed": 2}
    with sqlite3.connect(db) as conn:
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM results GROUP BY status"))
    assert statuses == {"ok": 10, "no-fit": 2}
    # a rerun skips everything recorded, failures included; --retry-failed reruns only those
    again = sw.run_sweep(sw.load_sweep(sweep_file), db, progress=False, runner=fake_runner)
    assert again == {"total": 12, "skipped": 12, "ok": 0, "failed": 0}
    retry = sw.run_sweep(sw.load_sweep(sweep_file), db, progress=False, retry_failed=True,
                         runner=fake_runner)
    assert retry == {"total": 12, "skipped": 10, "ok": 0, "failed": 2}
    with sw.open_db(db) as conn:
        n = sw.export_csv(conn, tmp_path / "r.csv")
    assert n == 12 and (tmp_path / "r.csv").read_text().startswith("key,spec_name,")


def dying_runner(cfg, work_root, timeout, network):
    """Like fake_runner, but the worker process dies on its 4th config."""
    import os
    from pathlib import Path
    counter = Path(work_root) / "calls"
    counter.parent.mkdir(parents=True, exist_ok=True)
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    if n == 3:
        os._exit(1)
    return fake_runner(cfg, work_root, timeout, network)


def test_killed_sweep_keeps_finished(sweep_file, tmp_path):
    """Results are committed one by one: a sweep whose worker dies keeps what finished, and a
    rerun resumes from there."""
    db = tmp_path / "k.db"
    with pytest.raises(AccelgenError, match=r"a sweep worker died .*; rerun the same command to "
                                            r"resume"):
        sw.run_sweep(sw.load_sweep(sweep_file), db, jobs=1, progress=False,
                     runner=dying_runner, work_root=tmp_path / "work")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 3
    counts = sw.run_sweep(sw.load_sweep(sweep_file), db, progress=False, runner=fake_runner)
    assert counts["skipped"] == 3 and counts["ok"] + counts["failed"] == 9


def test_dask_local_cluster(sweep_file, tmp_path):
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        counts = sw.run_sweep(sw.load_sweep(sweep_file), tmp_path / "d.db", progress=False,
                              scheduler=cluster.scheduler_address, runner=fake_runner)
    assert counts == {"total": 12, "skipped": 0, "ok": 10, "failed": 2}


def test_unreachable_scheduler(sweep_file, tmp_path):
    with pytest.raises(AccelgenError, match=r"cannot reach the Dask scheduler at "
                                            r"tcp://127\.0\.0\.1:1"):
        sw.run_sweep(sw.load_sweep(sweep_file), tmp_path / "u.db", progress=False,
                     scheduler="tcp://127.0.0.1:1", runner=fake_runner)


def test_baseline_compare():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "bench" / "fpga_baseline.py"
    spec = importlib.util.spec_from_file_location("fpga_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    base = {"presets": {"ws": {"luts": 1000, "ffs": 2000, "dsps": 64, "brams": 35,
                               "fmax_mhz": 120.0}}}
    now = {"ws": {"luts": 1040, "ffs": 2000, "dsps": 64, "brams": 35, "fmax_mhz": 110.0,
                  "fmax_seeds": [109, 110, 112], "pes": 64}}
    text, ok = mod.compare(now, base)
    assert ok and "+4.0%  ok" in text
    now["ws"]["fmax_mhz"] = 100.0  # -16.7%: beyond the 10% tolerance
    text, ok = mod.compare(now, base)
    assert not ok and "REGRESSION" in text
    now["ws"]["fmax_mhz"], now["ws"]["dsps"] = 120.0, 65
    assert not mod.compare(now, base)[1]


def test_report_and_pareto(sweep_file, tmp_path):
    db = tmp_path / "p.db"
    sw.run_sweep(sw.load_sweep(sweep_file), db, jobs=1, progress=False, runner=fake_runner)
    with sw.open_db(db) as conn:
        data = sw.rows(conn)
    agg = report.aggregate(data)
    assert len(agg) == 6
    r22 = next(r for r in agg if (r["rows"], r["cols"]) == (2, 2))
    assert r22["fmax_mhz"] == 101.5 and r22["seeds"] == 2  # median over the two seeds
    front = report.pareto(agg, "luts", "peak_gmacs")
    # one point per cost level: 1x4 and 2x2 tie (400 LUTs, 4 PEs), 3x3/3x4 did not fit
    assert [(r["luts"], r["rows"] * r["cols"]) for r in front] == [(200, 2), (400, 4), (600, 6),
                                                                   (800, 8)]
    text = report.table(data)
    assert "no-fit" in text and "not enough LUTs" in text
    png = tmp_path / "p.png"
    report.pareto_plot(data, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_real_synthesis_ice40(tmp_path, capsys):
    """The real flow end to end on a tiny design, run in a work directory under /tmp, which the
    WebAssembly tools can only see through cwd: first ``synth --no-pnr`` (Yosys cell counts
    only), then the full flow in the same work directory, which reuses Yosys's netlist."""
    from gen.cli import main
    spec = tmp_path / "tiny.toml"
    spec.write_text('name = "tiny"\n[array]\nrows = 1\ncols = 2\n[buffers]\ninput_depth = 32\n'
                    'weight_depth = 16\noutput_depth = 16\n[frontend]\nfootprint_check = false\n')
    syn = ["synth", str(spec), "--target", "ice40-up5k", "--work-dir", str(tmp_path / "syn")]
    assert main([*syn, "--no-pnr"]) == 0
    cap = capsys.readouterr()
    assert "Fmax         not measured (--no-pnr" in cap.out and "yosys.log" in cap.out
    assert "accelgen: yosys synthesis ..." in cap.err and "yosys done in" in cap.err
    assert not (tmp_path / "syn" / "nextpnr.log").exists()
    quick_luts = int(cap.out.split("LUTs")[1].split()[0].replace(",", ""))
    assert quick_luts > 100 and "DSPs         2" in cap.out

    rc = main([*syn, "--freq", "20", "--router", "router2", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["status"] == "ok", res["message"]
    assert res["reused_netlist"] and res["seconds"]["yosys"] == 0
    assert res["luts"] > 100 and res["ffs"] > 100 and res["dsps"] == 2 and res["fmax_mhz"] > 10
    assert res["crit_from"] and res["crit_to"]
    assert set(res["seconds"]) == {"elaborate", "yosys", "nextpnr"}
    # the logs are whole: a user chasing a mapping or timing problem has them to read
    logs = tmp_path / "syn"
    assert "Printing statistics" in (logs / "yosys.log").read_text()
    assert "Max frequency for clock" in (logs / "nextpnr.log").read_text()
    assert "router2" in (logs / "nextpnr.log").read_text().lower()
    assert res["ffs_synth"] == res["ffs"] > 0 and res["cells"]["SB_LUT4"] > 0   # (no folding)
