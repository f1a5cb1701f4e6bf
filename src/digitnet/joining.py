"""The stroke that joins one digit to the next when a number is written without lifting the
pen — cheques' amounts are often written so ("25000" as a chain of loops) — drawn between two
MNIST digits already written on a line (``writing.write_line``).

A real joining stroke leaves a digit where the pen ends it — low on its right side for most
digits — and enters the next one on its left. MNIST keeps no pen order, so it is drawn from
the lowest ink of the rightmost fifth of the first digit to ink anywhere in the leftmost fifth
of the next, as a curve sagging under the straight line, with the first digit's pen, finer. The
stroke is nobody's writing (``owner`` stays -1): a piece holding a digit and its joining
strokes is that one digit whole; the stroke alone is not writing of a digit.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

EDGE = 0.2  # of a digit's width: where it is left and entered
SAG = (0.0, 0.35)  # of the stroke's width: how far its middle falls under the straight line
PEN = 0.7  # of the first digit's pen: a joining stroke is written fast, finer
SCALE = 4  # lines drawn this many times larger, then shrunk: soft edges like the digits' own


def stroke_width(mine: np.ndarray) -> float:
    """The width of the pen that wrote the pixels ``mine`` (h, w) bool: their area over half
    their outline."""
    edge = mine & ~(np.roll(mine, 1, 0) & np.roll(mine, -1, 0) & np.roll(mine, 1, 1)
                    & np.roll(mine, -1, 1))  # fmt: skip
    return max(1.0, 2 * float(mine.sum()) / max(int(edge.sum()), 1))


def join(line: np.ndarray, owner: np.ndarray, a: int, b: int, rng: np.random.Generator) -> None:
    """Draw onto the ink ``line`` (h, w) in [0, 1], in place, a stroke from writing ``a`` to
    writing ``b`` (their pixels: ``owner`` == a, == b), as strong as most of ``a``'s ink."""
    ya, xa = np.nonzero(owner == a)
    yb, xb = np.nonzero(owner == b)
    if not xa.size or not xb.size:
        return
    leaving = xa >= xa.max() - max(1, round(EDGE * (xa.max() - xa.min())))
    k = int(np.argmax(np.where(leaving, ya, -1)))  # the lowest ink of its right side
    start = np.array([xa[k], ya[k]], float)
    entering = np.flatnonzero(xb <= xb.min() + max(1, round(EDGE * (xb.max() - xb.min()))))
    k = int(entering[rng.integers(entering.size)])
    end = np.array([xb[k], yb[k]], float)
    middle = (start + end) / 2 + [0, rng.uniform(*SAG) * abs(end[0] - start[0])]
    t = np.linspace(0, 1, 16)[:, None]
    curve = (1 - t) ** 2 * start + 2 * (1 - t) * t * middle + t**2 * end  # (16, 2): x, y
    stroke = drawn_line(curve + 0.5, PEN * stroke_width(owner == a), line.shape)
    np.maximum(line, stroke * float(np.percentile(line[owner == a], 90)), out=line)


def drawn_line(
    points: np.ndarray, pen: float, shape: tuple[int, int], round_ends: bool = False
) -> np.ndarray:
    """The line through ``points`` (n, 2) — x, y in pixels of a canvas ``shape`` (h, w) —
    drawn with a pen ``pen`` pixels wide (with round ends if asked), SCALE times larger, then
    shrunk: soft edges like the digits' own. Ink (h, w) float32 in [0, 1]."""
    h, w = shape
    canvas = Image.new("L", (w * SCALE, h * SCALE))
    draw = ImageDraw.Draw(canvas)
    xy = [(float(x) * SCALE, float(y) * SCALE) for x, y in points]
    draw.line(xy, fill=255, width=max(1, round(pen * SCALE)))
    if round_ends:
        r = pen * SCALE / 2
        for x, y in (xy[0], xy[-1]):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return np.asarray(canvas.resize((w, h), Image.BILINEAR), np.float32) / 255
