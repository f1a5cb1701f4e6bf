"""The reader's two small convolutional networks — the piece checker and the pair reader — as
they are built and trained: the same recipe, their own inputs and outputs."""

from __future__ import annotations

from digitnet.nn import Adam, Conv2D, Dense, Dropout, Flatten, MaxPool2D, Reshape, Sequential
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


def fit_held_out(model: Sequential, data: Written, epochs: int, verbose: int) -> float:
    """Train ``model`` on the pieces before ``data.held_out`` (Adam, cosine decay from 1e-3,
    batch BATCH), validated on the rest after each epoch; its accuracy on the held-out part."""
    x, y, cut = data.x, data.y, data.held_out
    steps = epochs * -(-cut // BATCH)
    model.compile(optimizer=Adam(CosineDecay(1e-3, steps)), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])  # fmt: skip
    model.fit(x[:cut], y[:cut], epochs=epochs, batch_size=BATCH, verbose=2 if verbose else 0,
              validation_data=(x[cut:], y[cut:]))  # fmt: skip
    return float(model.evaluate(x[cut:], y[cut:], verbose=0)[1])
