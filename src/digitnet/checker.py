"""The piece checker: is a piece cut from a written number one whole digit?

Reading a number cuts its ink into more pieces than it has digits (``vision.segment``) and
keeps the sequence of pieces whose digits are, together, most probable. The digit recogniser
alone cannot judge a piece: trained on whole digits, it reads half a 0 as a confident 1 and
two 1s written close as a confident 4. LeCun, Bottou, Bengio and Haffner (1998) train their
recogniser with a "none of the above" class on the wrong pieces of their segmentation graph;
here a second, small network makes that judgement, so the digit recogniser stays the one
``predict`` uses: a multilayer perceptron over the piece's 28x28 input and seven numbers that
place it in its line: its width, its height and its middle's offset from the line's middle
(each over the line's digit height), the gaps to the writing left and right of it, and whether
its edges were cut through connected writing (``Piece.context``). The context took development
pages from 0.927 to 0.933 exact (8,000 training pages), 24,000 pages to 0.937.

It is trained on pieces cut, by the reader's own segmentation, from pages of numbers written
with MNIST *training* digits 0-49,999 (``data.writing``), where the page says whose writing
every pixel is: a piece is one whole digit when at least PURE of its ink is one digit's and it
holds at least COMPLETE of that digit. The bundled weights were made by

    python -m digitnet.checker --out src/digitnet/models/reading/checker.npz
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digitnet.nn import Adam, Dense, Sequential, load_model
from digitnet.pieces import (
    COMPLETE,
    PURE,
    TRAINING_DIGITS,
    Labelled,
    command,
    cut_pages,
    owned,
    write,
)
from digitnet.vision.segment import Piece

BUNDLED = Path(__file__).with_name("models") / "reading" / "checker.npz"
GEOMETRY = 7  # width, height and middle's offset, over the line's digit height; context
PAGES_PER_CHUNK = 250  # pages are written in chunks, each with its own seed: any worker count


def features(pieces: Sequence[Piece]) -> np.ndarray:
    """The checker's input for each piece: (N, 784 + GEOMETRY) float32."""
    images = np.stack([p.image for p in pieces]).reshape(len(pieces), -1)  # (N, 784)
    geometry = np.array([place(p) for p in pieces], np.float32)  # (N, GEOMETRY)
    return np.concatenate([images, geometry], axis=1)


def place(piece: Piece) -> tuple[float, ...]:
    """The piece in its line: width, height, its middle's offset from the line's middle (all
    over the line's digit height), then ``Piece.context``: gaps to its neighbours and cuts."""
    _, y, width, height = piece.box
    middle, digit_height = piece.row
    digit_height = max(digit_height, 1.0)
    size = width / digit_height, height / digit_height, (y + height / 2 - middle) / digit_height
    return size + piece.context


class PieceChecker:
    """``whole(pieces)``: the probability that each piece is one whole digit, (N,)."""

    def __init__(self, model: Sequential):
        self.model = model

    def whole(self, pieces: Sequence[Piece]) -> np.ndarray:
        if not pieces:
            return np.zeros(0, np.float32)
        return self.model.predict(features(pieces), verbose=0)[:, 1]


@functools.cache
def bundled_checker() -> PieceChecker:
    """The bundled one, loaded once."""
    return PieceChecker(load_model(BUNDLED))


# ------------------------------------------------------------------------------- training


def labelled_pieces(pages: int, seed: int) -> Labelled:
    """Features (n, 784 + GEOMETRY) and labels (n,) (1: one whole digit) of every piece that
    ``segment`` cuts from ``pages`` pages written with MNIST training digits."""
    inputs, labels = [], []
    for page, candidates, total in cut_pages(pages, seed):
        pieces = [c.piece for c in candidates if c.single]
        if not pieces:
            continue
        for p in pieces:
            counts = owned(page.owner, p, len(page.digits))
            d = int(counts.argmax())
            pure = counts[d] / max(counts.sum(), 1)
            complete = counts[d] / max(total[d], 1)
            labels.append(int(pure >= PURE and complete >= COMPLETE))
        inputs.append(features(pieces))
    return np.concatenate(inputs), np.array(labels, np.int64)


def build(seed: int) -> Sequential:
    """(N, 787) -> Dense 256 relu -> Dense 128 relu -> Dense 2 softmax (not whole, whole)."""
    return Sequential(
        [
            Dense(256, activation="relu", input_shape=(784 + GEOMETRY,)),
            Dense(128, activation="relu"),
            Dense(2, activation="softmax"),
        ],
        seed=seed,
        name="piece-checker-787-256-128-2",
    )


def train(pages: int, epochs: int, seed: int, workers: int, verbose: int = 1) -> Sequential:
    """A checker trained on the pieces of ``pages`` written pages (see the module's notes);
    a tenth of them held out to report accuracy."""
    start = time.perf_counter()
    data = write(labelled_pieces, pages, PAGES_PER_CHUNK, seed, workers)
    x, y, cut = data.x, data.y, data.held_out
    model = build(seed)
    model.compile(optimizer=Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])  # fmt: skip
    model.fit(x[:cut], y[:cut], epochs=epochs, batch_size=128, verbose=bool(verbose),
              validation_data=(x[cut:], y[cut:]))  # fmt: skip
    _, accuracy = model.evaluate(x[cut:], y[cut:], verbose=0)
    model.metadata.update({
        "trained_on": f"pieces of {data.pages} pages written with MNIST "
                      f"training digits 0-{TRAINING_DIGITS - 1} (digitnet.data.writing)",
        "pieces": len(y),
        "whole_share": float(y.mean()),
        "held_out_accuracy": float(accuracy),
        "seconds": {"writing_pages": data.seconds, "total": time.perf_counter() - start},
    })  # fmt: skip
    return model


def report(meta: dict) -> str:
    return f"held-out accuracy {meta['held_out_accuracy']:.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    return command(argv, "piece checker", train, pages=24000, epochs=8, report=report)


if __name__ == "__main__":
    raise SystemExit(main())
