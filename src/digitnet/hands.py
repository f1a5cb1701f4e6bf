"""How a hand changes a digit it writes, beyond MNIST's own: the continental 1, its flag from
the top of the stem, and the flat, wide 0 of cheque amounts. Each takes a digit's ink (h, w)
float32 in [0, 1] and returns the changed ink (``writing.digit_ink`` asks for them); ink is
cut to its strokes by ``cropped``, which ``writing`` uses too.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from digitnet.joining import drawn_line

FLAT = (1.3, 1.9)  # a flat 0's width over its own


def cropped(ink: np.ndarray, floor: float = 0.1) -> np.ndarray:
    """``ink`` (h, w) cut to the rows and columns where some ink is above ``floor``."""
    rows = np.flatnonzero(ink.max(axis=1) > floor)
    cols = np.flatnonzero(ink.max(axis=0) > floor)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def with_flag(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 (h, w) written the continental way: a flag from the top of its stem down to the
    left, 35-90 % of its height long (a long one makes a "Λ"), opening 15-35 degrees from the
    stem (a 7's bar is flat; a flag along the stem only thickens it), drawn with the stem's own
    pen (its width the stem's ink per row) — the cheques' 1s that the reader took for "11"
    written touching."""
    h, w = ink.shape
    thick = max(1.0, float(np.median(ink.sum(axis=1))))  # the stroke's width, in pixels
    rows = np.flatnonzero(ink.sum(axis=1) > 0)
    middles = (ink[rows] * np.arange(w)).sum(axis=1) / ink[rows].sum(axis=1)
    lean = float(np.arctan(-np.polyfit(rows, middles, 1)[0]))  # "/": the stem goes down-left
    top = np.flatnonzero(ink[: max(2, h // 8)].max(axis=0) > 0.5)
    x0 = float(top.mean()) if top.size else w / 2
    length, angle = h * rng.uniform(0.35, 0.9), lean + np.radians(rng.uniform(15, 35))
    reach = length * np.sin(angle)  # leftwards
    left = int(np.ceil(max(0.0, reach - x0) + thick))
    start = (x0 + left, 0.5 * thick)
    end = (start[0] - reach, start[1] + length * np.cos(angle))
    flag = drawn_line(np.array([start, end]), thick, (h, w + left), round_ends=True)
    out = flag * float(ink.max())
    out[:, left:] = np.maximum(out[:, left:], ink)
    return cropped(out)


def flattened(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit's ink (h, w) written wider by FLAT, its height kept: a cheque's flat 0."""
    h, w = ink.shape
    width = max(2, round(w * rng.uniform(*FLAT)))
    image = Image.fromarray((ink * 255).astype(np.uint8)).resize((width, h), Image.BILINEAR)
    return np.asarray(image, np.float32) / 255
