"""Float networks built with ``onnx.helper`` and quantized with onnxruntime's ``quantize_static``.

What users bring is an FP32 model quantized by ``onnxruntime.quantization.quantize_static``
(../shared/NETWORKS.md). This module makes such models without any download: :class:`NetBuilder`
writes a float graph (Conv, Gemm, MatMul, Relu, Clip, MaxPool, AveragePool, GlobalAveragePool, Add,
Flatten, Reshape, Softmax) with seeded He-initialised weights, :func:`quantize` runs
``quantize_static`` on it with a calibration set, and :func:`resnet18` / :func:`mobilenet_v2_blocks`
build real architectures. The tests, the digits training script and the benchmarks use it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

__all__ = ["NetBuilder", "quantize", "resnet18", "mobilenet_v2_blocks", "OPSET"]

OPSET = 17


def _out(size: int, k: int, stride: int, pad0: int, pad1: int, dil: int) -> int:
    return (size + pad0 + pad1 - dil * (k - 1) - 1) // stride + 1


class NetBuilder:
    """A float ONNX graph written op by op. Each method takes tensor names, returns the output
    tensor's name and tracks its shape; weights are drawn from ``seed`` (He normal)."""

    def __init__(self, name: str, input_shape, seed: int = 0, input_name: str = "input"):
        import onnx  # noqa: F401  (fail early with ImportError if missing)
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.shapes = {input_name: tuple(int(d) for d in input_shape)}
        self.input = input_name
        self._n = 0

    def _name(self, op: str) -> str:
        self._n += 1
        return f"{op.lower()}{self._n}"

    def _init(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def _node(self, op, inputs, shape, **attrs) -> str:
        from onnx import helper
        name = self._name(op)
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        self.shapes[name] = tuple(int(d) for d in shape)
        return name

    def conv(self, x, k, kernel=3, stride=1, pads=None, dilation=1, group=1, bias=True):
        """``kernel``, ``stride``, ``dilation``: int or (h, w); ``pads``: int, or
        (top, left, bottom, right); default 'same' for odd kernels at stride 1."""
        n, c, h, w = self.shapes[x]
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
        if pads is None:
            pads = (dh * (kh - 1) // 2, dw * (kw - 1) // 2) * 2
        elif isinstance(pads, int):
            pads = (pads,) * 4
        fan_in = c // group * kh * kw
        wt = self.rng.normal(0, np.sqrt(2 / fan_in), (k, c // group, kh, kw)).astype(np.float32)
        name = self._name("w")
        inputs = [x, self._init(name, wt)]
        if bias:
            inputs.append(self._init(name + "_b",
                                     self.rng.normal(0, 0.1, k).astype(np.float32)))
        shape = (n, k, _out(h, kh, sh, pads[0], pads[2], dh), _out(w, kw, sw, pads[1], pads[3], dw))
        return self._node("Conv", inputs, shape, kernel_shape=[kh, kw], strides=[sh, sw],
                          pads=list(pads), dilations=[dh, dw], group=group)

    def conv_weights(self, x, wt, b, stride=1, pads=0, group=1):
        """A Conv with the given float weights (KCRS) and bias."""
        n, c, h, w = self.shapes[x]
        k, _, kh, kw = wt.shape
        pads = (pads,) * 4 if isinstance(pads, int) else tuple(pads)
        name = self._name("w")
        inputs = [x, self._init(name, wt.astype(np.float32))]
        if b is not None:
            inputs.append(self._init(name + "_b", b.astype(np.float32)))
        shape = (n, k, _out(h, kh, stride, pads[0], pads[2], 1),
                 _out(w, kw, stride, pads[1], pads[3], 1))
        return self._node("Conv", inputs, shape, kernel_shape=[kh, kw], strides=[stride, stride],
                          pads=list(pads), group=group)

    def relu(self, x):
        return self._node("Relu", [x], self.shapes[x])

    def clip(self, x, lo=0.0, hi=6.0):
        name = self._name("clip")
        mn = self._init(name + "_min", np.array(lo, dtype=np.float32))
        mx = self._init(name + "_max", np.array(hi, dtype=np.float32))
        return self._node("Clip", [x, mn, mx], self.shapes[x])

    def _pool(self, op, x, kernel, stride, pads, **extra):
        n, c, h, w = self.shapes[x]
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        stride = kernel if stride is None else stride
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        pads = (pads,) * 4 if isinstance(pads, int) else tuple(pads)
        shape = (n, c, _out(h, kh, sh, pads[0], pads[2], 1), _out(w, kw, sw, pads[1], pads[3], 1))
        return self._node(op, [x], shape, kernel_shape=[kh, kw], strides=[sh, sw], pads=list(pads),
                          **extra)

    def maxpool(self, x, kernel=2, stride=None, pads=0):
        return self._pool("MaxPool", x, kernel, stride, pads)

    def avgpool(self, x, kernel=2, stride=None, pads=0, count_include_pad=0):
        return self._pool("AveragePool", x, kernel, stride, pads,
                          count_include_pad=count_include_pad)

    def gap(self, x):
        n, c, _, _ = self.shapes[x]
        return self._node("GlobalAveragePool", [x], (n, c, 1, 1))

    def add(self, a, b):
        return self._node("Add", [a, b], self.shapes[a])

    def flatten(self, x):
        s = self.shapes[x]
        return self._node("Flatten", [x], (s[0], int(np.prod(s[1:]))), axis=1)

    def reshape(self, x, shape):
        name = self._name("shape")
        self._init(name, np.array(shape, dtype=np.int64))
        s = self.shapes[x]
        total = int(np.prod(s))
        out = [s[i] if d == 0 else d for i, d in enumerate(shape)]
        if -1 in out:
            out[out.index(-1)] = total // int(-np.prod(out))
        return self._node("Reshape", [x, name], out)

    def gemm(self, x, k, bias=True):
        n, c = self.shapes[x]
        wt = self.rng.normal(0, np.sqrt(2 / c), (k, c)).astype(np.float32)
        name = self._name("fc")
        inputs = [x, self._init(name + "_w", wt)]
        if bias:
            inputs.append(self._init(name + "_b", self.rng.normal(0, 0.1, k).astype(np.float32)))
        return self._node("Gemm", inputs, (n, k), transB=1)

    def gemm_weights(self, x, wt, b):
        """A Gemm with the given float weights (out, in) and bias."""
        name = self._name("fc")
        inputs = [x, self._init(name + "_w", wt.astype(np.float32)),
                  self._init(name + "_b", b.astype(np.float32))]
        return self._node("Gemm", inputs, (self.shapes[x][0], wt.shape[0]), transB=1)

    def matmul(self, x, k):
        s = self.shapes[x]
        wt = self.rng.normal(0, np.sqrt(2 / s[-1]), (s[-1], k)).astype(np.float32)
        return self._node("MatMul", [x, self._init(self._name("mm") + "_w", wt)], (*s[:-1], k))

    def softmax(self, x, axis=-1):
        return self._node("Softmax", [x], self.shapes[x], axis=axis)

    def model(self, output: str, output_name: str = "output", dynamic_batch: bool = False):
        """The float ModelProto with ``output`` renamed to ``output_name``; ``dynamic_batch``
        makes the batch dimension symbolic ("N")."""
        from onnx import TensorProto, checker, helper
        for node in self.nodes:
            node.output[:] = [output_name if o == output else o for o in node.output]
        shape, ishape = list(self.shapes[output]), list(self.shapes[self.input])
        if dynamic_batch:
            shape[0] = ishape[0] = "N"
        g = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(self.input, TensorProto.FLOAT, ishape)],
            [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, shape)],
            initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="accelgen")
        m.ir_version = 8
        checker.check_model(m)
        return m


def quantize(model, calibration, *, fmt: str = "qdq", activations: str = "int8",
             weights: str = "int8", per_channel: bool = False, extra_options=None, **kwargs):
    """``quantize_static`` on ``model`` (a float ModelProto) with ``calibration`` (a list of input
    arrays, or dicts input name -> array). ``fmt``: "qdq" or "qoperator"; ``activations`` and
    ``weights``: "int8" or "uint8"; other keywords (``nodes_to_exclude``, ...) go to
    ``quantize_static``. Returns the quantized ModelProto."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    qt = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    formats = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
    name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([c if isinstance(c, dict) else {name: np.asarray(c, np.float32)}
                               for c in calibration])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory(prefix="accelgen-quant-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "quant.onnx"
        onnx.save(model, src)
        quantize_static(str(src), str(dst), Reader(), quant_format=formats[fmt],
                        per_channel=per_channel, activation_type=qt[activations],
                        weight_type=qt[weights], extra_options=extra_options, **kwargs)
        return onnx.load(dst)


def _basic_block(b: NetBuilder, x, k, stride):
    y = b.relu(b.conv(x, k, 3, stride))
    y = b.conv(y, k, 3, 1)
    if stride != 1 or b.shapes[x][1] != k:
        x = b.conv(x, k, 1, stride, pads=0)
    return b.relu(b.add(y, x))


def resnet18(seed: int = 0, size: int = 224, classes: int = 1000, batch: int = 1):
    """ResNet-18 (He et al.) with batch norm folded away (omitted) and seeded He-normal weights,
    as a float ModelProto ending in Softmax."""
    b = NetBuilder("resnet18", (batch, 3, size, size), seed)
    x = b.relu(b.conv(b.input, 64, 7, 2, pads=3))
    x = b.maxpool(x, 3, 2, pads=1)
    for k, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        x = _basic_block(b, x, k, stride)
        x = _basic_block(b, x, k, 1)
    x = b.flatten(b.gap(x))
    return b.model(b.softmax(b.gemm(x, classes)))


def mobilenet_v2_blocks(seed: int = 0, size: int = 56, batch: int = 1):
    """The stem and first inverted-residual blocks of MobileNetV2 (1x1 expand, ReLU6, 3x3
    depthwise, ReLU6, 1x1 project, residual add), then GAP, a classifier and Softmax."""
    b = NetBuilder("mobilenet_v2_blocks", (batch, 3, size, size), seed)
    x = b.clip(b.conv(b.input, 32, 3, 2))

    def block(x, expand, k, stride):
        c = b.shapes[x][1]
        y = x
        if expand != 1:
            y = b.clip(b.conv(y, c * expand, 1, 1, pads=0))
        y = b.clip(b.conv(y, c * expand, 3, stride, group=c * expand))
        y = b.conv(y, k, 1, 1, pads=0)
        return b.add(y, x) if stride == 1 and c == k else y

    x = block(x, 1, 16, 1)
    x = block(x, 6, 24, 2)
    x = block(x, 6, 24, 1)
    x = block(x, 6, 32, 2)
    x = block(x, 6, 32, 1)
    x = b.flatten(b.gap(x))
    return b.model(b.softmax(b.gemm(x, 10)))
