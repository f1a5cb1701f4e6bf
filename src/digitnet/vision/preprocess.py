"""A person's image of one digit -> the 28x28 input an MNIST network expects.

MNIST's own recipe, made robust to photos, scans and drawings:

1. grayscale in [0, 1]; ink made bright on dark whichever way round it was written;
2. the paper's uneven lighting removed: a smooth map of the paper's level (an opening wider
   than any ink, and a quadratic fitted to the paper; on an image under LIGHTING_MIN_SIDE, a
   plane fitted to its border) is subtracted, so shadows, gradients and vignettes do not read
   as ink — unless the paper is exactly one value all round and on most
   of the image (a drawing made on a computer, such as the web page's canvas), which has no
   lighting to remove;
3. "no digit here" when nothing stands out of the paper's noise, or when "ink" covers most of
   the image;
4. specks dropped: ink components far smaller than the largest are paper noise;
5. cropped to the visible ink (soft stroke edges kept, as MNIST's are anti-aliased), the longer
   side scaled to 20 pixels (aspect ratio kept), and pasted into 28x28 with the centre of mass
   at the centre (14, 14);
6. optionally deskewed (the shear that makes the digit's main axis vertical).

Steps 1-4 work on a copy about ANALYSIS_SIDE pixels wide (``Ink.small``); only the digit's
own region is ever computed at full resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from digitnet.augment import bilinear
from digitnet.vision.filters import square_filter
from digitnet.vision.loading import load_gray
from digitnet.vision.paper import writing_parts

SIDE, BOX = 28, 20  # MNIST: a 20x20 digit centred by mass in a 28x28 field
ANALYSIS_SIDE = 256  # ink is found on a copy no larger than this
MIN_CONTRAST = 0.08  # weakest ink, as a fraction of black-to-white, that counts as writing
# (0.12 called a faint hair-line pencil digit blank: its thin strokes, blurred by the scan,
# peak under 0.12 at 15 % contrast; the noise margin below still bounds it on noisy paper)
NOISE_MARGIN = 6.0  # ink must stand this many noise deviations above the paper
MAX_INK_FRACTION = 0.7  # more "ink" than this is a texture, not a digit (thick digits fill half)

Frame = tuple[float, float, float, float]  # x, y, width, height in an image's pixels


@dataclass
class Prepared:
    """The network's input for one image, or the reason there is none.

    image: (28, 28) float32 in [0, 1], ink bright on dark — or None with ``reason``.
    box: where the digit was found in the source image, (x, y, width, height) in pixels.
    """

    image: np.ndarray | None
    reason: str | None = None
    box: tuple[int, int, int, int] | None = None
    frame: Frame | None = None  # where the 28x28 field lies on the source: x, y, width, height
    note: str | None = None  # e.g. that the image holds several digits side by side


def paper_is_light(gray: np.ndarray) -> bool:
    """Which way round the writing is: the image's border ring is paper far more often than
    ink (even a digit that touches the edges covers little of them)."""
    H, W = gray.shape
    k = max(1, min(H, W) // 32)
    ring = np.concatenate([gray[:k].ravel(), gray[-k:].ravel(), gray[:, :k].ravel(),
                           gray[:, -k:].ravel()])  # fmt: skip
    return percentile(ring, 50) >= 0.5


@dataclass
class Ink:
    """Ink strength of an image, bright where the writing is and ~0 on the paper: ``small``,
    an area-averaged copy about ``analysis_side`` pixels on its longer side (``shrink``), for
    finding things; ``region`` at full resolution, for the parts cut out. Nothing is computed at
    full resolution over the whole image (a 12-megapixel photo costs what its crop costs).

    gray: (H, W) in [0, 1]; scale: full-resolution pixels per ``small`` pixel.
    """

    gray: np.ndarray
    light_paper: bool
    small: np.ndarray
    scale: float
    level: np.ndarray | float  # the paper's level: a lighting map (see ``background``) or one

    @property
    def shape(self) -> tuple[int, int]:
        return self.gray.shape

    @property
    def on_flat_paper(self) -> bool:
        """Drawn on a computer: paper of exactly one value (``flat_paper``), no rulings."""
        return isinstance(self.level, float)

    def region(self, top: int, left: int, bottom: int, right: int) -> np.ndarray:
        """Full-resolution ink in rows top..bottom, columns left..right (exclusive)."""
        part = self.gray[top:bottom, left:right]
        raw = 1 - part if self.light_paper else part
        if isinstance(self.level, float):
            return np.clip(raw - self.level, 0, 1)
        H, W = self.shape
        h, w = self.level.shape
        box = (left * w / W, top * h / H, right * w / W, bottom * h / H)  # in map pixels
        size = (right - left, bottom - top)
        level = Image.fromarray(self.level, "F").resize(size, Image.BILINEAR, box=box)
        return np.clip(raw - np.asarray(level), 0, 1)


def ink_of(gray: np.ndarray, analysis_side: int) -> Ink:
    """The ink of a grayscale image (H, W) in [0, 1], whichever way round it was written."""
    light = paper_is_light(gray)
    small_gray, scale = shrink(gray, analysis_side, light)
    raw = 1 - small_gray if light else small_gray
    paper = flat_paper(gray)
    if paper is not None:  # drawn on a computer: the paper's level, exactly
        level = 1 - paper if light else paper
    elif min(gray.shape) < LIGHTING_MIN_SIDE:  # too small for an opening: the border's plane
        level = paper_surface(raw, ring=max(1, min(raw.shape) // 16))  # at the analysis scale
    else:
        level = background(raw)  # at BACKGROUND_SIDE
        h, w = raw.shape
        at_small = np.asarray(Image.fromarray(level, "F").resize((w, h), Image.BILINEAR))
        return Ink(gray, light, np.clip(raw - at_small, 0, 1), scale, level)
    return Ink(gray, light, np.clip(raw - level, 0, 1), scale, level)


def flat_paper(gray: np.ndarray) -> float | None:
    """The paper's value when it is exactly one value, as in a drawing made on a computer (no
    camera or scanner leaves a whole border and most of an image at one level): then there is
    no lighting to remove. None otherwise."""
    value = gray[0, 0]
    for edge in (gray[0], gray[-1], gray[:, 0], gray[:, -1]):
        if not (edge == value).all():
            return None
    values = sample(gray)
    if np.count_nonzero(values == value) < FLAT_PAPER_FRACTION * values.size:
        return None
    return float(value)


FLAT_PAPER_FRACTION = 0.5  # of the pixels, at least, for paper of exactly one value
LIGHTING_MIN_SIDE = 128  # smaller images get the border's plane, larger a lighting map


BACKGROUND_SIDE = 64  # the lighting map is estimated with this many pixels on the shorter side


def background(ink: np.ndarray) -> np.ndarray:
    """A smooth estimate of the paper's level for uneven lighting, as a map about
    BACKGROUND_SIDE pixels high (lighting varies slowly) over the raw ink ``ink`` (h, w). Two
    estimates, each blind to the writing, and the higher one kept at each place:

    - a grey-level opening (minimum, then maximum filter) with a window a third of the map
      wide, blurred: local shading, such as a shadow across the page. The window must be wider
      than any blob of ink (a bold digit that fills the frame has blobs a fifth as wide; a
      window of a sixth ate into them and changed the verdict on 0.45 % of MNIST training
      digits shown at 200-400 px);
    - a quadratic surface fitted to the paper alone (``paper_surface``): lighting that curves
      faster than that window can follow, such as a vignette's corners."""
    h, w = ink.shape
    factor = max(1.0, min(h, w) / BACKGROUND_SIDE)
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    small = np.asarray(Image.fromarray(ink, "F").resize(size, Image.BOX))
    window = max(5, min(small.shape) // 3) | 1  # odd
    opened = square_filter(square_filter(small, window, "min"), window, "max")
    return np.maximum(square_filter(opened, window, "mean"), paper_surface(small))


SURFACE_ROUNDS = 3
INK_DEVIATIONS = 2.5  # above the surface by this many deviations of the residual: not paper


def paper_surface(image: np.ndarray, ring: int = 0) -> np.ndarray:
    """The quadratic a + bx + cy + dx² + exy + fy² (x, y in [-1, 1]) that best fits the
    paper of ``image`` (h, w), by least squares repeated on the pixels it leaves as paper:
    each round drops those standing well above the fit (ink), robustly to any amount of
    writing short of most of the image. Fitted on every other pixel (the normal equations of
    six terms), evaluated on all. With ``ring`` > 0, the plane a + bx + cy fitted to the
    image's border, ``ring`` pixels wide, alone: on an image too small to hold paper between
    strokes that fill it (Semeion's 16x16 digits), its border is still paper."""
    h, w = image.shape
    y, x = np.linspace(-1, 1, h), np.linspace(-1, 1, w)
    if ring:
        border = np.ones((h, w), dtype=bool)
        border[ring:-ring, ring:-ring] = False
        ys, xs = np.nonzero(border)
        values = image[ys, xs].astype(np.float64)
        ys, xs = y[ys], x[xs]
        terms = np.stack([np.ones_like(xs), xs, ys])  # (3, n)
    else:
        ys, xs = np.meshgrid(y[::2], x[::2], indexing="ij")
        terms = np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys]).reshape(6, -1)
        values = image[::2, ::2].reshape(-1).astype(np.float64)
    # 1 on paper, 0 on ink: at first the lighter half of the image, all paper unless ink
    # covers most of it (starting from every pixel, a broad faint stroke bent the first fit
    # towards itself and stayed inside its spread: the surface rose by its contrast)
    weight = (values <= np.median(values)).astype(np.float64)
    for _ in range(SURFACE_ROUNDS):
        weighted = terms * weight  # (terms, n)
        coefficients = np.linalg.lstsq(weighted @ terms.T, weighted @ values, rcond=None)[0]
        residual = values - coefficients @ terms
        spread = noise_level(residual[weight > 0])
        paper = (residual <= INK_DEVIATIONS * max(spread, 1e-3)).astype(np.float64)
        if np.array_equal(paper, weight):  # the same pixels again: the same fit
            break
        weight = paper
    a, b, c, *curve = coefficients
    fit = a + b * x[None] + c * y[:, None] + np.zeros((h, w))
    if curve:
        d, e, f = curve
        fit += d * (x * x)[None] + e * np.outer(y, x) + f * (y * y)[:, None]
    return fit.astype(np.float32)


def noise_level(paper: np.ndarray) -> float:
    """Robust deviation of the paper's values (median absolute deviation, scaled)."""
    if paper.size == 0:
        return 0.0
    if 2 * np.count_nonzero(paper) < paper.size:  # over half exactly 0: median and MAD are 0
        return 0.0  # (paper drawn on a computer), without two partitions
    return 1.4826 * percentile(np.abs(paper - percentile(paper, 50)), 50)


SHRINK_SLACK = 1.25  # an image at most this much larger than the analysis side is kept whole


def shrink(image: np.ndarray, max_side: int, light: bool = True) -> tuple[np.ndarray, float]:
    """``image`` (H, W) reduced by a whole factor k so its longer side is at most ``max_side``
    (unless it is at most SHRINK_SLACK times larger: resampling a 280-pixel canvas to 256
    costs more than finding the ink on its 20 % more pixels), and k. Each k x k block becomes
    its strongest ink — its darkest pixel on ``light`` paper: averaging the block, as before,
    diluted a 1-px stroke on a 4000-px page to a sixteenth of its contrast, and the thin
    digit was called blank or not, depending on where it fell between the blocks."""
    H, W = image.shape
    scale = max(H, W) / max_side
    if scale <= SHRINK_SLACK:
        return image, 1.0
    k = math.ceil(scale)
    return block_extreme(image, k, np.min if light else np.max), float(k)


def block_extreme(image: np.ndarray, k: int, extreme) -> np.ndarray:
    """``extreme`` (np.min or np.max) over each k x k block of ``image`` (H, W), the last
    row and column of blocks cut short by the edges: (ceil(H / k), ceil(W / k)). Views, no
    copy of the image."""
    H, W = image.shape
    h, w = H // k, W // k  # whole blocks
    out = np.empty((-(-H // k), -(-W // k)), image.dtype)
    if h and w:
        out[:h, :w] = extreme(image[: h * k, : w * k].reshape(h, k, w, k), axis=(1, 3))
    if h and w * k < W:
        out[:h, w] = extreme(image[: h * k, w * k :].reshape(h, -1), axis=1)
    if w and h * k < H:
        out[h, :w] = extreme(image[h * k :, : w * k].reshape(H - h * k, w, k), axis=(0, 2))
    if h * k < H and w * k < W:
        out[h, w] = extreme(image[h * k :, w * k :])
    return out


NO_INK = "no ink: the image is blank or nothing stands out from the background"
SEVERAL_DIGITS = "several digits: digitnet read reads numbers"


WRITING_SHARE = 0.35  # of the strongest ink: a single digit's strokes, without their halo


def writing_threshold(ink: np.ndarray, share: float = WRITING_SHARE) -> float | None:
    """The ink level above which a pixel is writing — ``share`` of the strongest ink, and
    three times the noise — or None when nothing in ``ink`` (H, W) stands out from the
    paper: the strongest ink must reach MIN_CONTRAST and NOISE_MARGIN deviations of the
    paper's own noise (``pixel_noise``)."""
    signal = strongest(ink, SIGNAL_PIXELS)
    noise = pixel_noise(ink) if signal > 0 else 0.0
    if signal < MIN_CONTRAST or signal < NOISE_MARGIN * noise:
        return None
    return max(share * signal, 3 * noise)


SIGNAL_PIXELS = 24  # the strongest ink is what this many pixels reach: not one speck's


def strongest(ink: np.ndarray, count: int) -> float:
    """The ink level that ``count`` pixels of ``ink`` reach (the count-th largest value). A
    percentile, as before (99.7), was the paper's level when a thin-pen digit covered less
    than 0.3 % of the image: a clear drawing called blank."""
    flat = ink.ravel()
    count = min(count, flat.size)
    top = flat[flat > percentile(ink, 99)]  # holds the answer when it holds count values:
    if top.size < count:  # partitioning 1 % of the pixels, not all (1.3 ms on a canvas)
        top = flat
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


PERCENTILE_SAMPLE = 8192  # larger arrays are estimated from an evenly strided sample


def sample(values: np.ndarray) -> np.ndarray:
    """``values`` flattened, or every k-th of them when there are more than PERCENTILE_SAMPLE."""
    flat = values.ravel()
    return flat[:: -(-flat.size // PERCENTILE_SAMPLE)] if flat.size > PERCENTILE_SAMPLE else flat


def percentile(values: np.ndarray, q: float) -> float:
    """The q-th percentile by rank (no interpolation): np.partition, without np.percentile's
    overhead, which dominates on digit-sized arrays. Above PERCENTILE_SAMPLE values it is
    estimated from every k-th value (deterministic, and 8x faster on a 256x256 image)."""
    flat = sample(values)
    k = min(flat.size - 1, round(q / 100 * (flat.size - 1)))
    return float(np.partition(flat, k)[k])


def find_digit(ink: Ink) -> tuple[tuple[int, int, int, int] | None, str | None, float, int]:
    """The digit's bounding box (top, left, bottom, right) at full resolution, the ink level
    that counts as writing and how many columns of writing stand side by side (``columns``)
    — or a reason why there is no digit."""
    small, scale = ink.small, ink.scale
    threshold = writing_threshold(small)
    if threshold is None:
        return None, NO_INK, 0, 0
    mask = small > threshold
    if np.count_nonzero(mask) > MAX_INK_FRACTION * mask.size:
        return None, "no digit: dark or textured everywhere, nothing digit-shaped", 0, 0
    parts = writing_parts(mask, small, ink.on_flat_paper)
    if isinstance(parts, str):
        return None, parts, 0, 0
    _, kept = parts
    top = min(c.top for c in kept)
    left = min(c.left for c in kept)
    bottom = max(c.bottom for c in kept)
    right = max(c.right for c in kept)
    # Back to full resolution, one analysis pixel of margin for the soft edges of strokes.
    H, W = ink.shape
    box = (
        max(0, int((top - 1) * scale)),
        max(0, int((left - 1) * scale)),
        min(H, int(np.ceil((bottom + 1) * scale))),
        min(W, int(np.ceil((right + 1) * scale))),
    )
    return box, None, threshold, columns(kept)


COLUMN_HEIGHT_SHARE = 0.5  # a column of writing at least this share of the tallest's height


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
    mass = digit.sum()
    rows, cols = np.indices(digit.shape)
    com_r = (rows * digit).sum() / mass if mass else (h - 1) / 2
    com_c = (cols * digit).sum() / mass if mass else (w - 1) / 2
    top = int(np.clip(round(SIDE / 2 - com_r), 0, SIDE - h))
    left = int(np.clip(round(SIDE / 2 - com_c), 0, SIDE - w))
    return top, left


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


def normalize_digit(crop: np.ndarray, threshold: float) -> np.ndarray:
    """An ink crop (h, w) around one digit -> 28x28: strokes to 1 with their soft edges kept
    (MNIST's digits are anti-aliased), cropped to the visible ink, the longer side scaled to 20
    pixels, centred by mass."""
    return place_digit(crop, threshold)[0]


def place_digit(crop: np.ndarray, threshold: float) -> tuple[np.ndarray, Frame]:
    """``normalize_digit``, and where the 28x28 field lies on ``crop``: (x, y, width, height)
    in the crop's pixels — to draw what is computed on the 28x28 (an explanation) back onto
    the image."""
    digit, (y0, x0), (sx, sy) = scaled_strokes(crop, threshold, (BOX, BOX))
    top, left = mass_centred_position(digit)  # sx, sy: 28x28 pixels per crop pixel
    frame = (float(x0 - left / sx), float(y0 - top / sy), SIDE / sx, SIDE / sy)
    return paste(digit, (top, left)), frame


def scaled_strokes(
    crop: np.ndarray, threshold: float, fit: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int], tuple[float, float]]:
    """The strokes of an ink crop (h, w) brought to 1 (the crop over the 90th percentile of
    its writing, pixels above ``threshold``), cut to the visible ink and scaled, their shape
    kept, to fit ``fit`` (height, width) pixels, peak 1. Returns the picture, where the visible
    ink starts on the crop (row, column), and the scale along x and y."""
    writing = crop > threshold
    strong = percentile(crop[writing], 90) if writing.any() else 1.0
    crop = np.clip(crop / max(strong, 1e-6), 0, 1).astype(np.float32)
    start, crop = crop_to_ink(crop, VISIBLE_INK)
    h, w = crop.shape
    scale = min(fit[0] / h, fit[1] / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    picture = np.asarray(Image.fromarray(crop, "F").resize(size, resample), dtype=np.float32)
    peak = float(picture.max())
    if peak > 0:
        picture = np.clip(picture / peak, 0, 1)
    return picture, start, (size[0] / w, size[1] / h)


VISIBLE_INK = 0.05  # of the strokes' strength: fainter pixels at a crop's edge are left out


def crop_to_ink(image: np.ndarray, level: float) -> tuple[tuple[int, int], np.ndarray]:
    """``image`` without the rows and columns at its edges that hold nothing above ``level``,
    and the (row, column) where the rest starts."""
    rows = np.flatnonzero((image > level).any(axis=1))
    cols = np.flatnonzero((image > level).any(axis=0))
    if rows.size == 0:
        return (0, 0), image
    return (rows[0], cols[0]), image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def prepared_input(image: np.ndarray) -> Prepared:
    """An input already in MNIST form, (28, 28) in [0, 1] with the ink bright, taken as it is —
    or no digit when no pixel reaches MIN_CONTRAST."""
    if float(image.max()) < MIN_CONTRAST:
        return Prepared(None, NO_INK)
    return Prepared(image)


def prepare(source: Any, deskew_digit: bool = False) -> Prepared:
    """Turn one image (path, bytes, PIL image or array) into the network's 28x28 input."""
    ink = ink_of(load_gray(source), ANALYSIS_SIDE)  # gray (H, W) in [0, 1]
    box, reason, threshold, side_by_side = find_digit(ink)
    if box is None:
        return Prepared(None, reason)
    top, left, bottom, right = box
    image, (x, y, width, height) = place_digit(ink.region(*box), threshold)
    if deskew_digit:
        image = deskew(image)
    frame = (left + x, top + y, width, height)
    note = SEVERAL_DIGITS if side_by_side > 1 else None
    return Prepared(image, None, (left, top, right - left, bottom - top), frame, note)
