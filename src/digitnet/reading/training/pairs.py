"""Training the pair reader (``reading.pairs``) on the pieces that the reader's own segmentation
cuts from lines of 2-3 digits written close together with MNIST training digits: a pair when at
least PURE of its ink is two neighbouring digits' and it holds at least COMPLETE of each.

    python -m digitnet.reading.training.pairs --out src/digitnet/models/reading/pairs.npz
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial

import numpy as np

from digitnet.nn import Sequential
from digitnet.reading.pairs import NOT_A_PAIR
from digitnet.reading.training.networks import (
    fit_held_out,
    hands_said,
    small_cnn,
    starting_model,
)
from digitnet.reading.training.pieces import (
    COMPLETE,
    PURE,
    TRAINING_DIGITS,
    Labelled,
    command,
    cut_pages,
    owned,
    write,
)
from digitnet.vision.pieces import PAIR_SHAPE

CLOSE = (-0.33, 0.0)  # the training lines' gaps, of a digit's width
PAGES_PER_CHUNK = 500


def labelled_pairs(pages: int, seed: int, **hands: float) -> Labelled:
    """Pair images (n, 28, 56) and classes (n,) of every piece that ``segment`` reads as a
    possible pair on ``pages`` lines of close digits written with MNIST training digits in
    ``hands`` (``write_page``'s ``flagged_ones``, ``joined``, ``flat_zeros``)."""
    images, classes = [], []
    lines = cut_pages(pages, seed, gaps=CLOSE, count=(2, 3), **hands)
    for page, candidates, total in lines:
        for p in (c.piece for c in candidates):
            if p.pair is not None:
                images.append(p.pair)
                classes.append(pair_class(owned(page.owner, p, len(page.digits)), total, page))
    return np.stack(images), np.array(classes, np.int64)


def clean_pair(counts: np.ndarray, totals: np.ndarray, page) -> int | None:
    """The first of the two digits that the piece whose ink is ``counts`` (per digit) holds
    when it is two neighbours of one line side by side, whole and little else — at least PURE
    of its ink theirs and at least COMPLETE of each (``totals``: each digit's ink); None
    otherwise."""
    if len(counts) < 2:
        return None
    first, second = sorted(np.argsort(counts)[::-1][:2])
    a, b = page.digits[first], page.digits[second]
    both = counts[first] + counts[second]
    if (second != first + 1 or a.line != b.line or both < PURE * counts.sum()
            or counts[first] < COMPLETE * totals[first]
            or counts[second] < COMPLETE * totals[second]):  # fmt: skip
        return None
    return int(first)


def pair_class(counts: np.ndarray, totals: np.ndarray, page) -> int:
    """10a + b when the piece is the clean pair of digits a, b (``clean_pair``); NOT_A_PAIR
    otherwise."""
    first = clean_pair(counts, totals, page)
    if first is None:
        return NOT_A_PAIR
    return 10 * page.digits[first].label + page.digits[first + 1].label


def build(seed: int) -> Sequential:
    """(N, 28, 56) -> conv 32 -> pool -> conv 64 -> pool -> conv 64 -> dense 128 -> 101.
    Spatial sizes 28x56 -> 26x54 -> 13x27 -> 11x25 -> 5x12 -> 3x10; the dense layer sees
    3 * 10 * 64 = 1,920 features. About 314,000 parameters."""
    return small_cnn(PAIR_SHAPE, (32, 64, 64), 2, NOT_A_PAIR + 1, "pair-reader-32-64-64-128-101",
                     seed)  # fmt: skip


def train(pages: int, epochs: int, seed: int, workers: int, verbose: int = 1,
          start_from: str | None = None, **hands: float) -> Sequential:  # fmt: skip
    """A pair reader trained on the possible pairs of ``pages`` written lines (see the
    module's notes); a tenth of them held out to report accuracy."""
    start = time.perf_counter()
    model = starting_model(build, seed, start_from)  # a file that does not load fails first
    data = write(partial(labelled_pairs, **hands), pages, PAGES_PER_CHUNK, seed,
                 workers)  # fmt: skip
    x, y, cut = data.x, data.y, data.held_out
    if verbose:
        print(f"{len(y)} pieces ({np.mean(y < NOT_A_PAIR):.2f} pairs) in {data.seconds:.0f} s")
    accuracy = fit_held_out(model, data, epochs, verbose)
    pairs = y[cut:] < NOT_A_PAIR
    predicted = model.predict(x[cut:][pairs], verbose=0).argmax(axis=1)
    model.metadata.update({
        "trained_on": f"possible pairs of {data.pages} lines of close digits written with "
                      f"MNIST training digits 0-{TRAINING_DIGITS - 1}{hands_said(**hands)}",
        "pieces": len(y),
        "pair_share": float(np.mean(y < NOT_A_PAIR)),
        "held_out_accuracy": accuracy,
        "held_out_pairs_read_right": float(np.mean(predicted == y[cut:][pairs])),
        "seconds": {"writing_pages": data.seconds, "total": time.perf_counter() - start},
    })  # fmt: skip
    return model


def report(meta: dict) -> str:
    return (f"held-out accuracy {meta['held_out_accuracy']:.4f}, "
            f"pairs read right {meta['held_out_pairs_read_right']:.4f}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    return command(argv, "pair reader", train, pages=60_000, epochs=10, report=report)


if __name__ == "__main__":
    raise SystemExit(main())
