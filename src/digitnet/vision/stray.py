"""Lines of writing found on a page that are not its writing: the head or foot of a
neighbour's writing cut by the page's edge, and a table's rule standing alone.

A crop of a table's cell or of a form holds, beside its own number, what the scan caught of
the cells around it: the foot of the number above, cut by the top edge, the end of a word in
the next column, cut by a side; a rule across, far from the writing, found as a line of its
own and read as a run of digits (a register's "26" read "05565185811888810 / 26 /
077000002200"); a line of small print (a form's printed words, a dotted rule).
``the_documents`` keeps the rest.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

CUT_SHORT = 0.8  # a line at the page's edge less tall than this (of the tallest) is cut off
EDGE_NEAR = 0.03  # of the page's height (width): a piece this near its top or foot (a side) is
# at its edge (a scan's crop may end in a few blank rows under the next row's number, cut off
# above them)
SMALL_LINE = 0.45  # a line less tall than this (of the tallest) is no writing when ...
FLAT = 3  # ... its pieces are each this many times as wide as tall (a rule), or ...
PRINT_WIDTH = 4  # ... it is this many times as wide as tall (printed words, a dotted rule)
SLIM, TALLER = 4, 2.5  # a piece this slim and this much taller than the rest is a rule's


class Group(Protocol):
    """A piece of writing (``segment``'s groups): its mask at analysis scale and its place."""

    mask: np.ndarray
    top: int
    left: int

    @property
    def bottom(self) -> int: ...

    @property
    def right(self) -> int: ...


def the_documents(lines: list[list[Group]], shape: tuple[int, int]) -> list[list[Group]]:
    """The lines of writing (each a list of pieces) of a page of ``shape`` (rows, columns)
    but those that are not the document's own (``cut_by_the_edge``, ``rule_or_print``) —
    unless no line would be left — each without a rule's piece beside its writing
    (``without_a_rules_piece``)."""
    lines = [without_a_rules_piece(groups) for groups in lines]
    tallest = max((tall(groups) for groups in lines), default=0)
    kept = [groups for groups in lines
            if not (cut_by_the_edge(groups, shape) and tall(groups) < CUT_SHORT * tallest)
            and not rule_or_print(groups, tallest)]  # fmt: skip
    return kept or lines


def without_a_rules_piece(groups: list[Group]) -> list[Group]:
    """A line's pieces but those of a rule among them: slim (SLIM times as tall as wide) and
    TALLER times as tall as most of the rest of the line's ink (``most_ink_height``) — the rim
    of a page's edge or a column's rule beside a register's number, read as a 1 four times
    the digits' height."""

    def a_rules(g: Group) -> bool:
        h, w = g.mask.shape
        rest = [other for other in groups if other is not g]
        return bool(rest) and h >= SLIM * w and h >= TALLER * most_ink_height(rest)

    return [g for g in groups if not a_rules(g)] or groups


def tall(groups: list[Group]) -> int:
    return max(g.mask.shape[0] for g in groups)


def cut_by_the_edge(groups: list[Group], shape: tuple[int, int]) -> bool:
    """Whether a piece of the line reaches an edge of the page of ``shape`` (rows, columns),
    or within EDGE_NEAR of it (the line is kept when it stands at least CUT_SHORT as tall as
    the tallest line: the edge only grazes it — a number cropped tight touches the sides)."""
    height, width = shape
    down, across = EDGE_NEAR * height, EDGE_NEAR * width
    return any(g.top <= down or g.bottom >= height - down
               or g.left <= across or g.right >= width - across
               for g in groups)  # fmt: skip


def most_ink_height(groups: list[Group]) -> float:
    """How tall the pieces holding most of a line's ink are: the median of their heights,
    each weighted by its ink — not one piece of a rule or a page's edge beside small print."""
    heights = np.array([g.mask.shape[0] for g in groups])
    ink = np.array([g.mask.sum() for g in groups], float)
    order = np.argsort(heights)
    middle = np.searchsorted(np.cumsum(ink[order]), ink.sum() / 2)
    return float(heights[order][min(middle, len(groups) - 1)])


def rule_or_print(groups: list[Group], tallest: int) -> bool:
    """Whether a line of its own, less than SMALL_LINE as tall as the tallest line (the height
    of most of its ink, ``most_ink_height``), is a rule
    (every piece FLAT times as wide as it is tall: digits, however small, are not) or small
    print (the line PRINT_WIDTH times as wide as it is tall: a form's printed words — a
    register's footer, "Trykt for Kirkeministeriet", read "773111611141" under its "13" — or
    a dotted rule). The lines of one hand's writing are within 0.6 of each other (digit sizes
    +-25 %); a page number written small, a digit or two, is kept."""
    short = most_ink_height(groups)
    if short >= SMALL_LINE * tallest:
        return False
    left = min(g.left for g in groups)
    right = max(g.right for g in groups)
    return right - left >= PRINT_WIDTH * short or all(
        g.mask.shape[1] >= FLAT * g.mask.shape[0] for g in groups
    )
