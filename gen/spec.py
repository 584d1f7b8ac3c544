"""The accelerator spec: what hardware exists.

A spec is a frozen dataclass, loaded from TOML and validated in one place. Every error names the field,
the allowed values and what was given, e.g. ``array.rows: must be an integer from 1 to 256, not 0``.

Example (``specs/ws_8x8.toml``)::

    name = "ws_8x8"
    dataflow = "ws"

    [array]
    rows = 8
    cols = 8

    [precision]
    act_bits = 8
    act_signed = true
    weight_bits = 8
    weight_signed = true
    acc_bits = 32

    [buffers]          # depths in words; a word feeds one array edge for one cycle
    input_depth = 4096   # words of `rows` activations
    weight_depth = 1024  # words of `cols` weights
    output_depth = 2048  # words of `cols` accumulators

    [pipeline]         # registers for clock speed (each adds a cycle of latency, not of throughput)
    mult_stages = 2      # 0..2: registers around each PE's multiplier (DSP input/output registers)
    buffer_reg = true    # register every path into and out of the buffers (block RAM timing)

    [spads]            # row-stationary only: per-PE scratchpad entries (Eyeriss v1's sizes)
    filter = 224         # filter spad: weights of S taps x the filters a PE interleaves
    ifmap = 12           # ifmap spad: the ifmap row segment a PE convolves (pixels)
    psum = 24            # psum spad: one partial sum per interleaved filter

    [energy]           # optional: energy per access in units of one MAC (accelgen estimate)
    rf = 1.0             # register file / scratchpad; array = 2.0 (PE to PE); gb = 6.0; dram = 200

    [postproc]         # optional requantisation unit on the output path (chosen per run)
    enabled = false
    out_bits = 8         # saturate requantised outputs to signed out_bits
    mult_bits = 16       # unsigned per-channel multiplier width (shift 0..63)
    rounding = "half_up" # or "half_even"
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import keyword
import re
import tomllib
from pathlib import Path

from . import engines
from .errors import AccelgenError
from .mapping import PRESETS, Mapping, mapping_from_dict, validate

__all__ = ["Spec", "load_spec", "spec_from_dict", "DATAFLOWS"]

#: Dataflow names a spec may give: a preset of gen/mapping.py, or "custom" with a [mapping] table.
DATAFLOWS = (*PRESETS, "custom")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Verilog-2005 keywords a module name must not collide with (those that are plain identifiers in Python).
_VERILOG_KEYWORDS = frozenset("""
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign default
defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
endspecify endtable endtask event for force forever fork function generate genvar highz0 highz1 if
ifnone incdir include initial inout input instance integer join large liblist library localparam
macromodule medium module nand negedge nmos nor noshowcancelled not notif0 notif1 or output parameter
pmos posedge primitive pull0 pull1 pulldown pullup pulsestyle_onevent pulsestyle_ondetect rcmos real
realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small
specify specparam strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1
triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor xor
""".split())

MAX_DEPTH = 65536  # command address fields are 16 bits wide


@dataclasses.dataclass(frozen=True)
class Spec:
    """A validated accelerator spec. Construct with :func:`load_spec` or :func:`spec_from_dict`."""

    name: str
    dataflow: str
    rows: int
    cols: int
    act_bits: int
    act_signed: bool
    weight_bits: int
    weight_signed: bool
    acc_bits: int
    input_depth: int
    weight_depth: int
    output_depth: int
    mult_stages: int = 2
    buffer_reg: bool = True
    postproc: bool = False
    out_bits: int = 8
    mult_bits: int = 16
    rounding: str = "half_up"
    filter_spad: int = 224  # row-stationary scratchpads, entries per PE (Eyeriss v1)
    ifmap_spad: int = 12
    psum_spad: int = 24
    energy_mac: float = 1.0   # energy per access, normalised to a MAC (Eyeriss, ISCA 2016)
    energy_rf: float = 1.0
    energy_array: float = 2.0
    energy_gb: float = 6.0
    energy_dram: float = 200.0
    mapping: Mapping | None = None  # None: the preset named by ``dataflow``

    def __post_init__(self):
        if self.mapping is None:
            object.__setattr__(self, "mapping", PRESETS[self.dataflow])
        object.__setattr__(self, "engine", validate(self.mapping, self.name))

    # -- derived facts, one place for each -------------------------------------------------------
    @property
    def flow(self) -> engines.Dataflow:
        """The engine's facts and behaviour (gen/engines/)."""
        return engines.get(self.engine)

    @property
    def in_stream_bits(self) -> int:
        """Width of the AXI4-Stream input: one buffer word, a 32-bit command word or a bias lane."""
        need = max(32, self.acc_bits, self.input_word_bits, self.weight_word_bits)
        return -(-need // 8) * 8

    @property
    def out_stream_bits(self) -> int:
        """Width of the AXI4-Stream output: one accumulator word (``cols`` lanes of ``acc_bits``)."""
        return -(-(self.cols * self.acc_bits) // 8) * 8

    @property
    def buffer_latency(self) -> int:
        """Cycles from a buffer read to its data: 1, or 3 with registered buffers."""
        return 3 if self.buffer_reg else 1

    @property
    def array_latency(self) -> int:
        """Cycles from a vector entering the array to its column sums leaving it (systolic and
        adder-tree engines), or to its last product being accumulated (output-stationary)."""
        return self.flow.array_latency(self)

    @property
    def label(self) -> str:
        """``8x8 WS``, or ``8x8 OS (custom: rows=P cols=K)`` for a custom mapping."""
        text = f"{self.rows}x{self.cols} {self.engine.upper()}"
        if self.dataflow == "custom":
            text += (f" (custom: rows={'x'.join(self.mapping.rows)} "
                     f"cols={'x'.join(self.mapping.cols)})")
        return text

    @property
    def act_type(self) -> str:
        """The activations' integer type, e.g. ``int8`` or ``uint4``."""
        return f"{'' if self.act_signed else 'u'}int{self.act_bits}"

    @property
    def weight_type(self) -> str:
        """The weights' integer type, e.g. ``int8`` or ``uint4``."""
        return f"{'' if self.weight_signed else 'u'}int{self.weight_bits}"

    @property
    def per_word_channels(self) -> bool:
        """Output words hold one output channel each (input- and row-stationary: the lanes are
        pixels), so bias and requantisation parameters are per word, held in small channel
        memories."""
        return self.flow.per_word_channels

    @property
    def chan_depth(self) -> int:
        """Entries of the per-word channel memories (output channels per pass: up to 256 on
        input-stationary, one per psum-spad entry on row-stationary)."""
        return self.flow.chan_depth(self)

    @property
    def rs_setup_cycles(self) -> int:
        """Row-stationary: cycles the PEs' tag registers take to settle after a COMPUTE starts
        (a register chain down the rows and across the columns); the filter fill lasts at
        least this long."""
        return max(self.rows, self.cols) + 1

    @property
    def postproc_latency(self) -> int:
        """Pipeline stages of the requantisation unit on the STORE path (0 without one)."""
        return 3 if self.postproc else 0

    def out_range(self) -> tuple[int, int]:
        """The saturation range of requantised outputs (signed ``out_bits``)."""
        return _int_range(self.out_bits, True)

    @property
    def input_word_bits(self) -> int:
        return self.rows * self.act_bits

    @property
    def weight_lanes(self) -> int:
        """Weights in a weight-buffer word: ``cols`` (one per output channel) for the engines that
        send weights down the columns, ``rows`` (one per input channel) for input-stationary,
        the whole ``rows``×``cols`` block for no-local-reuse, which reads it every cycle, and
        one per PE row (its filter row's tap) for row-stationary."""
        return self.flow.weight_lanes(self)

    @property
    def weight_word_bits(self) -> int:
        return self.weight_lanes * self.weight_bits

    @property
    def output_word_bits(self) -> int:
        return self.cols * self.acc_bits

    def buffer_bytes(self) -> dict[str, int]:
        return {
            "input": self.input_depth * self.input_word_bits // 8,
            "weight": self.weight_depth * self.weight_word_bits // 8,
            "output": self.output_depth * self.output_word_bits // 8,
        }

    def act_range(self) -> tuple[int, int]:
        return _int_range(self.act_bits, self.act_signed)

    def weight_range(self) -> tuple[int, int]:
        return _int_range(self.weight_bits, self.weight_signed)

    def to_dict(self) -> dict:
        """The spec in its TOML structure (round-trips through :func:`spec_from_dict`)."""
        return {
            "name": self.name,
            "dataflow": self.dataflow,
            **({"mapping": self.mapping.to_dict()} if self.dataflow == "custom" else {}),
            "array": {"rows": self.rows, "cols": self.cols},
            "precision": {
                "act_bits": self.act_bits, "act_signed": self.act_signed,
                "weight_bits": self.weight_bits, "weight_signed": self.weight_signed,
                "acc_bits": self.acc_bits,
            },
            "buffers": {
                "input_depth": self.input_depth, "weight_depth": self.weight_depth,
                "output_depth": self.output_depth,
            },
            "pipeline": {"mult_stages": self.mult_stages, "buffer_reg": self.buffer_reg},
            **({"spads": {"filter": self.filter_spad, "ifmap": self.ifmap_spad,
                          "psum": self.psum_spad}} if self.flow.has_spads else {}),
            "postproc": {"enabled": self.postproc, "out_bits": self.out_bits,
                         "mult_bits": self.mult_bits, "rounding": self.rounding},
            # costs, not hardware: written only where they differ from the defaults, and left
            # out of the digest (every cache of generated hardware is keyed by it)
            **({"energy": costs} if (costs := self._energy_overrides()) else {}),
        }

    def _energy_overrides(self) -> dict:
        return {f.name[7:]: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name.startswith("energy_") and getattr(self, f.name) != f.default}

    def digest(self) -> str:
        """A content hash of the hardware the spec describes (hex, 16 digits; energy costs are
        not hardware)."""
        hw = {k: v for k, v in self.to_dict().items() if k != "energy"}
        blob = json.dumps(hw, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _int_range(bits: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


# (section, key, kind, default, low, high); None default = required
_FIELDS = [
    ("", "name", "name", None, None, None),
    ("", "dataflow", "dataflow", "ws", None, None),
    ("array", "rows", int, None, 1, 256),
    ("array", "cols", int, None, 1, 256),
    ("precision", "act_bits", int, 8, 2, 16),
    ("precision", "act_signed", bool, True, None, None),
    ("precision", "weight_bits", int, 8, 2, 16),
    ("precision", "weight_signed", bool, True, None, None),
    ("precision", "acc_bits", int, 32, 8, 64),
    ("buffers", "input_depth", int, 4096, 1, MAX_DEPTH),
    ("buffers", "weight_depth", int, 1024, 1, MAX_DEPTH),
    ("buffers", "output_depth", int, 1024, 1, MAX_DEPTH),
    ("pipeline", "mult_stages", int, 2, 0, 2),
    ("pipeline", "buffer_reg", bool, True, None, None),
    ("spads", "filter", int, 224, 1, 4096),
    ("spads", "ifmap", int, 12, 1, 255),
    ("spads", "psum", int, 24, 1, 256),
    ("energy", "mac", float, 1.0, 0.0, 1e6),
    ("energy", "rf", float, 1.0, 0.0, 1e6),
    ("energy", "array", float, 2.0, 0.0, 1e6),
    ("energy", "gb", float, 6.0, 0.0, 1e6),
    ("energy", "dram", float, 200.0, 0.0, 1e6),
    ("postproc", "enabled", bool, False, None, None),
    ("postproc", "out_bits", int, 8, 2, 16),
    ("postproc", "mult_bits", int, 16, 2, 24),
    ("postproc", "rounding", "rounding", "half_up", None, None),
]
_SECTIONS = {"array", "precision", "buffers", "pipeline", "spads", "energy", "postproc"}
#: (section, key) -> Spec field, where they differ
_RENAME = {("postproc", "enabled"): "postproc", ("spads", "filter"): "filter_spad",
           ("spads", "ifmap"): "ifmap_spad", ("spads", "psum"): "psum_spad",
           **{("energy", k): f"energy_{k}" for k in ("mac", "rf", "array", "gb", "dram")}}
ROUNDING = ("half_up", "half_even")


def spec_from_dict(data: dict, *, source: str = "spec") -> Spec:
    """Validate a spec given as nested dicts (the TOML structure) and return a :class:`Spec`."""
    if not isinstance(data, dict):
        raise AccelgenError(f"{source}: must be a table of fields, not {type(data).__name__}")
    known_top = {k for s, k, *_ in _FIELDS if s == ""} | _SECTIONS | {"mapping"}
    for key in data:
        if key not in known_top:
            raise AccelgenError(
                f"{source}: unknown field {key!r}; allowed: {', '.join(sorted(known_top))}")
    for section in _SECTIONS:
        if section in data and not isinstance(data[section], dict):
            raise AccelgenError(f"{source}: [{section}] must be a table, not {data[section]!r}")
        known = {k for s, k, *_ in _FIELDS if s == section}
        for key in data.get(section, {}):
            if key not in known:
                raise AccelgenError(
                    f"{source}: unknown field {section}.{key}; allowed: {', '.join(sorted(known))}")

    values = {}
    for section, key, kind, default, low, high in _FIELDS:
        table = data.get(section, {}) if section else data
        path = f"{section}.{key}" if section else key
        if key not in table:
            if default is None:
                raise AccelgenError(f"{source}: missing required field {path}")
            values[_RENAME.get((section, key), key)] = default
            continue
        value = table[key]
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise AccelgenError(
                    f"{source}: {path} must be an integer from {low} to {high}, not {value!r}")
        elif kind is float:
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not low <= value <= high):
                raise AccelgenError(
                    f"{source}: {path} must be a number from {low:g} to {high:g} (energy per "
                    f"access in units of one MAC), not {value!r}")
            value = float(value)
        elif kind is bool:
            if not isinstance(value, bool):
                raise AccelgenError(f"{source}: {path} must be true or false, not {value!r}")
        elif kind == "name":
            if (not isinstance(value, str) or not _NAME_RE.match(value)
                    or value in _VERILOG_KEYWORDS or keyword.iskeyword(value)):
                raise AccelgenError(
                    f"{source}: {path} must be a plain identifier (letters, digits, '_', not starting "
                    f"with a digit, at most 64 characters, not a Verilog keyword), not {value!r}")
        elif kind == "rounding":
            if value not in ROUNDING:
                raise AccelgenError(
                    f"{source}: {path} must be one of {', '.join(ROUNDING)}, not {value!r}")
        elif kind == "dataflow":
            if isinstance(value, str):
                value = value.lower()         # "WS" and "ws" name the same preset
            if value not in DATAFLOWS:
                raise AccelgenError(
                    f"{source}: {path} must be one of {', '.join(DATAFLOWS)}, not {value!r}")
        values[_RENAME.get((section, key), key)] = value

    if values["dataflow"] == "custom":
        if "mapping" not in data:
            raise AccelgenError(f"{source}: dataflow = \"custom\" needs a [mapping] table (see "
                                f"gen/mapping.py), or name a preset: {', '.join(PRESETS)}")
        values["mapping"] = mapping_from_dict(data["mapping"], source)
    elif "mapping" in data:
        raise AccelgenError(f"{source}: a [mapping] table describes a custom dataflow; set "
                            f"dataflow = \"custom\" (dataflow = {values['dataflow']!r} is a "
                            f"preset with its own mapping)")
    flow = engines.get(validate(values.get("mapping") or PRESETS[values["dataflow"]], source))
    if "spads" in data and not flow.has_spads:
        owners = [d for d in engines.ENGINES.values() if d.has_spads]
        raise AccelgenError(
            f"{source}: [spads] sizes the per-PE scratchpads of the "
            f"{', '.join(d.name for d in owners)} engine; remove it, or set dataflow = "
            + " or ".join(f'"{d.engine}"' for d in owners))
    if values["rows"] > flow.max_rows:
        raise AccelgenError(f"{source}: array.rows must be at most {flow.max_rows} on the "
                            f"{flow.name} engine (the COMPUTE lane field), not {values['rows']}")
    if values["postproc"] and values["acc_bits"] + values["mult_bits"] > 63:
        raise AccelgenError(
            f"{source}: precision.acc_bits + postproc.mult_bits must be at most 63 for the "
            f"requantisation product, not {values['acc_bits'] + values['mult_bits']}")
    if values["acc_bits"] < values["act_bits"] + values["weight_bits"]:
        raise AccelgenError(
            f"{source}: precision.acc_bits must be at least act_bits + weight_bits "
            f"({values['act_bits'] + values['weight_bits']}) to hold one product, "
            f"not {values['acc_bits']}")
    return Spec(**values)


#: the specs shipped with accelgen (reachable by name from anywhere: ``accelgen simulate ws_8x8``)
SHIPPED_SPECS = Path(__file__).resolve().parent.parent / "specs"


def shipped_specs() -> list[str]:
    """Names of the shipped specs (``specs/NAME.toml``)."""
    return sorted(p.stem for p in SHIPPED_SPECS.glob("*.toml"))


def resolve_spec_path(text: str | Path) -> Path:
    """A spec argument as a file: a path, or the name of a shipped spec (``ws_8x8`` or
    ``ws_8x8.toml``) when no such file exists here."""
    path = Path(text)
    if path.exists() or len(path.parts) != 1:
        return path
    shipped = SHIPPED_SPECS / (path.name if path.suffix == ".toml" else f"{path.name}.toml")
    return shipped if shipped.is_file() else path


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec TOML file, or a shipped spec by name (see
    :func:`resolve_spec_path`)."""
    path = resolve_spec_path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        names = ", ".join(shipped_specs()) or "none found"
        raise AccelgenError(f"{path}: spec file not found; pass the path of a .toml spec or the "
                            f"name of a shipped one ({names})") from None
    except IsADirectoryError:
        raise AccelgenError(f"{path}: is a folder; pass the path of a .toml spec") from None
    except UnicodeDecodeError:
        raise AccelgenError(f"{path}: not a text file; pass the path of a .toml spec") from None
    except OSError as e:
        raise AccelgenError(f"{path}: cannot read spec ({e.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise AccelgenError(f"{path}: not valid TOML ({e})") from None
    return spec_from_dict(data, source=str(path))
