"""What on a page is the paper's and not writing: ruled, squared and margin lines, folds, the
dark band a scanner leaves at an edge, dots of a dot grid, salt-and-pepper specks, smudges.

Every function works on the writing mask at analysis scale (``lighting.Ink.small`` above
its threshold). The paper's lines are removed before the digits are looked for, so a digit
written on ruled paper is still read; what remains of a page without writing is either
nothing, or specks and smudges that are given a reason instead of a digit.
"""

from __future__ import annotations

import cv2
import numpy as np

from digitnet.vision.components import Component, label
from digitnet.vision.filters import grow
from digitnet.vision.rules import line_pixels, ruled_rows, without_rules

SPECK_FRACTION = 0.08  # components smaller than this share of the largest are specks ...
SPECK_SIDE = 0.25  # ... unless this share of the tallest one's height long: a stroke, however
# thin — a hair-line or faint digit beside a marker one has a tenth of its ink (0.2-0.3 read
# the same development pages; 0.15 and 0.4 fewer)
LINE_SPAN = 0.85  # of the page's width (height): a row (column) inked this far is a ruling
LINE_THICKNESS = 0.03  # of the page's height (width): a ruling is thin, a digit's stroke
# across a tight crop is not (USPS's 1s fill their 16x16 images, 2-3 px wide)
LONG_LINE = 0.5  # of the page's height (width): an upright (flat) line this long ...
SLANT = 0.015  # of its length: a table's line wanders this far across it (a page 1° askew)
TABLE_THICKNESS = 0.1  # of the page across: a table's line, or the shadow of an edge
LINE_SHARE = 0.5  # of the ink in such a band: the lines' own, not digits' it cuts through
TABLE_GAP = 1  # pixels bridged along a table's line (more joins the specks beside a stroke)
LONGER = 3  # ... and this many times as long as the tallest (widest) piece of writing
SLIM = 0.12  # of its length: a line of the paper is no thicker on average ...
ASKEW = 0.2  # ... and spans no more than this across it
FRAMING = 0.9  # of a piece's ink: this much along the sides of its box is rules joined
BESIDE = 0.06  # of such a line's length: less is no writing beside it but dust (a register's
# row number is a tenth of its crop's height, 0.098 of the page edge's rim beside it: at 0.1,
# 1,525 registers read 0.452 exact, at 0.06 0.578)
TRACED = 0.3  # of the page's other rows: a faint rule's trace runs along this many ...
TRACE = 0.3  # ... at this share of its stroke's median ink, and at least ...
TRACE_FLOOR = 0.02  # ... this much of full contrast
EDGE_SPAN = 0.85  # of an edge's length: ink along this much of it is the paper's edge
EDGE_DEPTH = 0.1  # of the page across: ... if it reaches no further in than this
TEXTURE_PARTS = 50  # more pieces of ink than this, all tiny: a texture, not writing
TINY = 0.03  # of the page's height: the median piece of a texture is shorter
SMUDGE_FILL = 0.75  # of its box: a round piece of ink this solid, and soft — under
SMUDGE_CORE = 0.6  # this share of it within 70 % of its strongest ink — is a smudge (bold
# digits filling their box as much are saturated: 0.78-0.89 of them is core)
SMUDGE_STROKE = 0.7  # of its longer side: a piece whose broadest stroke is this wide is as
# solid (a soft blob's ragged edge fills 0.6 of its box; 2,208 development digits written
# alone, marker pens too: at most 0.56, 99.9 % under 0.55)

LINES = "no digit: only the paper's lines (ruled, squared, a margin, a fold or an edge)"
RULES = "no digit: only straight lines (a dash, a rule or a frame)"
TEXTURE = "no digit: only specks or dots, no strokes"
SMUDGE = "no digit: a smudge, no strokes"


def writing_parts(
    writing: np.ndarray, ink: np.ndarray, flat: bool
) -> tuple[np.ndarray, np.ndarray, list[Component]] | str:
    """The writing (H, W) bool without the paper's marks (none on ``flat`` paper, drawn on a
    computer) and the rules and frames drawn with it (``rules``), its label image (H, W) int32
    and its connected parts but the specks — or why none of it is writing. ``ink`` (H, W):
    the ink strength the writing was thresholded from."""
    labelled = None
    if not flat:
        writing, labelled = without_paper_marks(writing)
    if not writing.any():
        return LINES
    labels, found = labelled or label(writing)
    lined = without_rules(writing, labels, found)
    if lined is not writing:  # lines drawn with the writing taken out
        if not lined.any():
            return RULES
        writing = lined
        labels, found = label(writing)
    largest = max(c.area for c in found)
    tallest = max(c.bottom - c.top for c in found)
    kept = [c for c in found if c.area >= SPECK_FRACTION * largest
            or c.longer_side >= SPECK_SIDE * tallest]  # fmt: skip
    if not flat:
        kept = [c for c in kept if not piece_of_a_faint_rule(c, ink, writing)] or kept
    return not_writing(kept, ink, writing) or (writing, labels, kept)


def piece_of_a_faint_rule(c: Component, ink: np.ndarray, writing: np.ndarray) -> bool:
    """Whether component ``c``, an upright ``straight`` stroke, is what the threshold left of
    a faint upright rule: along at least TRACED of the page's other rows, its own columns
    (and one either side) hold ink that is not writing — below the threshold, at least TRACE
    of the stroke's own median ink. A 1 has paper above and below it; a digit of another line
    above it is writing, not counted. (A register's column rules, broken into pieces, were
    read as 1s beside the row's number: "36" read "136", "43" "431".) ``ink`` (H, W): the
    ink strength; ``writing`` (H, W) bool: what is above the threshold."""
    h, w = c.bottom - c.top, c.right - c.left
    if not (straight(c) and h > w):
        return False
    columns = slice(max(0, c.left - 1), c.right + 1)
    own = ink[c.top : c.bottom, columns][writing[c.top : c.bottom, columns]]
    level = max(TRACE * float(np.median(own)), TRACE_FLOOR) if own.size else 1.0
    faint = ((ink[:, columns] > level) & ~writing[:, columns]).any(axis=1)  # (H,)
    others = np.r_[faint[: c.top], faint[c.bottom :]]
    return others.size > 0 and float(others.mean()) >= TRACED


def without_paper_marks(
    writing: np.ndarray,
) -> tuple[np.ndarray, tuple[np.ndarray, list[Component]] | None]:
    """``writing`` (H, W) bool without the paper's lines and the bands along its edges; and
    its ``label``-ing, when no band was taken out after it was labelled (else None)."""
    writing = without_paper_lines(writing)
    labels, found = label(writing)
    bands = [c for c in found if along_an_edge(c, labels)]
    rulings = [c for c in found if c not in bands and ruling_piece(c, labels)]
    others = [c for c in found if c not in bands + rulings]
    bands += [c for c in rulings if longer_than_the_writing(c, others, labels.shape)]
    for c in bands:
        box = labels[c.top : c.bottom, c.left : c.right]
        writing[c.top : c.bottom, c.left : c.right] &= box != c.label
    without_lines = without_long_lines(writing, None if bands else (labels, found))
    if bands or without_lines is not writing:
        return without_lines, None
    return writing, (labels, found)


def without_paper_lines(writing: np.ndarray) -> np.ndarray:
    """``writing`` (H, W) bool without the paper's straight lines: thin bands of rows inked
    across LINE_SPAN of the width, thin bands of columns inked across LINE_SPAN of the
    height (counted, not one run: a ruling is broken here and there by noise or JPEG) —
    except where writing crosses them."""
    across = ruled_rows(writing, LINE_SPAN, LINE_THICKNESS)
    down = ruled_rows(writing.T, LINE_SPAN, LINE_THICKNESS)
    return writing & ~line_pixels(writing, across, down)


def without_long_lines(
    writing: np.ndarray, labelled: tuple[np.ndarray, list[Component]] | None = None
) -> np.ndarray:
    """``writing`` (H, W) bool without the lines of a table drawn across the page, upright or
    flat — inked, in bands a few pixels wide (a rule on a slant of a pixel or two), along
    LONG_LINE of the page and LONGER than any piece of writing that is not itself a line
    (``slim``) — but where writing crosses them. A cell's rules and frame, broken by noise or
    joined to each other, and the shadow along the page's edge are such lines; the paper's
    rulings (``without_paper_lines``) are inked along more of the page, and thinner. Writing
    that is all lines (a 1 alone in a tight crop, a dash) is left as it is. ``labelled``: its
    ``label``-ing, when the caller has it."""
    if not writing.any():
        return writing
    labels, found = labelled or label(writing)
    pieces = [c for c in found if not slim(c)]
    if not pieces:
        return writing
    bands, shortest = [], max(writing.shape)  # columns down, rows across; a line's length
    for axis, side in ((0, writing.shape[0]), (1, writing.shape[1])):
        longest = max((c.bottom - c.top) if axis == 0 else (c.right - c.left) for c in pieces)
        span = max(LONG_LINE, LONGER * longest / side)
        if span >= LINE_SPAN:  # the writing as long as the page: a tight crop of it
            bands.append([])
            continue
        reach = max(1, round(SLANT * side))  # pixels either way
        slanted = grow(writing, reach, axis=1 - axis)  # a line's neighbouring columns
        lines, turned = (slanted.T, labels.T) if axis == 0 else (slanted, labels)  # bands: rows
        found_bands = widened(ruled_rows(lines, span, TABLE_THICKNESS, TABLE_GAP), reach + 1, side)
        found_bands = [band for band in found_bands if of_lines(band, turned, found, axis)]
        bands.append(found_bands)
        shortest = min(shortest, span * side) if found_bands else shortest
    down, across = bands
    beside = [c for c in pieces if not within(c, down, across)]
    if not any(c.longer_side >= BESIDE * shortest for c in beside):
        return writing  # only the lines' own pieces and dust: a 1 written in pieces, a dash
    return writing & ~line_pixels(writing, across, down)


def of_lines(band: tuple[int, int], labels: np.ndarray, found: list[Component], axis: int) -> bool:
    """Whether the ink in ``band`` (rows top..bottom of ``labels``, (H, W), the label image
    turned so that the band is rows) is mostly that of lines: pieces ``slim``, or within the
    band. The tops of digits side by side ink as much of a row, but they are the digits'."""
    top, bottom = band
    inside = labels[top:bottom]
    counts = np.bincount(inside.ravel(), minlength=len(found) + 1)
    of_line = 0
    for c in found:
        low, high = (c.left, c.right) if axis == 0 else (c.top, c.bottom)
        if counts[c.label] and (slim(c) or (top <= low and high <= bottom)):
            of_line += counts[c.label]
    return of_line >= LINE_SHARE * counts[1:].sum()


def within(c: Component, down: list[tuple[int, int]], across: list[tuple[int, int]]) -> bool:
    """Whether component ``c`` lies within one of the bands of columns ``down`` or of rows
    ``across``: a piece of a line found there."""
    return any(left <= c.left and c.right <= right for left, right in down) or any(
        top <= c.top and c.bottom <= bottom for top, bottom in across
    )


def widened(bands: list[tuple[int, int]], reach: int, side: int) -> list[tuple[int, int]]:
    """Bands of rows (top, bottom exclusive) each ``reach`` wider either way, within 0..side,
    those that then touch or overlap made one: a line that wanders by a pixel is one band."""
    out: list[tuple[int, int]] = []
    for top, bottom in bands:
        top, bottom = max(0, top - reach), min(side, bottom + reach)
        if out and top <= out[-1][1]:
            out[-1] = (out[-1][0], bottom)
        else:
            out.append((top, bottom))
    return out


def straight(c: Component) -> bool:
    """Whether component ``c`` is a straight line or a piece of one: ``slim``, and no wider
    across than ASKEW of its length (a number written thin and joined is slim too)."""
    return slim(c) and min(c.bottom - c.top, c.right - c.left) <= ASKEW * c.longer_side


def slim(c: Component) -> bool:
    """Whether component ``c`` is a line or a piece of one: on average no thicker than SLIM
    of its length."""
    return c.area <= SLIM * c.longer_side**2


def ruling_piece(c: Component, labels: np.ndarray) -> bool:
    """Whether component ``c`` of the label image ``labels`` (H, W) may be a line of the paper
    drawn across it on a slant (a table's rule on a page scanned askew, so no row or column
    holds it) or the rim of the dark beyond the page's edge: from one edge of the page to the
    other, no wider across than ASKEW of its length — or rules joined along the sides of their
    box (``framing``)."""
    H, W = labels.shape
    h, w = c.bottom - c.top, c.right - c.left
    if c.top == 0 and c.bottom == H:
        return w <= ASKEW * h or framing(c, labels)
    return c.left == 0 and c.right == W and (h <= ASKEW * w or framing(c, labels))


def framing(c: Component, labels: np.ndarray) -> bool:
    """Whether component ``c`` of the label image ``labels`` lies along the sides of its own
    box: FRAMING of its ink within ASKEW / 2 of the box's shorter side from one of them — the
    rules of a cell joined into one piece, open on a side (a register's page-edge rim, the
    footer's rule and a column's rule: a "U" as tall as the crop). A digit's strokes cross
    its box."""
    own = labels[c.top : c.bottom, c.left : c.right] == c.label
    near = max(1, round(ASKEW / 2 * min(own.shape)))
    inner = own[near:-near, near:-near]
    return inner.sum() <= (1 - FRAMING) * own.sum()


def longer_than_the_writing(line: Component, others: list[Component], shape) -> bool:
    """Whether ``line``, a ``ruling_piece`` of a page ``shape``, is the paper's: there is
    writing beside it — one of ``others``, not itself a line (``straight``), at least BESIDE as
    long as it: less is dust, or a dot beside a 1 — and it is LONGER times as long as any
    such writing along it. A 1 in a tight crop, alone or beside other digits, spans the page
    too. What spans the page as the line does, or is slim and reaches LONG_LINE along it or
    the page's edge, is no writing beside it but a cell's frame (a register's rules joined
    and cut by the crop), or a digit of the same tight crop."""
    upright = line.top == 0 and line.bottom == shape[0]

    def along(c: Component) -> int:
        return c.bottom - c.top if upright else c.right - c.left

    side = shape[0 if upright else 1]

    def frame(c: Component) -> bool:  # a cell's rules, joined and cut by the page's edge
        edge = c.top == 0 or c.left == 0 or c.bottom == shape[0] or c.right == shape[1]
        return along(c) >= side or (slim(c) and (edge or along(c) >= LONG_LINE * side))

    beside = [along(c) for c in others if not straight(c) and not frame(c)
              and c.longer_side >= BESIDE * along(line)]  # fmt: skip
    return bool(beside) and along(line) >= LONGER * max(beside)


def along_an_edge(c: Component, labels: np.ndarray) -> bool:
    """Whether component ``c`` of the label image ``labels`` (H, W) is a band along one of the
    page's edges — along EDGE_SPAN of its length, at most EDGE_DEPTH of the page deep: a
    scanner's dark band or the page's own border, not a digit whose bar touches the edge of
    a tight crop (Semeion's 16x16 digits)."""
    H, W = labels.shape
    own = labels[c.top : c.bottom, c.left : c.right] == c.label
    if c.right - c.left <= EDGE_DEPTH * W:
        if c.left == 0 and np.count_nonzero(own[:, 0]) >= EDGE_SPAN * H:
            return True
        if c.right == W and np.count_nonzero(own[:, -1]) >= EDGE_SPAN * H:
            return True
    if c.bottom - c.top <= EDGE_DEPTH * H:
        if c.top == 0 and np.count_nonzero(own[0]) >= EDGE_SPAN * W:
            return True
        if c.bottom == H and np.count_nonzero(own[-1]) >= EDGE_SPAN * W:
            return True
    return False


def not_writing(kept: list[Component], ink: np.ndarray, writing: np.ndarray) -> str | None:
    """Why the pieces of writing ``kept`` (specks already dropped) are not writing — a
    texture of tiny pieces or a single smudge — or None. ``ink`` (H, W): the ink strength,
    ``writing`` (H, W) bool: what is above the threshold."""
    height = writing.shape[0]
    if len(kept) > TEXTURE_PARTS:
        heights = sorted(c.bottom - c.top for c in kept)
        if heights[len(heights) // 2] < TINY * height:
            return TEXTURE
    if len(kept) == 1:
        (c,) = kept
        h, w = c.bottom - c.top, c.right - c.left
        box = (slice(c.top, c.bottom), slice(c.left, c.right))
        solid = c.area >= SMUDGE_FILL * h * w or broadest_stroke(
            writing[box]
        ) >= SMUDGE_STROKE * max(h, w)
        if solid and 0.6 <= h / w <= 1.6 and h >= 4:
            inside = ink[box][writing[box]]
            if np.mean(inside > 0.7 * inside.max()) < SMUDGE_CORE:
                return SMUDGE
    return None


def broadest_stroke(mask: np.ndarray) -> float:
    """The width of the broadest stroke of ``mask`` (h, w) bool: twice the greatest distance
    from a pixel of it to the paper (OpenCV's distance transform, the mask framed by paper)."""
    framed = np.pad(mask, 1).astype(np.uint8)
    return 2 * float(cv2.distanceTransform(framed, cv2.DIST_L2, 3).max())
