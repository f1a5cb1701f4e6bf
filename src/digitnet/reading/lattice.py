"""Reading a written number: its ink cut into candidate pieces (``vision.segment``), every way
of reading them as a lattice — each piece a digit, some pieces two digits written touching,
some slices not writing at all — and the best path through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from digitnet.marks import KINDS, Mark
from digitnet.reading.checker import PieceChecker, bundled_checker
from digitnet.reading.pairs import NOT_A_PAIR, PairReader, bundled_pair_reader
from digitnet.reading.recognizer import Prediction, Recognizer, default_recognizer
from digitnet.vision.box import Box
from digitnet.vision.pieces import Candidate, Piece, Segmented
from digitnet.vision.segment import segment


@dataclass
class Reading:
    """A written number: its ``text`` (its digits, lines joined by "\\n"), each digit's
    Prediction (with its box and line), the marks written among them (``marks.Mark``) and
    the number as ``written``: digits and marks in place, a space where the writer left one."""

    text: str
    digits: list[Prediction]
    reason: str | None = None
    marks: list[Mark] = field(default_factory=list)
    written: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "written": self.written,
            "digits": [
                {"digit": d.digit, "confidence": d.confidence, "box": list(d.box), "line": d.line}
                for d in self.digits
            ],
            "marks": [m.to_dict() for m in self.marks],
        }
        if self.reason:
            out["reason"] = self.reason
        return out


# How a reading is scored: each digit adds log p(digit) + CHECKER_WEIGHT * log p(whole) +
# DIGIT_BONUS (p(whole): the piece checker's belief that the piece is one whole digit); a
# piece read as two digits written touching adds log p(pair) + PAIR_BONUS (p(pair): the
# pair reader's); a piece read as a mark adds CHECKER_WEIGHT * log p(mark) + MARK_BONUS (the
# checker's belief that it is one whole mark); each slice left out as not writing adds SKIP +
# CHECKER_WEIGHT * log (1 - p(whole)) of the slice alone. Chosen on pages written with MNIST
# training digits 50,000-59,999 (development), never on the benchmark's evaluation digits: a
# grid over the four constants finds nothing better beyond noise (docs/history.md has what else
# was tried). MARK_BONUS on the same 1,000 pages: 0.5 read 956 right, 0 959, -0.5 960, the
# real cheques (development) 0.4525 at each; below 0, handwritten separators fall out of
# ``written`` (5 of 12 amounts kept at -0.5, 9 at 0).
CHECKER_WEIGHT = 0.5
DIGIT_BONUS = 0.5
PAIR_BONUS = 0.5
MARK_BONUS = 0.0
SKIP = -2.0
UNLIKELY_MARK = 1e-3  # a candidate the checker believes less to be a mark is not read as one
SURE_MARK = 0.5  # a mark the reader is less sure of is left out of ``written`` and ``marks``
SPACE = 2.5  # times the line's median gap: a wider gap is a space in ``written`` ...
SPACE_MIN = 0.4  # ... when it is this much of the line's digit height too (digits written
# evenly far apart have no spaces between them, typed "12 34" has one)
NOTHING_WRITTEN = "no digit: nothing digit-shaped"


def read_with(recognizer: Recognizer, image: Any, checker: PieceChecker | None = None) -> Reading:
    """Read a number: cut it into candidate pieces (``segment``), then ``read_segments``."""
    return read_segments(recognizer, segment(image), checker)


def read_segments(
    recognizer: Recognizer,
    segmented: Segmented,
    checker: PieceChecker | None = None,
    pair_reader: PairReader | None = None,
) -> Reading:
    """Read a number already cut into candidate pieces: the ``Lattice`` of its readings, and
    the best path through it."""
    lattice = Lattice.of(recognizer, segmented, checker, pair_reader)
    if lattice is None:  # no writing, or none that may be a digit alone
        return Reading("", [], segmented[2] or NOTHING_WRITTEN)
    return lattice.reading()


@dataclass
class Lattice:
    """Every way to read a number cut into ``parts`` slices: each candidate — the single
    digits, then the pairs, then the marks — with its score and the digits it reads as (one,
    two for a pair, none for a mark: ``marks`` has it), and the score of leaving each slice
    out as not writing (see CHECKER_WEIGHT)."""

    parts: int
    candidates: list[Candidate]
    scores: list[float]
    readings: list[list[Prediction]]
    skips: list[float]
    marks: list[Mark | None]

    @classmethod
    def of(
        cls,
        recognizer: Recognizer,
        segmented: Segmented,
        checker: PieceChecker | None = None,
        pair_reader: PairReader | None = None,
    ) -> Lattice | None:
        """Every single-digit candidate recognised, every candidate digit or mark checked, one
        forward pass each, and the pieces that may be two digits written touching read as
        pairs too; None when nothing was cut."""
        parts, everything, _ = segmented
        singles = [c for c in everything if c.single]  # read as one digit each
        if not singles:
            return None
        pieces = [c.piece for c in singles]
        predictions = [Prediction(None, input=p.image, box=p.box, line=p.line) for p in pieces]
        inputs = np.stack([p.image for p in pieces])  # (n, 28, 28)
        recognizer.decide(predictions, recognizer.model.predict(inputs, verbose=0))
        flat = [c for c in everything if c.mark and not c.single]  # a mark if anything
        judged = (checker or bundled_checker()).judge([c.piece for c in singles + flat])
        whole = np.clip(judged.whole, 1e-6, 1 - 1e-6)  # (n + len(flat),)
        scores = [math.log(max(d.confidence, 1e-12)) + CHECKER_WEIGHT * math.log(w) + DIGIT_BONUS
                  for d, w in zip(predictions, whole[: len(singles)], strict=True)]  # fmt: skip
        readings: list[list[Prediction]] = [[d] for d in predictions]
        skips = [SKIP] * parts
        for c, w in zip(singles + flat, whole, strict=True):
            if c.first == c.last:
                skips[c.first] = SKIP + CHECKER_WEIGHT * math.log(1 - w)
        pairs = [c for c in everything if c.piece.pair is not None]
        read = (pair_reader or bundled_pair_reader()).read([c.piece for c in pairs])  # (m, 101)
        for c, p in zip(pairs, read, strict=True):  # each a second reading of its candidate
            readings.append(pair_predictions(c.piece, p))
            scores.append(math.log(max(float(p[:NOT_A_PAIR].max()), 1e-12)) + PAIR_BONUS)
        marks: list[Mark | None] = [None] * len(readings)
        marked = []
        for c, m, kind in zip(singles + flat, judged.mark, judged.kind, strict=True):
            if c.mark and m >= UNLIKELY_MARK:  # a third reading of its candidate: as a mark
                marked.append(c)
                readings.append([])
                scores.append(CHECKER_WEIGHT * math.log(m) + MARK_BONUS)
                marks.append(Mark(KINDS[kind], float(m), c.piece.box, c.piece.line))
        return cls(parts, singles + pairs + marked, scores, readings, skips, marks)

    def best(self) -> list[int]:
        """The candidates (indices) of the best path: see ``choose_reading``."""
        return choose_reading(self.parts, self.candidates, self.scores, self.skips)

    def reading(self) -> Reading:
        """The number the best path reads: its digits, a line break between lines; its marks
        (those the reader is SURE_MARK of) and the number as written (``as_written``)."""
        path = self.best()
        digits = [d for i in path for d in self.readings[i]]
        marks = [m for i in path if (m := self.marks[i]) is not None and m.confidence >= SURE_MARK]
        if not digits:
            return Reading("", [], NOTHING_WRITTEN, marks, as_written([], marks, {}))
        breaks = ["\n" if d.line != before.line else ""
                  for before, d in zip(digits[:1] + digits[:-1], digits, strict=True)]  # fmt: skip
        text = "".join(b + str(d.digit) for b, d in zip(breaks, digits, strict=True))
        heights = {self.candidates[i].piece.line: self.candidates[i].piece.row[1] for i in path}
        return Reading(text, digits, None, marks, as_written(digits, marks, heights))


def as_written(digits: list[Prediction], marks: list[Mark], heights: dict[int, float]) -> str:
    """The digits and marks line by line, left to right, a space where a gap is SPACE times
    its line's median gap and SPACE_MIN of its digit height (``heights``: line -> digit
    height, pixels)."""
    items = sorted([(d.line, d.box, str(d.digit)) for d in digits] +
                   [(m.line, m.box, m.symbol) for m in marks],
                   key=lambda item: (item[0], item[1].x))  # fmt: skip
    gaps = [(a[0], b[1].x - a[1].right) for a, b in pairwise(items) if a[0] == b[0]]
    usual = {line: float(np.median([g for at, g in gaps if at == line])) for line, _ in gaps}
    out, before = [], None
    for line, box, symbol in items:
        if before is not None:
            gap = box.x - before[1].right
            if line != before[0]:
                out.append("\n")
            elif gap > max(SPACE * usual[line], SPACE_MIN * heights.get(line, box.height)):
                out.append(" ")
        out.append(symbol)
        before = (line, box)
    return "".join(out)


def pair_predictions(piece: Piece, p: np.ndarray) -> list[Prediction]:
    """The two digits of a piece read as the pair ``p`` (101,): each digit's probabilities are
    the pair probabilities summed over the other digit; the box is split at the column of
    least ink in the middle half of the piece."""
    pairs = p[:NOT_A_PAIR].reshape(10, 10)  # (first digit, second digit)
    pairs = pairs / max(float(pairs.sum()), 1e-12)
    first, second = np.unravel_index(int(pairs.argmax()), pairs.shape)
    x, y, width, height = piece.box
    ink = piece.mask.sum(axis=0)  # (width,): a pair is always a piece cut by segment
    split = width // 4 + int(np.argmin(ink[width // 4 : width - width // 4])) if width > 3 else 1
    halves = ((first, pairs.sum(axis=1), Box(x, y, split, height)),
              (second, pairs.sum(axis=0), Box(x + split, y, width - split, height)))  # fmt: skip
    return [Prediction(int(d), float(m[d]), [float(v) for v in m], box=box, line=piece.line)
            for d, m, box in halves]  # fmt: skip


def choose_reading(
    parts: int, candidates: list[Candidate], scores: list[float], skips: list[float]
) -> list[int]:
    """The candidates (indices) that, with slices left out as not writing, cover slices
    0..parts-1 in order with the highest total score: the candidates' ``scores`` plus
    ``skips[k]`` for each slice k left out. Dynamic programming over the slices."""
    best = [0.0] + [-np.inf] * parts  # best[k]: the best score covering slices 0..k-1
    back: list[int | None] = [None] * (parts + 1)  # the candidate ending there, None: a skip
    by_end: list[list[int]] = [[] for _ in range(parts)]
    for index, c in enumerate(candidates):
        by_end[c.last].append(index)
    for k in range(parts):  # fill best[k + 1]
        best[k + 1], back[k + 1] = best[k] + skips[k], None
        for index in by_end[k]:
            score = best[candidates[index].first] + scores[index]
            if score > best[k + 1]:
                best[k + 1], back[k + 1] = score, index
    chosen, k = [], parts
    while k > 0:
        index = back[k]
        if index is None:
            k -= 1
        else:
            chosen.append(index)
            k = candidates[index].first
    return chosen[::-1]


def read_number(image: Any, model=None) -> Reading:
    """The number written in ``image``: its digits left to right, each with a box."""
    recognizer = default_recognizer() if model is None else Recognizer(model)
    return read_with(recognizer, image)
