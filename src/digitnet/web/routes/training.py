"""Training from the page: POST /api/train, its state, its Server-Sent Events, and stopping
it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from digitnet.web import schemas
from digitnet.web.learning import RETRY_SECONDS, LineFull, Training
from digitnet.web.server import Server, ServerDep
from digitnet.web.training_process import TrainSettings

router = APIRouter()


@router.post("/api/train", status_code=202, response_model=schemas.TrainingStarted,
          responses=schemas.TRAINING_ERRORS)  # fmt: skip
async def start_training(request: Request, server: ServerDep,
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
        client = request.client.host if request.client else None
        training = server.trainings.submit(settings, client)
    except LineFull as err:
        headers = {"Retry-After": str(RETRY_SECONDS)}
        raise HTTPException(429, f"{err}; try again later", headers) from None
    return JSONResponse(training.summary(), 202)


@router.get("/api/train/{training_id}", response_model=schemas.TrainingStarted)
async def training_state(training_id: str, server: ServerDep):
    return JSONResponse(training_of(server, training_id).summary())


@router.get("/api/train/{training_id}/events", response_class=StreamingResponse)
async def training_events(training_id: str, server: ServerDep):
    """Server-Sent Events (``curl -N`` shows them): ``queued``, ``started``, ``progress``
    (every 100 steps: loss, accuracy, speed, time left, the first layer's weights as
    28x28 pictures), ``epoch`` (with validation loss and accuracy), then ``done`` (the new
    model's name, test accuracy, confusion matrix) or ``error``. Each event's data is
    JSON; the events so far come first, to whoever connects."""
    training = training_of(server, training_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(server.trainings.events(training), media_type="text/event-stream",
                             headers=headers)  # fmt: skip


@router.delete("/api/train/{training_id}", status_code=202,
            response_model=schemas.TrainingStarted)  # fmt: skip
async def stop_training(training_id: str, server: ServerDep):
    """Stop after the current step: the model keeps the weights it reached and is served
    like a finished one (a training still waiting in line just leaves it)."""
    training = training_of(server, training_id)
    server.trainings.stop(training)
    return JSONResponse(training.summary(), 202)


def training_of(server: Server, training_id: str) -> Training:
    try:
        return server.trainings.get(training_id)
    except KeyError:
        raise HTTPException(404, f"no training {training_id!r} on this server") from None
