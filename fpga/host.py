"""Host driver for a board running accelgen's UART top: runs a layer through the same Program,
frames and protocol (gen/hostlink.py) the cocotb tests check.

    from fpga.host import run_layer_on_board
    y, counters = run_layer_on_board(spec, layer, x, w, port="/dev/ttyUSB0")
"""

from __future__ import annotations

from gen import frames as framing
from gen.errors import AccelgenError
from gen.hostlink import link_steps
from gen.isa import Op, identity
from gen.tiler import plan

from .boards import DEFAULT_BAUD

__all__ = ["drive", "run_layer_on_board"]


def drive(steps, transport):
    """Run a hostlink generator over a transport with ``write(bytes)`` and ``read(n) -> bytes``."""
    reply = None
    try:
        while True:
            data, n = steps.send(reply)
            transport.write(data)
            reply = transport.read(n)
            if len(reply) != n:
                raise AccelgenError(f"the board sent {len(reply)} of {n} expected bytes (timeout); "
                                    f"check the port, the baud rate and the bitstream")
    except StopIteration as done:
        return done.value


def run_layer_on_board(spec, layer, x, w, bias=None, *, port: str, baud: int = DEFAULT_BAUD,
                       timeout: float = 5.0, transport=None):
    """Run a conv layer on the board; returns (output NKPQ int64, counters)."""
    program = plan(spec, layer, bias=bias is not None)
    frames = framing.encode(program, x, w, bias)
    steps = link_steps(frames, [int(c.op) for c in program.commands],
                       [c.count for c in program.commands if c.op == Op.STORE],
                       spec.out_stream_bits // 8, identity(spec))
    if transport is None:
        try:
            import serial
        except ImportError:
            raise AccelgenError("the board driver needs pyserial: pip install pyserial") from None
        try:
            transport = serial.Serial(port, baud, timeout=timeout)
        except serial.SerialException as e:
            raise AccelgenError(f"cannot open {port} ({e}); pass the board's serial port") \
                from None
        with transport:
            outs, counters = drive(steps, transport)
    else:
        outs, counters = drive(steps, transport)
    return framing.decode(program, outs), counters
