"""Running a parser of untrusted bytes where its crash cannot take digitnet down.

HDF5, the C library under h5py, reads a Keras ``.h5`` file and the weights inside a ``.keras``
one, and it trusts the file more than it should: sixteen bytes changed in a 72 KB ``.h5``
crashed the whole program with a segmentation fault, and a 73 KB file asked it for 4.7 GB. So
``isolated(function, *args)`` runs the parsing in a process of its own, under a memory limit
(MEMORY_BYTES more than it holds when it starts) and a time limit (SECONDS). What comes back
is the function's result or its ModelFileError; a crash, a limit hit or any other failure
there is one ModelFileError too.

The process: a helper interpreter (``python -m digitnet.nn.isolation``), started on first
use with NumPy and h5py imported, forks one child per job, so a job costs a few milliseconds,
not an interpreter's start (0.3 s). A fresh interpreter, not ``multiprocessing``: that would
import the caller's main script again in the child, and a user's script without an
``if __name__ == "__main__":`` guard would fail. Where there is no ``fork`` (Windows), the
helper runs the job itself and is started again after a crash.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from digitnet.nn.errors import ModelFileError

MEMORY_BYTES = 1 << 30  # beyond what the child holds at its start; the weights take <= 128 MB
SECONDS = 10.0  # a 128 MB Keras file is read in about a second
PRELOADED = ("numpy", "h5py", "digitnet.nn.keras_files")  # imported once, by the helper
HEADER = struct.Struct("<Q")  # each message: its length, then a pickle


def isolated(function: Callable[..., Any], *args: Any, what: str = "the file") -> Any:
    """``function(*args)`` (a module-level function: named to the helper, not sent) run in a
    process of its own, as the module's docstring says; ``what`` names the work in errors."""
    ok, value = _helper().run((function, args), what)
    if not ok:
        raise ModelFileError(value)
    return value


# ------------------------------------------------------------------------ this process's side


class _Helper:
    """The helper process, started once, and a lock: one job at a time goes through it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None

    def run(self, job: tuple, what: str) -> tuple[bool, Any]:
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "digitnet.nn.isolation"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            try:
                _send(self.process.stdin, pickle.dumps(job))
                answer = _receive(self.process.stdout, time.monotonic() + SECONDS + 10)
            except (OSError, EOFError, TimeoutError):  # the helper itself is gone or stuck
                self.process.kill()
                self.process.wait()
                self.process = None
                return False, f"reading {what} ended the process that read it"
        kind, payload = answer[:1], answer[1:]
        if kind == b"R":
            return pickle.loads(payload)
        return False, f"reading {what} {payload.decode()}"


_the_helper: _Helper | None = None
_making = threading.Lock()


def _helper() -> _Helper:
    global _the_helper
    with _making:
        if _the_helper is None:
            _the_helper = _Helper()
    return _the_helper


def _send(stream, data: bytes) -> None:
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream, deadline: float | None) -> bytes:
    """One message from ``stream`` (a pipe), or TimeoutError past ``deadline`` (None: none)."""
    size = HEADER.unpack(_read(stream.fileno(), HEADER.size, deadline))[0]
    return _read(stream.fileno(), size, deadline)


def _read(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        chunk = _read_some(fd, deadline, left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------- the helper's side


def serve(jobs, answers) -> None:
    """The helper: for each job read from ``jobs``, a child's outcome written to ``answers``
    — b"R" and the pickled (ok, value), or b"E" and why there is none."""
    for module in PRELOADED:
        with contextlib.suppress(ImportError):  # h5py is optional: a job says it is missing
            __import__(module)
    while True:
        try:
            job = _receive(jobs, None)
        except EOFError:  # digitnet has gone
            return
        _send(answers, _outcome_of(job))


def _outcome_of(job: bytes) -> bytes:
    if not hasattr(os, "fork"):
        return b"R" + _run(job)
    readable, writable = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns
        os.close(readable)
        code = 0
        try:
            _limit_memory(MEMORY_BYTES)
            data = _run(job)
            with os.fdopen(writable, "wb") as out:
                out.write(data)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(writable)
    deadline = time.monotonic() + SECONDS
    chunks = []
    try:
        while chunk := _read_some(readable, deadline):
            chunks.append(chunk)
    except TimeoutError:
        os.kill(child, 9)
        os.waitpid(child, 0)
        return b"E" + b"took more than %g s" % SECONDS
    finally:
        os.close(readable)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        return b"E" + b"crashed the HDF5 library (signal %d)" % os.WTERMSIG(status)
    if os.waitstatus_to_exitcode(status) != 0 or not chunks:
        return b"E" + b"ended its process without an answer"
    return b"R" + b"".join(chunks)


def _read_some(fd: int, deadline: float | None, most: int = 1 << 20) -> bytes:
    """What ``fd`` has (b"" at its end), waiting until ``deadline`` at most."""
    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
    if not select.select([fd], [], [], wait)[0]:
        raise TimeoutError
    return os.read(fd, min(most, 1 << 20))


def _run(job: bytes) -> bytes:
    """The pickled (ok, value) of a job: its result, or its failure as a message."""
    try:
        function, args = pickle.loads(job)
        outcome: tuple[bool, Any] = (True, function(*args))
    except ModelFileError as err:
        outcome = (False, str(err))
    except MemoryError:
        outcome = (False, "it needs more memory than a model file may take")
    except Exception as err:  # HDF5's errors on a damaged file come in every kind
        outcome = (False, f"not readable ({type(err).__name__}: {err})")
    return pickle.dumps(outcome)


def _limit_memory(extra: int) -> None:
    """Let this process's address space grow by ``extra`` bytes at most (Linux; elsewhere
    the time limit alone holds)."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            held = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (held + extra, held + extra))
    except (ImportError, OSError, ValueError):
        pass


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
