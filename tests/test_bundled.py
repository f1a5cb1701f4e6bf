"""The pretrained models shipped in the package: they load, score what the README says, and
record how they were made."""

import numpy as np
import pytest

from digitnet.data import fingerprint, to_float
from digitnet.zoo import BEST, bundled_model, resolve_model


@pytest.mark.parametrize("name, floor", [("cnn", 0.996), ("tutorial", 0.92)])
def test_bundled_model_scores_on_the_bundled_test_set(name, floor, mnist):
    model = bundled_model(name)
    (x_train, y_train), (x_test, y_test) = mnist
    accuracy = float(np.mean(model.predict(to_float(x_test)).argmax(axis=1) == y_test))
    assert accuracy >= floor
    meta = model.metadata
    assert meta["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert meta["command"].startswith(f"digitnet train --model {name} --seed 0")
    assert meta["data"]["checksum"] == fingerprint(x_train, y_train, x_test, y_test)
    assert meta["training_seconds"] > 0 and not meta["interrupted"]
    calibration = meta["calibration"]
    assert 0.5 < calibration["temperature"] < 10
    assert calibration["ece_after"] < calibration["ece_before"]


def test_the_best_model_is_the_default():
    assert BEST == "cnn"
    assert resolve_model(None).name == bundled_model("cnn").name
    assert resolve_model("tutorial").count_params() == 13_002
