"""Ways of writing digits that MNIST hardly has, drawn onto its digits: the continental 1 and 7.

MNIST's writers were American census staff and students: a 1 is a single stroke and a 7 has no
bar. Much of Europe writes the 1 with a long up-stroke (a flag) from the upper left and often a
foot, and crosses the 7. A network trained on MNIST alone reads such a 1 as a 4 or a 7. These
functions add the missing strokes to some of the 1s and 7s of a training set: anti-aliased
straight pen strokes as wide as the digit's own, after which the digit is moved back so that its
centre of mass sits where it was (MNIST's centring). The random distortions of ``Augment`` then
vary them like any other digit. Images are (N, 28, 28) float32 in [0, 1], ink bright on dark.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

INK = 0.2  # a row or column with more ink than this belongs to the digit


@dataclass(frozen=True)
class Styles:
    flagged_ones: float = 0.5  # the share of 1s that get a flag
    footed_ones: float = 0.3  # of those, the share that also get a foot
    crossed_sevens: float = 0.3  # the share of 7s that get a bar across the stem

    def __call__(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A copy of the training images X (N, 28, 28) float32 with the styles drawn onto the
        chosen 1s and 7s (labels y (N,) say which); other digits are unchanged."""
        out = X.copy()
        ones = np.flatnonzero(y == 1)
        for index in ones[rng.random(len(ones)) < self.flagged_ones]:
            strokes = flag_strokes(X[index], rng, foot=rng.random() < self.footed_ones)
            out[index] = with_strokes(X[index], strokes)
        sevens = np.flatnonzero(y == 7)
        for index in sevens[rng.random(len(sevens)) < self.crossed_sevens]:
            out[index] = with_strokes(X[index], bar_stroke(X[index], rng))
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def with_strokes(image: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """The digit (H, W) with the strokes (H, W) added, moved by whole pixels so that its centre of
    mass stays where it was."""
    styled = np.maximum(image, strokes)
    shift = np.rint(centre_of_mass(image) - centre_of_mass(styled)).astype(int)
    return np.roll(styled, tuple(shift), axis=(0, 1))


def flag_strokes(image: np.ndarray, rng: np.random.Generator, foot: bool = False) -> np.ndarray:
    """The strokes (H, W) that make a 1 (H, W) continental: a flag from the top of its stem down
    to the left, 30-55 % of the digit's height long at 25-60 degrees below the horizontal and at
    least 20 degrees away from the stem; with ``foot``, also a short stroke from the bottom of the
    stem to the right."""
    top, bottom = ink_extent(image.sum(axis=1))
    height = bottom - top + 1
    width = pen_width(image, height)
    strokes = np.zeros_like(image)
    start = (top + width / 2, ink_column(image, top))
    base = (bottom - width / 2, ink_column(image, bottom))
    stem = math.degrees(math.atan2(base[0] - start[0], start[1] - base[1]))  # 90: upright
    angle = math.radians(rng.uniform(25, max(30, min(60, stem - 20))))
    length = rng.uniform(0.3, 0.55) * height
    end = (start[0] + length * math.sin(angle), start[1] - length * math.cos(angle))
    np.maximum(strokes, pen_stroke(image.shape, start, end, width), out=strokes)
    if foot:
        reach = rng.uniform(0.15, 0.3) * height
        end = (base[0] - rng.uniform(0, 0.3) * reach, base[1] + reach)
        np.maximum(strokes, pen_stroke(image.shape, base, end, width), out=strokes)
    return strokes


def bar_stroke(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The bar (H, W) across the stem of a 7 (H, W) a little below the middle, 30-50 % of the
    digit's height long, tilted by up to 8 degrees."""
    top, bottom = ink_extent(image.sum(axis=1))
    height = bottom - top + 1
    row = top + rng.uniform(0.5, 0.6) * height
    centre = (row, ink_column(image, round(row)))
    half = rng.uniform(0.15, 0.25) * height
    tilt = math.radians(rng.uniform(-8, 8))
    offset = (half * math.sin(tilt), half * math.cos(tilt))
    start = (centre[0] + offset[0], centre[1] - offset[1])
    end = (centre[0] - offset[0], centre[1] + offset[1])
    return pen_stroke(image.shape, start, end, pen_width(image, height))


def ink_extent(profile: np.ndarray) -> tuple[int, int]:
    """The first and last index where a row or column profile (L,) has ink."""
    inked = np.flatnonzero(profile > INK)
    return int(inked[0]), int(inked[-1])


def ink_column(image: np.ndarray, row: int) -> float:
    """The ink-weighted mean column of one row of the image (H, W)."""
    weights = image[row]
    return float(weights @ np.arange(len(weights)) / max(weights.sum(), 1e-6))


def pen_width(image: np.ndarray, height: int) -> float:
    """The stroke width of a digit about ``height`` pixels tall, from its ink per row: 1.5-4 px.
    (Strokes of 1s and 7s run mostly up and down, so ink per row is close to the width.)"""
    return float(np.clip(image.sum() / height / 1.3, 1.5, 4.0))


def pen_stroke(shape, start, end, width: float) -> np.ndarray:
    """A straight anti-aliased stroke (H, W) float32 from start to end ((row, col) pairs) with
    round ends: 1 within width/2 of the segment, fading to 0 over one pixel."""
    rows, cols = np.indices(shape, dtype=np.float32)
    (r0, c0), (r1, c1) = start, end
    dr, dc = r1 - r0, c1 - c0
    along = ((rows - r0) * dr + (cols - c0) * dc) / max(dr * dr + dc * dc, 1e-6)
    along = np.clip(along, 0, 1)
    distance = np.hypot(rows - (r0 + along * dr), cols - (c0 + along * dc))
    return np.clip(width / 2 + 0.5 - distance, 0, 1).astype(np.float32)


def centre_of_mass(image: np.ndarray) -> np.ndarray:
    """(row, col) of the image's ink-weighted centre."""
    rows, cols = np.indices(image.shape)
    total = max(image.sum(), 1e-6)
    return np.array([(rows * image).sum() / total, (cols * image).sum() / total])
