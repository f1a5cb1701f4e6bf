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
from digitnet.vision.rules import line_pixels, ruled_rows, without_rules

SPECK_FRACTION = 0.08  # components smaller than this share of the largest are specks ...
SPECK_SIDE = 0.25  # ... unless this share of the tallest one's height long: a stroke, however
# thin — a hair-line or faint digit beside a marker one has a tenth of its ink (0.2-0.3 read
# the same development pages; 0.15 and 0.4 fewer)
LINE_SPAN = 0.85  # of the page's width (height): a row (column) inked this far is a ruling
LINE_THICKNESS = 0.03  # of the page's height (width): a ruling is thin, a digit's stroke
# across a tight crop is not (USPS's 1s fill their 16x16 images, 2-3 px wide)
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
            or max(c.bottom - c.top, c.right - c.left) >= SPECK_SIDE * tallest]  # fmt: skip
    return not_writing(kept, ink, writing) or (writing, labels, kept)


def without_paper_marks(
    writing: np.ndarray,
) -> tuple[np.ndarray, tuple[np.ndarray, list[Component]] | None]:
    """``writing`` (H, W) bool without the paper's lines and the bands along its edges; and
    its ``label``-ing, when no band was taken out after it was labelled (else None)."""
    writing = without_paper_lines(writing)
    labels, found = label(writing)
    bands = [c for c in found if along_an_edge(c, labels)]
    for c in bands:
        box = labels[c.top : c.bottom, c.left : c.right]
        writing[c.top : c.bottom, c.left : c.right] &= box != c.label
    return writing, None if bands else (labels, found)


def without_paper_lines(writing: np.ndarray) -> np.ndarray:
    """``writing`` (H, W) bool without the paper's straight lines: thin bands of rows inked
    across LINE_SPAN of the width, thin bands of columns inked across LINE_SPAN of the
    height (counted, not one run: a ruling is broken here and there by noise or JPEG) —
    except where writing crosses them."""
    across = ruled_rows(writing, LINE_SPAN, LINE_THICKNESS)
    down = ruled_rows(writing.T, LINE_SPAN, LINE_THICKNESS)
    return writing & ~line_pixels(writing, across, down)


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
