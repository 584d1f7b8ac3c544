"""``accelgen show``: draw the PE array and its interconnect for a spec's dataflow (PNG or SVG).

The picture is drawn from a small description of the dataflow: which operand stays in the PEs and
how each other operand moves (direction and kind). Weight-stationary today; other dataflows add
their own descriptions, not drawing code.
"""

from __future__ import annotations

from pathlib import Path

from .errors import AccelgenError
from .spec import Spec

__all__ = ["DATAFLOW_PICTURES", "draw"]

#: dataflow -> (stationary operand, [(operand, direction, kind, source, sink)])
DATAFLOW_PICTURES = {
    "ws": ("weight", [
        ("weights", "down", "preload: shifted down each column, then held", "weight buffer", None),
        ("activations", "right", "systolic: one PE per cycle, skewed by row", "input buffer",
         None),
        ("partial sums", "down", "systolic: reduced down each column", None,
         "deskew + output buffer (accumulate)"),
    ]),
}

_COLOURS = {"weights": "#c0392b", "activations": "#2471a3", "partial sums": "#1e8449"}


def draw(spec: Spec, path: str | Path, *, max_pes: int = 12) -> Path:
    """Draw ``spec``'s array to ``path`` (.png or .svg); arrays larger than ``max_pes`` on a side
    are drawn with their middle rows/columns elided."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise AccelgenError(f"show writes .png or .svg, not {path.suffix or 'no extension'!r}")
    stationary, flows = DATAFLOW_PICTURES[spec.dataflow]

    def shown(n):
        if n <= max_pes:
            return list(range(n)), None
        half = max_pes // 2
        return list(range(half)) + list(range(n - half, n)), half

    rows, row_gap = shown(spec.rows)
    cols, col_gap = shown(spec.cols)
    nr, nc = len(rows), len(cols)
    fig_w, fig_h = 2.2 + 0.75 * nc, 2.6 + 0.75 * nr
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.set_xlim(-2.2, nc + 0.6)
    ax.set_ylim(-nr - 1.9, 1.6)
    ax.set_aspect("equal")
    ax.axis("off")

    def arrow(x0, y0, x1, y1, colour, style="-|>", lw=1.2):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=9,
                                     color=colour, lw=lw))

    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            x, y = j, -i
            ax.add_patch(Rectangle((x - 0.32, y - 0.32), 0.64, 0.64, facecolor="#fdf2e9",
                                   edgecolor="#7f8c8d"))
            ax.text(x, y + 0.08, "W" if stationary == "weight" else stationary[0].upper(),
                    ha="center", va="center", fontsize=7, color=_COLOURS["weights"],
                    fontweight="bold")
            ax.text(x, y - 0.17, f"{r},{c}", ha="center", va="center", fontsize=5, color="#555")
            if j + 1 < nc:
                arrow(x + 0.33, y, x + 0.67, y, _COLOURS["activations"])
            if i + 1 < nr:
                arrow(x + 0.12, y - 0.33, x + 0.12, y - 0.67, _COLOURS["partial sums"])
                arrow(x - 0.12, y - 0.33, x - 0.12, y - 0.67, _COLOURS["weights"], lw=0.7)
    if col_gap is not None:
        ax.text(col_gap - 0.5, 0.9, "…", ha="center", fontsize=14)
    if row_gap is not None:
        ax.text(-1.1, -row_gap + 0.5, "⋮", ha="center", fontsize=14)
    # edges: inputs skewed in from the left, weights from the top, sums out at the bottom
    for i in range(nr):
        arrow(-1.0, -i, -0.35, -i, _COLOURS["activations"])
        ax.text(-1.05, -i, f"skew {rows[i]}", ha="right", va="center", fontsize=5,
                color=_COLOURS["activations"])
    for j in range(nc):
        arrow(j - 0.12, 1.0, j - 0.12, 0.35, _COLOURS["weights"], lw=0.7)
        arrow(j + 0.12, -nr + 0.65, j + 0.12, -nr + 0.1, _COLOURS["partial sums"])
    ax.text(-1.9, -(nr - 1) / 2, "input buffer\n(rows = input\nchannels)", ha="center",
            va="center", fontsize=7, rotation=90, color=_COLOURS["activations"])
    ax.text((nc - 1) / 2, 1.25, "weight buffer (cols = output channels)", ha="center",
            fontsize=7, color=_COLOURS["weights"])
    ax.text((nc - 1) / 2, -nr - 0.15, "deskew  →  output buffer (accumulate over taps and "
            "C tiles)", ha="center", fontsize=7, color=_COLOURS["partial sums"])
    legend = [f"{name}: {kind}" for name, _, kind, _, _ in flows]
    for k, line in enumerate(legend):
        ax.text(-2.1, -nr - 0.75 - 0.35 * k, "■ " + line, fontsize=6.5,
                color=_COLOURS[flows[k][0]])
    ax.set_title(f"{spec.name}: {spec.rows}×{spec.cols} {spec.dataflow.upper()} "
                 f"({stationary} stationary), int{spec.act_bits}×int{spec.weight_bits}"
                 f"→int{spec.acc_bits}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
