"""Scoring a trained model on the MNIST test set, and presenting the scores."""

from __future__ import annotations

from typing import Any

import numpy as np

from digitnet.data import fingerprint, load_mnist, to_float
from digitnet.data.mnist import describe_source
from digitnet.nn.losses import SparseCategoricalCrossentropy
from digitnet.nn.metrics import confusion_matrix, per_class_scores
from digitnet.reading.recognizer import Recognizer
from digitnet.vision import ImageError


def evaluate_model(model, data: str | None = None) -> dict[str, Any]:
    """Accuracy, loss, per-class precision/recall/F1 and the confusion matrix on the test split
    of ``data`` (default: the bundled MNIST)."""
    _, (x_test, y_test) = load_mnist(data)
    probabilities = model.predict(to_float(x_test), verbose=0)  # (N, 10)
    predicted = probabilities.argmax(axis=1)
    cm = confusion_matrix(y_test, predicted, probabilities.shape[1])
    return {
        "accuracy": float(np.mean(predicted == y_test)),
        "loss": SparseCategoricalCrossentropy()(y_test.astype(np.intp), probabilities),
        "samples": len(y_test),
        "data": describe_source(data),
        "data_checksum": fingerprint(x_test, y_test),
        "per_class": per_class_scores(cm),
        "confusion_matrix": cm.tolist(),
    }


def evaluate_files(model, paths, labels) -> dict[str, Any]:
    """Accuracy on image files through the image pipeline, as ``digitnet predict`` sees them
    (``Recognizer.recognize_many``); an image rejected as "no digit" counts as wrong, an
    unreadable one raises its ImageError."""
    results = Recognizer(model).recognize_many(paths)
    for result in results:
        if isinstance(result, ImageError):
            raise result
    digits = [-1 if r.digit is None else r.digit for r in results]
    return {
        "accuracy": float(np.mean(np.array(digits) == np.asarray(labels))),
        "rejected": sum(r.digit is None for r in results),
        "count": len(paths),
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"Model: {report['model']}",
        f"Test set: {report['samples']} digits ({report['data']})",
        f"Accuracy: {report['accuracy']:.4f}    Loss: {report['loss']:.4f}",
        "",
        "class  precision  recall     f1  support",
    ]
    for row in report["per_class"]:
        lines.append(
            f"{row['class']:>5}  {row['precision']:>9.4f}  {row['recall']:>6.4f}"
            f"  {row['f1']:>5.4f}  {row['support']:>7}"
        )
    cm = report["confusion_matrix"]
    width = max(len(str(v)) for row in cm for v in row) + 1
    lines += ["", "Confusion matrix (rows: true digit, columns: predicted digit)"]
    lines.append("    " + "".join(f"{c:>{width}}" for c in range(len(cm))))
    lines += [f"{r:>3} " + "".join(f"{v:>{width}}" for v in row) for r, row in enumerate(cm)]
    return "\n".join(lines)


def format_metadata(model) -> str:
    meta = model.metadata or {}
    lines = []
    converted = meta.get("converted_from") or {}
    if converted:
        lines.append(f"Converted from: {converted.get('file')} ({converted.get('format')})")
    if meta.get("command"):
        lines.append(f"{'Converted' if converted else 'Trained'} with: {meta['command']}")
    test = meta.get("test") or {}
    if test.get("accuracy") is not None:
        loss = f" (loss {test['loss']:.4f})" if test.get("loss") is not None else ""
        lines.append(f"Test accuracy: {test['accuracy']:.4f}{loss}")
    if meta.get("training_seconds") is not None:
        writing = meta.get("writing_seconds")
        lines.append(
            f"Training time: {meta['training_seconds']:.2f} s"
            f" for {meta.get('epochs_completed', '?')}"
            + (" epoch" if meta.get("epochs_completed") == 1 else " epochs")
            + (" (interrupted)" if meta.get("interrupted") else "")
            + (f", after {writing:.2f} s writing digits on paper" if writing else "")
        )
    if meta.get("data"):
        data = meta["data"]
        written = data.get("written_on_paper")
        also = f" (+ {written:,} of its training digits written on paper)" if written else ""
        said = [data.get("source", "unrecorded data") + also, data.get("checksum")]
        lines.append("Data: " + ", ".join(part for part in said if part))
    calibration = meta.get("calibration") or {}
    if calibration.get("temperature"):
        lines.append(
            f"Confidence: temperature {calibration['temperature']:.2f}, fitted on"
            f" {calibration.get('fitted_on', 'unrecorded digits')}"
        )
    versions = getattr(model, "versions", {})
    if versions:
        lines.append("Saved by: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return "\n".join(lines)
