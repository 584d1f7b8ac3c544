"""The accelerator spec: what hardware exists.

A spec is a frozen dataclass, loaded from TOML and validated in one place. Every error names the field,
the allowed values and what was given, e.g. ``array.rows: must be an integer from 1 to 256, not 0``.

The TOML schema is written once, in the fields of :class:`Spec`: each names its ``[section]`` and
key, kind, default (none: required) and range, and what it means. A spec file looks like this
(``specs/ws_8x8.toml``; every table but ``[array]`` is optional)::

    name = "ws_8x8"
    dataflow = "ws"        # a preset (gen/mapping.py), or "custom" with a [mapping] table

    [array]
    rows = 8
    cols = 8

    [buffers]
    output_depth = 2048

    [postproc]
    enabled = true
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


def _field(section: str, key: str, kind, default=None, low=None, high=None):
    """A spec field: ``key`` of TOML table ``[section]`` ("": the top level), its kind (int,
    float, bool or a named check), its default (None: required) and inclusive range."""
    meta = {"toml": (section, key, kind, default, low, high)}
    if default is None:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spec:
    """A validated accelerator spec. Construct with :func:`load_spec` or :func:`spec_from_dict`."""

    name: str = _field("", "name", "name")      # a plain identifier: names the Verilog module
    dataflow: str = _field("", "dataflow", "dataflow", "ws")
    rows: int = _field("array", "rows", int, None, 1, 256)
    cols: int = _field("array", "cols", int, None, 1, 256)
    act_bits: int = _field("precision", "act_bits", int, 8, 2, 16)
    act_signed: bool = _field("precision", "act_signed", bool, True)
    weight_bits: int = _field("precision", "weight_bits", int, 8, 2, 16)
    weight_signed: bool = _field("precision", "weight_signed", bool, True)
    acc_bits: int = _field("precision", "acc_bits", int, 32, 8, 64)
    # [buffers]: depths in words; a word feeds one array edge for one cycle (the command address
    # fields are 16 bits wide)
    input_depth: int = _field("buffers", "input_depth", int, 4096, 1, MAX_DEPTH)    # `rows` acts
    weight_depth: int = _field("buffers", "weight_depth", int, 1024, 1, MAX_DEPTH)  # weight lanes
    output_depth: int = _field("buffers", "output_depth", int, 1024, 1, MAX_DEPTH)  # `cols` accs
    # [pipeline]: registers for clock speed (each adds a cycle of latency, not of throughput):
    # around each PE's multiplier (DSP input/output registers); on every buffer path (block RAM)
    mult_stages: int = _field("pipeline", "mult_stages", int, 2, 0, 2)
    buffer_reg: bool = _field("pipeline", "buffer_reg", bool, True)
    # [spads]: engines with per-PE scratchpads (row-stationary): entries per PE, Eyeriss v1's
    # sizes: the filter spad holds S taps x the filters a PE interleaves, the ifmap spad the
    # ifmap row segment a PE convolves, the psum spad a partial sum per interleaved filter
    filter_spad: int = _field("spads", "filter", int, 224, 1, 4096)
    ifmap_spad: int = _field("spads", "ifmap", int, 12, 1, 255)
    psum_spad: int = _field("spads", "psum", int, 24, 1, 256)
    # [energy]: energy per access in units of one MAC (Eyeriss, ISCA 2016; accelgen estimate)
    energy_mac: float = _field("energy", "mac", float, 1.0, 0.0, 1e6)
    energy_rf: float = _field("energy", "rf", float, 1.0, 0.0, 1e6)
    energy_array: float = _field("energy", "array", float, 2.0, 0.0, 1e6)
    energy_gb: float = _field("energy", "gb", float, 6.0, 0.0, 1e6)
    energy_dram: float = _field("energy", "dram", float, 200.0, 0.0, 1e6)
    # [postproc]: the requantisation unit on the output path (chosen per STORE), exact with
    # onnxruntime's fp32 steps (hw/requant.py): int8 or uint8 outputs for out_bits = 8
    postproc: bool = _field("postproc", "enabled", bool, False)
    out_bits: int = _field("postproc", "out_bits", int, 8, 2, 16)
    # the residual add on the output path, after the requantiser (chosen per STORE, hw/resadd.py):
    # onnxruntime's QLinearAdd of a conv's requantised output and a tensor streamed in beside it
    residual: bool = _field("postproc", "residual", bool, False)
    # [pool]: the max-pooling stage on the output path, after the requantiser (chosen per STORE,
    # hw/pool.py): non-overlapping windows reduced as a STORE reads them, so a conv layer's
    # following MaxPool runs on the way out (engines whose output words are pixels)
    pool: bool = _field("pool", "enabled", bool, False)
    # [frontend]: the command front end. Its check that a COMPUTE's footprint stays inside the
    # buffers (hw/footprint.py) takes up to 6 hard multipliers (DSPs); a part whose DSPs the PEs
    # take (iCE40 UP5K: 8, one per PE of ws_4x2_up5k) can leave it out: such a COMPUTE then runs,
    # its addresses wrapping inside the buffers, where sim/isa_model.py refuses it (ADDRESS)
    footprint_check: bool = _field("frontend", "footprint_check", bool, True)
    mapping: Mapping | None = None  # [mapping] of a custom dataflow; None: the preset's

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
        """Width of the AXI4-Stream input: one buffer word, a 32-bit command word, a bias lane or
        (with the residual unit) a residual word of ``cols`` lanes of ``out_bits``."""
        need = max(32, self.acc_bits, self.input_word_bits, self.weight_word_bits,
                   self.cols * self.out_bits if self.residual else 0)
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
        """Pipeline stages of the requantisation unit on the STORE path (0 without one):
        hw/requant.py's ``StoreRequantizer.latency``."""
        return 15 if self.postproc else 0

    @property
    def pool_latency(self) -> int:
        """Cycles the pooling stage adds to a pooling STORE (the others bypass it): the store
        unit's register of the extended lanes, then hw/pool.py's ``PoolMax.latency``."""
        return 2 if self.pool else 0

    @property
    def add_latency(self) -> int:
        """Cycles the residual add adds to a STORE with ``add`` (the others bypass it): the
        store unit's register of the Add's input lanes, then hw/resadd.py's
        ``ResidualAdd.latency``."""
        return 1 + _RESADD_LATENCY if self.residual else 0

    @property
    def pool_check_latency(self) -> int:
        """Cycles after a pooling STORE's header (its last word) before it can dispatch: the
        check that its windows tile its words, a bit of ``count`` per cycle and one more
        (hw/poolcheck.py's ``PoolCheck.latency``; it overlaps the STORE's wait for its
        COMPUTEs)."""
        return 18 if self.pool else 0

    def out_range(self) -> tuple[int, int]:
        """The default clamp range of requantised outputs (signed ``out_bits``)."""
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
        out = {"name": self.name, "dataflow": self.dataflow}
        if self.dataflow == "custom":
            out["mapping"] = self.mapping.to_dict()
        for section, fields in _TABLES.items():
            if section == "spads" and not self.flow.has_spads:
                continue
            table = {key: getattr(self, f.name) for key, f in fields.items()}
            if section == "energy":
                # costs, not hardware: written only where they differ from the defaults, and
                # left out of the digest (every cache of generated hardware is keyed by it)
                table = {k: v for k, v in table.items() if v != fields[k].default}
                if not table:
                    continue
            out[section] = table
        return out

    def digest(self) -> str:
        """A content hash of the hardware the spec describes (hex, 16 digits; energy costs are
        not hardware)."""
        hw = {k: v for k, v in self.to_dict().items() if k != "energy"}
        blob = json.dumps(hw, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


#: hw/resadd.py's ``ResidualAdd.latency`` (gen/ does not import hw/; the store unit checks that
#: they agree as it elaborates)
_RESADD_LATENCY = 22


def _int_range(bits: int, signed: bool) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


#: the schema as (section, key, kind, default, low, high) rows, from :class:`Spec`'s fields
_FIELDS = [f.metadata["toml"] for f in dataclasses.fields(Spec) if "toml" in f.metadata]
#: section -> key -> Spec field, in TOML order (the hardware's tables first, the costs last)
_TABLES: dict[str, dict[str, dataclasses.Field]] = {}
for _f in sorted((f for f in dataclasses.fields(Spec) if f.metadata.get("toml", ("",))[0]),
                 key=lambda f: f.metadata["toml"][0] == "energy"):
    _TABLES.setdefault(_f.metadata["toml"][0], {})[_f.metadata["toml"][1]] = _f
_SECTIONS = set(_TABLES)
#: (section, key) -> Spec field, where they differ
_RENAME = {(s, k): f.name for s, t in _TABLES.items() for k, f in t.items() if f.name != k}
#: fields of earlier versions, refused with what replaced them
_REMOVED = {("postproc", "mult_bits"): "requantisation is exact with onnxruntime's fp32 steps "
                                       "now (an fp32 scale per output channel, no multiplier)",
            ("postproc", "rounding"): "requantisation rounds to nearest even, as onnxruntime "
                                      "does"}


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
            if (section, key) in _REMOVED:
                raise AccelgenError(f"{source}: {section}.{key} is no longer a field: "
                                    f"{_REMOVED[section, key]}; delete it")
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
    if values["pool"] and flow.per_word_channels:
        raise AccelgenError(f"{source}: pool.enabled needs output words that hold pixels (lanes "
                            f"= channels); the {flow.name} engine's words hold one channel each, "
                            f"so pooling stays on the host: remove [pool] or use ws, os or nlr")
    if values["residual"] and not values["postproc"]:
        raise AccelgenError(f"{source}: postproc.residual adds a residual to requantised outputs; "
                            f"set postproc.enabled = true, or remove postproc.residual")
    if values["residual"] and values["out_bits"] > 10:
        raise AccelgenError(f"{source}: postproc.residual works on outputs of at most 10 bits "
                            f"(hw/resadd.py), not out_bits = {values['out_bits']}; lower "
                            f"postproc.out_bits or remove postproc.residual")
    if values["rows"] > flow.max_rows:
        raise AccelgenError(f"{source}: array.rows must be at most {flow.max_rows} on the "
                            f"{flow.name} engine (the COMPUTE lane field), not {values['rows']}")
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
