"""Answering images: POST /api/predict (one digit, with everything the page shows) and POST
/api/read (a written number). With worker processes the work goes to a pool — large images to
a worker of their own — and without, the server does it: the image pipeline of a large image
in a thread beside the event loop, at lower CPU priority."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitnet.memory import give_back_freed_memory
from digitnet.vision import prepare
from digitnet.vision.loading import image_pixels
from digitnet.vision.segment import segment
from digitnet.web import schemas
from digitnet.web.payloads import predict_body, prepared_of, read_body
from digitnet.web.pool import WorkerPool
from digitnet.web.server import LARGE_IMAGE_NICE, Server, ServerDep

router = APIRouter()


@router.post(
    "/api/predict",
    response_model=schemas.PredictResponse,
    openapi_extra=schemas.IMAGE_OR_PIXELS_BODY,
    responses=schemas.ERRORS,
)
async def predict(request: Request, server: ServerDep, model: str | None = None):
    """Recognise one digit: an image (multipart upload or raw ``image/*`` body) through the
    image pipeline, or JSON ``{"pixels": ...}`` already in MNIST form (28x28 or 784 values
    in [0, 1], ink bright on dark)."""
    chosen = server.served(model)
    pixels = data = None
    if _content_type(request) == "application/json":
        pixels = _pixels(await request.body())
    else:
        data = await _image_bytes(request)
    if server.pool is not None:
        return _json(await pool_for(server, data).predict(chosen.ref, data, pixels))
    prepared = prepared_of(None, pixels) if data is None else await _image_work(data, prepare)
    return _json(predict_body(chosen, prepared))


@router.post(
    "/api/read",
    response_model=schemas.ReadResponse,
    openapi_extra=schemas.IMAGE_BODY,
    responses=schemas.ERRORS,
)
async def read(request: Request, server: ServerDep, model: str | None = None):
    """Read the numbers written in an image: the text (its lines of writing joined by a
    newline) and each digit's box and line."""
    chosen = server.served(model)
    if _content_type(request) == "application/json":
        raise HTTPException(
            415, "/api/read reads a number from an image: send the image, not pixels"
        )
    data = await _image_bytes(request)
    if server.pool is not None:
        return _json(await pool_for(server, data).read(chosen.ref, data))
    return _json(read_body(chosen, await _image_work(data, segment)))


def pool_for(server: Server, data: bytes | None) -> WorkerPool:
    """The pool that answers an image: large images' own, or the drawings'."""
    return server.large_pool if data is not None and is_large(data) else server.pool


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
