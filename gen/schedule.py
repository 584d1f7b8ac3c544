"""The tiler's scheduling passes: a loop nest's commands, scheduled for the hardware's concurrency.

The loop nest (gen/tiler.py) emits its commands in order with buffer addresses relative to the tile
they belong to (:class:`Slotted`), and marks where a K tile's stores may start to leave
(:class:`Release`). The front end runs LOADs and STOREs beside the executor's COMPUTEs, which queue
(gen/isa.py); four passes, each a function of a command list, turn the nest into a program that keeps
both busy and safe:

1. :func:`rotate` — *buffer rotation*: when two or three input tiles, three weight tiles or two
   output tiles fit, successive tiles of a kind take turns in parts of their buffer, so the next
   one loads while the executor works on this one;
2. :func:`queue_stores` — *store queueing*: a K tile's LOAD_QUANT and STOREs (in row bands) leave
   one unit after each COMPUTE once released, earlier only when a COMPUTE would overwrite them;
3. :func:`prefetch` — the next input tile loads in row bands, one after each COMPUTE of this one;
4. :func:`mark_sync` — ``sync`` wherever a LOAD or STORE would still touch what the executor's
   COMPUTEs touch.

A program whose STOREs add a residual (gen/residual.py) then gets :func:`residual_add`: ``add``
on every STORE and the Add's parameters (LOAD_ADD) before the first; the residual, each STORE's
payload, touches no buffer, so ``sync`` is unchanged.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable

from .isa import ADD_BEATS, Op
from .program import Command

__all__ = ["Slotted", "Release", "rotation", "rotate", "queue_stores", "prefetch", "footprint",
           "mark_sync", "residual_add", "TOUCHES"]

#: the buffer each LOAD/STORE touches, and its base-address field
TOUCHES = {Op.LOAD_INPUT: ("ibuf", "addr"), Op.LOAD_WEIGHT: ("wbuf", "waddr"),
           Op.STORE: ("obuf", "oaddr")}


@dataclasses.dataclass(frozen=True)
class Slotted:
    """A command whose address fields are relative to a rotating allocation: ``slots`` holds
    (header field, kind, n) for the n-th allocation of ``kind`` ("in", "w" or "out")."""

    cmd: Command
    slots: tuple[tuple[str, str, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class Release:
    """A K tile's LOAD_QUANT and STOREs, released where every COMPUTE writing them is issued."""

    group: tuple


def rotation(depth: int, words: int, most: int) -> tuple[int, int]:
    """How a buffer of ``depth`` words rotates tiles of ``words``: (parts, words per part), at
    most ``most`` parts."""
    n = max(1, min(most, depth // max(1, words)))
    return n, depth // n


def rotate(items: Iterable, parts: dict[str, tuple[int, int]]) -> list:
    """Place every :class:`Slotted` command: the n-th allocation of a kind goes to part
    ``n % parts`` of its buffer (``parts``: kind -> (parts, words per part), see
    :func:`rotation`). :class:`Release` groups are placed too; anything else passes through."""
    def place(s):
        if not isinstance(s, Slotted):
            return s
        h = dict(s.cmd.header)
        for field, kind, n in s.slots:
            count, size = parts[kind]
            h[field] += (n % count) * size
        return dataclasses.replace(s.cmd, header=h) if s.slots else s.cmd

    return [Release(tuple(place(c) for c in it.group)) if isinstance(it, Release) else place(it)
            for it in items]


def queue_stores(spec, items: Iterable, band: int | None) -> list[Command]:
    """Issue each :class:`Release`d group's LOAD_QUANT and STOREs from a queue of units, one unit
    after each COMPUTE (a unit may go once a COMPUTE follows the release: the hardware lets the
    COMPUTEs before it finish before the STORE reads). A COMPUTE that writes what a waiting unit
    reads first takes the queue up to that unit (in order: a LOAD_QUANT's lanes serve the STOREs
    behind it). ``band``: STORE rows per unit (None: whole STOREs). What is left goes at the end."""
    out: list[Command] = []
    # (first, last output word, commands, COMPUTEs issued before it may go)
    pending: list[tuple[int, int, list[Command], int]] = []
    issued = 0
    for it in items:
        if isinstance(it, Release):
            pending += _units(it.group, band, issued + 1)
        elif it.op == Op.COMPUTE:
            lo, hi = footprint(spec, it.header)["obuf"]
            last = max((i for i, (a, b, *_) in enumerate(pending) if a <= hi and lo <= b),
                       default=-1)
            for _, _, unit, _ in pending[:last + 1]:
                out.extend(unit)
            del pending[:last + 1]
            out.append(it)
            issued += 1
            if pending and pending[0][3] <= issued:
                out.extend(pending.pop(0)[2])
        else:
            out.append(it)
    for _, _, unit, _ in pending:
        out.extend(unit)
    return out


def _units(group, band: int | None, after: int) -> list[tuple[int, int, list[Command], int]]:
    """A K tile's stores as queue units; with ``band``, STOREs cut into row bands."""
    units = []
    head = [c for c in group if c.op == Op.LOAD_QUANT]
    for st in (c for c in group if c.op == Op.STORE):
        if not band:
            o = st.header["oaddr"]
            units.append((o, o + st.count - 1, head + [st], after))
            head = []
            continue
        for a in range(0, st.hn, band):
            hn = min(band, st.hn - a)
            o = st.header["oaddr"] + a * st.wn
            cut = dataclasses.replace(st, header={**st.header, "oaddr": o, "count": hn * st.wn},
                                      h0=st.h0 + a, hn=hn)
            units.append((o, o + hn * st.wn - 1, head + [cut], after))
            head = []
    return units


def prefetch(cmds: list[Command]) -> list[Command]:
    """Spread each LOAD_INPUT that goes to another part of the input buffer over the COMPUTEs
    of the input tile before it, in row bands, one after each: the front end then loads the next
    tile a piece at a time while the executor computes on this one, instead of holding up the
    next COMPUTE for the whole load. (The COMPUTEs before it read the other part, and a band
    issued after the first of them starts once every COMPUTE before that one has finished.)"""
    loads = [i for i, c in enumerate(cmds) if c.op == Op.LOAD_INPUT]
    moved: dict[int, list[Command]] = {}    # command index -> bands to issue after it
    drop = set()
    for k, (prev, i) in enumerate(itertools.pairwise(loads)):
        load, addr = cmds[i], cmds[i].header["addr"]
        if addr == cmds[prev].header["addr"]:
            continue                         # the same part: it must wait
        computes = [j for j in range(prev + 1, i) if cmds[j].op == Op.COMPUTE]
        if k and addr == cmds[loads[k - 1]].header["addr"]:
            # not after the first: the last COMPUTE on that part may still run then
            computes = computes[1:]
        if not computes:
            continue
        bands = min(len(computes), load.hn)
        size = -(-load.hn // bands)
        for b, a in enumerate(range(0, load.hn, size)):
            hn = min(size, load.hn - a)
            h = {**load.header, "addr": load.header["addr"] + a * load.wn, "count": hn * load.wn}
            moved.setdefault(computes[b], []).append(
                dataclasses.replace(load, header=h, h0=load.h0 + a * load.step, hn=hn))
        drop.add(i)
    out = []
    for i, c in enumerate(cmds):
        if i not in drop:
            out.append(c)
        out.extend(moved.get(i, ()))
    return out


def footprint(spec, h: dict) -> dict[str, tuple[int, int]]:
    """The buffer words a COMPUTE with header ``h`` may touch, as inclusive address ranges per
    buffer: ``ibuf`` and ``wbuf`` read, ``obuf`` read and written (its engine's footprint)."""
    return spec.flow.footprint(spec, h)


def mark_sync(spec, cmds: list[Command]) -> list[Command]:
    """Set ``sync`` on every LOAD/STORE that touches buffer words a COMPUTE still in the
    executor may touch, so the hardware's front end waits for them (gen/isa.py): for a LOAD the
    last two issued before it (one running, one queued), for a STORE the last one (the hardware
    holds a STORE until every COMPUTE but the last has written its results)."""
    out, running = [], []
    for c in cmds:
        if c.op == Op.COMPUTE:
            running = [*running[-1:], footprint(spec, c.header)]
        elif c.op == Op.LOAD_BIAS:
            running = []             # the hardware waits for the executor before every LOAD_BIAS
        elif c.op in TOUCHES and running and c.count:
            buf, field = TOUCHES[c.op]
            lo = c.header.get(field, 0)
            near = running[-1:] if c.op == Op.STORE else running
            if any(lo <= f[buf][1] and f[buf][0] <= lo + c.count - 1 for f in near):
                c = dataclasses.replace(c, header={**c.header, "sync": 1})
                running = []         # every COMPUTE has finished once this command starts
        out.append(c)
    return out


def residual_add(cmds: list[Command]) -> list[Command]:
    """``add`` on every STORE (each then takes its words' residual as its payload) and one
    LOAD_ADD (the Add's parameters, gen/isa.py) before the first STORE."""
    out, loaded = [], False
    for c in cmds:
        if c.op == Op.STORE:
            if not loaded:
                out.append(Command(Op.LOAD_ADD, {"count": ADD_BEATS}))
                loaded = True
            c = dataclasses.replace(c, header={**c.header, "add": 1})
        out.append(c)
    return out
