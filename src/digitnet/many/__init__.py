"""Answering many image files: walked lazily, answered on every core of this machine or on a
Dask cluster, in their order (or as they come), a bad file costing only its own answer.

A million files must not take a million entries of memory: folders are walked as the answers
go (``walk``), and at most WINDOW chunks of CHUNK files per worker are out at any time
(``answer``). Each worker loads the model once: a process of this machine gets the model
file's bytes when it starts; on a cluster the bytes are sent to every worker once
(``Client.scatter(broadcast=True)``) and each worker keeps the loaded model for the tasks that
follow. The files themselves are read by the workers, from a path they share.

A file that cannot be read gets an answer with its ``error``; a worker process that dies (out
of memory, killed) is replaced, its chunk answered again file by file, and a file that kills
a worker twice gets the error "a worker process died reading it" — the other files of the run
keep their answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path

from digitnet.many.cluster import answer_on_cluster
from digitnet.many.resume import (
    OtherAnswers,
    ResumeRefused,
    answered,
    left_to_answer,
    not_answered,
    open_answers,
    provenance,
)
from digitnet.many.task import CHUNK, KINDS, Entry, Task, answer_chunk
from digitnet.many.window import WINDOW, windowed
from digitnet.many.workers import Workers

SMALL_RUN = 8  # chunks: fewer are answered in this process (a worker takes ~1 s to start)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}

__all__ = ["KINDS", "OtherAnswers", "ResumeRefused", "Task", "answer", "answer_chunk",
           "answered", "chunks", "not_answered", "open_answers", "provenance",
           "recognize_many", "walk"]  # fmt: skip


def walk(paths: Iterable[str]) -> Iterator[Entry]:
    """Every image named, or found in a named folder (recursively, in sorted order), as it is
    found — with the reason when a path cannot be read."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            problems: list[OSError] = []
            found = reported = False
            for root, dirs, names in os.walk(path, onerror=problems.append):
                dirs.sort()
                for n in sorted(names):
                    if Path(n).suffix.lower() in IMAGE_SUFFIXES:
                        found = True
                        yield os.path.join(root, n), None
                reported |= bool(problems)
                yield from _problems(problems, name)
            reported |= bool(problems)
            yield from _problems(problems, name)  # a folder that could not be opened at all
            if not found and not reported:
                yield name, "no image files in this folder"
        elif path.exists():
            yield name, None
        else:
            yield name, "no such file or folder"


def _problems(problems: list[OSError], name: str) -> Iterator[Entry]:
    """The folders ``os.walk`` could not read so far (emptied as they are reported)."""
    for err in problems:
        yield err.filename or name, f"cannot read folder: {err.strerror}"
    problems.clear()


def chunks(entries: Iterable[Entry], size: int = CHUNK) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def answer(
    entries: Iterable[Entry],
    task: Task,
    jobs: int = 1,
    ordered: bool = True,
    dask: str | None = None,
) -> Iterator[dict]:
    """Each entry's answer (see ``answer_chunk``), in the entries' order unless not
    ``ordered``: in this process (``jobs`` 1), in ``jobs`` worker processes, or on the Dask
    cluster whose scheduler is at ``dask`` ("tcp://host:8786")."""
    pending = chunks(entries)
    if dask:
        yield from answer_on_cluster(filter(left_to_answer, pending), task, dask, ordered)
        return
    first = list(islice(pending, SMALL_RUN))  # counted with the chunks a resumed run answered:
    # where a chunk is answered (here, or in a worker with one BLAS thread) is part of its answer
    left = filter(left_to_answer, chain(first, pending))
    if jobs <= 1 or len(first) < SMALL_RUN:  # here before worker processes would have started
        for chunk in left:
            yield from answer_chunk(task, chunk)
        return

    with Workers(task, jobs) as workers:
        yield from windowed(workers, left, jobs * WINDOW, ordered)


def recognize_many(
    paths: Iterable[str], model: str | None = None, jobs: int = 1, ordered: bool = True
) -> Iterator[dict]:
    """The digit in each image file (or each image of the named folders), as
    ``digitnet predict --json`` gives it, worked out on ``jobs`` processes and handed back as
    it comes. (``Recognizer.recognize_many`` takes images already in memory.)"""
    return answer(walk(paths), Task.of("predict", model), jobs, ordered)
