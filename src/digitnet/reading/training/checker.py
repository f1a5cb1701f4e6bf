"""Training the piece checker (``reading.checker``) on the pieces that the reader's own
segmentation cuts from pages written with MNIST training digits (``training.pieces``): a piece
is one whole digit when at least PURE of its ink is one digit's and it holds at least COMPLETE
of that digit.

    python -m digitnet.reading.training.checker --out src/digitnet/models/reading/checker.npz
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

import numpy as np

from digitnet.marks import KINDS
from digitnet.nn import Sequential
from digitnet.reading.checker import CLASSES, FIRST_MARK, NEITHER, SHAPE, WHOLE, features
from digitnet.reading.training.networks import (
    fit_held_out,
    hands_said,
    small_cnn,
    starting_model,
)
from digitnet.reading.training.pieces import (
    TRAINING_DIGITS,
    Labelled,
    command,
    cut_pages,
    held_whole,
    owned,
    write,
)

PAGES_PER_CHUNK = 250  # pages are written in chunks, each with its own seed: any worker count


MARKED = 0.5  # the share of numbers written with marks (``writing.with_marks``)


def labelled_pieces(pages: int, seed: int, **hands: float) -> Labelled:
    """Features (n, 30, 28) and labels (n,) of every piece that ``segment`` cuts from
    ``pages`` pages written with MNIST training digits in ``hands`` (``write_page``'s
    ``flagged_ones``, ``joined``, ``flat_zeros``), MARKED of the numbers with marks: 1
    for one whole digit, 2 + k for one whole mark of kind ``marks.KINDS[k]``, 0 for neither."""
    inputs, labels = [], []
    for page, candidates, total in cut_pages(pages, seed, marks=MARKED, **hands):
        pieces = [c.piece for c in candidates if c.single or c.mark]
        if not pieces:
            continue
        digits, marks = len(page.digits), len(page.marks)
        for p in pieces:
            labels.append(piece_class(held_whole(owned(page.owner, p, digits, marks), total),
                                      page))  # fmt: skip
        inputs.append(features(pieces))
    return np.concatenate(inputs), np.array(labels, np.int64)


def piece_class(held: tuple[int, float] | None, page) -> int:
    """The checker's class of a piece that holds ``held`` whole (``held_whole``) on ``page``."""
    if held is None:
        return NEITHER
    k = held[0] - len(page.digits)
    return WHOLE if k < 0 else FIRST_MARK + KINDS.index(page.marks[k].kind)


def build(seed: int) -> Sequential:
    """(N, 30, 28) -> conv 32 -> pool -> conv 64 -> pool -> dense 128 -> CLASSES (neither,
    whole digit, each kind of mark). Spatial sizes 30x28 -> 28x26 -> 14x13 -> 12x11 -> 6x5;
    the dense layer sees 6 * 5 * 64 = 1,920 features. About 265,000 parameters."""
    return small_cnn(SHAPE, (32, 64), 2, CLASSES, f"piece-checker-conv-32-64-128-{CLASSES}", seed)


def train(pages: int, epochs: int, seed: int, workers: int, verbose: int = 1,
          start_from: str | None = None, **hands: float) -> Sequential:  # fmt: skip
    """A checker trained on the pieces of ``pages`` written pages (see the module's notes);
    a tenth of them held out to report accuracy."""
    start = time.perf_counter()
    model = starting_model(build, seed, start_from)  # a file that does not load fails first
    data = write(partial(labelled_pieces, **hands), pages, PAGES_PER_CHUNK, seed, workers)
    accuracy = fit_held_out(model, data, epochs, verbose)
    model.metadata.update({
        "trained_on": f"pieces of {data.pages} pages written with MNIST "
                      f"training digits 0-{TRAINING_DIGITS - 1} (digitnet.writing)"
                      f"{hands_said(**hands)}",
        "pieces": len(data.y),
        "whole_share": float(np.mean(data.y == WHOLE)),
        "mark_share": float(np.mean(data.y >= FIRST_MARK)),
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
