"""Connected components of a binary mask (8-connectivity), by runs.

Each row of the mask is cut into runs of consecutive True pixels (found with NumPy); runs that
touch a run of the previous row (diagonals included) are merged with a union-find. The Python
work is per run, not per pixel: a few hundred runs for a digit.
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


def row_runs(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """All runs (row, start, end) of True pixels, end exclusive, in reading order."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)  # +1 where a run starts, -1 just after it ends
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return list(zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True))


def label(mask: np.ndarray) -> tuple[np.ndarray, list[Component]]:
    """Label the 8-connected components of a boolean mask (H, W).

    Returns labels (H, W) int32 (0 for background, 1..K by first appearance) and the components
    with their areas and bounding boxes.
    """
    runs = row_runs(np.asarray(mask, dtype=bool))
    parent = list(range(len(runs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[int] = []  # indices of the runs on the row above
    current: list[int] = []
    row = -1
    for index, (r, start, end) in enumerate(runs):
        if r != row:
            previous = current if r == row + 1 else []
            current, row = [], r
        for other in previous:
            _, o_start, o_end = runs[other]
            if o_start <= end and start <= o_end:  # overlap, diagonal neighbours included
                a, b = find(index), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        current.append(index)

    labels = np.zeros(mask.shape, dtype=np.int32)
    roots: dict[int, int] = {}
    stats: dict[int, list[int]] = {}
    for index, (r, start, end) in enumerate(runs):
        root = find(index)
        number = roots.setdefault(root, len(roots) + 1)
        labels[r, start:end] = number
        s = stats.setdefault(number, [0, r, start, r + 1, end])
        s[0] += end - start
        s[1], s[2] = min(s[1], r), min(s[2], start)
        s[3], s[4] = max(s[3], r + 1), max(s[4], end)
    components = [Component(n, *s) for n, s in sorted(stats.items())]
    return labels, components
