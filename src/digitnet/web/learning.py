"""Trainings started from the web page: each in a process of its own, watched live.

``POST /api/train`` hands settings (``TrainSettings``) to ``Trainings.submit``, which queues a
``Training``; at most ``running`` of them train at once, each in a fresh process (``spawn``, at
lower CPU priority, never the event loop nor a prediction worker), so people drawing meanwhile
are answered as fast as before. What runs in that process is in ``training_process``. The
server reads its pipe on its event loop (``add_reader``) and keeps each training's events, so
``GET /api/train/{id}/events`` (Server-Sent Events) replays them to anyone who connects, then
follows.

Bounded everywhere: the settings' ranges (``TrainSettings``), a waiting line of MAX_WAITING
and MAX_PER_CLIENT trainings queued or running for any one client address (then 429), a
training nobody watches for ABANDON_SECONDS is stopped and its model not kept, one that runs
for MAX_TRAINING_SECONDS is stopped as Stop does, at most KEPT_TRAININGS trainings' events are
remembered, and the trained models kept — files and catalogue alike — are the newest
``catalog.MAX_TRAINED`` within MAX_KEPT_BYTES (older ones are removed: download a model to
keep it). A stop (``DELETE``, the page's Stop button) ends the training after its current
step; the model keeps the weights it reached and joins the catalogue like one that finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import secrets
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from digitnet.web.training_process import TrainSettings, run_training

MAX_WAITING = 4  # trainings waiting for their turn; more: 429
ABANDON_SECONDS = 30.0  # a training nobody has watched for this long is stopped, not kept
MAX_TRAINING_SECONDS = 600.0  # then it stops and keeps its weights (the tutorial's takes 5 s)
MAX_PER_CLIENT = 2  # trainings queued or running for one client address
MAX_KEPT_BYTES = 64 * 2**20  # the trained models' files, in all (the largest allowed: ~6 MB)
KEPT_TRAININGS = 16  # finished trainings whose events are remembered
KEEP_ALIVE_SECONDS = 15.0  # an SSE comment this often, so proxies keep the stream open
TRAINING_NICE = 19  # the training process yields the CPU to the requests being answered
RETRY_SECONDS = 30  # told to a client whose training found the line full


def lower_priority(pid: int) -> None:
    """Give process ``pid`` TRAINING_NICE, where the system has priorities: the people drawing
    meanwhile keep a p99 of 23-37 ms, and the training takes ~9 % longer."""
    if hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):  # gone already: nothing to lower
            os.setpriority(os.PRIO_PROCESS, pid, TRAINING_NICE)


class LineFull(RuntimeError):
    """The waiting line is full: 429, try again later."""


@dataclass
class Training:
    id: str
    settings: TrainSettings
    name: str  # of the model it makes
    state: str = "queued"  # queued, running, done, failed
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    process: multiprocessing.Process | None = None
    connection: Connection | None = None
    watchers: int = 0
    position: int = 0  # in the waiting line, from 1; 0: not waiting
    unwatched: asyncio.TimerHandle | None = None
    time_limit: asyncio.TimerHandle | None = None
    stop_asked: bool = False
    why_stopped: str | None = None  # the server stopped it: nobody watched, or time was up
    abandoned: bool = False  # nobody watched it: its model is not kept
    client: str | None = None  # the address that asked for it

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    def add(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "progress":  # only the latest progress keeps its pictures
            for old_kind, old in reversed(self.events):
                if old_kind == "progress":
                    old.pop("weights", None)
                    break
        self.events.append((kind, data))
        self.changed.set()
        self.changed = asyncio.Event()

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "model": self.name,
                "settings": self.settings.model_dump(),
                "events": f"/api/train/{self.id}/events"}  # fmt: skip


class Trainings:
    """The server's trainings: a line of waiting ones, at most ``running`` at a time; each
    finished model goes to ``catalog.add_trained(name, path)``. Models are written to
    ``folder``, and the trained models the catalogue forgets are removed from it."""

    def __init__(self, folder: Path, catalog, running: int = 1):
        self.folder, self.catalog, self.running = folder, catalog, running
        self.trainings: dict[str, Training] = {}
        self.waiting: deque[Training] = deque()
        self.numbers = itertools.count(next_number(folder))

    def submit(self, settings: TrainSettings, client: str | None = None) -> Training:
        if len(self.waiting) >= MAX_WAITING:
            raise LineFull(f"{len(self.waiting)} trainings are waiting already")
        mine = sum(t.client == client and not t.finished for t in self.trainings.values())
        if client is not None and mine >= MAX_PER_CLIENT:
            raise LineFull(f"you have {mine} trainings running or waiting already: stop one,"
                           " or wait until it is done")  # fmt: skip
        training = Training(secrets.token_hex(8), settings, f"trained-{next(self.numbers)}",
                            client=client)  # fmt: skip
        self.trainings[training.id] = training
        self.waiting.append(training)
        self._forget_old()
        self._watch_for_abandon(training)
        self._start_next()
        self._tell_positions()
        return training

    def keep_within_budget(self, forgotten: list[str]) -> list[str]:
        """Remove the files of the trained models the catalogue has ``forgotten`` (it keeps
        MAX_TRAINED), then the oldest trained models, from both, until those left take at
        most MAX_KEPT_BYTES: the names removed. No other file is touched."""
        removed = list(forgotten)
        while len(self.catalog.trained) > 1 and self._kept_bytes() > MAX_KEPT_BYTES:
            removed.append(self.catalog.trained[0])
            self.catalog.forget(removed[-1])
        for name in removed:
            (self.folder / f"{name}.npz").unlink(missing_ok=True)
        return removed

    def _kept_bytes(self) -> int:
        paths = (self.folder / f"{name}.npz" for name in self.catalog.trained)
        return sum(path.stat().st_size for path in paths if path.exists())

    def get(self, training_id: str) -> Training:
        return self.trainings[training_id]

    def stop(self, training: Training, why: str | None = None) -> None:
        """Stop after the current step (the model keeps its weights); a waiting one leaves
        the line at once. ``why``: the server's reason (then the page is told it)."""
        if training.finished:
            return
        training.stop_asked = True
        training.why_stopped = training.why_stopped or why
        if training in self.waiting:
            self.waiting.remove(training)
            self._finish(training, "failed", "error", {"error": "stopped before it started"})
            self._tell_positions()
        elif training.connection is not None:
            with contextlib.suppress(OSError):  # it has just ended
                training.connection.send("stop")

    async def events(self, training: Training):
        """The training's events so far, then each new one, as Server-Sent Events text."""
        training.watchers += 1
        if training.unwatched is not None:
            training.unwatched.cancel()
            training.unwatched = None
        try:
            sent = 0
            while True:
                while sent < len(training.events):
                    kind, data = training.events[sent]
                    sent += 1
                    yield f"event: {kind}\ndata: {json.dumps(data, allow_nan=False)}\n\n"
                if training.finished:
                    return
                try:
                    await asyncio.wait_for(training.changed.wait(), KEEP_ALIVE_SECONDS)
                except asyncio.TimeoutError:
                    yield ": still training\n\n"
        finally:
            training.watchers -= 1
            self._watch_for_abandon(training)

    def close(self) -> None:
        for training in self.trainings.values():
            if training.process is not None and training.process.is_alive():
                training.process.kill()
                training.process.join(timeout=1)

    # ----------------------------------------------------------------------- internals

    def _start_next(self) -> None:
        busy = sum(t.state == "running" for t in self.trainings.values())
        while self.waiting and busy < self.running:
            training = self.waiting.popleft()
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            out = str(self.folder / f"{training.name}.npz")
            training.process = context.Process(
                target=run_training, args=(theirs, training.settings.model_dump(), out),
                daemon=True,
            )  # fmt: skip
            training.process.start()
            lower_priority(training.process.pid)  # before its interpreter starts and imports
            theirs.close()
            training.connection, training.state = ours, "running"
            training.add("started", {"model": training.name})
            loop = asyncio.get_running_loop()
            loop.add_reader(ours.fileno(), self._received, training)
            training.time_limit = loop.call_later(
                MAX_TRAINING_SECONDS, self.stop, training,
                f"it reached the {duration(MAX_TRAINING_SECONDS)} limit of a training",
            )  # fmt: skip
            busy += 1

    def _received(self, training: Training) -> None:
        try:
            kind, data = training.connection.recv()
        except (EOFError, OSError):
            self._finish(training, "failed", "error",
                         {"error": "the training process stopped unexpectedly"})  # fmt: skip
            return
        if kind == "done":
            path = self.folder / f"{training.name}.npz"
            if training.abandoned:  # nobody will look at it: not kept
                path.unlink(missing_ok=True)
                error = f"stopped, and not kept: {training.why_stopped}"
                self._finish(training, "failed", "error", {"error": error})
                return
            try:
                forgotten = self.catalog.add_trained(training.name, path)
            except Exception as err:
                path.unlink(missing_ok=True)
                reason = f"the trained model could not be loaded: {err}"
                self._finish(training, "failed", "error", {"error": reason})
                return
            self.keep_within_budget(forgotten)
            data = {"model": training.name, "download": f"/api/models/{training.name}/file",
                    **data}  # fmt: skip
            if training.why_stopped:
                data["why_stopped"] = training.why_stopped
            self._finish(training, "done", kind, data)
        elif kind == "error":
            self._finish(training, "failed", kind, data)
        else:
            training.add(kind, data)

    def _finish(self, training: Training, state: str, kind: str, data: dict[str, Any]) -> None:
        training.state = state
        if training.connection is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(training.connection.fileno())
            training.connection.close()
            # Its interpreter still has to exit, at low priority: waited for off the event
            # loop, whose every request it held up for 30-70 ms when joined here.
            loop.run_in_executor(None, reap, training.process)
        for timer in (training.unwatched, training.time_limit):
            if timer is not None:
                timer.cancel()
        training.add(kind, data)
        self._start_next()
        self._tell_positions()

    def _tell_positions(self) -> None:
        for position, training in enumerate(self.waiting, 1):
            if training.position != position:
                training.position = position
                training.add("queued", {"position": position, "waiting": len(self.waiting)})

    def _watch_for_abandon(self, training: Training) -> None:
        if training.watchers == 0 and not training.finished:
            loop = asyncio.get_running_loop()
            training.unwatched = loop.call_later(ABANDON_SECONDS, self._abandon, training)

    def _abandon(self, training: Training) -> None:
        training.abandoned = True
        self.stop(training, f"nobody watched it for {ABANDON_SECONDS:g} s")

    def _forget_old(self) -> None:
        finished = [t for t in self.trainings.values() if t.finished]
        for training in finished[: max(0, len(finished) - KEPT_TRAININGS)]:
            del self.trainings[training.id]


def duration(seconds: float) -> str:
    """ "10-minute", "4-second": a limit as people say it."""
    if seconds >= 60:
        return f"{seconds / 60:g}-minute"
    return f"{seconds:g}-second"


def reap(process) -> None:
    """Wait for a training process that has said its last (5 s at most), then kill it."""
    process.join(timeout=5)
    if process.is_alive():
        process.kill()
        process.join(timeout=5)


def next_number(folder: Path) -> int:
    """One more than the largest N of the trained-N.npz files in ``folder``."""
    numbers = [int(p.stem.split("-", 1)[1]) for p in folder.glob("trained-*.npz")
               if p.stem.split("-", 1)[1].isdigit()]  # fmt: skip
    return max(numbers, default=0) + 1
