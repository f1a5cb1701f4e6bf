"""Worker processes that share a server's work through one queue.

With ``digitnet serve --workers N`` (N > 1), the server process answers HTTP on its event loop
and N worker processes do each request's CPU work: the image pipeline, the network's traced
pass and the encoding of the JSON answer. Whichever worker is free takes the next request, so
a burst of drawings from a few pages spreads over every core. (Separate server processes, each
with its own event loop, keep the connections each one accepted: a burst on one queues behind
its process while another sits idle.)

The event loop itself dispatches, and never waits on a worker: each worker has a socket pair;
the loop writes a job to an idle worker's end as far as the socket takes it and the rest when
it is writable again (``add_writer``), and reads answers as they arrive (``add_reader``), a
message complete when all its bytes are in. (A blocking write to a worker that had stopped
reading once held the whole server: health, every request, SIGTERM.) Each worker loads the
models named at start-up once; a job carries only a model's name (and file, for a model
trained since: loaded on its first job) and the image's bytes, and the answer comes back as
the JSON body. Workers start from a clean interpreter (``spawn``), never forked from the
running server with its threads.

Nothing waits forever: a worker that dies is replaced and its request gets a 503; one that has
not answered within ``job_seconds``, or is found stopped (SIGSTOP), is killed and replaced, and
its request gets a 503 too; an idle worker found stopped is replaced within WATCH_SECONDS.
Replacements that die before they have loaded their models are
tried again after a back-off that doubles (BACKOFF_SECONDS up to MAX_BACKOFF_SECONDS), never
given up; meanwhile, after MAX_FAILED_STARTS in a row with no worker ready, requests get a 503
at once instead of waiting, and ``/api/health`` says 503 while any pool has no worker ready.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import signal
import struct
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from digitnet.vision import ImageError
from digitnet.vision.segment import segment
from digitnet.web.catalog import Catalog, load_catalog
from digitnet.web.payloads import predict_body, prepared_of, read_body

JOB_SECONDS = 30.0  # the longest a request waits for its answer (a 40-MP photo takes ~1 s)
ModelRef = tuple[str, str]  # a model's name and where it was loaded from (see Catalog.ensure)
MAX_FAILED_STARTS = 3  # replacements in a row that died before loading: then 503 at once
BACKOFF_SECONDS, MAX_BACKOFF_SECONDS = 0.5, 30.0  # before starting again after a failed start
STOP_SECONDS = 2.0  # the workers' time to leave when the server stops; then they are killed
WATCH_SECONDS = 1.0  # how often the pool looks for stopped workers (an idle one gets no job)
MAX_ANSWER_BYTES = 64 * 2**20  # a worker saying more is broken (an answer takes ~100 KB)
SIZE = struct.Struct("!i")  # multiprocessing.Connection's framing: the length, then a pickle


class WorkersUnavailable(RuntimeError):
    """No worker answered this request: the server answers 503, try again shortly."""


class WorkersLost(WorkersUnavailable):
    """A worker process died (killed, out of memory) during a request; it has been replaced."""


class WorkerTimedOut(WorkersUnavailable):
    """No answer within the pool's time limit: the worker was stopped and is being replaced."""


class PoolBroken(WorkersUnavailable):
    """Worker processes die before they can load their models: none is ready now."""


class Worker:
    """One worker process, this side of its socket pair (non-blocking), what is left to write
    to it and what has come from it, and the request it is working on."""

    def __init__(self, specs: list[str], nice: int = 0):
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=serve_jobs, args=(theirs, specs, nice), daemon=True)
        self.process.start()
        theirs.close()
        self.fd = self.connection.fileno()
        os.set_blocking(self.fd, False)
        self.outbox = bytearray()  # a job's bytes the socket has not taken yet
        self.inbox = bytearray()  # bytes of a message not complete yet
        self.ready = False  # its models are loaded
        self.answer: asyncio.Future | None = None  # of the request it is working on

    def messages(self) -> list[Any]:
        """The messages complete so far; EOFError once the worker's end is closed (it died),
        OSError for an answer larger than MAX_ANSWER_BYTES."""
        while True:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                raise EOFError
            self.inbox += chunk
        found = []
        while len(self.inbox) >= SIZE.size:
            (size,) = SIZE.unpack_from(self.inbox)
            if not 0 <= size <= MAX_ANSWER_BYTES:
                raise OSError(f"a worker's answer of {size:,} bytes")
            if len(self.inbox) < SIZE.size + size:
                break
            found.append(pickle.loads(self.inbox[SIZE.size : SIZE.size + size]))
            del self.inbox[: SIZE.size + size]
        return found

    def stopped(self) -> bool:
        """Whether the process is alive but stopped (SIGSTOP, a debugger): it cannot answer."""
        try:
            with open(f"/proc/{self.process.pid}/stat", "rb") as stat:
                state = stat.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):  # gone, or no /proc (macOS): the job's limit still holds
            return False
        return state in (b"T", b"t")


class WorkerPool:
    """``workers`` processes, each with the catalogue of ``specs`` (model names or paths as
    given at start-up), at CPU priority ``nice`` (higher: yields to the others). ``predict``
    and ``read`` return the JSON answer as bytes and raise the pipeline's ImageError for an
    unreadable image, as the in-process functions do."""

    def __init__(self, specs: list[str], workers: int, job_seconds: float = JOB_SECONDS,
                 nice: int = 0):  # fmt: skip
        self.specs, self.size, self.job_seconds = list(specs), workers, job_seconds
        self.nice = nice
        self._workers: list[Worker] = []
        self._idle: list[Worker] = []
        self._queue: deque[tuple[bytes, asyncio.Future]] = deque()  # jobs no worker has taken
        self._ready: asyncio.Future | None = None
        self._closing = False
        self._failed_starts = 0  # workers in a row that died before they were ready
        self._restarts: set[asyncio.TimerHandle] = set()  # replacements waiting out a back-off
        self._watcher: asyncio.TimerHandle | None = None

    @property
    def processes(self) -> list[multiprocessing.Process]:
        return [worker.process for worker in self._workers]

    @property
    def ready_workers(self) -> int:
        """How many workers have loaded their models and can answer now (not stopped)."""
        return sum(worker.ready and not worker.stopped() for worker in self._workers)

    @property
    def broken(self) -> bool:
        """Workers keep dying before they are ready and none is: requests get 503 at once."""
        return self._failed_starts >= MAX_FAILED_STARTS and not self.ready_workers

    async def start(self) -> None:
        """Start the workers (once) and wait until each has loaded its models; one that dies
        meanwhile is replaced. RuntimeError if MAX_FAILED_STARTS die in a row before any is
        ready: the server does not start."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            for _ in range(self.size):
                self._add_worker()
            self._watch()
        await asyncio.shield(self._ready)

    async def predict(
        self, model: ModelRef, image: bytes | None, pixels: np.ndarray | None
    ) -> bytes:
        return await self._run((predict_answer, model, image, pixels))

    async def read(self, model: ModelRef, image: bytes) -> bytes:
        return await self._run((read_answer, model, image))

    def _watch(self) -> None:
        """Kill the workers found stopped (SIGSTOP): they are replaced. An idle one would
        otherwise wait for a job to be found out, and health would say 503 meanwhile."""
        if self._closing:
            return
        for worker in self._workers:
            if worker.stopped():
                worker.process.kill()  # its socket closes: _answered replaces it
        self._watcher = asyncio.get_running_loop().call_later(WATCH_SECONDS, self._watch)

    def begin_closing(self) -> None:
        """Stop replacing workers, close every worker's socket (a worker that sees it close
        exits) and kill those that are stopped: they could not."""
        self._closing = True
        for timer in [*self._restarts, self._watcher]:
            if timer is not None:
                timer.cancel()
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            loop.remove_reader(worker.fd)
            loop.remove_writer(worker.fd)
            worker.connection.close()
            if worker.stopped():
                worker.process.kill()

    def finish_closing(self, deadline: float) -> None:
        """Wait for the workers until ``deadline`` (time.monotonic), then kill the rest."""
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=1)
        self._workers.clear()

    def close(self) -> None:
        self.begin_closing()
        self.finish_closing(time.monotonic() + STOP_SECONDS)

    async def _run(self, job: tuple) -> Any:
        await self.start()
        if self.broken:
            raise PoolBroken("the worker processes cannot start; they are being started again")
        answer = asyncio.get_running_loop().create_future()
        self._queue.append((pickle.dumps(job), answer))
        self._dispatch()
        try:
            return await asyncio.wait_for(answer, self.job_seconds)  # cancels it on time-out
        except asyncio.TimeoutError:
            for worker in self._workers:
                if worker.answer is answer:  # stuck on it: stop it, a replacement comes
                    worker.process.kill()
            raise WorkerTimedOut(f"no answer within {self.job_seconds:g} s") from None

    def _dispatch(self) -> None:
        """Give queued jobs to idle workers, oldest first."""
        while self._idle and self._queue:
            job, answer = self._queue.popleft()
            if answer.cancelled():  # the client went away while it waited
                continue
            worker = self._idle.pop()
            if worker.stopped():  # it cannot answer: the job waits for another
                self._queue.appendleft((job, answer))
                worker.process.kill()  # its socket closes: _answered replaces it
                continue
            worker.answer = answer
            worker.outbox += SIZE.pack(len(job)) + job
            self._write(worker)

    def _write(self, worker: Worker) -> None:
        """Write what the worker's socket takes now; the rest when it is writable again."""
        loop = asyncio.get_running_loop()
        try:
            written = os.write(worker.fd, worker.outbox)
        except BlockingIOError:
            written = 0
        except OSError:  # it died since it last answered: its reader hears of it
            worker.outbox.clear()
            loop.remove_writer(worker.fd)
            return
        del worker.outbox[:written]
        if worker.outbox:
            loop.add_writer(worker.fd, self._write, worker)
        else:
            loop.remove_writer(worker.fd)

    def _add_worker(self) -> None:
        now = asyncio.get_running_loop().time()
        self._restarts = {timer for timer in self._restarts if timer.when() > now}
        if self._closing:
            return
        worker = Worker(self.specs, self.nice)
        self._workers.append(worker)
        asyncio.get_running_loop().add_reader(worker.fd, self._answered, worker)

    def _answered(self, worker: Worker) -> None:
        """A worker wrote: that it is ready, or a job's outcome, or it died (the pipe closed)."""
        try:
            messages = worker.messages()
        except (EOFError, OSError):
            self._replace(worker)
            return
        for ok, value in messages:
            if not worker.ready:  # its first message: the models are loaded
                worker.ready = True
                self._failed_starts = 0
                if all(w.ready for w in self._workers) and not self._ready.done():
                    self._ready.set_result(None)
            else:
                answer, worker.answer = worker.answer, None
                if answer is not None and not answer.done():
                    answer.set_result(value) if ok else answer.set_exception(value)
            self._idle.append(worker)
        if messages:
            self._dispatch()

    def _replace(self, worker: Worker) -> None:
        """A worker died (or was killed): its request gets a 503, a replacement starts — at
        once, or after a back-off when workers keep dying before they are ready."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.fd)
        loop.remove_writer(worker.fd)
        worker.connection.close()
        worker.process.join(timeout=1)
        self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        if worker.answer is not None and not worker.answer.done():
            worker.answer.set_exception(WorkersLost("a worker process stopped during the request"))
        if not worker.ready:  # it died before it could load the models
            self._failed_starts += 1
        if self._closing:
            return
        starting = not self._ready.done() and not any(w.ready for w in self._workers)
        if starting and self._failed_starts >= MAX_FAILED_STARTS:  # the server does not start
            self._ready.set_exception(RuntimeError("the worker processes cannot start"))
            return
        if self.broken:  # the queue would wait for nobody: 503 now, not in job_seconds
            while self._queue:
                _, answer = self._queue.popleft()
                if not answer.done():
                    answer.set_exception(PoolBroken("the worker processes cannot start"))
        delay = 0.0
        if self._failed_starts:
            delay = min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** (self._failed_starts - 1))
        self._restarts.add(loop.call_later(delay, self._add_worker))


async def close_pools(pools: list[WorkerPool]) -> None:
    """Close every pool within one STOP_SECONDS, however many workers are stuck."""
    deadline = time.monotonic() + STOP_SECONDS
    for pool in pools:
        pool.begin_closing()
    await asyncio.to_thread(lambda: [pool.finish_closing(deadline) for pool in pools])


def serve_jobs(connection: Connection, specs: list[str], nice: int = 0) -> None:
    """A worker's life: load the models, say so, then answer jobs until the pipe closes. Ctrl-C
    in a terminal reaches the whole process group: the server stops its workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    catalog = load_catalog(specs)
    try:
        connection.send((True, list(catalog.models)))
    except OSError:  # the server is gone already
        return
    while True:
        try:
            function, *arguments = connection.recv()
        except (EOFError, OSError):
            return
        try:
            outcome = (True, function(catalog, *arguments))
        except ImageError as err:  # bad input: the server answers 4xx
            outcome = (False, err)
        except Exception as err:  # a bug: the server logs it and answers 500; the worker lives on
            outcome = (False, RuntimeError(f"in a worker: {type(err).__name__}: {err}"))
        try:
            connection.send(outcome)
        except OSError:
            return


def predict_answer(
    catalog: Catalog, model: ModelRef, image: bytes | None, pixels: np.ndarray | None
) -> bytes:
    """The /api/predict answer for an image's bytes or MNIST-form pixels."""
    return predict_body(catalog.ensure(*model), prepared_of(image, pixels))


def read_answer(catalog: Catalog, model: ModelRef, image: bytes) -> bytes:
    """The /api/read answer for an image's bytes."""
    return read_body(catalog.ensure(*model), segment(image))
