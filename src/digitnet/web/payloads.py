"""What the API answers, built from the library's results: plain JSON-ready dicts. Arrays of
28x28 go as nested lists (rounded), feature maps as PNG data URLs (tens of thousands of numbers
would cost more to encode than the network costs to run)."""

from __future__ import annotations

from typing import Any

import numpy as np

from digitnet import insight
from digitnet.recognition import Prediction
from digitnet.web.catalog import ServedModel
from digitnet.web.pictures import diverging, gray, png_data_url, sheet

DECIMALS = 3


def rounded(values: np.ndarray) -> list:
    return np.round(values.astype(np.float64), DECIMALS).tolist()


def prediction_payload(served: ServedModel, prediction: Prediction) -> dict[str, Any]:
    """A verdict with everything the page shows: the input the network saw, each stage's
    activity, and the explanation of the winning digit."""
    out: dict[str, Any] = {
        "model": served.name,
        "digit": prediction.digit,
        "confidence": prediction.confidence,
        "probabilities": prediction.probabilities,
        "reason": prediction.reason,
        "input": None if prediction.input is None else rounded(prediction.input),
        "box": None if prediction.box is None else list(prediction.box),
        "frame": None if prediction.frame is None else [round(v, 2) for v in prediction.frame],
        "layers": [],
        "explanation": None,
    }
    if prediction.digit is not None:
        image = prediction.input
        out["layers"] = [stage_payload(a) for a in insight.activity(served.model, image)]
        out["explanation"] = rounded(insight.explain(served.model, image, prediction.digit))
    return out


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
        out["maps"] = png_data_url(picture)
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
    from digitnet.modelcard import describe

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
