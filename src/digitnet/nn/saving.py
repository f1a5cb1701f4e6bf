"""Saving a model: one self-describing ``.npz`` archive (its layout: ``io``), written atomically.

The model (``Sequential.save``) and the loader (``io``) both import this module; it imports
neither, so the engine's modules import one way.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from digitnet import __version__
from digitnet.nn.errors import NNError
from digitnet.nn.files import atomic_write

FORMAT_NAME = "digitnet-model"
FORMAT_VERSION = 1
META_KEY = "__digitnet__"
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


def versions() -> dict[str, str]:

    return {"digitnet": __version__, "numpy": np.__version__, "python": platform.python_version()}


def model_to_dict(model) -> dict[str, Any]:
    """The JSON description of a built model: everything but the weights."""
    description = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": {
            "class": "Sequential",
            "name": model.name,
            "input_shape": list(model.input_shape),
            "layers": [
                {"class": type(layer).__name__, "config": layer.get_config()}
                for layer in model.layers
            ],
        },
        "compile": None,
        "history": model.history.to_dict() if model.history is not None else None,
        "metadata": model.metadata,
        "versions": versions(),
    }
    if model.compiled:
        description["compile"] = {
            "optimizer": model.optimizer.get_config(),
            "loss": model.loss.get_config(),
            "metrics": model.metrics,
        }
    return description


def check_model_name(path: str | os.PathLike) -> None:
    """NNError for a name that promises a Keras file: a Keras user would load it in Keras."""
    if Path(path).suffix.lower() in KERAS_SUFFIXES:
        raise NNError(
            f"{path}: digitnet writes its own model format, not Keras' — name it"
            f" {Path(path).with_suffix('.npz').name} (Keras files are read, not written)"
        )


def save_model(model, path: str | os.PathLike, overwrite: bool = True) -> None:
    """Write ``model`` (built) to ``path`` as described in this module's docstring. An existing
    regular file there is replaced only with ``overwrite`` (Keras' default); anything else (a
    folder, a device) never is."""
    if not model.built:
        raise NNError("cannot save a model that has not been built (fit it or call build())")
    check_model_name(path)
    meta = json.dumps(model_to_dict(model), allow_nan=False, default=_json_default)
    arrays = {META_KEY: np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)}
    for key, value in expected_arrays(model).items():
        arrays[key] = value
    atomic_write(path, lambda file: np.savez(file, **arrays), replace=overwrite)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


def expected_arrays(model) -> dict[str, np.ndarray]:
    """Every array a model file of ``model`` holds, by key, as views of the live arrays."""
    arrays = {}
    for i, layer in enumerate(model.layers):
        arrays.update({f"layers/{i}/{key}": value for key, value in layer.params.items()})
        arrays.update({f"state/{i}/{key}": value for key, value in layer.state.items()})
    return arrays
