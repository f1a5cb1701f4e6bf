"""Element-wise activations and softmax, each with its forward and backward pass.

An activation maps pre-activations Z (N, H) to activations A (N, H). ``forward`` remembers what
``backward`` needs, and ``backward(dA)`` returns dZ with the shape of Z. Neither changes its
argument: this is the plain path, as the math reads. (The fast path of a compiled model does
ReLU in place, on several threads: ``digitnet.nn.fusion``.)
"""

from __future__ import annotations

import numpy as np

from digitnet.nn.errors import lookup


class ActivationFunction:
    """Base class; subclasses are stateless apart from the cache of the last forward pass."""

    name = "activation"

    def forward(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dA: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(ActivationFunction):
    """The identity, A = Z."""

    name = "linear"

    def forward(self, Z):
        return Z

    def backward(self, dA):
        return dA


class ReLU(ActivationFunction):
    """A = max(Z, 0); dZ = dA where Z > 0, else 0."""

    name = "relu"

    def forward(self, Z):
        self._Z = Z
        return np.maximum(Z, 0)

    def backward(self, dA):
        return dA * (self._Z > 0)


class Sigmoid(ActivationFunction):
    """A = 1 / (1 + exp(-Z)); dZ = dA * A * (1 - A)."""

    name = "sigmoid"

    def forward(self, Z):
        # exp(-|Z|) never overflows; the two branches are the same function.
        E = np.exp(-np.abs(Z))
        self._A = np.where(Z >= 0, 1 / (1 + E), E / (1 + E)).astype(Z.dtype, copy=False)
        return self._A

    def backward(self, dA):
        A = self._A
        return dA * A * (1 - A)


class Tanh(ActivationFunction):
    """A = tanh(Z); dZ = dA * (1 - A²)."""

    name = "tanh"

    def forward(self, Z):
        self._A = np.tanh(Z)
        return self._A

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

    Paired with a cross-entropy loss, the fast path skips it during training and lets the loss
    work from the logits (``digitnet.nn.fusion``): faster and numerically exact.
    """

    name = "softmax"

    def forward(self, Z):
        self._A = softmax(Z)
        return self._A

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
