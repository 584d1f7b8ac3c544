"""Parameter sweeps over spec fields through synthesis, with results in SQLite.

A sweep file names a base spec and a grid (or list) of overrides::

    base = "../specs/ws_8x8.toml"      # relative to the sweep file
    targets = ["ecp5-85k"]
    freq = 150                         # MHz asked of nextpnr
    seeds = [1, 2, 3]
    timeout = 1800                     # seconds per tool step
    network = "resnet18"               # for utilisation-weighted throughput (analytic model)

    [grid]                             # cartesian product over dotted spec fields
    "array.rows" = [4, 8]
    "array.cols" = [4, 8]
    "pipeline.mult_stages" = [0, 2]

    [[configs]]                        # and/or an explicit list
    "array.rows" = 12
    "array.cols" = 12

Each config's key hashes its spec, target, frequency, seed, tool versions and a fingerprint of the
generator's sources. Results are written
by the parent process as each config finishes (one transaction per config), so a killed sweep loses
nothing finished, and a rerun skips every key already recorded (failures too, unless asked to
retry). Configs run on a local process pool, or on a Dask cluster given its scheduler address
(gen/parallel.py).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import itertools
import json
import sqlite3
import time
import tomllib
from pathlib import Path

from gen.errors import AccelgenError
from gen.parallel import WorkerDied, completed
from gen.spec import spec_from_dict

__all__ = ["load_sweep", "expand", "run_sweep", "open_db", "rows", "export_csv", "FIELDS"]

FIELDS = ["key", "spec_name", "spec_digest", "params", "dataflow", "rows", "cols", "act_bits",
          "weight_bits", "target", "freq_mhz", "seed", "status", "message", "luts", "ffs", "dsps",
          "brams", "fmax_mhz", "crit_from", "crit_to", "peak_gmacs", "network", "utilisation",
          "effective_gmacs", "seconds", "tools", "log_dir", "finished"]


def load_sweep(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AccelgenError(f"{path}: sweep file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise AccelgenError(f"{path}: not valid TOML ({e})") from None
    return load_sweep_dict(data, path)


def load_sweep_dict(data: dict, path: str | Path) -> dict:
    """Validate a sweep given as a dict; ``base`` is relative to ``path``'s folder."""
    path = Path(path)
    data = dict(data)
    allowed = {"base", "targets", "freq", "seeds", "timeout", "network", "grid", "configs", "name"}
    for key in data:
        if key not in allowed:
            raise AccelgenError(f"{path}: unknown field {key!r}; allowed: "
                                f"{', '.join(sorted(allowed))}")
    if "base" not in data:
        raise AccelgenError(f"{path}: missing field base (the spec the grid modifies)")
    base = (path.parent / data["base"]).resolve()
    try:
        base_dict = tomllib.loads(base.read_text())
    except FileNotFoundError:
        raise AccelgenError(f"{path}: base spec {base} not found") from None
    data["base_spec"] = base_dict
    data["name"] = data.get("name", path.stem)
    return data


def _set(d: dict, dotted: str, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise AccelgenError(f"sweep field {dotted}: {k} is not a table")
    d[keys[-1]] = value


def expand(sweep: dict) -> list[dict]:
    """All configs of a sweep: dicts with spec (validated), target, freq, seed, params."""
    from .synth import TARGETS
    grid = sweep.get("grid", {})
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise AccelgenError(f"sweep grid field {k!r} must be a non-empty list, not {v!r}")
    combos = [dict(zip(grid, vals, strict=True)) for vals in itertools.product(*grid.values())] \
        if grid else []
    combos += [dict(c) for c in sweep.get("configs", [])]
    if not combos:
        combos = [{}]
    targets = sweep.get("targets", ["ecp5-85k"])
    for t in targets:
        if t not in TARGETS:
            raise AccelgenError(f"sweep target must be one of {', '.join(TARGETS)}, not {t!r}")
    seeds = sweep.get("seeds", [1])
    freq = float(sweep.get("freq", 100))
    out = []
    for params in combos:
        d = copy.deepcopy(sweep["base_spec"])
        for k, v in params.items():
            _set(d, k, v)
        tag = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
        d["name"] = f"{sweep['base_spec'].get('name', 'accel')}_{tag}"
        spec = spec_from_dict(d, source=f"sweep config {params}")
        for target in targets:
            for seed in seeds:
                out.append({"spec": spec.to_dict(), "params": params, "target": target,
                            "freq": freq, "seed": int(seed)})
    return out


def generator_fingerprint() -> str:
    """A hash of the sources that decide the synthesised netlist (hardware generator, ISA, spec,
    IO wrapper), so results of an older generator are never mistaken for the current one's."""
    from gen.emit import hardware_fingerprint
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(hardware_fingerprint().encode())
    for p in (root / "fpga" / "wrapper.py", root / "fpga" / "synth.py",
              root / "fpga" / "absorb.py"):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def config_key(cfg: dict, tools: dict) -> str:
    blob = json.dumps({k: cfg[k] for k in ("spec", "target", "freq", "seed")}
                      | {"tools": tools, "generator": generator_fingerprint()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def network_utilisation(spec, network: str | None):
    """(utilisation, message) of a network's conv layers on ``spec`` from the analytic model."""
    if not network:
        return None, ""
    from gen.layer import network_layers
    from gen.model import estimate
    from gen.tiler import plan
    layers = network_layers(network)
    macs = cycles = 0
    for name, layer, repeat in layers:
        try:
            est = estimate(plan(spec, layer))
        except AccelgenError as e:
            return None, f"{name}: {e}"
        macs += est.macs * repeat
        cycles += est.cycles * repeat
    return macs / (cycles * spec.rows * spec.cols), ""


def run_config(cfg: dict, work_root: str, timeout: float | None, network: str | None) -> dict:
    """Synthesise one config (runs in a worker process or on a Dask worker)."""
    from .synth import synthesize, tool_versions
    spec = spec_from_dict(cfg["spec"])
    wd = Path(work_root) / cfg["key"]
    try:
        res = synthesize(spec, cfg["target"], freq=cfg["freq"], seed=cfg["seed"], work_dir=wd,
                         timeout=timeout)
        r = res.as_dict()
    except AccelgenError as e:
        r = {"status": "error", "message": str(e), "seconds": {}, "work_dir": str(wd)}
    except Exception as e:  # a crash in one config must not stop the sweep
        r = {"status": "error", "message": f"{type(e).__name__}: {e}"[:300], "seconds": {},
             "work_dir": str(wd)}
    util, umsg = network_utilisation(spec, network)
    peak = spec.rows * spec.cols * r["fmax_mhz"] / 1e3 if r.get("fmax_mhz") else None
    return {
        "key": cfg["key"], "spec_name": spec.name, "spec_digest": spec.digest(),
        "params": json.dumps(cfg["params"], sort_keys=True), "dataflow": spec.dataflow,
        "rows": spec.rows, "cols": spec.cols, "act_bits": spec.act_bits,
        "weight_bits": spec.weight_bits, "target": cfg["target"], "freq_mhz": cfg["freq"],
        "seed": cfg["seed"], "status": r["status"],
        "message": r.get("message", "") or umsg,
        "luts": r.get("luts"), "ffs": r.get("ffs"), "dsps": r.get("dsps"), "brams": r.get("brams"),
        "fmax_mhz": r.get("fmax_mhz"), "crit_from": r.get("crit_from"), "crit_to": r.get("crit_to"),
        "peak_gmacs": peak, "network": network, "utilisation": util,
        "effective_gmacs": peak * util if peak is not None and util is not None else None,
        "seconds": json.dumps(r.get("seconds", {})), "tools": json.dumps(tool_versions()),
        "log_dir": r.get("work_dir", str(wd)), "finished": time.time(),
    }


def open_db(path: str | Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path))
    cols = ", ".join(f"{f} {'TEXT PRIMARY KEY' if f == 'key' else ''}" for f in FIELDS)
    db.execute(f"CREATE TABLE IF NOT EXISTS results ({cols})")
    db.commit()
    return db


def rows(db: sqlite3.Connection) -> list[dict]:
    cur = db.execute(f"SELECT {', '.join(FIELDS)} FROM results ORDER BY spec_name, target, seed")
    return [dict(zip(FIELDS, r, strict=True)) for r in cur.fetchall()]


def export_csv(db: sqlite3.Connection, path: str | Path) -> int:
    data = rows(db)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(data)
    return len(data)


def keyed_configs(sweep: dict) -> list[dict]:
    """The sweep's configs, each with its result key."""
    from .synth import tool_versions
    tools = tool_versions()
    configs = expand(sweep)
    for c in configs:
        c["key"] = config_key(c, tools)
    return configs


def run_sweep(sweep: dict, db_path: str | Path, *, jobs: int | None = None,
              scheduler: str | None = None, retry_failed: bool = False,
              work_root: str | Path | None = None, progress: bool = True,
              runner=run_config) -> dict:
    """Run every config not yet in the database. Returns counts."""
    configs = keyed_configs(sweep)
    db = open_db(db_path)
    done = {k: s for k, s in db.execute("SELECT key, status FROM results")}
    todo = [c for c in configs if c["key"] not in done
            or (retry_failed and done[c["key"]] != "ok")]
    counts = {"total": len(configs), "skipped": len(configs) - len(todo), "ok": 0, "failed": 0}
    work_root = str(Path(work_root or Path(db_path).with_suffix("")).resolve())
    timeout = sweep.get("timeout")
    network = sweep.get("network")

    def record(result):
        db.execute(f"INSERT OR REPLACE INTO results ({', '.join(FIELDS)}) VALUES "
                   f"({', '.join('?' for _ in FIELDS)})", [result[f] for f in FIELDS])
        db.commit()
        counts["ok" if result["status"] == "ok" else "failed"] += 1

    bar = _Progress(len(todo), enabled=progress)
    try:
        for _, r in completed(runner, [(c, work_root, timeout, network) for c in todo],
                              jobs=jobs, scheduler=scheduler):
            record(r)
            bar.update(r)
    except WorkerDied as e:
        raise AccelgenError(
            f"a sweep worker died ({e.reason}); {counts['ok'] + counts['failed']} results of "
            f"this run are saved in {db_path}; rerun the same command to resume") from None
    finally:
        bar.close()
        db.close()
    return counts


class _Progress:
    """done / failed / remaining with an ETA (rich when available and enabled)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.failed = total, 0, 0
        self.bar = None
        if enabled and total:
            from rich.progress import (BarColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            self.bar = Progress(TextColumn("sweep"), BarColumn(),
                                TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                TextColumn("ETA"), TimeRemainingColumn())
            self.bar.start()
            self.task = self.bar.add_task("sweep", total=total, stats=self._stats())

    def _stats(self) -> str:
        return (f"done {self.done - self.failed}  failed {self.failed}  "
                f"remaining {self.total - self.done}")

    def update(self, result: dict):
        self.done += 1
        self.failed += result["status"] != "ok"
        if self.bar:
            self.bar.update(self.task, advance=1, stats=self._stats())

    def close(self):
        if self.bar:
            self.bar.stop()
