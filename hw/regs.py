"""Register helpers shared by the PEs, the arrays and the controller."""

from amaranth.hdl import Signal, unsigned
from amaranth.lib import memory

__all__ = ["delay", "delay_line", "less", "pipelined_product", "check_stages"]


def delay(m, value, n, name, *, reset_less=False):
    """``value`` delayed by ``n`` registers in ``m``'s sync domain (``n`` may be 0)."""
    for k in range(n):
        reg = Signal.like(value, name=f"{name}_d{k}", reset_less=reset_less)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def delay_line(m, value, n, name):
    """``value`` (n >= 2 cycles) later, through a circular buffer: a memory written every cycle
    and read ``n - 1`` cycles later through its synchronous read port (on ECP5 LUT RAM and one
    word of flip-flops, where :func:`delay` takes ``n`` words of flip-flops). The raw bits come
    back; nothing is reset."""
    if n < 2:
        raise ValueError(f"a delay line through a memory needs at least 2 cycles, not {n}")
    depth = 1 << (n - 1).bit_length()           # >= n, a power of two
    width = len(value)
    mem = memory.Memory(shape=unsigned(width), depth=depth, init=[])
    m.submodules[name] = mem
    wr, rd = mem.write_port(), mem.read_port()
    wp = Signal(range(depth), name=f"{name}_wp")
    m.d.sync += wp.eq(wp + 1)
    m.d.comb += [wr.en.eq(1), wr.addr.eq(wp), wr.data.eq(value), rd.en.eq(1),
                 rd.addr.eq(wp - (n - 1))]
    return rd.data


def less(a, b):
    """``a < b`` as the sign bit of ``a - b`` (Amaranth sizes the difference so it never
    overflows). On ECP5 that is one carry chain with nothing after it; written as ``a < b``,
    Yosys's flow (ABC9) turned the comparisons of the pooling stage and the requantiser's clamp
    into LUT trees beside a chain, up to six LUT levels (the pooling stage alone: 134 MHz)."""
    return (a - b)[-1]


def check_stages(stages):
    if stages not in (0, 1, 2):
        raise ValueError(f"stages must be 0, 1 or 2, not {stages!r}")


def pipelined_product(m, a, b, stages, name):
    """``a * b`` with ``stages`` multiplier registers (the shape of a DSP block): 1 registers the
    product, 2 also registers both operands. The product arrives ``stages`` cycles later. The
    registers are reset-less (what they hold before the first operands is never summed into a
    result), so the FPGA flow folds them into the DSP block's own (fpga/absorb.py)."""
    if stages == 2:
        a = delay(m, a, 1, f"{name}_a", reset_less=True)
        b = delay(m, b, 1, f"{name}_b", reset_less=True)
    return delay(m, a * b, 1 if stages >= 1 else 0, f"{name}_p", reset_less=True)
