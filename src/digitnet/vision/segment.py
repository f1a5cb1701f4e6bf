"""A written number -> one 28x28 input per digit, left to right.

The ink (as ``preprocess`` finds it) is cut into connected components; components stacked
over each other (a broken stroke, the two parts of a "5") are merged, and fragments much
shorter than the row's digits join their nearest neighbour. What remains is ambiguous in two
ways, and both are left to the recogniser: a part wider than a digit may be digits written
touching (it is offered whole and split at the columns with the least ink), and neighbouring
parts may be one digit written in two strokes (they are offered apart and joined). The reading
whose digits are, together, most probable wins. Each piece is normalised like a single digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from digitnet.vision.components import label
from digitnet.vision.loading import load_gray
from digitnet.vision.preprocess import (
    NO_INK,
    SPECK_FRACTION,
    ink_of,
    normalize_digit,
    writing_threshold,
)

ANALYSIS_SIDE = 640  # a row of up to ~10 digits keeps ~60 px per digit
MERGE_OVERLAP = 0.5  # of the narrower part's width: parts stacked this much are one digit
DIGIT_ASPECT = 0.75  # a digit's typical width / height, for splitting touching digits
SPLIT_ASPECT = 1.2  # wider than this times a digit's typical width: maybe several digits
MAX_JOINED = 3  # a digit written in at most this many side-by-side strokes
JOIN_GAP = 0.3  # of the row's digit height: parts closer than this may be one digit
JOIN_ASPECT = 1.3  # of the row's digit height: no single digit is wider
# The digits of a number are written with different pressure: a faint 4 beside a dark 2 fell
# below a single digit's threshold (35 % of the strongest ink) and was dropped. 22 % was the
# best share on numbers written from MNIST training digits (bench_reading's development set:
# exact 0.59 at 35 %, 0.67 at 30 %, 0.72 at 25 %, 0.73 at 22 %, 0.73 at 20 %).
READING_SHARE = 0.22


@dataclass
class Piece:
    image: np.ndarray  # (28, 28) float32, ink bright
    box: tuple[int, int, int, int]  # x, y, width, height in the source image
    line: int = 0  # which line of writing, from the top


@dataclass
class Candidate:
    """One way to read the parts ``first``..``last`` (inclusive, left to right): as the digits
    ``pieces`` — one piece for a part or parts joined, several for a part split."""

    first: int
    last: int
    pieces: list[Piece]


@dataclass
class _Group:
    mask: np.ndarray  # (h, w) bool at analysis scale, within the group's box
    top: int
    left: int

    @property
    def bottom(self) -> int:
        return self.top + self.mask.shape[0]

    @property
    def right(self) -> int:
        return self.left + self.mask.shape[1]


Segmented = tuple[int, list[Candidate], str | None]  # parts, candidates, no-ink reason


def segment(source: Any) -> Segmented:
    """The parts of a written number, left to right, and the candidate readings over them:
    each part alone, neighbouring parts joined (a digit written in two strokes side by side),
    a wide part split (digits written touching). Returns (parts, candidates, None), or
    (0, [], reason) when there is no ink. ``choose_reading`` picks the best sequence."""
    ink = ink_of(load_gray(source), ANALYSIS_SIDE)
    small, scale = ink.small, ink.scale
    threshold = writing_threshold(small, READING_SHARE)
    if threshold is None:
        return 0, [], NO_INK
    writing = small > threshold
    labels, components = label(writing)
    largest = max(c.area for c in components)
    bands = lines(writing)
    rows: list[list[_Group]] = [[] for _ in bands]
    for c in sorted(components, key=lambda c: c.left):
        if c.area < SPECK_FRACTION * largest:
            continue
        mask = labels[c.top : c.bottom, c.left : c.right] == c.label
        middle = (c.top + c.bottom) / 2
        line = min(range(len(bands)), key=lambda k: max(bands[k][0] - middle, middle - bands[k][1]))
        rows[line].append(_Group(mask, c.top, c.left))

    def piece(g: _Group, line: int) -> Piece:
        top, left = int(g.top * scale), int(g.left * scale)
        bottom = min(ink.shape[0], int(np.ceil(g.bottom * scale)))
        right = min(ink.shape[1], int(np.ceil(g.right * scale)))
        crop = ink.region(top, left, bottom, right)
        # Keep only this piece's ink: its mask, brought to full resolution, one pixel wider.
        rows = np.minimum(((np.arange(top, bottom) + 0.5) / scale).astype(int) - g.top,
                          g.mask.shape[0] - 1)  # fmt: skip
        cols = np.minimum(((np.arange(left, right) + 0.5) / scale).astype(int) - g.left,
                          g.mask.shape[1] - 1)  # fmt: skip
        own = dilate(g.mask)[np.ix_(np.clip(rows, 0, None), np.clip(cols, 0, None))]
        image = normalize_digit(crop * own, threshold)
        return Piece(image, (left, top, right - left, bottom - top), line)

    candidates: list[Candidate] = []
    parts = 0
    for line, row in enumerate(r for r in rows if r):  # each line read on its own
        groups = absorb_fragments(merge_stacked(row))
        row_height = max(float(np.median([g.mask.shape[0] for g in groups])), 1.0)
        for i, g in enumerate(groups):
            first = parts + i
            candidates.append(Candidate(first, first, [piece(g, line)]))
            for cut_parts in splits(g, row_height):
                candidates.append(Candidate(first, first, [piece(p, line) for p in cut_parts]))
            joined = g
            for j in range(i + 1, min(i + MAX_JOINED, len(groups))):
                if groups[j].left - joined.right > JOIN_GAP * row_height:
                    break
                joined = _union(joined, groups[j])
                if joined.mask.shape[1] > JOIN_ASPECT * row_height:
                    break
                candidates.append(Candidate(first, parts + j, [piece(joined, line)]))
        parts += len(groups)
    return parts, candidates, None


LINE_HEIGHT_SHARE = 0.45  # a band of writing shorter than this share of the tallest is a
# piece of a neighbouring line (a 7's detached bar), not a line of its own


def lines(writing: np.ndarray) -> list[tuple[int, int]]:
    """The lines of writing in a mask (H, W), top to bottom, as (top, bottom) rows: bands of
    rows holding ink, separated by rows holding none; a band much shorter than the tallest
    joins its nearest neighbour."""
    inked = np.flatnonzero(writing.any(axis=1))
    breaks = np.flatnonzero(np.diff(inked) > 1)
    starts, ends = [0, *(breaks + 1)], [*breaks, len(inked) - 1]
    bands = [[int(inked[a]), int(inked[b]) + 1] for a, b in zip(starts, ends, strict=True)]
    while len(bands) > 1:
        tallest = max(b - t for t, b in bands)
        short = [k for k, (t, b) in enumerate(bands) if b - t < LINE_HEIGHT_SHARE * tallest]
        if not short:
            break
        k = short[0]
        above = bands[k][0] - bands[k - 1][1] if k > 0 else np.inf
        below = bands[k + 1][0] - bands[k][1] if k + 1 < len(bands) else np.inf
        other = k - 1 if above <= below else k + 1
        t, b = min(bands[k][0], bands[other][0]), max(bands[k][1], bands[other][1])
        bands[min(k, other)] = [t, b]
        del bands[max(k, other)]
    return [(t, b) for t, b in bands]


def choose_reading(parts: int, candidates: list[Candidate], scores: list[float]) -> list[int]:
    """The candidates (indices) that cover parts 0..parts-1 in order with the highest total
    score (the sum of each digit's log-probability), by dynamic programming."""
    best = [0.0] + [-np.inf] * parts  # best[k]: the best score covering parts 0..k-1
    back: list[int | None] = [None] * (parts + 1)
    for index in sorted(range(len(candidates)), key=lambda c: candidates[c].last):
        c = candidates[index]
        score = best[c.first] + scores[index]
        if score > best[c.last + 1]:
            best[c.last + 1], back[c.last + 1] = score, index
    chosen, k = [], parts
    while k > 0:
        index = back[k]
        chosen.append(index)
        k = candidates[index].first
    return chosen[::-1]


def dilate(mask: np.ndarray) -> np.ndarray:
    """The mask grown by one pixel in every direction (3x3)."""
    padded = np.pad(mask, 1)
    grown = np.zeros_like(mask)
    for dr in range(3):
        for dc in range(3):
            grown |= padded[dr : dr + mask.shape[0], dc : dc + mask.shape[1]]
    return grown


def _union(a: _Group, b: _Group) -> _Group:
    top, left = min(a.top, b.top), min(a.left, b.left)
    bottom, right = max(a.bottom, b.bottom), max(a.right, b.right)
    mask = np.zeros((bottom - top, right - left), dtype=bool)
    for g in (a, b):
        mask[g.top - top : g.bottom - top, g.left - left : g.right - left] |= g.mask
    return _Group(mask, top, left)


def merge_stacked(groups: list[_Group]) -> list[_Group]:
    """Merge parts whose column ranges overlap by MERGE_OVERLAP of the narrower one."""
    merged: list[_Group] = []
    for g in groups:  # sorted by left edge
        if merged:
            last = merged[-1]
            overlap = min(last.right, g.right) - max(last.left, g.left)
            narrower = min(last.right - last.left, g.right - g.left)
            if overlap >= MERGE_OVERLAP * narrower:
                merged[-1] = _union(last, g)
                continue
        merged.append(g)
    return merged


FRAGMENT_HEIGHT = 0.45  # of the median height: shorter parts are pieces of a neighbour


def absorb_fragments(groups: list[_Group]) -> list[_Group]:
    """Merge parts much shorter than the digits around them (the detached bar of a 5 or a 7,
    a broken stroke) into the nearest neighbouring part."""
    if len(groups) < 2:
        return groups
    median_height = float(np.median([g.mask.shape[0] for g in groups]))
    groups = list(groups)
    while True:
        fragments = [i for i, g in enumerate(groups)
                     if g.mask.shape[0] < FRAGMENT_HEIGHT * median_height]  # fmt: skip
        if not fragments or len(groups) < 2:
            return groups
        i = fragments[0]
        centre = (groups[i].left + groups[i].right) / 2
        gaps = [max(g.left - centre, centre - g.right, 0) if j != i else np.inf
                for j, g in enumerate(groups)]  # fmt: skip
        nearest = int(np.argmin(gaps))
        merged = _union(groups[i], groups[nearest])
        groups = [g for k, g in enumerate(groups) if k not in (i, nearest)] + [merged]
        groups.sort(key=lambda g: g.left)


def splits(g: _Group, row_height: float) -> list[list[_Group]]:
    """Ways to cut a part that may hold several touching digits: into 2, 3, ... pieces at the
    columns with the least ink. None for a part no wider than one digit."""
    height, width = g.mask.shape
    height = max(row_height, height)
    if width <= SPLIT_ASPECT * DIGIT_ASPECT * height:
        return []
    most = max(2, round(width / (DIGIT_ASPECT * height)) + 1)
    return [parts for count in range(2, most + 1) if len(parts := cut(g, count)) == count]


def cut(g: _Group, count: int) -> list[_Group]:
    """``g`` cut into ``count`` pieces near equal widths, at the columns with the least ink."""
    width = g.mask.shape[1]
    ink_per_column = g.mask.sum(axis=0)
    cuts, start = [], 0
    for k in range(1, count):
        centre = round(k * width / count)
        reach = max(1, round(0.3 * width / count))
        lo, hi = max(start + 1, centre - reach), min(width - 1, centre + reach)
        if lo >= hi:
            return []
        start = lo + int(np.argmin(ink_per_column[lo:hi]))
        cuts.append(start)
    parts = []
    for a, b in pairwise([0, *cuts, width]):
        part = g.mask[:, a:b]
        rows = np.nonzero(part.any(axis=1))[0]
        if rows.size == 0:
            return []
        parts.append(_Group(part[rows[0] : rows[-1] + 1], g.top + rows[0], g.left + a))
    return parts
