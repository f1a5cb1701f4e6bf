"""Connected components of a binary mask (8-connectivity): OpenCV's
``connectedComponentsWithStats``, renumbered 1..K in order of first appearance (reading
order), as ``vision.segment`` relies on.

It replaced a labelling of our own (runs of pixels joined by a union-find, 140 lines): the same
labels and components on the writing of 40 written pages and on masks of noise, up to 480x640
with 17,543 components, where the labelling takes 1.7 ms and the whole of ``label`` 34 ms
against 41 (most of it making a Python object of each component). ``scipy.ndimage.label``
gives them too, but importing it costs every process 0.15-0.2 s (``digitnet predict`` of one
image: 0.25 -> 0.40 s); OpenCV's import, 0.02 s. ``digit_height`` is the height of the digits
among pieces side by side, for ``segment`` and ``rules``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DIGIT_SHARE = 0.6  # of the tallest piece's height in a line: a piece this tall may be a digit
# (+-25 % in size: 0.75 / 1.25), a shorter one is a fragment — a 5's detached bar, a broken
# faint stroke, a dash — and not measured for the line's digit height: three fragments beside
# one digit made the line a fragment high, and the digit was cut into slivers.


@dataclass(frozen=True)
class Component:
    label: int
    area: int  # pixels
    top: int
    left: int
    bottom: int  # exclusive
    right: int  # exclusive

    @property
    def longer_side(self) -> int:
        """Its height or its width, whichever is longer (pixels)."""
        return max(self.bottom - self.top, self.right - self.left)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x, y, width, height)."""
        return self.left, self.top, self.right - self.left, self.bottom - self.top


def label(mask: np.ndarray) -> tuple[np.ndarray, list[Component]]:
    """Label the 8-connected components of a boolean mask (H, W).

    Returns labels (H, W) int32 (0 for background, 1..K by first appearance) and the components
    with their areas and bounding boxes.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        np.asarray(mask, dtype=np.uint8), connectivity=8, ltype=cv2.CV_32S
    )  # stats (count, 5): left, top, width, height, area; row 0 is the background
    inked = labels.ravel()[np.flatnonzero(labels)]  # each pixel's label, in reading order
    _, first = np.unique(inked, return_index=True)  # where each label first appears in it
    order = np.argsort(first) + 1  # OpenCV's labels by first appearance
    renumber = np.zeros(count, dtype=np.int32)
    renumber[order] = np.arange(1, count, dtype=np.int32)
    left, top, width, height, area = stats[order].T  # each (K,)
    edges = zip(area.tolist(), top.tolist(), left.tolist(), (top + height).tolist(),
                (left + width).tolist(), strict=True)  # fmt: skip
    return renumber[labels], [Component(k, *c) for k, c in enumerate(edges, start=1)]


def holding(weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """The pixels of the 8-connected components of ``weak`` (H, W) bool that hold at least one
    pixel of ``strong`` (H, W) bool, itself within ``weak``: hysteresis thresholding (Canny,
    1986) — a stroke is followed down to the weaker threshold from wherever it passes the
    stronger one."""
    count, labels = cv2.connectedComponents(np.asarray(weak, dtype=np.uint8), connectivity=8)
    kept = np.zeros(count, dtype=bool)  # (count,): whether each label holds a strong pixel
    kept[labels[strong]] = True
    kept[0] = False  # the background
    return kept[labels]


def digit_height(heights: list[int]) -> float:
    """The height of the digits among pieces of writing ``heights`` tall, side by side: the
    median of those at least DIGIT_SHARE of the tallest — not of fragments and specks."""
    tall = [h for h in heights if h >= DIGIT_SHARE * max(heights)]
    return float(np.median(tall))
