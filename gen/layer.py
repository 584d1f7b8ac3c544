"""Convolution layer shapes.

Names follow ../shared/REFERENCE.md: N batch, C input channels, H×W input, K output channels, R×S filter,
U stride, pad, D dilation, G groups (each filter sees C/G channels). Activations are NCHW, weights KCRS
with C/G channels per filter, outputs NKPQ.
"""

from __future__ import annotations

import csv
import dataclasses
from importlib import resources

from .errors import AccelgenError

__all__ = ["ConvLayer", "parse_layer", "workload_layers", "workload_table"]


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
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise AccelgenError(f"layer {f} must be a positive integer, not {v!r}")
        if isinstance(self.pad, bool) or not isinstance(self.pad, int) or self.pad < 0:
            raise AccelgenError(f"layer pad must be a non-negative integer, not {self.pad!r}")
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


_KEYS = {"N", "C", "H", "W", "K", "R", "S", "stride", "pad", "dilation", "groups"}
_ALIASES = {"U": "stride", "D": "dilation", "G": "groups", "padding": "pad"}


def parse_layer(text: str, **overrides) -> ConvLayer:
    """Parse ``"C=16,H=14,W=14,K=32,R=3,S=3,stride=1,pad=1"`` or a workload name
    ``"resnet18:conv2_x"``. Keyword overrides (e.g. ``stride=2`` from CLI flags) apply on top."""
    text = text.strip()
    if "=" not in text:
        layers = workload_layers()
        if text not in layers:
            nets = sorted({k.split(":")[0] for k in layers})
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


def workload_table() -> list[tuple[str, ConvLayer, int]]:
    """The shipped workload table: ``("network:layer", ConvLayer, repeat)`` rows, where ``repeat``
    is how many times the layer occurs in its network."""
    out = []
    text = resources.files(__package__).joinpath("workloads.csv").read_text()
    for row in csv.DictReader(text.splitlines()):
        name = f"{row['network']}:{row['layer']}"
        out.append((name, ConvLayer(
            N=int(row["N"]), C=int(row["C"]), H=int(row["H"]), W=int(row["W"]), K=int(row["K"]),
            R=int(row["R"]), S=int(row["S"]), stride=int(row["stride"]), pad=int(row["pad"]),
            groups=int(row["groups"]), name=name), int(row["repeat"])))
    return out


def workload_layers() -> dict[str, ConvLayer]:
    """The shipped workload layers: ``{"network:layer": ConvLayer}``."""
    return {name: layer for name, layer, _ in workload_table()}
