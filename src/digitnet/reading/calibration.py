"""Confidence that means what it says: temperature scaling (Guo et al., 2017).

A model file may record a fitted temperature T; the recogniser's probabilities are then
softmax(log p / T), which keeps the ranking and makes "0.9" mean "right about 9 times in 10"
on the digits T was fitted on: MNIST training digits strongly distorted (``fit_calibration``,
``digitnet calibrate``), a stand-in for people's handwriting, where confidence matters.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np

from digitnet.augment import Augment


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
