"""Where something is on an image: one box type for the whole pipeline."""

from __future__ import annotations

from typing import NamedTuple


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
