"""What segmentation hands the reader: the pieces of ink it cut from a written number, each as
the 28x28 picture a digit recogniser reads (and, when it may be two digits written touching,
as a 28x56 picture for the pair reader), and the candidates — every way to read a run of
slices as one digit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from digitnet.vision.box import Box
from digitnet.vision.preprocess import fitted

NO_NEIGHBOUR = 2.0  # line heights: a gap this wide or wider is the same as no neighbour
PAIR_SHAPE, PAIR_BOX = (28, 56), (20, 48)


@dataclass
class Piece:
    image: np.ndarray | None  # (28, 28) float32, ink bright; None for a candidate pair only
    box: Box  # where it is in the source image
    line: int = 0  # which line of writing, from the top
    row: tuple[float, float] = (0.0, 0.0)  # its line's middle (y) and digit height, in pixels
    mask: np.ndarray | None = field(default=None, repr=False)  # (height, width) bool: its ink
    pair: np.ndarray | None = field(default=None, repr=False)  # (28, 56): as two digits touching
    # its neighbours in the line: the gaps to the writing left and right of it (in line heights,
    # negative when they overlap, NO_NEIGHBOUR when there is none) and whether its left and
    # right edges are cuts through one piece of connected writing (1.0) or not (0.0)
    context: tuple[float, float, float, float] = (NO_NEIGHBOUR, NO_NEIGHBOUR, 0.0, 0.0)


@dataclass
class Candidate:
    """One way to read the slices ``first``..``last`` (inclusive, left to right, numbered
    across the lines): as one digit or one mark, whose ink is ``piece``."""

    first: int
    last: int
    piece: Piece
    single: bool = True  # False: too wide or too flat for one digit
    mark: bool = True  # False: too wide for one mark; neither: a candidate pair only


Segmented = tuple[int, list[Candidate], str | None]  # slices, candidates, no-ink reason


def pair_picture(strokes: np.ndarray) -> np.ndarray:
    """The strokes (h, w) of a piece that may hold two digits written touching (``strokes_of``)
    -> (28, 56): scaled to fit 20 x 48 pixels (its height to 20 unless it is very wide),
    centred."""
    pair, _ = fitted(strokes, PAIR_BOX)
    out = np.zeros(PAIR_SHAPE, np.float32)
    h, w = pair.shape
    top, left = (PAIR_SHAPE[0] - h) // 2, (PAIR_SHAPE[1] - w) // 2
    out[top : top + h, left : left + w] = pair
    return out
