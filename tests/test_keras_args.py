"""Keras parity of the calls people copy: every argument Keras takes is taken with Keras'
meaning, or refused with one line naming it — never a TypeError."""

import inspect

import numpy as np
import pytest

from digitnet.nn import Dense, NNError, Sequential, load_model

# The arguments of Keras 3's Sequential and its methods (keras.Sequential, keras.Model).
KERAS = {
    "__init__": ["layers", "trainable", "name"],
    "compile": ["optimizer", "loss", "loss_weights", "metrics", "weighted_metrics",
                "run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss"],
    "fit": ["x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split",
            "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
            "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq"],
    "evaluate": ["x", "y", "batch_size", "verbose", "sample_weight", "steps", "callbacks",
                 "return_dict"],
    "predict": ["x", "batch_size", "verbose", "steps", "callbacks"],
    "summary": ["line_length", "positions", "print_fn", "expand_nested", "show_trainable",
                "layer_range"],
    "save": ["filepath", "overwrite", "zipped"],
}  # fmt: skip
POSITIONAL = ("fit", "evaluate", "predict", "summary", "save")  # same order as Keras'


@pytest.mark.parametrize("method", sorted(KERAS))
def test_every_keras_argument_is_taken(method):
    names = list(inspect.signature(getattr(Sequential, method)).parameters)[1:]  # not self
    assert set(KERAS[method]) <= set(names)
    if method in POSITIONAL:  # model.fit(x, y, 32, 5) means what it means in Keras
        assert names[: len(KERAS[method])] == KERAS[method]


def small_model():
    model = Sequential([Dense(8, "relu", input_shape=(6,)), Dense(3, "softmax")], seed=0)
    model.compile(optimizer="adam", metrics=["accuracy"])
    return model


@pytest.fixture
def data(rng):
    return rng.normal(size=(64, 6)).astype(np.float32), rng.integers(0, 3, 64)


def test_evaluate_and_predict_print_one_line_unless_verbose_0(data, capsys):
    x, y = data
    model = small_model()
    loss, accuracy = model.evaluate(x, y)  # Keras' default: verbose="auto", a line
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("1/1 - ") and f"loss: {loss:.4f}" in line
    assert f"accuracy: {accuracy:.4f}" in line
    assert model.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss", "accuracy"}
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""
    model.predict(x, batch_size=16, verbose=2)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("4/4 - ") and "/step" in line


def test_fit_takes_keras_arguments_in_keras_order(data, capsys):
    x, y = data
    model = small_model()
    history = model.fit(x, y, 16, 3, 0)  # batch_size, epochs, verbose
    assert model.fit_params["batch_size"] == 16 and history.epoch == [0, 1, 2]
    assert capsys.readouterr().out == ""
    history = model.fit(x, y, epochs=4, initial_epoch=2, verbose=2)
    assert history.epoch == [2, 3] and model.fit_params["batch_size"] == 32
    lines = capsys.readouterr().out.splitlines()
    assert [line[:10] for line in lines] == ["Epoch 3/4 ", "Epoch 4/4 "]
    history = model.fit(x, y, epochs=4, validation_data=(x, y), validation_freq=2, verbose=0,
                        validation_batch_size=8)  # fmt: skip
    assert len(history.history["loss"]) == 4 and len(history.history["val_loss"]) == 2


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda m, x, y: m.fit(x, y, sample_weight=np.ones(len(y)), verbose=0), "sample_weight"),
        (lambda m, x, y: m.fit(x, y, class_weight={0: 2.0}, verbose=0), "class_weight"),
        (lambda m, x, y: m.fit(x, y, steps_per_epoch=2, verbose=0), "steps_per_epoch"),
        (lambda m, x, y: m.evaluate(x, y, steps=1, verbose=0), "steps"),
        (lambda m, x, y: m.predict(x, callbacks=[object()], verbose=0), "callbacks"),
        (lambda m, x, y: m.compile(jit_compile=True), "jit_compile"),
        (lambda m, x, y: m.compile(loss_weights=[1.0]), "loss_weights"),
        (lambda m, x, y: m.summary(line_length=80), "line_length"),
        (lambda m, x, y: m.save("never.npz", zipped=False), "zipped"),
        (lambda m, x, y: (m.build(), m.save("never.keras")), "never.keras: digitnet writes its"),
        (lambda m, x, y: Sequential(trainable=False), "trainable"),
        (lambda m, x, y: m.evaluate(x, y, verbose="loud"), "verbose"),
    ],
)
def test_what_digitnet_does_not_do_is_refused_by_name(data, call, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NNError, match=rf"\({name}=.*\)" if " " not in name else name):
        call(small_model(), *data)
    assert not list(tmp_path.iterdir())


def test_keras_defaults_and_no_op_values_are_taken(data, capsys):
    x, y = data
    model = small_model()
    model.compile(optimizer="adam", run_eagerly=True, jit_compile=False, steps_per_execution=1)
    model.evaluate(x, y, callbacks=[], verbose=False)
    text = model.summary()  # print_fn None: printed, as Keras does
    assert text in capsys.readouterr().out
    assert Sequential(name=None).name == "sequential"


def test_load_model_takes_keras_arguments(data, tmp_path):
    """keras.saving.load_model(filepath, custom_objects=None, compile=True, safe_mode=True)."""
    names = list(inspect.signature(load_model).parameters)
    assert names[:4] == ["filepath", "custom_objects", "compile", "safe_mode"]
    x, y = data
    model = small_model()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "model.npz")
    assert load_model(filepath=tmp_path / "model.npz").compiled
    bare = load_model(tmp_path / "model.npz", compile=False, safe_mode=False)
    assert not bare.compiled  # the weights without the loss and optimiser
    np.testing.assert_array_equal(bare.predict(x, verbose=0), model.predict(x, verbose=0))
    assert load_model(tmp_path / "model.npz", custom_objects={}).compiled  # nothing custom
    with pytest.raises(NNError, match=r"load_model\(custom_objects=\.\.\.\) is not supported"):
        load_model(tmp_path / "model.npz", custom_objects={"MyLayer": object})
