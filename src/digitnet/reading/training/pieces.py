"""Training data for the reader's own networks, the piece checker (``reading.checker``) and
the pair reader (``reading.pairs``): the pieces that the reader's segmentation cuts from pages
written with MNIST *training* digits 0-49,999 (``digitnet.writing``; 50,000-59,999 are kept for
development), each labelled by the page's record of whose writing every pixel is.

Pages are written in chunks, each with a seed of its own, by worker processes: the data are
the same whatever the number of workers. The last tenth of the chunks is held out.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from digitnet.data import load_mnist
from digitnet.parallel import in_processes
from digitnet.vision.pieces import Candidate, Piece
from digitnet.vision.segment import segment
from digitnet.writing import Digits, write_page

TRAINING_DIGITS = 50_000  # MNIST training digits written on the pages (50,000+: development)
PURE = 0.85  # of a whole digit's ink, at least this share is its own
COMPLETE = 0.75  # and it holds at least this share of the digit

Labelled = tuple[np.ndarray, np.ndarray]  # inputs (n, ...) and labels (n,)


def training_digits():
    """MNIST training digits 0-49,999 as ``writing.Digits``."""
    (x_train, y_train), _ = load_mnist()
    return Digits.from_mnist("MNIST training", x_train[:TRAINING_DIGITS],
                             y_train[:TRAINING_DIGITS])  # fmt: skip


def owned(owner: np.ndarray, piece: Piece, digits: int, marks: int = 0) -> np.ndarray:
    """How many of the piece's ink pixels are each digit's writing, then each mark's,
    (digits + marks,) (``writing.Page.owner``: mark k is -2 - k)."""
    x, y, width, height = piece.box
    return counted(owner[y : y + height, x : x + width][piece.mask], digits, marks)


def counted(mine: np.ndarray, digits: int, marks: int) -> np.ndarray:
    """Pixels of each digit, then of each mark, in ``mine`` (owner values)."""
    ids = np.where(mine >= 0, mine, digits - 2 - mine)[(mine >= 0) | (marks > 0) & (mine <= -2)]
    return np.bincount(ids, minlength=digits + marks)


def held_whole(counts: np.ndarray, totals: np.ndarray) -> tuple[int, float] | None:
    """The writing — a digit, or a mark after the digits — that a piece whose ink is
    ``counts`` (per digit and mark) holds whole — at least PURE of its ink that one's, and at
    least COMPLETE of it (``totals``: each one's ink) — with the share of it the piece holds;
    None when it holds none whole."""
    d = int(counts.argmax())
    pure = counts[d] / max(counts.sum(), 1)
    complete = counts[d] / max(totals[d], 1)
    return (d, float(complete)) if pure >= PURE and complete >= COMPLETE else None


def totals(page) -> np.ndarray:
    """How many pixels of the page are each digit's writing, then each mark's,
    (digits + marks,)."""
    return counted(page.owner.ravel(), len(page.digits), len(page.marks))


def cut_pages(
    pages: int, seed: int, **writing
) -> Iterator[tuple[Any, list[Candidate], np.ndarray]]:
    """Each of ``pages`` pages written with the training digits (``writing``: options of
    ``write_page``), the candidates ``segment`` cuts from it, and ``totals(page)``."""
    source = training_digits()
    rng = np.random.default_rng(seed)
    for _ in range(pages):
        page = write_page(source, rng, alone=False, **writing)
        _, candidates, _ = segment(page.image)
        yield page, candidates, totals(page)


@dataclass
class Written:
    """Labelled pieces: ``x[:held_out]``, ``y[:held_out]`` to train on, the rest held out."""

    x: np.ndarray
    y: np.ndarray
    held_out: int
    pages: int
    seconds: float


def write(label: Callable[[int, int], Labelled], pages: int, per_chunk: int, seed: int,
          workers: int) -> Written:  # fmt: skip
    """``label(pages, seed)`` (a module-level function: it runs in worker processes) on
    ``pages`` pages in chunks of ``per_chunk``, chunk i with seed ``seed * 1_000_003 + i``."""
    start = time.perf_counter()
    chunks = [(label, per_chunk, seed * 1_000_003 + i) for i in range(max(1, pages // per_chunk))]
    parts = in_processes(_labelled_chunk, chunks, workers)
    held = len(parts) // 10 or 1
    return Written(
        x=np.concatenate([p[0] for p in parts]),
        y=np.concatenate([p[1] for p in parts]),
        held_out=sum(len(p[1]) for p in parts[:-held]),
        pages=len(chunks) * per_chunk,
        seconds=time.perf_counter() - start,
    )


def _labelled_chunk(job: tuple[Callable[[int, int], Labelled], int, int]) -> Labelled:
    label, pages, seed = job
    return label(pages, seed)


def command(argv: Sequence[str] | None, what: str, train: Callable[..., Any], pages: int,
            epochs: int, report: Callable[[dict], str]) -> int:  # fmt: skip
    """The command line that trains one of the reader's networks and writes its model file:
    ``train(pages, epochs, seed, workers, start_from=, flagged_ones=, joined=,
    flat_zeros=)``;
    ``report(metadata)`` says how well it did."""
    parser = argparse.ArgumentParser(description=f"Train the {what} of digitnet read.")
    parser.add_argument("--out", required=True, help="where to write the model file")
    parser.add_argument("--pages", type=int, default=pages)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flagged-ones", type=float, default=0.0, metavar="SHARE",
                        help="the share of 1s written with a continental flag")  # fmt: skip
    parser.add_argument("--joined", type=float, default=0.0, metavar="SHARE",
                        help="the share of digits joined to the next by a stroke")  # fmt: skip
    parser.add_argument("--flat-zeros", type=float, default=0.0, metavar="SHARE",
                        help="the share of 0s written flat and wide, chained to the digit "
                             "before")  # fmt: skip
    parser.add_argument("--start-from", metavar="MODEL",
                        help="go on training this model file (at a tenth of the rate)")  # fmt: skip
    args = parser.parse_args(argv)
    model = train(args.pages, args.epochs, args.seed, args.workers,
                  start_from=args.start_from, flagged_ones=args.flagged_ones,
                  joined=args.joined, flat_zeros=args.flat_zeros)  # fmt: skip
    module = train.__module__
    if module == "__main__":  # run as ``python -m digitnet.checker``: the module's own name
        module = sys.modules["__main__"].__spec__.name
    model.metadata["command"] = f"python -m {module} " + " ".join(sys.argv[1:])
    model.save(args.out, overwrite=True)
    print(f"{args.out}: {report(model.metadata)}")
    return 0
