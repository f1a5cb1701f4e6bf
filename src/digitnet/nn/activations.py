"""Element-wise activations and softmax, each with its forward and backward pass.

An activation maps pre-activations Z (N, H) to activations A (N, H). ``forward`` caches what
``backward`` needs, and ``backward(dA)`` returns dZ with the shape of Z. Both may work in place:
``forward`` owns Z, and ``backward`` owns dA (the engine never reuses either afterwards).
"""

from __future__ import annotations

import numpy as np

from digitnet.nn.errors import lookup
from digitnet.nn.parallel import by_rows


class ActivationFunction:
    """Base class; subclasses are stateless apart from the cache of the last forward pass."""

    name = "activation"

    def forward(self, Z: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dA: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(ActivationFunction):
    """The identity, A = Z."""

    name = "linear"

    def forward(self, Z, training=False):
        return Z

    def backward(self, dA):
        return dA


def _clip_negative(Z: np.ndarray) -> None:
    np.maximum(Z, 0, out=Z)


def _pass_where_positive(dA: np.ndarray, A: np.ndarray) -> None:
    np.multiply(dA, A > 0, out=dA)


class ReLU(ActivationFunction):
    """A = max(Z, 0); dZ = dA where Z > 0, else 0."""

    name = "relu"

    def forward(self, Z, training=False):
        by_rows(_clip_negative, Z)
        if training:
            self._A = Z  # no extra memory: the next layer holds A anyway; A > 0 where Z > 0
        return Z

    def backward(self, dA):
        by_rows(_pass_where_positive, dA, self._A)
        return dA


class Sigmoid(ActivationFunction):
    """A = 1 / (1 + exp(-Z)); dZ = dA * A * (1 - A)."""

    name = "sigmoid"

    def forward(self, Z, training=False):
        # exp(-|Z|) never overflows; the two branches are the same function.
        E = np.exp(-np.abs(Z))
        A = np.where(Z >= 0, 1 / (1 + E), E / (1 + E)).astype(Z.dtype, copy=False)
        if training:
            self._A = A
        return A

    def backward(self, dA):
        A = self._A
        return dA * A * (1 - A)


class Tanh(ActivationFunction):
    """A = tanh(Z); dZ = dA * (1 - A²)."""

    name = "tanh"

    def forward(self, Z, training=False):
        A = np.tanh(Z, out=Z)
        if training:
            self._A = A
        return A

    def backward(self, dA):
        A = self._A
        return dA * (1 - A * A)


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits Z (N, C) -> probabilities (N, C), each row summing to 1.

    Subtracting the row maximum first keeps exp() from overflowing for any finite logits.
    """
    # ufunc.reduce directly: the ndarray.max/sum wrappers cost more than the math at N = 32
    P = Z - np.maximum.reduce(Z, axis=1, keepdims=True)  # (N, C), every entry <= 0
    np.exp(P, out=P)
    P /= np.add.reduce(P, axis=1, keepdims=True)
    return P


class Softmax(ActivationFunction):
    """A = softmax(Z) row-wise; dZ = A * (dA - sum(dA * A, axis=1)).

    Paired with a cross-entropy loss, the model skips this layer during training and lets the
    loss work from the logits (see ``digitnet.nn.losses``): faster and numerically exact.
    """

    name = "softmax"

    def forward(self, Z, training=False):
        A = softmax(Z)
        if training:
            self._A = A
        return A

    def backward(self, dA):
        A = self._A
        return A * (dA - (dA * A).sum(axis=1, keepdims=True))


ACTIVATIONS: dict[str, type[ActivationFunction]] = {
    cls.name: cls for cls in (Linear, ReLU, Sigmoid, Tanh, Softmax)
}


def get_activation(activation: str | ActivationFunction | None) -> ActivationFunction:
    """An activation by name ("relu", "sigmoid", "tanh", "softmax", "linear"), object or None."""
    if activation is None:
        return Linear()
    if isinstance(activation, ActivationFunction):
        return activation
    if isinstance(activation, type) and issubclass(activation, ActivationFunction):
        return activation()
    return lookup(ACTIVATIONS, activation, "activation")()
