"""Element-wise passes split over threads give the numbers of one pass, bit for bit."""

import threading

import numpy as np
import pytest

from digitnet.nn import BatchNorm, Conv2D, Dense, Flatten, MaxPool2D, Reshape, Sequential, parallel
from digitnet.nn.layers import Activation


def test_over_batch_covers_every_row_once_across_threads(monkeypatch):
    monkeypatch.setattr(parallel, "THREADS", 3)
    seen, threads = [], set()
    together = threading.Barrier(3, timeout=10)  # all three parts run at the same time

    def work(rows):
        seen.extend(range(10)[rows])
        threads.add(threading.get_ident())
        together.wait()

    parallel.over_batch(work, 10, elements=parallel.MIN_ELEMENTS)
    assert sorted(seen) == list(range(10)) and len(threads) == 3

    seen.clear()
    parallel.over_batch(seen.append, 10, elements=parallel.MIN_ELEMENTS - 1)  # small: one call
    assert seen == [slice(0, 10)]


def test_an_error_in_a_thread_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(parallel, "THREADS", 2)

    def work(rows):
        if rows.start > 0:
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        parallel.over_batch(work, 4, elements=parallel.MIN_ELEMENTS)


def one_training_step(rng):
    model = Sequential(
        [
            Reshape((12, 12, 1), input_shape=(12, 12)),
            Conv2D(4, 3, activation="relu"),
            MaxPool2D(2),
            Conv2D(6, 3),
            BatchNorm(),
            Activation("relu"),
            MaxPool2D(2, strides=1),
            Flatten(),
            Dense(5, activation="relu"),
            Dense(3, activation="softmax"),
        ],
        seed=3,
    )
    model.compile(loss="sparse_categorical_crossentropy")
    model.build()
    X, y = rng.random((9, 12, 12), dtype=np.float32), rng.integers(0, 3, 9)
    out = model.plan.forward(X, training=True)
    model.plan.backward(model.plan.loss.gradient(y, out))
    return out, model.flat_grads.copy(), model.predict(X)


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_a_training_step_is_the_same_split_over_threads(monkeypatch, threads):
    serial = one_training_step(np.random.default_rng(0))
    monkeypatch.setattr(parallel, "THREADS", threads)
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 0)  # split even these small passes
    split = one_training_step(np.random.default_rng(0))
    for a, b in zip(serial, split, strict=True):
        np.testing.assert_array_equal(a, b)
