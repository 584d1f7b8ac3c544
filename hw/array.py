"""The PE arrays, one per engine of gen/mapping.py.

:class:`SystolicArray` (engines ``ws`` and ``is``): a stationary-operand systolic array (TPU-style).

``rows`` × ``cols`` :class:`~hw.pe.MacPE`\\ s. Array row ``i`` holds input channel ``i`` of the tile,
column ``j`` output channel ``j``. Weights enter at the top of each column and shift down one PE per
cycle while ``w_shift`` is high (after ``rows`` shifts, the word pushed first sits in the bottom row).
Activations enter at the left, skewed so row ``i`` enters ``i`` cycles after row 0, and move right one
PE per cycle; partial sums start at zero in the top row and move down one PE per cycle, collecting
``a[i] * w[i][j]``. Column ``j`` finishes ``j`` cycles after column 0, so a deskew delays it by
``cols - 1 - j``: the dot products of the input vector presented at cycle ``t`` appear together on
``y`` at cycle ``t + latency``, ``latency = rows + cols - 1 + stages`` (the PEs' multiplier
pipeline stages).

Weights are held for as long as ``w_shift`` is low: the controller must not shift while a vector it
cares about is still inside the array (``latency`` cycles). With ``banks=2`` (weight-stationary)
the shift loads each PE's shadow weight while the active one is in use, and a bank bit travelling
with the activations (``sel_next``, skewed like them) makes every PE take its shadow weight just
before the first activation of the next tap: taps follow each other without draining the array.

With ``preload="right"`` (input-stationary) the roles swap: the stationary operand enters at the left
of each row (``w`` has ``rows`` lanes) and shifts right, so after ``n`` shifts the word pushed first
sits in column ``n - 1``; the streamed operand (``a``) is then the weights.

:class:`OutputStationaryArray` (``os``), :class:`AdderTreeArray` (``nlr``) and
:class:`RowStationaryArray` (``rs``) follow.
"""

from types import SimpleNamespace

from amaranth.hdl import (C, ClockSignal, Instance, Module, Mux, ResetSignal, Shape, Signal, signed,
                          unsigned)
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pe import MacPE, OsPE, RsPE, rs_control_layout
from .regs import delay, pipelined_product

__all__ = ["SystolicArray", "OutputStationaryArray", "AdderTreeArray", "RowStationaryArray",
           "array_for", "array_signature"]


def _pe_grid(m, make, rows, cols, module=None, proto=None, inputs=None):
    """``rows`` × ``cols`` PEs from ``make()``, added to ``m`` as ``pe_i_j``.

    With ``module`` (a Verilog module name) each PE is an ``Instance`` of that one module,
    emitted once from ``proto`` (a PE from ``make()``) by gen/emit.py, instead of an elaborated
    copy: the Verilog, Yosys and the simulators' compile time then stop growing with rows × cols.
    Each PE is returned as an object with one signal per port of ``proto``'s signature, wired
    like the PE itself.

    ``inputs(i, j, pes)`` (PEs are made row by row, left to right, so ``pes`` holds every PE
    above and to the left) gives PE (i, j)'s input ports as a dict of port name → value. An
    instance takes those values on its ports directly, with no signal and assignment of its own
    in between (a fifth less time to convert a 32 × 32 array); an elaborated PE gets
    them assigned."""
    members = proto.signature.members if module is not None else None
    pes = []
    for i in range(rows):
        pes.append([])
        for j in range(cols):
            given = inputs(i, j, pes) if inputs else {}
            if module is None:
                pe = make()
                m.d.comb += [getattr(pe, name).eq(v) for name, v in given.items()]
            else:
                ports = {name: Signal(member.shape, name=f"pe_{i}_{j}_{name}")
                         if name not in given else C(given[name], member.shape)
                         if isinstance(given[name], int) else given[name]
                         for name, member in members.items()}
                m.submodules[f"pe_{i}_{j}"] = Instance(
                    module, ("i", "clk", ClockSignal()), ("i", "rst", ResetSignal()),
                    *(("i" if member.flow == In else "o", name, ports[name])
                      for name, member in members.items()))
                pe = SimpleNamespace(**ports)
            if module is None:
                m.submodules[f"pe_{i}_{j}"] = pe
            pes[i].append(pe)
    return pes


class SystolicArray(wiring.Component):
    def __init__(self, *, rows: int, cols: int, act_shape, weight_shape, acc_bits: int,
                 stages: int = 0, preload: str = "down", banks: int = 1,
                 pe_module: str | None = None):
        if preload not in ("down", "right"):
            raise ValueError(f"preload must be 'down' or 'right', not {preload!r}")
        self.preload = preload
        for name, v in (("rows", rows), ("cols", cols)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self.rows, self.cols = rows, cols
        self.act_shape, self.weight_shape = Shape.cast(act_shape), Shape.cast(weight_shape)
        self.acc_bits = acc_bits
        self.stages, self.banks = stages, banks
        self.pe_module = pe_module
        self.pe = self.make_pe() if pe_module else None   # the PE the module is emitted from
        self.latency = self.latency_of(rows, cols, stages)
        super().__init__(self.ports(rows=rows, cols=cols, act_shape=act_shape,
                                    weight_shape=weight_shape, acc_bits=acc_bits,
                                    preload=preload, banks=banks))

    @staticmethod
    def ports(*, rows, cols, act_shape, weight_shape, acc_bits, preload="down", banks=1, **_):
        """The array's ports (see :func:`array_signature`)."""
        ports = {
            "a": In(data.ArrayLayout(act_shape, rows)),
            "w": In(data.ArrayLayout(weight_shape, cols if preload == "down" else rows)),
            "w_shift": In(1),
            "y": Out(data.ArrayLayout(signed(acc_bits), cols)),
        }
        if banks == 2:   # double-buffered weights (see MacPE): sel_next is the bank bit of the
            ports |= {"sel_next": In(1)}   # vector presented at `a` in the next cycle
        return ports

    @staticmethod
    def latency_of(rows: int, cols: int, stages: int = 0) -> int:
        """Cycles from an input vector at ``a`` to its dot products at ``y``."""
        return rows + cols - 1 + stages

    def make_pe(self):
        """One of this array's PEs."""
        return MacPE(act_shape=self.act_shape, weight_shape=self.weight_shape,
                     acc_bits=self.acc_bits, stages=self.stages, banks=self.banks)

    def elaborate(self, platform):
        m = Module()

        def inputs(i, j, pes):
            ins = {"w_shift": self.w_shift,
                   "a_in": delay(m, self.a[i], i, f"skew{i}") if j == 0 else pes[i][j - 1].a_out,
                   "psum_in": 0 if i == 0 else pes[i - 1][j].psum_out}
            if self.banks == 2:
                ins["sel_next"] = (delay(m, self.sel_next, i, f"sel_skew{i}") if j == 0
                                   else pes[i][j - 1].sel_out)
            if self.preload == "down":
                ins["w_in"] = self.w[j] if i == 0 else pes[i - 1][j].w_out
            else:
                ins["w_in"] = self.w[i] if j == 0 else pes[i][j - 1].w_out
            return ins

        pes = _pe_grid(m, self.make_pe, self.rows, self.cols, self.pe_module, self.pe, inputs)
        for j in range(self.cols):
            bottom = pes[self.rows - 1][j].psum_out
            m.d.comb += self.y[j].eq(delay(m, bottom, self.cols - 1 - j, f"deskew{j}"))
        return m


class OutputStationaryArray(wiring.Component):
    """Output-stationary systolic array. Row ``i`` owns output pixel ``i`` of the block, column
    ``j`` output channel ``j``; PE (i, j) accumulates ``a[i] * b[j]`` in place over time. ``a``
    enters at the left (row ``i`` skewed by ``i`` cycles) and moves right, ``b`` enters at the top
    (column ``j`` skewed by ``j``) and moves down, so PE (i, j) sees the pair presented together at
    cycle ``t`` at ``t + i + j``; its accumulator includes it from ``t + latency`` on (``latency =
    rows + cols - 1 + stages``), for every PE.

    ``drain``: each accumulator takes the one above it (row 0 takes zero), so ``y`` (the bottom
    row) presents pixel ``rows - 1``, then ``rows - 2``, ... and after ``rows`` drain cycles every
    accumulator is zero again. The inputs must be zero while draining and while idle."""

    def __init__(self, *, rows: int, cols: int, act_shape, weight_shape, acc_bits: int,
                 stages: int = 0, pe_module: str | None = None):
        self.rows, self.cols = rows, cols
        self.act_shape, self.weight_shape = Shape.cast(act_shape), Shape.cast(weight_shape)
        self.acc_bits, self.stages = acc_bits, stages
        self.pe_module = pe_module
        self.pe = self.make_pe() if pe_module else None
        self.latency = SystolicArray.latency_of(rows, cols, stages)
        super().__init__(self.ports(rows=rows, cols=cols, act_shape=act_shape,
                                    weight_shape=weight_shape, acc_bits=acc_bits))

    @staticmethod
    def ports(*, rows, cols, act_shape, weight_shape, acc_bits, **_):
        """The array's ports (see :func:`array_signature`)."""
        return {
            "a": In(data.ArrayLayout(act_shape, rows)),
            "b": In(data.ArrayLayout(weight_shape, cols)),
            "drain": In(1),
            "y": Out(data.ArrayLayout(signed(acc_bits), cols)),
        }

    def make_pe(self):
        """One of this array's PEs."""
        return OsPE(act_shape=self.act_shape, weight_shape=self.weight_shape,
                    acc_bits=self.acc_bits, stages=self.stages)

    def elaborate(self, platform):
        m = Module()

        def inputs(i, j, pes):
            return {"drain": self.drain,
                    "a_in": delay(m, self.a[i], i, f"skew{i}") if j == 0 else pes[i][j - 1].a_out,
                    "b_in": delay(m, self.b[j], j, f"bskew{j}") if i == 0 else pes[i - 1][j].b_out,
                    "acc_in": 0 if i == 0 else pes[i - 1][j].acc}

        pes = _pe_grid(m, self.make_pe, self.rows, self.cols, self.pe_module, self.pe, inputs)
        for j in range(self.cols):
            m.d.comb += self.y[j].eq(pes[self.rows - 1][j].acc)
        return m


class AdderTreeArray(wiring.Component):
    """No-local-reuse array: every cycle PE (i, j) multiplies ``a[i]`` (multicast along row ``i``)
    by its own weight ``w[i*cols + j]`` (unicast from the buffer; nothing is held between
    cycles), and an adder tree per column reduces the ``rows`` products. ``y`` presents the column
    sums of the operands given at cycle ``t`` at ``t + latency``: an input register, ``stages``
    multiplier registers and a register after each of the tree's ``levels``."""

    def __init__(self, *, rows: int, cols: int, act_shape, weight_shape, acc_bits: int,
                 stages: int = 0, pe_module: str | None = None):
        self.rows, self.cols = rows, cols
        self.act_shape, self.weight_shape = Shape.cast(act_shape), Shape.cast(weight_shape)
        self.acc_bits, self.stages = acc_bits, stages
        self.pe = None      # no PE grid: ``pe_module`` has nothing to name
        self.levels = max(1, (rows - 1).bit_length())
        self.latency = 1 + stages + self.levels
        super().__init__(self.ports(rows=rows, cols=cols, act_shape=act_shape,
                                    weight_shape=weight_shape, acc_bits=acc_bits))

    @staticmethod
    def ports(*, rows, cols, act_shape, weight_shape, acc_bits, **_):
        """The array's ports (see :func:`array_signature`)."""
        return {
            "a": In(data.ArrayLayout(act_shape, rows)),
            "w": In(data.ArrayLayout(weight_shape, rows * cols)),
            "y": Out(data.ArrayLayout(signed(acc_bits), cols)),
        }

    def elaborate(self, platform):
        m = Module()
        acc = signed(self.acc_bits)
        a = Signal.like(self.a)
        w = Signal.like(self.w)
        m.d.sync += [a.eq(self.a), w.eq(self.w)]
        for j in range(self.cols):
            terms = []
            for i in range(self.rows):
                terms.append(pipelined_product(m, a[i], w[i * self.cols + j], self.stages,
                                               f"x{i}_{j}"))
            for lv in range(self.levels):
                nxt = []
                for t in range(0, len(terms), 2):
                    s = Signal(acc, name=f"t{lv}_{t // 2}_{j}")
                    m.d.sync += s.eq(terms[t] + terms[t + 1] if t + 1 < len(terms)
                                     else terms[t])
                    nxt.append(s)
                terms = nxt
            assert len(terms) == 1
            m.d.comb += self.y[j].eq(terms[0])
        return m


class RowStationaryArray(wiring.Component):
    """Row-stationary array (Eyeriss v1): ``rows`` × ``cols`` :class:`~hw.pe.RsPE`\\ s.

    Run-time configuration (``cfg_*``, from the COMPUTE command, held while it runs): with ``R =
    cfg_r`` filter rows, PE row ``i`` handles filter row ``r_i = i % R`` of input lane ``c_i =
    cfg_lane + i // R`` (logical R × P PE sets replicated down the rows over channels); column
    ``j`` handles output row ``j`` (``cfg_p`` columns are active). These per-row and per-column
    *tags* are register chains down the rows and across the columns, valid
    ``max(rows, cols) + 1`` cycles after the configuration changes (the ID registers Eyeriss
    loads by scan chain).

    * Filter fill: ``fw_data`` lane ``i`` is multicast to every PE of row ``i`` (filter-row
      reuse along the row).
    * Ifmap fill: the bus carries one input word (lanes = channels) of input row ``iw_y``; PE
      (i, j) takes lane ``c_i`` when ``iw_y == j*cfg_u + r_i*cfg_d``, its ifmap row: one row
      reaches every PE on a diagonal (ifmap-row reuse along the diagonals), as Eyeriss' GIN
      matches a row/column ID against the bus tag.
    * Compute: ``ctl`` enters row 0 and moves down one row per cycle, every PE of a row taking the
      same step. Psum rows are summed down the columns: ``y[j]`` presents output row ``j``'s
      sum over all rows ``latency = rows + 1 + stages`` cycles after a ``last`` step entered."""

    def __init__(self, *, rows: int, cols: int, act_shape, weight_shape, acc_bits: int,
                 stages: int, filter_spad: int, ifmap_spad: int, psum_spad: int,
                 pe_module: str | None = None):
        self.rows, self.cols = rows, cols
        self.act_shape, self.weight_shape = Shape.cast(act_shape), Shape.cast(weight_shape)
        self.acc_bits, self.stages = acc_bits, stages
        self.pe_module = pe_module
        self.depths = (filter_spad, ifmap_spad, psum_spad)
        self.pe = self.make_pe() if pe_module else None
        self.latency = rows + 1 + stages
        super().__init__(self.ports(rows=rows, cols=cols, act_shape=act_shape,
                                    weight_shape=weight_shape, acc_bits=acc_bits,
                                    filter_spad=filter_spad, ifmap_spad=ifmap_spad,
                                    psum_spad=psum_spad))

    @staticmethod
    def ports(*, rows, cols, act_shape, weight_shape, acc_bits, filter_spad, ifmap_spad,
              psum_spad, **_):
        """The array's ports (see :func:`array_signature`)."""
        return {
            "cfg_r": In(8), "cfg_d": In(4), "cfg_u": In(4), "cfg_lane": In(7), "cfg_p": In(16),
            "fw_en": In(1), "fw_addr": In(range(filter_spad)),
            "fw_data": In(data.ArrayLayout(weight_shape, rows)),
            "iw_en": In(1), "iw_addr": In(range(ifmap_spad)), "iw_y": In(16),
            "iw_data": In(data.ArrayLayout(act_shape, rows)),
            "ctl": In(rs_control_layout(filter_spad, ifmap_spad, psum_spad)),
            "y": Out(data.ArrayLayout(signed(acc_bits), cols)),
        }

    def make_pe(self):
        """One of this array's PEs."""
        fdepth, idepth, pdepth = self.depths
        return RsPE(act_shape=self.act_shape, weight_shape=self.weight_shape,
                    acc_bits=self.acc_bits, stages=self.stages, filter_spad=fdepth,
                    ifmap_spad=idepth, psum_spad=pdepth)

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.rows, self.cols
        pes = _pe_grid(m, self.make_pe, rows, cols, self.pe_module, self.pe)
        # tags: per row (filter row, lane, row offset r*D), per column (output row offset j*U)
        r_tag = [Signal(8, name=f"r_tag{i}") for i in range(rows)]
        c_tag = [Signal(8, name=f"c_tag{i}") for i in range(rows)]
        y_tag = [Signal(16, name=f"y_tag{i}") for i in range(rows)]
        j_tag = [Signal(16, name=f"j_tag{j}") for j in range(cols)]
        m.d.sync += [r_tag[0].eq(0), c_tag[0].eq(self.cfg_lane), y_tag[0].eq(0), j_tag[0].eq(0)]
        for i in range(1, rows):
            wrap = r_tag[i - 1] + 1 == self.cfg_r
            m.d.sync += [r_tag[i].eq(Mux(wrap, 0, r_tag[i - 1] + 1)),
                         c_tag[i].eq(c_tag[i - 1] + wrap),
                         y_tag[i].eq(Mux(wrap, 0, y_tag[i - 1] + self.cfg_d))]
        for j in range(1, cols):
            m.d.sync += j_tag[j].eq(j_tag[j - 1] + self.cfg_u)
        ctl = self.ctl
        for i in range(rows):
            lane = Signal(self.act_shape, name=f"lane{i}")     # this row's channel of the bus
            with m.Switch(c_tag[i]):
                for c in range(rows):
                    with m.Case(c):
                        m.d.comb += lane.eq(self.iw_data[c])
                with m.Default():
                    m.d.comb += lane.eq(0)
            dy = Signal(unsigned(16), name=f"dy{i}")             # iw_y - r_i*D: the column offset
            m.d.comb += dy.eq(self.iw_y - y_tag[i])
            for j in range(cols):
                pe = pes[i][j]
                m.d.comb += [
                    pe.fw_en.eq(self.fw_en), pe.fw_addr.eq(self.fw_addr),
                    pe.fw_data.eq(self.fw_data[i]),
                    pe.iw_en.eq(self.iw_en & (dy == j_tag[j])), pe.iw_addr.eq(self.iw_addr),
                    pe.iw_data.eq(lane),
                    pe.ctl.eq(ctl), pe.active.eq(j < self.cfg_p),
                    pe.down_in.eq(0 if i == 0 else pes[i - 1][j].down_out),
                ]
            if i + 1 < rows:       # the row below takes this step a cycle later
                nxt = Signal.like(ctl, name=f"ctl{i + 1}")
                m.d.sync += nxt.eq(ctl)
                ctl = nxt
        for j in range(cols):
            m.d.comb += self.y[j].eq(pes[rows - 1][j].down_out)
        return m


def _array_args(spec):
    """The array class of ``spec``'s engine and its arguments."""
    act = signed(spec.act_bits) if spec.act_signed else Shape(spec.act_bits)
    wgt = signed(spec.weight_bits) if spec.weight_signed else Shape(spec.weight_bits)
    kw = dict(rows=spec.rows, cols=spec.cols, acc_bits=spec.acc_bits, stages=spec.mult_stages)
    return spec.flow.array(spec, act, wgt, **kw)   # the engine's (gen/engines/)


def array_signature(spec) -> wiring.Signature:
    """The ports of ``spec``'s array as its driver sees them (operands out, sums ``y`` in): the
    array's own signature, flipped, declared once here and connected with ``wiring.connect``."""
    cls, kw = _array_args(spec)
    return wiring.Signature(cls.ports(**kw)).flip()


def array_for(spec, *, pe_module: str | None = None):
    """The PE array of ``spec``'s engine (its ``latency`` equals ``spec.array_latency``).

    ``pe_module``: instantiate the PEs as that Verilog module (see ``_pe_grid``; the caller emits
    ``array.pe`` under that name; ``array.pe`` is None for an array without a PE grid)."""
    cls, kw = _array_args(spec)
    arr = cls(**kw, pe_module=pe_module)
    assert arr.latency == spec.array_latency, (arr.latency, spec.array_latency)
    return arr
