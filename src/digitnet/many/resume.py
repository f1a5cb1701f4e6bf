"""``--resume``: the files a JSON-lines output answers already, so a run stopped halfway goes on
where it stopped — and never a change to a file that is not this command's answers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator

from digitnet.many.task import ANSWERED, Entry, Task
from digitnet.nn.files import FileRefused, open_regular


class ResumeRefused(Exception):
    """A --resume file that is not this command's answers: left exactly as it was."""


class OtherAnswers(ResumeRefused):
    """A --resume file holds another command's or another model's answers."""


MAX_LINE_BYTES = 2**20  # an answer is a few hundred bytes; a page's reading a few kilobytes
RECORD_START = b'{"file": '  # how every line of an answers file begins (json.dumps)


def provenance(task: Task) -> dict[str, str]:
    """What each line of a --resume file says of who answered it: the command and the model
    (its name, and the SHA-256 of its bytes: a model file retrained under the same name is
    another model)."""
    return {"command": task.kind, "model": task.model_name, "model_sha256": task.digest}


def answered(path: str | os.PathLike, task: Task | None = None) -> set[str]:
    """The files already answered in a JSON-lines output: a run stopped halfway (a crash,
    Ctrl-C) is resumed from it. Only a file of answers is taken: every line a JSON record
    of a file's answer, at most MAX_LINE_BYTES, and with ``task`` one given by the same
    command and model (``provenance``) — anything else raises ResumeRefused (OtherAnswers for
    another command's or model's answers) and the file is left as it was. The one change
    made: a last line cut short by a crash (no newline yet, an answer's beginning) is removed,
    so what is appended follows whole lines. Only a regular file is read (a FIFO or a device
    is refused, never waited on)."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return set()
    except FileRefused as err:
        raise ResumeRefused(f"--resume {err}") from None
    done: set[str] = set()
    keep = 0  # bytes of whole lines
    cut = False  # the last line was cut short by a crash
    with os.fdopen(fd, "rb") as file:
        for number, line in enumerate(iter(lambda: file.readline(MAX_LINE_BYTES + 1), b""), 1):
            if not line.endswith(b"\n"):  # the last line, or one longer than any answer
                cut = len(line) <= MAX_LINE_BYTES and line.startswith(RECORD_START)
                if cut:
                    break
                raise _not_answers(path, number, "is not a whole answer")
            record = _record(line)
            if record is None:
                raise _not_answers(path, number, "is not an answer")
            if task is not None:
                _check_provenance(path, record, task)
            done.add(record["file"])
            keep += len(line)
    if cut:
        with open(path, "r+b") as file:
            file.truncate(keep)
    return done


def _record(line: bytes) -> dict | None:
    """The answer record a line of an answers file holds, or None."""
    if not line.startswith(RECORD_START):
        return None
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("file"), str) else None


def _check_provenance(path, record: dict, task: Task) -> None:
    ours = provenance(task)
    theirs = {key: record.get(key) for key in ours}
    if theirs == ours:
        return
    if not all(isinstance(value, str) for value in theirs.values()):
        raise _not_answers(path, None, "does not say which command and model answered it")
    said = [f"`digitnet {p['command']} --model {p['model']}` (sha256"
            f" {p['model_sha256'][:12]})" for p in (theirs, ours)]  # fmt: skip
    raise OtherAnswers(
        f"{path} holds answers of {said[0]}, not of {said[1]}: resume with the same command"
        " and model, or give --resume another file"
    )


def _not_answers(path, line: int | None, problem: str) -> ResumeRefused:
    where = f"line {line}" if line else "a line"
    return ResumeRefused(
        f"--resume {path} is not a file of digitnet's answers ({where} {problem}), so nothing"
        " is written to it: name a new file, or one an earlier run of this command wrote"
    )


def open_answers(path: str | os.PathLike):
    """The --resume file, opened to append lines (created if missing): a regular file only."""
    try:
        fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except FileRefused as err:
        raise ResumeRefused(f"--resume {err}") from None
    return os.fdopen(fd, "a", buffering=1, encoding="utf-8")


def not_answered(entries: Iterable[Entry], done: set[str]) -> Iterator[Entry]:
    """The entries, those in ``done`` marked ANSWERED: answered no more, they keep their
    places in the chunks, so every other file is answered in the very row of the very pass
    it had in a run that was not stopped (see ``Recognizer.outputs``)."""
    return ((name, ANSWERED if name in done else problem) for name, problem in entries)


def left_to_answer(chunk: list[Entry]) -> bool:
    return any(problem != ANSWERED for _, problem in chunk)
