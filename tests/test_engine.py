"""The engine's arithmetic and invariants: a hand-worked SGD step, optimisers against their
formulas, softmax and loss stability, dtypes, determinism, callbacks."""

import math

import numpy as np
import pytest

from digitnet.nn import (
    SGD,
    Adam,
    Callback,
    Dense,
    Dropout,
    EarlyStopping,
    Flatten,
    ModelCheckpoint,
    NNError,
    Sequential,
    SparseCategoricalCrossentropy,
    TrainingDiverged,
    load_model,
)
from digitnet.nn.activations import softmax
from digitnet.nn.losses import CategoricalCrossentropy


def tutorial_model(seed=0):
    model = Sequential(
        [
            Flatten(input_shape=(28, 28)),
            Dense(16, activation="relu"),
            Dense(16, activation="relu"),
            Dense(10, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(optimizer=SGD(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def toy_data(rng, n=256, d=6, classes=3):
    """Linearly separable-ish blobs: class c is centred at 2 * e_c."""
    y = rng.integers(0, classes, n)
    X = rng.normal(scale=0.5, size=(n, d)).astype(np.float32)
    X[np.arange(n), y] += 2.0
    return X, y


def test_one_sgd_step_by_hand():
    # One linear neuron, z = w1*x1 + w2*x2 + b, mean squared error, SGD with lr = 0.1.
    model = Sequential([Dense(1, input_shape=(2,))])
    model.compile(optimizer=SGD(learning_rate=0.1), loss="mse")
    model.build()
    model.set_weights([np.array([[1.0], [2.0]]), np.array([0.5])])
    # z = 1*1 + 2*2 + 0.5 = 5.5; target 3; L = (5.5 - 3)^2 = 6.25
    # dL/dz = 2 * (5.5 - 3) = 5; dL/dw = 5 * x = [5, 10]; dL/db = 5
    # w <- [1, 2] - 0.1 * [5, 10] = [0.5, 1.0]; b <- 0.5 - 0.1 * 5 = 0.0
    history = model.fit(np.array([[1.0, 2.0]]), np.array([[3.0]]), epochs=1, verbose=False)
    W, b = model.get_weights()
    np.testing.assert_allclose(W, [[0.5], [1.0]], rtol=1e-6)
    np.testing.assert_allclose(b, [0.0], atol=1e-6)
    assert history.history["loss"] == [pytest.approx(6.25)]


def test_sgd_momentum_and_nesterov_follow_keras_formulas():
    g = np.array([1.0, -2.0], dtype=np.float32)
    for nesterov in (False, True):
        p = np.array([0.5, 0.5], dtype=np.float32)
        opt = SGD(learning_rate=0.1, momentum=0.9, nesterov=nesterov)
        v = np.zeros(2)
        expected = p.astype(np.float64)
        for _ in range(3):
            opt.step([(p, g)])
            v = 0.9 * v - 0.1 * g
            expected = expected + (0.9 * v - 0.1 * g if nesterov else v)
        np.testing.assert_allclose(p, expected, rtol=1e-6)


def test_adam_follows_its_formula():
    p = np.array([1.0, -1.0], dtype=np.float32)
    g = np.array([0.5, 0.25], dtype=np.float32)
    opt = Adam(learning_rate=0.01)
    expected, m, v = p.astype(np.float64), 0.0, 0.0
    for t in range(1, 4):
        opt.step([(p, g)])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        alpha = 0.01 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        expected = expected - alpha * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(p, expected, rtol=1e-5)


def test_softmax_rows_sum_to_one_and_losses_stay_finite_for_huge_logits():
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [3.0, 1.0, 0.2]], dtype=np.float32)
    P = softmax(Z.copy())
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)
    assert np.isfinite(P).all()
    y = np.array([1, 0, 2])
    for loss in (SparseCategoricalCrossentropy(from_logits=True), SparseCategoricalCrossentropy()):
        inputs = Z if loss.from_logits else P
        assert math.isfinite(loss(y, inputs))
        assert np.isfinite(loss.gradient(y, inputs.copy())).all()
    # The wrong class at +1e4 costs exactly the logit gap.
    assert SparseCategoricalCrossentropy(from_logits=True)(y[:1], Z[:1]) == pytest.approx(2e4)
    assert math.isfinite(CategoricalCrossentropy(from_logits=True)(np.eye(3)[y], Z))


def test_training_keeps_float32_and_learns(rng):
    X, y = toy_data(rng)
    model = Sequential([Dense(8, activation="relu", input_shape=(6,)), Dense(3, "softmax")], seed=1)
    model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(X.astype(np.float64), y, epochs=20, verbose=False)
    assert all(w.dtype == np.float32 for w in model.get_weights())
    assert model.predict(X).dtype == np.float32
    assert history.history["accuracy"][-1] > 0.95
    assert history.history["loss"][-1] < history.history["loss"][0] / 3


def test_same_seed_gives_identical_weights_and_history(rng):
    X, y = toy_data(rng)

    def run(seed):
        model = Sequential(
            [Dense(8, "relu", input_shape=(6,)), Dropout(0.2), Dense(3, "softmax")], seed=seed
        )
        model.compile(optimizer=Adam(), metrics=["accuracy"])
        history = model.fit(X, y, epochs=3, batch_size=16, validation_split=0.2, verbose=False)
        return model.get_flat_weights(), {k: v for k, v in history.history.items() if k != "time"}

    (w1, h1), (w2, h2), (w3, _) = run(5), run(5), run(6)
    assert np.array_equal(w1, w2) and h1 == h2
    assert not np.array_equal(w1, w3)


def test_summary_counts_the_tutorial_parameters():
    model = tutorial_model()
    text = model.summary(print_fn=lambda text: None)
    assert model.count_params() == 13_002 == 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    assert "Total params: 13,002" in text and "(None, 784)" in text


def test_predict_and_fit_name_the_expected_shape():
    model = tutorial_model()
    with pytest.raises(NNError, match=r"expects x of shape \(N, 28, 28\); got \(3, 784\).*reshape"):
        model.predict(np.zeros((3, 784)))
    with pytest.raises(NNError, match=r"x has 4 samples but y has 3"):
        model.fit(np.zeros((4, 28, 28)), np.zeros(3), verbose=False)
    with pytest.raises(NNError, match=r"labels must be in 0\.\.9"):
        model.fit(np.zeros((2, 28, 28)), np.array([1, 10]), verbose=False)
    with pytest.raises(NNError, match="expects integer labels of shape"):
        model.fit(np.zeros((2, 28, 28)), np.zeros((2, 10)), verbose=False)
    with pytest.raises(NNError, match="epochs must be a positive whole number"):
        model.fit(np.zeros((2, 28, 28)), np.zeros(2), epochs=0, verbose=False)


def test_dense_after_unflattened_input_says_to_flatten():
    model = Sequential([Dense(4, input_shape=(28, 28))])
    with pytest.raises(NNError, match=r"layer 0 \(Dense\).*add Flatten\(\) before it"):
        model.build()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Dense(0), "positive number of units"),
        (lambda: Dense(4, activation="swish"), "valid activations: linear, relu, sigmoid"),
        (lambda: SGD(learning_rate=-1), "learning rate must be a finite number > 0"),
        (lambda: SGD(momentum=1.5), "momentum must be in"),
        (lambda: Sequential().compile(loss="hinge"), "valid losses: categorical_crossentropy"),
        (lambda: Sequential().compile(optimizer="rmsprop"), "valid optimizers: adam, sgd"),
        (lambda: Dropout(1.0), "rate must be in"),
    ],
)
def test_bad_configuration_is_named(make, message):
    with pytest.raises(NNError, match=message):
        make()


def test_nan_loss_stops_training_and_suggests_a_lower_learning_rate(rng):
    X, y = toy_data(rng)
    X *= 1e3
    model = Sequential([Dense(8, "relu", input_shape=(6,)), Dense(3, "softmax")], seed=0)
    model.compile(optimizer=SGD(learning_rate=1e6), loss="sparse_categorical_crossentropy")
    with pytest.raises(TrainingDiverged, match=r"Try a lower learning rate \(now 1e\+06"):
        model.fit(X, y, epochs=3, verbose=False)
    assert np.isfinite(model.get_flat_weights()).all()


def test_ctrl_c_stops_cleanly_and_keeps_the_weights(rng):
    X, y = toy_data(rng)

    class PressCtrlC(Callback):
        def on_batch_end(self, step, logs=None):
            if step == 5:
                raise KeyboardInterrupt

    model = Sequential([Dense(8, "relu", input_shape=(6,)), Dense(3, "softmax")], seed=0)
    model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy")
    model.build()
    initial = model.get_flat_weights()
    history = model.fit(X, y, epochs=2, batch_size=8, callbacks=[PressCtrlC()], verbose=False)
    assert history.interrupted and history.epoch == []
    weights = model.get_flat_weights()
    assert np.isfinite(weights).all() and not np.array_equal(weights, initial)
    assert model.predict(X).shape == (len(X), 3)


def test_a_callback_can_stop_training_after_any_step(rng):
    """``model.stop_training = True`` in ``on_batch_end`` ends training after that step, as in
    Keras; the epoch's loss is that of the steps it took (the web page's Stop button)."""
    X, y = toy_data(rng)

    class StopAtSix(Callback):
        def on_batch_end(self, step, logs=None):
            if step == 5:
                self.model.stop_training = True

    model = Sequential([Dense(8, "relu", input_shape=(6,)), Dense(3, "softmax")], seed=0)
    model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(X, y, epochs=3, batch_size=8, callbacks=[StopAtSix()], verbose=False)
    assert model.optimizer.iterations == 6 and history.epoch == [0]
    loss = history.history["loss"][0]
    assert np.isfinite(loss) and 0 < loss < 5


def test_early_stopping_restores_the_best_weights(rng):
    X, y = toy_data(rng)
    model = Sequential([Dense(8, "relu", input_shape=(6,)), Dense(3, "softmax")], seed=0)
    model.compile(optimizer=SGD(0.5), metrics=["accuracy"])

    class WorsenAfterTwo(Callback):  # makes val_loss climb from epoch 3 on
        def on_epoch_end(self, epoch, logs=None):
            if epoch >= 2:
                logs["val_loss"] = 10.0 + epoch

    stopper = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    saved = {}

    class Snapshot(Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved[epoch] = self.model.get_flat_weights()

    history = model.fit(
        X,
        y,
        epochs=10,
        validation_split=0.25,
        verbose=False,
        callbacks=[WorsenAfterTwo(), Snapshot(), stopper],
    )
    assert history.epoch == [0, 1, 2, 3] and stopper.stopped_epoch == 3
    assert np.array_equal(model.get_flat_weights(), saved[1])


def test_checkpoint_saves_each_improvement(tmp_path, rng):
    X, y = toy_data(rng)
    model = Sequential([Dense(8, "relu", input_shape=(6,)), Dense(3, "softmax")], seed=0)
    model.compile(optimizer=SGD(0.1), metrics=["accuracy"])
    checkpoint = ModelCheckpoint(
        str(tmp_path / "ckpt-{epoch:02d}.npz"), monitor="loss", save_best_only=True
    )
    model.fit(X, y, epochs=3, verbose=False, callbacks=[checkpoint])
    assert [p.rsplit("/", 1)[-1] for p in checkpoint.saved] == [
        "ckpt-01.npz",
        "ckpt-02.npz",
        "ckpt-03.npz",
    ]
    last = load_model(checkpoint.saved[-1])
    np.testing.assert_array_equal(last.predict(X), model.predict(X))


def test_progress_bar_one_line_per_epoch_off_a_terminal(capsys, rng):
    X, y = toy_data(rng, n=64)
    model = Sequential([Dense(3, "softmax", input_shape=(6,))], seed=0)
    model.compile(metrics=["accuracy"])
    model.fit(X, y, epochs=2, validation_split=0.25)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 1/2 - ") and "val_accuracy: " in lines[0]
    assert "us/step" in lines[0] or "ms/step" in lines[0]


def live_bar_output(rng) -> str:
    """What a live ProgressBar writes for one epoch of 8 steps, redrawn at every step."""
    import io

    from digitnet.nn import ProgressBar

    X, y = toy_data(rng, n=64)
    stream = io.StringIO()
    bar = ProgressBar(stream=stream, dynamic=True)
    bar.REFRESH_SECONDS = 0.0
    model = Sequential([Dense(3, "softmax", input_shape=(6,))], seed=0)
    model.compile(metrics=["accuracy"])
    model.fit(X, y, epochs=1, batch_size=8, callbacks=[bar], verbose=False)
    return stream.getvalue()


def test_progress_bar_draws_a_bar_with_eta_on_a_terminal(rng):
    text = live_bar_output(rng)
    assert "Epoch 1/1" in text and "ETA" in text and "\r8/8 [" in text and "loss: " in text


def test_the_live_bar_never_wraps_on_a_narrow_terminal(rng, monkeypatch):
    """'\r' returns to the start of the last row only: a wrapped bar leaves rows behind."""
    monkeypatch.setenv("COLUMNS", "60")
    redraws = [part.split("\x1b[K")[0] for part in live_bar_output(rng).split("\r")[1:-1]]
    assert len(redraws) == 8 and all(len(line) <= 59 for line in redraws)


def test_forward_layers_gives_every_layers_output(rng):
    model = tutorial_model()
    X = rng.random((3, 28, 28), dtype=np.float32)
    outputs = model.forward_layers(X)
    assert [o.shape for o in outputs] == [(3, 784), (3, 16), (3, 16), (3, 10)]
    assert (outputs[1] >= 0).all()  # ReLU activations
    np.testing.assert_allclose(outputs[-1], model.predict(X), rtol=1e-6)
