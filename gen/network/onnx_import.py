"""Import a quantized ONNX model into a :class:`~gen.network.graph.Graph` of integer layer nodes.

Two formats, as ``onnxruntime.quantization.quantize_static`` writes them:

* **QDQ** (its default): float ops between DequantizeLinear (DQ) and QuantizeLinear (Q) nodes. A
  group ``DQ inputs -> op -> Q`` becomes the quantized node onnxruntime's CPU provider fuses it
  into at its default optimisation level (Conv -> QLinearConv, Gemm/MatMul -> QLinearMatMul,
  Add -> QLinearAdd, AveragePool/GlobalAveragePool/Softmax -> QLinear*, MaxPool/Reshape/Flatten
  with equal input and output quantisation -> the integer op). On x86, onnxruntime first turns
  each int8 activation Q/DQ pair whose Q feeds exactly one node into uint8 with the zero point
  + 128 (QDQS8ToU8Transformer) and fuses only uint8 groups; an int8 activation that feeds
  several nodes (a residual branch) stays int8, and onnxruntime then runs the Convs and Adds
  around it in float. This importer applies the same conversion and refuses the second case.
* **QOperator**: QLinearConv, QLinearMatMul, QGemm, QLinearAdd, QLinearAveragePool,
  QLinearGlobalAveragePool, QLinearSoftmax and integer MaxPool/Reshape/Flatten, taken as they are.

Bad input raises :class:`~gen.errors.AccelgenError` with one line naming the file or node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AccelgenError
from .graph import Graph, Node, QParams, Tensor

__all__ = ["load", "load_model_proto"]

_NP = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64"}
_DTYPES = {np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8", np.dtype(np.int32): "int32"}
_QDQ_OPS = {"Conv", "Gemm", "MatMul", "Add", "AveragePool", "GlobalAveragePool", "Softmax",
            "MaxPool", "Reshape", "Flatten", "Relu", "Clip"}
_QOP_OPS = {"QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearAveragePool",
            "QLinearGlobalAveragePool", "QLinearSoftmax"}
_SUPPORTED = sorted(_QDQ_OPS | _QOP_OPS | {"QuantizeLinear", "DequantizeLinear", "Identity"})


def load_model_proto(model):
    """``model``: a path, bytes or an ``onnx.ModelProto`` -> (ModelProto, display name)."""
    import onnx
    from google.protobuf.message import DecodeError
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "model"
    if isinstance(model, (bytes, bytearray)):
        what, data = "the model bytes", bytes(model)
    else:
        path = Path(model)
        what = str(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise AccelgenError(f"cannot read ONNX model {what}: {e.strerror}") from None
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError):
        raise AccelgenError(f"{what} is not an ONNX model (it does not parse as a ModelProto); "
                            f"give a .onnx file exported and quantized with onnxruntime") from None
    if not proto.graph.node:
        raise AccelgenError(f"{what} is not an ONNX model with a graph (no nodes); give a .onnx "
                            f"file exported and quantized with onnxruntime")
    # ONNX's own checker: every node against its operator schema (inputs, required attributes),
    # known tensor types, a graph in topological order; a malformed model stops here
    try:
        onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AccelgenError(f"{what} is not a valid ONNX model ({first[:300]}); give a .onnx "
                            f"file exported and quantized with onnxruntime") from None
    return proto, what


def load(model, *, batch: int | None = None) -> Graph:
    """Import ``model`` (path, bytes or ModelProto). A symbolic batch dimension of the input is
    set to ``batch`` (default 1); any other symbolic dimension is refused."""
    proto, what = load_model_proto(model)
    return _Importer(proto, what, batch).run()


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _Importer:
    def __init__(self, proto, what, batch):
        from onnx import numpy_helper
        self.proto, self.what, self.g = proto, what, proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 13)
        def array(t):
            try:
                return numpy_helper.to_array(t)
            except (ValueError, TypeError, KeyError):   # data that does not fill its dims
                raise AccelgenError(f"{what}: tensor {t.name!r} is malformed (its data does not "
                                    f"match its type and shape {list(t.dims)})") from None
        self.inits = {i.name: array(i) for i in self.g.initializer}
        for n in self.g.node:
            if n.op_type == "Constant" and "value" in _attrs(n):
                self.inits[n.output[0]] = array(_attrs(n)["value"])
        self.consumers: dict[str, list] = {}
        self.producer = {}
        for n in self.g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
            for o in n.output:
                self.producer[o] = n
        self.graph_outputs = [o.name for o in self.g.output]
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.dq_src: dict[str, str] = {}       # float tensor of an activation DQ -> its int tensor
        self.materialised: set[str] = set()
        self.done: set[str] = set()             # ONNX node names consumed by a group
        self.batch = batch
        self.fmt = "qoperator"

    # ---- helpers ---------------------------------------------------------------------------
    def err(self, node, msg):
        raise AccelgenError(f"{self.what}: node {node.name!r} ({node.op_type}): {msg}")

    def const(self, name, node):
        if name not in self.inits:
            self.err(node, f"input {name!r} must be a constant initializer")
        return self.inits[name]

    def qparams(self, node, s_name, z_name, dtype=None, axis=None):
        scale = np.asarray(self.const(s_name, node), dtype=np.float32)
        if z_name:
            zp = self.const(z_name, node)
            dtype = _DTYPES.get(zp.dtype, str(zp.dtype))
        else:
            zp = np.zeros(scale.shape, dtype=np.int64)
        if dtype not in ("int8", "uint8", "int32"):
            self.err(node, f"quantisation type {dtype} is not supported: use int8 or uint8")
        return QParams(scale, np.asarray(zp, dtype=np.int64), dtype, axis)

    def add_tensor(self, name, shape, dtype, q=None):
        self.tensors[name] = Tensor(name, tuple(int(d) for d in shape), dtype, q)

    def emit(self, op, inputs, output, shape, dtype, q=None, source=(), **attrs):
        self.add_tensor(output, shape, dtype, q)
        self.nodes.append(Node(name=source[0] if source else output, op=op, inputs=list(inputs),
                               outputs=[output], attrs=attrs, source=list(source)))

    def only_q_consumer(self, out):
        """The QuantizeLinear that is the only consumer of ``out`` (not a graph output)."""
        cons = self.consumers.get(out, [])
        if len(cons) == 1 and cons[0].op_type == "QuantizeLinear" and out not in self.graph_outputs:
            return cons[0]
        return None

    def act(self, name, node):
        """The integer tensor behind the float input ``name`` (an activation DQ's output)."""
        if name in self.dq_src:
            return self.dq_src[name]
        return None

    def float_input(self, name):
        """Make the float tensor ``name`` exist (emit the DQ it comes from, once)."""
        if name in self.dq_src and name not in self.materialised:
            src = self.dq_src[name]
            t = self.tensors[src]
            self.emit("DequantizeLinear", [src], name, t.shape, "float32", source=[name])
            self.materialised.add(name)
        if name not in self.tensors:
            raise AccelgenError(f"{self.what}: tensor {name!r} is used before it is computed "
                                f"or comes from an unsupported node")
        return name

    # ---- the pass --------------------------------------------------------------------------
    def run(self) -> Graph:
        self.check_quantized()
        for inp in self.g.input:
            if inp.name in self.inits:
                continue
            self.add_input(inp)
        for node in self.g.node:
            if node.name in self.done or node.op_type == "Constant":
                continue
            self.visit(node)
        for o in self.graph_outputs:
            if o in self.dq_src:
                self.float_input(o)
            if o not in self.tensors:
                raise AccelgenError(f"{self.what}: graph output {o!r} is not computed by a "
                                    f"supported node")
        graph = Graph(name=self.g.name or "model", nodes=self.nodes, tensors=self.tensors,
                      inputs=[i.name for i in self.g.input if i.name not in self.inits],
                      outputs=list(self.graph_outputs), fmt=self.fmt)
        if self.fmt == "qdq":
            _s8_to_u8(graph, self)
        return graph

    def check_quantized(self):
        ops = {n.op_type for n in self.g.node}
        if not ops & ({"QuantizeLinear"} | _QOP_OPS):
            raise AccelgenError(
                f"{self.what} is a float (unquantized) model: it has no QuantizeLinear or QLinear* "
                f"nodes; quantize it with onnxruntime.quantization.quantize_static first")
        if "QuantizeLinear" in ops and "DequantizeLinear" in ops and ops & {"Conv", "Gemm", "MatMul"}:
            self.fmt = "qdq"
        for n in self.g.node:
            if n.domain not in ("", "ai.onnx", "com.microsoft"):
                self.err(n, f"operator domain {n.domain!r} is not supported")
            if n.op_type not in _SUPPORTED and n.op_type != "Constant":
                self.err(n, f"operator {n.op_type} is not supported; supported: "
                            f"{', '.join(_SUPPORTED)}")

    def add_input(self, inp):
        tt = inp.type.tensor_type
        dtype = _NP.get(tt.elem_type)
        if dtype != "float32":
            raise AccelgenError(f"{self.what}: input {inp.name!r} is {dtype or tt.elem_type}; "
                                f"only float32 model inputs (quantized by the model's first "
                                f"QuantizeLinear) are supported")
        dims = []
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(d.dim_value)
            elif i == 0:
                dims.append(self.batch or 1)
            else:
                raise AccelgenError(
                    f"{self.what}: input {inp.name!r} has a dynamic dimension {i} "
                    f"({d.dim_param or '?'}); export the model with a fixed input shape")
        if self.batch and dims and dims[0] != self.batch:
            dims[0] = self.batch
        self.add_tensor(inp.name, dims, "float32")

    def visit(self, node):
        op = node.op_type
        if op == "DequantizeLinear":
            return self.visit_dq(node)
        if op == "QuantizeLinear":
            return self.visit_q(node)
        if op in _QOP_OPS:
            return self.visit_qop(node)
        if op == "Identity":
            src = node.input[0]
            if src in self.dq_src:
                self.dq_src[node.output[0]] = self.dq_src[src]
            else:
                t = self.tensors[self.float_input(src)]
                self.emit("Reshape", [src], node.output[0], t.shape, t.dtype, t.q, [node.name],
                          target=t.shape)
            return None
        return self.visit_float_op(node)

    def visit_dq(self, node):
        x = node.input[0]
        if x in self.inits:          # a weight or bias: read by the group that uses it
            return None
        t = self.tensors.get(x)
        if t is None or t.dtype not in ("int8", "uint8"):
            self.err(node, f"input {x!r} must be an int8/uint8 activation")
        self.dq_src[node.output[0]] = x
        return None

    def visit_q(self, node):
        x = self.float_input(node.input[0])
        q = self.qparams(node, node.input[1], node.input[2] if len(node.input) > 2 else None,
                         "uint8")
        if q.scale.size != 1:
            self.err(node, "per-channel activation quantisation is not supported")
        self.emit("QuantizeLinear", [x], node.output[0], self.tensors[x].shape, q.dtype, q,
                  [node.name])

    # ---- QDQ groups ------------------------------------------------------------------------
    def const_dq(self, name, node):
        """(int values, QParams) of a constant input behind a DQ, or None."""
        n = self.producer.get(name)
        if n is None or n.op_type != "DequantizeLinear" or n.input[0] not in self.inits:
            return None
        v = self.inits[n.input[0]]
        q = self.qparams(n, n.input[1], n.input[2] if len(n.input) > 2 else None,
                         _DTYPES.get(v.dtype, str(v.dtype)), _attrs(n).get("axis", 1))
        return v.astype(np.int64), q

    def visit_float_op(self, node):
        from . import fuse
        qn = self.only_q_consumer(node.output[0])
        if qn is not None and fuse.group(self, node, qn):    # False: not a group onnxruntime fuses
            self.done.add(qn.name)
            return None
        return fuse.float_op(self, node)

    def visit_qop(self, node):
        from . import fuse
        fuse.qoperator(self, node)


def _s8_to_u8(graph: Graph, imp: _Importer) -> None:
    """onnxruntime x86's QDQS8ToU8Transformer: an int8 activation whose Q feeds exactly one node
    becomes uint8 with zero point + 128 (the same real values); fused groups then run on uint8.
    An int8 activation feeding several nodes stays int8 and onnxruntime leaves the groups around
    it unfused, in float: refused, naming the tensor."""
    for t in graph.tensors.values():
        if t.dtype != "int8" or t.q is None:
            continue
        # the Q's edges: the nodes reading the int tensor; DQs count their own readers
        count = _q_edges(imp, t.name)
        if count > 1:
            raise AccelgenError(
                f"{imp.what}: int8 activation {t.name!r} feeds {count} nodes; onnxruntime on x86 "
                f"runs int8 QDQ groups around such a tensor (here a residual branch) in float, "
                f"which no integer model reproduces; quantize with activation_type=QUInt8")
        t.dtype = "uint8"
        t.q = QParams(t.q.scale, t.q.zero_point + 128, "uint8", t.q.axis)
        graph.s8_to_u8.append(t.name)


def _q_edges(imp: _Importer, name: str) -> int:
    """How many nodes read the Q output ``name`` in the ONNX model after onnxruntime gives each
    consumer of a DQ its own DQ (EnsureUniqueDQForNodeUnit)."""
    count = 0
    for c in imp.consumers.get(name, []):
        if c.op_type == "DequantizeLinear":
            out = c.output[0]
            count += len(imp.consumers.get(out, [])) + (out in imp.graph_outputs)
        else:
            count += 1
    count += name in imp.graph_outputs
    return count
