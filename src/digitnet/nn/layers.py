"""Layers: the protocol, Dense, Activation, Flatten, Reshape, Dropout. (Conv2D and MaxPool2D live
in ``conv``, BatchNorm in ``normalization``.)

The layer protocol (see ``Layer``) is the textbook's, and each layer's code is its math:

* ``build(input_shape, rng)`` creates the parameters for inputs of shape (N, *input_shape) and
  returns the output shape without the batch dimension;
* ``forward(X, training)`` returns the output and remembers what ``backward`` needs (references,
  not copies). ``training`` switches Dropout and BatchNorm to their training behaviour;
* ``backward(dout)`` fills ``grads`` (same keys and shapes as ``params``) with d loss / d param
  and returns dX, d loss / d input. With ``parameters=False`` it returns dX only (an
  explanation's pass back to the pixels, which must not touch the gradients).

This is the plain path. A compiled model runs a faster plan over the same parameters
(``digitnet.nn.fusion``); tests hold the two equal.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from digitnet.nn.activations import ActivationFunction, get_activation
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
        self.state: dict[str, np.ndarray] = {}  # non-trainable arrays saved with the model
        self.built = False

    def build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        self.input_shape = tuple(input_shape)
        self.output_shape = self.input_shape
        self.built = True
        return self.output_shape

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray, parameters: bool = True) -> np.ndarray:
        raise NotImplementedError

    def adopt(self, values: np.ndarray, gradients: np.ndarray) -> None:
        """Keep the parameters in ``values`` and their gradients in ``gradients`` (1-D, of
        ``count_params()`` numbers: the parameters one after the other, in key order). The
        model packs every layer's into one vector, so an optimiser step is a few NumPy calls."""
        offset = 0
        for key, value in self.params.items():
            end = offset + value.size
            view = values[offset:end].reshape(value.shape)
            view[...] = value
            self.params[key] = view
            self.grads[key] = gradients[offset:end].reshape(value.shape)
            offset = end

    def count_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def values_needed(self, input_shape: Shape) -> int:
        """How many parameter and state values ``build(input_shape)`` creates: known before
        anything is allocated (a model file's architecture is checked against it)."""
        return 0

    def working_values(self) -> int:
        """How many values one sample's inference pass through this layer holds (built): its
        output, and in a convolution its windows. Sizes up a model's memory before it runs."""
        return math.prod(self.output_shape)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this layer (JSON-serialisable)."""
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"


def positive_int(layer: str, what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise NNError(f"{layer} expects a positive number of {what}; got {value!r}")
    return int(value)


class Activation(Layer):
    """An activation function as a layer of its own: A = f(Z), any input shape.

    Dense and Conv2D take ``activation=`` directly; this layer serves where something comes in
    between, as in Conv2D -> BatchNorm -> Activation("relu").
    """

    def __init__(
        self,
        activation: str | ActivationFunction | None,
        input_shape: Shape | None = None,
        name: str | None = None,
    ):
        super().__init__(input_shape, name)
        self.activation = get_activation(activation)

    def forward(self, X, training=False):
        return self.activation.forward(X)

    def backward(self, dout, parameters=True):
        return self.activation.backward(dout)

    def get_config(self):
        return {"activation": self.activation.name, "name": self.name}


class WeightedSum(Layer):
    """A layer of neurons, each a weighted sum of its inputs plus a bias, passed through an
    activation: A = activation(Z), Z = weighted_sum(X). Dense and Conv2D; they differ in which
    inputs each neuron sees, that is in ``weighted_sum`` and ``weighted_sum_backward``."""

    def __init__(
        self,
        activation: str | ActivationFunction | None,
        kernel_initializer: str | Initializer,
        bias_initializer: str | Initializer,
        input_shape: Shape | None,
        name: str | None,
    ):
        super().__init__(input_shape, name)
        self.activation = get_activation(activation)
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = get_initializer(bias_initializer)

    def weighted_sum(self, X: np.ndarray) -> np.ndarray:
        """Z, the neurons' weighted sums plus biases; remembers what the backward pass needs."""
        raise NotImplementedError

    def weighted_sum_backward(self, dZ: np.ndarray, parameters: bool = True) -> np.ndarray:
        """dX from dZ, and (with ``parameters``) dW and db into ``grads``."""
        raise NotImplementedError

    def forward(self, X, training=False):
        return self.activation.forward(self.weighted_sum(X))

    def backward(self, dA, parameters=True):
        return self.weighted_sum_backward(self.activation.backward(dA), parameters)

    def get_config(self):
        return {
            "activation": self.activation.name,
            "kernel_initializer": self.kernel_initializer.name,
            "bias_initializer": self.bias_initializer.name,
            "name": self.name,
        }


class Dense(WeightedSum):
    """A fully connected layer: A = activation(X @ W + b).

    X (N, D) -> A (N, H), with W (D, H) and b (H,). Each of the H units is a neuron: a weighted
    sum of the D inputs plus a bias, passed through the activation.
    """

    def __init__(
        self,
        units: int,
        activation: str | ActivationFunction | None = None,
        kernel_initializer: str | Initializer = "glorot_uniform",
        bias_initializer: str | Initializer = "zeros",
        input_shape: Shape | None = None,
        name: str | None = None,
    ):
        super().__init__(activation, kernel_initializer, bias_initializer, input_shape, name)
        self.units = positive_int("Dense", "units", units)

    def values_needed(self, input_shape):
        return (math.prod(input_shape) + 1) * self.units  # W (D, H) and b (H,)

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

    def weighted_sum(self, X):
        self._X = X
        return X @ self.params["W"] + self.params["b"]  # (N, D) @ (D, H) + (H,) -> (N, H)

    def weighted_sum_backward(self, dZ, parameters=True):
        if parameters:
            self.grads["W"][...] = self._X.T @ dZ  # (D, N) @ (N, H) -> (D, H)
            self.grads["b"][...] = dZ.sum(axis=0)  # (H,)
        return dZ @ self.params["W"].T  # (N, H) @ (H, D) -> (N, D)

    def get_config(self):
        return {"units": self.units, **super().get_config()}


class Flatten(Layer):
    """Reshapes each sample to a vector: (N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def build(self, input_shape, rng):
        self.input_shape = tuple(input_shape)
        self.output_shape = (int(np.prod(input_shape)),)
        self.built = True
        return self.output_shape

    def forward(self, X, training=False):
        return X.reshape(len(X), -1)  # (N, *input_shape) -> (N, D)

    def backward(self, dout, parameters=True):
        return dout.reshape(len(dout), *self.input_shape)


class Reshape(Layer):
    """Reshapes each sample: (N, *input_shape) -> (N, *target_shape), e.g. (28, 28) -> (28, 28, 1)
    to feed a convolution."""

    def __init__(self, target_shape: Shape, input_shape: Shape | None = None, name=None):
        super().__init__(input_shape, name)
        self.target_shape = tuple(int(d) for d in target_shape)
        if not self.target_shape or min(self.target_shape) < 1:  # -1 twice kept 784 values
            raise NNError(f"Reshape target sizes must be 1 or more; got {list(target_shape)}")

    def build(self, input_shape, rng):
        if math.prod(input_shape) != math.prod(self.target_shape):
            raise NNError(
                f"Reshape cannot turn samples of shape {tuple(input_shape)} into"
                f" {self.target_shape}: {math.prod(input_shape)} values vs"
                f" {math.prod(self.target_shape)}"
            )
        self.input_shape, self.output_shape = tuple(input_shape), self.target_shape
        self.built = True
        return self.output_shape

    def forward(self, X, training=False):
        return X.reshape(len(X), *self.target_shape)

    def backward(self, dout, parameters=True):
        return dout.reshape(len(dout), *self.input_shape)

    def get_config(self):
        return {"target_shape": list(self.target_shape), "name": self.name}


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

    def backward(self, dout, parameters=True):
        return dout if self._mask is None else dout * self._mask

    def get_config(self):
        return {"rate": self.rate, "name": self.name}
