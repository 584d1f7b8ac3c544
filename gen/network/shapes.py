"""Static shapes of the imported nodes (ONNX's rules for Conv, pooling, Reshape and Flatten), with
the node named when a shape cannot be resolved."""

from __future__ import annotations

import numpy as np

__all__ = ["resolve_pads", "conv", "pool_attrs", "pool", "reshape", "out_size"]


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def out_size(size, k, stride, p0, p1, dil=1, ceil=False) -> int:
    span = size + p0 + p1 - dil * (k - 1) - 1
    return (-(-span // stride) if ceil else span // stride) + 1


def resolve_pads(imp, node, a, spatial, k, strides, dil) -> tuple:
    """ONNX pads (top, left, bottom, right), from ``pads`` or ``auto_pad``."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = tuple(int(p) for p in a.get("pads", (0, 0, 0, 0)))
        if len(pads) != 4 or min(pads) < 0:
            imp.err(node, f"pads must be 4 non-negative values, not {pads}")
        return pads
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        imp.err(node, f"auto_pad {auto!r} is not supported")
    before, after = [], []
    for size, kk, s, d in zip(spatial, k, strides, dil, strict=True):
        total = max(0, (-(-size // s) - 1) * s + d * (kk - 1) + 1 - size)
        small, big = total // 2, total - total // 2
        before.append(small if auto == "SAME_UPPER" else big)
        after.append(big if auto == "SAME_UPPER" else small)
    return (before[0], before[1], after[0], after[1])


def conv(imp, node, x_shape, w_shape, at) -> tuple:
    n, c, h, w = x_shape
    k, cg, kh, kw = w_shape
    g = at["group"]
    if g < 1 or c % g or k % g or cg != c // g:
        imp.err(node, f"input channels {c}, weight {tuple(w_shape)} and group={g} do not match")
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = at["strides"], at["dilations"], at["pads"]
    p, q = out_size(h, kh, sh, pt, pb, dh), out_size(w, kw, sw, pl, pr, dw)
    if p < 1 or q < 1 or min(sh, sw, dh, dw) < 1:
        imp.err(node, f"a {kh}x{kw} filter does not fit the {h}x{w} input (pads {at['pads']}, "
                      f"strides {at['strides']}, dilations {at['dilations']})")
    return (n, k, p, q)


def pool_attrs(imp, node, x_shape) -> dict:
    a = _attrs(node)
    if len(x_shape) != 4:
        imp.err(node, f"only 2-D pooling (NCHW inputs) is supported, not rank {len(x_shape)}")
    k = tuple(int(v) for v in a["kernel_shape"])
    strides = tuple(int(v) for v in a.get("strides", (1, 1)))
    dil = tuple(int(v) for v in a.get("dilations", (1, 1)))
    if dil != (1, 1):
        imp.err(node, f"pooling with dilations {dil} is not supported")
    if a.get("ceil_mode", 0):
        imp.err(node, "pooling with ceil_mode=1 is not supported; export with ceil_mode=0")
    pads = resolve_pads(imp, node, a, x_shape[2:], k, strides, dil)
    if max(pads[0], pads[2]) >= k[0] or max(pads[1], pads[3]) >= k[1]:
        imp.err(node, f"pads {pads} must be smaller than the kernel {k}")
    return dict(kernel=k, strides=strides, pads=pads,
                count_include_pad=int(a.get("count_include_pad", 0)))


def pool(x_shape, at) -> tuple:
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = at["kernel"], at["strides"], at["pads"]
    return (n, c, out_size(h, kh, sh, pt, pb), out_size(w, kw, sw, pl, pr))


def reshape(imp, node, x_shape) -> tuple:
    """Output shape of Reshape (shape from a constant, 0 copies, -1 infers) or Flatten."""
    total = int(np.prod(x_shape))
    if node.op_type == "Flatten":
        axis = int(_attrs(node).get("axis", 1))
        axis = axis + len(x_shape) if axis < 0 else axis
        return (int(np.prod(x_shape[:axis])), int(np.prod(x_shape[axis:])))
    if node.op_type == "Identity":
        return tuple(x_shape)
    if len(node.input) < 2 or node.input[1] not in imp.inits:
        imp.err(node, "the target shape must be a constant; export with a static shape")
    target = [int(v) for v in imp.inits[node.input[1]].reshape(-1)]
    if _attrs(node).get("allowzero", 0):
        imp.err(node, "Reshape with allowzero=1 is not supported")
    out = [x_shape[i] if d == 0 else d for i, d in enumerate(target)]
    if out.count(-1) > 1:
        imp.err(node, f"target shape {target} has more than one -1")
    if -1 in out:
        rest = int(np.prod([d for d in out if d != -1]))
        if rest == 0 or total % rest:
            imp.err(node, f"cannot reshape {tuple(x_shape)} to {target}")
        out[out.index(-1)] = total // rest
    if int(np.prod(out)) != total:
        imp.err(node, f"cannot reshape {tuple(x_shape)} to {target}")
    return tuple(out)
