"""Classification metrics: accuracy, the confusion matrix, per-class precision/recall/F1."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """Counts (C, C): row = true class, column = predicted class. y_true, y_pred are (N,) ints."""
    cm = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.intp), np.asarray(y_pred, np.intp)), 1)
    return cm


def per_class_scores(cm: np.ndarray) -> list[dict[str, float]]:
    """Precision, recall, F1 and support of each class from a confusion matrix (C, C).

    A score whose denominator is zero (a class never predicted, or never present) is 0.
    """
    true_pos = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)  # (C,) column sums
    support = cm.sum(axis=1)  # (C,) row sums
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = np.where(support > 0, true_pos / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return [
        {
            "class": c,
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "support": int(support[c]),
        }
        for c in range(len(cm))
    ]
