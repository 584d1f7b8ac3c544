"""The tiler: split a convolution layer into tile commands the hardware executes.

This is the compiler of accelgen. It is the one source of truth for how a layer runs: the cocotb
driver replays its :class:`Program` on the RTL, the frames encoder packs the tensors for it, and
reports count its work.

Mapping (weight-stationary): array rows hold input channels (a C tile of ``rows``), array columns hold
output channels (a K tile of ``cols``); each (r, s) filter tap is one pass in which a ``rows``×``cols``
weight block sits in the PEs while the input pixels of an output tile stream through. Loop nest, outer
to inner::

    for n, for group g, for output tile (p0, q0)            # spatial tiles sized by the buffers
      for K group (kb K tiles whose outputs fit the output buffer together)
        for C tile:      LOAD_INPUT (the tile's receptive field, zero padding included)
          for K tile:    LOAD_WEIGHT, [LOAD_BIAS], COMPUTE (accumulate over C tiles in place)
        for K tile:      STORE

The input tile is loaded once per (C tile, K group) and reused by every K tile of the group; outputs
stay in the output buffer until all C tiles have been accumulated, so partial sums never leave the chip.

That loop nest is then scheduled for the hardware's concurrency (gen/isa.py: loads and stores run
beside the COMPUTEs, which queue):

* *buffer rotation*: when two or three input tiles, three weight tiles or two output tiles fit,
  loads rotate through parts of a buffer, so the next one loads while the executor works; tiles
  are sized for whole buffers and for half of them, and :func:`plan` keeps the tiling the cycle
  model (gen/model.py, equal to the RTL's counter) finds fastest;
* *prefetch*: the next input tile is loaded in row bands, one after each COMPUTE of this one;
* *store queue*: a K tile's STOREs (in row bands) leave one unit per COMPUTE once a COMPUTE
  follows the last that wrote it, the last K tile's during the next output tile;
* :func:`mark_sync` sets ``sync`` wherever a LOAD or STORE would still touch what the executor's
  COMPUTEs touch.

Two layer rewrites run host-side, chosen when they are faster: a strided 1×1 layer loads only the
pixels it reads (``Command.step``), and a layer with fewer channels than array rows becomes a 1×1
layer over its receptive fields (im2col, :func:`im2col_layer`; ResNet-18's conv1 with C = 3 on a
16-row array: 4.8× fewer cycles, for ~12× the input traffic).

The other engines share this loop nest and differ in a few facts, which each states in its module
of gen/engines/ (:class:`~gen.engines.base.EngineFacts`, the LOAD_WEIGHT word count, the COMPUTEs of
a tile): ``os`` and ``is`` unroll output pixels on the array, so an output tile is a grid of
*blocks*; ``is`` streams output channels through the array (a K tile of up to 256 channels);
``nlr`` reads a whole weight block per word; ``rs`` (Eyeriss) folds and replicates filter rows over
the array rows (gen/engines/row_stationary.py).
"""

from __future__ import annotations

import dataclasses
import itertools

from .engines.base import EngineFacts
from .errors import AccelgenError
from .isa import Op, field_max
from .layer import ConvLayer
from .program import Command, Program
from .spec import Spec

__all__ = ["Command", "Program", "plan", "footprint", "mark_sync", "TOUCHES"]


def _check_limits(spec: Spec, layer: ConvLayer) -> None:
    for name, value, field, knob in (
        ("R", layer.R, "r", "filter height"), ("S", layer.S, "s", "filter width"),
        ("stride", layer.stride, "stride", "stride"), ("dilation", layer.dilation, "dilation",
                                                       "dilation"),
    ):
        if value > field_max(field):
            raise AccelgenError(
                f"layer {name}={value} exceeds the hardware's {knob} limit of {field_max(field)}; "
                f"use a layer with {name} <= {field_max(field)}")
    need = least = _weight_need(spec, layer)
    if need > spec.weight_depth:
        how = ""
        if _im2col_applies(spec, layer):
            # the im2col rewrite holds one word per lane and filter: the smaller of the two
            least = min(need, _weight_need(spec, im2col_layer(layer)))
            how = f" ({least} as its 1x1 im2col rewrite)" if least < need else ""
        raise AccelgenError(
            f"layer {layer.R}x{layer.S} filter needs {need} weight-buffer words per tile on "
            f"{spec.engine.upper()}{how} but buffers.weight_depth is {spec.weight_depth}; raise "
            f"buffers.weight_depth to at least {least}")


def _weight_need(spec: Spec, layer: ConvLayer) -> int:
    """Weight-buffer words one tile of ``layer`` needs at the least."""
    return spec.flow.weight_words_needed(layer, spec.flow.facts(spec, layer))


def _im2col_applies(spec: Spec, layer: ConvLayer) -> bool:
    """Whether :func:`im2col_layer` is a rewrite the tiler may use for ``layer`` on ``spec``."""
    return spec.flow.im2col and layer.R * layer.S > 1


def _spatial_tile(spec: Spec, layer: ConvLayer) -> tuple[int, int]:
    """Choose the output tile (pt, qt): fewest tiles, then largest, within the buffers."""
    U, D = layer.stride, layer.dilation
    P, Q = layer.P, layer.Q
    best = None
    last_qt = None
    for nq in range(1, Q + 1):
        qt = -(-Q // nq)
        if qt == last_qt:
            continue
        last_qt = qt
        wt = (qt - 1) * U + (layer.S - 1) * D + 1
        ht_max = spec.input_depth // wt
        need_h = (layer.R - 1) * D + 1
        if ht_max < need_h:
            continue
        pt = min(P, spec.output_depth // qt, (ht_max - need_h) // U + 1, field_max("p"))
        if pt < 1 or qt > field_max("q"):
            continue
        np_ = -(-P // pt)
        pt = -(-P // np_)  # balance the tiles
        key = (np_ * nq, -(pt * qt))
        if best is None or key < best[0]:
            best = (key, pt, qt)
    if best is None:
        rf = ((layer.R - 1) * D + 1) * ((layer.S - 1) * D + 1)
        raise AccelgenError(
            f"the input buffer cannot hold one output pixel's {layer.R}x{layer.S} receptive field "
            f"({rf} words with dilation {D}); raise buffers.input_depth to at least {rf}")
    return best[1], best[2]


def _block_shape(layer: ConvLayer, facts: EngineFacts) -> tuple[int, int]:
    """The (rows, cols) of output pixels one block of the array holds: fewest blocks over the
    layer's output map, then the fullest, within the mapping's pixel dims."""
    P, Q, blk = layer.P, layer.Q, facts.block
    if facts.block_dims == ("Q",):
        return 1, min(Q, blk)
    if facts.block_dims == ("P",):
        return min(P, blk), 1
    best = None
    for qb in range(1, min(Q, blk) + 1):
        pb = min(P, blk // qb)
        key = (-(-P // pb) * -(-Q // qb), -(pb * qb))
        if best is None or key < best[0]:
            best = (key, pb, qb)
    return best[1], best[2]


def _block_tile(spec: Spec, layer: ConvLayer, pb: int, qb: int,
                block_words: int) -> tuple[int, int]:
    """Output tile (pt, qt) for the block engines: a grid of whole blocks (ragged only at the map's
    edge) whose receptive field fits the input buffer and whose outputs fit the output buffer."""
    U, D = layer.stride, layer.dilation
    P, Q = layer.P, layer.Q
    need_h = (layer.R - 1) * D + 1
    best = None
    for mq in range(1, -(-Q // qb) + 1):
        qt = min(Q, mq * qb)
        wt = (qt - 1) * U + (layer.S - 1) * D + 1
        ht_max = spec.input_depth // wt
        if ht_max < need_h or qt > field_max("q"):
            break
        pt_in = min(P, (ht_max - need_h) // U + 1)
        per_row = -(-qt // qb) * block_words
        mp = min(pt_in // pb if pt_in < P else -(-P // pb), spec.output_depth // per_row)
        if mp < 1:
            continue
        pt = min(P, mp * pb)
        key = (-(-P // pt) * -(-Q // qt), -(pt * qt))
        if best is None or key < best[0]:
            best = (key, pt, qt)
    if best is None:
        rf = (((pb - 1) * U + need_h) * ((qb - 1) * U + (layer.S - 1) * D + 1))
        raise AccelgenError(
            f"the input buffer cannot hold one {pb}x{qb} block's receptive field ({rf} words) "
            f"with its outputs; raise buffers.input_depth to at least {rf}")
    return best[1], best[2]


def _tile_candidates(spec: Spec, layer: ConvLayer, first: tuple[int, int]):
    """Output tiles worth timing besides ``first`` (the fewest, largest tiles). A smaller tile
    lets one input tile serve a larger group of K tiles (the output buffer holds the group's
    outputs), which can beat reloading the input for every group; so when ``first`` leaves K
    tiles over, yield for a group of 2×, 4× and all the K tiles the fewest (then largest) tiles
    of the map, cut into up to 8 row bands × 4 column bands, that the buffers hold."""
    U, D = layer.stride, layer.dilation
    n_kt = -(-layer.Kg // spec.flow.facts(spec, layer).k_tile)
    kb = max(1, min(n_kt, spec.output_depth // (first[0] * first[1])))
    if kb >= n_kt:
        return
    for group in sorted({min(2 * kb, n_kt), min(4 * kb, n_kt), n_kt}):
        best = None
        for a in range(1, 9):
            for b in range(1, 5):
                pt, qt = -(-layer.P // a), -(-layer.Q // b)
                ht = (pt - 1) * U + (layer.R - 1) * D + 1
                wt = (qt - 1) * U + (layer.S - 1) * D + 1
                if (ht * wt > spec.input_depth or pt * qt * group > spec.output_depth
                        or pt > field_max("p") or qt > field_max("q")):
                    continue
                key = (-(-layer.P // pt) * -(-layer.Q // qt), -pt * qt)
                if best is None or key < best[0]:
                    best = (key, (pt, qt))
        if best is not None and best[1] != first:
            yield best[1]


def plan(spec: Spec, layer: ConvLayer, *, bias: bool = False, requant: bool = False,
         relu: bool = False) -> Program:
    """Tile ``layer`` for the hardware described by ``spec``. ``requant`` and ``relu`` run the
    outputs through the post-processing unit (per-channel multipliers and shifts are loaded with
    LOAD_QUANT before the STOREs of each K tile).

    The tiling is chosen by the cycle model (gen/model.py, equal to the RTL's counter) among
    tiles sized for the whole buffers and for half of them (double buffering), and for the
    engines that stream a whole tile (ws, nlr) the fewest, largest tiles and smaller tilings of
    the map (:func:`_tile_candidates`) that let one input tile serve more K tiles; then the layer
    rewrites of the module docstring, when they are faster."""
    if (requant or relu) and not spec.postproc:
        raise AccelgenError(f"requantisation and ReLU need the post-processing unit, which "
                            f"{spec.name} does not have; set [postproc] enabled = true in the spec")
    kw = dict(bias=bias, requant=requant, relu=relu)
    if layer.R == layer.S == 1 and layer.stride > 1:
        # a strided 1x1 layer reads every stride-th pixel: plan it as a stride-1 layer over
        # just those pixels, which the LOAD_INPUTs sample from the input (Command.step), so the
        # buffers hold and the host sends only the pixels used (ResNet's downsampling 1x1s)
        _check_limits(spec, layer)
        dense = dataclasses.replace(layer, H=layer.P, W=layer.Q, stride=1, pad=0)
        prog = plan(spec, dense, **kw)
        U, pad = layer.stride, layer.pad
        cmds = tuple(dataclasses.replace(c, h0=c.h0 * U - pad, w0=c.w0 * U - pad, step=U)
                     if c.op == Op.LOAD_INPUT else c for c in prog.commands)
        return dataclasses.replace(prog, layer=layer, commands=cmds)
    from .model import estimate   # the model evaluates Programs; it imports this module

    try:
        _check_limits(spec, layer)
        best = _plan_tiles(spec, layer, kw, estimate)
    except AccelgenError:
        # every rewrite is tried before a layer is refused: its im2col form needs fewer weight
        # words per tile, a 1x1 receptive field in the input buffer and no filter-size limit
        lowered = _plan_im2col(spec, layer, kw, estimate)
        if lowered is None:
            raise           # the message about the layer itself (it names im2col's need too)
        return lowered
    if layer.Cg < spec.rows:
        # few channels leave array lanes idle (ResNet's first layer: C = 3 on 16 rows): lay
        # the receptive field out as channels (im2col) when that is faster
        lowered = _plan_im2col(spec, layer, kw, estimate)
        if lowered is not None and estimate(lowered).cycles < estimate(best).cycles:
            best = lowered
    return best


def _plan_im2col(spec: Spec, layer: ConvLayer, kw: dict, estimate) -> Program | None:
    """``layer`` planned as its im2col rewrite, or None where that does not apply or fit."""
    if not _im2col_applies(spec, layer):
        return None
    col = im2col_layer(layer)
    try:
        _check_limits(spec, col)
        lowered = _plan_tiles(spec, col, kw, estimate)
    except AccelgenError:
        return None
    return dataclasses.replace(lowered, layer=layer, lowered=col)


def im2col_layer(layer: ConvLayer) -> ConvLayer:
    """``layer`` as a 1x1 layer over its output map whose channels are the (c, r, s) of each
    receptive field, c-major per group (gen/frames.py :func:`~gen.frames.im2col`)."""
    return dataclasses.replace(layer, C=layer.C * layer.R * layer.S, H=layer.P, W=layer.Q,
                               R=1, S=1, stride=1, pad=0, dilation=1)


def _plan_tiles(spec: Spec, layer: ConvLayer, kw: dict, estimate) -> Program:
    """The fastest of :func:`_plan`'s tilings by the cycle model."""
    # tiles sized for the whole buffers, and for half of each so that two fit (double buffering)
    half = dataclasses.replace(spec, input_depth=max(1, spec.input_depth // 2),
                               weight_depth=max(1, spec.weight_depth // 2),
                               output_depth=max(1, spec.output_depth // 2))
    if spec.flow.facts(spec, layer).block is not None:
        options = [(None, spec), (None, half)]
    else:
        first = _spatial_tile(spec, layer)
        tiles = [first, *_tile_candidates(spec, layer, first)]
        try:
            fh = _spatial_tile(half, layer)
            tiles += [fh, *_tile_candidates(half, layer, fh)]
        except AccelgenError:
            pass
        # (a tile whose K group is the same under both sizings plans the same program: once)
        kt = spec.flow.facts(spec, layer).k_tile
        n_kt = -(-layer.Kg // kt)
        seen, options = set(), []
        for t in tiles:
            for sizing in (spec, half):
                group = max(1, min(n_kt, sizing.output_depth // (t[0] * t[1])))
                if (t, group) not in seen:
                    seen.add((t, group))
                    options.append((t, sizing))
    best = best_cycles = None
    for tile, sizing in options:
        try:
            prog = _plan(spec, layer, tile, sizing=sizing, **kw)
        except AccelgenError:
            if sizing is spec:
                raise
            continue            # the half-sized buffers cannot hold a tile
        cycles = estimate(prog).cycles
        if best is None or cycles < best_cycles:
            best, best_cycles = prog, cycles
    return best


def _prefetch(cmds: list[Command]) -> list[Command]:
    """Spread each LOAD_INPUT that goes to the other half of the input buffer over the COMPUTEs
    of the input tile before it, in row bands, one after each: the front end then loads the next
    tile a piece at a time while the executor computes on this one, instead of holding up the
    next COMPUTE for the whole load. (The COMPUTEs before it read the other half, and a band
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


def footprint(spec: Spec, h: dict) -> dict[str, tuple[int, int]]:
    """The buffer words a COMPUTE with header ``h`` may touch, as inclusive address ranges per
    buffer: ``ibuf`` and ``wbuf`` read, ``obuf`` read and written (gen/isa.py COMPUTE)."""
    return spec.flow.footprint(spec, h)


#: the buffer each LOAD/STORE touches, and its base-address field
TOUCHES = {Op.LOAD_INPUT: ("ibuf", "addr"), Op.LOAD_WEIGHT: ("wbuf", "waddr"),
            Op.STORE: ("obuf", "oaddr")}


def mark_sync(spec: Spec, cmds: list[Command]) -> list[Command]:
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


def _plan(spec: Spec, layer: ConvLayer, tile, *, bias: bool, requant: bool, relu: bool,
          sizing: Spec | None = None) -> Program:
    """One tiling of ``layer``: ``tile`` is the output tile of ws/nlr (the block engines size
    theirs), ``sizing`` the buffer depths the tile and K group are sized for (``spec``'s, or
    half of them so that loads and stores double-buffer)."""
    sizing = sizing or spec
    flow = spec.flow
    facts = flow.tiling_facts(spec, sizing, layer)
    kt_size = facts.k_tile
    U, D, pad = layer.stride, layer.dilation, layer.pad
    R, S = layer.R, layer.S
    # block_words: output words of one block
    if facts.block is None:           # the whole tile streams through the array at once
        pt, qt = tile
        pb, qb = pt, qt
        block_words = pt * qt
    else:                             # the tile is a grid of blocks, computed one by one
        pb, qb = _block_shape(layer, facts)
        block_words = kt_size if facts.per_word else pb * qb
        pt, qt = _block_tile(sizing, layer, pb, qb, block_words)
    tile_words = -(-pt // pb) * -(-qt // qb) * block_words   # ... of one K tile
    c_tile = facts.c_tile
    n_ct = -(-layer.Cg // c_tile)
    n_kt = -(-layer.Kg // kt_size)
    kb = max(1, min(n_kt, sizing.output_depth // tile_words))

    def blocks(pn, qn):
        b = 0
        for pb0 in range(0, pn, pb):
            for qb0 in range(0, qn, qb):
                yield b, pb0, qb0, min(pb, pn - pb0), min(qb, qn - qb0)
                b += 1

    # double (or triple) buffering: when two of a kind fit, loads rotate through parts of a buffer
    # and each (output tile, K group) its half of the output buffer, so the front end loads the
    # next tile and stores the previous one while the executor computes (gen/isa.py)
    in_words = ((min(pt, layer.P) - 1) * U + (R - 1) * D + 1) * ((min(qt, layer.Q) - 1) * U
                                                                 + (S - 1) * D + 1)
    w_words = flow.weight_count(spec, layer, facts, min(c_tile, layer.Cg), min(kt_size, layer.Kg))
    # (weights in thirds when three fit: the executor may hold two COMPUTEs, one running and
    # one queued, while the front end loads the weights of a third)
    def slots(depth, words, most):
        n = max(1, min(most, depth // max(1, words)))
        return n, depth // n

    slot = {"in": slots(spec.input_depth, in_words, 3),
            "w": slots(spec.weight_depth, w_words, 3),
            "out": slots(spec.output_depth, min(kb, n_kt) * tile_words, 2)}
    turn = dict.fromkeys(slot, 0)

    def base(kind):
        """The base address of the next load (or output tile) of ``kind``, in rotation."""
        n, size = slot[kind]
        b = turn[kind] * size
        turn[kind] = (turn[kind] + 1) % n
        return b

    cmds: list[Command] = []
    # STOREs wait in a queue of units (a K tile's LOAD_QUANT and STOREs, in row bands short
    # enough to hide behind a COMPUTE) and go out one unit after each COMPUTE: a K tile's once the
    # last C tile has moved on to the next K tile (so its COMPUTEs have finished), the last K
    # tile's during the next output tile. A COMPUTE that writes what a waiting unit reads first
    # takes the queue up to that unit (in order: a LOAD_QUANT's lanes serve the STOREs behind it)
    # (first, last output word, commands, issued COMPUTEs before it may go: one after the
    # last COMPUTE writing it, which the hardware then lets finish before the STORE reads)
    pending: list[tuple[int, int, list[Command], int]] = []
    issued = [0]
    # ws/nlr: STORE rows per unit, half a COMPUTE's stream (a STORE of a whole tile could hold
    # up several 1x1 COMPUTEs, each as long as it)
    band = max(1, R * S * pt // 2) if facts.block is None else None

    def add_compute(c):
        lo, hi = footprint(spec, c.header)["obuf"]
        last = max((i for i, (a, b, *_) in enumerate(pending) if a <= hi and lo <= b),
                   default=-1)
        for _, _, unit, _ in pending[:last + 1]:
            cmds.extend(unit)
        del pending[:last + 1]
        cmds.append(c)
        issued[0] += 1
        if pending and pending[0][3] <= issued[0]:
            cmds.extend(pending.pop(0)[2])

    def queue(group):
        """A K tile's stores as units: ws/nlr STOREs cut into row bands of ``band`` rows."""
        head = [c for c in group if c.op == Op.LOAD_QUANT]
        for st in (c for c in group if c.op == Op.STORE):
            step = band if band else st.hn
            for a in range(0, st.hn, step):
                hn = min(step, st.hn - a)
                o = st.header["oaddr"] + a * st.wn
                unit = head + [dataclasses.replace(
                    st, header={**st.header, "oaddr": o, "count": hn * st.wn}, h0=st.h0 + a,
                    hn=hn)] if band else head + [st]
                pending.append((o if band else st.header["oaddr"],
                                o + hn * st.wn - 1 if band else st.header["oaddr"] + st.count - 1,
                                unit, issued[0] + 1))
                head = []

    for n in range(layer.N):
        for g in range(layer.groups):
            for p0 in range(0, layer.P, pt):
                pn = min(pt, layer.P - p0)
                for q0 in range(0, layer.Q, qt):
                    qn = min(qt, layer.Q - q0)
                    ht = (pn - 1) * U + (R - 1) * D + 1
                    wt = (qn - 1) * U + (S - 1) * D + 1
                    for kg0 in range(0, n_kt, kb):
                        kts = range(kg0, min(kg0 + kb, n_kt))
                        obase = base("out")
                        groups = []
                        for j, kt in enumerate(kts):
                            k0 = kt * kt_size
                            kn = min(kt_size, layer.Kg - k0)
                            group = []
                            if requant:
                                group.append(Command(Op.LOAD_QUANT, {
                                    "count": kn if facts.per_word else spec.cols}, g=g, k0=k0))
                            for b, pb0, qb0, pbn, qbn in blocks(pn, qn):
                                group.append(Command(
                                    Op.STORE, {"oaddr": obase + j * tile_words + b * (
                                        flow.block_stride(kn, block_words)),
                                               "count": kn if facts.per_word else pbn * qbn,
                                               "requant": int(requant), "relu": int(relu)},
                                    n=n, g=g, k0=k0, h0=p0 + pb0, w0=q0 + qb0, hn=pbn, wn=qbn))
                            groups.append(group)
                        for ct in range(n_ct):
                            c0 = ct * c_tile
                            ibase = base("in")
                            cmds.append(Command(
                                Op.LOAD_INPUT, {"addr": ibase, "count": ht * wt},
                                n=n, g=g, c0=c0, h0=p0 * U - pad, w0=q0 * U - pad, hn=ht, wn=wt))
                            cn = min(c_tile, layer.Cg - c0)
                            for j, kt in enumerate(kts):
                                k0 = kt * kt_size
                                kn = min(kt_size, layer.Kg - k0)
                                if ct == n_ct - 1 and j:
                                    queue(groups[j - 1])
                                wcount = flow.weight_count(spec, layer, facts, cn, kn)
                                wbase = base("w")
                                cmds.append(Command(
                                    Op.LOAD_WEIGHT, {"waddr": wbase, "count": wcount},
                                    g=g, c0=c0, k0=k0))
                                with_bias = bias and ct == 0
                                if with_bias:
                                    cmds.append(Command(Op.LOAD_BIAS, {
                                        "count": kn if facts.per_word else spec.cols},
                                        g=g, k0=k0))
                                for c in flow.computes(
                                        spec, layer, cn=cn, ct=ct, kn=kn, wt=wt, pn=pn, qn=qn,
                                        pb=pb, qb=qb, obase=obase + j * tile_words,
                                        block_words=block_words, with_bias=with_bias, g=g,
                                        c0=c0, k0=k0):
                                    h = c.header
                                    add_compute(dataclasses.replace(c, header={
                                        **h, "addr": h["addr"] + ibase,
                                        "waddr": h["waddr"] + wbase}))
                        queue(groups[-1])
    for _, _, unit, _ in pending:
        cmds.extend(unit)
    return Program(spec=spec, layer=layer, commands=tuple(mark_sync(spec, _prefetch(cmds))),
                   tile_p=pt, tile_q=qt, k_tile=kt_size,
                   k_group=kb, has_bias=bias, requant=requant, relu=relu)
