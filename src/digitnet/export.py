"""A digitnet model as ONNX, to run wherever ONNX models run (ONNX Runtime, browsers, phones).

The graph takes ``digits``: (N, 28, 28) float32 in [0, 1] (ink bright, as ``predict`` takes
them) and gives ``probabilities``: (N, 10) float32, the softmax included — the same numbers as
``model.predict``. Layer by layer:

    Flatten, Reshape        -> Flatten / Reshape
    Dense                   -> Gemm (X @ W + b), then its activation
    Conv2D                  -> Conv, kernel (kh, kw, C, F) as ONNX's (F, C, kh, kw)
    MaxPool2D               -> MaxPool
    BatchNorm               -> BatchNormalization (the moving mean and variance)
    Activation              -> Relu, Sigmoid, Tanh, Softmax (last axis); linear: nothing
    Dropout                 -> nothing (inference)

digitnet lays images out channels last (N, H, W, C), ONNX's Conv channels first (N, C, H, W):
the graph transposes where a convolution starts and back before a Flatten, so the flattened
order is digitnet's and the Dense weights stay as trained. Needs the ``onnx`` package
(``pip install digitnet[onnx]``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from digitnet.nn import Sequential
from digitnet.nn.conv import Conv2D, MaxPool2D
from digitnet.nn.errors import NNError
from digitnet.nn.files import atomic_write
from digitnet.nn.layers import Activation, Dense, Dropout, Flatten, Reshape
from digitnet.nn.normalization import BatchNorm

OPSET = 17
INPUT, OUTPUT = "digits", "probabilities"
ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}
TO_CHANNELS_FIRST, TO_CHANNELS_LAST = [0, 3, 1, 2], [0, 2, 3, 1]


class _Graph:
    """The nodes and weights of the graph being built, and the name of the latest output."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self.last = INPUT
        self.channels_first = False  # the layout of ``last`` when it is an image

    def add(self, op: str, *inputs: str, **attributes) -> None:
        name = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(op, [self.last, *inputs], [name], **attributes))
        self.last = name

    def weight(self, name: str, value: np.ndarray) -> str:
        name = f"{name}_{len(self.weights)}"
        self.weights.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def layout(self, channels_first: bool) -> None:
        """Transpose the image ``last`` to the layout asked for, if it is not in it."""
        if self.channels_first != channels_first:
            self.add("Transpose", perm=TO_CHANNELS_FIRST if channels_first else TO_CHANNELS_LAST)
            self.channels_first = channels_first


def to_onnx(model: Sequential):
    """The model as an ``onnx.ModelProto`` (checked by ``onnx.checker``)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise NNError("ONNX export needs the onnx package: pip install 'digitnet[onnx]'") from None
    if not model.built:
        model.build()
    graph = _Graph(helper, numpy_helper)
    for layer in model.layers:
        _add_layer(graph, layer)
    graph.layout(channels_first=False)
    shape_in = ["N", *model.layers[0].input_shape]
    shape_out = ["N", *model.layers[-1].output_shape]
    graph.nodes[-1].output[0] = OUTPUT
    onnx_graph = helper.make_graph(
        graph.nodes,
        model.name or "digitnet",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, shape_in)],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, shape_out)],
        graph.weights,
    )
    proto = helper.make_model(
        onnx_graph,
        producer_name="digitnet",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=f"{INPUT}: (N, 28, 28) float32 in [0, 1], ink bright; {OUTPUT}: (N, 10)",
    )
    proto.ir_version = 8  # readable by ONNX Runtime 1.14 and later
    onnx.checker.check_model(proto)
    return proto


def _add_layer(graph: _Graph, layer) -> None:
    if isinstance(layer, Dropout):
        return
    if isinstance(layer, Flatten):
        graph.layout(channels_first=False)  # digitnet's order of the flattened values
        graph.add("Flatten", axis=1)
    elif isinstance(layer, Reshape):
        graph.layout(channels_first=False)
        graph.add("Reshape", graph.weight("shape", np.array([-1, *layer.target_shape])))
    elif isinstance(layer, Dense):
        graph.add(
            "Gemm", graph.weight("W", layer.params["W"]), graph.weight("b", layer.params["b"])
        )
    elif isinstance(layer, Conv2D):
        graph.layout(channels_first=True)
        W = layer.params["W"].transpose(3, 2, 0, 1)  # (kh, kw, C, F) -> (F, C, kh, kw)
        (top, bottom), (left, right) = layer._pads  # set when built
        graph.add("Conv", graph.weight("W", W), graph.weight("b", layer.params["b"]),
                  kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
                  pads=[top, left, bottom, right])  # fmt: skip
    elif isinstance(layer, MaxPool2D):
        graph.layout(channels_first=True)
        graph.add("MaxPool", kernel_shape=list(layer.pool_size), strides=list(layer.strides))
    elif isinstance(layer, BatchNorm):
        if len(layer.input_shape) == 3:
            graph.layout(channels_first=True)  # ONNX normalises axis 1
        names = [graph.weight(k, layer.params[k]) for k in ("gamma", "beta")]
        names += [graph.weight(k, layer.state[k]) for k in ("moving_mean", "moving_variance")]
        graph.add("BatchNormalization", *names, epsilon=layer.epsilon)
    elif not isinstance(layer, Activation):
        raise NNError(f"ONNX export does not know the layer {type(layer).__name__}")
    if hasattr(layer, "activation"):  # Activation, and Dense and Conv2D: each carries one
        _add_activation(graph, layer.activation.name)


def _add_activation(graph: _Graph, name: str) -> None:
    if name == "linear":
        return
    if name not in ACTIVATIONS:
        raise NNError(f"ONNX export does not know the activation {name!r}")
    if name == "softmax":
        graph.layout(channels_first=False)
        graph.add("Softmax", axis=-1)
    else:
        graph.add(ACTIVATIONS[name])


def export_onnx(model: Sequential, path: str | os.PathLike, replace: bool = False) -> None:
    """Write the model as ONNX to ``path``, atomically; an existing file is replaced only with
    ``replace``."""
    data = to_onnx(model).SerializeToString()
    atomic_write(path, lambda file: file.write(data), replace=replace)
