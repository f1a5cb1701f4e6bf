"""The ink of an image: how strongly each pixel stands out from the paper it is written on.

Paper is rarely one level: photos have shadows, gradients and vignettes, scans a tint. The
paper's level is estimated and subtracted (``ink_of``): on paper of exactly one value (a drawing
made on a computer), that value; on an image under LIGHTING_MIN_SIDE, a plane fitted to its
border; otherwise a smooth lighting map (``background``: a grey-level opening wider than any
ink, and a quadratic fitted to the paper alone). Everything is found on a copy at most
``analysis_side`` pixels wide (``shrink``: each block becomes its strongest ink, so a 1-px line
on a 4000-px page stays ink); ``Ink.region`` gives a part at full resolution.

The robust statistics these rely on (``percentile``, ``noise_level``) live here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from PIL import Image

from digitnet.vision.box import Box
from digitnet.vision.filters import square_filter
from digitnet.vision.pattern import pattern_level

FLAT_PAPER_FRACTION = 0.5  # of the pixels, at least, for paper of exactly one value
LIGHTING_MIN_SIDE = 128  # smaller images get the border's plane, larger a lighting map
BACKGROUND_SIDE = 64  # the lighting map is estimated with this many pixels on the shorter side
SURFACE_ROUNDS = 3
INK_DEVIATIONS = 2.5  # above the surface by this many deviations of the residual: not paper
SHRINK_SLACK = 1.25  # an image at most this much larger than the analysis side is kept whole
PERCENTILE_SAMPLE = 8192  # larger arrays are estimated from an evenly strided sample


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
    pattern: float = 0.0  # ink up to this is a printed background, left out (``pattern``)

    @property
    def shape(self) -> tuple[int, int]:
        return self.gray.shape

    @property
    def on_flat_paper(self) -> bool:
        """Drawn on a computer: paper of exactly one value (``flat_paper``), no rulings."""
        return isinstance(self.level, float)

    def around(self, box: Box) -> InkRegion:
        """``region`` of ``box``, kept to cut the ink of boxes inside it from (``InkRegion``)."""
        return InkRegion(box, self.region(box))

    def region(self, box: Box) -> np.ndarray:
        """Full-resolution ink in ``box``, (box.height, box.width)."""
        top, left, bottom, right = box.y, box.x, box.bottom, box.right
        part = self.gray[top:bottom, left:right]
        raw = 1 - part if self.light_paper else part
        if isinstance(self.level, float):
            return without_pattern(np.clip(raw - self.level, 0, 1), self.pattern)
        H, W = self.shape
        h, w = self.level.shape
        box = (left * w / W, top * h / H, right * w / W, bottom * h / H)  # in map pixels
        size = (right - left, bottom - top)
        level = Image.fromarray(self.level, "F").resize(size, Image.BILINEAR, box=box)
        return without_pattern(np.clip(raw - np.asarray(level), 0, 1), self.pattern)


class InkRegion(NamedTuple):
    """An ``Ink``'s full-resolution ink over ``box``, made once (one resize of the lighting
    map): the ink of any box inside it is a slice of ``values``, (box.height, box.width)."""

    box: Box
    values: np.ndarray

    def region(self, box: Box) -> np.ndarray:
        """Full-resolution ink in ``box`` (inside this one's): a view."""
        return box.moved(-self.box.x, -self.box.y).of(self.values)


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
        ink = np.clip(raw - at_small, 0, 1)
        pattern = pattern_level(ink)
        return Ink(gray, light, without_pattern(ink, pattern), scale, level, pattern)
    ink = np.clip(raw - level, 0, 1)
    pattern = 0.0 if paper is not None else pattern_level(ink)  # a drawing: none
    return Ink(gray, light, without_pattern(ink, pattern), scale, level, pattern)


def without_pattern(ink: np.ndarray, pattern: float) -> np.ndarray:
    """``ink`` with what a printed background reaches (up to ``pattern``) set to paper."""
    if pattern:
        ink[ink <= pattern] = 0
    return ink


def paper_is_light(gray: np.ndarray) -> bool:
    """Which way round the writing is: the image's border is paper far more often than ink
    (even a digit that touches the edges covers little of them). Each side votes by its
    median, and where they tie, by how far its median is from grey: a scan with the dark
    beyond the page's edge along one side — a third of a register's crop, most of its left
    side — has the paper on the other three (the ring's median called 625 of 1,525 registers
    dark, the sides 54), and where the page's foot is in shadow too, the paper is the sides
    that are white, not the shadow's grey (the ring's median called such pages dark)."""
    H, W = gray.shape
    k = max(1, min(H, W) // 32)
    medians = [percentile(side, 50) for side in (gray[:k], gray[-k:], gray[:, :k], gray[:, -k:])]
    light = sum(m >= 0.5 for m in medians)
    return light > 2 if light != 2 else sum(medians) >= 2


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


def shrink(image: np.ndarray, max_side: int, light: bool = True) -> tuple[np.ndarray, float]:
    """``image`` (H, W) reduced by a whole factor k so its longer side is at most ``max_side``
    (unless it is at most SHRINK_SLACK times larger: resampling a 280-pixel canvas to 256
    costs more than finding the ink on its 20 % more pixels), and k. Each k x k block becomes
    its strongest ink — its darkest pixel on ``light`` paper: averaging the block, as before,
    diluted a 1-px stroke on a 4000-px page to a sixteenth of its contrast, and the thin
    digit was called blank or not, depending on where it fell between the blocks."""
    k = shrink_factor(image.shape, max_side)
    if k == 1:
        return image, 1.0
    return block_extreme(image, k, np.min if light else np.max), float(k)


def shrink_factor(shape: tuple[int, int], max_side: int) -> int:
    """The whole factor ``shrink`` reduces an image of ``shape`` (H, W) by."""
    scale = max(shape) / max_side
    return 1 if scale <= SHRINK_SLACK else math.ceil(scale)


def block_extreme(image: np.ndarray, k: int, extreme) -> np.ndarray:
    """``extreme`` (np.min or np.max) over each k x k block of ``image`` (H, W), the last
    row and column of blocks cut short by the edges: (ceil(H / k), ceil(W / k)). Views, no
    copy of the image; the whole blocks down their rows first, then along, the k columns of
    each block as k strided slices taken pairwise (a reduction over a last axis k long is
    slow for a small k: 1.6 ms for a 400-pixel drawing, now 0.12; a 2,480 x 3,508 scan 6.4
    ms, now 4.7)."""
    H, W = image.shape
    h, w = H // k, W // k  # whole blocks
    out = np.empty((-(-H // k), -(-W // k)), image.dtype)
    if h and w:
        down = extreme(image[: h * k, : w * k].reshape(h, k, w * k), axis=1)  # (h, w k)
        pairwise_extreme = np.minimum if extreme is np.min else np.maximum
        across = down[:, 0::k].copy()  # (h, w): each block's first column
        for j in range(1, k):
            pairwise_extreme(across, down[:, j::k], out=across)
        out[:h, :w] = across
    if h and w * k < W:
        out[:h, w] = extreme(image[: h * k, w * k :].reshape(h, -1), axis=1)
    if w and h * k < H:
        out[h, :w] = extreme(image[h * k :, : w * k].reshape(H - h * k, w, k), axis=(0, 2))
    if h * k < H and w * k < W:
        out[h, w] = extreme(image[h * k :, w * k :])
    return out


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
