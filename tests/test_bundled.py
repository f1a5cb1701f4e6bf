"""The pretrained models shipped in the package: they load, score what the README says, and
record how they were made."""

import numpy as np
import pytest

from digitnet.data import fingerprint, to_float
from digitnet.zoo import BEST, bundled_model, resolve_model


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tutorial", "cnn"])
def test_the_model_page_s_scorecard_is_stored_in_the_bundled_files_and_true(name, mnist):
    """The model page shows the stored scorecard at once; it must be what scoring gives."""
    from digitnet.modelcard import score, stored_scorecard
    from digitnet.zoo import bundled_model

    model = bundled_model(name)
    _, (x_test, y_test) = mnist
    stored = stored_scorecard(model, x_test, y_test, mistakes=40)
    fresh = score(model, x_test, y_test, mistakes=40)
    assert stored is not None
    assert stored.accuracy == fresh.accuracy and np.array_equal(stored.confusion, fresh.confusion)
    assert [m.index for m in stored.mistakes] == [m.index for m in fresh.mistakes]
    np.testing.assert_allclose([m.confidence for m in stored.mistakes],
                               [m.confidence for m in fresh.mistakes], atol=1e-5)  # fmt: skip
    np.testing.assert_array_equal(stored.mistake_images, fresh.mistake_images)
    model.metadata["calibration"]["temperature"] *= 1.5  # recalibrated since: scored anew
    assert stored_scorecard(model, x_test, y_test, mistakes=40) is None
