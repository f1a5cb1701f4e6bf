"""Learning for real: the tutorial's recipe on the bundled MNIST, as `digitnet train` runs it."""

import numpy as np
import pytest

from digitnet.data import to_float
from digitnet.training import TrainConfig, build_model, train


def test_default_config_is_the_tutorial_recipe():
    config = TrainConfig()
    model = build_model(config)
    assert [layer.get_config().get("units") for layer in model.layers] == [None, 16, 16, 10]
    activations = [layer.activation.name for layer in model.layers[1:]]
    assert activations == ["relu", "relu", "softmax"]
    assert model.optimizer.get_config() == {
        "name": "sgd",
        "learning_rate": 0.01,
        "momentum": 0.0,
        "nesterov": False,
        "weight_decay": 0.0,
    }
    assert model.loss.name == "sparse_categorical_crossentropy"
    preset = config.validate()
    assert (preset.batch_size, preset.epochs, preset.augment) == (32, 5, None)


@pytest.mark.slow
def test_tutorial_recipe_reaches_92_percent_on_mnist(mnist):
    model = train(TrainConfig(seed=0), verbose=False, data=mnist)
    (_, _), (x_test, y_test) = mnist
    accuracy = float(np.mean(model.predict(to_float(x_test)).argmax(axis=1) == y_test))
    assert accuracy >= 0.92
    assert model.metadata["test"]["accuracy"] == accuracy
    assert model.metadata["data"]["checksum"].startswith("sha256:")
    assert len(model.history.history["val_accuracy"]) == 5
    assert model.history.history["val_accuracy"][-1] == accuracy


def test_momentum_is_checked_in_one_place_and_every_front_end_says_so(capsys):
    """The range [0, 1) is the engine's (``optimizers.check_momentum``): the optimiser, the
    training settings, the command line and the web's training form give its words."""
    import re

    from digitnet.cli import main
    from digitnet.nn import SGD, NNError
    from digitnet.training import TrainConfig
    from digitnet.web.training_process import TrainSettings

    said = re.escape("momentum must be in [0, 1); got 1.5")
    for check in (lambda: SGD(momentum=1.5), lambda: TrainConfig(momentum=1.5).validate(),
                  lambda: TrainSettings(momentum=1.5).check()):  # fmt: skip
        with pytest.raises(NNError, match=said):
            check()
    with pytest.raises(SystemExit):
        main(["train", "--momentum", "1.5"])
    assert re.search(said, capsys.readouterr().err)


def test_training_on_digits_written_on_paper_too(mnist, capsys):
    """``written=N`` adds the first N training digits written on paper (``written_alone``),
    with their labels, to what the network learns from; the model file says so."""
    from digitnet.cli import main
    from digitnet.evaluation import format_metadata
    from digitnet.nn import NNError

    model = train(TrainConfig(samples=300, written=100, epochs=1), verbose=False, data=mnist)
    assert model.metadata["data"]["train_samples"] == 400
    assert model.metadata["data"]["written_on_paper"] == 100
    assert model.metadata["config"]["written"] == 100
    assert "(+ 100 of its training digits written on paper)" in format_metadata(model)
    assert model.history.history["accuracy"]  # it trained
    with pytest.raises(NNError, match="written must be 0 to the number of training digits"):
        TrainConfig(samples=300, written=301).validate()
    with pytest.raises(NNError, match=r"training digits \(60,000\); got 60,001"):  # known late
        train(TrainConfig(written=60_001, epochs=1), verbose=False, data=mnist)
    with pytest.raises(SystemExit):
        main(["train", "--written", "-1"])
    assert "argument --written: must be 0 or more; got -1" in capsys.readouterr().err


def test_after_the_last_epoch_the_test_set_is_not_run_again_for_the_same_figures(
    mnist, monkeypatch, capsys
):
    """After the last step the test set went through the network three times (the last
    validation, evaluate, the scorecard) with nothing said: the last validation is the test
    figure when every epoch ran to its end, and the scorecard's pass is announced."""
    from digitnet.nn import Sequential

    passes = []
    evaluate = Sequential.evaluate
    monkeypatch.setattr(
        Sequential, "evaluate", lambda *a, **k: passes.append(1) or evaluate(*a, **k)
    )
    model = train(TrainConfig(epochs=1, samples=2000), data=mnist)
    assert passes == []
    test, logs = model.metadata["test"], model.history.history
    assert (test["loss"], test["accuracy"]) == (logs["val_loss"][-1], logs["val_accuracy"][-1])
    x_test, y_test = mnist[1]
    again = evaluate(model, to_float(x_test), y_test, verbose=0)
    assert (test["loss"], test["accuracy"]) == pytest.approx(again)
    assert "Scoring the 10,000 test digits for the model page..." in capsys.readouterr().out
