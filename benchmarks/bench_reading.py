"""Benchmark: written numbers as people write them, read by `digitnet read`'s pipeline.

Each page is written from real digits of one source — MNIST test, USPS or Semeion for the
evaluation, MNIST *training* digits 50,000-59,999 for development (choose settings there, never
on the others) — with what differs from digit to digit on a real page:

* 1-8 digits a number, a third of them 1s and 7s (the digits that are dropped or merged);
* each digit its own ink darkness (contrast 15-100 % of the paper), pen width (a hair-line to a
  marker), size (+-25 %) and baseline (+-15 % of the height);
* gaps from an overlap of a third of a digit to twice its width;
* digit heights from 20 to 200 px; paper tone, a shading gradient and pencil grain; a third of
  the pages saved as JPEG;
* one page in six with two or three lines (the reading's text joins them with "\\n").

For each source it reports the exact-number accuracy next to what perfect cutting would give:
the share of numbers whose digits are all read right one by one, each digit — with the very
strokes it has in the number — alone on paper of the same kind (the product of single-digit
accuracies, number by number). The difference
is the cost of finding and cutting the digits (the reading issue's target: <= 0.03; exact on
MNIST test >= 0.97).

    python benchmarks/bench_reading.py [--model cnn] [--numbers 200] [--seed 0]
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import row
from PIL import Image, ImageFilter
from realworld import DEFAULT_ROOT

from digitnet.data import load_mnist, read_labelled_folder
from digitnet.recognition import Recognizer, read_with
from digitnet.zoo import resolve_model

ONES_AND_SEVENS = 1 / 3  # share of the digits drawn from the 1s and 7s
SEVERAL_LINES = 1 / 6  # share of pages with two or three lines


@dataclass
class Source:
    """Digits of one set as ink (H, W) float32 in [0, 1], bright where written, cropped."""

    name: str
    ink: list[np.ndarray]
    labels: np.ndarray

    def pick(self, rng: np.random.Generator) -> int:
        if rng.random() < ONES_AND_SEVENS:
            pool = np.flatnonzero((self.labels == 1) | (self.labels == 7))
        else:
            pool = np.arange(len(self.labels))
        return int(rng.choice(pool))


def cropped(ink: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(ink.max(axis=1) > 0.1)
    cols = np.flatnonzero(ink.max(axis=0) > 0.1)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def mnist_source(name: str, images: np.ndarray, labels: np.ndarray) -> Source:
    return Source(name, [cropped(x.astype(np.float32) / 255) for x in images], labels)


def folder_source(name: str, root: Path) -> Source:
    paths, labels = read_labelled_folder(root / name, "images_large")
    ink = [cropped(1 - np.asarray(Image.open(p).convert("L"), np.float32) / 255) for p in paths]
    return Source(name, ink, np.asarray(labels))


# ------------------------------------------------------------------------------- writing


def pen(ink: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """The digit scaled to ``height`` and written with a pen of its own: finer, as written, or
    broader (a marker), by a grey-level erosion or dilation of the scaled strokes."""
    width = max(2, round(ink.shape[1] * height / ink.shape[0]))
    image = Image.fromarray((ink * 255).astype(np.uint8)).resize((width, height), Image.BILINEAR)
    stroke = rng.choice(["hair", "as written", "broad", "marker"], p=[0.2, 0.4, 0.25, 0.15])
    size = 3 if height < 80 else 5
    if stroke == "hair" and height >= 40:
        image = image.filter(ImageFilter.MinFilter(size))
    elif stroke == "broad":
        image = image.filter(ImageFilter.MaxFilter(3))
    elif stroke == "marker":
        image = image.filter(ImageFilter.MaxFilter(size))
    return np.asarray(image, np.float32) / 255


def write_digit(ink: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """One digit as written: its own size (+-25 %), pen and darkness (many of them faint)."""
    h = max(8, round(height * rng.uniform(0.75, 1.25)))
    return pen(ink, h, rng) * rng.uniform(0.15, 1.0) ** 0.7


def write_line(written: list[np.ndarray], height: int, rng: np.random.Generator) -> np.ndarray:
    """Written digits in one line, as ink strength (h, w) in [0, 1]: each on its own baseline,
    with gaps from overlapping to twice a digit's width."""
    shifts = [round(height * rng.uniform(-0.15, 0.15)) for _ in written]
    gaps = [round(s.shape[1] * rng.uniform(-0.33, 2.0)) for s in written]
    top = max(-shift for shift in shifts) + 4
    tall = max(s.shape[0] + shift for s, shift in zip(written, shifts, strict=True)) + top + 4
    wide = sum(s.shape[1] + max(g, 0) for s, g in zip(written, gaps, strict=True)) + 8
    line = np.zeros((tall + height // 2, wide + height), np.float32)
    x = height // 2
    for strokes, shift, gap in zip(written, shifts, gaps, strict=True):
        y = top + shift + height // 4
        h, w = strokes.shape
        np.maximum(line[y : y + h, x : x + w], strokes, out=line[y : y + h, x : x + w])
        x = max(x + w + gap, x + 2)
    return line[:, : x + height // 2]


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


def write_page(source: Source, rng: np.random.Generator):
    """(the page's bytes, its text, each digit's own page and label)."""
    lines = int(rng.choice([2, 3])) if rng.random() < SEVERAL_LINES else 1
    height = int(np.exp(rng.uniform(np.log(20), np.log(200))))
    texts, blocks, alone = [], [], []
    for _ in range(lines):
        picks = [source.pick(rng) for _ in range(int(rng.integers(1, 9)))]
        written = [write_digit(source.ink[i], height, rng) for i in picks]
        blocks.append(write_line(written, height, rng))
        texts.append("".join(str(source.labels[i]) for i in picks))
        alone += [(on_paper(write_line([strokes], height, rng), rng), source.labels[i])
                  for strokes, i in zip(written, picks, strict=True)]  # fmt: skip
    width = max(b.shape[1] for b in blocks)
    page = np.vstack([np.pad(b, ((0, 0), (0, width - b.shape[1]))) for b in blocks])
    return on_paper(page, rng), "\n".join(texts), alone


# ------------------------------------------------------------------------------- reading


def measure(recognizer: Recognizer, source: Source, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    exact = perfect_cutting = right_count = 0
    seconds = []
    for _ in range(count):
        page, truth, alone = write_page(source, rng)
        start = time.perf_counter()
        text = read_with(recognizer, page).text
        seconds.append(time.perf_counter() - start)
        exact += text == truth
        right_count += len(text.replace("\n", "")) == len(truth.replace("\n", ""))
        verdicts = recognizer.recognize_many([image for image, _ in alone])
        perfect_cutting += all(getattr(v, "digit", None) == label
                               for v, (_, label) in zip(verdicts, alone, strict=True))  # fmt: skip
    return {
        "source": source.name,
        "numbers": count,
        "exact": exact / count,
        "digits_one_by_one": perfect_cutting / count,
        "cost_of_cutting": (perfect_cutting - exact) / count,
        "digit_count_right": right_count / count,
        "read_ms_median": 1000 * float(np.median(seconds)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="cnn (default), tutorial, or a model file")
    parser.add_argument("--numbers", type=int, default=200, help="pages per source")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=os.environ.get("DIGITNET_REALWORLD", DEFAULT_ROOT))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    recognizer = Recognizer(resolve_model(args.model))
    (x_train, y_train), (x_test, y_test) = load_mnist()
    sources = [
        mnist_source("MNIST train 50k-60k (development)", x_train[50_000:], y_train[50_000:]),
        mnist_source("MNIST test", x_test, y_test),
    ]
    sources += [folder_source(name, Path(args.root)) for name in ("usps", "semeion")
                if (Path(args.root) / name).is_dir()]  # fmt: skip
    print(f"{args.numbers} written numbers per source, model {recognizer.model.name or 'cnn'}")
    results = []
    for n, source in enumerate(sources):
        result = measure(recognizer, source, args.numbers, args.seed + n)
        results.append(result)
        found = f"{result['exact']:.3f} / {result['digits_one_by_one']:.3f}"
        detail = (
            f"cost of cutting {result['cost_of_cutting']:+.3f}; digit count right"
            f" {result['digit_count_right']:.3f}; read {result['read_ms_median']:.0f} ms"
        )
        print(row(f"{source.name}: exact / digits one by one", found, detail))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
