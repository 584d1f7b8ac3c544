"""Layers: the :class:`Layer` protocol every layer kind implements, convolution (:class:`ConvLayer`)
and fully-connected (:class:`FullyConnected`) layers.

A layer kind states its tensors' shapes and work, its golden model (what the hardware must return),
how it is planned onto a spec (a :class:`~gen.program.Program`), and how its tensors become the
command stream's frames and the output frames its output. The tools (simulate, estimate, the network
runner) need nothing else of a layer, so pooling or an elementwise add can be added as kinds of their
own. Convolution is the kind the hardware executes; a fully-connected layer is planned as a 1x1
convolution and converts its tensors at the edges.

Names follow ../shared/REFERENCE.md: N batch, C input channels, H×W input, K output channels, R×S filter,
U stride, pad, D dilation, G groups (each filter sees C/G channels). Activations are NCHW, weights KCRS
with C/G channels per filter, outputs NKPQ.
"""

from __future__ import annotations

import csv
import dataclasses
from importlib import resources
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .errors import AccelgenError

if TYPE_CHECKING:
    import numpy as np

    from .program import Program
    from .spec import Spec

__all__ = ["Layer", "ConvLayer", "ConvStage", "FullyConnected", "parse_layer", "workload_layers",
           "workload_table", "networks", "network_layers", "read_layers_csv", "load_layers_csv",
           "CSV_COLUMNS"]


#: the largest layer dimension accelgen takes (C, H, W, K, N, padding): far past any real
#: network's, and small enough that a layer's tile program stays finite and its tensors fit
MAX_DIM = 1 << 16


@runtime_checkable
class Layer(Protocol):
    """What the tools need of a layer kind (tensors are numpy integer arrays). A kind with a
    second input tensor takes it and its parameters as keywords of ``golden``, ``encode`` and
    ``decode`` (gen/residual.py ``ConvAdd``: ``residual=``, ``add=``)."""

    name: str

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    def weight_shape(self) -> tuple[int, ...]: ...

    @property
    def output_shape(self) -> tuple[int, ...]: ...

    @property
    def macs(self) -> int: ...

    def describe(self) -> str: ...

    def golden(self, spec: Spec, x, w, bias=None, quant=None, relu: bool = False) -> np.ndarray:
        """What the hardware built from ``spec`` must return: the layer's arithmetic with the
        spec's accumulator, then the STORE path (``quant``: a :class:`gen.quant.Requant`;
        ``relu``)."""
        ...

    def plan(self, spec: Spec, *, bias: bool = False, requant: bool = False,
             relu: bool = False) -> Program:
        """The layer's commands on ``spec`` (gen/tiler.py)."""
        ...

    def encode(self, program: Program, x, w, bias=None, quant=None) -> list[bytes]:
        """The input stream's frames for ``program`` (gen/frames.py)."""
        ...

    def decode(self, program: Program, frames: list[bytes], quant=None) -> np.ndarray:
        """The output tensor from the output stream's frames (``quant``: the requantisation,
        whose range says whether requantised lanes are signed)."""
        ...


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    C: int
    H: int
    W: int
    K: int
    R: int = 1
    S: int = 1
    N: int = 1
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    groups: int = 1
    name: str = "layer"

    def __post_init__(self):
        for f in ("C", "H", "W", "K", "R", "S", "N", "stride", "dilation", "groups"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_DIM:
                raise AccelgenError(f"layer {f} must be an integer from 1 to {MAX_DIM}, "
                                    f"not {v!r}")
        if (isinstance(self.pad, bool) or not isinstance(self.pad, int)
                or not 0 <= self.pad <= MAX_DIM):
            raise AccelgenError(f"layer pad must be an integer from 0 to {MAX_DIM}, "
                                f"not {self.pad!r}")
        if self.C % self.groups or self.K % self.groups:
            raise AccelgenError(
                f"layer groups={self.groups} must divide C={self.C} and K={self.K}")
        if self.P < 1 or self.Q < 1:
            raise AccelgenError(
                f"layer {self.R}x{self.S} filter (dilation {self.dilation}) does not fit the "
                f"{self.H}x{self.W} input with padding {self.pad}: the output would be empty; "
                f"use a smaller filter or more padding")

    @property
    def P(self) -> int:
        return (self.H + 2 * self.pad - self.dilation * (self.R - 1) - 1) // self.stride + 1

    @property
    def Q(self) -> int:
        return (self.W + 2 * self.pad - self.dilation * (self.S - 1) - 1) // self.stride + 1

    @property
    def Cg(self) -> int:
        """Input channels per group (channels each filter sees)."""
        return self.C // self.groups

    @property
    def Kg(self) -> int:
        return self.K // self.groups

    @property
    def macs(self) -> int:
        return self.N * self.K * self.P * self.Q * self.Cg * self.R * self.S

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.K, self.Cg, self.R, self.S)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.K, self.P, self.Q)

    def describe(self) -> str:
        s = (f"N={self.N} C={self.C} H={self.H} W={self.W} K={self.K} R={self.R} S={self.S} "
             f"stride={self.stride} pad={self.pad}")
        if self.dilation != 1:
            s += f" dilation={self.dilation}"
        if self.groups != 1:
            s += f" groups={self.groups}"
        return f"{self.name} ({s}) -> {self.N}x{self.K}x{self.P}x{self.Q}"

    # -- the Layer protocol (the modules it delegates to import this one) --------------------
    def golden(self, spec: Spec, x, w, bias=None, quant=None, relu: bool = False) -> np.ndarray:
        from sim.golden import layer_output
        return layer_output(spec, self, x, w, bias, quant=quant, relu=relu)

    def plan(self, spec: Spec, *, bias: bool = False, requant: bool = False,
             relu: bool = False) -> Program:
        from .tiler import plan
        return plan(spec, self, bias=bias, requant=requant, relu=relu)

    def encode(self, program: Program, x, w, bias=None, quant=None) -> list[bytes]:
        from .frames import encode
        return encode(program, x, w, bias, quant)

    def decode(self, program: Program, frames: list[bytes], quant=None) -> np.ndarray:
        from .frames import decode
        return decode(program, frames, quant)


@dataclasses.dataclass(frozen=True)
class ConvStage:
    """A conv layer with a stage on its STORE path (gen/pooled.py ``ConvPool``,
    gen/residual.py ``ConvAdd``): the conv's name, channels, input and weights and MACs are the
    layer's; a subclass names itself in ``kind`` (for the refusal of a conv that is not a
    ConvLayer) and gives what the stage changes."""

    conv: ConvLayer
    kind = "a conv + STORE-path stage"

    def __post_init__(self):
        if not isinstance(self.conv, ConvLayer):
            raise AccelgenError(f"{self.kind}'s conv must be a ConvLayer, not "
                                f"{type(self.conv).__name__}")

    @property
    def name(self) -> str:
        return self.conv.name

    @property
    def K(self) -> int:
        return self.conv.K

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self.conv.input_shape

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return self.conv.weight_shape

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return self.conv.output_shape

    @property
    def macs(self) -> int:
        return self.conv.macs


@dataclasses.dataclass(frozen=True)
class FullyConnected:
    """A fully-connected layer: ``y[n, k] = Σ_c x[n, c] · w[k, c]`` (+ bias). Inputs (N, C):
    N × in_features; weights (K, C): out_features × in_features; outputs (N, K). Planned as the
    1x1 convolution :attr:`conv` over a 1x1 map; its :class:`~gen.program.Program` records this
    layer (``program.layer``), and its errors speak of features, not of NCHW/KCRS tensors."""

    C: int          # in_features
    K: int          # out_features
    N: int = 1
    name: str = "fc"

    def __post_init__(self):
        for f, what in (("C", "in_features"), ("K", "out_features"), ("N", "batch")):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_DIM:
                raise AccelgenError(f"fully-connected layer {f} ({what}) must be an integer from 1 "
                                    f"to {MAX_DIM}, not {v!r}")

    @property
    def conv(self) -> ConvLayer:
        """The convolution the hardware runs."""
        return ConvLayer(C=self.C, H=1, W=1, K=self.K, N=self.N, name=self.name)

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.N, self.C)

    @property
    def weight_shape(self) -> tuple[int, int]:
        return (self.K, self.C)

    @property
    def output_shape(self) -> tuple[int, int]:
        return (self.N, self.K)

    @property
    def macs(self) -> int:
        return self.N * self.K * self.C

    def describe(self) -> str:
        return f"{self.name} (fully connected N={self.N} C={self.C} K={self.K}) -> {self.N}x{self.K}"

    def golden(self, spec: Spec, x, w, bias=None, quant=None, relu: bool = False) -> np.ndarray:
        return self.conv.golden(spec, *self._as_conv(x, w, bias), quant, relu)[:, :, 0, 0]

    def plan(self, spec: Spec, *, bias: bool = False, requant: bool = False,
             relu: bool = False) -> Program:
        try:
            program = self.conv.plan(spec, bias=bias, requant=requant, relu=relu)
        except AccelgenError as e:
            raise AccelgenError(f"fully-connected layer {self.name} (N={self.N}, in_features "
                                f"C={self.C}, out_features K={self.K}), planned as a 1x1 "
                                f"convolution: {e}") from None
        return dataclasses.replace(program, layer=self)

    def encode(self, program: Program, x, w, bias=None, quant=None) -> list[bytes]:
        return self.conv.encode(self._conv_program(program), *self._as_conv(x, w, bias), quant)

    def decode(self, program: Program, frames: list[bytes], quant=None) -> np.ndarray:
        return self.conv.decode(self._conv_program(program), frames, quant)[:, :, 0, 0]

    def _conv_program(self, program: Program) -> Program:
        """``program`` (this layer's plan) as the convolution's, for gen/frames.py."""
        if program.layer != self:
            raise AccelgenError(f"the program was planned for {program.layer.describe()}, not "
                                f"for {self.describe()}")
        return dataclasses.replace(program, layer=self.conv)

    def _as_conv(self, x, w, bias=None):
        """(N, C) inputs, (K, C) weights and (K,) bias as the convolution's NCHW and KCRS
        tensors (and bias), their shapes checked in fully-connected terms."""
        import numpy as np
        x, w = np.asarray(x), np.asarray(w)
        for what, t, shape, dims in (
                ("input", x, self.input_shape, "N x in_features"),
                ("weights", w, self.weight_shape, "out_features x in_features"),
                ("bias", None if bias is None else np.asarray(bias), (self.K,), "out_features")):
            if t is not None and t.shape != shape:
                raise AccelgenError(f"{what} tensor has shape {t.shape} but the fully-connected "
                                    f"layer needs {shape} ({dims})")
        return x.reshape(*x.shape, 1, 1), w.reshape(*w.shape, 1, 1), bias


_KEYS = {"N", "C", "H", "W", "K", "R", "S", "stride", "pad", "dilation", "groups"}
_ALIASES = {"U": "stride", "D": "dilation", "G": "groups", "padding": "pad"}


def parse_layer(text: str, **overrides) -> ConvLayer:
    """Parse ``"C=16,H=14,W=14,K=32,R=3,S=3,stride=1,pad=1"`` or a workload name
    ``"resnet18:conv2_x"``. Keyword overrides (e.g. ``stride=2`` from CLI flags) apply on top."""
    text = text.strip()
    if "=" not in text:
        layers = workload_layers()
        if text not in layers:
            nets = networks()
            raise AccelgenError(
                f"unknown layer {text!r}: give KEY=VALUE pairs like 'C=16,H=14,W=14,K=32,R=3,S=3' "
                f"or a workload name NETWORK:LAYER (networks: {', '.join(nets)}; "
                f"e.g. resnet18:conv2_x)")
        base = dataclasses.asdict(layers[text])
    else:
        base = {"name": "layer"}
        for item in text.replace(";", ",").split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key = _ALIASES.get(key.strip(), key.strip())
            if not sep or key not in _KEYS:
                raise AccelgenError(
                    f"bad layer field {item!r}: use KEY=VALUE with KEY one of "
                    f"{', '.join(sorted(_KEYS))}")
            if key in base:
                raise AccelgenError(f"layer field {key} is given twice in {text!r}; give each "
                                    f"field once")
            try:
                base[key] = int(value)
            except ValueError:
                raise AccelgenError(f"layer field {key} must be an integer, not {value.strip()!r}") \
                    from None
        for req in ("C", "H", "W", "K"):
            if req not in base:
                raise AccelgenError(f"layer is missing {req}=...; C, H, W and K are required")
    for key, value in overrides.items():
        if value is not None:
            base[key] = value
    return ConvLayer(**base)


#: CSV columns of a layer table (case-insensitive, spaces trimmed), and the aliases they accept
CSV_COLUMNS = ("network", "layer", "N", "C", "H", "W", "K", "R", "S", "stride", "pad", "dilation",
               "groups", "repeat")
_CSV_ALIASES = {"name": "layer", "padding": "pad", "u": "stride", "d": "dilation", "g": "groups"}
_CSV_REQUIRED = ("C", "H", "W", "K", "R", "S")
#: SCALE-Sim topology files (``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
#: Channels, Num Filter, Strides,``): SCALE-Sim has no padding, so its IFMAP is the padded input
_SCALESIM = {"layer name": "layer", "ifmap height": "H", "ifmap width": "W",
             "filter height": "R", "filter width": "S", "channels": "C", "num filter": "K",
             "strides": "stride"}


def _csv_header(header: list[str], source: str) -> tuple[dict[int, str], bool]:
    """Map column positions to layer fields; refuse unknown, misspelt or ambiguous columns."""
    norm = [h.strip() for h in header]
    scalesim = any(h.lower() in ("ifmap height", "ifmap width") for h in norm)
    known = {c.lower(): c for c in CSV_COLUMNS}
    cols: dict[int, str] = {}
    for i, h in enumerate(norm):
        key = h.lower()
        if not key:
            if scalesim and i == len(norm) - 1:
                continue                   # SCALE-Sim's lines end with a comma
            raise AccelgenError(f"{source}: line 1: column {i + 1} has no name; name every "
                                f"column (known: {', '.join(CSV_COLUMNS)})")
        field = (_SCALESIM.get(key) if scalesim else
                 known.get(key) or known.get(_CSV_ALIASES.get(key, "")))
        if field is None:
            allowed = (", ".join(h.title() for h in _SCALESIM) if scalesim
                       else ", ".join(CSV_COLUMNS))
            raise AccelgenError(f"{source}: line 1: unknown column {h!r}; known columns: "
                                f"{allowed} (case-insensitive)")
        if field in cols.values():
            raise AccelgenError(f"{source}: line 1: column {h!r} gives {field} a second time; "
                                f"keep one of them")
        cols[i] = field
    missing = [c for c in _CSV_REQUIRED if c not in cols.values()]
    if missing:
        raise AccelgenError(f"{source}: line 1: missing column{'s' * (len(missing) > 1)} "
                            f"{', '.join(missing)}; a layer table needs C, H, W, K, R, S "
                            f"(optional: N, stride, pad, dilation, groups, repeat, layer, network)")
    return cols, scalesim


def read_layers_csv(text: str, source: str = "layers.csv") -> list[tuple[str, ConvLayer, int]]:
    """Parse a layer table: ``(name, ConvLayer, repeat)`` per row.

    Columns (header row, case-insensitive, spaces trimmed): ``C H W K R S`` required; ``N stride
    pad dilation groups repeat`` optional integers (``padding``, ``U``, ``D``, ``G`` are accepted
    for ``pad``, ``stride``, ``dilation``, ``groups``); ``layer`` (or ``name``) and ``network``
    name the row (``network:layer``). A SCALE-Sim topology file is read as well (its columns
    ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
    Strides``; no padding). Unknown, misspelt or repeated columns are refused; an error in a row
    names the file, the line and the layer."""
    rows = list(csv.reader(text.splitlines()))
    while rows and not any(c.strip() for c in rows[0]):
        rows.pop(0)
    if not rows:
        raise AccelgenError(f"{source}: empty; a layer table has a header row and one row per "
                            f"layer (columns C, H, W, K, R, S, ...)")
    cols, _ = _csv_header(rows[0], source)
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        named = {cols[i]: v.strip() for i, v in enumerate(row) if i in cols}
        name = named.get("layer") or f"row{len(out) + 1}"
        if named.get("network"):
            name = f"{named['network']}:{name}"
        where = f"{source}: line {lineno} (layer {name})"
        extra = [v for i, v in enumerate(row) if i not in cols and v.strip()]
        if extra:
            raise AccelgenError(f"{where}: more values than named columns ({extra[0]!r} has "
                                f"no header)")
        kw = {}
        for field in ("N", "C", "H", "W", "K", "R", "S", "stride", "pad", "dilation", "groups",
                      "repeat"):
            value = named.get(field, "")
            if not value:
                if field in _CSV_REQUIRED:
                    raise AccelgenError(f"{where}: {field} is empty; give an integer")
                continue
            try:
                kw[field] = int(value)
            except ValueError:
                raise AccelgenError(f"{where}: {field} must be an integer, not {value!r}") \
                    from None
        repeat = kw.pop("repeat", 1)
        if repeat < 1:
            raise AccelgenError(f"{where}: repeat must be a positive integer, not {repeat}")
        try:
            layer = ConvLayer(name=name, **kw)
        except AccelgenError as e:
            raise AccelgenError(f"{where}: {e}") from None
        out.append((name, layer, repeat))
    if not out:
        raise AccelgenError(f"{source}: has a header but no layer rows")
    return out


def load_layers_csv(path) -> list[tuple[str, ConvLayer, int]]:
    """:func:`read_layers_csv` of a file, with one-line errors for a missing or unreadable one."""
    try:
        with open(path, newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise AccelgenError(f"{path}: layer table not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise AccelgenError(f"{path}: cannot read the layer table ({e})") from None
    return read_layers_csv(text, str(path))


def workload_table() -> list[tuple[str, ConvLayer, int]]:
    """The shipped workload table: ``("network:layer", ConvLayer, repeat)`` rows, where ``repeat``
    is how many times the layer occurs in its network."""
    text = resources.files(__package__).joinpath("workloads.csv").read_text()
    return read_layers_csv(text, "workloads.csv")


def networks() -> list[str]:
    """The shipped networks' names."""
    return sorted({name.split(":")[0] for name, _, _ in workload_table()})


def network_layers(network: str) -> list[tuple[str, ConvLayer, int]]:
    """The shipped network's rows of :func:`workload_table`; an unknown name is refused."""
    rows = [row for row in workload_table() if row[0].split(":")[0] == network]
    if not rows:
        raise AccelgenError(f"unknown network {network!r}; choose one of {', '.join(networks())}")
    return rows


def workload_layers() -> dict[str, ConvLayer]:
    """The shipped workload layers: ``{"network:layer": ConvLayer}``."""
    return {name: layer for name, layer, _ in workload_table()}
