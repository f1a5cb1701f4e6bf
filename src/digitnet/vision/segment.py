"""A written number -> candidate pieces, each normalised to 28x28 like a single digit.

The ink (as ``preprocess`` finds it) is split into lines and, in each line, into connected
components, each cut further at the columns where its ink is thinnest (``slices``): more cuts
than digits, on purpose — a cut is cheap to undo, a missing cut impossible to add later. The
candidates are runs of neighbouring slices up to a digit's width; the reader keeps the sequence
of them that reads best (``reading.lattice``: over-segmentation and best path, LeCun, Bottou,
Bengio and Haffner, 1998). A candidate that is one piece of connected writing wide enough to be
two digits also carries a 28x56 picture of itself (``Piece.pair``) for the pair reader. A
number written small on a large page is read from the part of the page around it, lines far
apart each from the part around it (``line_regions``), a small image from a copy enlarged
(SMALL_SIDE): either way the line's digits are tens of pixels high where they are cut.
"""

from __future__ import annotations

import math
from dataclasses import replace
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np

from digitnet.vision.box import Box
from digitnet.vision.components import Component, digit_height, holding
from digitnet.vision.cuts import Group, slices, union
from digitnet.vision.filters import grow, square_filter
from digitnet.vision.lighting import Ink, InkRegion, ink_of
from digitnet.vision.loading import load_gray
from digitnet.vision.paper import writing_parts
from digitnet.vision.pieces import (
    NO_NEIGHBOUR,
    Candidate,
    Piece,
    Segmented,
    pair_picture,
)
from digitnet.vision.preprocess import (
    MIN_DIGIT_SIZE,
    NO_INK,
    SIGNAL_PIXELS,
    TOO_SMALL,
    around,
    closer,
    digit_picture,
    least_size,
    pixel_noise,
    small_writing_signal,
    strokes_of,
    writing_threshold,
    zoom_region,
)
from digitnet.vision.resample import enlarged
from digitnet.vision.stray import the_documents

ANALYSIS_SIDE = 640  # a row of up to ~10 digits keeps ~60 px per digit
SMALL_SIDE = 400  # an image with writing and smaller than this is read from a copy enlarged
# by a whole factor to at least this size (at its own, NEAR is half a 20 px digit, a slice
# 5 px), and its pieces cut from the copy; whether there is writing at all is decided at the
# image's own size (40 px of speckle enlarged twelve times are blobs, read as strings of 1s).
# 480 read as well on synthetic pages; on the real ones it enlarged a 150 px cheque 4 times
# and a 206 px register crop 3 times: 400 (3 and 2 times) reads cheques 0.510 -> 0.518,
# registers 0.680 -> 0.689, and each in less time (360 and 320 read as well, 440 worse).
MAX_JOINED = 4  # a digit made of at most this many slices or side-by-side strokes
JOIN_GAP = 0.3  # of the row's digit height: parts closer than this may be one digit
JOIN_ASPECT = 1.6  # of the row's digit height: no single digit is wider (sizes vary +-25 %)
PAIR_ASPECT = 2.4  # nor two digits written touching, as one piece of connected writing
# The digits of a number are written with different pressure: a faint pencil 3 beside a
# marker 8 is lost under any threshold set for the whole page, so each pixel is compared with
# the strongest ink NEAR it.
READING_SHARE = 0.3  # of the strongest ink within NEAR x NEAR analysis pixels
NEAR = 11
FLOOR_NOISE = 5.0  # writing stands this many deviations of the paper's noise above it
FLOOR_CONTRAST = 0.08  # and this far, at least, from the paper
# ... where it starts; from there a stroke is followed down to FOLLOW_CONTRAST: a hair-line
# pen's faint stroke hovers about FLOOR_CONTRAST, and would be left as specks, each dropped.
FOLLOW_CONTRAST = 0.04
PAIR_WIDTH = 0.35  # of the line's digit height: a piece of connected writing this wide may be
# two digits written touching, and is read as a pair too — two 1s written touching are 0.3-0.5
# wide, too narrow to slice (2 x cuts.SLICE_WIDTH)
LINE_HEIGHT_SHARE = 0.45  # a band of writing shorter than this share of the tallest is a
# piece of a neighbouring line (a 7's detached bar), not a line of its own
FLAT = 0.4  # of the row's digit height: writing less tall is no digit alone — a dash, a dot,
# a 5's detached bar — only a part of one (digits are within +-25 % of the row's height: 0.6)


def segment(source: Any) -> Segmented:
    """The slices of a written number, line by line and left to right, and the candidate
    digits over them: each slice alone and runs of neighbouring slices joined. Returns
    (slices, candidates, None), or (0, [], reason) when there is no writing."""
    found = writing_to_read(load_gray(source))
    if isinstance(found, str):
        return 0, [], found
    candidates: list[Candidate] = []
    slices_so_far = 0
    lines_of_writing = [(part, groups) for part in found for groups in part.lines]
    for line, (part, groups) in enumerate(lines_of_writing):  # each line read on its own
        ink = part.ink
        row_height = line_height(groups)
        middle = float(np.median([(g.top + g.bottom) / 2 for g in groups]))
        row = (middle * ink.scale, row_height * ink.scale)
        units = sorted((s for g in groups for s in slices(g, row_height)), key=lambda u: u.left)
        line_ink = ink.around(full_resolution(extent([groups]), ink))  # made once a line
        for first, last, joined, single, mark in runs(units, row_height):
            piece = cut_out(ink, line_ink, joined, part.threshold, line, row, single or mark)
            piece.context = context(units, first, last, joined, row_height)
            if part.placed != Placement():
                piece = in_source_pixels(piece, part.placed)
            first, last = slices_so_far + first, slices_so_far + last
            candidates.append(Candidate(first, last, piece, single, mark))
        slices_so_far += len(units)
    return slices_so_far, candidates, None


class Placement(NamedTuple):
    """Where the image that was read lies on the source: the source's part from (top, left)
    on, enlarged ``factor`` times."""

    factor: int = 1
    top: int = 0
    left: int = 0


class Found(NamedTuple):
    """Writing to read: the ink of an image ``placed`` on the source, its pieces of writing
    at analysis scale line by line (``writing_by_line``), and the faintest ink that counts."""

    ink: Ink
    lines: list[list[Group]]
    threshold: float
    placed: Placement = Placement()

    def within(self, region: Box) -> Found:
        """The same writing, its image read from ``region`` of the source."""
        factor, top, left = self.placed
        return self._replace(placed=Placement(factor, region.y + top, region.x + left))


def writing_to_read(gray: np.ndarray) -> list[Found] | str:
    """The writing of ``gray`` (H, W), found at the image's own size — or the reason there is
    none. A large image's writing is read from the part of it around it, or when its lines
    lie far apart from the part around each line (``closer_look``): its writing looked for
    with the signal a small digit leaves (``small_writing_signal``). A small image's writing
    is found again on a copy enlarged ``factor`` times (SMALL_SIDE), and read there. Returns
    the writing, top to bottom, of the image or of the parts of it read."""
    ink = ink_of(gray, ANALYSIS_SIDE)
    signal = small_writing_signal(ink)  # SIGNAL_PIXELS unless the image was shrunk
    found = writing_by_line(ink, signal)
    stands_out = signal == SIGNAL_PIXELS or writing_threshold(ink.small) is not None
    if isinstance(found, str):
        return found if stands_out else NO_INK
    looked = closer_look(gray, ink, found[0]) if ink.scale > 1 else None
    if isinstance(looked, list):
        return looked
    if not stands_out:  # with the usual signal, at the image's scale
        return looked or NO_INK  # the closer look's reason, when there was one
    found = digit_sized(found, ink)
    if isinstance(found, str):
        return looked or found
    factor = math.ceil(SMALL_SIDE / max(gray.shape))  # 1 unless the image is small
    if factor > 1:
        ink_enlarged = ink_of(enlarged(gray, factor), ANALYSIS_SIDE)
        found_enlarged = writing_by_line(ink_enlarged)
        if not isinstance(found_enlarged, str):
            found_enlarged = digit_sized(found_enlarged, ink_enlarged, factor)
        if not isinstance(found_enlarged, str):
            return [Found(ink_enlarged, *found_enlarged, Placement(factor))]
    return [Found(ink, *found)]


def closer_look(
    gray: np.ndarray, ink: Ink, lines_of_groups: list[list[Group]]
) -> list[Found] | str | None:
    """The writing of a large image (``gray``, its ``ink``) read from the part of it around
    all its writing (``lines_of_groups``, at analysis scale) when that part is shrunk less
    (``zoom_region``); else, when its lines lie far apart, from the part around each line
    (``line_regions``). None when no part is worth it; the reason when the parts hold no
    writing."""
    whole = zoom_region(ink, in_image_pixels(extent(lines_of_groups), ink.scale), ANALYSIS_SIDE)
    regions = [whole] if whole is not None else line_regions(ink, lines_of_groups)
    found: list[Found] = []
    reason = None
    for region in regions:
        part = writing_to_read(region.of(gray))
        if isinstance(part, str):
            reason = reason or part
        else:
            found += [f.within(region) for f in part]
    return found or reason


def line_regions(ink: Ink, lines_of_groups: list[list[Group]]) -> list[Box]:
    """The part of a large image around each of its lines of writing (at analysis scale),
    none reaching further than halfway to the next line — when at least one of them would
    be shrunk less than the whole image was; else none."""
    boxes = [in_image_pixels(extent([groups]), ink.scale) for groups in lines_of_groups]
    if len(boxes) < 2:
        return []
    halfway = [(above.bottom + below.y) // 2 for above, below in pairwise(boxes)]
    bounds = pairwise([0, *halfway, ink.shape[0]])
    regions = [around(box, ink.shape, rows) for box, rows in zip(boxes, bounds, strict=True)]
    return regions if any(closer(r, ink, ANALYSIS_SIDE) for r in regions) else []


def extent(lines_of_groups: list[list[Group]]) -> Box:
    """The box of all the pieces of writing, at analysis scale."""
    groups = [g for groups in lines_of_groups for g in groups]
    top, left = min(g.top for g in groups), min(g.left for g in groups)
    bottom, right = max(g.bottom for g in groups), max(g.right for g in groups)
    return Box.from_edges(top, left, bottom, right)


def in_image_pixels(box: Box, scale: float) -> Box:
    """A box at analysis scale, in the pixels of the image ``scale`` times larger."""
    return Box(*(round(v * scale) for v in box))


def in_source_pixels(piece: Piece, placed: Placement) -> Piece:
    """A piece cut from an image ``placed`` on the source, its box, mask and line in the
    source's pixels (its pictures stay as they are: they were made from the image read). A
    source pixel is the piece's when any of its factor x factor enlarged pixels is."""
    factor, dy, dx = placed
    x, y, width, height = piece.box
    top, left = y // factor, x // factor
    bottom, right = -(-(y + height) // factor), -(-(x + width) // factor)
    blocks = np.zeros(((bottom - top) * factor, (right - left) * factor), dtype=bool)
    blocks[y - top * factor : y - top * factor + height,
           x - left * factor : x - left * factor + width] = piece.mask  # fmt: skip
    mask = blocks.reshape(bottom - top, factor, right - left, factor).any(axis=(1, 3))
    middle, row_height = piece.row
    box = Box.from_edges(top, left, bottom, right).moved(dx, dy)
    return replace(piece, box=box, mask=mask, row=(middle / factor + dy, row_height / factor))


def writing_by_line(
    ink: Ink, signal_pixels: int = SIGNAL_PIXELS
) -> tuple[list[list[Group]], float] | str:
    """The pieces of writing of ``ink`` at analysis scale, each line's left to right, and the
    faintest ink that counts — or the reason there is no writing (``writing_threshold``, with
    ``signal_pixels``)."""
    small = ink.small
    if writing_threshold(small, signal_pixels=signal_pixels) is None:
        return NO_INK
    writing, threshold = writing_of(small)
    parts = writing_parts(writing, small, ink.on_flat_paper)
    if isinstance(parts, str):
        return parts
    writing, labels, kept = parts  # labels: each of ``kept`` painted with its number
    bands = lines(kept)
    by_line: list[list[Group]] = [[] for _ in bands]
    for c in sorted(kept, key=lambda c: c.left):
        mask = labels[c.top : c.bottom, c.left : c.right] == c.label
        middle = (c.top + c.bottom) / 2
        line = min(range(len(bands)), key=lambda k: max(bands[k][0] - middle, middle - bands[k][1]))
        by_line[line].append(Group(mask, c.top, c.left, c.label))
    return the_documents([groups for groups in by_line if groups], small.shape), threshold


def digit_sized(
    found: tuple[list[list[Group]], float], ink: Ink, enlarged_by: int = 1
) -> tuple[list[list[Group]], float] | str:
    """``writing_by_line``'s lines without those whose pieces are all under MIN_DIGIT_SIZE
    pixels of the source both ways — dots, specks — or TOO_SMALL when none is left (the image
    of ``ink`` being the source ``enlarged_by`` times)."""
    lines_of_groups, threshold = found
    largest = [max(max(g.mask.shape) for g in groups) for groups in lines_of_groups]
    large = [groups for groups, size in zip(lines_of_groups, largest, strict=True)
             if least_size(size, ink.scale) / enlarged_by >= MIN_DIGIT_SIZE]  # fmt: skip
    return (large, threshold) if large else TOO_SMALL


def line_height(groups: list[Group]) -> float:
    """A line's digit height, at analysis scale (``components.digit_height`` of its pieces
    of writing)."""
    return max(digit_height([g.mask.shape[0] for g in groups]), 1.0)


def runs(units: list[Group], row_height: float) -> list[tuple[int, int, Group, bool, bool]]:
    """Each unit alone and each run of up to MAX_JOINED neighbouring units no further apart
    than JOIN_GAP and no wider than JOIN_ASPECT line heights, joined: (first, last, joined,
    True, True) — may be one digit, may be a mark — unless less than FLAT line heights tall: a
    mark only, no digit alone (False, True). Slices of one piece of connected writing are
    joined further, up to twice as many and PAIR_ASPECT line heights, as candidate pairs only:
    (first, last, joined, False, False) — two digits whose strokes cross may be that wide."""
    out = []
    for i, unit in enumerate(units):
        joined = unit
        out.append((i, i, unit, unit.mask.shape[0] >= FLAT * row_height, True))
        for j in range(i + 1, min(i + 2 * MAX_JOINED, len(units))):
            if units[j].left - joined.right > JOIN_GAP * row_height:
                break
            joined = union(joined, units[j])
            height, width = joined.mask.shape
            fits = j - i < MAX_JOINED and width <= JOIN_ASPECT * row_height
            if width > PAIR_ASPECT * row_height or (not fits and joined.component < 0):
                break
            out.append((i, j, joined, fits and height >= FLAT * row_height, fits))
    return out


def context(
    units: list[Group], first: int, last: int, joined: Group, row_height: float
) -> tuple[float, float, float, float]:
    """``Piece.context`` of the run of ``units[first..last]`` (sorted by left edge)."""

    def gap(space: float) -> float:
        return min(max(space / row_height, -1.0), NO_NEIGHBOUR)

    def cut(a: Group, b: Group) -> float:
        return float(a.component >= 0 and a.component == b.component)

    left = gap(joined.left - units[first - 1].right) if first > 0 else NO_NEIGHBOUR
    right = gap(units[last + 1].left - joined.right) if last + 1 < len(units) else NO_NEIGHBOUR
    cut_left = cut(units[first - 1], units[first]) if first > 0 else 0.0
    cut_right = cut(units[last], units[last + 1]) if last + 1 < len(units) else 0.0
    return left, right, cut_left, cut_right


def full_resolution(box: Box, ink: Ink) -> Box:
    """A box at analysis scale, in the image's full-resolution pixels: every pixel any part
    of it covers, within the image."""
    scale = ink.scale
    top, left = int(box.y * scale), int(box.x * scale)
    bottom = min(ink.shape[0], math.ceil(box.bottom * scale))
    right = min(ink.shape[1], math.ceil(box.right * scale))
    return Box.from_edges(top, left, bottom, right)


def cut_out(
    ink: Ink,
    line_ink: InkRegion,
    g: Group,
    threshold: float,
    line: int,
    row: tuple[float, float],
    pictured: bool = True,
) -> Piece:
    """The piece of writing ``g`` (at analysis scale) of ``ink`` cut out of ``line_ink``, the
    full-resolution ink of its line — its own ink only: its mask brought to full resolution,
    one pixel wider — and, ``pictured``, normalised to 28x28 like a single digit (a candidate
    pair only is not)."""
    scale, box = ink.scale, full_resolution(g.box, ink)
    ys = ((np.arange(box.y, box.bottom) + 0.5) / scale).astype(int) - g.top  # analysis row
    xs = ((np.arange(box.x, box.right) + 0.5) / scale).astype(int) - g.left  # and column
    ys = np.minimum(np.maximum(ys, 0), g.mask.shape[0] - 1)
    xs = np.minimum(np.maximum(xs, 0), g.mask.shape[1] - 1)
    own = grow(g.mask, 1)[np.ix_(ys, xs)]  # (box.height, box.width) bool
    _, strokes = strokes_of(line_ink.region(box) * own, threshold)  # its own ink only
    image = digit_picture(strokes)[0] if pictured else None
    pair = None
    if g.component >= 0 and g.mask.shape[1] >= PAIR_WIDTH * row[1] / scale:
        pair = pair_picture(strokes)
    return Piece(image, box, line, row, own, pair)


def writing_of(small: np.ndarray) -> tuple[np.ndarray, float]:
    """Which pixels of the ink ``small`` (h, w) are writing, (h, w) bool, and the faintest
    ink that starts a stroke: READING_SHARE of the strongest ink near the pixel, so a dark
    stroke's soft edge is not writing but a faint digit away from it is, and above the
    paper's noise and FLOOR_CONTRAST — or above FOLLOW_CONTRAST only, within a stroke that
    passes FLOOR_CONTRAST somewhere (``holding``)."""
    noise = FLOOR_NOISE * pixel_noise(small)
    floor = max(noise, FLOOR_CONTRAST)
    near = square_filter(small, NEAR, "max")  # (h, w) the strongest ink around each pixel
    share = READING_SHARE * near
    starts = small > np.maximum(floor, share)  # (h, w) bool
    follows = small > np.maximum(max(noise, FOLLOW_CONTRAST), share)
    return holding(follows, starts), floor


def lines(pieces: list[Component]) -> list[tuple[int, int]]:
    """The lines of ``pieces`` of writing (not of the specks: dust joined a rule to a number),
    top to bottom, as (top, bottom) rows: bands of rows holding ink, apart by rows holding none;
    a band much shorter than the tallest joins its nearest neighbour within the tallest's height."""
    inked = np.unique(np.concatenate([np.arange(c.top, c.bottom) for c in pieces]))
    breaks = np.flatnonzero(np.diff(inked) > 1)
    starts, ends = [0, *(breaks + 1)], [*breaks, len(inked) - 1]
    bands = [[int(inked[a]), int(inked[b]) + 1] for a, b in zip(starts, ends, strict=True)]
    while len(bands) > 1:
        tallest = max(b - t for t, b in bands)
        gaps = [np.inf, *(below[0] - above[1] for above, below in pairwise(bands)), np.inf]
        short = [
            k
            for k, (t, b) in enumerate(bands)  # and near a line: a part of it
            if b - t < LINE_HEIGHT_SHARE * tallest and min(gaps[k : k + 2]) <= tallest
        ]
        if not short:
            break
        k = short[0]
        other = k - 1 if gaps[k] <= gaps[k + 1] else k + 1
        t, b = min(bands[k][0], bands[other][0]), max(bands[k][1], bands[other][1])
        bands[min(k, other)] = [t, b]
        del bands[max(k, other)]
    return [(t, b) for t, b in bands]
