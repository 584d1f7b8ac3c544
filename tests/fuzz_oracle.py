"""The fuzzing campaign's oracle (see tests/fuzzing.py): the stubbed back ends, one CLI call run
in a fresh folder and its :class:`Outcome`, the verdict (:func:`judge`), and the value strategies
the families share."""

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

__all__ = ["Reached", "Outcome", "run_cli", "stubs", "toml_text", "judge", "must_refuse",
           "case_root", "text", "junk_value", "NASTY_TEXT"]


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
