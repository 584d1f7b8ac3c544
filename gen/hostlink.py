"""The host side of the UART bridge (hw/bridge.py), written without I/O.

``link_steps`` is a generator that runs a Program's frames through the bridge protocol: it yields
``(bytes_to_send, n_bytes_to_read)`` and receives the bytes read. The pyserial driver
(fpga/host.py) and the cocotb test of the board top drive the same generator, so the protocol the
tests check is the one the board runs.

Flow control: the bridge's receive FIFO is small and the UART has none, so each frame is sent as one
``S`` packet and acknowledged before the next; after a COMPUTE the status CSR is polled until the
accelerator is idle, so the next frame never arrives while the command stream is stalled.
"""

from __future__ import annotations

import struct
from collections.abc import Generator

from .isa import COUNTERS, Op, csr_offset, status_fields

__all__ = ["LinkError", "link_steps", "csr_write", "csr_read"]

Step = tuple[bytes, int]


class LinkError(Exception):
    """The board answered something the protocol does not allow."""


def csr_write(name: str, value: int) -> Generator[Step, bytes, None]:
    ack = yield b"W" + struct.pack("<BI", csr_offset(name), value), 1
    if ack != b"w":
        raise LinkError(f"CSR write of {name}: expected b'w', got {ack!r}")


def csr_read(name: str) -> Generator[Step, bytes, int]:
    resp = yield b"R" + struct.pack("<B", csr_offset(name)), 5
    if len(resp) != 5 or resp[:1] != b"r":
        raise LinkError(f"CSR read of {name}: expected b'r' and 4 bytes, got {resp!r}")
    return struct.unpack("<I", resp[1:])[0]


def link_steps(frames: list[bytes], ops: list[int], store_counts: list[int], out_beat_bytes: int,
               identity: dict[str, int], max_polls: int = 1_000_000
               ) -> Generator[Step, bytes, tuple[list[bytes], dict]]:
    """Run the frames; return (output frames, counters)."""
    for name, value in identity.items():
        got = yield from csr_read(name)
        if got != value:
            raise LinkError(f"CSR {name} reads {got:#x}, the program was built for {value:#x}; "
                            f"is the board running the bitstream of this spec?")
    yield from csr_write("control", 0b11)
    outs = []
    stores = iter(store_counts)
    for frame, op in zip(frames, ops, strict=True):
        ack = yield b"S" + struct.pack("<I", len(frame)) + frame, 1
        if ack != b"s":
            raise LinkError(f"stream packet: expected b's', got {ack!r}")
        if op == Op.COMPUTE:
            for _ in range(max_polls):
                if not (yield from csr_read("status")) & 1:
                    break
            else:
                raise LinkError("the accelerator stayed busy; check the board and the program")
        elif op == Op.STORE:
            n = next(stores)
            data = yield b"O" + struct.pack("<I", n), n * out_beat_bytes
            if len(data) != n * out_beat_bytes:
                raise LinkError(f"expected {n * out_beat_bytes} output bytes, got {len(data)}")
            outs.append(data)
    counters = {"commands": (yield from csr_read("commands"))}
    for name in COUNTERS:
        lo = yield from csr_read(f"{name}_lo")
        hi = yield from csr_read(f"{name}_hi")
        counters[name] = lo | hi << 32
    status = status_fields((yield from csr_read("status")))
    counters |= {k: status[k] for k in ("error", "starved", "cause")}
    return outs, counters

