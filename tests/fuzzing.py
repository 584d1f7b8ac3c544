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
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import time
import traceback
from pathlib import Path

from hypothesis import strategies as st

__all__ = ["Reached", "Outcome", "run_cli", "stubs", "toml_text", "FAMILIES"]


class Reached(Exception):  # noqa: N818 — a signal, not an error
    """Raised by a stubbed back end: the CLI accepted the input and started the work."""

    def __init__(self, what, **info):
        super().__init__(what)
        self.what, self.info = what, info


def _stub(what):
    def stub(*args, **kwargs):
        raise Reached(what, args=args, kwargs=kwargs)
    return stub


@contextlib.contextmanager
def stubs():
    """Replace the slow back ends with :class:`Reached` raisers (for the whole campaign)."""
    import fpga.boards
    import fpga.host
    import fpga.sweep
    import fpga.synth
    import gen.emit
    import gen.show
    import sim.flow

    real_simulate = sim.flow.simulate_layer

    def simulate(spec, layer, x, w, bias=None, **kwargs):
        # the real front half (tensor checks, tiling, framing, golden), then stop before the
        # simulator: the values that would have been simulated are recorded
        def stop():
            raise Reached("simulate", spec=spec, layer=layer, x=x, w=w, bias=bias,
                          kwargs=kwargs)
        old = sim.flow.cache_dir
        sim.flow.cache_dir = stop
        try:
            return real_simulate(spec, layer, x, w, bias, **kwargs)
        finally:
            sim.flow.cache_dir = old

    patches = [(sim.flow, "simulate_layer", simulate), (gen.emit, "generate", _stub("generate")),
               (gen.show, "draw", _stub("show")), (fpga.synth, "synthesize", _stub("synth")),
               (fpga.sweep, "run_sweep", _stub("sweep")),
               (fpga.boards, "build_board", _stub("fpga build")),
               (fpga.host, "run_layer_on_board", _stub("fpga run"))]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    for mod, name, value in patches:
        setattr(mod, name, value)
    try:
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames + dirnames:
            p = Path(dirpath) / n
            try:
                st_ = p.lstat()
            except OSError:
                continue
            out[str(p.relative_to(root))] = (st_.st_size, st_.st_mtime_ns)
    return out


@dataclasses.dataclass
class Outcome:
    argv: list
    rc: int | None            # exit code (None: the work was reached through a stub)
    out: str
    err: str
    reached: Reached | None
    traceback: str | None
    stray: list[str]
    seconds: float

    @property
    def refused(self) -> bool:
        return self.rc == 2

    def problems(self) -> list[str]:
        """What the oracle objects to, whatever the input was."""
        bad = []
        if self.traceback:
            bad.append(f"traceback: {self.traceback.strip().splitlines()[-1]}")
        if self.stray:
            bad.append(f"stray writes: {self.stray[:5]}")
        if self.rc == 2:
            lines = [ln for ln in self.err.splitlines() if ln.strip()]
            if len(lines) != 1 or not lines[0].startswith("accelgen: error: "):
                bad.append(f"refusal is not one 'accelgen: error:' line: {self.err!r}")
        elif self.rc not in (0, 1, None):
            bad.append(f"exit code {self.rc}")
        return bad

    def describe(self) -> str:
        return (f"argv={self.argv!r} rc={self.rc} reached={self.reached and self.reached.what} "
                f"err={self.err.strip()[:300]!r} out={self.out.strip()[:200]!r}")


def run_cli(argv: list[str], root: Path, cwd: Path | None = None,
            outputs: tuple[str, ...] = ()) -> Outcome:
    """Run ``accelgen argv`` in ``cwd`` (default ``root/work``); every file created or changed
    under ``root`` must lie under one of ``outputs`` (paths relative to ``cwd``, or absolute)."""
    from gen.cli import main

    cwd = Path(cwd or root / "work")
    cwd.mkdir(parents=True, exist_ok=True)
    # the outputs named, and the user's cache and config folders (accelgen's cache, a library's
    # own: matplotlib writes its font cache there the first time it is imported)
    allowed = [(cwd / o).resolve() for o in outputs] + [(root / "home" / d).resolve()
                                                        for d in (".cache", ".config")]
    before = _tree(root)
    out, err = io.StringIO(), io.StringIO()
    rc, reached, tb = None, None, None
    old = os.getcwd()
    t0 = time.monotonic()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except Reached as e:
                reached = e
            except BaseException:  # noqa: B036 — the oracle: anything else is a traceback
                tb = traceback.format_exc()
    finally:
        os.chdir(old)
    seconds = time.monotonic() - t0
    after = _tree(root)
    stray = []
    for rel, stamp in after.items():
        if before.get(rel) == stamp:
            continue
        p = (root / rel).resolve()
        if p in (cwd.resolve(), (root / "home").resolve()) or any(
                p == a or a in p.parents or p in a.parents for a in allowed):
            continue
        stray.append(rel)
    return Outcome(list(argv), rc, out.getvalue(), err.getvalue(), reached, tb, sorted(stray),
                   seconds)


# -- TOML text (tomllib reads only) --------------------------------------------------------------
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):           # a TOML basic string: escape quotes, \\ and controls
        return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F
                             or c in '"\\' else c for c in v) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_value(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def toml_text(data: dict) -> str:
    """``data`` (top-level keys, then tables) as TOML text."""
    lines = [f"{_toml_value(k)} = {_toml_value(v)}" for k, v in data.items()
             if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"[{_toml_value(k)}]")
            lines += [f"{_toml_value(kk)} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


# -- shared value strategies --------------------------------------------------------------------
#: strings that look like paths, keywords, options or nothing
NASTY_TEXT = ["", " ", "-", "--", "..", "../x", "a/b", "/tmp/x", "~", "con", "nul", "module",
              "class", "None", "input", "wire", "ws", "8x8", "a b", "é", "\x00", "\n", "--help",
              "-o", "1e9", "nan", "inf", "-1", "0", "0x10", "１", "a" * 70, "x.toml", "$HOME"]
text = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=12))
junk_value = st.one_of(
    st.integers(-(1 << 70), 1 << 70), st.sampled_from([0, -1, 1, 2, 255, 256, 65536, 65537]),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), text,
    st.lists(st.integers(0, 9), max_size=3), st.dictionaries(st.sampled_from("ab"),
                                                             st.integers(0, 3), max_size=2))


#: whether the last case was refused (for bench/fuzz.py's tally)
LAST_REFUSED = False


def judge(outcome: Outcome, meaning: list[str] = (), slow: float | None = None) -> list:
    """The oracle's verdict: a list of (kind, message), empty when the case passed."""
    global LAST_REFUSED
    LAST_REFUSED = outcome.refused
    kinds = []
    for p in outcome.problems():
        kinds.append(("traceback" if p.startswith("traceback") else
                      "stray_write" if p.startswith("stray") else "protocol", p))
    if slow is not None and outcome.seconds > slow:
        kinds.append(("slow", f"{outcome.seconds:.1f} s without finishing"))
    kinds += [("meaning", m) for m in meaning]
    return kinds


def must_refuse(outcome: Outcome, why: str, names: tuple[str, ...] = ()) -> list[str]:
    """Meaning: an input known to be invalid must be refused, naming one of ``names``."""
    if not outcome.refused:
        return [f"accepted an invalid input ({why}): {outcome.describe()}"]
    if names and not any(n.lower() in outcome.err.lower() for n in names):
        return [f"refusal names none of {names}: {outcome.err.strip()!r}"]
    return []


@contextlib.contextmanager
def case_root():
    """A fresh folder for one case, with HOME and the accelgen cache inside it."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="accelgen-fuzz-") as tmp:
        root = Path(tmp)
        saved = {k: os.environ.get(k) for k in ("HOME", "ACCELGEN_CACHE")}
        os.environ["HOME"] = str(root / "home")
        os.environ["ACCELGEN_CACHE"] = str(root / "home" / "cache")
        try:
            yield root
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


# -- family: specs -------------------------------------------------------------------------------
def _spec_fields():
    from gen.spec import _FIELDS
    return _FIELDS


PRESETS = ("ws", "os", "is", "nlr", "rs")


def base_spec(dataflow: str = "ws") -> dict:
    return {"name": "fz", "dataflow": dataflow, "array": {"rows": 4, "cols": 4},
            "precision": {"act_bits": 8, "weight_bits": 8, "acc_bits": 32},
            "buffers": {"input_depth": 512, "weight_depth": 256, "output_depth": 256}}


def field_valid(kind, low, high, value) -> bool:
    """Independent statement of the documented field types and ranges."""
    import keyword
    import re
    if kind is int:
        return type(value) is int and low <= value <= high
    if kind is float:
        return type(value) in (int, float) and low <= value <= high
    if kind is bool:
        return type(value) is bool
    if kind == "rounding":
        return value in ("half_up", "half_even")
    if kind == "dataflow":
        return isinstance(value, str) and value.lower() in (*PRESETS, "custom")
    if kind == "name":
        from gen.spec import _VERILOG_KEYWORDS
        return (isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", value)
                is not None and value not in _VERILOG_KEYWORDS and not keyword.iskeyword(value))
    raise AssertionError(kind)


def spec_invalid(data: dict) -> list[tuple[str, str]]:
    """Independent statement of what makes a spec invalid: (why, the name the refusal names)."""
    fields = {(f[0], f[1]): f for f in _spec_fields()}
    sections = {f[0] for f in fields} - {""}
    bad = []
    for key, value in data.items():
        if key in sections:
            if not isinstance(value, dict):
                bad.append((f"[{key}] is {value!r}", key))
                continue
            for k, v in value.items():
                f = fields.get((key, k))
                if f is None:
                    bad.append((f"unknown {key}.{k}", k))
                elif not field_valid(f[2], f[4], f[5], v):
                    bad.append((f"{key}.{k} = {v!r}", k))
        elif ("", key) in fields:
            f = fields[("", key)]
            if not field_valid(f[2], f[4], f[5], value):
                bad.append((f"{key} = {value!r}", key))
        else:
            bad.append((f"unknown {key}", key))
    for section, key in (("", "name"), ("array", "rows"), ("array", "cols")):
        table = data.get(section, {}) if section else data
        if isinstance(table, dict) and key not in table:
            bad.append((f"missing {section}.{key}", key))
    flow = data.get("dataflow", "ws")
    if isinstance(flow, str) and flow.lower() == "custom":
        bad.append(("custom dataflow without [mapping]", "mapping"))
    if "spads" in data and isinstance(flow, str) and flow.lower() in PRESETS and \
            flow.lower() != "rs":
        bad.append(("[spads] on a dataflow other than rs", "spads"))
    return bad


@st.composite
def spec_cases(draw):
    fields = _spec_fields()
    data = base_spec(draw(st.sampled_from(PRESETS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "set", "del", "unknown", "table", "name"]))
        if kind in ("set", "name"):
            section, key, fkind, _d, low, high = (
                next(f for f in fields if f[1] == "name") if kind == "name"
                else draw(st.sampled_from(fields)))
            if fkind is int:
                value = draw(st.one_of(st.integers(low - 2, high + 2), junk_value))
            elif fkind == "name":
                value = draw(st.one_of(text, st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}",
                                                           fullmatch=True)))
            elif fkind == "dataflow":
                value = draw(st.one_of(st.sampled_from([*PRESETS, "WS", "Rs", "custom"]),
                                       junk_value))
            else:
                value = draw(junk_value)
            table = data.setdefault(section, {}) if section else data
            if isinstance(table, dict):
                table[key] = value
        elif kind == "del":
            section, key = draw(st.sampled_from([("", "name"), ("array", "rows"),
                                                 ("array", "cols"), ("array", None)]))
            if key is None:
                data.pop(section, None)
            elif isinstance(data.get(section) if section else data, dict):
                (data[section] if section else data).pop(key, None)
        elif kind == "unknown":
            section = draw(st.sampled_from(["", "array", "precision", "buffers", "pipeline"]))
            key = draw(st.sampled_from(["row", "colls", "depth", "Name", "extra", "précision"]))
            table = data.setdefault(section, {}) if section else data
            if isinstance(table, dict):
                table[key] = draw(junk_value)
        else:
            section = draw(st.sampled_from(["array", "precision", "buffers", "pipeline",
                                            "postproc", "energy"]))
            data[section] = draw(st.one_of(st.integers(), text,
                                           st.lists(st.integers(), max_size=2)))
    raw = draw(st.one_of(st.none(), st.none(), st.tuples(
        st.sampled_from(["truncate", "insert", "bytes"]), st.integers(0, 400),
        st.binary(max_size=8))))
    command = draw(st.sampled_from(["generate", "show", "estimate"]))
    return {"data": data, "raw": raw, "command": command}


def run_spec_case(case) -> list:
    from gen.spec import _RENAME
    blob = toml_text(case["data"]).encode("utf-8", "surrogatepass")
    raw = case["raw"]
    if raw:
        op, pos, extra = raw
        pos = min(pos, len(blob))
        blob = (blob[:pos] if op == "truncate" else blob[:pos] + extra + blob[pos:]
                if op == "insert" else extra)
    with case_root() as root:
        (root / "work").mkdir()
        (root / "work" / "spec.toml").write_bytes(blob)
        argv = {"generate": ["generate", "spec.toml", "-o", "out"],
                "show": ["show", "spec.toml", "-o", "pic.svg"],
                "estimate": ["estimate", "spec.toml", "--layer", "C=4,H=6,W=6,K=4,R=3,S=3"]
                }[case["command"]]
        o = run_cli(argv, root, outputs=("out", "pic.svg"))
    meaning = []
    if raw is None:
        bad = spec_invalid(case["data"])
        if bad:
            meaning += must_refuse(o, "; ".join(w for w, _ in bad), tuple(n for _, n in bad))
        elif o.reached is not None:
            spec = o.reached.info["args"][0]
            for section, table in case["data"].items():
                items = table.items() if isinstance(table, dict) else [(section, table)]
                for key, value in items:
                    sec = section if isinstance(table, dict) else ""
                    got = getattr(spec, _RENAME.get((sec, key), key))
                    want = value.lower() if key == "dataflow" else value
                    if got != want:
                        meaning.append(f"{sec}.{key} = {value!r} became {got!r}")
    return judge(o, meaning)


# -- family: layer strings ----------------------------------------------------------------------
MAX_DIM = 1 << 16      # the documented largest layer dimension (gen/layer.py)
LAYER_KEYS = ("N", "C", "H", "W", "K", "R", "S", "stride", "pad", "dilation", "groups")
LAYER_ALIASES = {"U": "stride", "D": "dilation", "G": "groups", "padding": "pad"}


def _int_or_none(t: str):
    try:
        return int(t)
    except ValueError:
        return None


@st.composite
def layer_items(draw, small: bool):
    """(text, expected fields or None when the text is certainly invalid, why)."""
    dims = st.integers(1, 6 if small else 40)
    items, fields, why = [], {}, []
    keys = ["C", "H", "W", "K"] + draw(st.lists(st.sampled_from(
        [*LAYER_KEYS, *LAYER_ALIASES, "Q", "x", "c", ""]), max_size=4))
    keys = draw(st.permutations(keys))
    for key in keys:
        if draw(st.integers(0, 9)) == 0:
            continue                                  # a required key may go missing
        value = draw(st.one_of(dims.map(str), dims.map(str), st.sampled_from(
            ["0", "-1", "1.5", "", "x", " 3", "+2", "1_0", "2e1", "99999999999999999999"])))
        items.append(f"{key}={value}")
        name = LAYER_ALIASES.get(key, key)
        v = _int_or_none(value)
        if name not in LAYER_KEYS:
            why.append(f"unknown key {key!r}")
        elif name in fields:
            why.append(f"{name} given twice")
        elif v is None:
            why.append(f"{key}={value!r} is not an integer")
        elif not (0 if name == "pad" else 1) <= v <= MAX_DIM:
            why.append(f"{key}={v} out of range")
        elif v > 64:
            why.append("")                          # too big to run quickly: any answer
        fields[name] = v
    for req in ("C", "H", "W", "K"):
        if req not in fields:
            why.append(f"{req} missing")
    sep = draw(st.sampled_from([",", ",", ";", ", "]))
    return sep.join(items), fields, [w for w in why if w], any(w == "" for w in why)


@st.composite
def layer_cases(draw):
    command = draw(st.sampled_from(["estimate", "simulate"]))
    text_, fields, why, big = draw(layer_items(small=command == "simulate"))
    if draw(st.integers(0, 19)) == 0:
        text_ = draw(st.one_of(text, st.sampled_from(["resnet18:conv9", "lenet5:conv2", ":"])))
        fields, why, big = None, [], False
    return {"command": command, "text": text_, "fields": fields, "why": why, "big": big}


def run_layer_case(case) -> list:
    from gen.layer import ConvLayer
    if case["big"] and not case["why"]:
        return []                                   # a huge valid layer: not a quick case
    with case_root() as root:
        (root / "work").mkdir()
        (root / "work" / "spec.toml").write_text(toml_text(base_spec()))
        argv = [case["command"], "spec.toml", "--layer", case["text"]]
        o = run_cli(argv, root)
    meaning = []
    if case["why"]:
        meaning += must_refuse(o, "; ".join(case["why"]))
    elif case["fields"] is not None and not o.refused:
        if o.reached is None and case["command"] == "simulate":
            meaning.append(f"simulate neither refused nor reached the simulator: {o.describe()}")
        elif o.reached is not None:
            layer = o.reached.info["layer"]
            want = dataclasses.replace(ConvLayer(C=1, H=1, W=1, K=1), **case["fields"])
            for f, v in case["fields"].items():
                if getattr(layer, f) != v:
                    meaning.append(f"layer {f}={v} became {getattr(layer, f)} ({want})")
    return judge(o, meaning)


# -- family: CSV layer tables --------------------------------------------------------------------
@st.composite
def csv_cases(draw):
    extra = draw(st.lists(st.sampled_from(["N", "stride", "pad", "dilation", "groups",
                                           "repeat", "layer", "network"]), max_size=3,
                          unique=True))
    if draw(st.integers(0, 4)) == 0:
        extra.append(draw(st.sampled_from(["c", " h ", "Stride", "bogus", "", "Padding", "U"])))
    cols = draw(st.permutations(["C", "H", "W", "K", "R", "S", *extra]))
    if draw(st.integers(0, 7)) == 0:
        cols = cols[1:]
    aliases = {"padding": "pad", "u": "stride", "d": "dilation", "g": "groups", "name": "layer"}
    norm = [aliases.get(c.strip().lower(), c.strip().lower()) for c in cols]
    why = []
    known = {"c", "h", "w", "k", "r", "s", "n", "stride", "pad", "dilation", "groups", "repeat",
             "layer", "network"}
    for c in norm:
        if c not in known:
            why.append(f"column {c!r}")
    if len(set(norm)) != len(norm):
        why.append("repeated column")
    for req in "chwkrs":
        if req not in norm:
            why.append(f"missing {req}")
    rows = []
    for _ in range(draw(st.integers(1, 3)) if draw(st.integers(0, 9)) else 0):
        row = []
        for c in norm:
            if c in ("layer", "network"):
                v = draw(st.sampled_from(["a", "", "x y", '"q"']))
            else:
                hi = 3 if c in ("r", "s", "stride", "dilation", "groups") else 6
                lo = 3 if c in ("h", "w") else 1
                v = draw(st.integers(lo, hi).map(str)) if draw(st.integers(0, 29)) else \
                    draw(st.sampled_from(["0", "-2", "", "1.0", "abc", "3", " 4"]))
                iv = _int_or_none(v)
                if v.strip() == "" and c not in "chwkrs":
                    pass                # an empty optional cell: not given (documented)
                elif iv is None or iv < (0 if c == "pad" else 1):
                    why.append(f"{c}={v!r}")
            row.append(v)
        if draw(st.integers(0, 19)) == 0:
            row.append("7")
            why.append("extra value")
        rows.append(row)
    if not rows:
        why.append("no rows")
    body = "\n".join(",".join(r) for r in [cols, *rows]) + "\n"
    corrupt = draw(st.binary(min_size=1, max_size=12)) if draw(st.integers(0, 9)) == 0 \
        else None
    return {"body": body, "why": why, "corrupt": corrupt}


def run_csv_case(case) -> list:
    with case_root() as root:
        (root / "work").mkdir()
        (root / "work" / "spec.toml").write_text(toml_text(base_spec()))
        blob = case["body"].encode() if case["corrupt"] is None else case["corrupt"]
        (root / "work" / "layers.csv").write_bytes(blob)
        o = run_cli(["estimate", "spec.toml", "--csv", "layers.csv", "--csv-out", "o.csv"],
                    root, outputs=("o.csv",))
    meaning = []
    if case["why"] and case["corrupt"] is None:
        meaning += must_refuse(o, "; ".join(case["why"]), ("layers.csv",))
    return judge(o, meaning)


# -- family: CLI arguments ----------------------------------------------------------------------
def _POS(t):  # noqa: N802
    return _int_or_none(t) is not None and int(t) >= 1


def _NONNEG(t):  # noqa: N802
    return _int_or_none(t) is not None and int(t) >= 0


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
    global LAST_REFUSED
    data = onnx_bytes(case)
    LAST_REFUSED = False
    t0 = time.monotonic()
    problems = []
    try:
        load(data)
    except AccelgenError as e:
        LAST_REFUSED = True
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
