"""Frames: a Program plus tensors become the bytes of the AXI4-Stream command stream, and the output
stream's bytes become the output tensor.

One frame per command (``tlast`` on its last beat): :data:`~gen.isa.HEADER_WORDS` header beats, then
the payload of a LOAD (or of a STORE with ``add``: the residual's words for its output words).
Lanes pack little-endian: lane 0 in the low bits of a beat, beats little-endian in bytes, as
cocotbext-axi and a memory-mapped DMA see them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import AccelgenError
from .isa import HEADER_WORDS, Op, encode_header, store_beats
from .layer import ConvLayer
from .quant import AddQuant, Requant
from .spec import Spec
from .program import Program

__all__ = ["pack_lanes", "unpack_lanes", "encode", "decode", "check_tensors", "check_quant",
           "check_add", "store_words"]


def pack_lanes(values: np.ndarray, bits: int, beat_bytes: int) -> bytes:
    """Pack ``values`` of shape (beats, lanes) into beats of ``beat_bytes``, ``bits`` per lane."""
    values = np.asarray(values, dtype=np.int64)
    beats, lanes = values.shape
    if bits % 8 == 0 and bits <= 64:
        nbytes = bits // 8
        raw = values.astype(np.uint64) & np.uint64((1 << bits) - 1)
        b = np.ascontiguousarray(raw, dtype="<u8").view(np.uint8).reshape(beats, lanes, 8)[:, :, :nbytes]
        b = b.reshape(beats, lanes * nbytes)
    else:
        shifts = np.arange(bits, dtype=np.uint64)
        bitarr = ((values.astype(np.uint64)[..., None] >> shifts) & np.uint64(1)).astype(np.uint8)
        bitarr = bitarr.reshape(beats, lanes * bits)
        pad = (-bitarr.shape[1]) % 8
        bitarr = np.pad(bitarr, ((0, 0), (0, pad)))
        b = np.packbits(bitarr, axis=1, bitorder="little")
    out = np.zeros((beats, beat_bytes), dtype=np.uint8)
    out[:, :b.shape[1]] = b
    return out.tobytes()


def unpack_lanes(data: bytes, bits: int, lanes: int, beat_bytes: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_lanes`: bytes → (beats, lanes) int64."""
    arr = np.frombuffer(data, dtype=np.uint8)
    if arr.size % beat_bytes:
        raise ValueError(f"{arr.size} bytes is not a whole number of {beat_bytes}-byte beats")
    arr = arr.reshape(-1, beat_bytes)
    bitarr = np.unpackbits(arr, axis=1, bitorder="little")[:, :lanes * bits]
    bitarr = bitarr.reshape(arr.shape[0], lanes, bits).astype(np.uint64)
    vals = (bitarr << np.arange(bits, dtype=np.uint64)).sum(axis=2, dtype=np.uint64)
    vals = vals.astype(np.int64) if bits < 64 else vals.view(np.int64)
    if signed and bits < 64:
        vals = np.where(vals >= (1 << (bits - 1)), vals - (1 << bits), vals)
    return vals


def check_tensors(spec: Spec, layer: ConvLayer, x, w, bias=None):
    """Validate user tensors against the layer and the spec's precisions; return int64 arrays."""
    out = []
    for what, t, shape, (lo, hi), field in (
        ("input", x, layer.input_shape, spec.act_range(), "precision.act_bits/act_signed"),
        ("weights", w, layer.weight_shape, spec.weight_range(),
         "precision.weight_bits/weight_signed"),
    ):
        t = np.asarray(t)
        if t.shape != shape:
            raise AccelgenError(
                f"{what} tensor has shape {t.shape} but the layer needs {shape} "
                f"({'NCHW' if what == 'input' else 'KCRS with C/groups channels'})")
        if not np.issubdtype(t.dtype, np.integer):
            raise AccelgenError(f"{what} tensor must hold integers, not {t.dtype}")
        if t.size and (t.min() < lo or t.max() > hi):
            raise AccelgenError(
                f"{what} tensor values span {t.min()}..{t.max()} but the spec's {field} allow "
                f"{lo}..{hi}; quantise the tensor or change the spec")
        out.append(t.astype(np.int64))
    if bias is not None:
        b = np.asarray(bias)
        if b.shape != (layer.K,):
            raise AccelgenError(f"bias tensor has shape {b.shape} but the layer needs ({layer.K},)")
        if not np.issubdtype(b.dtype, np.integer):
            raise AccelgenError(f"bias tensor must hold integers, not {b.dtype}")
        lo, hi = -(1 << (spec.acc_bits - 1)), (1 << (spec.acc_bits - 1)) - 1
        if b.size and (b.min() < lo or b.max() > hi):
            raise AccelgenError(
                f"bias values span {b.min()}..{b.max()} but precision.acc_bits={spec.acc_bits} "
                f"allows {lo}..{hi}")
        out.append(b.astype(np.int64))
    else:
        out.append(None)
    return tuple(out)


def check_quant(program: Program, quant) -> Requant:
    """The requantisation ``quant`` (a :class:`~gen.quant.Requant`) checked for ``program``'s
    layer and spec, with the program's ReLU folded into its range."""
    if not isinstance(quant, Requant):
        raise AccelgenError(f"requantisation parameters must be a gen.quant.Requant (fp32 scale "
                            f"per output channel, zero point, clamp range), not "
                            f"{type(quant).__name__}")
    return quant.resolved(program.spec, program.layer.K, program.relu)


def check_add(program: Program, add, residual=None):
    """The residual Add's parameters ``add`` (a :class:`~gen.quant.AddQuant`) checked for
    ``program``'s spec, and the ``residual`` tensor (the layer's output shape, int, within the
    signed or unsigned ``out_bits`` range ``add`` says) as int64 (None if not given)."""
    if not isinstance(add, AddQuant):
        raise AccelgenError(f"the residual Add's parameters must be a gen.quant.AddQuant (from "
                            f"gen.quant.add_quant), not {type(add).__name__}")
    add = add.resolved(program.spec)
    if residual is None:
        return add, None
    r = np.asarray(residual)
    shape = program.layer.output_shape
    if r.shape != shape:
        raise AccelgenError(f"residual tensor has shape {r.shape} but the layer's output "
                            f"(NKPQ) is {shape}")
    if not np.issubdtype(r.dtype, np.integer):
        raise AccelgenError(f"residual tensor must hold integers, not {r.dtype}")
    lo, hi = add.residual_range(program.spec)
    if r.size and (r.min() < lo or r.max() > hi):
        raise AccelgenError(f"residual values span {r.min()}..{r.max()} but its "
                            f"{'signed' if add.res_signed else 'unsigned'} "
                            f"postproc.out_bits={program.spec.out_bits} lanes hold {lo}..{hi}")
    return add, r.astype(np.int64)


def store_words(spec: Spec, cmd, tensor: np.ndarray, Kg: int) -> np.ndarray:
    """``tensor`` (NKPQ, the layer's output shape) as STORE ``cmd``'s words (words, lanes): the
    inverse of the engine's ``store_tile`` (applied to the words' indices), lanes outside the
    tile's channels and pixels 0."""
    cols = spec.cols
    idx = np.arange(cmd.count * cols, dtype=np.int64).reshape(cmd.count, cols)
    tile, kn = spec.flow.store_tile(spec, cmd, idx, Kg)
    k = cmd.g * Kg + cmd.k0
    out = np.zeros(cmd.count * cols, dtype=np.int64)
    out[tile.reshape(-1)] = tensor[cmd.n, k:k + kn, cmd.h0:cmd.h0 + cmd.hn,
                                   cmd.w0:cmd.w0 + cmd.wn].reshape(-1)
    return out.reshape(cmd.count, cols)


def _header_bytes(spec: Spec, cmd, extra=None) -> bytes:
    words = encode_header(cmd.op, **cmd.header, **(extra or {}))
    return pack_lanes(np.array(words, dtype=np.int64).reshape(HEADER_WORDS, 1), 32,
                      spec.in_stream_bits // 8)


def im2col(layer, x: np.ndarray) -> np.ndarray:
    """``x`` (NCHW) laid out for :func:`gen.tiler.im2col_layer`: channel ``(c*R + r)*S + s`` at
    output pixel (p, q) is input channel c at (p*stride + r*dilation, q*stride + s*dilation)
    of the padded input."""
    R, S, U, D, pad = layer.R, layer.S, layer.stride, layer.dilation, layer.pad
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    P, Q = layer.P, layer.Q
    out = np.empty((x.shape[0], x.shape[1], R, S, P, Q), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            out[:, :, r, s] = xp[:, :, r * D:r * D + (P - 1) * U + 1:U,
                                 s * D:s * D + (Q - 1) * U + 1:U]
    return out.reshape(x.shape[0], -1, P, Q)


def encode(program: Program, x, w, bias=None, quant=None, *, residual=None,
           add: AddQuant | None = None) -> list[bytes]:
    """The input stream for ``program``: one frame (bytes) per command. ``quant`` (a
    :class:`~gen.quant.Requant`) when the program requantises: its fp32 scales go into the
    LOAD_QUANT beats, its zero point and clamp range (ReLU folded) into every STORE's header.
    ``residual`` (NKPQ, the layer's output shape) and ``add`` (a :class:`~gen.quant.AddQuant`)
    when its STOREs add a residual (gen/residual.py): the Add's parameters go into LOAD_ADD,
    which input the conv is and the residual's signedness into every STORE's header, and the
    residual's words after it, in the STORE's word order (:func:`store_words`)."""
    spec, layer = program.spec, program.layer
    x, w, bias = check_tensors(spec, layer, x, w, bias)
    add_fields, add, residual = _add_fields(program, residual, add)
    if program.lowered is not None:      # the commands address the im2col layer
        x, w, layer = im2col(layer, x), w.reshape(w.shape[0], -1, 1, 1), program.lowered
    if program.has_bias and bias is None:
        raise AccelgenError("the program was planned with a bias but no bias tensor was given")
    store_fields = {}
    if program.requant:
        if quant is None:
            raise AccelgenError("the program requantises but no requantisation (gen.quant."
                                "Requant: scale, zero point, range) was given")
        quant = check_quant(program, quant)
        scale_bits = quant.scale_bits()
        store_fields = {"zero_point": quant.zero_point, "qmin": quant.qmin, "qmax": quant.qmax}
    elif quant is not None:
        raise AccelgenError("requantisation parameters were given but the program was planned "
                            "without requant")
    rows = spec.rows
    beat = spec.in_stream_bits // 8
    pad = layer.pad
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Cg, Kg = layer.Cg, layer.Kg
    kt_size, c_tile = program.k_tile, spec.flow.facts(spec, layer).c_tile
    frames = []
    for cmd in program.commands:
        payload = b""
        if cmd.op == Op.LOAD_INPUT:
            ch = slice(cmd.g * Cg + cmd.c0, cmd.g * Cg + min(cmd.c0 + c_tile, Cg))
            h, v = cmd.h0 + pad, cmd.w0 + pad
            region = np.zeros((rows, cmd.hn, cmd.wn), dtype=np.int64)
            st = cmd.step
            src = xp[cmd.n, ch, h:h + (cmd.hn - 1) * st + 1:st, v:v + (cmd.wn - 1) * st + 1:st]
            region[:src.shape[0]] = src
            payload = pack_lanes(region.transpose(1, 2, 0).reshape(-1, rows), spec.act_bits, beat)
        elif cmd.op == Op.LOAD_WEIGHT:
            ks = slice(cmd.g * Kg + cmd.k0, cmd.g * Kg + min(cmd.k0 + kt_size, Kg))
            cs = slice(cmd.c0, min(cmd.c0 + c_tile, Cg))
            src = w[ks, cs].transpose(2, 3, 1, 0)  # R, S, c, k
            blk, lanes = spec.flow.weight_block(spec, layer, src, ks.stop - ks.start,
                                                cs.stop - cs.start)
            payload = pack_lanes(blk.reshape(-1, lanes), spec.weight_bits, beat)
        elif cmd.op in (Op.LOAD_QUANT, Op.LOAD_BIAS):
            # one beat per output channel: per lane (lane 0 first), or per word (input-stationary)
            lanes = np.zeros((cmd.count, 1), dtype=np.int64)
            ks = slice(cmd.g * Kg + cmd.k0, cmd.g * Kg + min(cmd.k0 + cmd.count, Kg))
            if cmd.op == Op.LOAD_QUANT:
                lanes[:ks.stop - ks.start, 0] = scale_bits[ks]
                payload = pack_lanes(lanes, 32, beat)
            else:
                lanes[:ks.stop - ks.start, 0] = bias[ks]
                payload = pack_lanes(lanes, spec.acc_bits, beat)
        elif cmd.op == Op.LOAD_ADD:
            payload = pack_lanes(add.beats().reshape(-1, 1), 32, beat)
        elif cmd.op == Op.STORE and add_fields:
            payload = pack_lanes(store_words(spec, cmd, residual, Kg), spec.out_bits, beat)
        extra = {**store_fields, **add_fields} if cmd.op == Op.STORE else None
        frames.append(_header_bytes(spec, cmd, extra) + payload)
    return frames


def _add_fields(program: Program, residual, add) -> tuple[dict, AddQuant | None, object]:
    """A STORE's header fields for ``program``'s residual Add (none without one), and the Add
    and the residual checked (:func:`check_add`); refuses a residual or Add the program does not
    match."""
    if not program.add:
        if residual is not None or add is not None:
            raise AccelgenError("a residual (or Add parameters) was given but the program was "
                                "planned without the residual add (gen/residual.py ConvAdd)")
        return {}, None, None
    if program.pool:
        raise AccelgenError("a STORE cannot both max-pool and add a residual; the program "
                            "pools, so the Add stays on the host")
    if residual is None or add is None:
        raise AccelgenError("the program adds a residual on the STORE path but no residual "
                            "tensor and Add parameters (gen.quant.AddQuant) were given")
    add, residual = check_add(program, add, residual)
    return ({"add_swap": int(add.swap), "res_unsigned": int(not add.res_signed)}, add,
            residual)


def decode(program: Program, out_frames: list[bytes], quant=None, *,
           add: AddQuant | None = None) -> np.ndarray:
    """Assemble the output tensor (NKPQ, int64) from the STORE frames, in program order. A
    requantised program's outputs are unsigned when ``quant``'s range is (``qmin >= 0``); with
    the residual add, when ``add``'s is."""
    spec, layer = program.spec, program.layer
    signed = not (program.requant and quant is not None and not check_quant(program, quant).signed)
    if program.add:
        if add is None:
            raise AccelgenError("the program adds a residual on the STORE path: give its Add "
                                "parameters (gen.quant.AddQuant) to decode the outputs")
        signed = check_add(program, add)[0].signed
    elif add is not None:
        raise AccelgenError("Add parameters were given but the program was planned without the "
                            "residual add")
    stores = [c for c in program.commands if c.op == Op.STORE]
    if len(out_frames) != len(stores):
        raise AccelgenError(
            f"the hardware returned {len(out_frames)} output frames but the program has "
            f"{len(stores)} STOREs")
    kr, ks = program.pool or (1, 1)
    N, K, P, Q = layer.output_shape
    y = np.zeros((N, K, P // kr, Q // ks), dtype=np.int64)
    beat = spec.out_stream_bits // 8
    Kg = layer.Kg
    for cmd, data in zip(stores, out_frames, strict=True):
        beats = store_beats(cmd.header)
        if len(data) != beats * beat:
            raise AccelgenError(
                f"an output frame has {len(data)} bytes, expected {beats * beat}")
        if program.pool:     # the STORE's windows: its region of the pooled map
            cmd = dataclasses.replace(cmd, h0=cmd.h0 // kr, w0=cmd.w0 // ks, hn=cmd.hn // kr,
                                      wn=cmd.wn // ks)
        lane_bits = spec.out_bits if cmd.header.get("requant") else spec.acc_bits
        vals = unpack_lanes(data, lane_bits, spec.cols, beat, signed=signed)
        tile, kn = spec.flow.store_tile(spec, cmd, vals, Kg)
        k = cmd.g * Kg + cmd.k0
        y[cmd.n, k:k + kn, cmd.h0:cmd.h0 + cmd.hn, cmd.w0:cmd.w0 + cmd.wn] = tile
    return y
