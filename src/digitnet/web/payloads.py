"""What the API answers, built from the library's results: plain JSON-ready dicts. Arrays of
28x28 go as nested lists (rounded); feature maps as one gray picture per stage, its raw bytes in
base64 (tens of thousands of numbers in JSON, or a PNG encoder, would cost more than the network
takes to run)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

from digitnet import insight
from digitnet.modelcard import describe
from digitnet.reading.lattice import Reading, read_segments
from digitnet.reading.recognizer import Prediction
from digitnet.vision import Prepared, prepare
from digitnet.vision.pieces import Segmented
from digitnet.vision.preprocess import prepared_input
from digitnet.web.catalog import ServedModel
from digitnet.web.pictures import diverging, gray, png_data_url, sheet

DECIMALS = 3


def json_body(payload: dict[str, Any]) -> bytes:
    """An answer's JSON: orjson renders the ~1,800 numbers and 57 kB of feature maps of a
    prediction in 0.17 ms, where the standard library's encoder takes 1.2 ms."""
    return orjson.dumps(payload)


# /api/predict and /api/read, answered by the server process or by a worker (``web.pool``) with
# these same functions, in two stages: the image's (decoding and the image pipeline: pure
# functions of the bytes, which the server may run beside its event loop), then the network's.


def prepared_of(image: bytes | None, pixels: np.ndarray | None) -> Prepared:
    """The image stage of /api/predict: an image's bytes, or pixels already in MNIST form."""
    return prepared_input(pixels) if image is None else prepare(image)


def predict_body(served: ServedModel, prepared: Prepared) -> bytes:
    """The answer to /api/predict for a prepared input: ``examine``'s, as JSON."""
    return json_body(examine(served, prepared))


def read_body(served: ServedModel, segmented: Segmented) -> bytes:
    """The answer to /api/read for an image cut into candidate pieces (``segment``), as JSON."""
    return json_body(reading_payload(served, read_segments(served.recognizer, segmented)))


def rounded(values: np.ndarray) -> list:
    return np.round(values.astype(np.float64), DECIMALS).tolist()


def examine(served: ServedModel, prepared: Prepared) -> dict[str, Any]:
    """The verdict on a prepared input with everything the page shows: the input the network
    saw, each stage's activity, and the explanation of the winning digit — all from one traced
    pass through the network."""
    prediction = Prediction(None, reason=prepared.reason, input=prepared.image,
                            box=prepared.box, frame=prepared.frame, note=prepared.note)  # fmt: skip
    seen = None
    if prepared.image is not None:
        seen = insight.look(served.model, prepared.image)
        served.recognizer.judge([prediction], seen.probabilities[None])
    return {
        "model": served.name,
        **prediction.to_dict(),
        "input": None if prediction.input is None else rounded(prediction.input),
        "layers": [] if seen is None else [stage_payload(a) for a in seen.activity],
        "explanation": None if seen is None else rounded(seen.explanation),
    }


def reading_payload(served: ServedModel, reading: Reading) -> dict[str, Any]:
    """The answer to /api/read: the model's name, the text and each digit's verdict and box."""
    return {"model": served.name, **reading.to_dict()}


def stage_payload(activity: insight.Activity) -> dict[str, Any]:
    stage = activity.stage
    out: dict[str, Any] = {
        "name": stage.name,
        "kind": stage.kind,
        "shape": list(stage.shape),
        "activation": stage.activation,
    }
    if stage.kind == "dense":
        out["values"] = rounded(activity.values)
    else:  # feature maps (h, w, channels), one brightness scale for the whole stage
        picture, (rows, cols) = sheet(gray(np.maximum(activity.values, 0)))
        out["maps"] = base64.b64encode(picture.tobytes()).decode("ascii")
        out["size"] = list(picture.shape)
        out["grid"] = [rows, cols]
    return out


def model_summary(served: ServedModel, default: bool) -> dict[str, Any]:
    meta = served.model.metadata or {}
    return {
        "name": served.name,
        "kind": served.kind,
        "parameters": served.model.count_params(),
        "test_accuracy": (meta.get("test") or {}).get("accuracy"),
        "default": default,
    }


def model_details(served: ServedModel) -> dict[str, Any]:
    """The model page's static part: architecture, training, first-layer weights, and (for a
    multi-layer perceptron) the strongest connections of each Dense stage."""
    model = served.model
    weights = insight.first_layer_weights(model)
    stages = insight.stages(model)
    out = describe(model)
    out.update(
        name=served.name,
        kind=served.kind,
        stages=[{"name": s.name, "kind": s.kind, "shape": list(s.shape)} for s in stages],
        first_layer=[png_data_url(diverging(w)) for w in weights],
        connections=[
            [[c.source, c.target, round(c.weight, 4)] for c in stage]
            for stage in insight.strongest_connections(model)
        ]
        if served.kind == "mlp"
        else [],
    )
    return out


def test_payload(served: ServedModel, results) -> dict[str, Any]:
    out = results.to_dict()
    out["model"] = served.name
    for mistake, image in zip(out["mistakes"], results.mistake_images, strict=True):
        mistake["image"] = png_data_url(image)
    return out
