"""The fast path: how a compiled model runs, over the very parameters of its layers.

A model runs a ``Plan``: steps with ``forward(X, training)`` and ``backward(dout)``, and the
loss that training minimises on the last step's output. ``Sequential(fuse=False)`` runs the
plain plan — its layers, each as its math reads (``plain_plan``). By default it runs
``fused_plan``, which rewrites the same computation for speed:

1. **softmax + cross-entropy.** The head outputs its logits Z and the loss takes them: the
   loss is log-sum-exp stable and its gradient is simply (softmax(Z) - onehot) / N.
   Predictions are softmax(Z).
2. **ReLU after max-pooling.** max and ReLU commute (ReLU is monotone): in training, a ReLU
   that feeds a MaxPool2D is applied to the pooled maxima, a quarter of the numbers.
3. **The bias inside the GEMM.** A convolution's windows get a column of 1s and are multiplied
   by [W; b] (``Conv2D.kernel_and_bias``): one GEMM for the weighted sums and the bias, one
   for dW and db.
4. **In place.** ReLU overwrites the pre-activation its layer just computed, and its backward
   the gradient it is given; training forward passes keep only what backward needs.
5. **Threads.** Element-wise passes over large batches (ReLU, pooling, copying windows, the
   strided additions of a convolution's dX, batch normalisation's centring, scaling and
   gradient) run on every core (``digitnet.nn.parallel``). For BatchNorm, which had run on one
   core, that made 12,800 digits of the cnn preset 11.1 -> 9.0 s (medians of 3).
6. **Less work backward.** No dX below the first layer with parameters.

A convolution's dX was also computed, for large batches with at least as many input channels
as filters, as one GEMM over the windows of the padded gradient (a full convolution); measured
again on seven shapes (64 -> 64 valid and same, 32 -> 32, 128 -> 64, 128 -> 128), the GEMM per
kernel offset with its additions split over the cores was 1.25-2.1x faster in every one, so that
rewrite is gone.

``tests/test_fusion.py`` holds each rewrite to the plain path: the same outputs and gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import pairwise

import numpy as np

from digitnet.nn.activations import ActivationFunction, softmax
from digitnet.nn.conv import Conv2D, MaxPool2D, pool, route, windows
from digitnet.nn.layers import Activation, Dense, Layer
from digitnet.nn.losses import CategoricalCrossentropy, Loss, SparseCategoricalCrossentropy
from digitnet.nn.normalization import BatchNorm
from digitnet.nn.parallel import by_rows


@dataclass
class Plan:
    """Steps run in order; ``loss`` is what training minimises on the last step's output, and
    ``logits`` says that output is logits (predictions are their softmax)."""

    steps: list
    loss: Loss | None
    logits: bool = False
    first_trainable: int = 0  # backward stops at this step: nothing below needs a gradient

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        for step in self.steps:
            X = step.forward(X, training)
        return X

    def backward(self, dout: np.ndarray) -> None:
        for step in reversed(self.steps[self.first_trainable :]):
            dout = step.backward(dout)

    def predictions(self, out: np.ndarray) -> np.ndarray:
        return softmax(out) if self.logits else out


def plain_plan(layers: list[Layer], loss: Loss | None) -> Plan:
    """The layers themselves, as the math reads: the textbook path."""
    return Plan(list(layers), loss)


def fused_plan(layers: list[Layer], loss: Loss | None) -> Plan:
    """The same computation, rewritten for speed (the module's notes list the rewrites)."""
    trainable = [i for i, layer in enumerate(layers) if layer.params]
    first = trainable[0] if trainable else len(layers)
    head = layers[-1]
    logits = (
        getattr(head, "activation", None) is not None
        and head.activation.name == "softmax"
        and isinstance(loss, (SparseCategoricalCrossentropy, CategoricalCrossentropy))
        and not loss.from_logits
    )
    deferred = {i for i, (before, after) in enumerate(pairwise(layers))
                if isinstance(after, MaxPool2D) and _relu(before)}  # fmt: skip
    steps = []
    for i, layer in enumerate(layers):
        act = getattr(layer, "activation", None)
        if act is not None:
            act = _fast_activation(act, logits and i == len(layers) - 1, i in deferred)
        input_grad = i > first
        if isinstance(layer, Dense):
            steps.append(FastDense(layer, act, input_grad))
        elif isinstance(layer, Conv2D):
            steps.append(FastConv(layer, act, input_grad))
        elif isinstance(layer, Activation):
            steps.append(FastActivationLayer(act))
        elif isinstance(layer, MaxPool2D):
            steps.append(FastPool(layer, relu_after=i - 1 in deferred))
        elif isinstance(layer, BatchNorm):
            steps.append(FastBatchNorm(layer))
        else:
            steps.append(layer)  # Flatten, Reshape, Dropout: as they are
    return Plan(steps, loss.with_logits() if logits else loss, logits, first)


def _relu(layer: Layer) -> bool:
    act = getattr(layer, "activation", None)
    return act is not None and act.name == "relu"


# ------------------------------------------------------------------------------ activations


class PassThrough:
    """The identity: the head's softmax moved into the loss (rewrite 1)."""

    def forward(self, Z, training):
        return Z

    def backward(self, dA):
        return dA


def _clip_negative(Z: np.ndarray) -> None:
    np.maximum(Z, 0, out=Z)


def _pass_where_positive(dA: np.ndarray, A: np.ndarray) -> None:
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
        by_rows(_clip_negative, Z)
        if training:
            self._A = Z  # no extra memory: the next layer holds A anyway; A > 0 where Z > 0
        return Z

    def backward(self, dA):
        if not self._passed:
            by_rows(_pass_where_positive, dA, self._A)
        return dA


class PlainActivation:
    """Any other activation, as the plain path computes it."""

    def __init__(self, function: ActivationFunction):
        self.function = function

    def forward(self, Z, training):
        return self.function.forward(Z)

    def backward(self, dA):
        return self.function.backward(dA)


def _fast_activation(function: ActivationFunction, logits: bool, deferred: bool):
    if logits:
        return PassThrough()
    if function.name == "relu":
        return FastReLU(deferred)
    return PlainActivation(function)


# ----------------------------------------------------------------------------------- layers


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


def im2col_with_ones(Xp: np.ndarray, kernel, strides, out_hw) -> np.ndarray:
    """``conv.im2col`` with a last column of 1s, (N * Ho * Wo, kh * kw * C + 1), copied on every
    core (rewrite 5): multiplied by [W; b] it adds the bias in the same GEMM (rewrite 3)."""
    rows = windows(Xp, kernel, strides, out_hw)  # (N, Ho, Wo, kh, kw, C) view
    N, Ho, Wo, kh, kw, C = rows.shape
    K = kh * kw * C
    cols = np.empty((N * Ho * Wo, K + 1), dtype=Xp.dtype)
    cols[:, K] = 1
    by_rows(np.copyto, cols[:, :K].reshape(N, Ho, Wo, kh, kw, C), rows)
    return cols


def _add_into(total: np.ndarray, part: np.ndarray) -> None:
    np.add(total, part, out=total)


class FastConv:
    """Conv2D: one GEMM with [W; b] forward, one for dW and db backward; dX a GEMM per kernel
    offset, its additions onto the input grid split over the cores."""

    def __init__(self, layer: Conv2D, activation, input_grad: bool):
        self.layer, self.activation, self.input_grad = layer, activation, input_grad

    def forward(self, X, training):
        layer = self.layer
        N, (Ho, Wo, F) = len(X), layer.output_shape
        cols = im2col_with_ones(layer.pad(X), layer.kernel_size, layer.strides, (Ho, Wo))
        Z = cols @ layer.kernel_and_bias  # (N*Ho*Wo, K+1) @ (K+1, F): bias included
        if training:
            self._cols, self._N = cols, N
        return self.activation.forward(Z.reshape(N, Ho, Wo, F), training)

    def backward(self, dA):
        layer = self.layer
        F = layer.output_shape[-1]
        dZ = self.activation.backward(dA).reshape(-1, F)  # (N*Ho*Wo, F)
        np.matmul(self._cols.T, dZ, out=layer.kernel_and_bias_grads)  # dW and db at once
        self._cols = None
        if not self.input_grad:
            return None
        return layer.unpad(self._input_gradient(dZ, self._N))

    def _input_gradient(self, dZ, N):
        layer = self.layer
        (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
        Ho, Wo, _ = layer.output_shape
        H, W, C = layer.input_shape
        (top, bottom), (left, right) = layer._pads
        Hp, Wp = H + top + bottom, W + left + right
        kernel = layer.params["W"]  # (kh, kw, C, F)
        dXp = np.zeros((N, Hp, Wp, C), dtype=dZ.dtype)
        for i in range(kh):  # as Conv2D.scatter, the additions split over threads
            for j in range(kw):
                share = (dZ @ kernel[i, j].T).reshape(N, Ho, Wo, C)
                grid = dXp[:, i : i + (Ho - 1) * sh + 1 : sh, j : j + (Wo - 1) * sw + 1 : sw]
                by_rows(_add_into, grid, share)
        return dXp


def _pool_then_relu(offsets, X, out, positive) -> None:
    """``conv.pool`` over some rows, then (``positive`` given) the ReLU moved after it: out =
    max(out, 0), ``positive`` where the ReLU passes."""
    pool(offsets, X, out)
    if positive is not None:
        np.greater(out, 0, out=positive)
        np.maximum(out, 0, out=out)  # windows without a positive input: winners masked out


def _route_through_relu(offsets, disjoint, tiles, X, out, dout, positive, dX) -> None:
    """``conv.route`` over some rows, through the ReLU after pooling where ``positive``."""
    route(offsets, disjoint, tiles, X, out, dout if positive is None else dout * positive, dX)


class FastPool:
    """MaxPool2D over threads, with the ReLU of the layer before it in training (rewrite 2)."""

    def __init__(self, layer: MaxPool2D, relu_after: bool):
        self.layer, self.relu_after = layer, relu_after
        self.offsets = None

    def forward(self, X, training):
        layer = self.layer
        self.offsets = self.offsets or layer.offsets()
        out = np.empty((len(X), *layer.output_shape), X.dtype)
        positive = np.empty(out.shape, bool) if training and self.relu_after else None
        by_rows(partial(_pool_then_relu, self.offsets), X, out, positive)
        if training:
            self._X, self._out, self._positive = X, out, positive
        return out

    def backward(self, dout):
        dX = np.empty_like(self._X)
        route = partial(_route_through_relu, self.offsets, *self.layer.routing())
        by_rows(route, self._X, self._out, dout, self._positive, dX)
        self._X = self._out = self._positive = None
        return dX


def _centre(mean, rows, centred, squares) -> None:
    np.subtract(rows, mean, out=centred)
    np.multiply(centred, centred, out=squares)


def _normalise(scale, beta, centred, out) -> None:
    np.multiply(centred, scale, out=out)
    out += beta


def _normalise_backward(scale, k1, k2, dout, centred, dX) -> None:
    """dX = dout * scale - centred * k1 - k2, row by row."""
    np.multiply(dout, scale, out=dX)
    dX -= centred * k1
    dX -= k2


class FastBatchNorm:
    """BatchNorm in training with its element-wise passes over the rows split across threads
    (rewrite 5); its column sums stay GEMVs. The formulas are ``BatchNorm``'s, term by term."""

    def __init__(self, layer: BatchNorm):
        self.layer = layer

    def forward(self, X, training):
        layer = self.layer
        if not training:
            return layer.forward(X, training=False)
        gamma, beta = layer.params["gamma"], layer.params["beta"]
        rows = X.reshape(-1, X.shape[-1])  # (M, D)
        count = len(rows)
        ones = np.ones(count, dtype=X.dtype)
        mean = (ones @ rows) / count  # (D,)
        centred, squares = np.empty_like(rows), np.empty_like(rows)
        by_rows(partial(_centre, mean), rows, centred, squares)
        var = (ones @ squares) / count  # (D,)
        del squares
        inv_std = 1 / np.sqrt(var + layer.epsilon)  # (D,)
        layer.update_moving_statistics(mean, var)
        out = np.empty_like(rows)
        by_rows(partial(_normalise, gamma * inv_std, beta), centred, out)
        self._centred, self._inv_std, self._ones = centred, inv_std, ones
        return out.reshape(X.shape)

    def backward(self, dout):
        layer = self.layer
        centred, inv_std, ones = self._centred, self._inv_std, self._ones
        shape = dout.shape
        dout = dout.reshape(-1, shape[-1])  # (M, D)
        count = len(dout)
        dbeta = ones @ dout  # (D,)
        product = np.empty_like(dout)
        by_rows(np.multiply, dout, centred, product)
        dgamma = (ones @ product) * inv_std  # sum(dout * X_hat)
        del product
        layer.grads["beta"][...] = dbeta
        layer.grads["gamma"][...] = dgamma
        scale = layer.params["gamma"] * inv_std  # (D,)
        dX = np.empty_like(dout)
        k1, k2 = scale * inv_std * dgamma / count, scale * dbeta / count
        by_rows(partial(_normalise_backward, scale, k1, k2), dout, centred, dX)
        self._centred = None
        return dX.reshape(shape)
