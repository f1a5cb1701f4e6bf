"""The web app: three pages and a small REST API over the library.

    POST /api/predict   an image (upload or raw body) or JSON {"pixels": 28x28 | 784 values}
    POST /api/read      an image of a written number
    GET  /api/models    the models served;  GET /api/models/{name}, /api/models/{name}/test
    GET  /api/health
    POST /api/train     train a network (JSON settings) in a process of its own -> 202 {id, ...}
    GET  /api/train/{id}/events   its progress as Server-Sent Events;  DELETE /api/train/{id}

With one worker every request is handled on the event loop, one at a time: the work is
CPU-bound NumPy, and the models' layers keep caches that concurrent threads would share. Only
the image pipeline of a large image (pure functions of its bytes) runs in a thread meanwhile,
at lower CPU priority. With more workers (``digitnet serve``'s default: one per core),
predictions and readings go to a pool of worker processes fed from one queue
(``digitnet.web.pool``), and large images to one more worker of their own, at lower CPU
priority: a stream of 40-megapixel scans never holds up the drawings. Bad input gets a JSON
``{"error": ...}`` with a 4xx status, never a 500: an unreadable image, wherever the pipeline
finds it out, 413, 415 or 400 by its kind (``image_error``).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from digitnet import __version__
from digitnet.vision import ImageError, ImageTooLarge, NotAnImage
from digitnet.web.catalog import Catalog
from digitnet.web.limits import RETRY_AFTER_SECONDS, Hosts, RequestLimits
from digitnet.web.pool import JOB_SECONDS, WorkersUnavailable
from digitnet.web.routes import answers, models, pages, training
from digitnet.web.routes.pages import STATIC
from digitnet.web.server import Server

MAX_UPLOAD_BYTES = 10 * 2**20
BODY_SECONDS = 30.0  # a request's whole body must arrive within this
IMAGE_ERROR_STATUS = {ImageTooLarge: 413, NotAnImage: 415, ImageError: 400}  # most specific first
log = logging.getLogger("digitnet.web")


def create_app(
    catalog: Catalog,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    workers: int = 1,
    answer_seconds: float = JOB_SECONDS,
    models_dir: Path | None = None,
    max_trainings: int = 1,
    allowed_hosts: Hosts | None = None,
) -> FastAPI:
    """The app serving ``catalog``'s models; with ``workers`` > 1, predictions and readings are
    worked out by that many worker processes, started with the app, each request given at most
    ``answer_seconds``. Trainings (``max_trainings`` at a time) write their models to
    ``models_dir``, whose trained models are served from the start; without it, to a folder
    of the server's own, removed when it stops. ``allowed_hosts``: the port and names the
    server answers to (``limits.Hosts``); other Host headers get 403."""
    server = Server.of(catalog, workers, answer_seconds, models_dir, max_trainings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await server.start()
        yield
        await server.close()

    app = FastAPIOffline(  # FastAPI, with /docs' Swagger UI served from the package: offline too
        title="digitnet",
        version=__version__,
        description="Handwritten digits read by a neural network built from scratch in NumPy.",
        lifespan=lifespan,
    )
    app.state.server = server
    app.add_middleware(
        RequestLimits,
        max_bytes=max_upload_bytes,
        max_bytes_in_flight=max(4 * max_upload_bytes, 64 * 2**20),
        body_seconds=BODY_SECONDS,
        allowed_hosts=allowed_hosts,
    )
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"error": f"invalid request: {problems}"}, 422)

    @app.exception_handler(ImageError)
    async def image_error(request: Request, exc: ImageError):
        """413 too many pixels or bytes, 415 not an image, 400 otherwise (truncated, empty)."""
        kind = next((k for k in IMAGE_ERROR_STATUS if isinstance(exc, k)), ImageError)
        return JSONResponse({"error": str(exc)}, IMAGE_ERROR_STATUS[kind])

    @app.exception_handler(WorkersUnavailable)
    async def workers_unavailable(request: Request, exc: WorkersUnavailable):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return JSONResponse({"error": f"{exc}; please try again"}, 503, headers=headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, 500)

    for area in (pages, answers, models, training):
        app.include_router(area.router)
    return app
