"""A UART host bridge onto the accelerator's CSRs and streams, and the UART top a board wraps.

Byte protocol (all integers little-endian; gen/hostlink.py is the host side)::

    'W' addr:u8 data:u32        CSR write              -> 'w'
    'R' addr:u8                 CSR read               -> 'r' data:u32
    'S' n:u32 bytes[n]          n bytes into s_axis,   -> 's' once every beat was accepted
                                packed into beats of in_stream_bits (tlast on the last)
    'O' n:u32                   n beats from m_axis    -> n * out_stream_bits/8 bytes
    anything else                                      -> '?'

The UART has no flow control: the host must not send more than the receive FIFO holds while the
accelerator is busy. gen/hostlink.py keeps to that by waiting for each acknowledgement and polling
the status CSR after COMPUTE commands.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from gen.isa import CSR_ADDR_BITS
from gen.spec import Spec

from .host import AxiLiteSignature, AxiStreamSignature
from .top import Accelerator
from .uart import UartRx, UartTx

__all__ = ["UartBridge", "UartTop"]


class UartBridge(wiring.Component):
    def __init__(self, spec: Spec):
        self.spec = spec
        self.in_bytes = spec.in_stream_bits // 8
        self.out_bytes = spec.out_stream_bits // 8
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "m_axil": Out(AxiLiteSignature(CSR_ADDR_BITS)),
            "m_axis": Out(AxiStreamSignature(spec.in_stream_bits)),
            "s_axis": In(AxiStreamSignature(spec.out_stream_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        rx, tx, axil = self.rx, self.tx, self.m_axil
        op = Signal(8)
        args = Signal(40)
        idx = Signal(range(6))
        nargs = Signal(range(6))
        remaining = Signal(32)
        beat = Signal(self.spec.in_stream_bits)
        bidx = Signal(range(self.in_bytes + 1))
        txbuf = Signal(max(40, self.spec.out_stream_bits))
        txn = Signal(range(max(5, self.out_bytes) + 1))
        aw_done, w_done = Signal(), Signal()

        m.d.comb += [tx.payload.eq(txbuf[:8]), self.m_axis.tdata.eq(beat),
                     axil.awaddr.eq(args[:8]), axil.araddr.eq(args[:8]),
                     axil.wdata.eq(args[8:40]), axil.wstrb.eq(0b1111)]

        def send(value, n):
            m.d.sync += [txbuf.eq(value), txn.eq(n)]
            m.next = "TX"

        with m.FSM():
            with m.State("OP"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    m.d.sync += [op.eq(rx.payload), idx.eq(0), args.eq(0)]
                    with m.Switch(rx.payload):
                        with m.Case(ord("W")):
                            m.d.sync += nargs.eq(5)
                            m.next = "ARGS"
                        with m.Case(ord("R")):
                            m.d.sync += nargs.eq(1)
                            m.next = "ARGS"
                        with m.Case(ord("S"), ord("O")):
                            m.d.sync += nargs.eq(4)
                            m.next = "ARGS"
                        with m.Default():
                            send(ord("?"), 1)
            with m.State("ARGS"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    m.d.sync += [args.word_select(idx, 8).eq(rx.payload), idx.eq(idx + 1)]
                    with m.If(idx == nargs - 1):
                        m.next = "DISPATCH"
            with m.State("DISPATCH"):
                m.d.sync += [remaining.eq(args[:32]), aw_done.eq(0), w_done.eq(0), bidx.eq(0),
                             beat.eq(0)]
                with m.Switch(op):
                    with m.Case(ord("W")):
                        m.next = "CSR_W"
                    with m.Case(ord("R")):
                        m.next = "CSR_AR"
                    with m.Case(ord("S")):
                        m.next = "PAYLOAD"
                    with m.Case(ord("O")):
                        m.next = "OUT"
            with m.State("CSR_W"):
                m.d.comb += [axil.awvalid.eq(~aw_done), axil.wvalid.eq(~w_done)]
                with m.If(axil.awready):
                    m.d.sync += aw_done.eq(1)
                with m.If(axil.wready):
                    m.d.sync += w_done.eq(1)
                with m.If((aw_done | axil.awready) & (w_done | axil.wready)):
                    m.next = "CSR_B"
            with m.State("CSR_B"):
                m.d.comb += axil.bready.eq(1)
                with m.If(axil.bvalid):
                    send(ord("w"), 1)
            with m.State("CSR_AR"):
                m.d.comb += axil.arvalid.eq(1)
                with m.If(axil.arready):
                    m.next = "CSR_R"
            with m.State("CSR_R"):
                m.d.comb += axil.rready.eq(1)
                with m.If(axil.rvalid):
                    send(ord("r") | (axil.rdata << 8), 5)
            with m.State("PAYLOAD"):
                with m.If(remaining == 0):
                    send(ord("s"), 1)
                with m.Else():
                    m.d.comb += rx.ready.eq(1)
                    with m.If(rx.valid):
                        m.d.sync += [beat.word_select(bidx, 8).eq(rx.payload), bidx.eq(bidx + 1),
                                     remaining.eq(remaining - 1)]
                        with m.If((bidx == self.in_bytes - 1) | (remaining == 1)):
                            m.next = "PUSH"
            with m.State("PUSH"):
                m.d.comb += [self.m_axis.tvalid.eq(1), self.m_axis.tlast.eq(remaining == 0)]
                with m.If(self.m_axis.tready):
                    m.d.sync += [bidx.eq(0), beat.eq(0)]
                    m.next = "PAYLOAD"
            with m.State("OUT"):
                with m.If(remaining == 0):
                    m.next = "OP"
                with m.Else():
                    m.d.comb += self.s_axis.tready.eq(1)
                    with m.If(self.s_axis.tvalid):
                        m.d.sync += remaining.eq(remaining - 1)
                        send(self.s_axis.tdata, self.out_bytes)
            with m.State("TX"):
                m.d.comb += tx.valid.eq(1)
                with m.If(tx.ready):
                    m.d.sync += [txbuf.eq(txbuf >> 8), txn.eq(txn - 1)]
                    with m.If(txn == 1):
                        with m.If(op == ord("O")):
                            m.next = "OUT"
                        with m.Else():
                            m.next = "OP"
        return m


class UartTop(wiring.Component):
    """The accelerator behind a UART: what a board top instantiates (pins ``rx`` and ``tx``)."""

    def __init__(self, spec: Spec, *, divisor: int, rx_fifo: int = 64):
        self.spec, self.divisor, self.rx_fifo = spec, divisor, rx_fifo
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.accel = accel = Accelerator(self.spec)
        m.submodules.bridge = bridge = UartBridge(self.spec)
        m.submodules.uart_rx = urx = UartRx(divisor=self.divisor)
        m.submodules.uart_tx = utx = UartTx(divisor=self.divisor)
        m.submodules.rx_fifo = rxq = fifo.SyncFIFOBuffered(width=8, depth=self.rx_fifo)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        m.d.comb += [rxq.w_data.eq(urx.o.payload), rxq.w_en.eq(urx.o.valid),
                     urx.o.ready.eq(rxq.w_rdy)]
        m.d.comb += [bridge.rx.payload.eq(rxq.r_data), bridge.rx.valid.eq(rxq.r_rdy),
                     rxq.r_en.eq(bridge.rx.ready)]
        connect(m, bridge.tx, utx.i)
        connect(m, bridge.m_axil, accel.s_axil)
        connect(m, bridge.m_axis, accel.s_axis)
        connect(m, accel.m_axis, bridge.s_axis)
        return m


