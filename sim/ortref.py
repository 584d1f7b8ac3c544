"""onnxruntime as the reference: run a quantized model with the one setting exactness needs
(``session.x64quantprecision = "1"``, ../shared/NETWORKS.md), collect every intermediate tensor,
and compare with sim/netgolden.py naming the first node that differs."""

from __future__ import annotations

import dataclasses

import numpy as np

from gen.errors import AccelgenError
from gen.network.graph import Graph

__all__ = ["session", "run", "compare", "Comparison", "optimized_ops"]


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise AccelgenError("onnxruntime is not installed; pip install onnxruntime") from None
    return onnxruntime


def session(model, optimized_path: str | None = None):
    """An onnxruntime CPU session at the default optimisation level with
    ``session.x64quantprecision = "1"`` (without it, AVX2/AVX-512 kernels without VNNI
    saturate int16 pair sums)."""
    ort = _ort()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.x64quantprecision", "1")
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    data = model if isinstance(model, bytes) else model.SerializeToString()
    try:
        return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        msg = str(e).splitlines()[0][:300]
        raise AccelgenError(f"onnxruntime cannot run this model: {msg}") from None


def optimized_ops(model) -> list[str]:
    """The op types of the graph onnxruntime executes after its optimisations."""
    import tempfile

    import onnx
    with tempfile.TemporaryDirectory(prefix="accelgen-ort-") as tmp:
        path = f"{tmp}/optimized.onnx"
        session(model, path)
        return [n.op_type for n in onnx.load(path).graph.node]


def _with_outputs(proto, tensors: dict):
    """A copy of ``proto`` whose graph also outputs ``tensors`` (name -> numpy dtype name)."""
    import onnx
    from onnx import TensorProto, helper
    elem = {"float32": TensorProto.FLOAT, "int8": TensorProto.INT8, "uint8": TensorProto.UINT8}
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    have = {o.name for o in m.graph.output}
    made = {o for n in m.graph.node for o in n.output}
    for name, dtype in tensors.items():
        if name not in have and name in made:
            m.graph.output.append(helper.make_tensor_value_info(name, elem[dtype], None))
    return m


def s8_to_u8_model(proto, names):
    """``proto`` with the int8 Q/DQ pairs of the tensors ``names`` turned into uint8 (zero point
    + 128), as onnxruntime x86's QDQS8ToU8Transformer rewrites them before fusing: the same
    model for onnxruntime, whose intermediates can then be exposed without stopping that
    rewrite (a Q with a graph output is left int8)."""
    import onnx
    from onnx import numpy_helper
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    names = set(names)
    for n in m.graph.node:
        if n.op_type != "QuantizeLinear" or n.output[0] not in names:
            continue
        zp = inits[n.input[2]]
        new = f"{n.output[0]}_u8_zero_point"
        m.graph.initializer.append(numpy_helper.from_array(
            (zp.astype(np.int16) + 128).astype(np.uint8), new))
        n.input[2] = new
        for c in m.graph.node:
            if c.op_type == "DequantizeLinear" and c.input[0] == n.output[0]:
                c.input[2] = new
    return m


def run(model, inputs: dict, tensors: dict | None = None) -> dict[str, np.ndarray]:
    """onnxruntime's outputs, plus the intermediate ``tensors`` (name -> dtype name) that exist
    in the model."""
    proto = model
    if tensors:
        proto = _with_outputs(model, tensors)
    s = session(proto)
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(names, inputs), strict=True))


@dataclasses.dataclass
class Comparison:
    equal: bool
    checked: list[str]                 # node outputs compared, in graph order
    first: dict | None                 # the first differing node: node, op, index, ours, ort
    intermediates: bool                # False when exposing them changed onnxruntime's outputs
    outputs: dict                      # onnxruntime's model outputs

    def describe(self) -> str:
        if self.equal:
            what = f"{len(self.checked)} tensors" if self.intermediates else "the outputs"
            return f"bit-exact with onnxruntime on {what}"
        f = self.first
        return (f"first difference at node {f['node']!r} ({f['op']}) output {f['tensor']!r} "
                f"index {f['index']}: reference {f['ours']}, onnxruntime {f['ort']} "
                f"({f['mismatches']} of {f['size']} values differ)")


def _as_ort(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Our tensor in onnxruntime's dtype: an int8 QDQ activation that onnxruntime keeps as int8
    where we hold its uint8 form (zero point + 128) maps back by - 128."""
    if ours.dtype == np.uint8 and theirs.dtype == np.int8:
        return (ours.astype(np.int16) - 128).astype(np.int8)
    return ours


def compare(model, graph: Graph, env: dict, inputs: dict) -> Comparison:
    """Run onnxruntime on ``inputs`` and compare with the reference's tensors ``env``, node by
    node in graph order."""
    plain = run(model, inputs)
    names = {n.output: graph.tensors[n.output].dtype for n in graph.nodes}
    full = run(s8_to_u8_model(model, graph.s8_to_u8) if graph.s8_to_u8 else model, inputs, names)
    same = all(np.array_equal(plain[o], full[o]) for o in plain)
    ref = full if same else plain
    checked = []
    for node in graph.nodes:
        t = node.output
        if t not in ref:
            continue
        theirs = ref[t]
        ours = _as_ort(np.asarray(env[t]), theirs)
        checked.append(t)
        if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
            if ours.shape != theirs.shape:
                first = {"index": None, "ours": f"shape {ours.shape}",
                         "ort": f"shape {theirs.shape}", "mismatches": -1}
            else:
                bad = np.argwhere(ours != theirs)
                idx = tuple(int(i) for i in bad[0])
                first = {"index": list(idx), "ours": ours[idx].item(), "ort": theirs[idx].item(),
                         "mismatches": int(len(bad))}
            first.update(node=node.name, op=node.op, tensor=t, size=int(theirs.size))
            return Comparison(False, checked, first, same, plain)
    return Comparison(True, checked, None, same, plain)
