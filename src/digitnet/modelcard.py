"""A trained model described for people: what it is, how it learned, how it scores on the
MNIST test set, and which test digits it gets wrong. The web app's model page and
``digitnet report`` both show this; it is plain data (lists, numbers, arrays)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from digitnet import insight
from digitnet.data import load_mnist, to_float
from digitnet.nn.metrics import confusion_matrix
from digitnet.recognition import Recognizer


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
    """Score ``model`` on the test split of ``data`` (default: the bundled MNIST)."""
    _, (x_test, y_test) = load_mnist(data)
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
