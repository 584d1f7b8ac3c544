"""The mapping description: how the convolution loop nest is laid onto the PE array.

A convolution ``O[n,k,p,q] = Σ_{c,r,s} I[n, c, p*U + r*D, q*U + s*D] · W[k,c,r,s]`` has seven loop
dims, ``N K C P Q R S``; ``C R S`` are *reduction* dims. A :class:`Mapping` says

* which dims are unrolled along the array's **rows** and which along its **columns** (the rest run
  in time, in the order the tiler chooses);
* which operand is **stationary**, held in the PEs while the others move (``weight``, ``input``,
  ``output``, ``row``: Eyeriss' row-stationary, where each PE holds a filter row, an ifmap row and a
  psum row in its scratchpads, or ``none``);
* how each operand moves: ``stationary`` (preloaded into the PE and held), ``forward`` (systolic:
  passed PE to PE, one hop per cycle), ``multicast`` (one value broadcast to a whole row/column in
  the same cycle), ``unicast`` (every PE gets its own value from the buffer each cycle);
* how partial sums reduce: ``forward`` (passed down the column, each PE adding its product),
  ``tree`` (an adder tree down the column), ``in_place`` (accumulated in the PE's own register).

Which operand travels along which axis follows from the dims: an operand not indexed by the dims on
the rows is shared by every row, so it travels along the columns, and vice versa. :func:`validate`
derives those facts, checks the description for consistency and matches it against the hardware
engines this generator builds; anything else is rejected with the reason, never built wrongly.

The presets (:data:`PRESETS`) are descriptions like any other; a spec may give its own
``[mapping]`` table instead (``dataflow = "custom"``).
"""

from __future__ import annotations

import dataclasses

from .engines import ENGINES, Engine
from .errors import AccelgenError

__all__ = ["DIMS", "Mapping", "PRESETS", "validate", "mapping_from_dict"]

DIMS = ("N", "K", "C", "P", "Q", "R", "S")
REDUCTION = frozenset("CRS")
#: dims that index each operand (inputs through the sliding window p*U + r*D, q*U + s*D)
INDEXED = {
    "input": frozenset("NCPQRS"),
    "weight": frozenset("KCRS"),
    "output": frozenset("NKPQ"),
}
OPERANDS = ("input", "weight", "output")
MOVES = ("stationary", "forward", "multicast", "unicast")
PSUMS = ("forward", "tree", "in_place")
#: what a mapping may hold stationary: one per engine
STATIONARY = tuple(d.stationary for d in ENGINES.values())

@dataclasses.dataclass(frozen=True)
class Mapping:
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    stationary: str
    input: str
    weight: str
    psum: str

    def to_dict(self) -> dict:
        return {"rows": list(self.rows), "cols": list(self.cols), "stationary": self.stationary,
                "input": self.input, "weight": self.weight, "psum": self.psum}

    def move(self, operand: str) -> str:
        return self.psum if operand == "output" else getattr(self, operand)

    def axis_of(self, operand: str) -> str | None:
        """The array axis ``operand`` travels along (``"rows"``: left to right along a row;
        ``"cols"``: down a column), or None if it is neither shared by rows nor by columns."""
        idx = INDEXED[operand]
        on_rows = bool(idx & set(self.rows))
        on_cols = bool(idx & set(self.cols))
        if on_rows and not on_cols:
            return "rows"        # differs per row, shared along it
        if on_cols and not on_rows:
            return "cols"
        return None

    def describe(self) -> str:
        return (f"rows={'x'.join(self.rows) or '-'} cols={'x'.join(self.cols) or '-'} "
                f"stationary={self.stationary} input={self.input} weight={self.weight} "
                f"psum={self.psum}")


#: engine -> the mapping it is built for (a spec's ``dataflow = "<engine>"``), from gen/engines/
PRESETS: dict[Engine, Mapping] = {e: Mapping(**d.preset) for e, d in ENGINES.items()}


def _dims(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(d, str) for d in value):
        raise AccelgenError(f"{where} must be a list of loop dims from {', '.join(DIMS)}, "
                            f"not {value!r}")
    out = tuple(d.upper() for d in value)
    for d in out:
        if d not in DIMS:
            raise AccelgenError(f"{where}: unknown loop dim {d!r}; the dims are "
                                f"{', '.join(DIMS)}")
    if len(set(out)) != len(out):
        raise AccelgenError(f"{where}: {list(out)} names a dim twice")
    return out


def mapping_from_dict(d: dict, source: str = "spec") -> Mapping:
    """A :class:`Mapping` from a spec's ``[mapping]`` table (not yet validated; see
    :func:`validate`)."""
    if not isinstance(d, dict):
        raise AccelgenError(f"{source}: [mapping] must be a table")
    known = {"rows", "cols", "stationary", "input", "weight", "psum"}
    for key in d:
        if key not in known:
            raise AccelgenError(f"{source}: unknown key mapping.{key}; known keys: "
                                f"{', '.join(sorted(known))}")
    for key in known:
        if key not in d:
            raise AccelgenError(f"{source}: mapping.{key} is missing; a custom mapping gives "
                                f"rows, cols, stationary, input, weight and psum")
    for key, allowed in (("stationary", STATIONARY), ("input", MOVES), ("weight", MOVES),
                         ("psum", PSUMS)):
        if d[key] not in allowed:
            raise AccelgenError(f"{source}: mapping.{key} must be one of {', '.join(allowed)}, "
                                f"not {d[key]!r}")
    return Mapping(rows=_dims(d["rows"], f"{source}: mapping.rows"),
                   cols=_dims(d["cols"], f"{source}: mapping.cols"),
                   stationary=d["stationary"], input=d["input"], weight=d["weight"],
                   psum=d["psum"])


def validate(m: Mapping, source: str = "spec") -> Engine:
    """Check ``m`` and return the hardware engine that implements it (gen/engines/).

    The checks go from the laws of the loop nest (true of any hardware) to what this generator
    builds; each failure says what is wrong and what would work."""
    where = f"{source}: mapping"
    if not m.rows or not m.cols:
        raise AccelgenError(f"{where}: rows and cols must each unroll at least one loop dim")
    split = set(m.rows) & set(m.cols)
    if split:
        d = sorted(split)[0]
        raise AccelgenError(
            f"{where}: {d} is split across rows and cols; splitting a dim over both axes needs a "
            f"2-D index generator, which no engine here has; unroll {d} on one axis")
    # -- laws of the loop nest ---------------------------------------------------------------
    red_cols = REDUCTION & set(m.cols)
    red_rows = REDUCTION & set(m.rows)
    if red_cols:
        d = sorted(red_cols)[0]
        raise AccelgenError(
            f"{where}: psum reduction over {d} mapped to columns needs a forwarding path along "
            f"the rows, but partial sums here travel down columns only; map {d} to rows (or keep "
            f"it temporal)")
    if m.stationary == "output":
        if red_rows:
            d = sorted(red_rows)[0]
            raise AccelgenError(
                f"{where}: output-stationary PEs each own one output and accumulate it in place, "
                f"so the reduction dim {d} cannot be unrolled on rows; keep C, R, S temporal")
        if m.psum != "in_place":
            raise AccelgenError(f"{where}: an output-stationary mapping reduces partial sums "
                                f"in place; set psum = \"in_place\"")
    elif m.psum == "in_place":
        raise AccelgenError(f"{where}: psum = \"in_place\" means the outputs are stationary; "
                            f"set stationary = \"output\" or reduce with forward/tree")
    elif not red_rows:
        raise AccelgenError(
            f"{where}: with {m.stationary} stationary the partial sums are reduced down the "
            f"columns, so rows must unroll a reduction dim (C, R or S); rows has "
            f"{', '.join(m.rows)}")
    if "S" in m.rows:
        raise AccelgenError(
            f"{where}: unrolling the filter width S on rows is not built; each row-stationary "
            f"PE walks S in time over its ifmap row, so map R (and C) to rows")
    if "R" in m.rows and m.stationary != "row":
        raise AccelgenError(
            f"{where}: unrolling the filter dim R on rows needs per-PE row buffers: set "
            f"stationary = \"row\" (the row-stationary engine), or map C to rows")
    if m.stationary == "row" and "R" not in m.rows:
        raise AccelgenError(
            f"{where}: row-stationary PEs each hold one filter row, so rows must unroll R "
            f"(optionally after C: [\"C\", \"R\"])")
    for op in ("input", "weight"):
        mv = m.move(op)
        if (m.stationary == op) != (mv == "stationary"):
            raise AccelgenError(
                f"{where}: {op} = \"{mv}\" contradicts stationary = \"{m.stationary}\"; the "
                f"stationary operand moves as \"stationary\" and only it does")
        idx = INDEXED[op]
        unused = [d for d in m.rows + m.cols if d not in idx]
        if mv == "stationary" and not (idx & set(m.rows)) and not (idx & set(m.cols)):
            raise AccelgenError(f"{where}: a stationary {op} must be indexed by the array dims")
        if mv == "unicast" and unused:
            raise AccelgenError(
                f"{where}: {op} = \"unicast\" gives every PE its own {op}, but {op}s do not "
                f"depend on {unused[0]}, so PEs along that axis would fetch the same value; use "
                f"forward or multicast")
        diagonal = (m.stationary == "row" and op == "input" and mv == "multicast"
                    and "R" in m.rows and "P" in m.cols)
        if mv in ("forward", "multicast") and m.axis_of(op) is None and not diagonal:
            raise AccelgenError(
                f"{where}: {op} = \"{mv}\" shares each {op} along one axis, but the {op} tensor "
                f"depends on the dims of both axes ({', '.join(m.rows + m.cols)}); it can only "
                f"be unicast or stationary")
    if "N" in m.rows + m.cols:
        raise AccelgenError(f"{where}: batch N on the array is not supported (images run one "
                            f"after another); unroll K, C, P or Q instead")
    # -- engines ---------------------------------------------------------------------------
    flow = next((d for d in ENGINES.values() if d.stationary == m.stationary), None)
    if flow is None:
        raise AccelgenError(f"{where}: stationary must be one of {', '.join(STATIONARY)}, not "
                            f"{m.stationary!r}")
    if flow.accepts(m):
        return flow.engine
    hint = flow.hint
    raise AccelgenError(
        f"{where}: {m.describe()} is a legal mapping but no engine here builds it; with "
        f"stationary = \"{m.stationary}\" this generator builds {hint}")
