"""A person's image of one digit -> the 28x28 input an MNIST network expects.

MNIST's own recipe, made robust to photos, scans and drawings:

1. grayscale in [0, 1]; ink made bright on dark whichever way round it was written;
2. the paper's uneven lighting removed (``vision.lighting``), so shadows, gradients and
   vignettes do not read as ink;
3. "no digit here" when nothing stands out of the paper's noise, or when "ink" covers most of
   the image;
4. specks dropped: ink components far smaller than the largest are paper noise;
5. cropped to the visible ink (soft stroke edges kept, as MNIST's are anti-aliased), the longer
   side scaled to 20 pixels (aspect ratio kept), and pasted into 28x28 with the centre of mass
   at the centre (14, 14);
6. optionally deskewed (the shear that makes the digit's main axis vertical).

Steps 1-4 work on a copy about ANALYSIS_SIDE pixels wide (``Ink.small``); only the digit's
own region is ever computed at full resolution. On a large image whose writing covers a small
part of it, that part is analysed again on its own (``writing_region``): a digit 28 px high on
a 4000 px photo is 2 pixels high on the copy of the whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from digitnet.vision.box import Box
from digitnet.vision.lighting import Ink, ink_of, noise_level, percentile, sample, shrink_factor
from digitnet.vision.loading import load_gray
from digitnet.vision.paper import writing_parts
from digitnet.vision.resample import bilinear

SIDE, BOX = 28, 20  # MNIST: a 20x20 digit centred by mass in a 28x28 field
ANALYSIS_SIDE = 256  # ink is found on a copy no larger than this
MIN_CONTRAST = 0.08  # weakest ink, as a fraction of black-to-white, that counts as writing
# (0.12 called a faint hair-line pencil digit blank: its thin strokes, blurred by the scan,
# peak under 0.12 at 15 % contrast; the noise margin below still bounds it on noisy paper)
NOISE_MARGIN = 6.0  # ink must stand this many noise deviations above the paper
MAX_INK_FRACTION = 0.7  # more "ink" than this is a texture, not a digit (thick digits fill half)
WRITING_SHARE = 0.35  # of the strongest ink: a single digit's strokes, without their halo
SIGNAL_PIXELS = 24  # the strongest ink is what this many pixels reach: not one speck's
SIGNAL_PIXELS_SHRUNK = 2  # ... on a shrunk image, SIGNAL_PIXELS over its scale, at least this
ZOOM_MARGIN = 0.5  # of the writing's longer side: paper kept around it when it is analysed alone
MIN_DIGIT_SIZE = 8  # pixels of the source: writing smaller both ways is a dot or a speck
# (MNIST's digits are 20 px on their longer side, USPS's and Semeion's 16; a scanner's dust,
# specks of 2-4 px, was read as 1s and 0s)
COLUMN_HEIGHT_SHARE = 0.5  # a column of writing at least this share of the tallest's height
VISIBLE_INK = 0.05  # of the strokes' strength: fainter pixels at a crop's edge are left out

NO_INK = "no ink: the image is blank or nothing stands out from the background"
SEVERAL_DIGITS = "several digits: digitnet read reads numbers"
TOO_SMALL = "no digit: only marks too small to be digits (dots, specks)"

Frame = tuple[float, float, float, float]  # x, y, width, height in an image's pixels


@dataclass
class Prepared:
    """The network's input for one image, or the reason there is none.

    image: (28, 28) float32 in [0, 1], ink bright on dark — or None with ``reason``.
    box: where the digit was found in the source image.
    """

    image: np.ndarray | None
    reason: str | None = None
    box: Box | None = None
    frame: Frame | None = None  # where the 28x28 field lies on the source: x, y, width, height
    note: str | None = None  # e.g. that the image holds several digits side by side

    def moved(self, dx: int, dy: int) -> Prepared:
        """The same input, found on an image whose top left lies at (dx, dy) of the source."""
        if self.box is None or self.frame is None:
            return self
        x, y, width, height = self.frame
        return replace(self, box=self.box.moved(dx, dy), frame=(x + dx, y + dy, width, height))


def writing_threshold(
    ink: np.ndarray, share: float = WRITING_SHARE, signal_pixels: int = SIGNAL_PIXELS
) -> float | None:
    """The ink level above which a pixel is writing — ``share`` of the strongest ink, and
    three times the noise — or None when nothing in ``ink`` (H, W) stands out from the
    paper: the strongest ink (what ``signal_pixels`` pixels reach) must reach MIN_CONTRAST
    and NOISE_MARGIN deviations of the paper's own noise (``pixel_noise``)."""
    signal = strongest(ink, signal_pixels)
    noise = pixel_noise(ink) if signal > 0 else 0.0
    if signal < MIN_CONTRAST or signal < NOISE_MARGIN * noise:
        return None
    return max(share * signal, 3 * noise)


def strongest(ink: np.ndarray, count: int) -> float:
    """The ink level that ``count`` pixels of ``ink`` reach (the count-th largest value). A
    percentile, as before (99.7), was the paper's level when a thin-pen digit covered less
    than 0.3 % of the image: a clear drawing called blank."""
    flat = ink.ravel()
    count = min(count, flat.size)
    top = flat[flat >= percentile(ink, 99)]  # holds the answer when it holds count values:
    if top.size < count:  # partitioning 1 % of the pixels, not all (1.3 ms on a canvas) —
        top = flat  # at least 1 %: a drawing's strokes are all at one level, none above it
    return float(np.partition(top, top.size - count)[top.size - count])


def pixel_noise(ink: np.ndarray) -> float:
    """The noise of one pixel, from the differences between horizontal neighbours (H, W): for
    noise of deviation s they deviate by s * sqrt(2), while shading and the strokes' edges are
    too few large differences to move a median. (The spread of "the paper", all below half the
    strongest ink, counted what the lighting map had not removed — on a page under
    LIGHTING_MIN_SIDE, any shading — and faint digits were called blank: a quarter of the
    faintest in bench_reading's development set.)"""
    differences = sample(np.diff(ink, axis=1))
    return noise_level(differences) / math.sqrt(2)


def find_digit(
    ink: Ink, signal_pixels: int = SIGNAL_PIXELS, min_size: float = MIN_DIGIT_SIZE
) -> tuple[Box | None, str | None, float, int]:
    """The digit's bounding box at full resolution, the ink level
    that counts as writing and how many columns of writing stand side by side (``columns``)
    — or a reason why there is no digit (``writing_threshold``, with ``signal_pixels``; no
    piece of writing ``min_size`` pixels tall or wide)."""
    small, scale = ink.small, ink.scale
    threshold = writing_threshold(small, signal_pixels=signal_pixels)
    if threshold is None:
        return None, NO_INK, 0, 0
    mask = small > threshold
    if np.count_nonzero(mask) > MAX_INK_FRACTION * mask.size:
        return None, "no digit: dark or textured everywhere, nothing digit-shaped", 0, 0
    parts = writing_parts(mask, small, ink.on_flat_paper)
    if isinstance(parts, str):
        return None, parts, 0, 0
    _, _, kept = parts
    if least_size(max(c.longer_side for c in kept), scale) < min_size:
        return None, TOO_SMALL, 0, 0
    top = min(c.top for c in kept)
    left = min(c.left for c in kept)
    bottom = max(c.bottom for c in kept)
    right = max(c.right for c in kept)
    # Back to full resolution, one analysis pixel of margin for the soft edges of strokes.
    H, W = ink.shape
    box = Box.from_edges(
        max(0, int((top - 1) * scale)),
        max(0, int((left - 1) * scale)),
        min(H, int(np.ceil((bottom + 1) * scale))),
        min(W, int(np.ceil((right + 1) * scale))),
    )
    return box, None, threshold, columns(kept)


def least_size(pixels: int, scale: float) -> float:
    """How long, at least, in the image's pixels, is writing ``pixels`` long on its copy
    shrunk ``scale`` times (``lighting.shrink``: each block its strongest ink, so a mark
    reaches into the blocks at both its ends)."""
    return pixels if scale == 1 else max(pixels - 2, 0) * scale + 2


def zoom_region(ink: Ink, writing: Box, analysis_side: int) -> Box | None:
    """The part of a large image worth analysing on its own: the part ``around`` its
    ``writing`` (in the image's pixels), when it would be shrunk less for analysis than the
    whole image was (``ink``, at ``analysis_side``) — or None."""
    region = around(writing, ink.shape)
    return region if closer(region, ink, analysis_side) else None


def around(writing: Box, shape: tuple[int, int], rows: tuple[int, int] | None = None) -> Box:
    """``writing`` with a margin of ZOOM_MARGIN of its longer side, within an image of
    ``shape`` (H, W) — and within ``rows`` (top, bottom) when given."""
    margin = ZOOM_MARGIN * max(writing.height, writing.width)
    top, bottom = rows if rows is not None else (0, shape[0])
    return Box.from_edges(
        max(top, int(writing.y - margin)),
        max(0, int(writing.x - margin)),
        min(bottom, int(np.ceil(writing.bottom + margin))),
        min(shape[1], int(np.ceil(writing.right + margin))),
    )


def closer(region: Box, ink: Ink, analysis_side: int) -> bool:
    """Whether ``region`` of the image of ``ink`` would be shrunk less than the whole image
    was, analysed at ``analysis_side``."""
    return shrink_factor((region.height, region.width), analysis_side) < ink.scale


def small_writing_signal(ink: Ink) -> int:
    """How many pixels the strongest ink must cover to be writing, on an image shrunk for
    analysis, when looking for where its writing is: SIGNAL_PIXELS over the scale (a digit's
    strokes are lines, as many pixels long as the scale leaves them) — a digit 28 px high on
    a 4000 px photo is 2 pixels high when shrunk to ANALYSIS_SIDE."""
    return max(SIGNAL_PIXELS_SHRUNK, round(SIGNAL_PIXELS / ink.scale))


def columns(found: list) -> int:
    """How many columns of writing stand side by side: components whose horizontal extents
    overlap are one column (a digit's strokes overlap, those of neighbouring digits do not),
    and only columns at least COLUMN_HEIGHT_SHARE as tall as the tallest count (not a dot)."""
    spans: list[list[int]] = []  # [left, right, top, bottom] of each column, left to right
    for c in sorted(found, key=lambda c: c.left):
        if spans and c.left < spans[-1][1]:
            last = spans[-1]
            last[1], last[2], last[3] = (
                max(last[1], c.right),
                min(last[2], c.top),
                max(last[3], c.bottom),
            )
        else:
            spans.append([c.left, c.right, c.top, c.bottom])
    tallest = max((bottom - top for _, _, top, bottom in spans), default=0)
    return sum(bottom - top >= COLUMN_HEIGHT_SHARE * tallest for _, _, top, bottom in spans)


def mass_centred_position(digit: np.ndarray) -> tuple[int, int]:
    """Where (top, left) to paste a digit (h, w <= 20) in 28x28 so that its centre of mass
    falls on pixel (14, 14), to the nearest pixel — where MNIST's digits have theirs (mean
    14.0 on both axes)."""
    h, w = digit.shape
    by_row, by_column = digit.sum(axis=1), digit.sum(axis=0)  # (h,), (w,)
    mass = by_row.sum()
    com_r = by_row @ np.arange(h) / mass if mass else (h - 1) / 2
    com_c = by_column @ np.arange(w) / mass if mass else (w - 1) / 2
    top = min(max(round(SIDE / 2 - com_r), 0), SIDE - h)
    left = min(max(round(SIDE / 2 - com_c), 0), SIDE - w)
    return int(top), int(left)


def paste(digit: np.ndarray, position: tuple[int, int]) -> np.ndarray:
    top, left = position
    h, w = digit.shape
    out = np.zeros((SIDE, SIDE), np.float32)
    out[top : top + h, left : left + w] = digit
    return out


def deskew(image: np.ndarray) -> np.ndarray:
    """Shear a 28x28 digit so that its main axis is vertical (second moments), about its
    centre of mass."""
    mass = image.sum()
    if mass <= 0:
        return image
    rows, cols = np.indices(image.shape, dtype=np.float32)
    com_r, com_c = (rows * image).sum() / mass, (cols * image).sum() / mass
    var_r = ((rows - com_r) ** 2 * image).sum() / mass
    cov = ((rows - com_r) * (cols - com_c) * image).sum() / mass
    if var_r < 1e-6:
        return image
    skew = cov / var_r  # columns drift by `skew` per row
    sample_cols = cols + skew * (rows - com_r)
    return np.clip(bilinear(image[None], rows[None], sample_cols[None])[0], 0, 1)


def place_digit(crop: np.ndarray, threshold: float) -> tuple[np.ndarray, Frame]:
    """An ink crop (h, w) around one digit -> 28x28 (``strokes_of`` it, then
    ``digit_picture``); and where the 28x28 field lies on ``crop``: (x, y, width, height) in
    the crop's pixels — to draw what is computed on the 28x28 (an explanation) back onto the
    image."""
    (y0, x0), strokes = strokes_of(crop, threshold)
    image, (x, y, width, height) = digit_picture(strokes)
    return image, (float(x0 + x), float(y0 + y), width, height)


def digit_picture(strokes: np.ndarray) -> tuple[np.ndarray, Frame]:
    """A digit's strokes (h, w) (``strokes_of``) -> 28x28 as MNIST's: soft edges kept (MNIST's
    digits are anti-aliased), the longer side scaled to 20 pixels, centred by mass; and where
    the 28x28 field lies on the strokes, in their pixels."""
    digit, (sx, sy) = fitted(strokes, (BOX, BOX))  # sx, sy: 28x28 pixels per strokes pixel
    top, left = mass_centred_position(digit)
    return paste(digit, (top, left)), (-left / sx, -top / sy, SIDE / sx, SIDE / sy)


def strokes_of(crop: np.ndarray, threshold: float) -> tuple[tuple[int, int], np.ndarray]:
    """The strokes of an ink crop (h, w) in [0, 1] brought to 1 (the crop over the 90th
    percentile of its writing, pixels above ``threshold``) and cut to the visible ink, float32;
    and where they start on the crop (row, column)."""
    writing = crop > threshold
    strong = percentile(crop[writing], 90) if writing.any() else 1.0
    strokes = (crop / max(strong, 1e-6)).astype(np.float32, copy=False)
    np.minimum(strokes, 1, out=strokes)  # ink is >= 0 already
    return crop_to_ink(strokes, VISIBLE_INK)


def fitted(strokes: np.ndarray, fit: tuple[int, int]) -> tuple[np.ndarray, tuple[float, float]]:
    """``strokes`` (h, w) scaled, their shape kept, to fit ``fit`` (height, width) pixels, peak
    1; and the scale along x and y."""
    h, w = strokes.shape
    scale = min(fit[0] / h, fit[1] / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    picture = np.asarray(Image.fromarray(strokes, "F").resize(size, resample), dtype=np.float32)
    peak = float(picture.max())
    if peak > 0:
        picture = np.minimum(picture / peak, 1)  # >= 0: a mean of ink
    return picture, (size[0] / w, size[1] / h)


def crop_to_ink(image: np.ndarray, level: float) -> tuple[tuple[int, int], np.ndarray]:
    """``image`` without the rows and columns at its edges that hold nothing above ``level``,
    and the (row, column) where the rest starts."""
    visible = image > level
    rows = np.flatnonzero(visible.any(axis=1))
    if rows.size == 0:
        return (0, 0), image
    cols = np.flatnonzero(visible.any(axis=0))
    return (rows[0], cols[0]), image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def prepared_input(image: np.ndarray) -> Prepared:
    """An input already in MNIST form, (28, 28) in [0, 1] with the ink bright, taken as it is —
    or no digit when no pixel reaches MIN_CONTRAST."""
    if float(image.max()) < MIN_CONTRAST:
        return Prepared(None, NO_INK)
    return Prepared(image)


def prepare(source: Any, deskew_digit: bool = False) -> Prepared:
    """Turn one image (path, bytes, PIL image or array) into the network's 28x28 input. On a
    large image whose writing covers a small part of it, that part is analysed on its own
    (``writing_region``)."""
    gray = load_gray(source)  # (H, W) in [0, 1]
    ink = ink_of(gray, ANALYSIS_SIDE)
    region = writing_region(ink)
    if region is None:
        return prepared_from(ink, deskew_digit)
    zoomed = prepared_from(ink_of(region.of(gray), ANALYSIS_SIDE), deskew_digit)
    if zoomed.image is not None:
        return zoomed.moved(region.x, region.y)
    whole = prepared_from(ink, deskew_digit)
    return whole if whole.image is not None else zoomed  # the closer look's reason


def writing_region(ink: Ink) -> Box | None:
    """The part of a large image to analyse on its own (``zoom_region``) — where its digit
    is, found with the signal a small digit leaves (``small_writing_signal``) — or None."""
    if ink.scale == 1:
        return None
    writing, *_ = find_digit(ink, small_writing_signal(ink), min_size=0)  # told apart later
    return None if writing is None else zoom_region(ink, writing, ANALYSIS_SIDE)


def prepared_from(ink: Ink, deskew_digit: bool) -> Prepared:
    """``prepare`` on an image's ink."""
    box, reason, threshold, side_by_side = find_digit(ink)
    if box is None:
        return Prepared(None, reason)
    image, (x, y, width, height) = place_digit(ink.region(box), threshold)
    if deskew_digit:
        image = deskew(image)
    frame = (box.x + x, box.y + y, width, height)
    note = SEVERAL_DIGITS if side_by_side > 1 else None
    return Prepared(image, None, box, frame, note)
