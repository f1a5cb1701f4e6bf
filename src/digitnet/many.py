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

import hashlib
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

CHUNK = 32  # files per task: one forward pass for a predict chunk
WINDOW = 4  # chunks out per worker at once: enough to keep it busy, few enough to stay flat
SMALL_RUN = 8  # chunks: fewer are answered in this process (a worker takes ~1 s to start)
PARENT_CHECK_SECONDS = 0.5  # how often a worker looks whether its parent still runs
STOP_SECONDS = 5  # a terminated worker has this long to end before it is killed
POLL_SECONDS = 1  # how often the parent looks whether its workers still run
NOTICE_SECONDS = 2  # a worker's death the pool has not noticed by then, it never will
CONNECT_SECONDS = 10  # to reach a Dask scheduler
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
WORKER_DIED = "a worker process died reading it"
ANSWERED = "answered already"  # an entry of a resumed run: its answer is in the output
KINDS = ("predict", "read")

Entry = tuple[str, str | None]  # a file's name, and why it cannot be read (None: try it)


@dataclass(frozen=True)
class Task:
    """What every file gets: ``kind`` "predict" (the digit, ``top`` most probable too) or
    "read" (the number), with the model whose file content is ``model``."""

    kind: str
    model_name: str
    model: bytes = field(repr=False)
    top: int = 0
    digest: str = ""  # of the model's bytes: a worker keeps one loaded model per digest

    @classmethod
    def of(cls, kind: str, model: str | None = None, top: int = 0) -> Task:
        """The task for a model named as on the command line: None (the best bundled one), a
        bundled model's name, or a model file (digitnet or Keras). The model is read as any
        model file is, and loaded here once: a file that is no model is one ModelFileError
        before any image is answered (in workers it failed each one's start, file by file)."""
        from digitnet.nn.io import read_model_bytes
        from digitnet.zoo import BEST, model_path

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        content = read_model_bytes(model_path(model or BEST))
        task = cls(kind, model or BEST, content, top, hashlib.sha256(content).hexdigest())
        recognizer_for(task)  # kept for the answers given in this process
        return task


# ------------------------------------------------------------------------------ the files


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


# ---------------------------------------------------------------------------- the answers


_loaded: dict[str, Any] = {}  # a worker's recognisers, by model digest


def recognizer_for(task: Task):
    """The task's model, loaded once per process."""
    if task.digest not in _loaded:
        from digitnet.nn import load_model
        from digitnet.recognition import Recognizer

        _loaded[task.digest] = Recognizer(load_model(task.model_name, content=task.model))
    return _loaded[task.digest]


def answer_chunk(task: Task, chunk: Sequence[Entry]) -> list[dict]:
    """Each file's answer: ``{"file": name, ...}`` with the prediction or the reading, or
    with ``error``. Runs wherever the work is done."""
    from digitnet.recognition import read_with
    from digitnet.vision import ImageError

    recognizer = recognizer_for(task)
    readable = [(row, name) for row, (name, problem) in enumerate(chunk) if problem is None]
    names = [name for _, name in readable]
    if task.kind == "predict":  # each file in its chunk's row: its answer, to the last bit
        places = [row for row, _ in readable]
        results = iter(recognizer.recognize_many(names, batch=CHUNK, rows=places))
    else:
        results = iter(_read_each(recognizer, names, read_with, ImageError))
    records = []
    for name, problem in chunk:
        if problem == ANSWERED:
            continue
        result = next(results) if problem is None else ImageError(problem)
        if isinstance(result, ImageError):  # the record names the file; the reason need not
            records.append({"file": name, "error": result.reason})
        elif task.kind == "predict":
            records.append({"file": name, **result.to_dict(task.top)})
        else:
            records.append({"file": name, **result.to_dict()})
    return records


def _read_each(recognizer, names, read_with, ImageError) -> Iterator[Any]:
    for name in names:
        try:
            yield read_with(recognizer, name)
        except ImageError as err:
            yield err
        except Exception as err:  # a bug, but one file's: the others keep their answers
            yield ImageError(f"could not be read ({type(err).__name__}: {err})")


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
        yield from _answer_on_cluster(filter(_left_to_answer, pending), task, dask, ordered)
        return
    first = list(islice(pending, SMALL_RUN))  # counted with the chunks a resumed run answered:
    # where a chunk is answered (here, or in a worker with one BLAS thread) is part of its answer
    left = filter(_left_to_answer, chain(first, pending))
    if jobs <= 1 or len(first) < SMALL_RUN:  # here before worker processes would have started
        for chunk in left:
            yield from answer_chunk(task, chunk)
        return
    with Workers(task, jobs) as workers:
        yield from _windowed(workers, left, jobs * WINDOW, ordered)


def _windowed(workers, pending: Iterator[list[Entry]], window: int, ordered: bool):
    """Keep ``window`` chunks out at once; hand back each one's answers as it is done (in
    order when ``ordered``)."""
    out: deque = deque()  # (future, chunk)
    for chunk in pending:
        out.append((workers.submit(chunk), chunk))
        if len(out) >= window:
            yield from workers.collect(out, ordered)
    while out:
        yield from workers.collect(out, ordered)


def _next_out(out: deque, ordered: bool, first_done) -> tuple:
    """Take (future, chunk) from ``out``: the oldest, or (not ``ordered``) one that is done —
    ``first_done(futures)`` waits for one and returns (done, not done), as both
    ``concurrent.futures.wait`` and ``distributed.wait`` do."""
    if not ordered:
        done, _ = first_done([f for f, _ in out])
        out.rotate(-next(i for i, (f, _) in enumerate(out) if f in done))
    return out.popleft()


class Workers:
    """``jobs`` processes of this machine, each with the task's model loaded once. A process
    that dies is replaced; its chunk is answered again, file by file."""

    def __init__(self, task: Task, jobs: int):
        from digitnet.blas import THREAD_VARIABLES

        self.task, self.jobs = task, jobs
        # One BLAS thread each: the processes share the cores out already, and threads of
        # several processes competing for them slowed a run of 5,000 files from 6.8 s (one
        # process) to 11.9 s (two). Set for the workers' start, put back on exit.
        self.saved_environment = {v: os.environ.get(v) for v in THREAD_VARIABLES}
        os.environ.update({v: "1" for v in THREAD_VARIABLES})
        self.pool = self._start()

    def _start(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # never a fork of a threaded process
        return ProcessPoolExecutor(self.jobs, context, initializer=_start_worker,
                                   initargs=(self.task,))  # fmt: skip

    def submit(self, chunk: list[Entry]):
        return self.pool.submit(_answer_in_worker, chunk)

    def collect(self, out: deque, ordered: bool) -> list[dict]:
        """The answers of one chunk out: the oldest, or (not ``ordered``) the first done."""
        from concurrent.futures.process import BrokenProcessPool

        future, chunk = _next_out(out, ordered, self._first_done)
        try:
            return self._result(future)
        except BrokenProcessPool:
            self._restart(out)
            return [record for k in range(len(chunk)) for record in self._alone(chunk, k)]

    def _result(self, future):
        self._first_done([future])
        return future.result()

    def _first_done(self, futures: list) -> tuple[set, set]:
        """Wait for the first of ``futures`` to be done: (done, not done). If a worker has
        died and the pool has not noticed it within NOTICE_SECONDS, the pool is stopped
        (``stop_now``) and its futures fail with BrokenProcessPool — a worker killed while it
        wrote a result leaves the pool's thread waiting for the rest of that result, no
        longer watching the workers."""
        from concurrent.futures import FIRST_COMPLETED, wait

        dead_since = None
        while True:
            done, not_done = wait(futures, POLL_SECONDS, FIRST_COMPLETED)
            if done:
                return done, not_done
            processes = (getattr(self.pool, "_processes", None) or {}).values()
            if all(process.is_alive() for process in processes):
                dead_since = None
            elif dead_since is None:
                dead_since = time.monotonic()
            elif time.monotonic() - dead_since > NOTICE_SECONDS:
                stop_now(self.pool)

    def _restart(self, out: deque) -> None:
        """A worker died: a new pool, and every chunk still out sent to it again."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._start()
        for _ in range(len(out)):
            future, chunk = out.popleft()
            if not (future.done() and future.exception() is None):  # finished ones stand
                future = self.submit(chunk)
            out.append((future, chunk))

    def _alone(self, chunk: list[Entry], k: int) -> list[dict]:
        """File k of a chunk whose worker died, answered on its own — in its row of the
        chunk, the others marked ANSWERED (its answer to the last bit, see ``not_answered``)."""
        from concurrent.futures.process import BrokenProcessPool

        name, problem = chunk[k]
        if problem == ANSWERED:
            return []
        alone = [(other, ANSWERED) for other, _ in chunk]
        alone[k] = chunk[k]
        try:
            return self._result(self.submit(alone))
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._start()
            return [{"file": name, "error": WORKER_DIED}]

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        """All answered: the workers end. Stopped early (Ctrl-C, or the caller stopped
        reading): they are stopped at once (``stop_now``); nothing is left running."""
        if exc[0] is None:
            self.pool.shutdown(wait=True)
        else:
            stop_now(self.pool)
        for variable, value in self.saved_environment.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


def in_processes(function: Callable[[Any], Any], jobs: Sequence[Any], workers: int) -> list:
    """``function(job)`` for each job (a module-level function: it runs in ``workers`` worker
    processes), the results in the jobs' order. Ctrl-C or a failure stops the workers at once
    (``stop_now``), not after every job sent out."""
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max(1, min(workers, len(jobs))))
    try:
        results = list(pool.map(function, jobs))
    except BaseException:
        stop_now(pool)
        raise
    pool.shutdown()
    return results


def stop_now(pool) -> None:
    """Shut a ProcessPoolExecutor down without waiting for the work it has out: its workers
    are terminated. A worker killed while it was writing a result leaves half a message in
    the results pipe, and the pool's own thread would wait for the rest forever — and the
    interpreter, which joins that thread at exit, with it (CPython 3.11). Once the
    workers are gone, this process's end of the pipe is closed too: the thread reads the end
    of the pipe instead, and finishes."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    results = getattr(pool, "_result_queue", None)  # shutdown forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
    if results is not None:
        results._writer.close()


_task: Task | None = None  # a worker process's task, set when it starts


def _start_worker(task: Task) -> None:
    global _task
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=_leave_with, args=(os.getppid(),), daemon=True).start()
    _task = task
    recognizer_for(task)  # the model, loaded before the first chunk comes


def _leave_with(parent: int) -> None:
    """End this worker when its parent is gone (killed, crashed): a worker waiting for work
    that will never come would live on, and hold the parent's output open."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _answer_in_worker(chunk: list[Entry]) -> list[dict]:
    return answer_chunk(_task, chunk)


# ---------------------------------------------------------------------------- a cluster


def _answer_on_cluster(pending: Iterator[list[Entry]], task: Task, address: str,
                       ordered: bool) -> Iterator[dict]:  # fmt: skip
    """The chunks ``pending`` answered on the Dask cluster whose scheduler is at ``address``."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(
            "--dask needs the distributed package: pip install 'digitnet[dask]'"
        ) from None
    client = connect_to_scheduler(Client, address)
    with client:
        shipped = client.scatter(task, broadcast=True)  # the model, once to every worker
        workers = len(client.scheduler_info()["workers"]) or 1
        cluster = Cluster(client, shipped)
        yield from _windowed(cluster, pending, workers * WINDOW, ordered)


def connect_to_scheduler(Client, address: str):
    """A ``distributed.Client`` of the scheduler at ``address``, or one ConnectionError that
    says why not, within CONNECT_SECONDS whatever answers there: Client's
    own timeout covered the connection, not the handshake after it (a listener that never
    spoke hung digitnet for good), a server that is not Dask's made it allocate 3.07 EiB, and
    an address it cannot use (ucx://) was a TypeError traceback."""
    outcome: list = []

    def connect() -> None:
        try:
            outcome.append(Client(address, timeout=CONNECT_SECONDS))
        except BaseException as err:  # said in the caller's thread, as one line
            outcome.append(err)

    thread = threading.Thread(target=connect, daemon=True, name="dask-connect")
    thread.start()
    thread.join(CONNECT_SECONDS)
    if not outcome:
        raise ConnectionError(
            f"nothing at {address} answered as a Dask scheduler within {CONNECT_SECONDS} s;"
            " start one with `dask scheduler`"
        )
    found = outcome[0]
    if isinstance(found, (OSError, TimeoutError)):  # a wrong address, or no scheduler there
        raise ConnectionError(
            f"no Dask scheduler answers at {address} ({found}); start one with `dask scheduler`"
        )
    if isinstance(found, ValueError):
        raise ConnectionError(
            f"{address!r} is not a Dask scheduler's address ({found}); e.g. tcp://host:8786"
        )
    if isinstance(found, BaseException):  # MemoryError, TypeError...: not Dask talking
        raise ConnectionError(
            f"{address} does not answer as a Dask scheduler ({type(found).__name__}); give"
            " the address `dask scheduler` prints, e.g. tcp://host:8786"
        )
    return found


class Cluster:
    """The chunks as tasks of a Dask cluster (``distributed``)."""

    def __init__(self, client, task_future):
        self.client, self.task = client, task_future

    def submit(self, chunk: list[Entry]):
        return self.client.submit(answer_chunk, self.task, chunk, pure=False)

    def collect(self, out: deque, ordered: bool) -> list[dict]:
        from distributed import wait

        future, _ = _next_out(out, ordered, lambda fs: wait(fs, return_when="FIRST_COMPLETED"))
        return future.result()


# -------------------------------------------------------------------------------- resume


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
    from digitnet.nn.files import FileRefused, open_regular

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
    import json

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
    from digitnet.nn.files import FileRefused, open_regular

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


def _left_to_answer(chunk: list[Entry]) -> bool:
    return any(problem != ANSWERED for _, problem in chunk)


def recognize_many(
    paths: Iterable[str], model: str | None = None, jobs: int = 1, ordered: bool = True
) -> Iterator[dict]:
    """The digit in each image file (or each image of the named folders), as
    ``digitnet predict --json`` gives it, worked out on ``jobs`` processes and handed back as
    it comes. (``Recognizer.recognize_many`` takes images already in memory.)"""
    return answer(walk(paths), Task.of("predict", model), jobs, ordered)
