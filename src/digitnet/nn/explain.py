"""What the network does with one input: every layer's output, and how each input value moves
an output score (backpropagation carried on down to the pixels).

Both run the plain path (the layers themselves, ``training=False``): an explanation is one or
a few samples, where the fast path's rewrites gain nothing, and it needs every layer's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from digitnet.nn.activations import softmax
from digitnet.nn.errors import NNError
from digitnet.nn.layers import WeightedSum


def forward_layers(model, x: Any) -> list[np.ndarray]:
    """Each layer's output for inputs x (N, *input_shape), in order; the last entry is the
    prediction (probabilities for a softmax head)."""
    out = model.check_x(x, "forward_layers")
    outputs = []
    for layer in model.layers:
        out = layer.forward(out, training=False)
        outputs.append(out)
    return outputs


def trace(model, x: Any, unit: int | Sequence[int] | None = None):
    """``forward_layers`` and the gradient of the score of ``unit`` (default: each sample's
    predicted output) with respect to the inputs, (N, *input_shape): (outputs, gradient).

    The score is the logit (the head's weighted sum, before softmax) for a softmax head, else
    the output itself. Parameter gradients are neither computed nor touched."""
    X = model.check_x(x, "trace")
    *body, head = model.layers
    outputs, out = [], X
    for layer in body:
        out = layer.forward(out, training=False)
        outputs.append(out)
    softmax_head = getattr(getattr(head, "activation", None), "name", "") == "softmax"
    if softmax_head and isinstance(head, WeightedSum):  # Dense(..., activation="softmax")
        score = head.weighted_sum(out)  # (N, C) logits
        prediction = softmax(score)
        back = partial(head.weighted_sum_backward, parameters=False)
    elif softmax_head:  # Activation("softmax"): its input is the logits
        score, prediction = out, head.forward(out)
        back = _identity
    else:
        score = prediction = head.forward(out, training=False)
        back = partial(head.backward, parameters=False)
    outputs.append(prediction)
    units = _units(model, score.argmax(axis=1) if unit is None else unit, len(X))
    grad = np.zeros_like(score)  # (N, outputs): 1 at each sample's unit
    grad[np.arange(len(X)), units] = 1
    grad = back(grad)
    for layer in reversed(body):
        grad = layer.backward(grad, parameters=False)
    return outputs, grad


def _identity(grad: np.ndarray) -> np.ndarray:
    return grad


def _units(model, unit: Any, n: int) -> np.ndarray:
    """``unit`` (one for all n samples, or one each) checked against the outputs."""
    outputs = model.output_shape[-1]
    units = np.asarray(unit)
    if units.ndim > 1 or (units.ndim == 1 and len(units) != n):
        raise NNError(f"give one unit for all samples or one per sample ({n}); got {units.shape}")
    if units.dtype.kind not in "iu" or (
        units.size and not (0 <= units.min() <= units.max() < outputs)
    ):
        raise NNError(f"unit must be an integer in [0, {outputs}); got {unit!r}")
    return np.broadcast_to(units, (n,))
