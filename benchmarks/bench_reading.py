"""Benchmark: written numbers as people write them, read by `digitnet read`'s pipeline.

Each page is written from real digits of one source — MNIST test, USPS or Semeion for the
evaluation, MNIST *training* digits 50,000-59,999 for development (choose settings there, never
on the others) — by ``digitnet.writing``: 1-8 digits a number, many 1s and 7s, each digit
with its own darkness (down to 15 % contrast), pen (hair-line to marker), size and baseline,
gaps from overlapping to twice a digit's width, heights 20-200 px, paper tone, shading, pencil
grain and JPEG, some pages with two or three lines.

For each source it reports the exact-number accuracy next to what perfect cutting would give:
the share of numbers whose digits are all read right one by one, each digit — with the very
strokes it has in the number — alone on paper of the same kind (the product of single-digit
accuracies, number by number). The difference
is the cost of finding and cutting the digits (the reading issue's target: <= 0.03; exact on
MNIST test >= 0.97), with a 95 % interval: on 1,000 pages it spans +-0.01 to +-0.02. The same
figures follow for the pages where no digit reaches into its neighbour by more than a third of
the narrower of the two (``Page.overlap``): a gap of -1/3 is a third of the *left* digit's
width, so a 1 written after a wide 7 or 3 may lie wholly within its columns.

With ``--why`` it also says, for each page read wrong whose digits are all read right alone,
where the reading lost it: no candidate holds one of its digits (alone, or with its neighbour
as a clean pair), a candidate on the right path is misread (by the digit model or the pair
reader), or the right path is there, read right, and scored below the one chosen.

    python benchmarks/bench_reading.py [--model cnn] [--numbers 1000] [--seed 0] [--why]

A page is 0.001 of 1,000 and the figures move by a few of them from one set of pages to
another: 200 or 300 pages a source cannot tell one design from the next.
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import functools
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from common import row
from PIL import Image
from realworld import DEFAULT_ROOT

from digitnet.data import load_mnist, read_labelled_folder
from digitnet.reading.lattice import Lattice
from digitnet.reading.recognizer import Recognizer
from digitnet.reading.training.pairs import clean_pair
from digitnet.reading.training.pieces import held_whole, owned, totals
from digitnet.vision.segment import segment
from digitnet.writing import Digits, Page, cropped, write_page
from digitnet.zoo import resolve_model


def folder_source(name: str, root: Path) -> Digits:
    paths, labels = read_labelled_folder(root / name, "images_large")
    ink = [cropped(1 - np.asarray(Image.open(p).convert("L"), np.float32) / 255) for p in paths]
    return Digits(name, ink, np.asarray(labels))


# ------------------------------------------------------------------------------- reading


# "an overlap of a third of a digit" (writing.GAPS), taken of the narrower of two neighbours:
# pages where no digit reaches further into its neighbour are counted apart too (Page.overlap)
OVERLAP_SHARE = 1 / 3


class PageRead(NamedTuple):
    exact: bool  # the page read exactly
    one_by_one: bool  # its digits, alone, all read right
    overlap: float  # Page.overlap


def measure(recognizer: Recognizer, source: Digits, count: int, seed: int, why: bool) -> dict:
    rng = np.random.default_rng(seed)
    pages: list[PageRead] = []
    right_count = 0
    seconds, lost = [], {}
    for _ in range(count):
        page = write_page(source, rng)
        truth, alone = page.text, page.alone
        start = time.perf_counter()
        lattice = Lattice.of(recognizer, segment(page.image))  # read_segments, in two steps
        text = lattice.reading().text if lattice else ""
        seconds.append(time.perf_counter() - start)
        right_count += len(text.replace("\n", "")) == len(truth.replace("\n", ""))
        verdicts = recognizer.recognize_many([image for image, _ in alone])
        one_by_one = all(getattr(v, "digit", None) == label
                         for v, (_, label) in zip(verdicts, alone, strict=True))  # fmt: skip
        pages.append(PageRead(text == truth, one_by_one, page.overlap))
        if why and one_by_one and text != truth:
            kind = where_lost(lattice, page)
            lost[kind] = lost.get(kind, 0) + 1
    return {
        "source": source.name,
        **tally(pages),
        "digit_count_right": right_count / count,
        "read_ms_median": 1000 * float(np.median(seconds)),
        "overlapping_less": tally([p for p in pages if p.overlap <= OVERLAP_SHARE]),
        **({"lost": lost} if why else {}),
    }


def tally(pages: list[PageRead]) -> dict:
    """Exact and one-by-one shares of ``pages`` and the cost of cutting with its 95 % interval."""
    count = max(len(pages), 1)
    exact = sum(p.exact for p in pages)
    perfect_cutting = sum(p.one_by_one for p in pages)
    disagreeing = sum(p.exact != p.one_by_one for p in pages)  # right one way, not the other
    return {
        "numbers": len(pages),
        "exact": exact / count,
        "digits_one_by_one": perfect_cutting / count,
        "cost_of_cutting": (perfect_cutting - exact) / count,
        "cost_of_cutting_95": interval(perfect_cutting - exact, disagreeing, count),
    }


def interval(difference: int, disagreeing: int, count: int) -> tuple[float, float]:
    """A 95 % interval for the cost of cutting, ``difference`` / ``count`` pages: exact and one
    by one are measured on the same pages, so only the ``disagreeing`` pages (right one way,
    not the other) count. Each page adds d = +1, -1 or 0; the normal approximation for the
    difference of paired proportions, with var(d) = disagreeing / count - cost ** 2."""
    cost = difference / count
    spread = 1.96 * np.sqrt(max(disagreeing / count - cost**2, 0) / count)
    return cost - spread, cost + spread


# ------------------------------------------------------------------------ where it is lost

NO_CANDIDATE = "a digit no candidate holds, alone or in a clean pair"
PAIR_MISREAD = "a pair on the right path misread by the pair reader"
DIGIT_MISREAD = "a digit on the right path misread"
SCORED_BELOW = "the right path scored below the reading chosen"


def where_lost(lattice: Lattice | None, page: Page) -> str:
    """Why a page whose digits are all read right alone is read wrong. A right path through
    the lattice takes, digit by digit, a candidate holding the digit alone (``pieces.
    held_whole``: as the reader's networks are trained) or a pair candidate holding it and its
    next neighbour as the pair reader learns pairs, each candidate's slices after the last's.
    No such path: no candidate; one whose candidates all read their digits right: it scored
    below the path chosen; else the best-scored one's first misread candidate says whose."""
    if lattice is None:
        return NO_CANDIDATE
    digits, whole = len(page.digits), totals(page)
    labels = [w.label for w in page.digits]
    holding: list[list[tuple[int, int]]] = [[] for _ in range(digits)]  # d -> (candidate, span)
    for i, c in enumerate(lattice.candidates):
        counts = owned(page.owner, c.piece, digits)
        if len(lattice.readings[i]) == 2:
            first = clean_pair(counts, whole, page)
            if first is not None:
                holding[first].append((i, 2))
        elif len(lattice.readings[i]) == 1 and (found := held_whole(counts, whole)) is not None:
            holding[found[0]].append((i, 1))

    def read(i: int) -> list[int]:
        return [p.digit for p in lattice.readings[i]]

    @functools.cache
    def best_from(d: int, after: int, all_right: bool) -> tuple[float, tuple] | None:
        """The best-scored path for digits d.. whose candidates start after slice ``after``
        (read right, each of them, when ``all_right``): (score, ((candidate, its first
        digit), ...)), or None."""
        if d == digits:
            return 0.0, ()
        best = None
        for i, span in holding[d]:
            right = read(i) == labels[d : d + span]
            if lattice.candidates[i].first <= after or (all_right and not right):
                continue
            rest = best_from(d + span, lattice.candidates[i].last, all_right)
            if rest is not None and (best is None or lattice.scores[i] + rest[0] > best[0]):
                best = lattice.scores[i] + rest[0], ((i, d), *rest[1])
        return best

    if best_from(0, -1, True) is not None:
        return SCORED_BELOW
    path = best_from(0, -1, False)
    if path is None:
        return NO_CANDIDATE
    misread = next(i for i, d in path[1] if read(i) != labels[d : d + len(read(i))])
    return PAIR_MISREAD if len(read(misread)) == 2 else DIGIT_MISREAD


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="cnn (default), tutorial, or a model file")
    parser.add_argument("--numbers", type=int, default=1000, help="pages per source")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=os.environ.get("DIGITNET_REALWORLD", DEFAULT_ROOT))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", metavar="WORD", help="the sources whose name holds WORD")
    parser.add_argument("--why", action="store_true",
                        help="where pages read wrong but right one by one are lost")  # fmt: skip
    args = parser.parse_args()
    recognizer = Recognizer(resolve_model(args.model))
    (x_train, y_train), (x_test, y_test) = load_mnist()
    sources = [
        Digits.from_mnist("MNIST train 50k-60k (development)", x_train[50_000:], y_train[50_000:]),
        Digits.from_mnist("MNIST test", x_test, y_test),
    ]
    sources += [folder_source(name, Path(args.root)) for name in ("usps", "semeion")
                if (Path(args.root) / name).is_dir()]  # fmt: skip
    if args.only:
        sources = [s for s in sources if args.only.lower() in s.name.lower()]
    print(f"{args.numbers} written numbers per source, model {recognizer.model.name or 'cnn'}")
    results = []
    for source in sources:  # each source's pages from the seed: the same, run alone or not
        result = measure(recognizer, source, args.numbers, args.seed, args.why)
        results.append(result)
        found = f"{result['exact']:.3f} / {result['digits_one_by_one']:.3f}"
        low, high = result["cost_of_cutting_95"]
        detail = (
            f"cost of cutting {result['cost_of_cutting']:+.3f}"
            f" (95 % {low:+.3f} to {high:+.3f}); digit count right"
            f" {result['digit_count_right']:.3f}; read {result['read_ms_median']:.0f} ms"
        )
        print(row(f"{source.name}: exact / digits one by one", found, detail))
        apart = result["overlapping_less"]
        low, high = apart["cost_of_cutting_95"]
        print(
            f"    {apart['numbers']} pages no digit reaches into its neighbour by more than a"
            f" third of the narrower: {apart['exact']:.3f} / {apart['digits_one_by_one']:.3f},"
            f" cost {apart['cost_of_cutting']:+.3f} (95 % {low:+.3f} to {high:+.3f})"
        )
        for kind, pages in sorted(result.get("lost", {}).items(), key=lambda kv: -kv[1]):
            print(f"    {pages:4d}  {kind}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
