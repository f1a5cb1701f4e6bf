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
7. **A pooling window's winner in one byte.** Training's forward pass notes which entry of
   each window is its first maximum (a uint8 per output); backward sends the gradient there
   with one comparison of bytes per offset, where the plain path compares the input with the
   maxima again and claims ties window by window. The input need not be kept. (The first
   pooling of a batch of 128: 7.1 -> 3.8 ms backward, 1.8 -> 3.2 ms forward, one thread.)
8. **Batch normalisation a sample a row.** Its element-wise passes see (N, H * W * D) with
   each channel's number tiled H * W times: NumPy's inner loops run along a whole sample, not
   along one pixel's D channels (subtracting the mean from 128 x 26 x 26 x 32 numbers: 2.3 ->
   1.2 ms).
9. **One input channel: windows as columns.** A grey-level image's windows are copied as
   kh * kw shifted images (runs of Wo numbers) into (kh * kw + 1, N * Ho * Wo), not window
   by window (runs of kw numbers); the GEMMs take it transposed. (The first convolution of a
   batch of 128: copying 1.66 -> 0.28 ms, dW 1.87 -> 1.32 ms.)
10. **Batch norm, ReLU and pooling as one step.** A channel's normalisation s * c + beta is
   monotone in c, so a window's largest output sits where sign(s) * c is largest: the pooling
   takes the centred input, and the scaling, the ReLU and backward's sums see the pooled
   quarter; the full-size output is never made (``FastNormPool``; the cnn preset's first
   block, 128 x 26 x 26 x 32, forward and backward: about a fifth less time).

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
from digitnet.nn.conv import Conv2D, MaxPool2D, pool, windows
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
    norm_pools = {i for i in range(len(layers) - 2) if isinstance(layers[i], BatchNorm)
                  and isinstance(layers[i + 1], Activation) and _relu(layers[i + 1])
                  and isinstance(layers[i + 2], MaxPool2D)}  # fmt: skip
    steps = []
    for i, layer in enumerate(layers):
        if i in norm_pools:
            steps.append(FastNormPool(layer, layers[i + 2]))
            continue
        if i - 1 in norm_pools or i - 2 in norm_pools:
            steps.append(PassThrough())  # its ReLU or pooling: done by FastNormPool
            continue
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


def offsets_with_ones(Xp: np.ndarray, kernel, strides, out_hw) -> np.ndarray:
    """``im2col_with_ones`` for an input of one channel (rewrite 9): the same (N * Ho * Wo,
    kh * kw + 1) matrix, as the transposed view of one laid out offset by offset — row
    i * kw + j every window's entry (i, j), the last row 1s. Each of those rows is one copy of
    a shifted image, runs of Wo numbers, where a window's row of kw numbers is all that im2col
    can copy at once; the GEMMs take the transposed operand as it is."""
    (kh, kw), (sh, sw), (Ho, Wo) = kernel, strides, out_hw
    rows = np.empty((kh * kw + 1, len(Xp), Ho, Wo), Xp.dtype)
    rows[-1] = 1
    for i in range(kh):
        for j in range(kw):
            np.copyto(rows[i * kw + j], Xp[:, i : i + (Ho - 1) * sh + 1 : sh,
                                               j : j + (Wo - 1) * sw + 1 : sw, 0])  # fmt: skip
    return rows.reshape(kh * kw + 1, -1).T


def _add_into(total: np.ndarray, part: np.ndarray) -> None:
    np.add(total, part, out=total)


class FastConv:
    """Conv2D: one GEMM with [W; b] forward, one for dW and db backward; dX a GEMM per kernel
    offset, its additions onto the input grid split over the cores. A layer with one input
    channel keeps its windows as columns (``offsets_with_ones``)."""

    def __init__(self, layer: Conv2D, activation, input_grad: bool):
        self.layer, self.activation, self.input_grad = layer, activation, input_grad
        one_channel = layer.input_shape[-1] == 1
        self.windows_of = offsets_with_ones if one_channel else im2col_with_ones

    def forward(self, X, training):
        layer = self.layer
        N, (Ho, Wo, F) = len(X), layer.output_shape
        cols = self.windows_of(layer.pad(X), layer.kernel_size, layer.strides, (Ho, Wo))
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


def _pool_and_winners(offsets, relu, X, out, first) -> None:
    """``conv.pool`` over some rows, and which entry won each window: ``first`` (uint8, the
    shape of ``out``) the offset of its first maximal entry — where ``conv.route`` sends the
    window's gradient — counted as how many offsets before it hold less than the maximum.
    With ``relu`` (rewrite 2) out = max(out, 0), and a window whose maximum is not positive
    gets len(offsets), which no offset matches: the ReLU passes no gradient back to it."""
    pool(offsets, X, out)
    below = np.not_equal(X[offsets[0]], out)  # (n, Ho, Wo, C): the maximum is further on
    np.copyto(first, below, casting="unsafe")
    for index in offsets[1:-1]:
        below &= np.not_equal(X[index], out)
        first += below
    if relu:
        _relu_of_winners(len(offsets), out, first)


def _relu_of_winners(count, out, first) -> None:
    """out = max(out, 0); where the ReLU blocks, ``first`` += ``count`` (no offset's)."""
    blocked = np.less_equal(out, 0)
    first += blocked.view(np.uint8) * np.uint8(count)
    np.maximum(out, 0, out=out)


def _route_to_winners(offsets, disjoint, first, dout, dX) -> None:
    """dX: each window's gradient ``dout`` to the entry ``first`` names; the others 0."""
    for k, index in enumerate(offsets):
        if disjoint:
            np.multiply(dout, first == k, out=dX[index])
        else:
            dX[index] += dout * (first == k)


class FastPool:
    """MaxPool2D over threads, with the ReLU of the layer before it in training (rewrite 2).
    The forward pass notes each window's winner in one byte, so the backward pass neither
    keeps the input nor compares it again (rewrite 7)."""

    def __init__(self, layer: MaxPool2D, relu_after: bool):
        self.layer, self.relu_after = layer, relu_after
        self.offsets = None

    def forward(self, X, training):
        layer = self.layer
        self.offsets = self.offsets or layer.offsets()
        out = np.empty((len(X), *layer.output_shape), X.dtype)
        if not training:
            by_rows(partial(pool, self.offsets), X, out)
            return out
        first = np.empty(out.shape, np.uint8)
        by_rows(partial(_pool_and_winners, self.offsets, self.relu_after), X, out, first)
        self._first, self._input_shape = first, X.shape
        return out

    def backward(self, dout):
        disjoint, tiles = self.layer.routing()
        dX = (np.empty if tiles else np.zeros)(self._input_shape, dout.dtype)
        by_rows(partial(_route_to_winners, self.offsets, disjoint), self._first, dout, dX)
        self._first = None
        return dX


def _centre(mean, sign, rows, centred, squares) -> None:
    np.subtract(rows, mean, out=centred)
    if sign is not None:
        centred *= sign
    np.multiply(centred, centred, out=squares)


def _normalise(scale, beta, centred, out) -> None:
    np.multiply(centred, scale, out=out)
    out += beta


def _normalise_backward(scale, k1, k2, dout, centred, dX) -> None:
    """dX = dout * scale - centred * k1 - k2, row by row."""
    np.multiply(dout, scale, out=dX)
    dX -= centred * k1
    dX -= k2


def _spread(v: np.ndarray, X: np.ndarray) -> np.ndarray:
    """A per-channel vector v (D,) tiled along one sample of X (N, ..., D): (H * W * D,)."""
    return np.tile(v, X[0].size // len(v))


def store_gradients(layer: BatchNorm, dgamma, dbeta, inv_std, count: int):
    """Keep BatchNorm ``layer``'s dgamma and dbeta (D,); return the per-channel numbers of its
    dX = dout * s - centred * k1 - k2: s = gamma * inv_std, k1, k2 (D,) each."""
    layer.grads["gamma"][...] = dgamma
    layer.grads["beta"][...] = dbeta
    scale = layer.params["gamma"] * inv_std
    return scale, scale * inv_std * dgamma / count, scale * dbeta / count


def batch_statistics(layer: BatchNorm, X: np.ndarray, sign: np.ndarray | None = None):
    """BatchNorm ``layer``'s training statistics of X (N, ..., D), its moving statistics
    updated: the centred input a sample a row (N, H * W * D) — times ``sign`` (D,) per
    channel when given — the ones (N * H * W,) of its column sums, and inv_std (D,)."""
    D = X.shape[-1]
    rows = X.reshape(-1, D)  # (M, D), M = N * H * W: the column sums' view
    samples = X.reshape(len(X), -1)  # (N, H * W * D): the element-wise passes' view
    ones = np.ones(len(rows), dtype=X.dtype)
    mean = (ones @ rows) / len(rows)  # (D,)
    centred, squares = np.empty_like(samples), np.empty_like(samples)
    signs = None if sign is None else _spread(sign, X)
    by_rows(partial(_centre, _spread(mean, X), signs), samples, centred, squares)
    var = (ones @ squares.reshape(-1, D)) / len(rows)  # (D,)
    inv_std = 1 / np.sqrt(var + layer.epsilon)  # (D,)
    layer.update_moving_statistics(mean, var)
    return centred, ones, inv_std


class FastBatchNorm:
    """BatchNorm in training with its element-wise passes over the rows split across threads
    (rewrite 5), one sample a row (rewrite 8); its column sums stay GEMVs. The formulas are
    ``BatchNorm``'s, term by term."""

    def __init__(self, layer: BatchNorm):
        self.layer = layer

    def forward(self, X, training):
        layer = self.layer
        if not training:
            return layer.forward(X, training=False)
        gamma, beta = layer.params["gamma"], layer.params["beta"]
        centred, ones, inv_std = batch_statistics(layer, X)
        out = np.empty_like(centred)
        by_rows(partial(_normalise, _spread(gamma * inv_std, X), _spread(beta, X)), centred, out)
        self._centred, self._inv_std, self._ones = centred, inv_std, ones
        return out.reshape(X.shape)

    def backward(self, dout):
        layer = self.layer
        centred, inv_std, ones = self._centred, self._inv_std, self._ones
        shape, D = dout.shape, dout.shape[-1]
        count = len(ones)
        dbeta = ones @ dout.reshape(-1, D)  # (D,)
        dout = dout.reshape(len(dout), -1)  # (N, H * W * D)
        product = np.empty_like(dout)
        by_rows(np.multiply, dout, centred, product)
        dgamma = (ones @ product.reshape(-1, D)) * inv_std  # sum(dout * X_hat)
        del product
        scale, k1, k2 = store_gradients(layer, dgamma, dbeta, inv_std, count)
        dX = np.empty_like(dout)
        tiled = (_spread(v, dout) for v in (scale, k1, k2))
        by_rows(partial(_normalise_backward, *tiled), dout, centred, dX)
        self._centred = None
        return dX.reshape(shape)


class FastNormPool:
    """BatchNorm -> ReLU -> MaxPool2D in training, as one step (rewrite 10).

    Per channel the normalisation is y = s * c + beta with c the centred input and s = gamma *
    inv_std: monotone, so the largest y of a window is |s| * max(sign(s) * c) + beta, at the
    same entry. The pooling therefore takes the signed centred input, and the scaling, the ReLU
    and backward's sums see the pooled quarter: y is never computed at full size, and dX is
    BatchNorm's - c * k1 - k2 everywhere plus s * dout at each window's winner."""

    def __init__(self, norm: BatchNorm, pooling: MaxPool2D):
        self.norm, self.pooling = norm, pooling
        self.offsets = None

    def forward(self, X, training):
        norm, pooling = self.norm, self.pooling
        self.offsets = self.offsets or pooling.offsets()
        out = np.empty((len(X), *pooling.output_shape), X.dtype)  # (N, Ho, Wo, D)
        if not training:
            Y = norm.forward(X, training=False)
            by_rows(_clip_negative, Y)
            by_rows(partial(pool, self.offsets), Y, out)
            return out
        gamma, beta = norm.params["gamma"], norm.params["beta"]
        sign = np.where(gamma < 0, -1, 1).astype(X.dtype)  # (D,)
        signed = sign if (gamma < 0).any() else None  # all +1: no pass to multiply by it
        centred, ones, inv_std = batch_statistics(norm, X, signed)  # (N, H * W * D)
        top, first = np.empty_like(out), np.empty(out.shape, np.uint8)
        by_rows(partial(_pool_and_winners, self.offsets, False),
                centred.reshape(X.shape), top, first)  # fmt: skip
        scale = gamma * inv_std  # (D,)
        by_rows(partial(_normalise, _spread(np.abs(scale), out), _spread(beta, out)),
                top.reshape(len(X), -1), out.reshape(len(X), -1))  # fmt: skip
        by_rows(partial(_relu_of_winners, len(self.offsets)), out, first)
        self._kept = centred, ones, inv_std, sign, top, first, X.shape
        return out

    def backward(self, dout):
        norm = self.norm
        centred, ones, inv_std, sign, top, first, shape = self._kept
        self._kept = None
        D, count = shape[-1], len(ones)
        passed = dout * (first < len(self.offsets))  # (N, Ho, Wo, D): through the ReLU
        small = ones[: passed.size // D]
        dbeta = small @ passed.reshape(-1, D)  # (D,): the sum of the gradient at the winners
        dgamma = (small @ (passed * top).reshape(-1, D)) * sign * inv_std  # sum(dout * X_hat)
        scale, k1, k2 = store_gradients(norm, dgamma, dbeta, inv_std, count)
        dX = np.empty_like(centred)  # (N, H * W * D)
        by_rows(partial(_normalise, _spread(-sign * k1, dX), _spread(-k2, dX)), centred, dX)
        dX = dX.reshape(shape)
        by_rows(partial(_route_to_winners, self.offsets, False), first, passed * scale, dX)
        return dX
