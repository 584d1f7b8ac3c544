"""The digits model: a small CNN on scikit-learn's bundled 8×8 digits (1,797 images, no download),
trained by tools/train_digits.py and committed quantized as models/digits_cnn_int8.onnx.

This module holds what the script, the tests and the benchmarks share: the seeded train/test
split, the architecture and its export to ONNX.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .zoo import NetBuilder

__all__ = ["MODEL_PATH", "SPLIT_SEED", "TEST_FRACTION", "load_split", "export", "ARCH"]

MODEL_PATH = Path(__file__).resolve().parents[2] / "models" / "digits_cnn_int8.onnx"
SPLIT_SEED = 0
TEST_FRACTION = 0.2
# (name, out channels) of the three 3x3 convs; a 2x2 max-pool follows conv2
ARCH = (("conv1", 8), ("conv2", 16), ("conv3", 32))


def load_split(seed: int = SPLIT_SEED):
    """``(x_train, y_train, x_test, y_test, test_indices)``: images as float32 NCHW in [0, 1]
    (pixel / 16), a fixed permutation of the 1,797 images, the last 20% the test split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        from ..errors import AccelgenError
        raise AccelgenError("the digits data comes with scikit-learn; pip install scikit-learn") \
            from None
    d = load_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0))[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * TEST_FRACTION))
    train, test = np.sort(order[n_test:]), np.sort(order[:n_test])
    return x[train], y[train], x[test], y[test], test


def export(params: dict):
    """The float model (input (N, 1, 8, 8) -> Softmax probabilities (N, 10)) from trained
    ``params``: conv1..conv3 weights (KCRS) and biases, fc weights (10, 32) and bias."""
    b = NetBuilder("digits_cnn", (1, 1, 8, 8))
    x = b.input
    for name, _ in ARCH:
        x = b.relu(b.conv_weights(x, params[name + "_w"], params[name + "_b"], pads=1))
        if name == "conv2":
            x = b.maxpool(x, 2)
    x = b.flatten(b.gap(x))
    x = b.gemm_weights(x, params["fc_w"], params["fc_b"])
    return b.model(b.softmax(x), output_name="probabilities", dynamic_batch=True)
