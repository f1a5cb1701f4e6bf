"""Model files: one self-describing ``.npz`` archive, written atomically, read without pickle.

Layout of the archive (NumPy's zip of ``.npy`` arrays)::

    __digitnet__          uint8: UTF-8 JSON — format name and version, architecture, compile
                          settings, training history, metadata (command, data checksum, ...),
                          library versions
    layers/<i>/<name>     float32: parameter <name> ("W", "b", "gamma", ...) of layer i
    state/<i>/<name>      float32: non-trainable array of layer i (BatchNorm's moving averages)

Loading rebuilds the model from the JSON architecture, then checks that every parameter is
present with the expected shape and that no unknown array is there. ``np.load`` runs with
``allow_pickle=False``, so a file can never execute code.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from digitnet.nn.conv import Conv2D, MaxPool2D
from digitnet.nn.errors import ModelFileError, NNError
from digitnet.nn.layers import Activation, Dense, Dropout, Flatten, Reshape
from digitnet.nn.normalization import BatchNorm

FORMAT_NAME = "digitnet-model"
FORMAT_VERSION = 1
META_KEY = "__digitnet__"


def _versions() -> dict[str, str]:
    from digitnet import __version__

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
        "versions": _versions(),
    }
    if model.compiled:
        description["compile"] = {
            "optimizer": model.optimizer.get_config(),
            "loss": model.loss.get_config(),
            "metrics": model.metrics,
        }
    return description


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place, so a
    crash or Ctrl-C never leaves a half-written file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model(model, path: str | os.PathLike) -> None:
    """Write ``model`` (built) to ``path`` as described in this module's docstring."""
    if not model.built:
        raise NNError("cannot save a model that has not been built (fit it or call build())")
    meta = json.dumps(model_to_dict(model), allow_nan=False, default=_json_default)
    arrays = {META_KEY: np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)}
    for key, value in _expected_arrays(model).items():
        arrays[key] = value
    atomic_write(path, lambda file: np.savez(file, **arrays))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a model file")


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON description and the weight arrays of a model file, checked for readability."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as err:
        raise ModelFileError(
            f"{path}: not a readable digitnet model file (truncated or corrupt?): {err}"
        ) from None
    if META_KEY not in arrays:
        raise ModelFileError(f"{path}: not a digitnet model file (no {META_KEY} record)")
    try:
        description = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path}: the model description is corrupt: {err}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a digitnet model file")
    version = description.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format {version}, newer than this digitnet reads"
            f" ({FORMAT_VERSION}); upgrade digitnet (pip install -U digitnet)"
        )
    return description, arrays


def _expected_arrays(model) -> dict[str, np.ndarray]:
    """Every array a model file of ``model`` holds, by key, as views of the live arrays."""
    arrays = {}
    for i, layer in enumerate(model.layers):
        arrays.update({f"layers/{i}/{key}": value for key, value in layer.params.items()})
        arrays.update({f"state/{i}/{key}": value for key, value in layer.state.items()})
    return arrays


LAYERS = {
    cls.__name__: cls
    for cls in (Dense, Activation, Flatten, Reshape, Dropout, Conv2D, MaxPool2D, BatchNorm)
}


def load_model(path: str | os.PathLike):
    """Rebuild a model saved by ``save_model``: architecture, weights, compile settings,
    history and metadata."""
    from digitnet.nn.callbacks import History
    from digitnet.nn.model import Sequential

    description, arrays = read_model_file(path)
    try:
        arch = description["architecture"]
        layers = [_layer_from_dict(LAYERS, spec) for spec in arch["layers"]]
        model = Sequential(layers, name=arch.get("name", ""))
        model.build(tuple(arch["input_shape"]))
    except (KeyError, TypeError, NNError) as err:
        raise ModelFileError(f"{path}: the architecture is invalid: {err}") from None

    expected = _expected_arrays(model)
    missing = sorted(set(expected) - set(arrays))
    unknown = sorted(set(arrays) - set(expected))
    if missing or unknown:
        raise ModelFileError(
            f"{path}: weights do not match the architecture"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unexpected: {', '.join(unknown)}" if unknown else "")
        )
    for key, param in expected.items():
        value = arrays[key]
        if value.shape != param.shape:
            raise ModelFileError(
                f"{path}: {key} has shape {value.shape}; the architecture needs {param.shape}"
            )
        if not np.isfinite(value).all():
            raise ModelFileError(f"{path}: {key} contains NaN or infinite values")
        param[...] = value

    compiled = description.get("compile")
    if compiled:
        from digitnet.nn.losses import get_loss
        from digitnet.nn.optimizers import get_optimizer

        try:
            opt = dict(compiled["optimizer"])
            loss = dict(compiled["loss"])
            loss_obj = get_loss(loss.pop("name"))
            loss_obj.from_logits = bool(loss.get("from_logits", False))
            model.compile(get_optimizer(opt.pop("name"), **opt), loss_obj, compiled.get("metrics"))
        except (KeyError, TypeError, NNError) as err:
            raise ModelFileError(f"{path}: the compile settings are invalid: {err}") from None
    if description.get("history"):
        history = History()
        history.history = description["history"].get("history", {})
        history.epoch = description["history"].get("epoch", [])
        history.interrupted = description["history"].get("interrupted", False)
        model.history = history
    model.metadata = description.get("metadata") or {}
    model.versions = description.get("versions") or {}
    return model


def _layer_from_dict(table, spec):
    cls = table.get(spec.get("class"))
    if cls is None:
        raise NNError(f"unknown layer class {spec.get('class')!r}")
    return cls(**spec.get("config", {}))
