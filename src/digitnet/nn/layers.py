"""Layers: Dense, Flatten, Dropout.

The layer protocol (see ``Layer``):

* ``build(input_shape, rng)`` creates the parameters for inputs of shape (N, *input_shape) and
  returns the output shape without the batch dimension;
* ``forward(X, training)`` caches exactly what ``backward`` needs and returns the output;
* ``backward(dout)`` fills ``grads`` (same keys and shapes as ``params``) and returns dX, or None
  when ``needs_input_grad`` is False (the first trainable layer: nothing below needs dX).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitnet.nn.activations import Activation, get_activation
from digitnet.nn.errors import NNError
from digitnet.nn.initializers import Initializer, get_initializer

Shape = tuple[int, ...]


class Layer:
    """Base class. Subclasses override ``build``, ``forward``, ``backward`` and ``get_config``."""

    def __init__(self, input_shape: Shape | None = None, name: str | None = None):
        self.input_shape: Shape | None = tuple(input_shape) if input_shape is not None else None
        self.output_shape: Shape | None = None
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.needs_input_grad = True
        self.built = False

    def build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        self.input_shape = tuple(input_shape)
        self.output_shape = self.input_shape
        self.built = True
        return self.output_shape

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def count_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (JSON-serialisable)."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """A fully connected layer: A = activation(X @ W + b).

    X (N, D) -> A (N, H), with W (D, H) and b (H,). Each of the H units is a neuron: a weighted
    sum of the D inputs plus a bias, passed through the activation.
    """

    def __init__(
        self,
        units: int,
        activation: str | Activation | None = None,
        kernel_initializer: str | Initializer = "glorot_uniform",
        bias_initializer: str | Initializer = "zeros",
        input_shape: Shape | None = None,
        name: str | None = None,
    ):
        super().__init__(input_shape, name)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise NNError(f"Dense expects a positive number of units; got {units!r}")
        self.units = int(units)
        self.activation = get_activation(activation)
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = get_initializer(bias_initializer)
        self.output_logits = False  # set by the model when the loss consumes the logits

    def build(self, input_shape, rng):
        if len(input_shape) != 1:
            raise NNError(
                f"Dense expects inputs of shape (N, D); got (N, {', '.join(map(str, input_shape))})"
                " — add Flatten() before it"
            )
        (D,) = input_shape
        self.params = {
            "W": self.kernel_initializer((D, self.units), rng),  # (D, H)
            "b": self.bias_initializer((self.units,), rng),  # (H,)
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.input_shape, self.output_shape = (D,), (self.units,)
        self.built = True
        return self.output_shape

    def forward(self, X, training=False):
        W, b = self.params["W"], self.params["b"]
        Z = X @ W  # (N, D) @ (D, H) -> (N, H)
        Z += b
        if training:
            self._X = X
        if self.output_logits:
            return Z
        return self.activation.forward(Z, training)

    def backward(self, dA):
        dZ = dA if self.output_logits else self.activation.backward(dA)  # (N, H)
        X = self._X
        np.matmul(X.T, dZ, out=self.grads["W"])  # (D, N) @ (N, H) -> (D, H)
        np.add.reduce(dZ, axis=0, out=self.grads["b"])  # (H,)
        if not self.needs_input_grad:
            return None
        return dZ @ self.params["W"].T  # (N, H) @ (H, D) -> (N, D)

    def get_config(self):
        return {
            "units": self.units,
            "activation": self.activation.name,
            "kernel_initializer": self.kernel_initializer.name,
            "bias_initializer": self.bias_initializer.name,
            "name": self.name,
        }


class Flatten(Layer):
    """Reshapes each sample to a vector: (N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def build(self, input_shape, rng):
        self.input_shape = tuple(input_shape)
        self.output_shape = (int(np.prod(input_shape)),)
        self.built = True
        return self.output_shape

    def forward(self, X, training=False):
        return X.reshape(len(X), -1)  # (N, *input_shape) -> (N, D)

    def backward(self, dout):
        return dout.reshape(len(dout), *self.input_shape)


class Dropout(Layer):
    """Inverted dropout: in training, zeroes each input with probability ``rate`` and scales the
    rest by 1 / (1 - rate), so inference needs no change. Srivastava et al. (2014).
    """

    def __init__(self, rate: float, input_shape: Shape | None = None, name: str | None = None):
        super().__init__(input_shape, name)
        if not 0 <= rate < 1:
            raise NNError(f"Dropout rate must be in [0, 1); got {rate!r}")
        self.rate = float(rate)
        self.rng: np.random.Generator | None = None  # set by the model before training

    def forward(self, X, training=False):
        if not training or self.rate == 0:
            self._mask = None
            return X
        keep = 1.0 - self.rate
        self._mask = (self.rng.random(X.shape, dtype=np.float32) < keep) / np.float32(keep)
        return X * self._mask

    def backward(self, dout):
        return dout if self._mask is None else dout * self._mask

    def get_config(self):
        return {"rate": self.rate, "name": self.name}


LAYERS: dict[str, type[Layer]] = {cls.__name__: cls for cls in (Dense, Flatten, Dropout)}
