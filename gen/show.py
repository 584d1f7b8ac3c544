"""``accelgen show``: draw the PE array and its interconnect for a spec's dataflow (PNG or SVG).

The picture is drawn from a small description each engine gives (``picture`` in its module of
gen/engines/): which operand stays in the PEs (``pe``), which move right or down from PE to PE
(``right``, ``down``; ``name:bus`` = multicast along the row), which are multicast diagonally or
unicast, what enters at each edge (``left``, ``top``, ``bottom``) and a legend; the title gives the
spec's mapping (its row and column dims).
"""

from __future__ import annotations

from pathlib import Path

from .errors import AccelgenError
from .spec import Spec

__all__ = ["draw"]

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
    pic = spec.flow.picture

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
            ax.text(x, y + 0.08, pic["pe"], ha="center", va="center", fontsize=7,
                    color=_COLOURS[pic["legend"][0][0]], fontweight="bold")
            ax.text(x, y - 0.17, f"{r},{c}", ha="center", va="center", fontsize=5, color="#555")
            for k, op in enumerate(pic["right"]):
                name, _, bus = op.partition(":")
                dy = 0.1 * k
                if bus:  # a multicast line across the row, tapped by every PE
                    ax.plot([x - 0.5, x + 0.5], [y + 0.42, y + 0.42], color=_COLOURS[name],
                            lw=1.0)
                    arrow(x, y + 0.42, x, y + 0.33, _COLOURS[name], lw=0.7)
                elif j + 1 < nc:
                    arrow(x + 0.33, y - dy, x + 0.67, y - dy, _COLOURS[name],
                          lw=1.2 if k == 0 else 0.7)
            if pic.get("diagonal") and j > 0 and i + 1 < nr:   # PEs sharing an ifmap row
                ax.plot([x - 0.3, x - 0.7], [y - 0.3, y - 0.7], ls=":", lw=0.9,
                        color=_COLOURS[pic["diagonal"]])
            if pic.get("unicast"):
                arrow(x - 0.45, y + 0.45, x - 0.3, y + 0.3, _COLOURS[pic["unicast"]], lw=0.7)
            if i + 1 < nr:
                for k, name in enumerate(pic["down"]):
                    dx = 0.12 - 0.24 * k
                    arrow(x + dx, y - 0.33, x + dx, y - 0.67, _COLOURS[name],
                          lw=1.2 if k == 0 else 0.7)
    if col_gap is not None:
        ax.text(col_gap - 0.5, 0.9, "…", ha="center", fontsize=14)
    if row_gap is not None:
        ax.text(-1.1, -row_gap + 0.5, "⋮", ha="center", fontsize=14)
    left_op, left_text, left_tag = pic["left"]
    for i in range(nr):
        arrow(-1.0, -i, -0.35, -i, _COLOURS[left_op])
        ax.text(-1.05, -i, f"{left_tag} {rows[i]}" if left_tag == "skew" else left_tag,
                ha="right", va="center", fontsize=5, color=_COLOURS[left_op])
    ax.text(-1.9, -(nr - 1) / 2, left_text, ha="center", va="center", fontsize=7, rotation=90,
            color=_COLOURS[left_op])
    if pic["top"]:
        top_op, top_text = pic["top"]
        for j in range(nc):
            arrow(j - 0.12, 1.0, j - 0.12, 0.35, _COLOURS[top_op], lw=0.7)
        ax.text((nc - 1) / 2, 1.25, top_text, ha="center", fontsize=7, color=_COLOURS[top_op])
    for j in range(nc):
        arrow(j + 0.12, -nr + 0.65, j + 0.12, -nr + 0.1, _COLOURS["partial sums"])
    ax.text((nc - 1) / 2, -nr - 0.15, pic["bottom"], ha="center", fontsize=7,
            color=_COLOURS["partial sums"])
    for k, (name, kind) in enumerate(pic["legend"]):
        ax.text(-2.1, -nr - 0.75 - 0.35 * k, f"■ {name}: {kind}", fontsize=6.5,
                color=_COLOURS[name])
    stationary = spec.mapping.stationary
    ax.set_title(f"{spec.name}: {spec.rows}×{spec.cols} {spec.engine.upper()} "
                 f"({stationary} stationary), {spec.act_type}×{spec.weight_type}"
                 f"→int{spec.acc_bits}\nrows = {'×'.join(spec.mapping.rows)}, "
                 f"cols = {'×'.join(spec.mapping.cols)}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
