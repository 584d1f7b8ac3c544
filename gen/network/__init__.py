"""Whole quantized networks: import an ONNX model (gen/network/onnx_import.py) into a graph of
integer layer nodes (gen/network/graph.py), and lower its conv/FC layers to the accelerator
(gen/network/lower.py). The numpy reference is sim/netgolden.py; onnxruntime as the reference,
sim/ortref.py."""

from .graph import Graph, Node, QParams, Tensor
from .onnx_import import load

__all__ = ["Graph", "Node", "QParams", "Tensor", "load"]
