"""The reader's two small convolutional networks — the piece checker and the pair reader — as
they are built and trained: the same recipe, their own inputs and outputs."""

from __future__ import annotations

from collections.abc import Callable

from digitnet.nn import (
    Adam,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    Reshape,
    Sequential,
    load_model,
)
from digitnet.nn.schedules import CosineDecay
from digitnet.reading.training.pieces import Written

BATCH = 128


def small_cnn(shape: tuple[int, int], filters: tuple[int, ...], pooled: int, outputs: int,
              name: str, seed: int) -> Sequential:  # fmt: skip
    """(N, *shape) -> a 3x3 'valid' convolution + ReLU per entry of ``filters``, the first
    ``pooled`` of them followed by a 2x2 max-pool -> dense 128 + ReLU -> dropout 0.3 ->
    ``outputs`` softmax."""
    layers = [Reshape((*shape, 1), input_shape=shape)]
    for k, count in enumerate(filters):
        layers.append(Conv2D(count, 3, activation="relu", kernel_initializer="he_uniform"))
        if k < pooled:
            layers.append(MaxPool2D(2))
    layers += [
        Flatten(),
        Dense(128, activation="relu", kernel_initializer="he_uniform"),
        Dropout(0.3),
        Dense(outputs, activation="softmax"),
    ]
    return Sequential(layers, seed=seed, name=name)


def starting_model(build: Callable[[int], Sequential], seed: int, start: str | None) -> Sequential:
    """``build(seed)``, or the model file ``start`` to go on training, what it was trained on
    kept in its metadata as ``started_from``."""
    if start is None:
        return build(seed)
    model = load_model(start)
    parent = dict(model.metadata)
    model.metadata.clear()
    model.metadata["started_from"] = {"file": start} | {
        key: parent[key] for key in ("command", "trained_on") if key in parent
    }
    return model


def hands_said(flagged_ones: float = 0.0, joined: float = 0.0, flat_zeros: float = 0.0) -> str:
    """What ``trained_on`` says of the hands the pages were written in (``writing.write_page``'s
    ``flagged_ones``, ``joined`` and ``flat_zeros``)."""
    flags = f", {flagged_ones:g} of the 1s with a continental flag" if flagged_ones else ""
    joins = f", {joined:g} of the digits joined to the next" if joined else ""
    return flags + joins + (f", {flat_zeros:g} of the 0s flat, chained" if flat_zeros else "")


RATE = 1e-3  # Adam's, decaying along a cosine; a tenth of it when a trained model goes on


def fit_held_out(model: Sequential, data: Written, epochs: int, verbose: int) -> float:
    """Train ``model`` on the pieces before ``data.held_out`` (Adam, cosine decay from RATE,
    or a tenth of it for a model that ``starting_model`` took from a file; batch BATCH),
    validated on the rest after each epoch; its accuracy on the held-out part."""
    x, y, cut = data.x, data.y, data.held_out
    steps = epochs * -(-cut // BATCH)
    rate = RATE / 10 if "started_from" in model.metadata else RATE
    model.compile(optimizer=Adam(CosineDecay(rate, steps)), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])  # fmt: skip
    model.fit(x[:cut], y[:cut], epochs=epochs, batch_size=BATCH, verbose=2 if verbose else 0,
              validation_data=(x[cut:], y[cut:]))  # fmt: skip
    return float(model.evaluate(x[cut:], y[cut:], verbose=0)[1])
