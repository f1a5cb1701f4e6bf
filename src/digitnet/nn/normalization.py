"""Batch normalisation — Ioffe & Szegedy (2015).

Normalises each feature (the last axis: units of a Dense layer, channels of a convolution) over
every other axis. Training uses the batch's statistics and updates moving averages; inference
uses the moving averages, so a single image gets the same answer as in a batch.
"""

from __future__ import annotations

import numpy as np

from digitnet.nn.errors import NNError
from digitnet.nn.layers import Layer, Shape


class BatchNorm(Layer):
    """Y = gamma * (X - mean) / sqrt(var + epsilon) + beta, per feature of the last axis.

    X (N, ..., D) -> Y of the same shape; gamma, beta (D,). Keras' defaults: momentum 0.99,
    epsilon 1e-3.
    """

    def __init__(
        self,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        input_shape: Shape | None = None,
        name: str | None = None,
    ):
        super().__init__(input_shape, name)
        if not 0 <= momentum < 1:
            raise NNError(f"BatchNorm momentum must be in [0, 1); got {momentum!r}")
        if not epsilon > 0:
            raise NNError(f"BatchNorm epsilon must be > 0; got {epsilon!r}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self._inference_scale = None  # set by an inference pass: Y = X * scale + shift

    def values_needed(self, input_shape):
        return 4 * input_shape[-1]  # gamma, beta, moving mean and variance: (D,) each

    def build(self, input_shape, rng):
        D = int(input_shape[-1])
        self.params = {"gamma": np.ones(D, np.float32), "beta": np.zeros(D, np.float32)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.state = {
            "moving_mean": np.zeros(D, np.float32),
            "moving_variance": np.ones(D, np.float32),
        }
        self.input_shape = self.output_shape = tuple(input_shape)
        self.built = True
        return self.output_shape

    def forward(self, X, training=False):
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:  # an affine map per feature, with the moving statistics
            inv_std = 1 / np.sqrt(self.state["moving_variance"] + self.epsilon)  # (D,)
            scale = self._inference_scale = (gamma * inv_std).astype(X.dtype)
            return X * scale + (beta - self.state["moving_mean"] * scale)
        self._inference_scale = None
        rows = X.reshape(-1, X.shape[-1])  # (M, D): every position of every sample is a row
        count = len(rows)
        ones = np.ones(count, dtype=X.dtype)  # column sums as GEMVs: faster than reductions
        mean = (ones @ rows) / count  # (D,)
        centred = rows - mean  # (M, D)
        var = (ones @ (centred * centred)) / count  # (D,)
        inv_std = 1 / np.sqrt(var + self.epsilon)  # (D,)
        self._centred, self._inv_std, self._ones = centred, inv_std, ones
        self.update_moving_statistics(mean, var)
        out = centred * (gamma * inv_std)  # X_hat * gamma, X_hat = centred * inv_std
        out += beta
        return out.reshape(X.shape)

    def update_moving_statistics(self, mean: np.ndarray, var: np.ndarray) -> None:
        """moving = momentum * moving + (1 - momentum) * the batch's, for mean and variance."""
        m = self.momentum
        self.state["moving_mean"] *= m
        self.state["moving_mean"] += (1 - m) * mean
        self.state["moving_variance"] *= m
        self.state["moving_variance"] += (1 - m) * var

    def backward(self, dout, parameters=True):
        if self._inference_scale is not None:  # an explanation's pass: dX = dout * scale
            return dout * self._inference_scale
        centred, inv_std, ones = self._centred, self._inv_std, self._ones
        gamma = self.params["gamma"]
        shape = dout.shape
        dout = dout.reshape(-1, shape[-1])  # (M, D)
        count = len(dout)
        dbeta = ones @ dout  # (D,)
        dgamma = (ones @ (dout * centred)) * inv_std  # sum(dout * X_hat)
        if parameters:
            self.grads["beta"][...] = dbeta
            self.grads["gamma"][...] = dgamma
        self._centred = None  # (M, D): freed before the layers below need their memory
        # dX = gamma * inv_std / M * (M * dout - dbeta - X_hat * dgamma), X_hat = centred * inv_std
        scale = gamma * inv_std  # (D,)
        dX = dout * scale
        dX -= centred * (scale * inv_std * dgamma / count)
        dX -= scale * dbeta / count
        return dX.reshape(shape)

    def get_config(self):
        return {"momentum": self.momentum, "epsilon": self.epsilon, "name": self.name}
