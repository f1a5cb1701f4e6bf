"""The fast path (``digitnet.nn.fusion``) against the plain one: the same numbers.

``Sequential(fuse=False)`` runs each layer as its math reads; the default runs the rewrites.
Here both run the same weights on the same data: outputs, gradients and whole trainings agree
to float32 rounding, and the plain path itself agrees with finite differences.
"""

import numpy as np
import pytest
from gradcheck import assert_close, numeric_gradient

from digitnet.data import load_mnist, to_float
from digitnet.nn import (
    SGD,
    Activation,
    Adam,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    Reshape,
    Sequential,
)
from digitnet.nn.layers import WeightedSum
from digitnet.zoo import cnn, mlp


def keras_example_cnn(seed, fuse=True):
    return Sequential(
        [
            Reshape((12, 12, 1), input_shape=(12, 12)),
            Conv2D(4, 3, activation="relu"),
            MaxPool2D(2),
            Conv2D(6, 3, activation="relu", padding="same"),
            MaxPool2D(2, strides=1),
            Flatten(),
            Dropout(0.5),
            Dense(5, activation="softmax"),
        ],
        seed=seed,
        fuse=fuse,
    )


def bn_relu_cnn(seed, fuse=True):
    return Sequential(
        [
            Reshape((10, 10, 1), input_shape=(10, 10)),
            Conv2D(4, 3, strides=2, padding="same"),
            BatchNorm(),
            Activation("relu"),
            MaxPool2D(2),
            Flatten(),
            Dense(6, activation="tanh"),
            Dense(3),
            Activation("softmax"),
        ],
        seed=seed,
        fuse=fuse,
    )


def sigmoid_mlp_mse(seed, fuse=True):
    return Sequential(
        [Flatten(input_shape=(4, 5)), Dense(7, activation="sigmoid"), Dense(3, "softmax")],
        seed=seed,
        fuse=fuse,
    )


MODELS = [  # (id, builder, input shape, classes, loss)
    ("tutorial", lambda s, f: _fused(mlp(s), f), (28, 28), 10, "sparse_categorical_crossentropy"),
    ("keras-cnn", keras_example_cnn, (12, 12), 5, "sparse_categorical_crossentropy"),
    ("bn-relu-cnn", bn_relu_cnn, (10, 10), 3, "categorical_crossentropy"),
    ("sigmoid-mse", sigmoid_mlp_mse, (4, 5), 3, "mse"),
]


def _fused(model, fuse):
    model.fuse = fuse
    return model


# and the cnn preset itself (too large for finite differences): its two blocks of BatchNorm,
# ReLU and pooling, one of whose windows leave a row and a column out, run as one step each
ONE_STEP = [*MODELS, ("cnn-preset", lambda s, f: _fused(cnn(s), f), (28, 28), 10,
                      "sparse_categorical_crossentropy")]  # fmt: skip


def pair(builder, shape, loss, dtype=np.float32):
    """The same model (same weights) on the fast path and on the plain one."""
    models = []
    for fuse in (True, False):
        model = builder(3, fuse)
        model.dtype = np.dtype(dtype)
        model.compile(optimizer=SGD(0.1), loss=loss, metrics=["accuracy"])
        model.build()
        models.append(model)
    fast, plain = models
    assert fast.plan.steps != plain.plan.steps and plain.plan.steps == plain.layers
    return fast, plain


def data(shape, classes, loss, rng, n=16):
    X = rng.random((n, *shape)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return X, (np.eye(classes, dtype=np.float32)[y] if loss == "categorical_crossentropy" else y)


@pytest.mark.parametrize("builder, shape, classes, loss", [m[1:] for m in ONE_STEP],
                         ids=[m[0] for m in ONE_STEP])  # fmt: skip
def test_one_training_step_is_the_same_on_both_paths(builder, shape, classes, loss, rng):
    fast, plain = pair(builder, shape, loss)
    X, y = data(shape, classes, loss, rng)
    for model in (fast, plain):
        for layer in model.layers:
            if isinstance(layer, Dropout):
                layer.rng = np.random.default_rng(5)  # the same mask on both paths
    outputs = []
    for model in (fast, plain):
        plan = model.plan
        out = plan.forward(X, training=True)
        outputs.append(plan.predictions(out))
        plan.backward(plan.loss.gradient(y, out))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    scale = np.abs(plain.flat_grads).max()
    np.testing.assert_allclose(fast.flat_grads, plain.flat_grads, atol=2e-5 * scale)
    np.testing.assert_allclose(fast.predict(X, verbose=0), plain.predict(X, verbose=0),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("builder, shape, classes, loss", [m[1:] for m in MODELS[1:]],
                         ids=[m[0] for m in MODELS[1:]])  # fmt: skip
def test_the_plain_path_is_the_gradient_of_the_loss(builder, shape, classes, loss, rng):
    """Finite differences through the textbook path of each small model (not the tutorial's
    12,730 weights), in float64; the fast path's own check is tests/test_gradients.py."""
    _, plain = pair(builder, shape, loss, dtype=np.float64)
    plain.flat_params[...] += rng.normal(scale=0.1, size=plain.flat_params.shape)
    X, y = data(shape, classes, loss, rng, n=3)
    X = X.astype(np.float64)
    y = y.astype(np.float64) if loss == "categorical_crossentropy" else y
    for layer in plain.layers:
        if isinstance(layer, Dropout):
            layer.rate = 0.0  # a random mask has no finite differences
    plan = plain.plan
    plan.backward(plan.loss.gradient(y, plan.forward(X, training=True)))
    analytic = plain.flat_grads.copy()

    def f():
        return plan.loss(y, plan.forward(X, training=True))

    assert_close(analytic, numeric_gradient(f, plain.flat_params), "plain d loss / d params")


def test_cnn_preset_trains_the_same_on_both_paths(rng):
    """Eight Adam steps of the cnn preset (batch norm, dropout off) on both paths give the
    same network: its probabilities agree to a few parts in 10,000. (Not its every weight: a
    bias just before a BatchNorm has a true gradient of 0, and Adam scales the rounding noise
    that stands in for it to a full step, in its own direction on each path.)"""
    X = rng.random((64, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    probabilities = []
    for fuse in (True, False):
        model = cnn(seed=1)
        model.fuse = fuse
        model.layers[-2].rate = 0.0
        model.compile(optimizer=Adam(1e-3), loss="sparse_categorical_crossentropy")
        model.fit(X, y, epochs=2, batch_size=16, verbose=0, seed=0)
        probabilities.append(model.predict(X, verbose=0))
    assert np.abs(probabilities[0] - probabilities[1]).max() < 2e-3


def test_the_tutorial_recipe_learns_the_same_on_both_paths():
    """The tutorial's recipe, one epoch on all of MNIST: test accuracy within 0.002 (float32
    rounding, not the method, separates the two paths). benchmarks/bench_tutorial.py does
    seeds 0-4 and five epochs."""
    (x_train, y_train), (x_test, y_test) = load_mnist()
    x_train, x_test = to_float(x_train), to_float(x_test)
    accuracy = []
    for fuse in (True, False):
        model = mlp(seed=0)
        model.fuse = fuse
        model.compile(optimizer=SGD(0.01), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])  # fmt: skip
        model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0, seed=0)
        accuracy.append(model.evaluate(x_test, y_test, verbose=0)[1])
    assert accuracy[1] > 0.85 and abs(accuracy[0] - accuracy[1]) <= 0.002, accuracy


def test_a_conv_layer_owns_its_weights_and_bias_as_one_matrix(rng):
    """The fast path multiplies by [W; b] in one GEMM: the layer keeps W and b as views of that
    one matrix — in a model and on its own — so a change to either is a change to it."""
    alone = Conv2D(3, 2)
    alone.build((5, 5, 2), rng)
    model = keras_example_cnn(seed=0)
    model.build()
    for layer in (alone, model.layers[1]):
        K = layer.params["W"][..., 0].size
        np.testing.assert_array_equal(layer.kernel_and_bias[:K], layer.params["W"].reshape(K, -1))
        layer.params["b"][...] = 7.0
        assert (layer.kernel_and_bias[K] == 7.0).all()
    model.set_weights([w + 1 for w in model.get_weights()])
    conv = model.layers[1]
    np.testing.assert_array_equal(conv.kernel_and_bias[-1], conv.params["b"])


def test_activations_are_composed_not_inherited():
    dense = Dense(4, activation="relu")
    assert not isinstance(dense, Activation) and isinstance(dense, WeightedSum)
    assert dense.activation.name == "relu" and Conv2D(2, 3).activation.name == "linear"
