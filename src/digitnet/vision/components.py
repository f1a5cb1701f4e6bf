"""Connected components of a binary mask (8-connectivity), by runs.

Each row of the mask is cut into runs of consecutive True pixels, and the pairs of runs on
neighbouring rows that touch (diagonals included) are found, all with NumPy; so are the trees
those pairs make going down the rows. The Python work is per place where strokes meet, not per
pixel or run: a handful for a digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Component:
    label: int
    area: int  # pixels
    top: int
    left: int
    bottom: int  # exclusive
    right: int  # exclusive

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x, y, width, height)."""
        return self.left, self.top, self.right - self.left, self.bottom - self.top


def row_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All runs of True pixels in reading order: rows, starts, ends (exclusive), each (runs,)."""
    H, W = mask.shape
    framed = np.zeros((H, W + 2), dtype=bool)  # a False column before and after every row
    framed[:, 1:-1] = mask
    edges = np.flatnonzero(framed[:, 1:] != framed[:, :-1])  # on a (H, W + 1) grid
    starts, ends = edges[0::2], edges[1::2]  # run starts and run ends alternate
    rows = starts // (W + 1)
    return rows, starts - rows * (W + 1), ends - rows * (W + 1)


def run_components(mask: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The runs of ``mask`` (rows, starts, ends) and the component of each run, numbered
    1..K in order of first appearance (8-connectivity).

    Each run first hangs from the first run above that it touches: a forest whose every tree
    goes down the rows, its root the tree's first run, found for all runs at once by pointer
    jumping. A run that touches more runs above joins their trees to its own (the bottom of
    an O or a U, where two strokes meet): a union-find over those few joins, in Python."""
    rows, starts, ends = row_runs(np.asarray(mask, dtype=bool))
    n = len(rows)
    if n == 0:
        return (rows, starts, ends), np.zeros(0, np.intp)
    above, below = touching_runs(rows, starts, ends, mask.shape[1])
    # Pairs come grouped by their run below, its runs above in order: a group's first pair
    # is where that run hangs, the others are joins.
    hangs = np.ones(len(below), dtype=bool)
    hangs[1:] = below[1:] != below[:-1]
    parent = np.arange(n)
    parent[below[hangs]] = above[hangs]  # always an earlier run: the roots are fixed points
    while not np.array_equal(root := parent[parent], parent):
        parent = root
    merged: dict[int, int] = {}  # a tree's root -> the root of the tree it joined

    def find(r: int) -> int:
        while r in merged:
            r = merged[r]
        return r

    joins = ~hangs
    for a, b in zip(root[above[joins]].tolist(), root[below[joins]].tolist(), strict=True):
        a, b = find(a), find(b)
        if a != b:
            merged[max(a, b)] = min(a, b)  # a component's root is its first run
    if merged:
        final = np.arange(n)
        final[list(merged)] = [find(r) for r in merged]
        root = final[root]
    _, number = np.unique(root, return_inverse=True)
    return (rows, starts, ends), number + 1


def touching_runs(rows, starts, ends, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of runs on neighbouring rows that touch (diagonals included): indices of
    the upper and of the lower run, (pairs,) each. Runs are in reading order, so on one row
    both their starts and their ends increase: the runs above that a run touches are the
    consecutive ones from the first that ends at or after its start to the last that starts
    at or before its end — two binary searches per run, over keys (row, column)."""
    line = width + 2  # more than any column: row * line + column orders by row first
    first = np.searchsorted(rows * line + ends, (rows - 1) * line + starts, side="left")
    last = np.searchsorted(rows * line + starts, (rows - 1) * line + ends, side="right") - 1
    count = np.maximum(last - first + 1, 0)  # (runs,) how many runs above each one touches
    below = np.repeat(np.arange(len(rows)), count)
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    above = np.repeat(first, count) + offsets
    return above, below


def components(mask: np.ndarray) -> list[Component]:
    """The 8-connected components of a boolean mask (H, W) with their areas and bounding
    boxes, in order of first appearance (without painting a label image)."""
    return summarise(*run_components(mask), mask.shape)


def summarise(runs: tuple[np.ndarray, ...], number: np.ndarray, shape) -> list[Component]:
    """Each component's area and bounding box from its runs."""
    if number.size == 0:
        return []
    r, start, end = runs
    count = int(number.max())
    area = np.bincount(number, weights=end - start, minlength=count + 1)
    top = np.full(count + 1, shape[0])
    np.minimum.at(top, number, r)
    left = np.full(count + 1, shape[1])
    np.minimum.at(left, number, start)
    bottom = np.zeros(count + 1, int)
    np.maximum.at(bottom, number, r + 1)
    right = np.zeros(count + 1, int)
    np.maximum.at(right, number, end)
    return [
        Component(k, int(area[k]), int(top[k]), int(left[k]), int(bottom[k]), int(right[k]))
        for k in range(1, count + 1)
    ]


def label(mask: np.ndarray) -> tuple[np.ndarray, list[Component]]:
    """Label the 8-connected components of a boolean mask (H, W).

    Returns labels (H, W) int32 (0 for background, 1..K by first appearance) and the components
    with their areas and bounding boxes.
    """
    runs, number = run_components(mask)
    labels = np.zeros(mask.shape, dtype=np.int32)
    if number.size == 0:
        return labels, []
    r, start, end = runs
    # Paint every run: the flat index of each of its pixels, all runs at once.
    length = end - start
    first = np.repeat(r * mask.shape[1] + start - np.cumsum(length) + length, length)
    labels.flat[first + np.arange(length.sum())] = np.repeat(number, length)
    return labels, summarise(runs, number, mask.shape)
