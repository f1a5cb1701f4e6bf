"""``jobs`` processes of this machine answering chunks of files, each with the task's model
loaded once; a process that dies is replaced and its chunk answered again, file by file."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from digitnet.blas import THREAD_VARIABLES
from digitnet.many.task import ANSWERED, WORKER_DIED, Entry, Task, answer_chunk, recognizer_for
from digitnet.many.window import next_out
from digitnet.parallel import stop_now

PARENT_CHECK_SECONDS = 0.5  # how often a worker looks whether its parent still runs
POLL_SECONDS = 1  # how often the parent looks whether its workers still run
NOTICE_SECONDS = 2  # a worker's death the pool has not noticed by then, it never will


class Workers:
    """``jobs`` processes of this machine, each with the task's model loaded once. A process
    that dies is replaced; its chunk is answered again, file by file."""

    def __init__(self, task: Task, jobs: int):

        self.task, self.jobs = task, jobs
        # One BLAS thread each: the processes share the cores out already, and threads of
        # several processes competing for them slowed a run of 5,000 files from 6.8 s (one
        # process) to 11.9 s (two). Set for the workers' start, put back on exit.
        self.saved_environment = {v: os.environ.get(v) for v in THREAD_VARIABLES}
        os.environ.update({v: "1" for v in THREAD_VARIABLES})
        self.pool = self._start()

    def _start(self):

        context = multiprocessing.get_context("spawn")  # never a fork of a threaded process
        return ProcessPoolExecutor(self.jobs, context, initializer=_start_worker,
                                   initargs=(self.task,))  # fmt: skip

    def submit(self, chunk: list[Entry]):
        return self.pool.submit(_answer_in_worker, chunk)

    def collect(self, out: deque, ordered: bool) -> list[dict]:
        """The answers of one chunk out: the oldest, or (not ``ordered``) the first done."""
        future, chunk = next_out(out, ordered, self._first_done)
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
