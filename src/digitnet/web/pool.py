"""Worker processes that share a server's work through one queue.

With ``digitnet serve --workers N`` (N > 1), the server process answers HTTP on its event loop
and N worker processes do each request's CPU work: the image pipeline, the network's traced
pass and the encoding of the JSON answer. Whichever worker is free takes the next request, so
a burst of drawings from a few pages spreads over every core. (Separate server processes, each
with its own event loop, keep the connections each one accepted: a burst on one queues behind
its process while another sits idle.)

The event loop itself dispatches: each worker has a pipe, the loop writes a job to an idle
worker's pipe and is woken by the answer (``add_reader``), so no thread stands between a
request and its worker. Each worker loads the models named at start-up once; a job carries only
a model's name (and file, for a model trained since: loaded on its first job) and the image's
bytes, and the answer comes back as the JSON body. Workers start
from a clean interpreter (``spawn``), never forked from the running server with its threads.

Nothing waits forever: a worker that dies is replaced and its request gets a 503; one that has
not answered within ``job_seconds`` is killed and replaced, and its request gets a 503 too. A
replacement that dies before it has loaded its models is tried again, up to
MAX_FAILED_STARTS times in a row; after that the pool is broken and every request gets a 503 at
once (``/api/health`` says so) instead of waiting for a worker that will never come.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
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
MAX_FAILED_STARTS = 3  # replacements that die before loading their models, in a row
STOP_SECONDS = 2.0  # the workers' time to leave when the server stops; then they are killed


class WorkersUnavailable(RuntimeError):
    """No worker answered this request: the server answers 503, try again shortly."""


class WorkersLost(WorkersUnavailable):
    """A worker process died (killed, out of memory) during a request; it has been replaced."""


class WorkerTimedOut(WorkersUnavailable):
    """No answer within the pool's time limit: the worker was stopped and is being replaced."""


class PoolBroken(WorkersUnavailable):
    """Worker processes die before they can load their models: none will come."""


class Worker:
    """One worker process, its end of the pipe, and the request it is working on."""

    def __init__(self, specs: list[str], nice: int = 0):
        context = multiprocessing.get_context("spawn")
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=serve_jobs, args=(theirs, specs, nice), daemon=True)
        self.process.start()
        theirs.close()
        self.ready = False  # its models are loaded
        self.answer: asyncio.Future | None = None  # of the request it is working on


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
        self._queue: deque[tuple[tuple, asyncio.Future]] = deque()  # jobs no worker has taken
        self._ready: asyncio.Future | None = None
        self._closing = False
        self._failed_starts = 0  # replacements in a row that died before they were ready

    @property
    def processes(self) -> list[multiprocessing.Process]:
        return [worker.process for worker in self._workers]

    @property
    def ready_workers(self) -> int:
        """How many workers have loaded their models and can answer now."""
        return sum(worker.ready for worker in self._workers)

    @property
    def broken(self) -> bool:
        """No worker is left and no more are started."""
        return self._failed_starts >= MAX_FAILED_STARTS and not self._workers

    async def start(self) -> None:
        """Start the workers (once) and wait until each has loaded its models."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            for _ in range(self.size):
                self._add_worker()
        await asyncio.shield(self._ready)

    async def predict(
        self, model: ModelRef, image: bytes | None, pixels: np.ndarray | None
    ) -> bytes:
        return await self._run((predict_answer, model, image, pixels))

    async def read(self, model: ModelRef, image: bytes) -> bytes:
        return await self._run((read_answer, model, image))

    def close(self) -> None:
        self._closing = True  # workers that stop from now on are not replaced
        for worker in self._workers:
            asyncio.get_running_loop().remove_reader(worker.connection.fileno())
            worker.connection.close()  # the worker sees the pipe close and exits
        deadline = time.monotonic() + STOP_SECONDS  # for all of them: one may be stuck
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=1)
        self._workers.clear()

    async def _run(self, job: tuple) -> Any:
        await self.start()
        if self.broken:
            raise PoolBroken("the worker processes cannot start")
        answer = asyncio.get_running_loop().create_future()
        self._queue.append((job, answer))
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
            try:
                worker.connection.send(job)
            except OSError:  # it died since it last answered: the job waits for another
                self._queue.appendleft((job, answer))
                self._replace(worker)
                continue
            worker.answer = answer

    def _add_worker(self) -> None:
        worker = Worker(self.specs, self.nice)
        self._workers.append(worker)
        loop = asyncio.get_running_loop()
        loop.add_reader(worker.connection.fileno(), self._answered, worker)

    def _answered(self, worker: Worker) -> None:
        """A worker wrote: that it is ready, or a job's outcome, or it died (the pipe closed)."""
        try:
            ok, value = worker.connection.recv()
        except (EOFError, OSError):
            self._replace(worker)
            return
        if not worker.ready:  # its first message: the models are loaded
            worker.ready = True
            self._failed_starts = 0
            if all(w.ready for w in self._workers) and not self._ready.done():
                self._ready.set_result(None)
        else:
            answer, worker.answer = worker.answer, None
            if not answer.cancelled():
                answer.set_result(value) if ok else answer.set_exception(value)
        self._idle.append(worker)
        self._dispatch()

    def _replace(self, worker: Worker) -> None:
        asyncio.get_running_loop().remove_reader(worker.connection.fileno())
        worker.connection.close()
        worker.process.join(timeout=1)
        self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        if not self._ready.done():  # at start-up: the server does not start
            self._ready.set_exception(RuntimeError("a worker process could not start"))
            return
        if worker.answer is not None and not worker.answer.done():
            worker.answer.set_exception(WorkersLost("a worker process stopped during the request"))
        if not worker.ready:  # it died before it could load the models
            self._failed_starts += 1
        if self._closing:
            return
        if self._failed_starts < MAX_FAILED_STARTS:
            self._add_worker()
        elif self.broken:  # the queue would wait for nobody
            while self._queue:
                _, answer = self._queue.popleft()
                if not answer.done():
                    answer.set_exception(PoolBroken("the worker processes cannot start"))


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
