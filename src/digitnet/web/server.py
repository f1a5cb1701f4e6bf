"""What the web app's routes share: the models served, the worker pools that answer for them,
and the trainings — one ``Server`` an app holds, handed to each route as a dependency."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException

from digitnet import __version__
from digitnet.nn.errors import NNError
from digitnet.web.catalog import Catalog, ServedModel
from digitnet.web.learning import Trainings
from digitnet.web.pool import WorkerPool, close_pools

LARGE_IMAGE_NICE = 10  # CPU priority of large images' work: it yields to drawings
log = logging.getLogger("digitnet.web")


@dataclass
class Server:
    """The catalogue of models; with worker processes, their pools (drawings, and large images
    at lower CPU priority; None: the server answers itself); the trainings, writing their
    models to a folder (``scratch``: one of the server's own, removed when it stops)."""

    catalog: Catalog
    pool: WorkerPool | None
    large_pool: WorkerPool | None
    trainings: Trainings
    scratch: tempfile.TemporaryDirectory | None = None

    @classmethod
    def of(cls, catalog: Catalog, workers: int, answer_seconds: float, models_dir: Path | None,
           max_trainings: int) -> Server:  # fmt: skip
        """The server of ``catalog``; trained models already in ``models_dir`` are served, one
        that cannot be loaded skipped with a warning, and the folder kept within its budget."""
        sources = [m.source for m in catalog.models.values() if not m.trained]
        pool = large_pool = None
        if workers > 1:
            pool = WorkerPool(sources, workers, answer_seconds)
            large_pool = WorkerPool(sources, 1, answer_seconds, nice=LARGE_IMAGE_NICE)
        scratch = None
        if models_dir is None:
            scratch = tempfile.TemporaryDirectory(prefix="digitnet-")
        folder = Path(models_dir if models_dir is not None else scratch.name)
        forgotten = []
        for path in sorted(folder.glob("trained-*.npz"), key=lambda p: p.stat().st_mtime):
            try:
                forgotten += catalog.add_trained(path.stem, path)
            except (NNError, OSError) as err:  # one bad file costs only itself
                log.warning("a trained model skipped: %s", err)
        trainings = Trainings(folder, catalog, max_trainings)
        for name in trainings.keep_within_budget(forgotten):
            log.warning("%s removed: the newest trained models are kept (see /api/models)", name)
        return cls(catalog, pool, large_pool, trainings, scratch)

    async def start(self) -> None:
        """Start the worker processes (once) and wait until each has loaded its models."""
        if self.pool is not None:
            await asyncio.gather(self.pool.start(), self.large_pool.start())

    async def close(self) -> None:
        self.trainings.close()
        if self.pool is not None:
            await close_pools([self.pool, self.large_pool])
        if self.scratch is not None:
            self.scratch.cleanup()

    def served(self, name: str | None) -> ServedModel:
        """The model called ``name`` (the default for None), or a 404 naming those served."""
        try:
            return self.catalog.get(name)
        except KeyError as err:
            raise HTTPException(404, err.args[0]) from None

    def health(self) -> tuple[dict, int]:
        """/api/health's answer and status: 503 while a pool has no worker ready."""
        pools = {} if self.pool is None else {
            "drawings": {"ready": self.pool.ready_workers, "size": self.pool.size},
            "large images": {"ready": self.large_pool.ready_workers, "size": self.large_pool.size},
        }  # fmt: skip
        ready = all(p["ready"] for p in pools.values())
        answer = {"status": "ok" if ready else "unavailable", "version": __version__,
                  "models": list(self.catalog.models),
                  "workers": pools["drawings"]["ready"] if pools else 1,
                  "pools": pools}  # fmt: skip
        return answer, 200 if ready else 503


def server_of(request: Request) -> Server:
    return request.app.state.server


ServerDep = Annotated[Server, Depends(server_of)]
