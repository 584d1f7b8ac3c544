"""Where the controller's units meet (hw/controller.py): layouts and signatures declared once.

::

    s_axis ─> FrontEnd ─compute─> Executor ─token─> WriteBack ─> obuf (rd, wr)
                 │  (stream, one deep)  │ └─ ops ─> array ─ y ─┘
                 ├─store─> StoreUnit ─> m_axis                (rd2)
                 └─bias_wr / quant_wr / add_wr (LOAD_BIAS, LOAD_QUANT, LOAD_ADD payload beats)
    Counters <── events of every unit

* ``compute`` is an :class:`amaranth.lib.stream` of :data:`ComputeLayout`: the queued COMPUTE's
  header and facts about it registered as it is queued (so the executor's first decisions start
  from flip-flops), held in the front end's one-deep queue until the executor takes it.
* ``store`` is a stream of :data:`StoreRequest` (:func:`store_request`: with the residual unit,
  also the word's residual beat): one output-buffer read per transfer; the store unit accepts
  while it holds a credit for a free place in its output FIFO.
* ``token`` (:class:`TokenSignature`) travels beside each vector the executor issues, naming the
  output word its sums go to (hw/writeback.py).
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from gen.isa import HEADER_FIELDS, HEADER_WORDS

__all__ = ["PTR", "HeaderLayout", "ComputeLayout", "StoreRequest", "store_request",
           "TokenSignature", "ActivitySignature"]

#: pointer register width: above every 16-bit address plus one increment
PTR = 24

#: a command header (gen/isa.py HEADER_FIELDS), as the front end collects it
HeaderLayout = data.FlexibleLayout(32 * HEADER_WORDS, {
    name: data.Field(unsigned(width), offset) for name, (offset, width) in HEADER_FIELDS.items()
})

#: tile bounds compared with a constant (p, q, r, s == 1, or == 2)
_Bounds = data.StructLayout({"p": 1, "q": 1, "r": 1, "s": 1})

#: a queued COMPUTE: its header, its bounds compared with 1 and 2, and the address of its first
#: tap's last weight word (``waddr + rows - 1``: weight-stationary loads bottom row first)
ComputeLayout = data.StructLayout({"cmd": HeaderLayout, "one": _Bounds, "two": _Bounds,
                                   "wbot": PTR})

#: one STORE beat: the output word's address and its index within the STORE (the per-word
#: requantisation parameters' address), the STORE's last beat, and the STORE's options and
#: requantisation fields; a pooling STORE's window's first word (``first``) and last (``emit``:
#: the word completes a window, whose maximum leaves; every word of a STORE without pooling),
#: and whether the STORE pools (its words take the pooling stage's register)
StoreRequest = data.StructLayout({
    "addr": 16, "idx": 17, "last": 1, "requant": 1, "relu": 1, "first": 1, "emit": 1, "pool": 1,
    # requant: the STORE header's zero point and clamp range (17-bit two's complement)
    **{name: signed(HEADER_FIELDS[name][1]) for name in ("zero_point", "qmin", "qmax")},
})


def store_request(spec) -> data.StructLayout:
    """:data:`StoreRequest`, and on a spec with the residual unit the STORE's ``add`` options
    (``add``, ``add_swap``, ``res_unsigned``) and the word's residual (``res``: the STORE
    payload beat that arrived with the read, ``cols`` lanes of ``out_bits``)."""
    if not spec.residual:
        return StoreRequest
    return data.StructLayout({**StoreRequest.members, "add": 1, "add_swap": 1,
                              "res_unsigned": 1, "res": spec.cols * spec.out_bits})


class TokenSignature(wiring.Signature):
    """An output word's token, from the executor's side: the vector issued this cycle (or the
    output-stationary drain step) produces output word ``addr`` (``chan``: its output channel,
    for per-word bias); ``first``: the first pass (start from zero or the bias, do not read the
    old word); ``bias``: start from the bias; ``last``: the COMPUTE's last output word."""

    def __init__(self):
        super().__init__({"valid": Out(1), "last": Out(1), "addr": Out(16), "first": Out(1),
                          "bias": Out(1), "chan": Out(16)})


class ActivitySignature(wiring.Signature):
    """What the executor's datapath does this cycle, for the counters (hw/counters.py):
    ``issue``: every PE works (a vector is read); ``fills``: words written into every PE's
    register file besides; ``moves``: operand transfers into every PE besides the issued one's."""

    def __init__(self):
        super().__init__({"issue": Out(1), "fills": Out(2), "moves": Out(2)})
