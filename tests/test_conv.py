"""Convolution, pooling and batch normalisation: against direct definitions, and their errors."""

import numpy as np
import pytest

from digitnet.nn import (
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    NNError,
    Reshape,
    Sequential,
    load_model,
)


def direct_conv(X, W, b, stride, pads):
    """The textbook definition, with loops: out[n,i,j,f] = sum X[n, i*s+u, j*s+v, c] W[u,v,c,f]."""
    (top, bottom), (left, right) = pads
    Xp = np.pad(X, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw, _, F = W.shape
    Ho = (Xp.shape[1] - kh) // stride + 1
    Wo = (Xp.shape[2] - kw) // stride + 1
    out = np.zeros((len(X), Ho, Wo, F))
    for i in range(Ho):
        for j in range(Wo):
            patch = Xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, W, axes=([1, 2, 3], [0, 1, 2]))
    return out + b


@pytest.mark.parametrize(
    "padding, stride, expected_hw",
    [("valid", 1, 5), ("same", 1, 7), ("same", 2, 4), ("valid", 2, 3)],
)
def test_conv_matches_the_direct_definition(padding, stride, expected_hw, rng):
    layer = Conv2D(4, 3, strides=stride, padding=padding)
    layer.build((7, 7, 2), rng)
    layer.params["b"][...] = rng.normal(size=4)
    X = rng.normal(size=(3, 7, 7, 2)).astype(np.float32)
    out = layer.forward(X)
    assert out.shape == (3, expected_hw, expected_hw, 4) == (3, *layer.output_shape)
    reference = direct_conv(X, layer.params["W"], layer.params["b"], stride, layer._pads)
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-5)


def test_maxpool_picks_window_maxima_and_routes_ties_to_one_input():
    X = np.zeros((1, 4, 4, 1), np.float32)
    X[0, 1, 1, 0], X[0, 2, 3, 0] = 5, 7
    pool = MaxPool2D(2)
    pool.build((4, 4, 1), None)
    out = pool.forward(X, training=True)
    np.testing.assert_array_equal(out[0, :, :, 0], [[5, 0], [0, 7]])
    dX = pool.backward(np.ones_like(out))
    assert dX.sum() == 4  # one input per window receives the gradient, even among equal zeros
    assert dX[0, 1, 1, 0] == 1 and dX[0, 2, 3, 0] == 1
    np.testing.assert_array_equal(pool.forward(X, training=False), out)


def test_batchnorm_normalises_in_training_and_uses_moving_averages_in_inference(rng):
    bn = BatchNorm(momentum=0.5)
    bn.build((3,), rng)
    X = rng.normal(loc=[10, -5, 0], scale=[2, 0.5, 1], size=(512, 3)).astype(np.float32)
    for _ in range(30):
        Y = bn.forward(X, training=True)
    np.testing.assert_allclose(Y.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(Y.std(axis=0), 1, atol=1e-2)
    np.testing.assert_allclose(bn.state["moving_mean"], X.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(bn.state["moving_variance"], X.var(axis=0), rtol=1e-3)
    one = bn.forward(X[:1], training=False)  # a single sample: batch statistics are impossible
    np.testing.assert_allclose(one, bn.forward(X, training=False)[:1], rtol=1e-5)
    np.testing.assert_allclose(one, Y[:1], atol=2e-2)


def test_cnn_saves_and_loads_with_batchnorm_state(tmp_path, rng):
    model = Sequential(
        [
            Reshape((8, 8, 1), input_shape=(8, 8)),
            Conv2D(4, 3, activation="relu"),
            BatchNorm(),
            MaxPool2D(2),
            Flatten(),
            Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(optimizer="adam", metrics=["accuracy"])
    X = rng.random((64, 8, 8), dtype=np.float32)
    model.fit(X, rng.integers(0, 10, 64), epochs=2, verbose=False)
    assert model.layers[2].state["moving_mean"].any()
    model.save(tmp_path / "cnn.npz")
    loaded = load_model(tmp_path / "cnn.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    "layers, message",
    [
        (
            [Reshape((5, 5, 1), input_shape=(5, 5)), Conv2D(2, 7)],
            r"layer 1 \(Conv2D\): Conv2D kernel 7x7 is larger than its 5x5 input",
        ),
        (
            [Reshape((5, 5, 1), input_shape=(5, 5)), MaxPool2D(6)],
            r"layer 1 \(MaxPool2D\): MaxPool2D pool 6x6 is larger than its 5x5 input",
        ),
        (
            [Flatten(input_shape=(5, 5)), Conv2D(2, 3)],
            r"layer 1 \(Conv2D\): Conv2D expects inputs of shape \(N, H, W, C\); got \(N, 25\)",
        ),
        (
            [Reshape((5, 5, 1), input_shape=(5, 5)), Conv2D(2, 3), Dense(3)],
            r"layer 2 \(Dense\): Dense expects inputs of shape \(N, D\); got \(N, 3, 3, 2\)",
        ),
        ([Reshape((5, 6), input_shape=(5, 5))], r"cannot turn samples of shape \(5, 5\)"),
    ],
    ids=["kernel-too-big", "pool-too-big", "conv-after-flatten", "dense-after-conv", "reshape"],
)
def test_incompatible_stacking_names_the_layer_and_shapes(layers, message):
    with pytest.raises(NNError, match=message):
        Sequential(layers).build()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Conv2D(4, 3, strides=0), "stride must be at least 1"),
        (lambda: Conv2D(0, 3), "positive number of filters"),
        (lambda: Conv2D(4, 3, padding="full"), "padding must be 'valid' or 'same'"),
        (lambda: MaxPool2D(0), "positive number of pool_size"),
    ],
)
def test_bad_layer_arguments(make, message):
    with pytest.raises(NNError, match=message):
        make()


@pytest.mark.slow
def test_small_cnn_learns_digits(mnist):
    """A short CNN run on 3,000 training digits clears a floor on 1,000 test digits."""
    (x_train, y_train), (x_test, y_test) = mnist
    model = Sequential(
        [
            Reshape((28, 28, 1), input_shape=(28, 28)),
            Conv2D(8, 3, activation="relu"),
            MaxPool2D(2),
            Conv2D(16, 3, activation="relu"),
            MaxPool2D(2),
            Flatten(),
            Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(x_train[:3000] / 255.0, y_train[:3000], epochs=5, batch_size=32, verbose=False)
    _, accuracy = model.evaluate(x_test[:1000] / 255.0, y_test[:1000])
    assert accuracy > 0.9
