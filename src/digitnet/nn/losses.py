"""Losses. Each gives the mean loss over a batch and its gradient with respect to the predictions.

``y_pred`` is (N, C). ``y_true`` is integer labels (N,) for the sparse loss, one-hot or soft
labels (N, C) for the categorical one; mean squared error takes either (labels are one-hot
encoded). With ``from_logits=True`` a cross-entropy takes raw scores and applies softmax itself,
stably (log-sum-exp), and its gradient is simply ``(softmax(Z) - onehot) / N``.
"""

from __future__ import annotations

import numpy as np

from digitnet.nn.activations import softmax
from digitnet.nn.errors import NNError, lookup

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON], as Keras does


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise log(softmax(Z)) for logits Z (N, C), finite for any finite Z."""
    shifted = Z - Z.max(axis=1, keepdims=True)  # (N, C), row max is 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def one_hot(y: np.ndarray, C: int, dtype=np.float32) -> np.ndarray:
    """Integer labels (N,) -> one-hot rows (N, C)."""
    Y = np.zeros((len(y), C), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


class Loss:
    """Base class: ``per_sample`` (N,), ``__call__`` the mean, ``gradient`` d(mean)/d y_pred."""

    name = "loss"
    from_logits = False
    sparse_labels = False  # True when y_true is integer labels (N,)

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.mean(self.per_sample(y_true, y_pred), dtype=np.float64))

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def with_logits(self) -> Loss:
        """The same loss taking logits; only cross-entropies have one."""
        raise NNError(f"{self.name} has no logits form")

    def get_config(self) -> dict:
        return {"name": self.name, "from_logits": self.from_logits}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class SparseCategoricalCrossentropy(Loss):
    """L = -log p[y] for integer labels y (N,) and predictions (N, C)."""

    name = "sparse_categorical_crossentropy"
    sparse_labels = True

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def per_sample(self, y_true, y_pred):
        rows = np.arange(len(y_true))
        if self.from_logits:
            return -log_softmax(y_pred)[rows, y_true]
        return -np.log(np.clip(y_pred[rows, y_true], EPSILON, 1 - EPSILON))

    def gradient(self, y_true, y_pred):
        N = len(y_true)
        rows = np.arange(N)
        if self.from_logits:
            dZ = softmax(y_pred)  # (N, C)
            dZ[rows, y_true] -= 1
            dZ *= 1 / N
            return dZ
        dP = np.zeros_like(y_pred)
        p = y_pred[rows, y_true]
        inside = (p > EPSILON) & (p < 1 - EPSILON)  # clip has no gradient outside
        dP[rows, y_true] = np.where(inside, -1 / (np.clip(p, EPSILON, 1 - EPSILON) * N), 0)
        return dP

    def with_logits(self):
        return SparseCategoricalCrossentropy(from_logits=True)


class CategoricalCrossentropy(Loss):
    """L = -sum_c y_c log p_c for one-hot or soft labels Y (N, C)."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def per_sample(self, y_true, y_pred):
        if self.from_logits:
            return -(y_true * log_softmax(y_pred)).sum(axis=1)
        return -(y_true * np.log(np.clip(y_pred, EPSILON, 1 - EPSILON))).sum(axis=1)

    def gradient(self, y_true, y_pred):
        N = len(y_true)
        if self.from_logits:
            # dL/dZ = softmax(Z) * sum_c(y_c) - y, which is softmax(Z) - y for labels summing to 1
            P = softmax(y_pred)
            return (P * y_true.sum(axis=1, keepdims=True) - y_true) / N
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)  # clip has no gradient outside
        safe = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return (-y_true / safe * inside / N).astype(y_pred.dtype, copy=False)

    def with_logits(self):
        return CategoricalCrossentropy(from_logits=True)


class MeanSquaredError(Loss):
    """L = mean_c (y_c - p_c)² per sample; integer labels are one-hot encoded first."""

    name = "mean_squared_error"

    def _targets(self, y_true, y_pred):
        if y_true.ndim == 1 and y_pred.ndim == 2:
            return one_hot(y_true, y_pred.shape[1], dtype=y_pred.dtype)
        return y_true

    def per_sample(self, y_true, y_pred):
        diff = y_pred - self._targets(y_true, y_pred)
        return (diff * diff).mean(axis=1)

    def gradient(self, y_true, y_pred):
        diff = y_pred - self._targets(y_true, y_pred)
        return diff * (2 / diff.size)

    def get_config(self):
        return {"name": self.name}


LOSSES: dict[str, type[Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get_loss(loss: str | Loss) -> Loss:
    """A loss by name or object: "sparse_categorical_crossentropy", "categorical_crossentropy",
    "mean_squared_error" ("mse")."""
    if isinstance(loss, Loss):
        return loss
    return lookup(LOSSES, loss, "loss")()
