"""A printed background — a cheque's security pattern of fine curves, a form's tint, a grid of
printed lines — under the writing: lighter than the writing, and spread over the whole page.

Left in, its curves are read as digits (a cheque's "280.000=" read "2885555555"); found, it is
left out of the ink like the paper. Two classes of the ink above the paper's noise are split
where they differ most (Otsu's threshold); the lighter one is a pattern when it covers a tenth
of the page (PATTERN_AREA), its strokes are spread over most of it (PATTERN_COVER of a grid of
blocks) and reach its edges (EDGE_COVER of them), and the darker one is at least
PATTERN_CONTRAST times as strong. Faint digits beside dark ones are a lighter class too, but
they neither fill the page nor run off its edges.
"""

from __future__ import annotations

import cv2
import numpy as np

VISIBLE = 0.05  # ink above this may be pattern or writing; below it is paper
PATTERN_GRID = (3, 6)  # rows and columns of blocks a pattern must spread over ...
PATTERN_COVER = 0.7  # ... in this share of them at least
PATTERN_PIXELS = 0.02  # of a block's pixels: it holds the pattern
STROKE_PIXELS = 12  # a pattern is printed strokes: its connected pieces this large at least
# (grain and noise are specks)
PATTERN_AREA = 0.1  # of the page's pixels, at least, are the lighter class's: a background
# fills the page (the cheques: 0.12 to 0.67), faint digits among dark ones do not (at most 0.08
# on the development pages, close-cut lines of large digits)
PATTERN_CONTRAST = 2.0  # the writing's mean ink at least this many times the pattern's
EDGE_SEGMENTS = 16  # the page's edge in segments (six along each long side, two short) ...
EDGE_COVER = 0.12  # ... of which a printed background reaches this share: writing does not


def pattern_level(ink: np.ndarray) -> float:
    """The ink level (in ``ink``'s units, (h, w) in [0, 1]) up to which a printed background
    reaches — 0.0 when there is none."""
    visible = ink > VISIBLE
    if np.count_nonzero(visible) < 64:
        return 0.0
    levels = np.round(ink[visible] * 255).astype(np.uint8).reshape(-1, 1)
    split, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = split / 255
    lighter, darker = visible & (ink <= level), ink > level
    if lighter.mean() < PATTERN_AREA or not darker.any():
        return 0.0
    if ink[darker].mean() < PATTERN_CONTRAST * ink[lighter].mean():
        return 0.0
    rows, columns = PATTERN_GRID
    h, w = ink.shape
    if h < 2 * rows or w < 2 * columns:
        return 0.0
    _, labels, stats, _ = cv2.connectedComponentsWithStats(lighter.astype(np.uint8), 8)
    strokes = (stats[:, cv2.CC_STAT_AREA] >= STROKE_PIXELS)[labels] & lighter
    blocks = strokes[: h - h % rows, : w - w % columns].reshape(rows, h // rows, columns, -1)
    share = blocks.mean(axis=(1, 3))  # (rows, columns): each block's share of pattern pixels
    if np.mean(share >= PATTERN_PIXELS) < PATTERN_COVER or edge_cover(lighter) < EDGE_COVER:
        return 0.0
    return level


def edge_cover(mask: np.ndarray) -> float:
    """The share of the page's edge segments (a band an eighth of the shorter side deep) in
    which ``mask`` (h, w) holds PATTERN_PIXELS of the pixels."""
    h, w = mask.shape
    k = max(2, min(h, w) // 8)
    segments = [
        *np.array_split(mask[:k], 6, axis=1),
        *np.array_split(mask[-k:], 6, axis=1),
        *np.array_split(mask[:, :k], 2, axis=0),
        *np.array_split(mask[:, -k:], 2, axis=0),
    ]
    return float(np.mean([segment.mean() >= PATTERN_PIXELS for segment in segments]))
