"""The piece checker: is a piece cut from a written number one whole digit?

Reading a number cuts its ink into more pieces than it has digits (``vision.segment``) and
keeps the sequence of pieces whose digits are, together, most probable. The digit recogniser
alone cannot judge a piece: trained on whole digits, it reads half a 0 as a confident 1 and
two 1s written close as a confident 4. LeCun, Bottou, Bengio and Haffner (1998) train their
recogniser with a "none of the above" class on the wrong pieces of their segmentation graph;
here a second, small network makes that judgement, so the digit recogniser stays the one
``predict`` uses: a small convolutional network over the piece's 28x28 input and, in two rows
under it, seven numbers that place it in its line: its width, its height and its middle's
offset from the line's middle (each over the line's digit height), the gaps to the writing left
and right of it, and whether its edges were cut through connected writing (``Piece.context``).
It also tells the marks written among digits (``digitnet.marks``: separators, end marks,
signs, brackets, ticks), a class each: neither, one whole digit, or one whole mark of a kind
(16 classes). It judges 95.6 % of held-out pieces right (539,670 pieces, 35 % whole digits,
4.5 % marks), and costs a 6-digit number ~7-9 ms.

It is trained on pieces cut, by the reader's own segmentation, from pages of numbers written
with MNIST *training* digits 0-49,999 (``writing``), where the page says whose writing
every pixel is: a piece is one whole digit when at least PURE of its ink is one digit's and it
holds at least COMPLETE of that digit. The bundled weights were made by

    python -m digitnet.reading.training.checker --epochs 6 \
        --out src/digitnet/models/reading/checker.npz

(it records the path it was written to, /work/scratch/s28/checker_marks.npz: about 30 min
here, 13 writing the pages and 6 epochs of 2.7 min), and went on since with longer dashes
and continental 1s (``--start-from``): docs/models.md has each command, the model file its
own.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from digitnet.marks import KINDS
from digitnet.nn import Sequential, load_model
from digitnet.vision.pieces import Piece

BUNDLED = Path(__file__).parents[1] / "models" / "reading" / "checker.npz"
NEITHER, WHOLE, FIRST_MARK = 0, 1, 2  # its classes: neither, one whole digit, then each mark
CLASSES = FIRST_MARK + len(KINDS)
GEOMETRY = 7  # width, height and middle's offset, over the line's digit height; context
SHAPE = (30, 28)  # the 28x28 image, then two rows that carry the GEOMETRY numbers
SPAN = 7  # columns each number fills: four numbers a row
# A thin faint 1 was judged whole or not depending on where, to a pixel, its picture fell
# (0.0 to 0.99 over the nine one-pixel moves of one piece): the verdict is the mean over the
# picture where it is and moved one pixel left and right (8 development pages more of 6,000).
SHIFTS = ((0, 0), (0, 1), (0, -1))  # (rows down, columns right)
# A piece much smaller than the line's digits is enlarged to 28x28 far more than they are, and
# the wobble of the pen round a real dot becomes a shape: cheque 0306's dot, a hooked blob,
# was pictured like a 6 (mark 0.000). Softened by a Gaussian of SOFTEN px it is a dot (0.99).
SMALL = 0.5  # a piece whose longer side is under this many line digit heights is small
SOFTEN = 1.0  # px of 28


def features(pieces: Sequence[Piece]) -> np.ndarray:
    """The checker's input for each piece: (N, 30, 28) float32 — its 28x28 image, and under
    it number k of ``place`` repeated over columns SPAN*(k % 4) .. SPAN*(k % 4 + 1) of row
    28 + k // 4, so one convolutional network reads the shape and the place together."""
    out = np.zeros((len(pieces), *SHAPE), np.float32)
    out[:, :28] = np.stack([softened(p.image) if small(p) else p.image for p in pieces])
    geometry = np.array([place(p) for p in pieces], np.float32)  # (N, GEOMETRY)
    for k in range(GEOMETRY):
        row, column = 28 + k // 4, SPAN * (k % 4)
        out[:, row, column : column + SPAN] = geometry[:, k : k + 1]
    return out


def place(piece: Piece) -> tuple[float, ...]:
    """The piece in its line: width, height, its middle's offset from the line's middle (all
    over the line's digit height), then ``Piece.context``: gaps to its neighbours and cuts."""
    _, y, width, height = piece.box
    middle, digit_height = piece.row
    digit_height = max(digit_height, 1.0)
    size = width / digit_height, height / digit_height, (y + height / 2 - middle) / digit_height
    return size + piece.context


def small(piece: Piece) -> bool:
    """Whether the piece's longer side is under SMALL of its line's digit height."""
    _, _, width, height = piece.box
    return max(width, height) < SMALL * max(piece.row[1], 1.0)


def softened(image: np.ndarray) -> np.ndarray:
    """A 28x28 picture blurred by a Gaussian of SOFTEN px, its brightest ink as bright as
    before."""
    blurred = cv2.GaussianBlur(image, (0, 0), SOFTEN)
    return blurred * (image.max() / max(float(blurred.max()), 1e-6))


class Verdicts(NamedTuple):
    """The checker's verdicts on N pieces: the probability that each is one whole digit, (N,),
    that it is one whole mark, (N,), and which kind of mark it is likeliest to be (N,): an index
    into ``marks.KINDS``."""

    whole: np.ndarray
    mark: np.ndarray
    kind: np.ndarray


class PieceChecker:
    """``judge(pieces)``: is each piece one whole digit, one whole mark, or neither
    (``Verdicts``)? A checker of two classes knows no marks: its ``mark`` is 0."""

    def __init__(self, model: Sequential):
        self.model = model

    def judge(self, pieces: Sequence[Piece]) -> Verdicts:
        """The mean of the verdicts on each piece's picture where it is and moved one pixel
        left and right (SHIFTS), one forward pass over all of them."""
        n = len(pieces)
        if not n:
            return Verdicts(np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, int))
        x = features(pieces)  # (N, 30, 28)
        moved = np.concatenate([shifted(x, rows, columns) for rows, columns in SHIFTS])
        p = self.model.predict(moved, verbose=0)  # (len(SHIFTS) * N, classes)
        p = p.reshape(len(SHIFTS), n, -1).mean(axis=0)  # (N, classes)
        marks = p[:, FIRST_MARK:]  # (N, kinds): none when the checker knows no marks
        if not marks.shape[1]:
            return Verdicts(p[:, WHOLE], np.zeros(n, np.float32), np.zeros(n, int))
        return Verdicts(p[:, WHOLE], marks.sum(axis=1), marks.argmax(axis=1))

    def whole(self, pieces: Sequence[Piece]) -> np.ndarray:
        """The probability that each piece is one whole digit, (N,)."""
        return self.judge(pieces).whole


def shifted(x: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """Checker inputs (N, 30, 28) with each 28x28 picture moved down ``rows`` and right
    ``columns`` pixels (up and left when negative), paper coming in at the edges; the rows
    under the picture, its place, as they are."""
    out = x.copy()
    out[:, :28, :] = 0
    source = slice(max(0, -rows), 28 - max(0, rows)), slice(max(0, -columns), 28 - max(0, columns))
    target = slice(max(0, rows), 28 - max(0, -rows)), slice(max(0, columns), 28 - max(0, -columns))
    out[:, target[0], target[1]] = x[:, source[0], source[1]]
    return out


@functools.cache
def bundled_checker() -> PieceChecker:
    """The bundled one, loaded once."""
    return PieceChecker(load_model(BUNDLED))
