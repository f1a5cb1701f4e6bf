"""What callers give fit, evaluate and predict, checked: arrays of the right shape and type,
labels the loss can use, whole numbers where counts are meant. Each refusal is an NNError that
says what was expected, what came, and how to fix it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from digitnet.nn.errors import NNError
from digitnet.nn.losses import CategoricalCrossentropy


def shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def samples(model, x: Any, where: str) -> np.ndarray:
    """x as an array of the model's dtype, (N, *input_shape); builds the model on first use."""
    X = np.asarray(x)
    if X.dtype.kind not in "biuf":
        raise NNError(f"{where} expects a numeric array; got dtype {X.dtype}")
    if not model.built:
        model.build(model.input_shape or X.shape[1:])
    expected = model.layers[0].input_shape
    if X.shape[1:] != expected or X.ndim < 2:
        hint = ""
        if X.size and math.prod(X.shape[1:]) == math.prod(expected):
            hint = f" — reshape it with x.reshape(-1, {', '.join(map(str, expected))})"
        raise NNError(
            f"{where} expects x of shape (N, {', '.join(map(str, expected))});"
            f" got {shape_str(X.shape)}{hint}"
        )
    if len(X) == 0:
        raise NNError(f"{where} got no samples (x has shape {shape_str(X.shape)})")
    return X.astype(model.dtype, copy=False)


def targets(model, y: Any, n: int, where: str) -> np.ndarray:
    """y for n samples, as the model's loss takes them: integer labels (N,) or targets (N, C)."""
    Y = np.asarray(y)
    classes = model.layers[-1].output_shape[-1]
    if len(Y) != n:
        raise NNError(f"{where}: x has {n} samples but y has {len(Y)}")
    if model.loss.sparse_labels and Y.ndim != 1:
        raise NNError(
            f"{where}: {model.loss.name} expects integer labels of shape (N,);"
            f" got {shape_str(Y.shape)} — use categorical_crossentropy for one-hot targets"
        )
    if isinstance(model.loss, CategoricalCrossentropy) and Y.ndim != 2:
        raise NNError(
            f"{where}: categorical_crossentropy expects one-hot targets of shape"
            f" (N, {classes}); got {shape_str(Y.shape)}"
            " — use sparse_categorical_crossentropy for integer labels"
        )
    if Y.ndim == 1:
        if Y.dtype.kind == "f" and not np.all(np.round(Y) == Y):
            raise NNError(f"{where}: labels must be whole numbers")
        Y = Y.astype(np.intp, copy=False)
        if Y.min() < 0 or Y.max() >= classes:
            raise NNError(
                f"{where}: labels must be in 0..{classes - 1} for a {classes}-unit output;"
                f" got values from {Y.min()} to {Y.max()}"
            )
        return Y
    if Y.shape[1:] != (classes,):
        raise NNError(
            f"{where} expects y of shape (N,) or (N, {classes}); got {shape_str(Y.shape)}"
        )
    return Y.astype(model.dtype, copy=False)


def training_arrays(model, x, y, validation_data, validation_split):
    """fit's data checked: (X, Y, validation), validation (X_val, Y_val) or None — given, or
    the last ``validation_split`` of the samples."""
    X = samples(model, x, "fit")
    Y = targets(model, y, len(X), "fit")
    if validation_data is not None:
        if len(validation_data) != 2:
            raise NNError("validation_data must be a pair (x_val, y_val)")
        X_val = samples(model, validation_data[0], "fit (validation_data)")
        return (
            X,
            Y,
            (X_val, targets(model, validation_data[1], len(X_val), "fit (validation_data)")),
        )
    if not validation_split:
        return X, Y, None
    if not 0 < validation_split < 1:
        raise NNError(f"validation_split must be in (0, 1); got {validation_split!r}")
    n_val = int(len(X) * validation_split)
    if n_val == 0 or n_val == len(X):
        raise NNError(f"validation_split={validation_split} leaves an empty split")
    return X[:-n_val], Y[:-n_val], (X[-n_val:], Y[-n_val:])


def whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise NNError(f"{name} must be a whole number; got {value!r}")
    return int(value)


def positive_whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise NNError(f"{name} must be a positive whole number; got {value!r}")
    return int(value)
