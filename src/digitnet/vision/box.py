"""Where something is on an image: one box type for the whole pipeline."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Box(NamedTuple):
    """A rectangle of an image in whole pixels: its left column ``x``, top row ``y``, ``width``
    and ``height`` — the order the API's answers give (a tuple: ``list(box)`` is its JSON).
    ``Box.from_edges`` builds one from its edges, ``bottom`` and ``right`` give them back."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def from_edges(cls, top: int, left: int, bottom: int, right: int) -> Box:
        """The box of rows top..bottom and columns left..right (bottom and right excluded)."""
        return cls(left, top, right - left, bottom - top)

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def middle(self) -> float:
        """The row halfway down."""
        return self.y + self.height / 2

    def moved(self, dx: int, dy: int) -> Box:
        """The same box ``dx`` pixels further right and ``dy`` further down."""
        return Box(self.x + dx, self.y + dy, self.width, self.height)

    def of(self, image: np.ndarray) -> np.ndarray:
        """The part of ``image`` (H, W, ...) in the box: a view."""
        return image[self.y : self.bottom, self.x : self.right]
