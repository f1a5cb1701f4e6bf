"""The fast path's steps for activations and dense layers (``fusion`` lists the rewrites they
make): each has ``forward(X, training)`` and ``backward(dout)`` over its layer's parameters."""

from __future__ import annotations

import numpy as np

from digitnet.nn.activations import ActivationFunction
from digitnet.nn.layers import Dense
from digitnet.nn.parallel import by_rows


class PassThrough:
    """The identity: the head's softmax moved into the loss (rewrite 1)."""

    def forward(self, Z, training):
        return Z

    def backward(self, dA):
        return dA


def clip_negative(Z: np.ndarray) -> None:
    np.maximum(Z, 0, out=Z)


def pass_where_positive(dA: np.ndarray, A: np.ndarray) -> None:
    np.multiply(dA, A > 0, out=dA)


class FastReLU:
    """ReLU in place, over threads (rewrites 4, 5); with ``deferred``, left to the max-pooling
    that follows it in training (rewrite 2)."""

    def __init__(self, deferred: bool = False):
        self.deferred = deferred

    def forward(self, Z, training):
        self._passed = training and self.deferred
        if self._passed:
            return Z
        by_rows(clip_negative, Z)
        if training:
            self._A = Z  # no extra memory: the next layer holds A anyway; A > 0 where Z > 0
        return Z

    def backward(self, dA):
        if not self._passed:
            by_rows(pass_where_positive, dA, self._A)
        return dA


class PlainActivation:
    """Any other activation, as the plain path computes it."""

    def __init__(self, function: ActivationFunction):
        self.function = function

    def forward(self, Z, training):
        return self.function.forward(Z)

    def backward(self, dA):
        return self.function.backward(dA)


def fast_activation(function: ActivationFunction, logits: bool, deferred: bool):
    if logits:
        return PassThrough()
    if function.name == "relu":
        return FastReLU(deferred)
    return PlainActivation(function)


class FastDense:
    """Dense: Z = X @ W, Z += b in place; X kept only in training."""

    def __init__(self, layer: Dense, activation, input_grad: bool):
        self.layer, self.activation, self.input_grad = layer, activation, input_grad

    def forward(self, X, training):
        params = self.layer.params
        Z = X @ params["W"]  # (N, D) @ (D, H) -> (N, H)
        Z += params["b"]
        if training:
            self._X = X
        return self.activation.forward(Z, training)

    def backward(self, dA):
        grads = self.layer.grads
        dZ = self.activation.backward(dA)  # (N, H)
        np.matmul(self._X.T, dZ, out=grads["W"])  # (D, N) @ (N, H) -> (D, H)
        np.add.reduce(dZ, axis=0, out=grads["b"])  # (H,)
        self._X = None
        if not self.input_grad:
            return None
        return dZ @ self.layer.params["W"].T  # (N, H) @ (H, D) -> (N, D)


class FastActivationLayer:
    """An Activation layer: ReLU works in place on a copy (its input belongs to the layer
    below, which may still need it)."""

    def __init__(self, activation):
        self.activation = activation

    def forward(self, X, training):
        in_place = isinstance(self.activation, FastReLU) and not (
            training and self.activation.deferred
        )
        return self.activation.forward(X.copy() if in_place else X, training)

    def backward(self, dout):
        return self.activation.backward(dout)
