"""What every engine's executor shares: its ports, the COMPUTE it runs, and the token it issues.

An executor (ports: :class:`ExecutorSignature`) takes one COMPUTE at a time from ``compute`` (the
front end's one-deep queue, a stream) in ``XIDLE`` and sequences it on the engine's array: it reads
the input and weight buffers (``ibuf_rd``, ``wbuf_rd``), drives the array's operand ports and
issues a token for each output word (``token``, hw/writeback.py). ``idle``: in ``XIDLE`` with its
last results written. ``activity`` tells the counters what the datapath does each cycle.

The array's ports are ``array`` (hw/array.py :func:`~hw.array.array_signature`: operands
out, sums ``y`` in, which the write-back takes). A subclass gives the engine's datapath
(:meth:`datapath`, around the buffers and the array) and its states (:meth:`states`), starting
at :attr:`first_state`; :class:`Core` holds the registers they share.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from gen.engines import Engine
from gen.spec import Spec

from .. import footprint as fp
from ..array import array_signature
from ..buffer import ReadSignature, addr_bits
from ..interfaces import PTR, ActivitySignature, ComputeLayout, HeaderLayout, TokenSignature
from ..walker import PixelWalker

__all__ = ["Executor", "ExecutorSignature", "Core"]


class ExecutorSignature(wiring.Signature):
    """The ports every engine's executor has (from the executor's side)."""

    def __init__(self, spec: Spec):
        ia, wa = addr_bits(spec.input_depth), addr_bits(spec.weight_depth)
        super().__init__({
            "compute": In(stream.Signature(ComputeLayout)),
            "ibuf_rd": Out(ReadSignature(ia, spec.input_word_bits)),
            "wbuf_rd": Out(ReadSignature(wa, spec.weight_word_bits)),
            "token": Out(TokenSignature()),
            "activity": Out(ActivitySignature()),
            "idle": Out(1),
            "array": Out(array_signature(spec)),
        })


class Core:
    """The registers and strobes an executor's states share. ``issue``: a vector is read this
    cycle and enters the array ``RL`` cycles later; ``x_issue``: a stationary-operand word is
    read; ``tok_*``: the token issued this cycle."""

    def __init__(self, m, exe):
        spec = exe.spec
        self.xcmd = Signal(HeaderLayout)       # the running COMPUTE
        self.opix = Signal(PTR)                # output address of the next token
        self.lin = Signal(17)                  # linear counter (weight words, output words)
        self.lin_last = Signal(17)
        self.drain = Signal(range(max(spec.array_latency, spec.rows) + spec.buffer_latency + 3))
        self.settle = Signal(range(spec.array_latency + spec.buffer_latency + 4))
        self.issue, self.x_issue = Signal(), Signal()
        self.tok_valid, self.tok_last = Signal(), Signal()
        self.tok_addr, self.tok_chan = Signal(16), Signal(16)
        self.walker = None
        if exe.uses_walker:
            m.submodules.walker = self.walker = PixelWalker(checks=exe.checks)


class Executor(wiring.Component):
    """Subclasses set ``engine``, ``first_state`` and (when the walker is not theirs to drive)
    ``uses_walker = False``; ``whole``: one token per output word of the whole filter window,
    so its first pass is the COMPUTE's (not the first tap's)."""

    engine: Engine
    first_state: str
    uses_walker = True
    whole = False

    def __init__(self, spec: Spec, *, checks: bool = False):
        if spec.engine != self.engine:
            raise ValueError(f"{type(self).__name__} runs engine '{self.engine}', "
                             f"not '{spec.engine}'")
        self.spec, self.checks = spec, checks
        super().__init__(ExecutorSignature(spec))

    @property
    def token_delay(self) -> int:
        """Cycles from a vector entering the array to its sums leaving it, which the tokens
        wait for (hw/writeback.py)."""
        return self.spec.array_latency

    @classmethod
    def compute_ok(cls, h):
        """Whether COMPUTE header ``h`` (a :data:`~hw.interfaces.HeaderLayout` view) is a tile the
        engine can run; the front end refuses one that is not (gen/isa.py Cause.FIELD)."""
        return (h.p != 0) & (h.q != 0) & (h.r != 0) & (h.s != 0)

    #: the footprint's weight words per filter tap (``"rows"``, ``1`` or ``"count"``) and output
    #: words (``"pq"`` or ``"count"``), as the engine's gen/engines ``footprint`` has them
    tap_words: str | int = "rows"
    output_words = "pq"

    @classmethod
    def footprint_hi(cls, spec, h):
        """The highest word a COMPUTE with header ``h`` may touch in each buffer, at full width
        (gen/engines ``footprint``): what :meth:`footprint_past` decides is checked against it."""
        ihi = (h.addr + (h.p - 1) * h.row_step + (h.r - 1) * h.dil_step + (h.q - 1) * h.stride
               + (h.s - 1) * h.dilation)
        tw = {"rows": spec.rows, 1: 1, "count": h.count}[cls.tap_words]
        on = h.p * h.q if cls.output_words == "pq" else h.count
        return {"ibuf": ihi, "wbuf": h.waddr + h.r * h.s * tw - 1, "obuf": h.oaddr + on - 1}

    @classmethod
    def footprint_past(cls, spec, hb):
        """Whether the COMPUTE arriving on the front end's input (``hb``, a
        :class:`~hw.header.HeaderBeats`) reaches past a buffer, as a value at its last beat
        built from registers latched as its earlier beats arrived (hw/footprint.py)."""
        room = fp.rooms(spec, hb)
        past = fp.ibuf_past(spec, hb)
        if cls.tap_words == "count":
            past |= fp.count_past(hb, room["wbuf"], fp.taps(hb))
        else:
            past |= fp.wbuf_past_taps(spec, hb, spec.rows if cls.tap_words == "rows" else 1)
        if cls.output_words == "count":
            past |= fp.count_past(hb, room["obuf"])
        else:
            past |= fp.obuf_past_pq(spec, hb)
        return past

    def datapath(self, m, x: Core):
        raise NotImplementedError

    def states(self, m, x: Core):
        raise NotImplementedError

    def wstep(self, c):
        """Weight words per filter tap of the COMPUTE ``c`` (its header) for the walker."""
        raise NotImplementedError

    def take(self, m, x: Core):
        """Start the queued COMPUTE: latch it and set the walkers on it."""
        q = self.compute.payload
        m.d.comb += self.compute.ready.eq(1)
        m.d.sync += [x.xcmd.eq(q.cmd), x.opix.eq(q.cmd.oaddr)]
        if x.walker is not None:
            m.d.comb += [x.walker.start.eq(1), x.walker.cmd.eq(q),
                         x.walker.wstep.eq(self.wstep(q.cmd))]
        self.taking(m, x, q)

    def taking(self, m, x: Core, q):
        """Engine-specific registers set as COMPUTE ``q`` (a :data:`ComputeLayout`) starts."""

    def on_start(self, m, x: Core):
        """In ``XIDLE`` as a COMPUTE starts (``m.next`` is ``first_state``)."""

    def drain_state(self, m, x: Core, *, once: bool):
        """``DRAIN``: wait for the last sums; then the next tap (``once``: the COMPUTE)."""
        with m.State("DRAIN"):
            m.d.sync += x.drain.eq(x.drain - 1)
            with m.If(x.drain == 0):
                if once:
                    m.next = "XIDLE"
                else:
                    with m.If(x.walker.ri == x.xcmd.r):
                        m.next = "XIDLE"
                    with m.Else():
                        m.next = self.first_state

    def elaborate(self, platform):
        m = Module()
        x = Core(m, self)
        m.d.comb += [self.token.valid.eq(x.tok_valid), self.token.last.eq(x.tok_last),
                     self.token.addr.eq(x.tok_addr), self.token.chan.eq(x.tok_chan),
                     self.token.bias.eq(x.xcmd.bias), self.activity.issue.eq(x.issue)]
        if self.whole:
            m.d.comb += self.token.first.eq(~x.xcmd.accumulate)
        else:
            m.d.comb += self.token.first.eq(x.walker.first_tap & ~x.xcmd.accumulate)
        self.datapath(m, x)
        with m.If(x.settle != 0):
            m.d.sync += x.settle.eq(x.settle - 1)
        with m.FSM(name="exec") as fsm:
            with m.State("XIDLE"):
                with m.If(self.compute.valid):
                    self.take(m, x)
                    m.next = self.first_state
                    self.on_start(m, x)
            self.states(m, x)
        m.d.comb += self.idle.eq(fsm.ongoing("XIDLE") & (x.settle == 0))
        return m
