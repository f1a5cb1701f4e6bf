"""The web app: one static page and a small REST API over the library.

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

import asyncio
import contextlib
import functools
import logging
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitnet import __version__, insight
from digitnet.memory import give_back_freed_memory
from digitnet.nn.errors import NNError
from digitnet.vision import ImageError, ImageTooLarge, NotAnImage, prepare
from digitnet.vision.loading import image_pixels
from digitnet.vision.segment import segment
from digitnet.web import schemas
from digitnet.web.catalog import Catalog, ServedModel
from digitnet.web.learning import RETRY_SECONDS, LineFull, Training, Trainings, TrainSettings
from digitnet.web.limits import RETRY_AFTER_SECONDS, Hosts, RequestLimits
from digitnet.web.payloads import (
    model_details,
    model_summary,
    predict_body,
    prepared_of,
    read_body,
    test_payload,
)
from digitnet.web.pool import JOB_SECONDS, WorkerPool, WorkersUnavailable, close_pools
from digitnet.zoo import model_path

MAX_UPLOAD_BYTES = 10 * 2**20
BODY_SECONDS = 30.0  # a request's whole body must arrive within this
IMAGE_ERROR_STATUS = {ImageTooLarge: 413, NotAnImage: 415, ImageError: 400}  # most specific first
STATIC = resources.files("digitnet.web") / "static"
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
    sources = [m.source for m in catalog.models.values() if not m.trained]
    pool = large_pool = None
    if workers > 1:
        pool = WorkerPool(sources, workers, answer_seconds)
        large_pool = WorkerPool(sources, 1, answer_seconds, nice=LARGE_IMAGE_NICE)
    scratch = None if models_dir is not None else tempfile.TemporaryDirectory(prefix="digitnet-")
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

    def pool_for(data: bytes | None) -> WorkerPool:
        return large_pool if data is not None and is_large(data) else pool

    async def start() -> None:
        """Start the worker processes (once) and wait until each has loaded its models."""
        if pool is not None:
            await asyncio.gather(pool.start(), large_pool.start())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await start()
        yield
        trainings.close()
        if pool is not None:
            await close_pools([pool, large_pool])
        if scratch is not None:
            scratch.cleanup()

    app = FastAPIOffline(  # FastAPI, with /docs' Swagger UI served from the package: offline too
        title="digitnet",
        version=__version__,
        description="Handwritten digits read by a neural network built from scratch in NumPy.",
        lifespan=lifespan,
    )
    app.state.pool, app.state.large_pool, app.state.start = pool, large_pool, start
    app.state.trainings = trainings
    app.add_middleware(
        RequestLimits,
        max_bytes=max_upload_bytes,
        max_bytes_in_flight=max(4 * max_upload_bytes, 64 * 2**20),
        body_seconds=BODY_SECONDS,
        allowed_hosts=allowed_hosts,
    )
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    def served(name: str | None) -> ServedModel:
        try:
            return catalog.get(name)
        except KeyError as err:
            raise HTTPException(404, err.args[0]) from None

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

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(STATIC / "index.html"))

    @app.get("/model", include_in_schema=False)
    async def model_page():
        return FileResponse(str(STATIC / "model.html"))

    @app.get("/api/health", response_model=schemas.Health)
    async def health():
        """``workers``: the processes that can answer drawings now; ``pools``: each pool's
        workers ready and in all. 503 while any pool has none ready."""
        pools = {} if pool is None else {
            "drawings": {"ready": pool.ready_workers, "size": pool.size},
            "large images": {"ready": large_pool.ready_workers, "size": large_pool.size},
        }  # fmt: skip
        ready = all(p["ready"] for p in pools.values())
        answer = {"status": "ok" if ready else "unavailable", "version": __version__,
                  "models": list(catalog.models),
                  "workers": pools["drawings"]["ready"] if pools else 1,
                  "pools": pools}  # fmt: skip
        return JSONResponse(answer, 200 if ready else 503)

    @app.get("/api/models", response_model=list[schemas.ModelSummary])
    async def models():
        return [model_summary(m, m.name == catalog.default) for m in catalog.models.values()]

    @app.get("/api/models/{name}", response_model=schemas.ModelDetails)
    async def model(name: str):
        return JSONResponse(model_details(served(name)))

    @app.get("/api/models/{name}/test", response_model=schemas.Scorecard)
    async def model_test(name: str):
        chosen = served(name)
        return JSONResponse(test_payload(chosen, await chosen.results()))

    @app.post(
        "/api/predict",
        response_model=schemas.PredictResponse,
        openapi_extra=schemas.IMAGE_OR_PIXELS_BODY,
        responses=schemas.ERRORS,
    )
    async def predict(request: Request, model: str | None = None):
        """Recognise one digit: an image (multipart upload or raw ``image/*`` body) through the
        image pipeline, or JSON ``{"pixels": ...}`` already in MNIST form (28x28 or 784 values
        in [0, 1], ink bright on dark)."""
        chosen = served(model)
        pixels = data = None
        if _content_type(request) == "application/json":
            pixels = _pixels(await request.body())
        else:
            data = await _image_bytes(request)
        if pool is not None:
            return _json(await pool_for(data).predict(chosen.ref, data, pixels))
        prepared = prepared_of(None, pixels) if data is None else await _image_work(data, prepare)
        return _json(predict_body(chosen, prepared))

    @app.post(
        "/api/read",
        response_model=schemas.ReadResponse,
        openapi_extra=schemas.IMAGE_BODY,
        responses=schemas.ERRORS,
    )
    async def read(request: Request, model: str | None = None):
        """Read the numbers written in an image: the text (its lines of writing joined by a
        newline) and each digit's box and line."""
        chosen = served(model)
        if _content_type(request) == "application/json":
            raise HTTPException(
                415, "/api/read reads a number from an image: send the image, not pixels"
            )
        data = await _image_bytes(request)
        if pool is not None:
            return _json(await pool_for(data).read(chosen.ref, data))
        return _json(read_body(chosen, await _image_work(data, segment)))

    @app.get("/learn", include_in_schema=False)
    async def learn_page():
        return FileResponse(str(STATIC / "learn.html"))

    @app.get("/api/models/{name}/layers/{layer}/neurons/{unit}", response_model=schemas.Neuron,
             responses=schemas.ERRORS)  # fmt: skip
    async def neuron(name: str, layer: int, unit: int):
        """One neuron of a multilayer perceptron's dense layer ``layer`` (0: the first hidden
        layer; the output layer last): its incoming weights, bias and activation — what the
        page shows when a neuron of the network is clicked."""
        chosen = served(name)
        try:
            found = insight.neuron(chosen.model, layer, unit)
        except IndexError as err:
            raise HTTPException(404, f"{name}: {err}") from None
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        inputs = "the 28x28 input" if layer == 0 else insight.stages(chosen.model)[layer - 1].name
        return JSONResponse({"layer": found.stage.name, "unit": unit,
                             "activation": found.stage.activation, "inputs": inputs,
                             "weights": found.weights.tolist(), "bias": found.bias})  # fmt: skip

    @app.get("/api/models/{name}/file", response_class=FileResponse, responses=schemas.ERRORS)
    async def model_file(name: str):
        """The model's file: digitnet's .npz, which every digitnet command takes."""
        chosen = served(name)
        return FileResponse(str(model_path(chosen.source)), media_type="application/octet-stream",
                            filename=f"{chosen.name}.npz")  # fmt: skip

    @app.post("/api/train", status_code=202, response_model=schemas.TrainingStarted,
              responses=schemas.TRAINING_ERRORS)  # fmt: skip
    async def start_training(request: Request,
                             settings: Annotated[TrainSettings | None, Body()] = None):  # fmt: skip
        """Train a multilayer perceptron on MNIST, in a process of the server's own: every
        setting is optional (the tutorial's recipe). At most one training runs at a time
        (``serve --max-trainings``); a few more wait in line, two a client at most, beyond
        that 429. One that runs ten minutes is stopped and keeps its weights; one nobody
        follows for 30 s is stopped and not kept. Follow it at
        ``events``; the finished model joins ``/api/models`` and the page's picker."""
        settings = settings or TrainSettings()
        try:
            settings.check()
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        try:
            training = trainings.submit(settings, request.client.host if request.client else None)
        except LineFull as err:
            headers = {"Retry-After": str(RETRY_SECONDS)}
            raise HTTPException(429, f"{err}; try again later", headers) from None
        return JSONResponse(training.summary(), 202)

    @app.get("/api/train/{training_id}", response_model=schemas.TrainingStarted)
    async def training_state(training_id: str):
        return JSONResponse(training_of(training_id).summary())

    @app.get("/api/train/{training_id}/events", response_class=StreamingResponse)
    async def training_events(training_id: str):
        """Server-Sent Events (``curl -N`` shows them): ``queued``, ``started``, ``progress``
        (every 100 steps: loss, accuracy, speed, time left, the first layer's weights as
        28x28 pictures), ``epoch`` (with validation loss and accuracy), then ``done`` (the new
        model's name, test accuracy, confusion matrix) or ``error``. Each event's data is
        JSON; the events so far come first, to whoever connects."""
        training = training_of(training_id)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(trainings.events(training), media_type="text/event-stream",
                                 headers=headers)  # fmt: skip

    @app.delete("/api/train/{training_id}", status_code=202,
                response_model=schemas.TrainingStarted)  # fmt: skip
    async def stop_training(training_id: str):
        """Stop after the current step: the model keeps the weights it reached and is served
        like a finished one (a training still waiting in line just leaves it)."""
        training = training_of(training_id)
        trainings.stop(training)
        return JSONResponse(training.summary(), 202)

    def training_of(training_id: str) -> Training:
        try:
            return trainings.get(training_id)
        except KeyError:
            raise HTTPException(404, f"no training {training_id!r} on this server") from None

    return app


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


RAW_IMAGE_TYPES = ("application/octet-stream", "")  # and image/*
FORM_FIELD = "image"


async def _image_bytes(request: Request) -> bytes:
    """The file of a multipart form's ``image`` field, or a raw body sent as ``image/*`` (or
    untyped bytes): anything else is a 415 that says what to send."""
    kind = _content_type(request)
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_files=1, max_fields=8)
        upload = form.get(FORM_FIELD)
        if not isinstance(upload, UploadFile):
            raise HTTPException(
                400, f'the form holds no file named "{FORM_FIELD}": send -F {FORM_FIELD}=@photo.png'
            )
        data = await upload.read()
    elif kind.startswith("image/") or kind in RAW_IMAGE_TYPES:
        data = await request.body()
    else:
        raise HTTPException(
            415,
            f"a body of type {kind} is not an image: send image/png, image/jpeg, ... or a"
            f' multipart form with an "{FORM_FIELD}" file',
        )
    if not data:
        raise HTTPException(400, "no image: the request body is empty")
    return data


LARGE_IMAGE_BYTES = 256 * 2**10
LARGE_IMAGE_PIXELS = 2_000_000
LARGE_IMAGE_NICE = 10  # CPU priority of large images' work: it yields to drawings


def is_large(data: bytes) -> bool:
    """Whether an image is large work (a 12-megapixel photo takes ~0.2 s, 40 megapixels ~0.7 s
    and ~300 MB), told by its bytes or by the pixels its header declares (a few kilobytes of
    PNG can hold 40 megapixels of paper)."""
    return len(data) >= LARGE_IMAGE_BYTES or image_pixels(data) >= LARGE_IMAGE_PIXELS


async def _image_work(data: bytes, work):
    """``work(data)``: decoding and the image pipeline, pure functions of the bytes. Large
    images are background work: done one at a time, in a thread of lower CPU priority beside
    the event loop, so drawings are answered meanwhile and the memory of large images is that
    of one. (With worker processes, the same rule holds: they go to a worker of their own, at
    the same priority.) A small image, the common case, stays on the loop: the hop would cost
    more than it saves. The network always runs on the loop."""
    if not is_large(data):
        return work(data)
    return await asyncio.get_running_loop().run_in_executor(_background(), _large, work, data)


def _large(work, data: bytes):
    try:
        return work(data)
    finally:
        give_back_freed_memory()


@functools.cache
def _background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, "large-images", initializer=_lower_priority)


def _lower_priority() -> None:
    """Lower this thread's CPU priority (Linux gives each thread its own nice value)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LARGE_IMAGE_NICE)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


EXPECTED = 'expected JSON {"pixels": ...} with 28x28 or 784 numbers in [0, 1]'


def _pixels(body: bytes) -> np.ndarray:
    """JSON {"pixels": 28x28 or 784 numbers in [0, 1]} -> (28, 28) float32, or a 422 that says
    what was expected. The shape is checked level by level before NumPy sees the values, so no
    nesting, however deep, costs more than a look at its first level."""
    try:
        document = orjson.loads(body)  # refuses NaN, and nesting deeper than 1,024
    except orjson.JSONDecodeError as err:
        raise HTTPException(422, f"invalid JSON ({err}); {EXPECTED}") from None
    pixels: Any = document.get("pixels") if isinstance(document, dict) else None
    if pixels is None:
        raise HTTPException(422, f'no "pixels" field; {EXPECTED}')
    shape = _grid_shape(pixels)
    if shape is None:
        raise HTTPException(422, f'"pixels" is not an array of numbers; {EXPECTED}')
    if shape not in ((28, 28), (784,)):
        raise HTTPException(422, f'"pixels" has shape {list(shape)}; {EXPECTED}')
    values = np.array(pixels, dtype=np.float64)
    if not np.isfinite(values).all():  # a huge integer becomes inf
        raise HTTPException(422, f'"pixels" holds NaN or infinite values; {EXPECTED}')
    if values.min() < 0 or values.max() > 1:
        raise HTTPException(
            422, f'"pixels" holds values from {values.min():g} to {values.max():g}; {EXPECTED}'
        )
    return values.reshape(28, 28).astype(np.float32)


def _grid_shape(value: Any) -> tuple[int, ...] | None:
    """(n,) for a list of n numbers, (m, n) for m lists of n numbers each, None for anything
    else: never deeper than two levels, whatever the JSON nests."""
    if not isinstance(value, list):
        return None
    if all(_is_number(v) for v in value):
        return (len(value),)
    widths = {len(row) if isinstance(row, list) else -1 for row in value}
    if len(widths) == 1 and -1 not in widths and all(_is_number(v) for row in value for v in row):
        return (len(value), widths.pop())
    return None


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)  # not bool, which JSON's true would give
