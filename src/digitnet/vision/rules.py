"""Straight lines drawn with the writing, not part of any digit: a number underlined, the
frame of a form's field, a dash or a signature line drawn alone.

The paper's own lines, across most of the page, are taken out before (``paper``); these are
as long as the writing they go with. Each piece of writing is looked at for thin bands of
rows (columns) inked across RULE_SPAN of its width (height):
- a band along the foot of a piece, or a piece that is a band alone, is a line drawn under
  the writing when it is RULE_LENGTH (alone: ALONE_LENGTH) times as long as the writing
  beside it is tall, no more than THIN of that thick, and the writing above it spreads over
  SPREAD of its length or lies within it, the line reaching PAST it both ways (a single
  digit underlined) — a 2's base is no longer than its digit is wide, or as thick as a
  stroke of a flat 2, or has its writing to one side; a 7's bar is on top (or, detached, has
  nothing above it);
- a piece with bands along all four sides is a frame, however long, when it holds writing
  or is wider than tall (a form's field; an empty square may be a 0);
- when no piece is anything but such bands, they are all lines: a dash alone is no digit.
A line apart from the writing may be drawn by hand, on a slant of up to SLANT: one straight
thin stroke (``drawn_across``) is a line alone, whatever its rows. Where a stroke crosses a
line, the line's pixels are the stroke's and stay. A number struck through, and a slanted
line touching the writing, are left as they are.
"""

from __future__ import annotations

import math

import numpy as np

from digitnet.vision.components import Component, digit_height
from digitnet.vision.filters import grow

RULE_SPAN = 0.85  # of a piece's width (height): a band of rows (columns) inked this far across
RULE_THICKNESS = 0.15  # of its length: a rule is thin (a dash 3 x 16 px is; a flat 0 is not)
RULE_LENGTH = 1.5  # of the height of the writing beside it: a rule is longer
ALONE_LENGTH = 0.6  # ... or, a line that is a piece of its own, this long: an answer underlined
# as short as the digit is wide is one (20 of 20 development digits so underlined read right),
# and a 2's base drawn apart from it is read better without it (59 of 60 such 2s predicted)
SPREAD = 0.5  # of a rule's length: the writing above a rule spreads this far
PAST = 0.2  # of a rule's length: ... or the rule reaches this far past it on either side (a
# single digit underlined: the line may be three times as long as the digit is wide)
THIN = 0.25  # of the height of the writing beside it: a rule is no thicker (a flat 2's base
# is half as thick as the rest of it is tall)
EDGE_SLACK = 0.15  # of a piece's height (width): a band this close to its edge runs along it
RULE_MIN_SIDE = 6  # analysis pixels: pieces shorter both ways are specks, not looked at
LINE_GAP = 2  # pixels: a ruling's gaps this short are bridged before it is measured
SLANT = 15  # degrees: a line drawn by hand under writing lies this close to the horizontal
ALONG, STRAY = 3, 0.05  # a curved line alone: this many times as wide as tall, one run a column
RULE_GAP = 0.02  # of a piece's width (height): ... a line's (a digit's strokes are not lines)
CROSSING_SLANT = 2  # columns: a slanted stroke crosses a thin line this far from straight
CROSSING_DEPTH = 2  # rows of writing above and below a line where a stroke crosses it


def without_rules(writing: np.ndarray, labels: np.ndarray, found: list[Component]) -> np.ndarray:
    """``writing`` (H, W) bool without the rules and frames drawn with it — ``writing`` itself
    when there are none. ``labels`` (H, W), ``found``: its pieces (``components.label``)."""
    found = [c for c in found if c.longer_side >= RULE_MIN_SIDE]
    rules = np.zeros_like(writing)
    heights = []  # the height of each piece's writing beside its bands
    lines = []  # (piece, its mask, its bands (top, bottom, thickness), whether it is alone)
    for c in found:
        box = (slice(c.top, c.bottom), slice(c.left, c.right))
        own = labels[box] == c.label
        drawn = [t for t in (drawn_across(own), drawn_along(own)) if t is not None]
        if drawn:  # a line alone, straight or slanted, or curved (its thickness: curving not)
            thickness = min(drawn)
            lines.append((c, own, [(0, own.shape[0], thickness)], True))
            continue
        across, down = bands(own)
        if framing(across, down, own.shape):  # a frame, if it holds writing or is wide
            frame = line_pixels(own, across, down)
            wide = own.shape[1] >= RULE_LENGTH * own.shape[0]  # a field, not a square 0
            if wide or holds_writing(c, found) or tall(own & ~frame):
                rules[box] |= frame
                continue
        rest = own.copy()
        for top, bottom in across:
            rest[top:bottom] = False
        height = reach(rest, axis=0)
        if height:
            heights.append(height)
            across = [band for band in across if last(band, own.shape[0])]
        if across:  # a line alone, or under the rest of its piece (a 7's bar is on top)
            lines.append((c, own, [(t, b, b - t) for t, b in across], height == 0))
    beside = digit_height(heights) if heights else 0.0  # 0: nothing but lines
    for c, own, ruled, alone in lines:
        if c.right - c.left < (ALONE_LENGTH if alone else RULE_LENGTH) * beside:
            continue
        if beside:  # thin beside the writing, which lies above it
            ruled = [
                (top, bottom, thickness)
                for top, bottom, thickness in ruled
                if thickness <= THIN * beside
                and underlines(above(writing, c, c.top + top - round(thickness), beside))
            ]
        across = [(top, bottom) for top, bottom, _ in ruled]
        rules[c.top : c.bottom, c.left : c.right] |= line_pixels(own, across)
    return writing & ~rules if rules.any() else writing


def bands(own: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The thin bands of rows and of columns of a piece's mask (h, w) inked across RULE_SPAN
    of it: (top, bottom) rows, (left, right) columns."""
    h, w = own.shape
    across = ruled_rows(own, RULE_SPAN, RULE_THICKNESS * w / h, round(RULE_GAP * w))
    down = ruled_rows(own.T, RULE_SPAN, RULE_THICKNESS * h / w, round(RULE_GAP * h))
    return across, down


def drawn_across(own: np.ndarray) -> float | None:
    """The thickness of a piece (h, w) bool that is one straight stroke lying within SLANT of
    the horizontal — a line drawn by hand, not with a ruler, so no band of rows holds it —
    and no thicker than RULE_THICKNESS of its length; None when it is not one. Its length and
    thickness are those of a uniform bar with the same spread of pixels along and across its
    main axis (a bar t thick has a variance of t^2 / 12 across): the eigenvalues of the 2x2
    covariance of its pixels' columns and rows."""
    h, w = own.shape
    if h > w / 2:  # such a stroke is at most sin 15° + 0.15 of its length tall: under half
        return None
    ys, xs = np.nonzero(own)  # a piece looked at spans RULE_MIN_SIDE pixels: that many at least
    x, y = xs - xs.mean(), ys - ys.mean()
    cxx, cyy, cxy = x @ x / x.size, y @ y / y.size, x @ y / x.size
    middle, half_gap = (cxx + cyy) / 2, math.hypot((cxx - cyy) / 2, cxy)  # eigenvalues: +-
    length = math.sqrt(12 * (middle + half_gap))
    thickness = math.sqrt(12 * max(middle - half_gap, 0.0))
    slant = math.degrees(0.5 * math.atan2(2 * cxy, cxx - cyy))  # the main axis from horizontal
    if abs(slant) > SLANT or thickness > RULE_THICKNESS * length:
        return None
    return thickness


def drawn_along(own: np.ndarray) -> float | None:
    """The thickness of a piece (h, w) bool that is one stroke drawn along the writing, curved
    or wavy — a flourish under a number: ALONG times as wide as tall, one run of ink in (all
    but STRAY of) its columns, and as thin as ``drawn_across`` asks; None when it is not."""
    h, w = own.shape
    if w < ALONG * h:
        return None
    runs = own[0].astype(int) + (own[1:] & ~own[:-1]).sum(axis=0)  # (w,): runs in each column
    if np.mean(runs > 1) > STRAY:
        return None
    thickness = float(np.median(own.sum(axis=0)[runs > 0]))
    return thickness if thickness <= RULE_THICKNESS * w else None


def framing(
    across: list[tuple[int, int]], down: list[tuple[int, int]], shape: tuple[int, int]
) -> bool:
    """Whether bands of a piece (h, w) run along all four of its sides (``first``,
    ``last``), with room between them (one thick stroke is one band, first and last)."""

    def apart(bands: list[tuple[int, int]], length: int) -> bool:
        firsts = [b for b in bands if first(b, length)]
        lasts = [b for b in bands if last(b, length)]
        return any(end < start for _, end in firsts for start, _ in lasts)

    h, w = shape
    return apart(across, h) and apart(down, w)


def above(writing: np.ndarray, c: Component, row: int, height: float) -> np.ndarray:
    """The writing (H, W) in ``c``'s columns, ``height`` rows up from ``row`` (a line's top
    less its thickness: its ragged edge is not writing above it)."""
    return writing[max(0, row - round(height)) : max(0, row), c.left : c.right]


def underlines(above: np.ndarray) -> bool:
    """Whether a line has writing ``above`` it (h, w: a digit's height of it, in the line's
    columns) as an underlined number does: spreading over SPREAD of the line's length, or
    lying within it, the line reaching PAST it on both sides — not a 2 with a long base nor
    a 7's detached bar (the writing above them is to one side, or none)."""
    width = above.shape[1]
    left, right = extent(above, axis=1)  # the columns holding writing
    if left == right:
        return False
    within = left >= PAST * width and right <= (1 - PAST) * width
    return right - left >= max(SPREAD * width, 1) or within


def tall(ink: np.ndarray) -> bool:
    """Whether the ink (h, w) bool spans half its box's height or more: a digit written
    touching its frame, not the frame's rounded corners."""
    return reach(ink, axis=0) >= max(0.5 * ink.shape[0], 1)


def extent(mask: np.ndarray, axis: int) -> tuple[int, int]:
    """The first row (``axis`` 0) or column (1) of ``mask`` (h, w) bool holding any ink, and
    one past the last; (0, 0) when none."""
    held = np.flatnonzero(mask.any(axis=1 - axis))
    return (int(held[0]), int(held[-1]) + 1) if held.size else (0, 0)


def reach(mask: np.ndarray, axis: int) -> int:
    """How far the ink of ``mask`` (h, w) bool reaches down its rows (``axis`` 0) or across
    its columns (1): from the first row (column) holding any to the last; 0 when none."""
    start, end = extent(mask, axis)
    return end - start


def first(band: tuple[int, int], length: int) -> bool:
    """Whether a band of rows is the first of a piece ``length`` rows long: no further from
    its top than the band is thick, or EDGE_SLACK of the length (a pen's round end leaves the
    outermost rows short; a stroke crossing a frame reaches beyond it)."""
    start, end = band
    return start <= max(end - start, EDGE_SLACK * length)


def last(band: tuple[int, int], length: int) -> bool:
    """Whether a band of rows is the last of a piece ``length`` rows long (``first``, from
    its bottom)."""
    start, end = band
    return first((length - end, length - start), length)


def holds_writing(frame: Component, found: list[Component]) -> bool:
    """Whether another of the pieces ``found`` lies within ``frame``'s box."""
    return any(c is not frame and c.top >= frame.top and c.bottom <= frame.bottom
               and c.left >= frame.left and c.right <= frame.right for c in found)  # fmt: skip


def line_pixels(
    mask: np.ndarray, across: list[tuple[int, int]], down: list[tuple[int, int]] = ()
) -> np.ndarray:
    """The pixels of ``mask`` (H, W) bool in its bands of rows ``across`` and of columns
    ``down``, but where a stroke of the rest of it crosses them (``crossing``)."""
    lines = np.zeros_like(mask)
    for top, bottom in across:
        lines[top:bottom] = mask[top:bottom]
    for left, right in down:
        lines[:, left:right] = mask[:, left:right]
    rest = mask & ~lines
    for top, bottom in across:
        lines[top:bottom] &= ~crossing(rest, top, bottom)[None, :]
    for left, right in down:
        lines[:, left:right] &= ~crossing(rest.T, left, right)[:, None]
    return lines


def ruled_rows(
    mask: np.ndarray, span: float, thickness: float, gap: int = LINE_GAP
) -> list[tuple[int, int]]:
    """The bands of rows (top, bottom exclusive) of ``mask`` (H, W) each inked across at least
    ``span`` of the width, at most ``thickness`` x H rows deep: rulings, not the thick bar of
    a digit written across the page. Gaps of ``gap`` pixels either side of a pixel of ink
    are bridged (of JPEG or noise)."""
    H, _ = mask.shape
    full = np.zeros(H + 2, dtype=bool)  # framed: bands start and end inside
    bridged = grow(mask, gap, axis=1)
    full[1:-1] = bridged.mean(axis=1) >= span
    edges = np.flatnonzero(full[1:] != full[:-1])
    return [(int(top), int(bottom)) for top, bottom in zip(edges[0::2], edges[1::2], strict=True)
            if bottom - top <= thickness * H]  # fmt: skip


def crossing(rest: np.ndarray, top: int, bottom: int) -> np.ndarray:
    """The columns (W,) where writing crosses the ruling in rows top..bottom: ink of ``rest``
    (H, W; the writing without any ruling) just above and just below it, give or take
    CROSSING_SLANT columns. There the ruling's pixels are the stroke's and stay (taken out,
    they cut every digit on the line in two, each half read as a line of its own)."""
    H, W = rest.shape
    if top < CROSSING_DEPTH or bottom + CROSSING_DEPTH > H:
        return np.zeros(W, dtype=bool)
    above = rest[top - CROSSING_DEPTH : top].all(axis=0)  # a stroke, not a speck beside it
    below = rest[bottom : bottom + CROSSING_DEPTH].all(axis=0)
    return grow(above, CROSSING_SLANT) & grow(below, CROSSING_SLANT)
