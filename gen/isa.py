"""The accelerator's instruction set and register map: one source of truth for RTL and software.

The host sends a *command stream* on the AXI4-Stream input. Every command starts with a header of
:data:`HEADER_WORDS` beats; the low 32 bits of each beat carry one header word (upper bits are ignored).
The 192-bit header is laid out by :data:`HEADER_FIELDS` (bit offset within the concatenated words,
word 0 first). LOAD commands (and a STORE with ``add``) are followed by ``count`` payload beats;
STORE answers with ``count``
beats on the AXI4-Stream output, ``tlast`` on the last one.

================  ==========================================================================
``LOAD_INPUT``    ``count`` words into the input buffer from ``addr``. Word lane ``i`` (``act_bits``
                  wide, lane 0 in the low bits) holds input channel ``c0 + i`` of one pixel.
``LOAD_WEIGHT``   ``count`` words into the weight buffer from ``waddr``. Lane ``j`` holds the weight
                  for output channel ``k0 + j``; word ``(r*S + s)*rows + i`` is input channel ``c0 + i``.
``LOAD_BIAS``     ``count`` beats, each an ``acc_bits`` bias in its low bits: ``cols`` lanes (lane 0
                  first) into the bias register, or, for is, one per output word from ``addr``.
``LOAD_QUANT``    ``count`` beats, each an fp32 requantisation scale (its IEEE-754 bits in bits 0..31):
                  ``cols`` beats, lane 0 first, into the post-processing unit's lane registers, or,
                  where words hold one channel each (is, rs), into its channel memory from
                  ``addr`` (a STORE's word ``i`` uses entry ``i``).
``COMPUTE``       A convolution tile. Output pixel (p, q) of the ``p``×``q`` tile at filter tap (r, s)
                  reads input word ``addr + p*row_step + r*dil_step + q*stride + s*dilation``. The
                  first (r, s) pass starts from zero (or the bias when ``bias`` is set) unless
                  ``accumulate`` is set; later passes add. Per engine (``dataflow`` CSR):
                  ws/nlr/os: output word ``oaddr + p*q_count + q`` gets the ``cols`` channel sums
                  of that pixel with the weight words of the tap (ws/os: ``waddr + tap*rows + c``,
                  lane k; nlr: ``waddr + tap``, lane ``c*cols + k``); os also takes ``count`` =
                  p*q. is: ``count`` output channels stream past the tile's pixels (at most
                  ``cols``); output word ``oaddr + k`` holds channel k, lane j pixel
                  ``p*q - 1 - j``, with weight word ``waddr + tap*count + k``, lane c.
                  rs: one pass over the whole filter window (no per-tap passes). PE row i
                  convolves filter row ``i % r`` of input lane ``lane + i // r``; column j is
                  output row j (``p`` columns). Its ifmap spad is filled with input row
                  ``j*stride + (i % r)*dilation`` of the ``fill_h`` × ``fill_w`` region at
                  ``addr`` (pitch ``row_step``), its filter spad with weight words ``waddr +
                  k*s + s'`` (lane i). Output word ``oaddr + q*count + k`` (``count`` filters
                  interleaved, at most the psum spad) holds channel k, lane j output row j.
                  With ``keep`` the filter spads are reused from the previous COMPUTE.
``STORE``         Stream ``count`` output words from ``oaddr``. With ``requant`` each lane is
                  requantised exactly as onnxruntime does (hw/requant.py: ``fp32(acc)`` times the
                  lane's fp32 scale, rounded to nearest even, ``+ zero_point``, clamped to
                  ``[qmin, qmax]``; those three are signed header fields) and packed ``out_bits``
                  wide (``relu`` is then ignored: the host folds a ReLU into ``qmin``, as
                  onnxruntime's quantizer does); without, the accumulators leave as they are, and
                  with ``relu`` negative ones become zero.
                  With ``pool`` (specs with the pooling unit, ``[pool] enabled``; engines whose
                  words are pixels: ws, os, nlr) the ``count`` words from ``oaddr`` are rows of
                  ``pool_w`` words (``count`` a multiple of ``pool_r * pool_w``, ``pool_w`` of
                  ``pool_s``), cut into non-overlapping ``pool_r`` × ``pool_s`` windows; the
                  STORE answers with one word per window (``count / (pool_r * pool_s)`` beats,
                  windows in row-major order), each lane the maximum of the window's lanes after
                  the requantisation or ReLU above (signed unless the requantised range is
                  unsigned, ``qmin >= 0``): hw/pool.py. It reads the window's words in turn
                  (row by row), so it takes ``count`` read cycles like a plain STORE; it
                  dispatches no sooner than ``Spec.pool_check_latency`` cycles after its header
                  (the check that its windows tile its words, else FIELD: hw/poolcheck.py).
                  With ``add`` (specs with the residual unit, ``[postproc] residual``; needs
                  ``requant``, excludes ``pool``) the header is followed by ``count`` payload
                  beats, the residual: beat ``i``'s lane ``j`` (``out_bits`` wide, lane 0 in the
                  low bits, unsigned with ``res_unsigned``) meets lane ``j`` of output word
                  ``i`` after its requantisation, and each lane leaves as onnxruntime's
                  QLinearAdd of the two (hw/resadd.py): with the requantised value ``a`` (signed
                  unless ``qmin >= 0``) and the residual ``b`` as the Add's inputs ``A, B`` (or
                  ``B, A`` with ``add_swap``), ``clamp(rint(fma(A, rA, fma(B, rB, fixed))),
                  add_qmin, add_qmax)``, fp32 with one rounding per fused multiply-add, the
                  parameters from the last LOAD_ADD. The STORE reads a word only as its residual
                  beat arrives.
``LOAD_ADD``      Exactly 4 payload beats (else FIELD; specs with the residual unit, else OPCODE),
                  the low 32 bits of each: ``rA``, ``rB``, ``fixed`` (IEEE-754 fp32 bits) and the
                  Add's output range, ``add_qmin`` in bits 0..15 and ``add_qmax`` in bits 16..31
                  (16-bit two's complement), for the STOREs with ``add`` that follow. Like a
                  requantising STORE's ``zero_point``, ``qmin`` and ``qmax``, the range must lie
                  in ``[-2**(out_bits-1), 2**out_bits - 1]`` (the hardware keeps ``out_bits +
                  1`` bits of each; the host never sends more); rA and rB normal fp32 within
                  ``[2**-60, 2**60]``, ``fixed`` 0 or so (gen/quant.py ``add_params_ok``, the
                  domain in which hw/resadd.py is exact; the host keeps other Adds).
================  ==========================================================================

**Concurrency.** A front end parses headers, runs LOADs and STOREs, and queues each COMPUTE for an
executor (a queue of one), so the next tile's loads and the previous tile's stores overlap the
compute; weight-stationary chains a queued COMPUTE onto the running one like a next filter tap.
A COMPUTE waits for the queue to be free. The executor thus holds at most two COMPUTEs (one
running, one queued), and the program must keep every LOAD off the buffer words those two touch,
and every STORE off those the last COMPUTE issued touches (a STORE without sync waits until all
the COMPUTEs before that one have written their results), unless it sets ``sync``, which makes it
wait until every COMPUTE has written its results; a LOAD_BIAS always waits so (the bias register
belongs to the COMPUTEs). The tiler sets ``sync`` (gen/schedule.py :func:`~gen.schedule.mark_sync`);
the ISA reference machine (sim/isa_model.py) checks every unsynchronised command against the
addresses those COMPUTEs actually touched.

The CSRs (AXI4-Lite, 32-bit) describe the hardware (so software can check it talks to the design it
was compiled for), report status and performance counters, and clear them.
"""

from __future__ import annotations

import enum

__all__ = ["Op", "Cause", "HEADER_WORDS", "ADD_BEATS", "HEADER_FIELDS", "SIGNED_FIELDS", "CSRS",
           "COUNTERS", "PE_COUNTERS",
           "CSR_ADDR_BITS", "ACCEL_ID",
           "encode_header", "decode_header", "field_max", "identity", "csr_offset",
           "store_beats", "status_fields", "stream_cause"]


class Op(enum.IntEnum):
    NOP = 0
    LOAD_INPUT = 1
    LOAD_WEIGHT = 2
    LOAD_BIAS = 3
    COMPUTE = 4
    STORE = 5
    LOAD_QUANT = 6
    LOAD_ADD = 7


HEADER_WORDS = 6


class Cause(enum.IntEnum):
    """Why a command stream was refused: the ``status`` CSR's cause field and the ISA machine's
    :class:`~sim.isa_model.CommandError`. The hardware refuses a command as it dispatches it
    (before any payload word is written): the first error latches its cause, and the front end
    then takes and drops every input beat and runs nothing until a soft reset (``control`` bit
    1), which also drops a partial header or LOAD payload."""
    NONE = 0
    OPCODE = 1      # a header whose op is none of Op (or LOAD_QUANT without a post-processor)
    ADDRESS = 2     # a LOAD or STORE whose words run past its buffer's (or channel memory's)
    #                 depth, or a COMPUTE whose footprint (gen/engines footprint) does
    FIELD = 3       # a COMPUTE whose tile the engine cannot run (a zero p, q, r, s or count);
    #                 a LOAD_ADD whose count is not 4; a STORE with add on a spec without the
    #                 residual unit, or without requant, or with pool
    TRUNCATED = 4   # the stream ended inside a header or a LOAD's (or an add STORE's) payload:
    #                 the hardware
    #                 waits for the rest with ``status.starved`` set (no error: it cannot know the
    #                 stream ended), which the drivers report as TRUNCATED once they have sent
    #                 every beat; a soft reset drops the partial frame
    #   FIELD also: a pooling STORE on a spec without the pooling unit, or whose window fields
    #   do not tile its words (a zero pool_r, pool_s or pool_w, pool_w not a multiple of pool_s,
    #   count not a multiple of pool_r * pool_w; the hardware decides it Spec.pool_check_latency
    #   cycles after the header, hw/poolcheck.py)

#: name -> (bit offset, width) within the 192-bit header. The order of the words matters to the
#: hardware, which decides whether a COMPUTE's footprint runs past a buffer as the words arrive
#: (hw/footprint.py): the factors of its products (r, s, row_step, dil_step, p, q) come in words 0
#: to 2, so each product leaves a pipelined hard multiplier before the last word arrives.
HEADER_FIELDS: dict[str, tuple[int, int]] = {
    "op":         (0, 4),
    "accumulate": (4, 1),
    "bias":       (5, 1),
    "requant":    (6, 1),     # STORE: requantise through the post-processing unit
    "relu":       (7, 1),     # STORE: clamp negative results to zero
    "r":          (8, 8),
    "s":          (16, 8),
    "stride":     (24, 4),
    "dilation":   (28, 4),
    "row_step":   (32, 16),   # stride * input row pitch, in words (COMPUTE)
    "dil_step":   (48, 16),   # dilation * input row pitch, in words (COMPUTE)
    "p":          (64, 16),   # output tile rows (COMPUTE)
    "q":          (80, 16),   # output tile columns (COMPUTE)
    "addr":       (96, 16),   # input buffer base (LOAD_INPUT, COMPUTE)
    "waddr":      (112, 16),  # weight buffer base (LOAD_WEIGHT, COMPUTE)
    "oaddr":      (128, 16),  # output buffer base (COMPUTE, STORE)
    "sync":       (144, 1),   # LOAD_*/STORE: wait until the running COMPUTE has finished
    "count":      (160, 17),  # payload / result beats (LOAD_*, STORE)
    "lane":       (177, 7),   # rs COMPUTE: input lane of PE row 0's channel
    "fill_w":     (184, 8),   # rs COMPUTE: ifmap spad fill width (pixels per row)
}
#: rs COMPUTE: the ifmap fill walks ``fill_h`` input rows; it shares dil_step's bits, which rs
#: does not use (its PEs walk the filter rows through their tags)
HEADER_FIELDS["fill_h"] = HEADER_FIELDS["dil_step"]
#: rs COMPUTE: the filter spads already hold this command's filters (the previous COMPUTE had the
#: same weights, lane and filter window), so the filter fill is skipped: the row-stationary reuse
#: of filter rows across ifmap blocks. Shares requant's bit, which only STORE uses
HEADER_FIELDS["keep"] = HEADER_FIELDS["requant"]
#: STORE with requant: the output zero point and the clamp range, 17-bit two's complement, in
#: fields a STORE does not otherwise use (row_step/dil_step, p/q, addr/waddr)
HEADER_FIELDS["zero_point"] = (32, 17)
HEADER_FIELDS["qmin"] = (64, 17)
HEADER_FIELDS["qmax"] = (96, 17)
#: STORE with pool: max-pool the words in ``pool_r`` × ``pool_s`` windows of rows of ``pool_w``
#: words (the bits of accumulate, r and s, which only COMPUTE uses, and 15 free bits)
HEADER_FIELDS["pool"] = HEADER_FIELDS["accumulate"]
HEADER_FIELDS["pool_r"] = HEADER_FIELDS["r"]
HEADER_FIELDS["pool_s"] = HEADER_FIELDS["s"]
HEADER_FIELDS["pool_w"] = (145, 15)
#: STORE with add: add the residual streamed after the header (the bits of ``lane``, which only
#: the rs COMPUTE uses); ``add_swap``: the requantised word is the Add's second input (B);
#: ``res_unsigned``: the residual's lanes are unsigned
HEADER_FIELDS["add"] = (177, 1)
HEADER_FIELDS["add_swap"] = (178, 1)
HEADER_FIELDS["res_unsigned"] = (179, 1)
#: LOAD_ADD's payload beats (low 32 bits each): rA, rB, fixed (fp32 bits), then the range word
ADD_BEATS = 4
#: header fields holding two's complement values: encode_header takes them negative,
#: decode_header returns them sign-extended
SIGNED_FIELDS = frozenset({"zero_point", "qmin", "qmax"})

ACCEL_ID = 0x41434731  # "ACG1"


CSR_ADDR_BITS = 8

#: The CSR map: (name, byte offset, access, description). 64-bit counters are two words, low first.
CSRS: list[tuple[str, int, str, str]] = [
    ("id",            0x00, "ro", "0x41434731 ('ACG1')"),
    ("version",       0x04, "ro", "ISA version"),
    ("shape",         0x08, "ro", "rows [15:0], cols [31:16]"),
    ("precision",     0x0C, "ro", "act_bits [7:0], weight_bits [15:8], acc_bits [23:16], "
                                  "act_signed [24], weight_signed [25], postproc [26], pool [27], "
                                  "residual [28]"),
    ("input_depth",   0x10, "ro", "input buffer depth in words"),
    ("weight_depth",  0x14, "ro", "weight buffer depth in words"),
    ("output_depth",  0x18, "ro", "output buffer depth in words"),
    ("status",        0x1C, "ro", "busy [0] (a command is executing or a frame is partly "
                                  "in), error [1] (sticky: a command was refused), starved [2] "
                                  "(inside a frame, a partial header or LOAD payload, with no "
                                  "input beat offered: waiting for more input; once the host "
                                  "has sent everything, the stream ended inside a frame), "
                                  "cause [7:4] (Cause of the first error)"),
    ("control",       0x20, "wo", "write 1 to bit 0: clear counters; bit 1: soft reset (clear "
                                  "the error and its cause, drop a partial frame, take headers "
                                  "again)"),
    ("commands",      0x24, "ro", "commands completed since the counters were cleared"),
    ("cycles_lo",     0x28, "ro", "cycles spent executing commands (or with a header waiting)"),
    ("cycles_hi",     0x2C, "ro", ""),
    ("array_busy_lo", 0x30, "ro", "cycles an input vector entered the PE array"),
    ("array_busy_hi", 0x34, "ro", ""),
    ("in_stall_lo",   0x38, "ro", "cycles a command waited for input-stream data"),
    ("in_stall_hi",   0x3C, "ro", ""),
    ("out_stall_lo",  0x40, "ro", "cycles a STORE waited for the output stream's ready"),
    ("out_stall_hi",  0x44, "ro", ""),
    ("dataflow",      0x48, "ro", "engine: 0 ws, 1 is, 2 os, 3 nlr, 4 rs (gen/engines/ Engine "
                                  "order)"),
]

#: The 64-bit performance counters (``NAME_lo``/``NAME_hi`` CSRs), cleared together by control bit
#: 0. The buffer counters count word accesses of the global buffers (one word feeds one array
#: edge), per operand: what the model (gen/model.py) predicts and the energy estimate prices.
COUNTERS = ("cycles", "array_busy", "in_stall", "out_stall", "ibuf_reads", "ibuf_writes",
            "wbuf_reads", "wbuf_writes", "obuf_reads", "obuf_writes", "pe_macs", "rf_accesses",
            "array_moves")
_BUFFER_COUNTERS = {
    "ibuf_reads": "input-buffer word reads", "ibuf_writes": "input-buffer word writes (LOAD)",
    "wbuf_reads": "weight-buffer word reads", "wbuf_writes": "weight-buffer word writes (LOAD)",
    "obuf_reads": "output-buffer word reads (accumulate and STORE)",
    "obuf_writes": "output-buffer word writes (results)",
}
#: The PE-level counters count elements, from the controller's events times the elements each
#: moves in the engine's datapath (every PE of the array works on each issued cycle): what the
#: energy model prices at the MAC, register-file and PE-to-PE levels (gen/model.py).
_PE_COUNTERS = {
    "pe_macs": "multiply-accumulates performed (issued cycles x PEs, empty lanes included)",
    "rf_accesses": "register-file/scratchpad reads and writes inside the PEs",
    "array_moves": "operand and partial-sum transfers between PEs or from a bus into a PE",
}
#: PE-level counter -> the energy level it counts (gen/model.py ENERGY_LEVELS)
PE_COUNTERS = {"pe_macs": "mac", "rf_accesses": "rf", "array_moves": "array"}

for _k, (_name, _text) in enumerate({**_BUFFER_COUNTERS, **_PE_COUNTERS}.items()):
    CSRS += [(f"{_name}_lo", 0x4C + 8 * _k, "ro", _text), (f"{_name}_hi", 0x50 + 8 * _k, "ro", "")]

ISA_VERSION = 13


def identity(spec) -> dict[str, int]:
    """The read-only identity CSRs of the design generated from ``spec`` (what the RTL returns and
    what a driver checks before running a program built for that spec)."""
    return {
        "id": ACCEL_ID,
        "version": ISA_VERSION,
        "shape": spec.rows | spec.cols << 16,
        "precision": (spec.act_bits | spec.weight_bits << 8 | spec.acc_bits << 16
                      | int(spec.act_signed) << 24 | int(spec.weight_signed) << 25
                      | int(spec.postproc) << 26 | int(spec.pool) << 27
                      | int(spec.residual) << 28),
        "input_depth": spec.input_depth,
        "weight_depth": spec.weight_depth,
        "output_depth": spec.output_depth,
        "dataflow": spec.engine.code,
    }


def status_fields(status: int) -> dict[str, int]:
    """The ``status`` CSR's fields: ``busy``, ``error``, ``starved`` and ``cause``."""
    return {"busy": status & 1, "error": (status >> 1) & 1, "starved": (status >> 2) & 1,
            "cause": (status >> 4) & 0xF}


def stream_cause(fields: dict) -> Cause | int:
    """What a driver reports for a stream from the status fields (:func:`status_fields`) it read
    once the hardware had taken every beat of the stream and was idle or starved: the first
    error's cause; TRUNCATED when the hardware waits inside a frame (``starved``: the stream
    ended inside a header or a LOAD's payload); else NONE. (A cause the Cause enum does not
    know comes back as its number.)"""
    if fields.get("error"):
        c = fields.get("cause", 0)
        return Cause(c) if c in {int(k) for k in Cause} else c
    return Cause.TRUNCATED if fields.get("starved") else Cause.NONE


def store_beats(h: dict) -> int:
    """The beats a STORE with header fields ``h`` answers with: one per word, or with ``pool``
    one per ``pool_r`` × ``pool_s`` window."""
    if h.get("pool"):
        return h.get("count", 0) // (h["pool_r"] * h["pool_s"])
    return h.get("count", 0)


def csr_offset(name: str) -> int:
    for n, off, _, _ in CSRS:
        if n == name:
            return off
    raise KeyError(name)


def field_max(name: str) -> int:
    return (1 << HEADER_FIELDS[name][1]) - 1


def encode_header(op: Op, **fields: int) -> list[int]:
    """Encode a command header as :data:`HEADER_WORDS` 32-bit words."""
    value = int(op)
    for name, v in fields.items():
        off, width = HEADER_FIELDS[name]
        v = int(v)
        lo = -(1 << (width - 1)) if name in SIGNED_FIELDS else 0
        if not lo <= v < (1 << width) + lo:
            raise ValueError(f"header field {name} must fit in {width} bits, not {v}")
        value |= (v & ((1 << width) - 1)) << off
    return [(value >> (32 * i)) & 0xFFFFFFFF for i in range(HEADER_WORDS)]


def decode_header(words: list[int]) -> dict[str, int]:
    value = sum(w << (32 * i) for i, w in enumerate(words))
    out = {name: (value >> off) & ((1 << width) - 1) for name, (off, width) in HEADER_FIELDS.items()}
    for name in SIGNED_FIELDS:
        width = HEADER_FIELDS[name][1]
        if out[name] >> (width - 1):
            out[name] -= 1 << width
    return out
