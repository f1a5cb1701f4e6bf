"""The API's shapes, for the OpenAPI documentation at /docs (the handlers build plain dicts)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Error(BaseModel):
    error: str = Field(description="what was wrong, in one sentence")


ERRORS = {
    400: {"model": Error, "description": "unreadable image (truncated, empty)"},
    404: {"model": Error, "description": "unknown model name"},
    413: {"model": Error, "description": "upload or image too large (refused before decoding)"},
    415: {"model": Error, "description": "not an image"},
    422: {"model": Error, "description": "malformed pixels array"},
}

IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "format": "binary"}},
                    "required": ["image"],
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

VALUE = {"type": "number", "minimum": 0, "maximum": 1}
ROW = {"type": "array", "minItems": 28, "maxItems": 28, "items": VALUE}
PIXELS_SCHEMA = {
    "type": "object",
    "required": ["pixels"],
    "properties": {
        "pixels": {
            "description": "28x28 (rows) or 784 numbers in [0, 1], ink bright on dark (MNIST)",
            "oneOf": [
                {"type": "array", "minItems": 28, "maxItems": 28, "items": ROW},
                {"type": "array", "minItems": 784, "maxItems": 784, "items": VALUE},
            ],
        }
    },
}

IMAGE_OR_PIXELS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            **IMAGE_BODY["requestBody"]["content"],
            "application/json": {"schema": PIXELS_SCHEMA},
        },
    }
}


class Stage(BaseModel):
    name: str = Field(description='"dense 1", "conv 2", "output", ...')
    kind: str = Field(description='"dense" (values) or "conv" (maps)')
    shape: list[int]
    activation: str
    values: list[float] | None = Field(None, description="each unit's activation (dense)")
    maps: str | None = Field(
        None,
        description="the feature maps tiled into one gray picture: its bytes (uint8, row "
        "by row) in base64",
    )
    size: list[int] | None = Field(None, description="the picture's height and width")
    grid: list[int] | None = Field(None, description="rows and columns of tiles in maps")


class PredictResponse(BaseModel):
    model: str
    digit: int | None = Field(description="0-9, or null when there is no digit")
    confidence: float | None = Field(description="calibrated probability of the digit")
    probabilities: list[float] | None
    reason: str | None = Field(description="why there is no digit")
    note: str | None = Field(
        None, description="what else to know: the image holds several digits (use /api/read)"
    )
    input: list[list[float]] | None = Field(description="the 28x28 input the network saw")
    box: list[int] | None = Field(description="the digit in the image: x, y, width, height")
    frame: list[float] | None = Field(description="the 28x28 field on the image: x, y, w, h")
    layers: list[Stage] = Field(description="each Dense/Conv stage's activity")
    explanation: list[list[float]] | None = Field(
        description="gradient x input over the 28x28 input, in [-1, 1]: + pushed towards the "
        "digit, - against it"
    )


class DigitBox(BaseModel):
    digit: int
    confidence: float
    box: list[int]
    line: int = Field(0, description="the line of writing it is on, from 0 at the top")


class MarkBox(BaseModel):
    mark: str = Field(description='the mark as written: ".", ",", "-", "/", "$", ...')
    kind: str = Field(description='its name: "dot", "comma", "dash", "slash", "dollar", ...')
    confidence: float
    box: list[int]
    line: int = Field(0, description="the line of writing it is on, from 0 at the top")


class ReadResponse(BaseModel):
    model: str
    text: str = Field(description="the digits read, lines joined by a newline")
    written: str = Field(
        "", description="the number as written: the digits with the marks and spaces in place"
    )
    digits: list[DigitBox]
    marks: list[MarkBox] = Field([], description="the marks beside the digits, left to right")
    reason: str | None = None


class ModelSummary(BaseModel):
    name: str
    kind: str = Field(description='"mlp" or "cnn"')
    parameters: int
    test_accuracy: float | None
    default: bool


class LayerRow(BaseModel):
    name: str
    type: str
    activation: str
    output_shape: list[int]
    params: int


class ModelDetails(BaseModel):
    name: str
    kind: str
    parameters: int
    layers: list[LayerRow]
    history: dict[str, list[float]]
    command: str | None
    training_seconds: float | None
    test_accuracy: float | None
    temperature: float | None
    stages: list[dict]
    first_layer: list[str] = Field(description="first-layer weights as PNG data URLs")
    connections: list[list[list[float]]] = Field(
        description="per Dense stage, its strongest weights as [source, target, weight]"
    )


class Mistake(BaseModel):
    index: int
    label: int
    predicted: int
    confidence: float
    image: str


class Scorecard(BaseModel):
    model: str
    accuracy: float
    samples: int
    confusion_matrix: list[list[int]]
    mistakes: list[Mistake]


class PoolHealth(BaseModel):
    ready: int = Field(description="worker processes that can answer now")
    size: int = Field(description="worker processes the pool keeps")


class Health(BaseModel):
    status: str = Field(description="ok, or unavailable (503) while a pool has no worker ready")
    version: str
    models: list[str]
    workers: int = Field(description="processes answering drawings now (1: the server itself)")
    pools: dict[str, PoolHealth] = Field(
        description="with worker processes: each pool's (drawings, large images)"
    )


class TrainingStarted(BaseModel):
    id: str
    state: str = Field(description="queued, running, done or failed")
    model: str = Field(description="the name the trained model will be served under")
    settings: dict
    events: str = Field(description="where its Server-Sent Events stream")


TRAINING_ERRORS = {
    403: {"model": Error, "description": "sent by a page of another site"},
    422: {"model": Error, "description": "a setting out of range, or unknown"},
    429: {"model": Error, "description": "the waiting line is full (Retry-After)"},
}


class Neuron(BaseModel):
    layer: str = Field(description='"dense 1", ..., "output"')
    unit: int
    activation: str
    inputs: str = Field(description='"the 28x28 input" or the layer before')
    weights: list[float] = Field(description="one incoming weight per input")
    bias: float
