"""Written numbers made from single digits, as people write them on a page.

Used two ways: ``benchmarks/bench_reading.py`` writes numbers from evaluation digits (MNIST
test, USPS, Semeion) to measure reading; training the piece checker writes them from MNIST
*training* digits, whose pages also say where each digit is. What differs from digit to digit
on a real page:

* 1-8 digits a number, a third of them 1s and 7s (the digits that are dropped or merged);
* each digit its own ink darkness (contrast 15-100 % of the paper), pen width (a hair-line to a
  marker), size (+-25 %) and baseline (+-15 % of the height);
* gaps from an overlap of a third of a digit to twice its width;
* digit heights from 20 to 200 px; paper tone, a shading gradient and pencil grain; a third of
  the pages saved as JPEG;
* one page in six with two or three lines (the text joins them with "\\n");
* asked for (``marks``), marks among the digits as people write them (``digitnet.marks``):
  thousands separators, decimal points, dates, end marks, currency signs, brackets, ticks;
* asked for (``flagged_ones``), 1s written the continental way, a flag from the top of the stem;
* asked for (``joined``), digits joined to the next by a stroke, written without lifting the pen;
* asked for (``flat_zeros``), numbers ending in 0s, and 0s written flat and wide, close after
  the digit before, as amounts' zeros are ("25000" as a chain of flat loops).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from PIL import Image, ImageFilter

from digitnet import marks as drawn
from digitnet.blas import available_cores
from digitnet.hands import cropped, flattened, with_flag
from digitnet.joining import join
from digitnet.parallel import in_processes
from digitnet.vision import prepare
from digitnet.vision.box import Box

ONES_AND_SEVENS = 1 / 3  # share of the digits drawn from the 1s and 7s
SEVERAL_LINES = 1 / 6  # share of pages with two or three lines


@dataclass
class Digits:
    """Digits of one set as ink (h, w) float32 in [0, 1], bright where written, cropped."""

    name: str
    ink: list[np.ndarray]
    labels: np.ndarray

    def pick(self, rng: np.random.Generator) -> int:
        if rng.random() < ONES_AND_SEVENS:
            pool = np.flatnonzero((self.labels == 1) | (self.labels == 7))
        else:
            pool = np.arange(len(self.labels))
        return int(rng.choice(pool))

    def pick_a(self, label: int, rng: np.random.Generator) -> int:
        """One of the digits ``label``, at random."""
        return int(rng.choice(np.flatnonzero(self.labels == label)))

    @classmethod
    def from_mnist(cls, name: str, images: np.ndarray, labels: np.ndarray) -> Digits:
        """From MNIST-style images (N, 28, 28) uint8, ink bright."""
        return cls(name, [cropped(x.astype(np.float32) / 255) for x in images], np.asarray(labels))


@dataclass
class WrittenDigit:
    label: int
    box: Box  # where its strokes are on the page
    line: int  # which line of writing, from the top


@dataclass
class WrittenMark:
    kind: str  # one of marks.KINDS
    box: Box
    line: int


@dataclass
class Page:
    image: bytes  # PNG or JPEG
    text: str  # the lines' digits, joined by "\n"
    digits: list[WrittenDigit]
    # (H, W) int16: whose writing each pixel is: digit k >= 0, mark k at -2 - k, -1 none
    owner: np.ndarray
    alone: list[tuple[bytes, int]]  # each digit, the very strokes it has here, alone on paper
    marks: list[WrittenMark] = field(default_factory=list)
    written: str = ""  # the lines as written, marks and spaces in place ("25.574.-")

    @property
    def overlap(self) -> float:
        """How far a digit reaches into its neighbour, at most: the columns two neighbours'
        boxes share, over the narrower one's width (0.0 when no two overlap; 1.0 when one lies
        within the other's columns, as a 1 written after a 7 at a gap of -1/3 of the 7's width
        may: GAPS are shares of the left digit's width)."""
        worst = 0.0
        for a, b in pairwise(self.digits):
            if a.line == b.line:
                shared = min(a.box.right, b.box.right) - max(a.box.x, b.box.x)
                worst = max(worst, shared / min(a.box.width, b.box.width))
        return worst


def pen(ink: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """The digit scaled to ``height`` and written with a pen of its own: finer, as written, or
    broader (a marker), by a grey-level erosion or dilation of the scaled strokes."""
    ink = np.pad(ink, 1)  # strokes end softly at the digit's box, not cut square when enlarged
    width = max(2, round(ink.shape[1] * height / ink.shape[0]))
    image = Image.fromarray((ink * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR)
    stroke = rng.choice(["hair", "as written", "broad", "marker"], p=[0.2, 0.4, 0.25, 0.15])
    size = 3 if height < 80 else 5
    margin = Image.new("L", (width + 2 * size, height + 2 * size))  # room to grow the strokes
    margin.paste(image, (size, size))
    if stroke == "hair" and height >= 40:
        margin = margin.filter(ImageFilter.MinFilter(size))
    elif stroke == "broad":
        margin = margin.filter(ImageFilter.MaxFilter(3))
    elif stroke == "marker":
        margin = margin.filter(ImageFilter.MaxFilter(size))
    return cropped(np.asarray(margin, np.float32) / 255, floor=0)


CHAINED = (-0.3, 0.05)  # the gap before a flat 0, of the width of the digit before it


def digit_ink(source: Digits, i: int, rng: np.random.Generator, flagged_ones: float,
              flat_zeros: float = 0.0) -> tuple[np.ndarray, bool]:  # fmt: skip
    """Digit ``i`` of ``source``'s ink — a 1 at odds ``flagged_ones`` ``with_flag``, a 0 at
    odds ``flat_zeros`` ``flattened`` — and whether it is a flat 0."""
    ink = source.ink[i]
    if flagged_ones and source.labels[i] == 1 and rng.random() < flagged_ones:
        return with_flag(ink, rng), False
    if flat_zeros and source.labels[i] == 0 and rng.random() < flat_zeros:
        return flattened(ink, rng), True
    return ink, False


def write_digit(ink: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """One digit as written: its own size (+-25 %), pen and darkness (many of them faint)."""
    h = max(8, round(height * rng.uniform(0.75, 1.25)))
    return pen(ink, h, rng) * rng.uniform(0.15, 1.0) ** 0.7


OWNED = 0.2  # of a digit's strongest ink: fainter pixels are its halo, nobody's writing


GAPS = (-0.33, 2.0)  # of a digit's width: from an overlap of a third to twice the width
JOINED_GAP = 0.5  # of the digit height: digits further apart are not joined by a stroke


def write_line(
    written: list[np.ndarray],
    height: int,
    rng: np.random.Generator,
    gaps=GAPS,
    tops: list[float | None] | None = None,
    spaces: list[float | None] | None = None,
    joined: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, list[Box]]:
    """Written digits (and marks) in one line: the ink strength (h, w) in [0, 1], whose
    writing each pixel is (h, w) int16 (the index in ``written``, -1 for none; where two
    cross, the stronger), and each one's box. A digit stands on a baseline of its own and is
    followed by a gap drawn uniformly from ``gaps`` (of its width); where ``tops`` gives one
    (in digit heights below the top of the line's digits) or ``spaces`` does (the gap after
    it, in digit heights), that is used instead. At odds ``joined``, a digit and the next, no
    further apart than JOINED_GAP of the height, are joined by a stroke (``joining.join``)."""
    tops = tops or [None] * len(written)
    spaces = spaces or [None] * len(written)
    shifts = [round(height * (rng.uniform(-0.15, 0.15) if t is None else t)) for t in tops]
    gaps = [round(s.shape[1] * rng.uniform(*gaps) if space is None else height * space)
            for s, space in zip(written, spaces, strict=True)]  # fmt: skip
    top = max(-shift for shift in shifts) + 4
    tall = max(s.shape[0] + shift for s, shift in zip(written, shifts, strict=True)) + top + 4
    wide = sum(s.shape[1] + max(g, 0) for s, g in zip(written, gaps, strict=True)) + 8
    line = np.zeros((tall + height // 2, wide + height), np.float32)
    owner = np.full(line.shape, -1, np.int16)
    boxes = []
    x = height // 2
    for n, (strokes, shift, gap) in enumerate(zip(written, shifts, gaps, strict=True)):
        y = top + shift + height // 4
        h, w = strokes.shape
        here = (slice(y, y + h), slice(x, x + w))
        owner[here][(strokes > OWNED * strokes.max()) & (strokes > line[here])] = n
        np.maximum(line[here], strokes, out=line[here])
        boxes.append(Box(x, y, w, h))
        x = max(x + w + gap, x + 2)
    for n, (a, b) in enumerate(pairwise(boxes) if joined else ()):  # (no draw when not asked)
        if b.x - (a.x + a.width) <= JOINED_GAP * height and rng.random() < joined:
            join(line, owner, n, n + 1, rng)
    end = x + height // 2
    return line[:, :end], owner[:, :end], boxes


def on_paper(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """Ink on paper of its own tone, with shading and pencil grain; PNG or (a third) JPEG."""
    width = ink.shape[1]
    paper = rng.uniform(0.7, 1.0) - rng.uniform(0, 0.15) * np.linspace(0, 1, width)[None, :]
    grain = 1 - rng.uniform(0, 0.35) * rng.random(ink.shape)  # pencil: ink with gaps
    darkest = rng.uniform(0.0, 0.25)
    page = paper - (paper - darkest) * ink * grain + rng.normal(0, 0.015, ink.shape)
    image = Image.fromarray((np.clip(page, 0, 1) * 255).astype(np.uint8))
    out = io.BytesIO()
    if rng.random() < 1 / 3:
        image.save(out, "JPEG", quality=int(rng.integers(50, 95)))
    else:
        image.save(out, "PNG")
    return out.getvalue()


def digit_height(rng: np.random.Generator) -> int:
    """A page's digit height in pixels: 20-200, log-uniform."""
    return int(np.exp(rng.uniform(np.log(20), np.log(200))))


def write_page(
    source: Digits,
    rng: np.random.Generator,
    alone: bool = True,
    gaps=GAPS,
    count=(1, 8),
    marks: float = 0.0,
    flagged_ones: float = 0.0,
    joined: float = 0.0,
    flat_zeros: float = 0.0,
) -> Page:
    """A page of one to three written numbers of ``count`` digits (from, to) from ``source``, their
    gaps drawn from ``gaps`` (see ``write_line``), each number with marks (``with_marks``) at
    odds ``marks``, each 1 with a continental flag (``with_flag``) at odds ``flagged_ones``, each
    digit of a number without marks joined to the next by a stroke at odds ``joined``
    (``write_line``), each 0 flat (``flattened``) at odds ``flat_zeros``, written CHAINED
    close after the digit before it in a number without marks — and at those odds a number
    ends in one to three 0s, as amounts do.
    With ``alone``, each digit is also written alone on paper of the same kind (for the
    single-digit comparison)."""
    lines = int(rng.choice([2, 3])) if rng.random() < SEVERAL_LINES else 1
    height = digit_height(rng)
    texts, blocks, owners, digits, singles = [], [], [], [], []
    written_lines, page_marks = [], []
    top = 0
    for n in range(lines):
        picks = [source.pick(rng) for _ in range(int(rng.integers(count[0], count[1] + 1)))]
        if flat_zeros and rng.random() < flat_zeros:  # an amount: its last 1-3 digits 0s
            zeros = min(len(picks), int(rng.integers(1, 4)))
            picks[-zeros:] = [source.pick_a(0, rng) for _ in range(zeros)]
        slots = with_marks(len(picks), rng) if marks and rng.random() < marks else None
        if slots is None:
            inks, flat = zip(*(digit_ink(source, i, rng, flagged_ones, flat_zeros)
                               for i in picks), strict=True)  # fmt: skip
            written = [write_digit(ink, height, rng) for ink in inks]
            spaces = chained(written, flat, height, rng)
            block, owner, boxes = write_line(written, height, rng, gaps, spaces=spaces,
                                             joined=joined)  # fmt: skip
            layout: list[str | None] = [None] * len(picks)
        else:
            written, block, owner, boxes, layout = write_marked(
                source, picks, slots, height, rng, flagged_ones, flat_zeros
            )
        who = np.full(len(layout) + 1, -1, np.int16)  # item -> owner value; [-1]: nobody
        text_of, digit_boxes = [], []
        picked = iter(picks)
        for k, (kind, box) in enumerate(zip(layout, boxes, strict=True)):
            x, y, w, h = box
            if kind is None:
                i = next(picked)
                who[k] = len(digits) + len(digit_boxes)
                digit_boxes.append(WrittenDigit(int(source.labels[i]), Box(x, y + top, w, h), n))
                text_of.append(str(source.labels[i]))
            else:
                who[k] = -2 - len(page_marks)
                page_marks.append(WrittenMark(kind, Box(x, y + top, w, h), n))
                text_of.append(drawn.SYMBOLS[kind])
        blocks.append(block)
        owners.append(who[owner])
        digits += digit_boxes
        texts.append("".join(str(source.labels[i]) for i in picks))
        written_lines.append(spaced(text_of, slots))
        top += block.shape[0]
        if alone:
            inks = digit_inks(written, layout)
            singles += [(on_paper(write_line([strokes], height, rng)[0], rng), source.labels[i])
                        for strokes, i in zip(inks, picks, strict=True)]  # fmt: skip
    width = max(b.shape[1] for b in blocks)
    page = np.vstack([np.pad(b, ((0, 0), (0, width - b.shape[1]))) for b in blocks])
    owner = np.vstack([np.pad(o, ((0, 0), (0, width - o.shape[1])), constant_values=-1)
                       for o in owners]).astype(np.int16)  # fmt: skip
    return Page(on_paper(page, rng), "\n".join(texts), digits, owner, singles, page_marks,
                "\n".join(written_lines))  # fmt: skip


def chained(written: list[np.ndarray], flat: Sequence[bool], height: int,
            rng: np.random.Generator) -> list[float | None] | None:  # fmt: skip
    """``write_line``'s ``spaces``: before each flat 0 a gap drawn from CHAINED of the width of
    the digit before it, in digit heights; None when no 0 is flat (its gaps as ``gaps`` says)."""
    if not any(flat):
        return None
    spaces: list[float | None] = [None] * len(written)
    for k in range(len(written) - 1):
        if flat[k + 1]:
            spaces[k] = rng.uniform(*CHAINED) * written[k].shape[1] / height
    return spaces


def digit_inks(written: list[np.ndarray], layout: list[str | None]) -> list[np.ndarray]:
    return [ink for ink, kind in zip(written, layout, strict=True) if kind is None]


def spaced(text_of: list[str], slots: list[str | None] | None) -> str:
    """A line as written: its digits and marks, a space where ``slots`` put one."""
    if slots is None:
        return "".join(text_of)
    out, items = [], iter(text_of)
    for slot in slots:
        out.append(" " if slot == " " else next(items))
    return "".join(out)


END_MARKS = (("dash",), ("dot", "dash"), ("comma", "dash"), ("equals",), ("dot",),
             ("slash", "dash"), ("dash", "dash"), ("comma",))  # fmt: skip


def with_marks(count: int, rng: np.random.Generator) -> list[str | None]:
    """Where a number of ``count`` digits has marks, as people write them: a slot for each
    digit (None), mark (its kind) or space (" "), left to right, at least one mark or space:
    a date or time, or a decimal point, thousands separators, an end mark, a sign or brackets,
    a tick or cross beside."""
    u = rng.random
    if count >= 6 and u() < 0.15:  # 12/05/2026
        sep = str(rng.choice(["slash", "dot", "dash"]))
        return [None, None, sep, None, None, sep] + [None] * (count - 4)
    if count == 4 and u() < 0.15:  # 12:30
        return [None, None, "colon", None, None]
    slots: list[str | None] = [None] * count
    whole = count
    if count >= 3 and u() < 0.25:
        slots.insert(count - 2, str(rng.choice(["dot", "comma"])))
        whole = count - 2
    if whole >= 4 and u() < 0.5:
        sep = str(rng.choice(["dot", "comma", "apostrophe", " "]))
        for k in range(whole - 3, 0, -3):
            slots.insert(k, sep)
    if u() < 0.5:
        slots += END_MARKS[int(rng.integers(len(END_MARKS)))]
    if u() < 0.25:
        sign = str(rng.choice(["dollar", "euro", "plus", "open bracket"]))
        slots.insert(0, sign)
        if sign == "open bracket":
            slots.append("close bracket")
    if u() < 0.1:
        slots += [" ", str(rng.choice(["tick", "cross"]))]
    if all(slot is None for slot in slots):
        slots += END_MARKS[int(rng.integers(len(END_MARKS)))]
    return slots


def write_marked(
    source: Digits,
    picks: list[int],
    slots: list[str | None],
    height: int,
    rng: np.random.Generator,
    flagged_ones: float = 0.0,
    flat_zeros: float = 0.0,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, list[Box], list[str | None]]:
    """A line of the digits ``picks`` with the marks and spaces of ``slots`` (``with_marks``):
    each item's ink, the line (``write_line``) and each item's kind (None: a digit). A mark
    is written close to the digit before it, with the pen and darkness of a digit of its own."""
    inks, tops, spaces, layout = [], [], [], []
    picked = iter(picks)
    for slot in slots:
        if slot == " ":
            spaces[-1] = rng.uniform(0.6, 1.2)
            continue
        if slot is None:
            ink, _ = digit_ink(source, next(picked), rng, flagged_ones, flat_zeros)
            inks.append(write_digit(ink, height, rng))
            tops.append(None)
            spaces.append(None)
        else:
            if spaces:  # written close after what comes before it
                spaces[-1] = rng.uniform(0.0, 0.4)
            ink, top = drawn.draw(slot, rng)
            side = max(2, round(ink.shape[0] * height / drawn.DRAWN_SIDE))
            inks.append(pen(ink, side, rng) * rng.uniform(0.15, 1.0) ** 0.7)
            tops.append(top)
            spaces.append(rng.uniform(0.05, 0.45))
        layout.append(slot)
    block, owner, boxes = write_line(inks, height, rng, tops=tops, spaces=spaces)
    return inks, block, owner, boxes, layout


WRITTEN_CHUNK = 2_000  # digits a worker writes at once, each chunk with a seed of its own


def written_alone(images: np.ndarray, seed: int, workers: int | None = None) -> np.ndarray:
    """MNIST-style digits (N, 28, 28) uint8, ink bright, each written alone on paper as
    ``write_page`` writes a page's digits — a height of its own (20-200 px, log-uniform), its
    pen, darkness, paper tone, shading, pencil grain, a third saved as JPEG — and read back
    through ``digitnet.vision.prepare``: what the recogniser sees of that digit written on a
    page, (N, 28, 28) float32 in [0, 1]. A digit the pipeline finds no writing in keeps its
    MNIST form. Chunk i of WRITTEN_CHUNK digits is written with seed (seed, i), in ``workers``
    processes (default: the cores available): the same digits for any number of workers."""
    starts = range(0, len(images), WRITTEN_CHUNK)
    jobs = [(images[a : a + WRITTEN_CHUNK], (seed, i)) for i, a in enumerate(starts)]
    if not jobs:
        return np.zeros((0, 28, 28), np.float32)
    return np.concatenate(in_processes(_written_chunk, jobs, workers or available_cores(8)))


def _written_chunk(job: tuple[np.ndarray, tuple[int, int]]) -> np.ndarray:

    images, seed = job
    rng = np.random.default_rng(seed)
    out = images.astype(np.float32) / 255  # (n, 28, 28): the MNIST form, replaced as written
    for k in range(len(out)):
        height = digit_height(rng)
        strokes = write_digit(cropped(out[k]), height, rng)  # a copy: out[k] is read only
        prepared = prepare(on_paper(write_line([strokes], height, rng)[0], rng))
        if prepared.image is not None:
            out[k] = prepared.image
    return out
