"""``digitnet predict`` and ``digitnet read``: the digit, or the number, in each image file or
folder, answered on every core (or a Dask cluster), printed as they come."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

from digitnet.cli.base import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    CommandError,
    add_image_arguments,
    command,
    path_text,
    positive_int,
    writable,
)


@command
def add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="recognise the digit in each image (photos, scans, drawings) or folder of images",
        description="Recognise the digit in each image. Folders are searched for images."
        " A blank image gets no digit and a reason. Exit status 1 if any file failed.",
    )
    add_image_arguments(predict)
    predict.add_argument("--top", type=positive_int, metavar="K", default=0,
                         help="also show the K most probable digits")  # fmt: skip
    predict.add_argument("--csv", metavar="OUT", type=path_text,
                         help="also write a CSV file (a row an image, its note too)")  # fmt: skip
    predict.add_argument("--force", action="store_true",
                         help="replace an existing --csv file")  # fmt: skip
    predict.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    if args.csv:
        writable(Path(args.csv), replace=args.force, model_file=False)  # before any work
    task = task_of(args, "predict")  # the model first: nothing printed or written if it fails
    entries = files_to_answer(args, task)  # and the --resume file
    if not args.json:
        print(f"{'file':<40} digit  confidence")
    with contextlib.ExitStack() as stack:
        table = None
        if args.csv:
            mode = "w" if args.force else "x"
            table = csv_table(stack.enter_context(open(args.csv, mode, newline="")))
        if args.json:
            return answer_files(args, task, entries, json.dumps, table)
        return answer_files(args, task, entries, lambda r: format_prediction(r, args.top), table)


def shown(name: str) -> str:
    """A file name as one line of text: control characters (a newline in a name broke the
    table) written as escapes, the rest as it is."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in name)


def format_prediction(record: dict, top: int) -> str:
    name = shown(record["file"])
    if "error" in record:
        return f"{name:<40} error: {record['error']}"
    if record["digit"] is None:
        return f"{name:<40}     -  {record['reason']}"
    line = f"{name:<40} {record['digit']:>5}  {record['confidence']:>10.4f}"
    if top:
        line += "   " + "  ".join(f"{t['digit']}:{t['probability']:.3f}" for t in record["top"])
    if record.get("note"):
        line += f"   ({record['note']})"
    return line


def csv_table(file) -> Callable[[dict], None]:
    """A CSV writer for predict's answers, one row each as they come."""
    import csv

    writer = csv.writer(file)
    writer.writerow(["file", "digit", "confidence", "reason", "note", "error"])

    def write(r: dict) -> None:
        writer.writerow([r["file"], "" if r.get("digit") is None else r["digit"],
                         "" if r.get("confidence") is None else f"{r['confidence']:.6f}",
                         r.get("reason") or "", r.get("note") or "",
                         r.get("error") or ""])  # fmt: skip

    return write


def task_of(args, kind: str):
    """predict's or read's work with the model the command names (read and loaded: a model
    that is not one is the command's one error line)."""
    from digitnet.many import Task

    return Task.of(kind, args.model, getattr(args, "top", 0))


def files_to_answer(args, task):
    """Every file named or found (as the work goes); with --resume, those its file already
    answers marked so — refused, before anything is printed or written, when they were
    answered by another command or model (``many.answered``)."""
    from digitnet.many import ResumeRefused, answered, not_answered, walk

    entries = walk(args.images)
    if not args.resume:
        return entries
    try:
        return not_answered(entries, answered(args.resume, task))
    except ResumeRefused as err:
        raise CommandError(err) from None


def answer_files(args, task, entries, show: Callable[[dict], str], also=None) -> int:
    """predict's and read's common part: the ``entries`` (``files_to_answer``) answered for
    ``task`` on --jobs processes or --dask; each answer printed (``show``, one or more lines)
    and given to ``also`` as it comes; with --resume, written to that JSON-lines file too,
    each line with its ``provenance`` (the command and the model). When the answers are only
    printed and their reader goes (``| head -1``), the run ends there. Exit status 1 if a file
    failed, 130 on Ctrl-C (what was answered is written)."""
    from digitnet.many import ResumeRefused, answer, open_answers, provenance

    failed, answers = False, 0
    with contextlib.ExitStack() as stack:
        log = None
        if args.resume:
            try:
                log = stack.enter_context(open_answers(args.resume))  # line by line
            except ResumeRefused as err:
                raise CommandError(err) from None
            stamp = provenance(task)
        only_printed = log is None and also is None  # the output is the only product
        try:
            for record in answer(entries, task, args.jobs, not args.unordered, args.dask):
                failed |= "error" in record
                answers += 1
                print(show(record), flush=log is not None or only_printed)
                if only_printed and getattr(sys.stdout, "gone", False):
                    break  # its reader has gone (`| head -1`): nobody is left to answer
                if also:
                    also(record)
                if log:
                    log.write(json.dumps({**record, **stamp}) + "\n")
        except KeyboardInterrupt:
            print("interrupted (Ctrl-C): the answers so far are written", file=sys.stderr)
            return EXIT_INTERRUPTED
    if args.resume and not answers:
        print(f"nothing to do: {args.resume} answers every file already", file=sys.stderr)
    return EXIT_ERROR if failed else 0


@command
def add_read(commands) -> None:
    read = commands.add_parser(
        "read",
        help="read the numbers written in an image: a line of output per line of writing",
        description="Read the numbers written in each image: a line of output per line of "
        "writing, its digits (FILE: 25574). With --json each answer also gives the number as "
        'written, marks and spaces in place ("written": "25.574.-"), each digit\'s box and '
        "each mark's kind and box.",
    )
    add_image_arguments(read)
    read.set_defaults(func=cmd_read)


def cmd_read(args) -> int:
    task = task_of(args, "read")
    entries = files_to_answer(args, task)
    return answer_files(args, task, entries, json.dumps if args.json else format_reading)


def format_reading(record: dict) -> str:
    """A line of output for each line of writing: "FILE: 2021"."""
    name = shown(record["file"])
    if "error" in record:
        return f"{name}: error: {record['error']}"
    lines = (record["text"] or f"({record.get('reason', 'no digits')})").split("\n")
    return "\n".join(f"{name}: {line}" for line in lines)
