"""Where a line's writing may be cut into digits: each piece of connected writing (a ``Group``)
cut at the columns where its ink is thinnest and where its loops meet — more cuts than digits,
on purpose: a cut is cheap to undo (neighbouring slices are joined again as candidates), a
missing cut impossible to add later."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view as windows

from digitnet.vision.box import Box

SLICE_WIDTH = 0.25  # of the row's digit height: the narrowest slice a part is cut into
WAIST = 0.15  # of the row's digit height: how much lower the writing is where two loops meet


@dataclass
class Group:
    """A part of a line's writing, at analysis scale."""

    mask: np.ndarray  # (h, w) bool at analysis scale, within the group's box
    top: int
    left: int
    component: int = -1  # the piece of connected writing it is (part of); -1: of several

    @property
    def bottom(self) -> int:
        return self.top + self.mask.shape[0]

    @property
    def right(self) -> int:
        return self.left + self.mask.shape[1]

    @property
    def box(self) -> Box:
        return Box(self.left, self.top, self.mask.shape[1], self.mask.shape[0])


def union(a: Group, b: Group) -> Group:
    top, left = min(a.top, b.top), min(a.left, b.left)
    bottom, right = max(a.bottom, b.bottom), max(a.right, b.right)
    mask = np.zeros((bottom - top, right - left), dtype=bool)
    for g in (a, b):
        mask[g.top - top : g.bottom - top, g.left - left : g.right - left] |= g.mask
    return Group(mask, top, left, a.component if a.component == b.component else -1)


def slices(g: Group, row_height: float) -> list[Group]:
    """``g`` cut at the columns where its ink is thinnest (local minima of the ink per column,
    at least SLICE_WIDTH x row_height from each other and from the ends): the places where
    digits written touching may meet — and at the ``waists`` of the writing, where loops
    written in one stroke meet. Joining neighbouring slices gives the digits back."""
    width = g.mask.shape[1]
    least = max(2, round(SLICE_WIDTH * row_height))
    if width < 2 * least:
        return [g]
    ink = g.mask.sum(axis=0).astype(float)
    window = np.ones(max(1, least // 3)) / max(1, least // 3)
    ink = np.convolve(ink, window, mode="same")
    inside = ink[least : width - least]  # (columns where a cut leaves two slices wide enough)
    thinnest = [int(x) + least for x in np.argsort(inside, kind="stable")
                if inside[x] <= inside[max(0, x - least) : x + least + 1].min()]  # fmt: skip
    cuts: list[int] = []
    for x in [*thinnest, *waists(g.mask, least, row_height)]:
        if all(abs(x - c) >= least for c in cuts):
            cuts.append(x)
    parts = []
    for a, b in pairwise([0, *sorted(cuts), width]):
        part = g.mask[:, a:b]
        rows = np.flatnonzero(part.any(axis=1))
        if rows.size:
            parts.append(Group(part[rows[0] : rows[-1] + 1], g.top + rows[0], g.left + a,
                                g.component))  # fmt: skip
    return parts


def waists(mask: np.ndarray, least: int, row_height: float) -> list[int]:
    """The columns of ``mask`` (h, w) where its writing, from its top ink to its bottom ink, is
    lowest within ``least`` either way and lower by WAIST x row_height than the tallest within
    half a row height on each side: where zeros written as one chain meet ("000" in one stroke
    is thickest in ink there, so the thinnest columns are the loops' middles), at least
    ``least`` from the ends."""
    inked = mask.any(axis=0)
    top = np.where(inked, mask.argmax(axis=0), mask.shape[0])
    bottom = np.where(inked, mask.shape[0] - mask[::-1].argmax(axis=0), 0)
    height = np.maximum(bottom - top, 0)  # (w,): from the top ink to the bottom ink
    width, reach = height.size, max(least, round(row_height / 2))
    higher = np.pad(height, least, constant_values=mask.shape[0])  # beyond the ends: no lower
    lowest_near = windows(higher, 2 * least + 1).min(1)  # [x]: of height[x - least : x + least]
    tallest = windows(np.pad(height, reach), reach).max(1)  # [x]: of height[x - reach : x]
    x = np.arange(least, width - least)
    rim = np.minimum(tallest[x], tallest[x + reach + 1])  # the tallest on either side
    waist = (height[x] <= lowest_near[x]) & (rim - height[x] >= WAIST * row_height)
    return x[waist].tolist()
