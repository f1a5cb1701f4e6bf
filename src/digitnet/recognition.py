"""Recognising people's digits: images in, digits (or "no digit here") out.

``recognize(image)`` runs one image through ``digitnet.vision.prepare`` and the model;
``Recognizer.recognize_many`` does a whole batch with one forward pass. Confidence is the
model's probability for the digit after temperature scaling (Guo et al., 2017): when the model
file records a fitted temperature T, probabilities are softmax(log p / T), which keeps the ranking
and makes "0.9" mean "right about 9 times in 10" on the digits T was fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from digitnet.checker import PieceChecker, bundled_checker
from digitnet.nn.errors import NNError
from digitnet.nn.io import TEMPERATURES
from digitnet.pairs import NOT_A_PAIR, PairReader, bundled_pair_reader
from digitnet.vision import ImageError, prepare
from digitnet.vision.box import Box
from digitnet.vision.preprocess import SEVERAL_DIGITS
from digitnet.vision.segment import Candidate, Piece, Segmented, choose_reading, segment


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
        if self.digit is None:
            return {"digit": None, "reason": self.reason}
        out = {"digit": self.digit, "confidence": self.confidence,
               "probabilities": self.probabilities}  # fmt: skip
        if top:
            out["top"] = self.top(top)
        if self.note:
            out["note"] = self.note
        return out


def calibrate(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row-wise for probabilities (N, C); T = 1 changes nothing."""
    if temperature == 1:
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-12, 1)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the negative log-likelihood of ``labels`` under
    calibrate(probabilities, T), by golden-section search over log T in [-3, 3]."""
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        p = calibrate(probabilities.astype(np.float64), math.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[rows, labels], 1e-300, 1))))

    low, high = -3.0, 3.0
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


CALIBRATION_AUGMENT = dict(max_shift=2.5, max_rotation=15.0, min_scale=0.8, max_scale=1.15,
                           elastic_alpha=1.5, elastic_sigma=3.0)  # fmt: skip


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15):
    """How far confidence is from accuracy, averaged over confidence bins (weighted by count)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def fit_calibration(model, x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Fit the temperature on digits x (N, 28, 28) float in [0, 1], distorted by strong random
    shifts, rotations, scaling and elastic warps — a stand-in for people's handwriting, which
    is where confidence matters. Returns the record ``Recognizer`` reads from model metadata."""
    from digitnet.augment import Augment

    distorted = Augment(**CALIBRATION_AUGMENT)(x, np.random.default_rng(seed))
    probabilities = model.predict(distorted, verbose=0)
    T = fit_temperature(probabilities, y)
    return {
        "temperature": T,
        "fitted_on": f"{len(x)} MNIST training digits, randomly distorted",
        "distortions": CALIBRATION_AUGMENT,
        "seed": seed,
        "ece_before": expected_calibration_error(probabilities, y),
        "ece_after": expected_calibration_error(calibrate(probabilities, T), y),
    }


# A touching pair is one piece of writing, so ``prepare`` cannot see two columns in it. It is
# several digits when it is wider than JOINED_ASPECT times its height and the piece checker
# finds it not one whole digit (p < JOINED_WHOLE). Chosen on MNIST training digits 50k-60k:
# 7 of 10,000 single digits flagged, 4 in 5 touching pairs of them. Counted again when the
# checker's verdict became a mean over one-pixel moves (``checker.SHIFTS``), before -> after:
# those 10,000 digits 4 -> 3 given the note, 400 pairs of them overlapping by two columns 304
# -> 300; MNIST test 5 -> 4 and 282 -> 276; USPS 0 and Semeion 1 either way. Kept at 0.05.
# Moved left and right only (session 23), side by side: development 3 and 300 -> 302, MNIST
# test 5 and 276 -> 278, USPS 0 and Semeion 1 (16x16 images) either way.
JOINED_ASPECT = 1.1
JOINED_WHOLE = 0.05


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
        from digitnet.zoo import bundled_model

        _default = Recognizer(bundled_model())
    return _default


def recognize(image: Any, model=None) -> Prediction:
    """The digit in ``image`` (a path, bytes, PIL image or array), with the best bundled model
    unless ``model`` is given."""
    recognizer = default_recognizer() if model is None else Recognizer(model)
    return recognizer.recognize(image)


@dataclass
class Reading:
    """A written number: its ``text`` (lines of writing joined by "\\n") and each digit's
    Prediction (with its box and line)."""

    text: str
    digits: list[Prediction]
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "digits": [
                {"digit": d.digit, "confidence": d.confidence, "box": list(d.box), "line": d.line}
                for d in self.digits
            ],
        }
        if self.reason:
            out["reason"] = self.reason
        return out


# How a reading is scored: each digit adds log p(digit) + CHECKER_WEIGHT * log p(whole) +
# DIGIT_BONUS (p(whole): the piece checker's belief that the piece is one whole digit); a
# piece read as two digits written touching adds log p(pair) + PAIR_BONUS (p(pair): the
# pair reader's); each slice left out as not writing adds SKIP + CHECKER_WEIGHT *
# log (1 - p(whole)) of the slice alone. Chosen on pages written with MNIST training digits
# 50,000-59,999 (development), never on the benchmark's evaluation digits. A pair earned two
# digits' bonus until the checker became convolutional; since, one piece's bonus reads more
# pages right (two sets of 1,000: 0.941 -> 0.945, 0.944 -> 0.946; a grid over all four
# constants found nothing better beyond noise).
CHECKER_WEIGHT = 0.5
DIGIT_BONUS = 0.5
PAIR_BONUS = 0.5
SKIP = -2.0
NOTHING_WRITTEN = "no digit: nothing digit-shaped"


def read_with(recognizer: Recognizer, image: Any, checker: PieceChecker | None = None) -> Reading:
    """Read a number: cut it into candidate pieces (``segment``), then ``read_segments``."""
    return read_segments(recognizer, segment(image), checker)


def read_segments(
    recognizer: Recognizer,
    segmented: Segmented,
    checker: PieceChecker | None = None,
    pair_reader: PairReader | None = None,
) -> Reading:
    """Read a number already cut into candidate pieces: the ``Lattice`` of its readings, and
    the best path through it."""
    lattice = Lattice.of(recognizer, segmented, checker, pair_reader)
    if lattice is None:  # no writing, or none that may be a digit alone
        return Reading("", [], segmented[2] or NOTHING_WRITTEN)
    return lattice.reading()


@dataclass
class Lattice:
    """Every way to read a number cut into ``parts`` slices: each candidate — the single
    digits, then the pairs — with its score and the digits it reads as (one, or two for a
    pair), and the score of leaving each slice out as not writing (see CHECKER_WEIGHT)."""

    parts: int
    candidates: list[Candidate]
    scores: list[float]
    readings: list[list[Prediction]]
    skips: list[float]

    @classmethod
    def of(
        cls,
        recognizer: Recognizer,
        segmented: Segmented,
        checker: PieceChecker | None = None,
        pair_reader: PairReader | None = None,
    ) -> Lattice | None:
        """Every single-digit candidate recognised and checked, one forward pass each, and the
        pieces that may be two digits written touching read as pairs too; None when nothing
        was cut."""
        parts, everything, _ = segmented
        singles = [c for c in everything if c.single]  # read as one digit each
        if not singles:
            return None
        pieces = [c.piece for c in singles]
        predictions = [Prediction(None, input=p.image, box=p.box, line=p.line) for p in pieces]
        inputs = np.stack([p.image for p in pieces])  # (n, 28, 28)
        recognizer.decide(predictions, recognizer.model.predict(inputs, verbose=0))
        whole = np.clip((checker or bundled_checker()).whole(pieces), 1e-6, 1 - 1e-6)  # (n,)
        scores = [math.log(max(d.confidence, 1e-12)) + CHECKER_WEIGHT * math.log(w) + DIGIT_BONUS
                  for d, w in zip(predictions, whole, strict=True)]  # fmt: skip
        readings = [[d] for d in predictions]
        skips = [SKIP] * parts
        for c, w in zip(singles, whole, strict=True):
            if c.first == c.last:
                skips[c.first] = SKIP + CHECKER_WEIGHT * math.log(1 - w)
        pairs = [c for c in everything if c.piece.pair is not None]
        read = (pair_reader or bundled_pair_reader()).read([c.piece for c in pairs])  # (m, 101)
        for c, p in zip(pairs, read, strict=True):  # each a second reading of its candidate
            readings.append(pair_predictions(c.piece, p))
            scores.append(math.log(max(float(p[:NOT_A_PAIR].max()), 1e-12)) + PAIR_BONUS)
        return cls(parts, singles + pairs, scores, readings, skips)

    def best(self) -> list[int]:
        """The candidates (indices) of the best path: see ``choose_reading``."""
        return choose_reading(self.parts, self.candidates, self.scores, self.skips)

    def reading(self) -> Reading:
        """The number the best path reads: its digits, a line break between lines."""
        digits = [d for i in self.best() for d in self.readings[i]]
        if not digits:
            return Reading("", [], NOTHING_WRITTEN)
        breaks = ["\n" if d.line != before.line else ""
                  for before, d in zip(digits[:1] + digits[:-1], digits, strict=True)]  # fmt: skip
        text = "".join(b + str(d.digit) for b, d in zip(breaks, digits, strict=True))
        return Reading(text, digits)


def pair_predictions(piece: Piece, p: np.ndarray) -> list[Prediction]:
    """The two digits of a piece read as the pair ``p`` (101,): each digit's probabilities are
    the pair probabilities summed over the other digit; the box is split at the column of
    least ink in the middle half of the piece."""
    pairs = p[:NOT_A_PAIR].reshape(10, 10)  # (first digit, second digit)
    pairs = pairs / max(float(pairs.sum()), 1e-12)
    first, second = np.unravel_index(int(pairs.argmax()), pairs.shape)
    x, y, width, height = piece.box
    ink = piece.mask.sum(axis=0)  # (width,): a pair is always a piece cut by segment
    split = width // 4 + int(np.argmin(ink[width // 4 : width - width // 4])) if width > 3 else 1
    halves = ((first, pairs.sum(axis=1), Box(x, y, split, height)),
              (second, pairs.sum(axis=0), Box(x + split, y, width - split, height)))  # fmt: skip
    return [Prediction(int(d), float(m[d]), [float(v) for v in m], box=box, line=piece.line)
            for d, m, box in halves]  # fmt: skip


def read_number(image: Any, model=None) -> Reading:
    """The number written in ``image``: its digits left to right, each with a box."""
    recognizer = default_recognizer() if model is None else Recognizer(model)
    return read_with(recognizer, image)
