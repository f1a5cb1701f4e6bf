"""Convolution and pooling over images laid out (N, H, W, C), channels last as in Keras.

Conv2D lowers the convolution to one GEMM (im2col): every kh x kw x C window of the input
becomes a row, and the F filters become the columns of the kernel matrix. Its backward pass is
two GEMMs and, for dX, kh * kw strided additions (a loop over kernel offsets, never over samples
or pixels).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from digitnet.nn.activations import ActivationFunction
from digitnet.nn.errors import NNError
from digitnet.nn.initializers import Initializer
from digitnet.nn.layers import ActivatedLayer, Layer, Shape, positive_int
from digitnet.nn.parallel import by_rows

PADDINGS = ("valid", "same")


def _pair(layer: str, what: str, value) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2:
        raise NNError(f"{layer} expects {what} as one number or a pair; got {value!r}")
    return positive_int(layer, what, pair[0]), positive_int(layer, what, pair[1])


def _require_image_input(layer: str, input_shape: Shape) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        shape = ", ".join(map(str, input_shape))
        raise NNError(
            f"{layer} expects inputs of shape (N, H, W, C); got (N, {shape})"
            " — add Reshape((28, 28, 1)) before it for 28x28 digits"
        )
    return tuple(int(d) for d in input_shape)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same': output size ceil(size / stride), the extra row at the end."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def im2col(
    Xp: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], out_hw, ones: bool = False
) -> np.ndarray:
    """Windows of a padded input (N, Hp, Wp, C) as rows (N * Ho * Wo, kh * kw * C), ordered
    (kh, kw, C) to match a kernel (kh, kw, C, F) reshaped to (kh * kw * C, F). With ``ones``,
    a last column of 1s lets one GEMM with [W; b] add the bias too."""
    (kh, kw), (sh, sw), (Ho, Wo) = kernel, strides, out_hw
    N, C = len(Xp), Xp.shape[3]
    windows = sliding_window_view(Xp, (kh, kw), axis=(1, 2))  # (N, Hp-kh+1, Wp-kw+1, C, kh, kw)
    windows = windows[:, : (Ho - 1) * sh + 1 : sh, : (Wo - 1) * sw + 1 : sw]  # (N, Ho, Wo, ...)
    rows = windows.transpose(0, 1, 2, 4, 5, 3)  # (N, Ho, Wo, kh, kw, C)
    K = kh * kw * C
    cols = np.empty((N * Ho * Wo, K + ones), dtype=Xp.dtype)
    if ones:
        cols[:, K] = 1
    target = cols[:, :K].reshape(N, Ho, Wo, kh, kw, C)  # a view: one copy, in place
    by_rows(np.copyto, target, rows)
    return cols


FULL_CONVOLUTION_ROWS = 4096  # N * Ho * Wo from which dX is one GEMM (when C >= F)


def _add_into(total: np.ndarray, part: np.ndarray) -> None:
    np.add(total, part, out=total)


def weights_and_bias(W: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """[W; b] (K + 1, F) as one view when b lies right after W (K, F) in memory — as the model
    packs them — so one GEMM serves both; None otherwise (e.g. a layer used on its own)."""
    if (
        W.base is None
        or W.base is not b.base
        or not (W.flags.c_contiguous and b.flags.c_contiguous)
    ):
        return None
    if b.__array_interface__["data"][0] != W.__array_interface__["data"][0] + W.nbytes:
        return None
    return as_strided(W, shape=(W.shape[0] + 1, W.shape[1]), strides=W.strides)


class Conv2D(ActivatedLayer):
    """A 2-D convolution: A = activation(conv(X, W) + b).

    X (N, H, W, C) -> A (N, Ho, Wo, F), with kernel W (kh, kw, C, F) and bias b (F,).
    padding "valid" gives Ho = (H - kh) // stride + 1; "same" gives Ho = ceil(H / stride).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = 1,
        padding: str = "valid",
        activation: str | ActivationFunction | None = None,
        kernel_initializer: str | Initializer = "glorot_uniform",
        bias_initializer: str | Initializer = "zeros",
        input_shape: Shape | None = None,
        name: str | None = None,
    ):
        super().__init__(activation, kernel_initializer, bias_initializer, input_shape, name)
        self.filters = positive_int("Conv2D", "filters", filters)
        self.kernel_size = _pair("Conv2D", "kernel_size", kernel_size)
        self.strides = _pair("Conv2D", "strides (a stride must be at least 1)", strides)
        if padding not in PADDINGS:
            raise NNError(f"Conv2D padding must be 'valid' or 'same'; got {padding!r}")
        self.padding = padding

    def values_needed(self, input_shape):
        (kh, kw), C = self.kernel_size, input_shape[-1]
        return (kh * kw * C + 1) * self.filters  # W (kh, kw, C, F) and b (F,)

    def build(self, input_shape, rng):
        H, W, C = _require_image_input("Conv2D", input_shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        if self.padding == "same":
            self._pads = (_same_padding(H, kh, sh), _same_padding(W, kw, sw))
        else:
            if kh > H or kw > W:
                raise NNError(
                    f"Conv2D kernel {kh}x{kw} is larger than its {H}x{W} input;"
                    " use a smaller kernel or padding='same'"
                )
            self._pads = ((0, 0), (0, 0))
        Hp, Wp = H + sum(self._pads[0]), W + sum(self._pads[1])
        Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
        self.params = {
            "W": self.kernel_initializer((kh, kw, C, self.filters), rng),  # (kh, kw, C, F)
            "b": self.bias_initializer((self.filters,), rng),  # (F,)
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.input_shape, self.output_shape = (H, W, C), (Ho, Wo, self.filters)
        self.built = True
        return self.output_shape

    def _pad(self, X: np.ndarray) -> np.ndarray:
        if self._pads == ((0, 0), (0, 0)):
            return X
        return np.pad(X, ((0, 0), *self._pads, (0, 0)))

    def forward(self, X, training=False):
        N = len(X)
        Ho, Wo, F = self.output_shape
        W, b = self.params["W"].reshape(-1, F), self.params["b"]  # (K, F), (F,)
        Wb = weights_and_bias(W, b)  # (K + 1, F) or None
        cols = im2col(self._pad(X), self.kernel_size, self.strides, (Ho, Wo), Wb is not None)
        if Wb is not None:
            Z = cols @ Wb  # (N*Ho*Wo, K+1) @ (K+1, F) -> (N*Ho*Wo, F), bias included
        else:
            Z = cols @ W  # (N*Ho*Wo, K) @ (K, F) -> (N*Ho*Wo, F)
            Z += b
        if training or self.tracing:
            self._cols, self._N = cols, N
        return self.activate(Z.reshape(N, Ho, Wo, F), training)

    def backward(self, dA):
        F = self.output_shape[-1]
        N, cols = self._N, self._cols
        dZ = self.deactivate(dA).reshape(-1, F)  # (N*Ho*Wo, F)
        if not self.tracing:
            self._parameter_gradients(cols, dZ)
        self._cols = None
        if not self.needs_input_grad:
            return None
        return self._input_gradient(dZ, N)

    def _parameter_gradients(self, cols, dZ):
        F = self.output_shape[-1]
        dWb = weights_and_bias(self.grads["W"].reshape(-1, F), self.grads["b"])
        if cols.shape[1] == self.grads["W"].size // F + 1 and dWb is not None:
            np.matmul(cols.T, dZ, out=dWb)  # (K+1, N*Ho*Wo) @ (.., F): dW and db at once
        else:
            np.matmul(cols.T, dZ, out=self.grads["W"].reshape(-1, F))  # (K, M) @ (M, F)
            np.add.reduce(dZ, axis=0, out=self.grads["b"])

    def _input_gradient(self, dZ, N):
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        Ho, Wo, F = self.output_shape
        H, W, C = self.input_shape
        (top, bottom), (left, right) = self._pads
        kernel = self.params["W"]  # (kh, kw, C, F)
        if (sh, sw) == (1, 1) and C >= F and N * Ho * Wo >= FULL_CONVOLUTION_ROWS:
            # dXp is the full convolution of dZ with the kernel flipped in space: one GEMM over
            # windows of F channels. With fewer input channels than filters, the kh * kw
            # narrower GEMMs below move less memory (measured: 2x faster for 32 -> 64); so
            # they do for a few samples, such as an explanation's one, where padding and
            # gathering the windows cost more than the GEMMs (0.55 -> 0.34 ms for 64 -> 64).
            dZp = np.pad(
                dZ.reshape(N, Ho, Wo, F), ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0))
            )
            Hp, Wp = H + top + bottom, W + left + right
            flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2).reshape(-1, C)  # (kh*kw*F, C)
            dXp = (im2col(dZp, (kh, kw), (1, 1), (Hp, Wp)) @ flipped).reshape(N, Hp, Wp, C)
        else:
            dXp = np.zeros((N, H + top + bottom, W + left + right, C), dtype=dZ.dtype)
            for i in range(kh):  # each kernel offset sends its share back onto the input grid
                for j in range(kw):
                    share = (dZ @ kernel[i, j].T).reshape(N, Ho, Wo, C)  # (N*Ho*Wo, C) rows
                    grid = dXp[:, i : i + (Ho - 1) * sh + 1 : sh, j : j + (Wo - 1) * sw + 1 : sw]
                    by_rows(_add_into, grid, share)
        return dXp[:, top : top + H, left : left + W]

    def get_config(self):
        return {
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            **super().get_config(),
        }


class MaxPool2D(Layer):
    """Max pooling: each output is the largest input of its pool_size window.

    X (N, H, W, C) -> (N, Ho, Wo, C), Ho = (H - ph) // sh + 1 (strides default to pool_size).
    The gradient flows to the first maximal input of each window only.
    """

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        strides: int | tuple[int, int] | None = None,
        input_shape: Shape | None = None,
        name: str | None = None,
    ):
        super().__init__(input_shape, name)
        self.pool_size = _pair("MaxPool2D", "pool_size", pool_size)
        self.strides = _pair("MaxPool2D", "strides", strides if strides is not None else pool_size)
        # Set by the model when a ReLU comes right before: in training, that ReLU passes its
        # input through and this layer applies it to the pooled maxima instead.
        self.relu_after = False
        self._positive = None

    def build(self, input_shape, rng):
        H, W, C = _require_image_input("MaxPool2D", input_shape)
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if ph > H or pw > W:
            raise NNError(f"MaxPool2D pool {ph}x{pw} is larger than its {H}x{W} input")
        self.input_shape = (H, W, C)
        self.output_shape = ((H - ph) // sh + 1, (W - pw) // sw + 1, C)
        self.built = True
        return self.output_shape

    def _offsets(self):
        """For each (i, j) of the pool window, the slices picking that entry of every window."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        Ho, Wo, _ = self.output_shape
        for i in range(ph):
            for j in range(pw):
                yield (
                    slice(None),
                    slice(i, i + (Ho - 1) * sh + 1, sh),
                    slice(j, j + (Wo - 1) * sw + 1, sw),
                )

    def forward(self, X, training=False):
        # A running maximum over the ph * pw strided views (N, Ho, Wo, C): no window copies.
        out = np.empty((len(X), *self.output_shape), X.dtype)
        relu = training and self.relu_after  # ReLU(max(x)) = max(ReLU(x))
        positive = np.empty(out.shape, bool) if relu else None
        by_rows(partial(_pool, list(self._offsets())), X, out, positive)
        self._positive = positive
        if training or self.tracing:
            self._X, self._out = X, out
        return out

    def backward(self, dout):
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        H, W, _ = self.input_shape
        Ho, Wo, _ = self.output_shape
        # Windows that do not overlap write each dX entry at most once; exactly once when
        # they also cover the input.
        disjoint = sh >= ph and sw >= pw
        tiles = (sh, sw) == (ph, pw) and (Ho * ph, Wo * pw) == (H, W)
        dX = np.empty_like(self._X)
        route = partial(_route, list(self._offsets()), disjoint, tiles)
        by_rows(route, self._X, self._out, dout, self._positive, dX)
        self._X = self._out = self._positive = None
        return dX

    def get_config(self):
        return {"pool_size": list(self.pool_size), "strides": list(self.strides), "name": self.name}


def _pool(offsets: list, X: np.ndarray, out: np.ndarray, positive: np.ndarray | None) -> None:
    """MaxPool2D's forward pass over some rows: out = the maximum over the window offsets, and
    with ``positive`` given, the ReLU applied after pooling (``positive`` where it passes)."""
    np.copyto(out, X[offsets[0]])
    for index in offsets[1:]:
        np.maximum(out, X[index], out=out)
    if positive is not None:
        np.greater(out, 0, out=positive)
        np.maximum(out, 0, out=out)  # windows without a positive input: winners masked out


def _route(offsets, disjoint, tiles, X, out, dout, positive, dX) -> None:
    """MaxPool2D's backward pass over some rows: each window's gradient to its first maximal
    entry (through the ReLU after pooling where ``positive`` is given)."""
    if positive is not None:
        dout = dout * positive
    if not tiles:
        dX.fill(0)
    for k, index in enumerate(offsets):
        winner = X[index] == out  # (n, Ho, Wo, C)
        if k == 0:
            unclaimed = ~winner
        else:
            winner &= unclaimed  # the first maximal entry of a window takes it all
            if k < len(offsets) - 1:
                unclaimed ^= winner
        if disjoint:
            np.multiply(dout, winner, out=dX[index])
        else:
            dX[index] += dout * winner
