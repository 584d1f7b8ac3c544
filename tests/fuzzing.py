"""The input fuzzing campaign: hypothesis strategies for every kind of user input and the oracle
that judges one CLI call. Shared by tests/test_fuzz_*.py (a few hundred cases) and bench/fuzz.py
(tens of thousands).

A case runs ``gen.cli.main(argv)`` in process, in a fresh working directory, with the slow back
ends (simulator build, Verilog generation, drawing, synthesis, sweeps, boards) replaced by a stub
that records what they were asked and stops the call: everything the CLI checks before the work is
exercised, and the values that reach the work can be compared with the values given. The oracle:

* no exception escapes other than ``SystemExit`` (no traceback);
* a refused input exits 2 with exactly one line on stderr, ``accelgen: error: ...``;
* nothing is written outside the outputs the call named (the file tree around the working
  directory is compared before and after);
* meaning: a value known to be invalid is refused, never replaced by a default, and a value that
  is accepted reaches the work unchanged.

The oracle lives in tests/fuzz_oracle.py, the text families (specs, layer strings, CSV tables) in
tests/fuzz_text.py; this module has the CLI-argument, .npy and ONNX families and ``FAMILIES``.
"""

from __future__ import annotations

import io
import math
import time
import traceback
from pathlib import Path

from hypothesis import strategies as st

import fuzz_oracle
from fuzz_oracle import (Outcome, Reached, case_root, judge, must_refuse, run_cli, stubs, text,
                         toml_text)
from fuzz_text import (int_or_none, base_spec, csv_cases, layer_cases, run_csv_case,
                       run_layer_case, run_spec_case, spec_cases)

__all__ = ["Reached", "Outcome", "run_cli", "stubs", "toml_text", "FAMILIES"]


# -- family: CLI arguments ----------------------------------------------------------------------
def _POS(t):  # noqa: N802
    return int_or_none(t) is not None and int(t) >= 1


def _NONNEG(t):  # noqa: N802
    return int_or_none(t) is not None and int(t) >= 0


def _float_ok(low_ok, t):
    try:
        v = float(t)
    except ValueError:
        return False
    return low_ok(v) and math.isfinite(v)


_NUM = st.sampled_from(["0", "1", "2", "-1", "3", "0.5", "1e3", "nan", "inf", "-inf", "x", "",
                        "1.0", "99", " 2", "0x1"])
#: option -> predicate of a valid value, or None when any text goes
_OPTIONS = {
    "simulate": {"--stride": _POS, "--padding": _NONNEG, "--dilation": _POS, "--groups": _POS,
                 "--batch": _POS, "--seed": _NONNEG,
                 "--backpressure": lambda t: _float_ok(lambda v: 0 <= v < 1, t),
                 "--sim": lambda t: t in ("icarus", "verilator"), "--requant": None,
                 "--output": None, "--work-dir": None},
    "estimate": {"--array": None, "--dataflows": None, "--network": None, "--plot": None,
                 "--csv-out": None},
    "synth": {"--freq": lambda t: _float_ok(lambda v: v > 0, t), "--seed": _POS,
              "--timeout": lambda t: _float_ok(lambda v: v > 0, t),
              "--target": lambda t: t in ("ecp5-85k", "ecp5-25k", "ice40-up5k"),
              "--work-dir": None},
    "fpga build": {"--baud": _POS, "--seed": _POS, "--board":
                   lambda t: t in ("ulx3s", "icebreaker"), "-o": None},
    "fpga run": {"--baud": _POS, "--port": None, "--stride": _POS, "--padding": _NONNEG,
                 "--seed": _NONNEG, "-o": None},
    "generate": {"-o": None},
    "show": {"-o": None},
}
_OUTPUT_OPTIONS = ("--output", "--work-dir", "--plot", "--csv-out", "-o")
_FLAGS = {"simulate": ["--relu", "--random-bias", "--json", "--waves"],
          "estimate": ["--json", "--explain", "--log-scale"], "synth": ["--no-pnr", "--json"],
          "fpga build": ["--plan-only", "--json"], "fpga run": [], "generate": ["--json"],
          "show": []}
_PATHS = st.sampled_from(["out", "o/y.npy", "y.npy", "p.png", "p.svg", "x.txt", "../up.npy",
                          "sub/", "spec.toml", ".", "o.csv", "w"])


@st.composite
def cli_cases(draw):
    command = draw(st.sampled_from(list(_OPTIONS)))
    argv = command.split() + [draw(st.sampled_from(["spec.toml", "spec.toml", "ws_8x8",
                                                    "nope.toml", "..", "spec"]))]
    opts, why = {}, []
    if command in ("simulate", "fpga run", "estimate"):
        argv += ["--layer", draw(st.sampled_from(["C=2,H=4,W=4,K=2,R=3,S=3",
                                                  "C=2,H=5,W=5,K=4,R=1,S=1,pad=1"]))]
    if command == "fpga build":
        argv.append("--plan-only")
    for opt in draw(st.lists(st.sampled_from(sorted(_OPTIONS[command])), max_size=4,
                             unique=True)):
        ok = _OPTIONS[command][opt]
        value = draw(_PATHS if opt in _OUTPUT_OPTIONS else _NUM if ok is not None else text)
        argv += [opt, value]
        opts[opt] = value
        if ok is not None and not ok(value):
            why.append(f"{opt} {value!r}")
    argv += draw(st.lists(st.sampled_from(_FLAGS[command] + ["--bogus", "extra", "-"]),
                          max_size=2))
    if "--port" not in opts and command == "fpga run":
        argv += ["--port", "/dev/null-fuzz"]
    return {"argv": argv, "opts": opts, "why": why}


def run_cli_case(case) -> list:
    with case_root() as root:
        (root / "work").mkdir()
        spec = base_spec()
        spec["postproc"] = {"enabled": True}
        (root / "work" / "spec.toml").write_text(toml_text(spec))
        outs = tuple(v for k, v in case["opts"].items() if k in _OUTPUT_OPTIONS)
        o = run_cli(case["argv"], root, outputs=outs + ("fz.png",))
    meaning = []
    if case["why"]:
        meaning += must_refuse(o, "; ".join(case["why"]))
    elif o.reached is not None:
        info, opts = o.reached.info, case["opts"]
        if o.reached.what == "simulate":
            kw = info["kwargs"]
            if "--backpressure" in opts and kw["in_pause"] != float(opts["--backpressure"]):
                meaning.append(f"--backpressure {opts['--backpressure']} became "
                               f"{kw['in_pause']}")
            if "--seed" in opts and kw["seed"] != int(opts["--seed"]):
                meaning.append(f"--seed {opts['--seed']} became {kw['seed']}")
            for opt, f in (("--stride", "stride"), ("--padding", "pad"),
                           ("--dilation", "dilation"), ("--groups", "groups"), ("--batch", "N")):
                if opt in opts and getattr(info["layer"], f) != int(opts[opt]):
                    meaning.append(f"{opt} {opts[opt]} became {getattr(info['layer'], f)}")
        elif o.reached.what == "synth":
            kw = info["kwargs"]
            for opt, k, conv in (("--freq", "freq", float), ("--seed", "seed", int),
                                 ("--timeout", "timeout", float)):
                if opt in opts and kw[k] != conv(opts[opt]):
                    meaning.append(f"{opt} {opts[opt]} became {kw[k]}")
    return judge(o, meaning)


# -- family: .npy tensors -----------------------------------------------------------------------
_DTYPES = ["int8", "int8", "int8", "uint8", "int16", "int32", "int64", "uint64", "float32",
           "float64", "bool", "complex64", "<U2"]


@st.composite
def tensor_cases(draw):
    C, H, W, K, R = (draw(st.integers(1, 4)) for _ in range(5))
    R = min(R, H, W)
    files, why = {}, []
    for what, shape, lo, hi in (("input", (1, C, H, W), -128, 127),
                                ("weights", (K, C, R, R), -128, 127),
                                ("bias", (K,), -(1 << 31), (1 << 31) - 1),
                                ("quant-mult", (K,), 0, (1 << 16) - 1),
                                ("quant-shift", (K,), 0, 63)):
        if what in ("bias", "quant-mult", "quant-shift") and draw(st.booleans()):
            continue
        dtype = draw(st.sampled_from(_DTYPES)) if draw(st.integers(0, 2)) == 0 else \
            ("int8" if what in ("input", "weights") else "int32")
        if draw(st.integers(0, 4)) == 0:
            shape = draw(st.sampled_from([(), (0,), (2,), (1, C, H), (1, C, H, W, 1),
                                          (2, C, H, W), (K + 1,), (1, 0, H, W)]))
        fill = draw(st.sampled_from(["in", "in", "in", "low", "high"]))
        corrupt = draw(st.sampled_from([None] * 8 + ["truncate", "garbage", "empty",
                                                     "pickle"]))
        files[what] = {"shape": shape, "dtype": dtype, "fill": fill, "lo": lo, "hi": hi,
                       "corrupt": corrupt, "seed": draw(st.integers(0, 1 << 16))}
        dt = __import__("numpy").dtype(dtype)
        if corrupt:
            why.append(f"{what} file {corrupt}")
        elif dt.kind not in "iu":
            why.append(f"{what} dtype {dtype}")
        elif fill != "in":
            import numpy as np
            info = np.iinfo(dt)
            if (fill == "low" and info.min < lo) or (fill == "high" and info.max > hi):
                why.append(f"{what} values out of range")
    if "quant-mult" in files and "quant-shift" not in files:
        why.append("quant-mult without quant-shift")
    if "quant-shift" in files and "quant-mult" not in files:
        why.append("quant-shift without quant-mult")
    return {"files": files, "why": why, "shape": (C, H, W, K, R)}


def _tensor_bytes(f) -> bytes:
    import numpy as np
    rng = np.random.default_rng(f["seed"])
    dt = np.dtype(f["dtype"])
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = max(f["lo"], info.min), min(f["hi"], info.max)
        a = rng.integers(lo, hi + 1, f["shape"], dtype=np.int64).astype(dt) if lo <= hi \
            else np.zeros(f["shape"], dt)
        if a.size and f["fill"] == "low" and info.min < f["lo"]:
            a.flat[rng.integers(a.size)] = info.min
        if a.size and f["fill"] == "high" and info.max > f["hi"]:
            a.flat[rng.integers(a.size)] = info.max
    elif dt.kind == "U":
        a = np.full(f["shape"], "7", dtype=dt)
    else:
        a = rng.integers(-3, 3, f["shape"]).astype(dt)
    buf = io.BytesIO()
    if f["corrupt"] == "pickle":
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        np.save(buf, a)
    blob = buf.getvalue()
    if f["corrupt"] == "truncate":
        blob = blob[:len(blob) - 1 - f["seed"] % max(1, min(len(blob) - 1, a.nbytes or 1))]
    elif f["corrupt"] == "garbage":
        blob = bytes((f["seed"] * 7 + i * 31) % 256 for i in range(40))
    elif f["corrupt"] == "empty":
        blob = b""
    return blob


def run_tensor_case(case) -> list:
    import numpy as np
    with case_root() as root:
        (root / "work").mkdir()
        spec = base_spec()
        spec["postproc"] = {"enabled": True}
        (root / "work" / "spec.toml").write_text(toml_text(spec))
        argv = ["simulate", "spec.toml"]
        for what, f in case["files"].items():
            (root / "work" / f"{what}.npy").write_bytes(_tensor_bytes(f))
            argv += [f"--{what}", f"{what}.npy"]
        if "input" not in case["files"]:
            argv += ["--input", "missing.npy"]
        o = run_cli(argv, root)
    meaning = []
    if case["why"]:
        meaning += must_refuse(o, "; ".join(case["why"]))
    elif o.reached is not None:
        x = o.reached.info["x"]
        given = np.load(io.BytesIO(_tensor_bytes(case["files"]["input"])))
        if not np.array_equal(np.asarray(x), given):
            meaning.append("the input tensor reached the simulator changed")
    return judge(o, meaning)


# -- family: ONNX models ------------------------------------------------------------------------
MODEL = Path(__file__).resolve().parents[1] / "models" / "digits_cnn_int8.onnx"


def _float_model(op: str) -> bytes:
    import numpy as np
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))
    n = helper.make_node(op, ["x", "w"] if op == "Conv" else ["x"], ["y"])
    g = helper.make_graph([n], "g", [x], [y], [w] if op == "Conv" else [])
    return helper.make_model(g).SerializeToString()


@st.composite
def onnx_cases(draw):
    kind = draw(st.sampled_from(["random", "truncate", "flip", "flip", "float", "unsupported",
                                 "node"]))
    return {"kind": kind, "n": draw(st.integers(0, 1 << 20)),
            "bytes": draw(st.binary(max_size=64)),
            "op": draw(st.sampled_from(["Conv", "Sin", "LSTM", "Relu", "Gather", "If"]))}


def onnx_bytes(case) -> bytes:
    kind, n = case["kind"], case["n"]
    base = MODEL.read_bytes()
    if kind == "random":
        return case["bytes"]
    if kind == "truncate":
        return base[:n % len(base)]
    if kind == "flip":
        b = bytearray(base)
        for i, v in enumerate(case["bytes"][:8] or b"\xff"):
            b[(n + 977 * i) % len(b)] ^= v or 1
        return bytes(b)
    if kind == "float":
        return _float_model("Conv")
    if kind == "unsupported":
        return _float_model(case["op"])
    # a quantized model with one node's type replaced
    import onnx
    m = onnx.load_from_string(base)
    node = m.graph.node[n % len(m.graph.node)]
    node.op_type = case["op"]
    return m.SerializeToString()


def run_onnx_case(case) -> list:
    from gen.errors import AccelgenError
    from gen.network.onnx_import import load
    data = onnx_bytes(case)
    fuzz_oracle.LAST_REFUSED = False
    t0 = time.monotonic()
    problems = []
    try:
        load(data)
    except AccelgenError as e:
        fuzz_oracle.LAST_REFUSED = True
        msg = str(e).strip()
        if "\n" in msg or not msg:
            problems.append(("protocol", f"refusal is not one line: {msg!r}"))
    except Exception:
        problems.append(("traceback", traceback.format_exc().strip().splitlines()[-1]
                         + f" ({case['kind']})"))
    else:
        if case["kind"] in ("float", "unsupported"):
            problems.append(("meaning", f"a float model ({case['op']}) was imported"))
    if time.monotonic() - t0 > 30:
        problems.append(("slow", f"{case['kind']} took {time.monotonic() - t0:.0f} s"))
    return problems


#: name -> (case strategy, runner)
FAMILIES = {"spec": (spec_cases(), run_spec_case), "layer": (layer_cases(), run_layer_case),
            "csv": (csv_cases(), run_csv_case), "cli": (cli_cases(), run_cli_case),
            "npy": (tensor_cases(), run_tensor_case), "onnx": (onnx_cases(), run_onnx_case)}
