"""Every layer and loss against central finite differences, in float64, through one harness.

A new layer joins with one line in LAYER_CASES; a new loss with one line in LOSS_CASES.
"""

import numpy as np
import pytest
from gradcheck import assert_close, numeric_gradient

from digitnet.nn import (
    Activation,
    BatchNorm,
    CategoricalCrossentropy,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    MeanSquaredError,
    Reshape,
    Sequential,
    SparseCategoricalCrossentropy,
    fusion,
)
from digitnet.nn.activations import Sigmoid, Softmax, Tanh
from digitnet.nn.errors import NNError

N = 4


def float64_model(layers, seed, loss="sparse_categorical_crossentropy"):
    """A built float64 model for finite differences."""
    model = Sequential(layers, seed=seed, dtype=np.float64)
    model.compile(loss=loss)
    model.build()
    return model


# (id, layer factory, input shape without the batch dimension)
LAYER_CASES = [
    ("dense-linear", lambda: Dense(3), (5,)),
    ("dense-relu", lambda: Dense(3, activation="relu"), (5,)),
    ("dense-sigmoid", lambda: Dense(3, activation="sigmoid"), (5,)),
    ("dense-tanh", lambda: Dense(3, activation=Tanh()), (5,)),
    ("dense-softmax", lambda: Dense(4, activation="softmax"), (5,)),
    ("dense-he", lambda: Dense(3, activation="relu", kernel_initializer="he_normal"), (5,)),
    ("flatten", lambda: Flatten(), (2, 3)),
    ("reshape", lambda: Reshape((3, 2, 1)), (2, 3)),
    ("dropout", lambda: Dropout(0.5), (6,)),
    ("conv-valid", lambda: Conv2D(3, 3, activation="tanh"), (5, 6, 2)),
    ("conv-same-stride2", lambda: Conv2D(2, (3, 2), strides=2, padding="same"), (5, 6, 2)),
    ("conv-1x1-relu", lambda: Conv2D(4, 1, activation="relu"), (3, 3, 2)),
    ("maxpool-2x2", lambda: MaxPool2D(2), (4, 5, 2)),
    ("maxpool-overlapping", lambda: MaxPool2D(3, strides=1), (4, 4, 2)),
    ("activation-layer", lambda: Activation("tanh"), (2, 3, 2)),
    ("batchnorm-dense", lambda: BatchNorm(), (5,)),
    ("batchnorm-conv", lambda: BatchNorm(), (3, 3, 2)),
]


def _build_float64(layer, input_shape, rng):
    layer.build(input_shape, rng)
    for key in layer.params:
        # Perturb the initial values so that, e.g., BatchNorm's gamma = 1 is not special.
        layer.params[key] = layer.params[key].astype(np.float64) + rng.normal(
            scale=0.1, size=layer.params[key].shape
        )
    size = layer.count_params()
    layer.adopt(np.empty(size), np.zeros(size))  # float64 storage, packed as a model packs it
    return layer


@pytest.mark.parametrize(
    "make, input_shape", [c[1:] for c in LAYER_CASES], ids=[c[0] for c in LAYER_CASES]
)
def test_layer_gradients(make, input_shape, rng):
    check_layer_gradients(_build_float64(make(), input_shape, rng), input_shape, rng)


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("padding, strides", [("valid", 1), ("same", 1), ("same", 2)])
def test_fast_conv_gradients(padding, strides, channels, rng):
    """The fast path's dW, db and dX: windows as rows (or, for one input channel, as columns),
    dX a GEMM per kernel offset, its additions split over threads."""
    shape = (5, 6, channels)
    layer = _build_float64(Conv2D(2, 3, strides=strides, padding=padding), shape, rng)
    step = fusion.FastConv(layer, fusion.PassThrough(), input_grad=True)
    check_layer_gradients(layer, shape, rng, run=step)


def check_layer_gradients(layer, input_shape, rng, run=None):
    """dX and every parameter's gradient of f = sum(R * layer(X)) against finite differences;
    ``run``: a fast-path step over the layer's parameters, run instead of the layer."""
    run = run or layer
    X = rng.normal(size=(N, *input_shape))
    R = rng.normal(size=(N, *layer.output_shape))  # f = sum(R * layer(X)), so df/dout = R

    def f():
        if isinstance(layer, Dropout):
            layer.rng = np.random.default_rng(7)  # the same mask at every evaluation
        return float(np.sum(R * run.forward(X.copy(), training=True)))

    f()
    dX = run.backward(R.copy())
    analytic = {key: grad.copy() for key, grad in layer.grads.items()}
    assert_close(dX, numeric_gradient(f, X), "dX")
    for key, param in layer.params.items():
        assert_close(analytic[key], numeric_gradient(f, param), f"d{key}")


@pytest.mark.parametrize("activation", [Sigmoid(), Tanh(), Softmax()], ids=repr)
def test_activation_backward_of_saturated_inputs_is_finite(activation):
    Z = np.array([[-1e4, 0.0, 1e4]])
    A = activation.forward(Z.copy())
    assert np.isfinite(A).all() and np.isfinite(activation.backward(np.ones_like(A))).all()


def _probabilities(rng, shape):
    P = rng.uniform(0.1, 1.0, size=shape)
    return P / P.sum(axis=1, keepdims=True)


# (id, loss, targets maker, predictions maker) for C = 5 classes
LOSS_CASES = [
    (
        "sparse-ce-logits",
        SparseCategoricalCrossentropy(from_logits=True),
        lambda r: r.integers(0, 5, N),
        lambda r: r.normal(size=(N, 5)),
    ),
    (
        "sparse-ce-probs",
        SparseCategoricalCrossentropy(),
        lambda r: r.integers(0, 5, N),
        lambda r: _probabilities(r, (N, 5)),
    ),
    (
        "ce-logits",
        CategoricalCrossentropy(from_logits=True),
        lambda r: _probabilities(r, (N, 5)),
        lambda r: r.normal(size=(N, 5)),
    ),
    (
        "ce-probs",
        CategoricalCrossentropy(),
        lambda r: np.eye(5)[r.integers(0, 5, N)],
        lambda r: _probabilities(r, (N, 5)),
    ),
    ("mse", MeanSquaredError(), lambda r: r.normal(size=(N, 5)), lambda r: r.normal(size=(N, 5))),
    (
        "mse-labels",
        MeanSquaredError(),
        lambda r: r.integers(0, 5, N),
        lambda r: r.normal(size=(N, 5)),
    ),
]


@pytest.mark.parametrize(
    "loss, targets, predictions", [c[1:] for c in LOSS_CASES], ids=[c[0] for c in LOSS_CASES]
)
def test_loss_gradients(loss, targets, predictions, rng):
    y, P = targets(rng), predictions(rng)
    analytic = loss.gradient(y, P.copy())
    assert_close(analytic, numeric_gradient(lambda: loss(y, P), P), "dloss/dpred")


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "mean_squared_error"])
def test_whole_model_gradient(loss, rng):
    """Backpropagation through a small network equals finite differences of its loss."""
    model = float64_model(
        [
            Flatten(input_shape=(2, 3)),
            Dense(5, activation="tanh"),
            Dense(4, activation="relu"),
            Dropout(0.25),
            Dense(3, activation="softmax"),
        ],
        seed=3,
        loss=loss,
    )
    model.flat_params[...] += rng.normal(scale=0.1, size=model.flat_params.shape)
    X = rng.normal(size=(N, 2, 3))
    y = rng.integers(0, 3, N)
    dropout, plan = model.layers[3], model.plan

    def f():
        dropout.rng = np.random.default_rng(11)
        return plan.loss(y, plan.forward(X, training=True))

    dropout.rng = np.random.default_rng(11)
    out = plan.forward(X, training=True)
    plan.backward(plan.loss.gradient(y, out))
    analytic = model.flat_grads.copy()
    assert plan.logits == (loss == "sparse_categorical_crossentropy")
    assert_close(analytic, numeric_gradient(f, model.flat_params), "d loss / d params")


def test_whole_cnn_gradient(rng):
    """The fast path's Conv2D multiplies by [W; b] in one GEMM: check it end to end."""
    model = float64_model(
        [
            Reshape((6, 6, 1), input_shape=(6, 6)),
            Conv2D(3, 3, activation="tanh"),
            BatchNorm(),
            MaxPool2D(2),
            Conv2D(2, 2, strides=2, padding="same"),
            Flatten(),
            Dense(3, activation="softmax"),
        ],
        seed=4,
    )
    model.flat_params[...] += rng.normal(scale=0.1, size=model.flat_params.shape)
    X, y = rng.normal(size=(N, 6, 6)), rng.integers(0, 3, N)
    plan = model.plan

    def f():
        return plan.loss(y, plan.forward(X, training=True))

    plan.backward(plan.loss.gradient(y, plan.forward(X, training=True)))
    analytic = model.flat_grads.copy()
    assert_close(analytic, numeric_gradient(f, model.flat_params), "d loss / d params")


def test_input_gradient_is_the_inference_gradient_of_the_logit(rng):
    """Backpropagation to the pixels (the web page's explanation): BatchNorm with its moving
    statistics, Dropout off, the softmax head's logit — against finite differences."""
    model = float64_model(
        [
            Reshape((6, 6, 1), input_shape=(6, 6)),
            Conv2D(3, 3, activation="relu"),
            BatchNorm(),
            MaxPool2D(2),
            Dropout(0.5),
            Flatten(),
            Dense(4, activation="sigmoid"),
            Dense(3, activation="softmax"),
        ],
        seed=5,
    )
    model.flat_params[...] += rng.normal(scale=0.3, size=model.flat_params.shape)
    batchnorm = model.layers[2]
    batchnorm.state["moving_mean"][...] = rng.normal(size=3)
    batchnorm.state["moving_variance"][...] = rng.uniform(0.5, 2, size=3)
    X, units = rng.normal(size=(N, 6, 6)), np.array([0, 1, 2, 1])
    before = model.predict(X, verbose=0)
    model.flat_grads[...] = 7.0

    analytic = model.input_gradient(X, units)
    assert (model.flat_grads == 7.0).all()  # parameter gradients neither computed nor touched

    plan = model.plan
    assert plan.logits  # fused with the loss: the fast path's head already outputs logits

    def logit(i):
        return lambda: float(plan.forward(X[i : i + 1], training=False)[0, units[i]])

    numeric = np.stack([numeric_gradient(logit(i), X[i : i + 1])[0] for i in range(N)])
    assert_close(analytic, numeric, "d logit / d input")
    np.testing.assert_array_equal(model.predict(X, verbose=0), before)  # no state changed
    assert plan.first_trainable == 1  # training's backward pass stops at the first Conv2D


def test_input_gradient_rejects_a_unit_outside_the_outputs(rng):
    model = Sequential([Dense(3, activation="softmax", input_shape=(5,))])
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(NNError, match=r"integer in \[0, 3\)"):
        model.input_gradient(rng.normal(size=(2, 5)), 3)
    with pytest.raises(NNError, match="one per sample"):
        model.input_gradient(rng.normal(size=(2, 5)), [0, 1, 2])


@pytest.mark.parametrize("pool_size, strides", [(2, None), (3, 2), (2, 1)])
def test_relu_before_pooling_is_applied_after_it_in_training(pool_size, strides, rng):
    """The model moves a ReLU that feeds a MaxPool2D behind the pooling in training (same
    numbers, a quarter of the work), and a BatchNorm's scaling too when a ReLU and a pooling
    follow it: outputs and gradients must not change, windows overlapping or not."""

    def build(fuse: bool):
        model = Sequential(
            [
                Reshape((9, 9, 1), input_shape=(9, 9)),
                Conv2D(3, 2, activation="relu"),
                MaxPool2D(pool_size, strides=strides),
                Conv2D(2, 2),
                BatchNorm(),
                Activation("relu"),
                MaxPool2D(2, strides=1),
                Flatten(),
                Dense(3, activation="softmax"),
            ],
            seed=6,
            dtype=np.float64,
            fuse=fuse,
        )
        model.compile(loss="sparse_categorical_crossentropy")
        model.build()
        return model

    fused, plain = build(True), build(False)
    steps = fused.plan.steps
    assert steps[1].activation.deferred and steps[2].relu_after
    assert isinstance(steps[4], fusion.FastNormPool)  # batch norm, ReLU and pooling at once
    assert isinstance(steps[5], fusion.PassThrough) and isinstance(steps[6], fusion.PassThrough)
    noise = rng.normal(scale=0.3, size=fused.flat_params.shape)
    for model in (fused, plain):
        model.flat_params[...] += noise
        model.layers[4].params["gamma"][...] = [-0.8, 1.1]  # a channel scaled by a negative
    X, y = rng.normal(size=(N, 9, 9)), rng.integers(0, 3, N)
    logits, plain_out = fused.plan.forward(X, training=True), plain.plan.forward(X, training=True)
    np.testing.assert_allclose(fused.plan.predictions(logits), plain_out, rtol=1e-12)
    fused.plan.backward(fused.plan.loss.gradient(y, logits))
    plain.plan.backward(plain.plan.loss.gradient(y, plain_out))
    np.testing.assert_allclose(fused.flat_grads, plain.flat_grads, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fused.predict(X, verbose=0), plain.predict(X, verbose=0), rtol=1e-12)

    def f():
        return fused.plan.loss(y, fused.plan.forward(X, training=True))

    assert_close(fused.flat_grads.copy(), numeric_gradient(f, fused.flat_params), "fused")
