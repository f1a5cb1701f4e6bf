"""Recognising people's digits: images in, digits (or "no digit here") out.

``recognize(image)`` runs one image through ``digitnet.vision.prepare`` and the model;
``Recognizer.recognize_many`` does a whole batch with one forward pass. Confidence is the
model's probability for the digit after temperature scaling (``calibration``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from digitnet.nn.errors import NNError
from digitnet.nn.io import TEMPERATURES
from digitnet.reading.calibration import calibrate
from digitnet.reading.checker import PieceChecker, bundled_checker
from digitnet.vision import ImageError, prepare
from digitnet.vision.box import Box
from digitnet.vision.pieces import Piece
from digitnet.vision.preprocess import SEVERAL_DIGITS
from digitnet.zoo import bundled_model


@dataclass
class Prediction:
    """One image's verdict: ``digit`` 0-9 with ``confidence``, or None with ``reason``."""

    digit: int | None
    confidence: float | None = None
    probabilities: list[float] | None = None
    reason: str | None = None
    input: np.ndarray | None = field(default=None, repr=False)  # the 28x28 the network saw
    box: Box | None = None  # the digit in the image
    frame: tuple[float, float, float, float] | None = None  # the 28x28 field on the image
    note: str | None = None  # e.g. "several digits: digitnet read reads numbers"
    line: int = 0  # in a reading: which line of writing, from the top

    def top(self, k: int) -> list[dict[str, float]]:
        if self.probabilities is None:
            return []
        order = np.argsort(self.probabilities)[::-1][:k]
        return [{"digit": int(d), "probability": self.probabilities[d]} for d in order]

    def to_dict(self, top: int = 0) -> dict[str, Any]:
        """This verdict as every interface gives it — ``predict --json``, ``--resume`` files,
        ``recognize_many``, ``/api/predict``: the digit with its confidence and probabilities
        (or null and the reason), the note, the writing's box and the 28x28 field's frame on
        the image; with ``top``, the ``top`` most probable digits too."""
        out = {
            "digit": self.digit,
            "confidence": self.confidence,
            "probabilities": self.probabilities,
            "reason": self.reason,
            "note": self.note,
            "box": None if self.box is None else list(self.box),
            "frame": None if self.frame is None else [round(v, 2) for v in self.frame],
        }
        if top:
            out["top"] = self.top(top)
        return out


# A touching pair is one piece of writing, so ``prepare`` cannot see two columns in it. It is
# several digits when it is wider than JOINED_ASPECT times its height and the piece checker
# finds it not one whole digit (p < JOINED_WHOLE). Chosen on MNIST training digits 50k-60k:
# with the checker that knows marks, of 400 pairs written overlapping by two columns, 335 are
# wide enough to ask and all 335 get the note (333 at 0.1-0.2, 326 at 0.05), and 2 of the 436
# wide single digits of 10,000 (none at 0.2). Before it (p < 0.05): 302 of 400 pairs, 3 of
# 10,000 singles.
JOINED_ASPECT = 1.1
JOINED_WHOLE = 0.25


def mark_joined(predictions: Sequence[Prediction], checker: PieceChecker | None = None) -> None:
    """Give the "several digits" note to each prediction whose writing looks like digits
    written touching (see JOINED_ASPECT). Only wide ones go through the checker."""
    wide = [p for p in predictions if p.input is not None and p.note is None and p.box
            and p.box.width > JOINED_ASPECT * p.box.height]  # fmt: skip
    if not wide:
        return
    pieces = [Piece(p.input, p.box, 0, (p.box.middle, p.box.height)) for p in wide]
    for prediction, whole in zip(wide, (checker or bundled_checker()).whole(pieces), strict=True):
        if whole < JOINED_WHOLE:
            prediction.note = SEVERAL_DIGITS


def check_digit_model(model) -> None:
    """NNError unless ``model`` reads what people's images become — (28, 28) digits — into
    probabilities of the ten digits: a model of inputs (784,) loaded, then failed every
    request of a server; one of 1,000 classes answered "digit 221"; one ending in scores,
    not a softmax, gave negative confidences."""
    if not model.built:
        model.build()
    inputs, outputs = tuple(model.input_shape), tuple(model.output_shape)
    if inputs != (28, 28) or outputs != (10,):
        raise NNError(
            f"{model.name} takes inputs of shape {inputs} and gives {outputs[-1]:,} outputs;"
            " digitnet reads digits with models of 28x28 inputs and 10 outputs"
        )
    head = next((layer for layer in reversed(model.layers) if hasattr(layer, "activation")), None)
    if head is None or head.activation.name != "softmax":
        raise NNError(
            f"{model.name} ends in scores, not probabilities: end it with a softmax"
            ' (Dense(10, activation="softmax"), or Activation("softmax") after it)'
        )
    blank_and_full = np.stack([np.zeros((28, 28), np.float32), np.ones((28, 28), np.float32)])
    with np.errstate(all="ignore"):
        if not np.isfinite(model.predict(blank_and_full, verbose=0)).all():
            raise NNError(f"{model.name} gives NaN or infinite outputs: its weights are broken")


class Recognizer:
    """A model plus its calibration, ready for people's images."""

    def __init__(self, model, temperature: float | None = None):
        check_digit_model(model)
        self.model = model
        calibration = (model.metadata or {}).get("calibration") or {}
        self.temperature = float(temperature or calibration.get("temperature") or 1.0)
        low, high = TEMPERATURES
        if not low <= self.temperature <= high:  # 1e-300 gave NaN confidences
            raise NNError(f"a temperature must be in [{low}, {high}]; got {self.temperature!r}")

    def predict_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 10) for prepared inputs (N, 28, 28)."""
        return calibrate(self.model.predict(inputs, verbose=0), self.temperature)

    def recognize_many(
        self, images: Sequence[Any], batch: int | None = None, rows: Sequence[int] | None = None
    ) -> list[Prediction | ImageError]:
        """Each image's Prediction, or the ImageError that stopped it; one forward pass (with
        ``batch``: passes of exactly that many rows, see ``outputs``, image k in row
        ``rows[k]`` of them — by default k —, the rows no image takes left blank)."""
        if rows is not None and batch is None:
            raise ValueError("recognize_many: rows= places images in passes of batch= rows")
        results: list[Prediction | ImageError] = []
        for image in images:
            try:
                prepared = prepare(image)
            except ImageError as err:
                results.append(err)
                continue
            except Exception as err:  # a bug, but one image's: the others keep their answers
                results.append(ImageError(f"could not be read ({type(err).__name__}: {err})"))
                continue
            results.append(Prediction(None, reason=prepared.reason, input=prepared.image,
                                      box=prepared.box, frame=prepared.frame,
                                      note=prepared.note))  # fmt: skip
        placed = [(row, r) for row, r in zip(rows or range(len(results)), results, strict=True)
                  if isinstance(r, Prediction) and r.input is not None]  # fmt: skip
        if not placed:
            return results
        ready = [r for _, r in placed]
        if batch is None:
            self.judge(ready, self.outputs(np.stack([r.input for r in ready])))
            return results
        inputs = np.zeros((max(row for row, _ in placed) + 1, *ready[0].input.shape), np.float32)
        for row, r in placed:
            inputs[row] = r.input
        self.judge(ready, self.outputs(inputs, batch)[[row for row, _ in placed]])
        return results

    def outputs(self, inputs: np.ndarray, batch: int | None = None) -> np.ndarray:
        """The model's outputs (n, 10) for prepared inputs (n, 28, 28). With ``batch``, in
        passes of exactly ``batch`` rows, the last filled up with blank inputs: BLAS takes
        other paths for other row counts, and an image's last digits of probability would
        depend on how many others came with it (a run resumed halfway would differ). They
        depend on its row too (BLAS works in tiles of rows): 483 of 496 moves of an MNIST
        digit to another row of a pass of 32 changed them."""
        if batch is None:
            return self.model.predict(inputs, verbose=0)
        n = len(inputs)
        padded = np.zeros((-(-n // batch) * batch, *inputs.shape[1:]), inputs.dtype)
        padded[:n] = inputs
        return self.model.predict(padded, batch_size=batch, verbose=0)[:n]

    def judge(self, predictions: Sequence[Prediction], outputs: np.ndarray) -> None:
        """``decide`` for whole images (not the pieces of a reading), and the note for those
        that look like digits written touching (``mark_joined``)."""
        self.decide(predictions, outputs)
        mark_joined(predictions)

    def decide(self, predictions: Sequence[Prediction], outputs: np.ndarray) -> None:
        """Fill in each prediction's verdict from the model's ``outputs`` (n, 10) for their
        inputs: the calibrated probabilities (one calibration for the batch), the most
        probable digit and its confidence."""
        for prediction, p in zip(predictions, calibrate(outputs, self.temperature), strict=True):
            prediction.digit = int(p.argmax())
            prediction.confidence = float(p.max())
            prediction.probabilities = [float(v) for v in p]

    def recognize(self, image: Any) -> Prediction:
        """One image's Prediction; raises ImageError for an unreadable image."""
        (result,) = self.recognize_many([image])
        if isinstance(result, ImageError):
            raise result
        return result


_default: Recognizer | None = None


def default_recognizer() -> Recognizer:
    global _default
    if _default is None:
        _default = Recognizer(bundled_model())
    return _default


def recognize(image: Any, model=None) -> Prediction:
    """The digit in ``image`` (a path, bytes, PIL image or array), with the best bundled model
    unless ``model`` is given."""
    recognizer = default_recognizer() if model is None else Recognizer(model)
    return recognizer.recognize(image)
