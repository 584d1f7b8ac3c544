"""Synthesis baselines per preset, and a regression check against them (hls4ml-style).

    python bench/fpga_baseline.py            # synthesise, compare with fpga/baselines/<target>.json
    python bench/fpga_baseline.py --update   # synthesise and rewrite the baseline file

Each preset is synthesised with three placement seeds through the sweep engine (results cached in
build/baseline-<target>.db, so a rerun with the same generator and tools costs nothing); Fmax is the
median of the seeds. A figure that is worse than its baseline beyond the tolerance is a regression:
the table marks it and the command exits 1. Baselines record the tool versions they were made with;
a different toolchain is reported, since its numbers are not comparable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fpga import sweep as sw  # noqa: E402
from fpga.synth import tool_versions  # noqa: E402

PRESETS = {"ws_8x8": "specs/ws_8x8.toml"}
# relative tolerance per figure; "higher" figures regress downwards
TOLERANCE = {"luts": 0.05, "ffs": 0.05, "dsps": 0.0, "brams": 0.0, "fmax_mhz": 0.10}
HIGHER_IS_BETTER = {"fmax_mhz"}


def measure(target: str, seeds=(1, 2, 3), freq: float = 150) -> dict:
    out = {}
    for preset, path in PRESETS.items():
        sweep = sw.load_sweep_dict({"base": str(ROOT / path), "targets": [target],
                                    "seeds": list(seeds), "freq": freq, "timeout": 3600},
                                   ROOT / path)
        db = ROOT / "build" / f"baseline-{target}.db"
        db.parent.mkdir(exist_ok=True)
        sw.run_sweep(sweep, db, jobs=2, progress=False)
        with sw.open_db(db) as conn:
            rows = [r for r in sw.rows(conn) if r["spec_name"].startswith(preset)
                    and r["status"] == "ok" and r["seed"] in seeds
                    and r["key"] in {c["key"] for c in sw.keyed_configs(sweep)}]
        if not rows:
            raise SystemExit(f"{preset}: no seed placed on {target}; see build/")
        out[preset] = {
            "luts": rows[0]["luts"], "ffs": rows[0]["ffs"], "dsps": rows[0]["dsps"],
            "brams": rows[0]["brams"],
            "fmax_mhz": round(statistics.median(r["fmax_mhz"] for r in rows), 2),
            "fmax_seeds": sorted(round(r["fmax_mhz"], 2) for r in rows),
            "pes": rows[0]["rows"] * rows[0]["cols"],
        }
    return out


def compare(current: dict, baseline: dict) -> tuple[str, bool]:
    lines = [f"{'preset':<10} {'figure':<9} {'baseline':>10} {'now':>10} {'change':>8}  verdict"]
    ok = True
    for preset, figs in current.items():
        base = baseline.get("presets", {}).get(preset)
        for fig, tol in TOLERANCE.items():
            now = figs[fig]
            if base is None:
                lines.append(f"{preset:<10} {fig:<9} {'-':>10} {now:>10} {'':>8}  new")
                continue
            was = base[fig]
            change = (now - was) / was if was else 0.0
            worse = -change if fig in HIGHER_IS_BETTER else change
            verdict = "REGRESSION" if worse > tol + 1e-9 else "ok"
            ok &= verdict == "ok"
            lines.append(f"{preset:<10} {fig:<9} {was:>10} {now:>10} {100 * change:>+7.1f}%  "
                         f"{verdict} (tolerance {100 * tol:.0f}%)")
        pes = figs["pes"]
        lines.append(f"{preset:<10} {'per PE':<9} LUTs {figs['luts'] / pes:.1f}, FFs "
                     f"{figs['ffs'] / pes:.1f}, Fmax seeds {figs['fmax_seeds']}")
    return "\n".join(lines), ok


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--target", default="ecp5-85k")
    p.add_argument("--update", action="store_true", help="rewrite the baseline file")
    args = p.parse_args()
    path = ROOT / "fpga" / "baselines" / f"{args.target}.json"
    baseline = json.loads(path.read_text()) if path.exists() else {}
    current = measure(args.target)
    tools = tool_versions()
    if baseline and baseline.get("tools") != tools and not args.update:
        print(f"note: baseline made with {baseline.get('tools')}, now {tools}: not comparable")
    text, ok = compare(current, baseline)
    print(text)
    if args.update:
        path.write_text(json.dumps({"target": args.target, "tools": tools, "tolerance": TOLERANCE,
                                    "presets": current}, indent=2, sort_keys=True) + "\n")
        print(f"baseline written: {path}")
        return 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
