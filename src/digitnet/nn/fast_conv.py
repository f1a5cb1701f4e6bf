"""The fast path's steps for convolutional networks — Conv2D, MaxPool2D, BatchNorm, and batch
norm, ReLU and pooling as one step (``fusion`` lists the rewrites they make)."""

from __future__ import annotations

from functools import partial

import numpy as np

from digitnet.nn.conv import Conv2D, MaxPool2D, pool, windows
from digitnet.nn.fast_steps import clip_negative
from digitnet.nn.normalization import BatchNorm
from digitnet.nn.parallel import by_rows


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
            by_rows(clip_negative, Y)
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
