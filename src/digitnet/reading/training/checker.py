"""Training the piece checker (``reading.checker``) on the pieces that the reader's own
segmentation cuts from pages written with MNIST training digits (``training.pieces``): a piece
is one whole digit when at least PURE of its ink is one digit's and it holds at least COMPLETE
of that digit.

    python -m digitnet.reading.training.checker --out src/digitnet/models/reading/checker.npz
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from digitnet.nn import Sequential
from digitnet.reading.checker import SHAPE, features
from digitnet.reading.training.networks import fit_held_out, small_cnn
from digitnet.reading.training.pieces import (
    TRAINING_DIGITS,
    Labelled,
    command,
    cut_pages,
    owned,
    whole_digit,
    write,
)

PAGES_PER_CHUNK = 250  # pages are written in chunks, each with its own seed: any worker count


def labelled_pieces(pages: int, seed: int) -> Labelled:
    """Features (n, 30, 28) and labels (n,) (1: one whole digit) of every piece that
    ``segment`` cuts from ``pages`` pages written with MNIST training digits."""
    inputs, labels = [], []
    for page, candidates, total in cut_pages(pages, seed):
        pieces = [c.piece for c in candidates if c.single]
        if not pieces:
            continue
        for p in pieces:
            counts = owned(page.owner, p, len(page.digits))
            labels.append(int(whole_digit(counts, total) is not None))
        inputs.append(features(pieces))
    return np.concatenate(inputs), np.array(labels, np.int64)


def build(seed: int) -> Sequential:
    """(N, 30, 28) -> conv 32 -> pool -> conv 64 -> pool -> dense 128 -> 2 (not whole, whole).
    Spatial sizes 30x28 -> 28x26 -> 14x13 -> 12x11 -> 6x5; the dense layer sees 6 * 5 * 64 =
    1,920 features. About 265,000 parameters."""
    return small_cnn(SHAPE, (32, 64), 2, 2, "piece-checker-conv-32-64-128-2", seed)


def train(pages: int, epochs: int, seed: int, workers: int, verbose: int = 1) -> Sequential:
    """A checker trained on the pieces of ``pages`` written pages (see the module's notes);
    a tenth of them held out to report accuracy."""
    start = time.perf_counter()
    data = write(labelled_pieces, pages, PAGES_PER_CHUNK, seed, workers)
    model = build(seed)
    accuracy = fit_held_out(model, data, epochs, verbose)
    model.metadata.update({
        "trained_on": f"pieces of {data.pages} pages written with MNIST "
                      f"training digits 0-{TRAINING_DIGITS - 1} (digitnet.writing)",
        "pieces": len(data.y),
        "whole_share": float(data.y.mean()),
        "held_out_accuracy": accuracy,
        "seconds": {"writing_pages": data.seconds, "total": time.perf_counter() - start},
    })  # fmt: skip
    return model


def report(meta: dict) -> str:
    return f"held-out accuracy {meta['held_out_accuracy']:.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    return command(argv, "piece checker", train, pages=24000, epochs=8, report=report)


if __name__ == "__main__":
    raise SystemExit(main())
