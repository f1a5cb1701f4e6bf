"""The pair reader: two digits written touching, read as one piece.

Reading a number cuts its ink where it is thinnest (``vision.segment``). Digits whose strokes
cross have no such place: every cut leaves a stroke of one in the other, and neither half reads
right. A classic remedy reads such a piece whole, as one of the 100 pairs 00-99 (e.g. Ciresan,
2008; Hochuli et al., 2018). Here a small convolutional network reads every piece of connected
writing that is wide enough to be two digits (``Piece.pair``, 28x56) as one of 101 classes:
the pairs 00-99 and "not a pair of digits" (100) — a single digit, part of one, three digits.

It is trained on the pieces that the reader's own segmentation cuts from lines of 2-3 digits
(one to three lines a page) written close together with MNIST *training* digits 0-49,999
(``writing``, gaps CLOSE: from an overlap of a third of a digit's width to touching),
labelled by the page's record of whose writing each pixel is: a pair when at least PURE of its
ink is two neighbouring digits' and it holds at least COMPLETE of each. The bundled weights were
first made by

    python -m digitnet.reading.training.pairs --out src/digitnet/models/reading/pairs.npz

and went on training since on pages with continental 1s, digits joined by a stroke and
amounts' flat 0s (``--start-from``, ``--flagged-ones``, ``--joined``, ``--flat-zeros``):
docs/models.md has each command, the model file its own.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digitnet.nn import Sequential, load_model
from digitnet.vision.pieces import Piece

BUNDLED = Path(__file__).parents[1] / "models" / "reading" / "pairs.npz"
NOT_A_PAIR = 100  # the class of every piece that is not two whole digits


class PairReader:
    """``read(pieces)``: for each piece with a pair image, the probabilities (N, 101) of the
    pairs 00-99 and of NOT_A_PAIR."""

    def __init__(self, model: Sequential):
        self.model = model

    def read(self, pieces: Sequence[Piece]) -> np.ndarray:
        if not pieces:
            return np.zeros((0, NOT_A_PAIR + 1), np.float32)
        return self.model.predict(np.stack([p.pair for p in pieces]), verbose=0)


@functools.cache
def bundled_pair_reader() -> PairReader:
    """The bundled one, loaded once."""
    return PairReader(load_model(BUNDLED))
