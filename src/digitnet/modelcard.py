"""A trained model described for people: what it is, how it learned, how it scores on the
MNIST test set, and which test digits it gets wrong. The web app's model page and
``digitnet report`` both show this; it is plain data (lists, numbers, arrays)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from digitnet import insight
from digitnet.data import fingerprint, load_mnist, to_float
from digitnet.nn.metrics import confusion_matrix
from digitnet.reading.recognizer import Recognizer


def describe(model) -> dict[str, Any]:
    """Architecture, parameter count, training history and the training record."""
    meta = model.metadata or {}
    history = model.history.history if model.history is not None else {}
    calibration = meta.get("calibration") or {}
    return {
        "name": model.name,
        "parameters": model.count_params(),
        "layers": model.layer_table(),
        "history": {key: [float(v) for v in values] for key, values in history.items()},
        "command": meta.get("command"),
        "training_seconds": meta.get("training_seconds"),
        "test_accuracy": (meta.get("test") or {}).get("accuracy"),
        "temperature": calibration.get("temperature"),
    }


@dataclass
class Scorecard:
    """The model on the MNIST test set: accuracy, confusion matrix (rows: true digit, columns:
    predicted), and its most confident mistakes (calibrated confidence, as ``recognize`` gives)
    with their images (n, 28, 28) uint8."""

    accuracy: float
    samples: int
    confusion: np.ndarray
    mistakes: list[insight.Mistake]
    mistake_images: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "samples": self.samples,
            "confusion_matrix": self.confusion.tolist(),
            "mistakes": [asdict(m) for m in self.mistakes],
        }


def scorecard(model, mistakes: int = 24, data: str | None = None) -> Scorecard:
    """``model`` on the test split of ``data`` (default: the bundled MNIST): the scorecard its
    file records when that was made on the same test set (``record_scorecard``), else scored
    now (seconds for a CNN)."""
    _, (x_test, y_test) = load_mnist(data)
    return stored_scorecard(model, x_test, y_test, mistakes) or score(
        model, x_test, y_test, mistakes
    )


def score(model, x_test: np.ndarray, y_test: np.ndarray, mistakes: int = 24) -> Scorecard:
    """Score ``model`` on test digits x_test (N, 28, 28) uint8 with labels y_test (N,)."""
    # The confidence people see elsewhere: calibrated by the model file's temperature, if any.
    probabilities = Recognizer(model).predict_inputs(to_float(x_test))  # (N, 10)
    predicted = probabilities.argmax(axis=1)
    wrong = insight.mistakes(probabilities, y_test, mistakes)
    return Scorecard(
        accuracy=float(np.mean(predicted == y_test)),
        samples=len(y_test),
        confusion=confusion_matrix(y_test, predicted, probabilities.shape[1]),
        mistakes=wrong,
        mistake_images=x_test[[m.index for m in wrong]],
    )


RECORDED_MISTAKES = 40  # as many as ``digitnet report`` shows


def record_scorecard(model, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """Score ``model`` and keep the scorecard in its metadata (saved with it), marked with the
    test set's checksum and the temperature it was scored with, so the model page shows it at
    once instead of scoring 10,000 digits on its first visit."""
    card = score(model, x_test, y_test, RECORDED_MISTAKES)
    model.metadata["scorecard"] = {
        "test_checksum": fingerprint(x_test, y_test),
        "temperature": Recognizer(model).temperature,
        **card.to_dict(),
    }


def stored_scorecard(model, x_test, y_test, mistakes: int) -> Scorecard | None:
    """The scorecard recorded in the model's metadata, if it was made on this test set with
    the model's present temperature and holds enough mistakes; None otherwise (or when the
    record is malformed: it came from a file)."""
    record = (model.metadata or {}).get("scorecard")
    try:
        confusion = np.array(record["confusion_matrix"], dtype=np.int64)
        wrong_in_all = int(confusion.sum() - np.trace(confusion))
        if (record["test_checksum"] != fingerprint(x_test, y_test)
                or record["temperature"] != Recognizer(model).temperature
                or len(record["mistakes"]) < min(mistakes, wrong_in_all)):  # fmt: skip
            return None
        wrong = [
            insight.Mistake(
                int(m["index"]), int(m["label"]), int(m["predicted"]), float(m["confidence"])
            )
            for m in record["mistakes"][:mistakes]
        ]
        if confusion.shape != (10, 10) or not all(0 <= m.index < len(x_test) for m in wrong):
            return None
        return Scorecard(float(record["accuracy"]), int(record["samples"]), confusion, wrong,
                         x_test[[m.index for m in wrong]])  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None
