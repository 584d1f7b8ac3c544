"""The command header as it arrives, beat by beat, for decisions the front end must have at the
header's last beat.

The front end decides everything a dispatch needs as a header's last word arrives and registers
it, so dispatch and refusal start from flip-flops (hw/frontend.py). Some facts need more than
that one cycle (an add and a compare took 6.7 ns on ECP5): :class:`HeaderBeats` gives each
header field as beat ``b`` arrives (from the beat itself or from the shift register holding the
earlier words) and registers a value as beat ``b`` arrives, so the work spreads over the beats
(they arrive at least a cycle apart): a value latched at beat ``b`` is a register from beat
``b + 1`` on. The front end's first use: whether a LOAD or STORE runs past its buffer, its
``count`` compared at the last beat with the room (``depth - base``) latched at beat 4; its
second, whether a COMPUTE's footprint does (hw/footprint.py), with products of fields from
:meth:`HeaderBeats.product`: a multiplier whose operands and product are plain registers (no
enable, no reset), which fpga/absorb.py folds into an ECP5 ``MULT18X18D``'s own input and output
registers (a multiplier's combinational path between fabric registers took 12.8 ns there), and
then a copy of the product in a fabric register, so no logic follows the route from the DSP.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Signal, Value

from gen.isa import HEADER_FIELDS, HEADER_WORDS

__all__ = ["HeaderBeats", "LAST", "SAT_BITS"]

#: the header's last beat: what is decided as it arrives is registered for DISP
LAST = HEADER_WORDS - 1
#: a product of header fields at ``2**SAT_BITS`` or more is past any buffer, so only its low bits
#: need adding: a buffer depth is at most 2**16 (gen/spec.py), and a product ``x * y`` of header
#: fields (``y`` < 2**16) reaching 2**18 makes ``(x - 1) * y`` reach 2**17
SAT_BITS = 19


class HeaderBeats:
    """The header of the command arriving on the front end's input, beat by beat.

    ``hdr`` is the front end's shift register of the header's earlier words (the newest at the
    top), ``word`` the beat on the input, ``hidx`` how many words ``hdr`` holds and ``take``
    whether a header beat is taken this cycle."""

    def __init__(self, m, hdr, word, hidx, take):
        self.m, self.hdr, self.word, self.hidx, self.take = m, hdr, word, hidx, take
        self._n = 0

    def field(self, name: str, b: int):
        """Header field ``name`` while beat ``b`` arrives (its word is beat ``b`` or earlier)."""
        off, width = HEADER_FIELDS[name]
        w, bit = divmod(off, 32)
        if w > b:
            raise ValueError(f"header field {name} arrives in beat {w}, after beat {b}")
        if w == b:
            return self.word[bit:bit + width]
        at = (HEADER_WORDS - 1 - b + w) * 32 + bit      # after b beats, word w sits here
        return self.hdr[at:at + width]

    def latch(self, value, b: int, shape=None, name: str = "hb"):
        """``value`` registered as beat ``b`` arrives (a register from beat ``b + 1`` on)."""
        self._n += 1
        sig = Signal(shape if shape is not None else value.shape(), name=f"{name}{self._n}",
                     reset_less=True)
        with self.m.If(self.take & (self.hidx == b)):
            self.m.d.sync += sig.eq(value)
        return sig

    def product(self, a, b, beat: int, widths: tuple[int, int], name: str = "hm", *,
                both: bool = False):
        """``a * b`` (their low ``widths`` bits, unsigned, at most 18 each) of two values on
        hand as beat ``beat`` arrives, with no arithmetic before the multiplier: a register from
        beat ``beat + 3`` on, until the next header's beat ``beat``. Each operand is a plain
        register (it loads every cycle: the multiplier's input register) that follows the value
        while the front end waits for beat ``beat`` (``hidx``, a register, selects; no
        handshake) and then holds it through a twin register (each reloads from the other;
        they always agree, and neither has an enable); the product is a plain register (the
        multiplier's output register, from beat ``beat + 2``), copied to another plain register
        in the fabric (the route from the DSP column took 4.5 ns of a 8.9 ns path into a
        carry chain on ECP5, ws_8x8 seed 3), which this returns. ``both``: the pair (the
        multiplier's output register, its copy)."""
        at = self.hidx == beat
        ops = []
        for v, w in zip((a, b), widths, strict=True):
            assert w <= 18, "a hard multiplier's operand is at most 18 bits"
            self._n += 1
            reg = Signal(w, name=f"{name}{self._n}_in", reset_less=True)
            twin = Signal(w, name=f"{name}{self._n}_twin", reset_less=True)
            v = Value.cast(v)[:w]
            self.m.d.sync += [reg.eq(Mux(at, v, twin)), twin.eq(Mux(at, v, reg))]
            ops.append(reg)
        out = Signal(sum(widths), name=f"{name}{self._n}_out", reset_less=True)
        fab = Signal(sum(widths), name=f"{name}{self._n}_fab", reset_less=True)
        self.m.d.sync += [out.eq(ops[0] * ops[1]), fab.eq(out)]
        return (out, fab) if both else fab
