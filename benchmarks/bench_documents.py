"""Benchmark: numbers people really wrote on real documents, read by `digitnet read`.

Two development sets, measured and tuned on, never trained on:

* cheques: 400 amounts written by hand on real bank cheques (``../shared/data/realworld/
  cheques``, or ``--cheques DIR``): separators and end marks (``25.574.-``), a printed
  security pattern behind the ink, digits joined in one stroke; labelled with the digits only;
* registers: the row numbers of Danish parish registers (``coastalcph/mgr-birthdates``,
  ``data/row_id/validation``, given with ``--registers DIR``), those of two digits or more: a
  dark page edge, ruled cells, underlines, cursive figures of the 19th century.

A number is read right when the digits read, in order, equal the label. For each set: the
share read exactly, how many digits the misread ones gained or lost, how many misread were
read as lines of which one is the label (a register's cell holds a second number under the
row's, some struck through: the label counts only the row's), the time a number takes,
and (``--show N``) the first N misread, with what was read. A set whose folder is absent is
skipped with one line.

    python benchmarks/bench_documents.py [--model cnn] [--registers DIR] [--show 20] [--json]
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import csv
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from common import row
from realworld import DEFAULT_ROOT

from digitnet.reading.lattice import read_with
from digitnet.reading.recognizer import Recognizer
from digitnet.zoo import resolve_model


def cheques(folder: Path) -> list[tuple[Path, str]]:
    with (folder / "labels.csv").open(newline="") as file:
        return [(folder / "images" / r["file"], r["text"]) for r in csv.DictReader(file)]


def registers(folder: Path) -> list[tuple[Path, str]]:
    """The row numbers of two digits or more (a label like "4a" is no number)."""
    with (folder / "labels.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    return [(folder / r["filename"], r["label"]) for r in rows
            if r["label"].isdigit() and len(r["label"]) >= 2]  # fmt: skip


def measure(recognizer: Recognizer, items: list[tuple[Path, str]], show: int) -> dict:
    right, gained, seconds, wrong, a_line = 0, Counter(), [], [], 0
    for path, label in items:
        started = time.perf_counter()
        lines = read_with(recognizer, path).text.split("\n")
        seconds.append(time.perf_counter() - started)
        text = "".join(lines)
        if text == label:
            right += 1
            continue
        a_line += label in lines
        gained[max(-2, min(2, len(text) - len(label)))] += 1
        wrong.append((path.name, label, text))
    for name, label, text in wrong[:show]:
        print(f"    {name}: {label} read {text or '(nothing)'}")
    return {
        "numbers": len(items),
        "exact": right / len(items),
        "misread_by_digit_count": {str(k): v for k, v in sorted(gained.items())},
        "misread_with_the_label_as_one_line": a_line,
        "median_ms": 1000 * statistics.median(seconds),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="cnn (default), tutorial, or a model file")
    parser.add_argument("--cheques", type=Path, default=Path(DEFAULT_ROOT) / "cheques")
    parser.add_argument("--registers", type=Path, help="mgr-birthdates' data/row_id/validation")
    parser.add_argument("--show", type=int, default=0, metavar="N", help="the first N misread")
    parser.add_argument("--json", action="store_true", help="the figures as one JSON object")
    args = parser.parse_args()
    recognizer = Recognizer(resolve_model(args.model))
    sets = {"cheques": (args.cheques, cheques), "registers": (args.registers, registers)}
    figures = {}
    for name, (folder, items_of) in sets.items():
        if folder is None or not (folder / "labels.csv").exists():
            print(f"{name}: skipped ({folder or 'no folder given'} holds no labels.csv)")
            continue
        print(f"{name} ({folder}):")
        figures[name] = result = measure(recognizer, items_of(folder), args.show)
        print(row(f"  {name}: exact, of {result['numbers']}", f"{result['exact']:.3f}"))
        print(row("  misread: digits read minus written (-2 or fewer ... 2 or more)",
                  json.dumps(result["misread_by_digit_count"])))  # fmt: skip
        print(row("  misread as lines of which one is the label",
                  f"{result['misread_with_the_label_as_one_line']}"))  # fmt: skip
        print(row("  a number's reading, median", f"{result['median_ms']:.1f} ms"))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
