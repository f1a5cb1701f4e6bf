"""Convolution and pooling over images laid out (N, H, W, C), channels last as in Keras.

Conv2D lowers the convolution to one GEMM (im2col): every kh x kw x C window of the input
becomes a row, and the F filters become the columns of the kernel matrix. Its backward pass is
two GEMMs and, for dX, kh * kw strided additions (a loop over kernel offsets, never over samples
or pixels). This is the plain path; the fast one (bias inside the GEMM, passes split over
threads, ReLU after pooling) is ``digitnet.nn.fusion``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from digitnet.nn.activations import ActivationFunction
from digitnet.nn.errors import NNError
from digitnet.nn.initializers import Initializer
from digitnet.nn.layers import Layer, Shape, WeightedSum, positive_int

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


def windows(Xp: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], out_hw):
    """The kh x kw windows of a padded input (N, Hp, Wp, C) as a view (N, Ho, Wo, kh, kw, C)."""
    (kh, kw), (sh, sw), (Ho, Wo) = kernel, strides, out_hw
    view = sliding_window_view(Xp, (kh, kw), axis=(1, 2))  # (N, Hp-kh+1, Wp-kw+1, C, kh, kw)
    view = view[:, : (Ho - 1) * sh + 1 : sh, : (Wo - 1) * sw + 1 : sw]  # (N, Ho, Wo, C, kh, kw)
    return view.transpose(0, 1, 2, 4, 5, 3)


def im2col(Xp: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], out_hw):
    """Windows of a padded input (N, Hp, Wp, C) as rows (N * Ho * Wo, kh * kw * C), ordered
    (kh, kw, C) to match a kernel (kh, kw, C, F) reshaped to (kh * kw * C, F)."""
    rows = windows(Xp, kernel, strides, out_hw)  # (N, Ho, Wo, kh, kw, C)
    N, Ho, Wo, kh, kw, C = rows.shape
    return rows.reshape(N * Ho * Wo, kh * kw * C)  # one copy


class Conv2D(WeightedSum):
    """A 2-D convolution: A = activation(conv(X, W) + b).

    X (N, H, W, C) -> A (N, Ho, Wo, F), with kernel W (kh, kw, C, F) and bias b (F,).
    padding "valid" gives Ho = (H - kh) // stride + 1; "same" gives Ho = ceil(H / stride).
    W and b are views of one matrix ``kernel_and_bias`` (kh * kw * C + 1, F), [W; b], which
    the fast path multiplies in one GEMM by windows with a column of 1s appended.
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
        size = self.count_params()
        dtype = self.params["W"].dtype
        self.adopt(np.empty(size, dtype), np.zeros(size, dtype))  # one [W; b] block of its own
        self.input_shape, self.output_shape = (H, W, C), (Ho, Wo, self.filters)
        self.built = True
        return self.output_shape

    def working_values(self):
        (Ho, Wo, F), (kh, kw), C = self.output_shape, self.kernel_size, self.input_shape[-1]
        return Ho * Wo * (F + kh * kw * C)  # the output and its windows (im2col)

    def adopt(self, values, gradients):
        super().adopt(values, gradients)  # W then b: row-major, b is the last row of [W; b]
        self.kernel_and_bias = values.reshape(-1, self.filters)  # (K + 1, F)
        self.kernel_and_bias_grads = gradients.reshape(-1, self.filters)

    def pad(self, X: np.ndarray) -> np.ndarray:
        if self._pads == ((0, 0), (0, 0)):
            return X
        return np.pad(X, ((0, 0), *self._pads, (0, 0)))

    def weighted_sum(self, X):
        Ho, Wo, F = self.output_shape
        self._Xp = self.pad(X)  # (N, Hp, Wp, C)
        cols = im2col(self._Xp, self.kernel_size, self.strides, (Ho, Wo))  # (N*Ho*Wo, K)
        Z = cols @ self.params["W"].reshape(-1, F) + self.params["b"]  # (N*Ho*Wo, F)
        return Z.reshape(len(X), Ho, Wo, F)

    def weighted_sum_backward(self, dZ, parameters=True):
        Ho, Wo, F = self.output_shape
        N = len(dZ)
        dZ = dZ.reshape(-1, F)  # (N*Ho*Wo, F)
        if parameters:  # the windows again: cheaper to keep X than its kh * kw copies
            cols = im2col(self._Xp, self.kernel_size, self.strides, (Ho, Wo))  # (M, K)
            self.grads["W"][...] = (cols.T @ dZ).reshape(self.grads["W"].shape)  # (K, F)
            self.grads["b"][...] = dZ.sum(axis=0)  # (F,)
        return self.unpad(self.scatter(dZ, N))

    def scatter(self, dZ: np.ndarray, N: int) -> np.ndarray:
        """dXp (N, Hp, Wp, C): each output's gradient dZ (N*Ho*Wo, F) sent back, through the
        kernel, onto the input positions its window saw — one GEMM per kernel offset."""
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        Ho, Wo, _ = self.output_shape
        C = self.input_shape[-1]
        dXp = np.zeros(self._Xp.shape, dtype=dZ.dtype)
        for i in range(kh):
            for j in range(kw):
                share = (dZ @ self.params["W"][i, j].T).reshape(N, Ho, Wo, C)  # (M, F) @ (F, C)
                dXp[:, i : i + (Ho - 1) * sh + 1 : sh, j : j + (Wo - 1) * sw + 1 : sw] += share
        return dXp

    def unpad(self, dXp: np.ndarray) -> np.ndarray:
        H, W, _ = self.input_shape
        (top, _), (left, _) = self._pads
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

    def build(self, input_shape, rng):
        H, W, C = _require_image_input("MaxPool2D", input_shape)
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if ph > H or pw > W:
            raise NNError(f"MaxPool2D pool {ph}x{pw} is larger than its {H}x{W} input")
        self.input_shape = (H, W, C)
        self.output_shape = ((H - ph) // sh + 1, (W - pw) // sw + 1, C)
        self.built = True
        return self.output_shape

    def offsets(self) -> list[tuple[slice, slice, slice]]:
        """For each (i, j) of the pool window, the slices picking that entry of every window:
        X[offset] is (N, Ho, Wo, C)."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        Ho, Wo, _ = self.output_shape
        return [
            (slice(None), slice(i, i + (Ho - 1) * sh + 1, sh), slice(j, j + (Wo - 1) * sw + 1, sw))
            for i in range(ph)
            for j in range(pw)
        ]

    def routing(self) -> tuple[bool, bool]:
        """(disjoint, tiles): windows that do not overlap write each dX entry at most once;
        exactly once when they also cover the input."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        (H, W, _), (Ho, Wo, _) = self.input_shape, self.output_shape
        return sh >= ph and sw >= pw, (sh, sw) == (ph, pw) and (Ho * ph, Wo * pw) == (H, W)

    def forward(self, X, training=False):
        out = np.empty((len(X), *self.output_shape), X.dtype)  # (N, Ho, Wo, C)
        pool(self.offsets(), X, out)
        self._X, self._out = X, out
        return out

    def backward(self, dout, parameters=True):
        dX = np.empty_like(self._X)
        route(self.offsets(), *self.routing(), self._X, self._out, dout, dX)
        return dX

    def get_config(self):
        return {"pool_size": list(self.pool_size), "strides": list(self.strides), "name": self.name}


def pool(offsets: list, X: np.ndarray, out: np.ndarray) -> None:
    """out = the maximum of X over the window offsets: a running maximum over the ph * pw
    strided views (N, Ho, Wo, C), no window copies."""
    np.copyto(out, X[offsets[0]])
    for index in offsets[1:]:
        np.maximum(out, X[index], out=out)


def route(offsets, disjoint, tiles, X, out, dout, dX) -> None:
    """dX: each window's gradient ``dout`` to its first maximal entry of X, the others 0."""
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
