"""The marks people write beside the digits of a number — separators, end marks, signs,
brackets, ticks — their kinds, and how to draw them in many hands.

A number as written keeps its marks: "25.574.-", "12/05/2026", "$45". The reader tells them
from digits (``reading.checker`` has a class for each kind) and keeps them in place in its
``written`` answer; ``writing`` draws them on the pages the checker is trained on. Each kind is
drawn from strokes in a line's coordinates — x and y in digit heights, y from the top of the
digits (0) to their baseline (1) — every point moved a little, the whole slanted, sized and
written with the pen a digit gets (``writing.pen``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from digitnet.vision.box import Box

SYMBOLS = {
    "dot": ".",
    "comma": ",",
    "dash": "-",
    "equals": "=",
    "slash": "/",
    "colon": ":",
    "apostrophe": "'",
    "plus": "+",
    "cross": "x",
    "tick": "✓",
    "open bracket": "(",
    "close bracket": ")",
    "dollar": "$",
    "euro": "€",
}
KINDS = tuple(SYMBOLS)  # the checker's classes 2, 3, ... in this order


@dataclass
class Mark:
    """A mark found beside the digits: its kind (one of KINDS), how sure the reader is, where
    it is in the image and on which line of writing."""

    kind: str
    confidence: float
    box: Box
    line: int = 0

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.kind]

    def to_dict(self) -> dict:
        return {"mark": self.symbol, "kind": self.kind, "confidence": self.confidence,
                "box": list(self.box), "line": self.line}  # fmt: skip


# ------------------------------------------------------------------------------- drawing

Stroke = list[tuple[float, float]]  # a pen's path, (x, y) in digit heights
DOT = 0.06  # a dot's radius, in digit heights


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> Stroke:
    """Points along an ellipse's arc from angle ``start`` to ``end`` (degrees, y down)."""
    angles = np.radians(np.linspace(start, end, 16))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


def strokes(kind: str, rng: np.random.Generator) -> list[Stroke]:
    """The strokes of one mark of ``kind``, each its own shape within what people write: a
    one-point stroke is a dot."""
    u = rng.uniform
    low = u(0.85, 1.0)  # where a dot sits: on the baseline, give or take
    middle = u(0.4, 0.65)
    length = u(0.25, 1.3)  # a dash's, an equals sign's: an end dash may run a digit's width
    shapes = {
        "dot": [[(0.0, low)]],
        "comma": [[(0.05, low - 0.04)],
                  [(0.08, low - 0.04), (0.06, low + 0.08), (-0.04, low + u(0.2, 0.35))]],
        "dash": [[(0.0, middle), (length, middle - u(-0.08, 0.08))]],
        "equals": [[(0.0, middle - 0.12), (length, middle - 0.12 + u(-0.05, 0.05))],
                   [(0.0, middle + 0.12), (length, middle + 0.12 + u(-0.05, 0.05))]],
        "slash": [[(u(0.3, 0.6), u(-0.05, 0.15)), (0.0, u(0.9, 1.1))]],
        "colon": [[(0.0, middle - 0.05)], [(0.0, low)]],
        "apostrophe": [[(0.06, u(-0.05, 0.05)), (0.0, u(0.2, 0.35))]],
        "plus": [[(0.0, 0.55), (0.5, 0.55)], [(0.25, 0.3), (0.25, 0.8)]],
        "cross": [[(0.0, 0.3), (0.4, 0.75)], [(0.4, 0.3), (0.0, 0.75)]],
        "tick": [[(0.0, 0.55), (0.15, 0.85), (u(0.4, 0.7), u(0.0, 0.3))]],
        "open bracket": [arc(0.3, 0.5, 0.3, u(0.5, 0.6), 120, 240)],
        "close bracket": [arc(0.0, 0.5, 0.3, u(0.5, 0.6), -60, 60)],
        "dollar": [[(0.45, 0.15)] + [(0.25 - 0.22 * np.sin(2 * np.pi * t), 0.1 + 0.8 * t)
                                     for t in np.linspace(0, 1, 20)],
                   [(0.25, u(-0.15, 0.05)), (0.25, u(0.95, 1.15))]],
        "euro": [arc(0.35, 0.5, 0.28, 0.42, 40, 320),
                 [(0.0, 0.42), (0.4, 0.42)], [(0.0, 0.6), (0.35, 0.6)]],
    }  # fmt: skip
    return shapes[kind]


DRAWN_SIDE = 20  # a digit height in pixels when a mark is drawn: an MNIST digit's height
SUPERSAMPLE = 4  # drawn this many times larger, then shrunk: soft edges like MNIST's


def draw(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """One mark of ``kind`` in a hand of its own, at DRAWN_SIDE pixels a digit height, as ink
    (h, w) float32 in [0, 1] cut to its strokes, and where its top is, in digit heights from
    the top of the digits."""
    slant, size, wobble = rng.uniform(-0.25, 0.25), rng.uniform(0.8, 1.2), rng.uniform(0, 0.04)
    paths = []
    for s in strokes(kind, rng):  # each stroke a little off its place, its points less so
        dx, dy = rng.normal(0, wobble, 2)
        paths.append([(x + slant * (1 - y) + dx + rng.normal(0, wobble / 3),
                       y + dy + rng.normal(0, wobble / 3)) for x, y in s])  # fmt: skip
    points = np.array([p for s in paths for p in s])  # (n, 2)
    pen = rng.uniform(1.4, 3.2) * SUPERSAMPLE  # MNIST's strokes: 1.5-3 px at 20 px a digit
    scale = DRAWN_SIDE * SUPERSAMPLE * size
    corner = points.min(axis=0) * scale - 2 * pen
    w, h = (points.max(axis=0) * scale - corner + 2 * pen).astype(int) + 1
    image = Image.new("L", (int(w), int(h)))
    canvas = ImageDraw.Draw(image)
    for s in paths:
        xy = [tuple(np.array(p) * scale - corner) for p in s]
        if len(xy) == 1:
            r = DOT * scale * rng.uniform(0.6, 1.3) + pen / 2
            ((x, y),) = xy
            canvas.ellipse([x - r, y - r, x + r, y + r], fill=255)
        else:
            canvas.line(xy, fill=255, width=int(pen), joint="curve")
    small = image.resize((max(1, int(w) // SUPERSAMPLE), max(1, int(h) // SUPERSAMPLE)),
                         Image.BILINEAR)  # fmt: skip
    ink = np.asarray(small, np.float32) / 255
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.1), np.flatnonzero(ink.max(axis=0) > 0.1)
    top = (corner[1] + rows[0] * SUPERSAMPLE) / scale  # in digit heights, as drawn
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], float(top)
