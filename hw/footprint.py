"""Whether a COMPUTE's footprint runs past a buffer, decided as its header arrives.

The ISA machine (sim/isa_model.py ``check_command``) refuses a COMPUTE that may touch a buffer
word at or past the buffer's depth (gen/isa.py Cause.ADDRESS; each engine's footprint is
``gen.engines.<engine>.footprint``: sums of products of header fields). The front end registers
the decision as the header's last word arrives, like every dispatch decision, so the sums are
built while the words arrive (hw/header.py :class:`~hw.header.HeaderBeats`): each product comes
from a multiplier with registered operands and product, copied to a fabric register
(``product``: a register three beats after its factors arrive; gen/isa.py puts every factor in
words 0 to 2), each later beat adds one carry chain (three terms through a carry-save layer,
:func:`sum3`), and the last beat compares registers, or a field of the last word with a
register.

The multipliers take the header's fields as they are (a ``- 1`` before a multiplier's input
register would sit in the route to it): ``(p-1)*row_step`` is ``p*row_step - row_step``, and the
subtrahends join the constant side. Beat by beat (a value latched at beat ``b`` is a register
from beat ``b + 1`` on):

====  ======================================================================================
0     the multipliers take ``s`` and ``dilation``, ``r`` and ``s``; ``stride + dilation``
1     ``r`` and ``dil_step`` (rs: ``fill_h`` and ``row_step``); ``row_step + dil_step``
2     ``p`` and ``row_step``, ``q`` and ``stride``, ``p`` and ``q``; the constant side
3     the rooms ``... - addr`` and ``depth - waddr``
4     the room ``depth - oaddr``; ``r*dil_step + s*dilation`` less the input room;
      whether the weight words exceed their room
5     (last) ``p*row_step + q*stride`` plus that, against zero; the other comparisons; into
      the front end's ``d_past``
====  ======================================================================================

A product at ``2**SAT_BITS`` or more is past any buffer (hw/header.py ``SAT_BITS``). A zero
``p``, ``q``, ``r`` or ``s`` gives a wrong answer here; the front end refuses such a COMPUTE for
its field first (gen/isa.py Cause.FIELD).

The input-stationary and row-stationary footprints multiply by ``count``, which arrives in the
last word: those products are still combinational in the last beat's cycle (not measured on an
FPGA; the ECP5 figures in README are weight-stationary's).

Each engine's executor (hw/engines) composes these pieces in ``footprint_past`` and states the
same footprint at full width in ``footprint_hi``, which the front end asserts its registered
decision against (``checks``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Signal, signed, unsigned

from .header import LAST, SAT_BITS, HeaderBeats

__all__ = ["rooms", "taps", "sum3", "ibuf_past", "wbuf_past_taps", "obuf_past_pq", "rs_ibuf_past"]


def rooms(spec, hb: HeaderBeats) -> dict:
    """The weight and output buffers' rooms from the COMPUTE's bases, ``depth - base`` (negative
    past the end): registers from beat 4 (``wbuf``: ``waddr`` arrives in word 3) and beat 5
    (``obuf``: ``oaddr``, word 4). Built once per front end (kept on ``hb``)."""
    if not hasattr(hb, "rooms"):
        f, room = hb.field, signed(18)
        hb.rooms = {"wbuf": hb.latch(spec.weight_depth - f("waddr", 3), 3, room, "rw"),
                    "obuf": hb.latch(spec.output_depth - f("oaddr", 4), 4, room, "ro")}
    return hb.rooms


def taps(hb: HeaderBeats, dsp: bool = False):
    """``r * s``, a register from beat 3 (``dsp``: the multiplier's output register, from beat
    2, to feed another multiplier; built once per front end)."""
    if not hasattr(hb, "taps"):
        hb.taps = hb.product(hb.field("r", 0), hb.field("s", 0), 0, (8, 8), "rs", both=True)
    return hb.taps[0 if dsp else 1]


def sum3(m, terms, width: int, name: str, carry_in: int = 0):
    """The low ``width`` bits of the sum of three two's complement ``terms`` and ``carry_in``
    (0 or 1), as one carry chain after a carry-save layer (a LUT per bit and output)."""
    x = [Signal(signed(width), name=f"{name}_t{i}") for i in range(3)]
    m.d.comb += [xi.eq(t) for xi, t in zip(x, terms, strict=True)]
    s = (x[0] ^ x[1] ^ x[2]).as_unsigned()
    c = ((x[0] & x[1]) | (x[0] & x[2]) | (x[1] & x[2])).as_unsigned()
    return (s + Cat(Const(carry_in, 1), c[:width - 1]))[:width]


def ibuf_past(spec, hb: HeaderBeats):
    """At the last beat: ``addr + (p-1)*row_step + (r-1)*dil_step + (q-1)*stride +
    (s-1)*dilation >= input_depth`` (the input footprint's highest word, gen/engines/base.py),
    as ``p*row_step + q*stride + t + 1 >= 0`` with ``t = r*dil_step + s*dilation - room - 1``
    and ``room = depth + row_step + dil_step + stride + dilation - addr``; ``t`` is
    ``r*dil_step + s*dilation + ~room``, three terms latched at beat 4 through :func:`sum3`,
    and the last beat's sum has three terms too (``p*row_step`` or ``q*stride`` at
    ``2**SAT_BITS`` or more is past any buffer: only their low bits are added)."""
    f = hb.field
    sd = hb.product(f("s", 0), f("dilation", 0), 0, (8, 4), "sd")          # from beat 3
    rd = hb.product(f("r", 1), f("dil_step", 1), 1, (8, 16), "rd")         # from beat 4
    pr = hb.product(f("p", 2), f("row_step", 2), 2, (16, 16), "pr")        # from beat 5
    qs = hb.product(f("q", 2), f("stride", 2), 2, (16, 4), "qs")           # from beat 5
    c0 = hb.latch(f("stride", 0) + f("dilation", 0), 0, unsigned(5), "fc")
    c1 = hb.latch(c0 + spec.input_depth, 1, unsigned(18), "fc")
    c2 = hb.latch(f("row_step", 1) + f("dil_step", 1), 1, unsigned(17), "fc")
    c3 = hb.latch(c1 + c2, 2, unsigned(19), "fc")
    room = hb.latch(c3 - f("addr", 3), 3, signed(20), "fi")
    tw = 26                                  # rd < 2**24, sd < 2**12, room: signed 20 bits
    t = hb.latch(sum3(hb.m, [rd, sd, ~room], tw, "fa"), 4, signed(tw), "fi")
    rows = sum3(hb.m, [pr[:SAT_BITS], qs[:SAT_BITS], t], tw + 1, "fb", carry_in=1)
    return pr[SAT_BITS:].any() | qs[SAT_BITS:].any() | ~rows[-1]


def wbuf_past_taps(spec, hb: HeaderBeats, tap_words: int):
    """``waddr + r*s*tap_words > weight_depth``: a register from beat 5 (a power of two
    ``tap_words``: a shift), or a compare of registers at the last beat (a product)."""
    if tap_words & (tap_words - 1) == 0:        # a power of two: a shift
        words = taps(hb) << (tap_words.bit_length() - 1)
        return hb.latch(words > rooms(spec, hb)["wbuf"], 4, unsigned(1), "fw")
    words = hb.product(taps(hb, dsp=True), tap_words, 2, (16, tap_words.bit_length()), "wn")
    return words > rooms(spec, hb)["wbuf"]                                   # from beat 5


def obuf_past_pq(spec, hb: HeaderBeats):
    """At the last beat: ``oaddr + p*q > output_depth``."""
    f = hb.field
    pq = hb.product(f("p", 2), f("q", 2), 2, (16, 16), "pq")               # from beat 5
    return pq[SAT_BITS:].any() | (pq[:SAT_BITS] > rooms(spec, hb)["obuf"])


def count_past(hb: HeaderBeats, room, factor=None):
    """At the last beat: ``count * factor > room`` (``count`` alone without a factor; a
    product here is combinational in the last beat's cycle)."""
    count = hb.field("count", LAST)
    return (count if factor is None else count * factor) > room


def rs_ibuf_past(spec, hb: HeaderBeats):
    """Row-stationary, at the last beat: ``addr + (fill_h-1)*row_step + fill_w - 1 >=
    input_depth``, as ``fill_w > depth + row_step - addr - fill_h*row_step``."""
    f = hb.field
    fr = hb.product(f("fill_h", 1), f("row_step", 1), 1, (16, 16), "fh")     # from beat 4
    big = hb.latch(fr[SAT_BITS:].any(), 4, unsigned(1), "fhb")
    room = hb.latch(spec.input_depth + f("row_step", 1), 1, unsigned(18), "fhr")
    room = hb.latch(room - f("addr", 3), 3, signed(19), "fhr")
    room = hb.latch(room - fr[:SAT_BITS], 4, signed(21), "fhr")
    return big | (f("fill_w", LAST) > room)
