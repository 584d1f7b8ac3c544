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

The tiles' sizes (the output tile, its blocks, the K and C tiles, and the refusal of a layer whose
program would be too big to plan) come from gen/tiling.py.

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

from collections.abc import Callable

from . import schedule
from .errors import AccelgenError
from .isa import Op, field_max
from .layer import ConvLayer
from .model import estimate
from .progress import report
from .program import Command, Program
from .schedule import TOUCHES, footprint, mark_sync
from .spec import Spec
from .tiling import Tiling, TooManyCommands, spatial_tile, tile_candidates, tiling

__all__ = ["Command", "Program", "plan", "plan_layer", "im2col_layer", "model_cycles", "Tiling",
           "loop_nest", "footprint", "mark_sync", "TOUCHES"]


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


#: a cost model: a Program's cycles (gen/model.py by default)
Cost = Callable[[Program], int]


def model_cycles(program: Program) -> int:
    """The cycle model's figure for ``program`` (gen/model.py, equal to the RTL's counter)."""
    return estimate(program).cycles


def plan(spec: Spec, layer: ConvLayer, *, bias: bool = False, requant: bool = False,
         relu: bool = False, pool: tuple[int, int] | None = None, add: bool = False,
         cost: Cost = model_cycles) -> Program:
    """Tile ``layer`` for the hardware described by ``spec``. ``requant`` and ``relu`` run the
    outputs through the post-processing unit (per-channel multipliers and shifts are loaded with
    LOAD_QUANT before the STOREs of each K tile).

    The tiling is chosen by ``cost`` (by default the cycle model, equal to the RTL's counter)
    among tiles sized for the whole buffers and for half of them (double buffering), and for the
    engines that stream a whole tile (ws, nlr) the fewest, largest tiles and smaller tilings of
    the map (:func:`_tile_candidates`) that let one input tile serve more K tiles; then the layer
    rewrites of the module docstring, when they are faster.

    ``pool`` (rows, cols): the STOREs max-pool the outputs in non-overlapping windows of that
    size (the pooling unit, hw/pool.py) and the Program's output is the pooled map
    (gen/pooled.py :func:`~gen.pooled.plan_pooled`).

    ``add``: the STOREs add a residual to the requantised outputs (the residual unit; one
    LOAD_ADD before the first STORE, gen/schedule.py :func:`~gen.schedule.residual_add`), and
    the Program's output is the Add's (gen/residual.py)."""
    if (requant or relu) and not spec.postproc:
        raise AccelgenError(f"requantisation and ReLU need the post-processing unit, which "
                            f"{spec.name} does not have; set [postproc] enabled = true in the spec")
    if add:
        from .residual import check_add_plan
        check_add_plan(spec, requant=requant, pool=pool)
    kw = dict(bias=bias, requant=requant, relu=relu, pool=pool, add=add)
    if pool is not None:
        from .pooled import plan_pooled
        return plan_pooled(spec, layer, kw, cost)
    return plan_layer(spec, layer, kw, cost)


def plan_layer(spec: Spec, layer: ConvLayer, kw: dict, cost: Cost) -> Program:
    """:func:`plan`'s tiling and rewrites of ``layer`` with its options ``kw`` (bias, requant,
    relu, pool: the STOREs' pooling windows, in output tiles of whole windows)."""
    if layer.R == layer.S == 1 and layer.stride > 1:
        # a strided 1x1 layer reads every stride-th pixel: plan it as a stride-1 layer over
        # just those pixels, which the LOAD_INPUTs sample from the input (Command.step), so the
        # buffers hold and the host sends only the pixels used (ResNet's downsampling 1x1s)
        _check_limits(spec, layer)
        dense = dataclasses.replace(layer, H=layer.P, W=layer.Q, stride=1, pad=0)
        prog = plan_layer(spec, dense, kw, cost)
        U, pad = layer.stride, layer.pad
        cmds = tuple(dataclasses.replace(c, h0=c.h0 * U - pad, w0=c.w0 * U - pad, step=U)
                     if c.op == Op.LOAD_INPUT else c for c in prog.commands)
        return dataclasses.replace(prog, layer=layer, commands=cmds)
    try:
        _check_limits(spec, layer)
        best = _plan_tiles(spec, layer, kw, cost)
    except AccelgenError:
        # every rewrite is tried before a layer is refused: its im2col form needs fewer weight
        # words per tile, a 1x1 receptive field in the input buffer and no filter-size limit
        lowered = _plan_im2col(spec, layer, kw, cost)
        if lowered is None:
            raise           # the message about the layer itself (it names im2col's need too)
        return lowered
    if layer.Cg < spec.rows:
        # few channels leave array lanes idle (ResNet's first layer: C = 3 on 16 rows): lay
        # the receptive field out as channels (im2col) when that is faster
        lowered = _plan_im2col(spec, layer, kw, cost)
        if lowered is not None and cost(lowered) < cost(best):
            best = lowered
    return best


def _plan_im2col(spec: Spec, layer: ConvLayer, kw: dict, cost: Cost) -> Program | None:
    """``layer`` planned as its im2col rewrite, or None where that does not apply or fit."""
    if not _im2col_applies(spec, layer):
        return None
    try:
        col = im2col_layer(layer)       # (its channels may exceed a layer's limit)
        _check_limits(spec, col)
        lowered = _plan_tiles(spec, col, kw, cost)
    except AccelgenError:
        return None
    return dataclasses.replace(lowered, layer=layer, lowered=col)


def im2col_layer(layer: ConvLayer) -> ConvLayer:
    """``layer`` as a 1x1 layer over its output map whose channels are the (c, r, s) of each
    receptive field, c-major per group (gen/frames.py :func:`~gen.frames.im2col`)."""
    return dataclasses.replace(layer, C=layer.C * layer.R * layer.S, H=layer.P, W=layer.Q,
                               R=1, S=1, stride=1, pad=0, dilation=1)


def _plan_tiles(spec: Spec, layer: ConvLayer, kw: dict, cost: Cost) -> Program:
    """The cheapest of :func:`_plan`'s tilings by ``cost``."""
    # tiles sized for the whole buffers, and for half of each so that two fit (double buffering)
    half = dataclasses.replace(spec, input_depth=max(1, spec.input_depth // 2),
                               weight_depth=max(1, spec.weight_depth // 2),
                               output_depth=max(1, spec.output_depth // 2))
    if spec.flow.facts(spec, layer).block is not None:
        options = [(None, spec), (None, half)]
    else:
        first = spatial_tile(spec, layer)
        tiles = [first, *tile_candidates(spec, layer, first)]
        try:
            fh = spatial_tile(half, layer)
            tiles += [fh, *tile_candidates(half, layer, fh)]
        except AccelgenError:
            pass
        if kw.get("pool"):   # tiles of whole pooling windows
            kr, ks = kw["pool"]
            tiles = [(pt // kr * kr, qt // ks * ks) for pt, qt in tiles
                     if pt >= kr and qt >= ks and qt // ks * ks <= field_max("pool_w")]
            if not tiles:
                raise AccelgenError(f"the buffers cannot hold an output tile of whole {kr}x{ks} "
                                    f"pooling windows; raise buffers.output_depth and "
                                    f"buffers.input_depth, or keep the pooling on the host")
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
    best = best_cycles = too_big = None
    for i, (tile, sizing) in enumerate(options):
        report("tiling", i, len(options))
        try:
            prog = _plan(spec, layer, tile, sizing=sizing, **kw)
        except TooManyCommands as e:
            too_big = too_big or e      # another tiling may need fewer
            continue
        except AccelgenError:
            if sizing is spec:
                raise
            continue            # the half-sized buffers cannot hold a tile
        cycles = cost(prog)
        if best is None or cycles < best_cycles:
            best, best_cycles = prog, cycles
    if best is None:
        raise too_big
    return best


def _plan(spec: Spec, layer: ConvLayer, tile, *, bias: bool, requant: bool, relu: bool,
          pool: tuple[int, int] | None = None, add: bool = False,
          sizing: Spec | None = None) -> Program:
    """One tiling of ``layer`` (:func:`_tiling`; ``sizing``: ``spec``, or half its buffers so
    that loads and stores double-buffer) as a Program: the loop nest, then the scheduling
    passes of gen/schedule.py."""
    t = tiling(spec, sizing or spec, layer, tile, pool)
    U, D, R, S = layer.stride, layer.dilation, layer.R, layer.S
    # double (or triple) buffering: when two of a kind fit, loads rotate through parts of a buffer
    # and each (output tile, K group) its half of the output buffer, so the front end loads the
    # next tile and stores the previous one while the executor computes (gen/isa.py). Weights
    # in thirds when three fit: the executor may hold two COMPUTEs, one running and one queued,
    # while the front end loads the weights of a third
    in_words = ((min(t.pt, layer.P) - 1) * U + (R - 1) * D + 1) * (
        (min(t.qt, layer.Q) - 1) * U + (S - 1) * D + 1)
    w_words = spec.flow.weight_count(spec, layer, t.facts, min(t.facts.c_tile, layer.Cg),
                                     min(t.facts.k_tile, layer.Kg))
    parts = {"in": schedule.rotation(spec.input_depth, in_words, 3),
             "w": schedule.rotation(spec.weight_depth, w_words, 3),
             "out": schedule.rotation(spec.output_depth, min(t.kb, t.n_kt) * t.tile_words, 2)}
    # ws/nlr: STORE rows per queue unit, half a COMPUTE's stream (a STORE of a whole tile could
    # hold up several 1x1 COMPUTEs, each as long as it)
    band = max(1, R * S * t.pt // 2) if t.facts.block is None else None
    if pool and band:     # (bands of whole pooling windows)
        band = max(pool[0], band // pool[0] * pool[0])
    nest = loop_nest(spec, layer, t, bias=bias, requant=requant, relu=relu, pool=pool)
    cmds = schedule.queue_stores(spec, schedule.rotate(nest, parts), band)
    cmds = schedule.mark_sync(spec, schedule.prefetch(cmds))
    if add:
        cmds = schedule.residual_add(cmds)
    return Program(spec=spec, layer=layer, commands=tuple(cmds), tile_p=t.pt, tile_q=t.qt,
                   k_tile=t.facts.k_tile, k_group=t.kb, has_bias=bias, requant=requant,
                   relu=relu, add=add)


def _output_tiles(layer: ConvLayer, t: Tiling):
    """The loop nest's outer loops: (n, g, p0, pn, q0, qn, K tiles of the group)."""
    total = (layer.N * layer.groups * -(-layer.P // t.pt) * -(-layer.Q // t.qt)
             * -(-t.n_kt // t.kb))
    i = 0
    for n, g in itertools.product(range(layer.N), range(layer.groups)):
        for p0, q0 in itertools.product(range(0, layer.P, t.pt), range(0, layer.Q, t.qt)):
            for kg0 in range(0, t.n_kt, t.kb):
                report("output tile", i, total)
                i += 1
                yield (n, g, p0, min(t.pt, layer.P - p0), q0, min(t.qt, layer.Q - q0),
                       range(kg0, min(kg0 + t.kb, t.n_kt)))


def loop_nest(spec: Spec, layer: ConvLayer, t: Tiling, *, bias: bool, requant: bool,
              relu: bool, pool: tuple[int, int] | None = None):
    """The loop nest of the module docstring, in program order: :class:`~gen.schedule.Slotted`
    commands whose addresses are relative to their input, weight and output tiles' allocations
    (placed by :func:`~gen.schedule.rotate`), and a :class:`~gen.schedule.Release` of each K
    tile's stores where its last COMPUTE has been issued."""
    flow, facts = spec.flow, t.facts
    kt_size, U, D, pad = facts.k_tile, layer.stride, layer.dilation, layer.pad
    per_channel = (lambda kn: kn) if facts.per_word else (lambda kn: spec.cols)
    alloc = dict.fromkeys(("in", "w", "out"), -1)

    def new(kind):
        alloc[kind] += 1
        return alloc[kind]

    for n, g, p0, pn, q0, qn, kts in _output_tiles(layer, t):
        ht = (pn - 1) * U + (layer.R - 1) * D + 1
        wt = (qn - 1) * U + (layer.S - 1) * D + 1
        out = new("out")
        pooling = {"pool": 1, "pool_r": pool[0], "pool_s": pool[1]} if pool else {}
        groups = []
        for j, kt in enumerate(kts):        # each K tile's LOAD_QUANT and STOREs
            k0 = kt * kt_size
            kn = min(kt_size, layer.Kg - k0)
            group = [Command(Op.LOAD_QUANT, {"count": per_channel(kn)}, g=g, k0=k0)] * requant
            group += [schedule.Slotted(Command(
                Op.STORE, {"oaddr": j * t.tile_words + b * flow.block_stride(kn, t.block_words),
                           "count": kn if facts.per_word else pbn * qbn,
                           "requant": int(requant), "relu": int(relu), **pooling,
                           **({"pool_w": qbn} if pool else {})},
                n=n, g=g, k0=k0, h0=p0 + pb0, w0=q0 + qb0, hn=pbn, wn=qbn),
                (("oaddr", "out", out),)) for b, pb0, qb0, pbn, qbn in t.blocks(pn, qn)]
            groups.append(schedule.Release(tuple(group)))
        for ct in range(t.n_ct):
            c0 = ct * facts.c_tile
            cn = min(facts.c_tile, layer.Cg - c0)
            inp = new("in")
            yield schedule.Slotted(Command(
                Op.LOAD_INPUT, {"addr": 0, "count": ht * wt},
                n=n, g=g, c0=c0, h0=p0 * U - pad, w0=q0 * U - pad, hn=ht, wn=wt),
                (("addr", "in", inp),))
            for j, kt in enumerate(kts):
                k0 = kt * kt_size
                kn = min(kt_size, layer.Kg - k0)
                if ct == t.n_ct - 1 and j:
                    yield groups[j - 1]     # the K tile before has all its COMPUTEs issued
                w = new("w")
                yield schedule.Slotted(Command(
                    Op.LOAD_WEIGHT, {"waddr": 0,
                                     "count": flow.weight_count(spec, layer, facts, cn, kn)},
                    g=g, c0=c0, k0=k0), (("waddr", "w", w),))
                with_bias = bias and ct == 0
                if with_bias:
                    yield Command(Op.LOAD_BIAS, {"count": per_channel(kn)}, g=g, k0=k0)
                for c in flow.computes(spec, layer, cn=cn, ct=ct, kn=kn, wt=wt, pn=pn, qn=qn,
                                       pb=t.pb, qb=t.qb, obase=j * t.tile_words,
                                       block_words=t.block_words, with_bias=with_bias, g=g,
                                       c0=c0, k0=k0):
                    yield schedule.Slotted(c, (("addr", "in", inp), ("waddr", "w", w),
                                               ("oaddr", "out", out)))
        yield groups[-1]
