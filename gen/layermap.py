"""``accelgen show SPEC --layer L``: how one layer's loop nest lands on the PE array.

The spec's mapping unrolls some loop dims along the array's rows and columns (e.g. WS: ``C`` on
the rows, ``K`` on the columns); the rest run in time. A layer whose unrolled extent exceeds an
axis is *folded*: it runs in ``ceil(extent / size)`` passes along that axis, and the last pass
leaves lanes idle; an extent smaller than the axis leaves lanes idle in every pass. The picture
colours each PE by the share of passes in which it has work and labels it with the loop indices
it holds in the first pass; the text gives the folds, the tiling the tiler chose and the model's
cycles and utilisation (which also count the time the array waits for its buffers).

The extents are those of the layer the commands address: its im2col rewrite when the tiler chose
one (``C x R x S`` channels of a 1x1 layer). Row-stationary arrays split filter rows and channels
with more freedom than a fold (gen/engines/row_stationary.py :func:`rs_geometry`); the picture shows
the fold of the mapping and the text the geometry the tiler used.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .errors import AccelgenError
from .layer import ConvLayer
from .spec import Spec

__all__ = ["AxisFold", "LayerMap", "layer_map", "draw_layer"]


@dataclasses.dataclass(frozen=True)
class AxisFold:
    """One array axis: the dims unrolled on it, their extent for the layer and its folds."""
    axis: str                     # "rows" or "cols"
    size: int                     # PEs along the axis
    dims: tuple[str, ...]
    extents: tuple[int, ...]      # per dim, for one group
    #: the extents one pass covers (labels decompose a lane by them), when the tiler packs a
    #: pass itself (row-stationary: c_rep channels x rn filter rows); None: a plain fold
    pass_shape: tuple[int, ...] | None = None

    @property
    def extent(self) -> int:
        return _product(self.extents)

    @property
    def per_pass(self) -> int:
        """Lanes a full pass uses."""
        if self.pass_shape is None:
            return self.size
        return min(self.size, _product(self.pass_shape))

    @property
    def folds(self) -> int:
        return max(1, -(-self.extent // self.per_pass))

    def busy(self, lane: int) -> int:
        """Passes in which ``lane`` has work."""
        if lane >= self.per_pass:
            return 0
        return sum(1 for t in range(self.folds) if t * self.per_pass + lane < self.extent)

    def occupancy(self) -> float:
        """Mean share of this axis's lanes busy over its passes."""
        return self.extent / (self.folds * self.size)

    def label(self, lane: int) -> str:
        """The indices lane ``lane`` holds in the first pass (last dim fastest), or ''."""
        if lane >= min(self.extent, self.per_pass) or not self.dims:
            return ""
        parts, rest = [], lane
        for d, e in reversed(list(zip(self.dims, self.pass_shape or self.extents, strict=True))):
            parts.append(f"{d.lower()}{rest % e}")
            rest //= e
        return " ".join(reversed(parts))

    def describe(self) -> str:
        if not self.dims:
            return f"{self.axis} ({self.size}): no loop dim unrolled (every lane computes)"
        dims = "×".join(f"{d}={e}" for d, e in zip(self.dims, self.extents, strict=True))
        used = min(self.extent, self.per_pass)
        packed = ("" if self.pass_shape is None else " (" + "×".join(
            f"{e} {d}" for d, e in zip(self.dims, self.pass_shape, strict=True)) + " per pass)")
        return (f"{self.axis} ({self.size}) = {dims}: extent {self.extent}, {self.folds} "
                f"pass{'es' if self.folds > 1 else ''}{packed}, {used} of {self.size} lanes in "
                f"the first, {100 * self.occupancy():.0f}% busy on average")


def _product(values) -> int:
    n = 1
    for v in values:
        n *= v
    return n


@dataclasses.dataclass(frozen=True)
class LayerMap:
    spec: Spec
    layer: ConvLayer              # as given
    addressed: ConvLayer          # the layer the commands address (its im2col rewrite, or itself)
    rows: AxisFold
    cols: AxisFold
    program: object               # gen.program.Program
    estimate: object              # gen.model.Estimate

    @property
    def spatial_occupancy(self) -> float:
        return self.rows.occupancy() * self.cols.occupancy()

    def lines(self) -> list[str]:
        p, e = self.program, self.estimate
        a = self.addressed
        time_dims = [f"{d}={_extent(a, d)}" for d in "NKCPQRS"
                     if d not in (*self.rows.dims, *self.cols.dims) and _extent(a, d) > 1]
        out = [f"{self.layer.describe()} on {self.spec.name} ({self.spec.label})"]
        if self.addressed is not self.layer:
            out.append(f"  im2col        run as {self.addressed.describe()} (C x R x S as "
                       f"channels)")
        out += [f"  {self.rows.describe()}", f"  {self.cols.describe()}",
                f"  in time       {', '.join(time_dims) or 'nothing'} and the passes above; "
                f"output tiles "
                f"{p.tile_p}x{p.tile_q} pixels, K tiles of {p.k_tile} ({p.k_group} on chip "
                f"at once)" + (f", {self.layer.groups} groups" if self.layer.groups > 1 else ""),
                f"  array         {100 * self.spatial_occupancy:.1f}% of PEs mapped to work "
                f"(spatial); model {e.cycles:,} cycles, {100 * e.utilisation:.1f}% utilisation "
                f"(counts buffer waits too)",
                "  commands      " + ", ".join(f"{op.name.lower()} {p.count(op)}"
                                               for op in _ops() if p.count(op))]
        return out


def _ops():
    from .isa import Op
    return list(Op)


def _extent(layer: ConvLayer, dim: str) -> int:
    return {"N": layer.N, "K": layer.Kg, "C": layer.Cg, "P": layer.P, "Q": layer.Q,
            "R": layer.R, "S": layer.S}[dim]


def layer_map(spec: Spec, layer: ConvLayer) -> LayerMap:
    """Plan ``layer`` on ``spec`` (refusing it as simulate would) and describe its mapping."""
    from .model import estimate
    from .tiler import plan
    program = plan(spec, layer)
    addressed = program.lowered if program.lowered is not None else layer
    folds = [AxisFold(axis, size, tuple(dims), tuple(_extent(addressed, d) for d in dims))
             for axis, size, dims in (("rows", spec.rows, spec.mapping.rows),
                                      ("cols", spec.cols, spec.mapping.cols))]
    folds[0] = spec.flow.fold_rows(spec, addressed, folds[0])
    return LayerMap(spec, layer, addressed, *folds, program, estimate(program))


def draw_layer(lm: LayerMap, path: str | Path) -> Path:
    """Draw ``lm`` to ``path`` (.png or .svg): PEs shaded by the share of passes they work in."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise AccelgenError(f"show writes .png or .svg, not {path.suffix or 'no extension'!r}")
    R, C = lm.spec.rows, lm.spec.cols
    busy = np.array([[lm.rows.busy(i) * lm.cols.busy(j) for j in range(C)] for i in range(R)],
                    dtype=float) / (lm.rows.folds * lm.cols.folds)
    cell = 0.55 if max(R, C) <= 16 else 0.25
    height = 1.9 + cell * R
    fig = plt.figure(figsize=(max(7.5, 1.6 + cell * C), height))
    ax = fig.add_axes([0.08, 1.1 / height, 0.8, (cell * R + 0.3) / height])
    im = ax.imshow(busy, cmap="YlGn", vmin=0, vmax=1, aspect="equal")
    ax.set_xticks(range(C))
    ax.set_yticks(range(R))
    ax.tick_params(labelsize=6)
    ax.set_xlabel(f"columns: {'×'.join(lm.cols.dims) or '—'}", fontsize=8)
    ax.set_ylabel(f"rows: {'×'.join(lm.rows.dims) or '—'}", fontsize=8)
    if max(R, C) <= 16:
        for i in range(R):
            for j in range(C):
                text = "\n".join(t for t in (lm.rows.label(i), lm.cols.label(j)) if t)
                ax.text(j, i, text if busy[i, j] > 0 else "idle", ha="center", va="center", fontsize=4.5,
                        color="#333" if busy[i, j] < 0.7 else "white")
    bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("share of passes with work", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    ax.set_title(f"{lm.layer.name} on {lm.spec.name}: {R}×{C} {lm.spec.engine.upper()}, "
                 f"first-pass indices per PE", fontsize=9)
    fig.text(0.02, 0.02, "\n".join(lm.lines()[1:]), fontsize=6.5, family="monospace",
             va="bottom")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
