"""Benchmark: written numbers as people write them, read by `digitnet read`'s pipeline.

Each page is written from real digits of one source — MNIST test, USPS or Semeion for the
evaluation, MNIST *training* digits 50,000-59,999 for development (choose settings there, never
on the others) — by ``digitnet.data.writing``: 1-8 digits a number, many 1s and 7s, each digit
with its own darkness (down to 15 % contrast), pen (hair-line to marker), size and baseline,
gaps from overlapping to twice a digit's width, heights 20-200 px, paper tone, shading, pencil
grain and JPEG, some pages with two or three lines.

For each source it reports the exact-number accuracy next to what perfect cutting would give:
the share of numbers whose digits are all read right one by one, each digit — with the very
strokes it has in the number — alone on paper of the same kind (the product of single-digit
accuracies, number by number). The difference
is the cost of finding and cutting the digits (the reading issue's target: <= 0.03; exact on
MNIST test >= 0.97).

    python benchmarks/bench_reading.py [--model cnn] [--numbers 1000] [--seed 0]

A page is 0.001 of 1,000 and the figures move by a few of them from one set of pages to
another: 200 or 300 pages a source cannot tell one design from the next.
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from common import row
from PIL import Image
from realworld import DEFAULT_ROOT

from digitnet.data import load_mnist, read_labelled_folder
from digitnet.data.writing import Digits, cropped, write_page
from digitnet.recognition import Recognizer, read_with
from digitnet.zoo import resolve_model


def folder_source(name: str, root: Path) -> Digits:
    paths, labels = read_labelled_folder(root / name, "images_large")
    ink = [cropped(1 - np.asarray(Image.open(p).convert("L"), np.float32) / 255) for p in paths]
    return Digits(name, ink, np.asarray(labels))


# ------------------------------------------------------------------------------- reading


def measure(recognizer: Recognizer, source: Digits, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    exact = perfect_cutting = right_count = 0
    seconds = []
    for _ in range(count):
        page = write_page(source, rng)
        truth, alone = page.text, page.alone
        start = time.perf_counter()
        text = read_with(recognizer, page.image).text
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
    parser.add_argument("--numbers", type=int, default=1000, help="pages per source")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=os.environ.get("DIGITNET_REALWORLD", DEFAULT_ROOT))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    recognizer = Recognizer(resolve_model(args.model))
    (x_train, y_train), (x_test, y_test) = load_mnist()
    sources = [
        Digits.from_mnist("MNIST train 50k-60k (development)", x_train[50_000:], y_train[50_000:]),
        Digits.from_mnist("MNIST test", x_test, y_test),
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
