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
    if not runs:
        return labels, []
    r, start, end = (np.array(column) for column in zip(*runs, strict=True))
    _, number = np.unique([find(i) for i in range(len(runs))], return_inverse=True)
    number = number + 1  # (runs,) component of each run, 1..K in order of first appearance
    # Paint every run: the flat index of each of its pixels, all runs at once.
    length = end - start
    first = np.repeat(r * mask.shape[1] + start - np.cumsum(length) + length, length)
    labels.flat[first + np.arange(length.sum())] = np.repeat(number, length)
    count = int(number.max())
    area = np.bincount(number, weights=length, minlength=count + 1)
    top = np.full(count + 1, mask.shape[0])
    np.minimum.at(top, number, r)
    left = np.full(count + 1, mask.shape[1])
    np.minimum.at(left, number, start)
    bottom = np.zeros(count + 1, int)
    np.maximum.at(bottom, number, r + 1)
    right = np.zeros(count + 1, int)
    np.maximum.at(right, number, end)
    components = [
        Component(k, int(area[k]), int(top[k]), int(left[k]), int(bottom[k]), int(right[k]))
        for k in range(1, count + 1)
    ]
    return labels, components
