"""The command header as it arrives, beat by beat, for decisions the front end must have at the
header's last beat.

The front end decides everything a dispatch needs as a header's last word arrives and registers
it, so dispatch and refusal start from flip-flops (hw/frontend.py). Some facts need more than
that one cycle (an add and a compare took 6.7 ns on ECP5): :class:`HeaderBeats` gives each
header field as beat ``b`` arrives (from the beat itself or from the shift register holding the
earlier words) and registers a value as beat ``b`` arrives, so the work spreads over the beats
(they arrive at least a cycle apart): a value latched at beat ``b`` is a register from beat
``b + 1`` on. The front end's first use: whether a LOAD or STORE runs past its buffer, its
``count`` compared at the last beat with the room (``depth - base``) latched at beat 4.
"""

from __future__ import annotations

from amaranth.hdl import Signal

from gen.isa import HEADER_FIELDS, HEADER_WORDS

__all__ = ["HeaderBeats", "LAST"]

#: the header's last beat: what is decided as it arrives is registered for DISP
LAST = HEADER_WORDS - 1


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
