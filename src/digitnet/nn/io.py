"""Model files: one self-describing ``.npz`` archive, written atomically (``saving``), read
without pickle (here).

Layout of the archive (NumPy's zip of ``.npy`` arrays)::

    __digitnet__          uint8: UTF-8 JSON — format name and version, architecture, compile
                          settings, training history, metadata (command, data checksum, ...),
                          library versions
    layers/<i>/<name>     float32: parameter <name> ("W", "b", "gamma", ...) of layer i
    state/<i>/<name>      float32: non-trainable array of layer i (BatchNorm's moving averages)

Loading trusts nothing in the file. It reads at most MAX_MODEL_BYTES of a regular file;
sizes up the zip's directory before parsing it (``files.open_zip``); checks every array's
declared shape and type in its ``.npy`` header (float32 weights, the description uint8:
nothing is unpickled, no object or string arrays) before anything is inflated, all of them
within one budget, MAX_MODEL_BYTES, the description within MAX_DESCRIPTION_BYTES; checks the
JSON's shape (nesting, types, the metadata fields digitnet reads back) before using it;
refuses, before allocating it, an architecture that needs more values than the file holds, or
more working memory for one digit than MAX_SAMPLE_BYTES; then rebuilds the model and checks
that every parameter is present with the expected shape, finite, and that no unknown array is
there. Whatever the bytes, the outcome is a model or one ModelFileError.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from digitnet.nn.callbacks import History
from digitnet.nn.conv import Conv2D, MaxPool2D
from digitnet.nn.errors import ModelFileError, NNError
from digitnet.nn.files import ZipRefused, json_depth, open_zip, read_file_as
from digitnet.nn.keras_args import refuse_unsupported
from digitnet.nn.keras_files import keras_format, load_keras
from digitnet.nn.layers import Activation, Dense, Dropout, Flatten, Reshape
from digitnet.nn.losses import get_loss
from digitnet.nn.model import Sequential
from digitnet.nn.normalization import BatchNorm
from digitnet.nn.optimizers import get_optimizer
from digitnet.nn.saving import (  # noqa: F401 (the format's names, where the format is written down)
    FORMAT_NAME,
    FORMAT_VERSION,
    KERAS_SUFFIXES,
    META_KEY,
    check_model_name,
    expected_arrays,
    save_model,
)

MAX_MODEL_BYTES = 128 * 2**20  # the file, and all it holds once inflated (the cnn: 1.3 MB)
MAX_DESCRIPTION_BYTES = 2**20  # the JSON: architecture, history, metadata (the cnn's: 10 KB)
MAX_SAMPLE_BYTES = 16 * 2**20  # working memory of one digit's pass (the cnn's: 0.5 MB)
MAX_JSON_DEPTH = 32


def read_model_bytes(path: str | os.PathLike) -> bytes:
    """A model file's bytes: a regular file of at most MAX_MODEL_BYTES, or a ModelFileError."""
    return read_file_as(path, MAX_MODEL_BYTES, ModelFileError, "model file")


def read_model_file(
    path: str | os.PathLike, content: bytes | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON description and the weight arrays of a model file (``content``: its bytes,
    if already read), checked as the module's docstring says; ModelFileError naming the path
    and the problem otherwise."""
    path = Path(path)
    if content is None:
        content = read_model_bytes(path)
    try:
        arrays = _read_arrays(content)
    except (ModelFileError, ZipRefused) as err:
        raise ModelFileError(f"{path}: {err}") from None
    except Exception:  # zipfile and NumPy's .npy reader meet untrusted bytes here: besides
        # BadZipFile and ValueError, a damaged file gave NotImplementedError (an unknown
        # compression method), tokenize.TokenError and OverflowError
        raise ModelFileError(
            f"{path}: not a readable digitnet model file (truncated or corrupt?)"
        ) from None
    try:
        description = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ModelFileError(f"{path}: the model description is corrupt: {err}") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a digitnet model file")
    version = description.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written in model format {version}, newer than this digitnet reads"
            f" ({FORMAT_VERSION}); upgrade digitnet (pip install -U digitnet)"
        )
    problem = _description_problem(description)
    if problem:
        raise ModelFileError(f"{path}: the model description is invalid: {problem}")
    return description, arrays


NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}  # fmt: skip


def _read_arrays(content: bytes) -> dict[str, np.ndarray]:
    """The ``.npy`` arrays of an ``.npz`` archive's bytes. Each member's header is read first:
    the description uint8, every other array float32, its declared size the member's size,
    all of them within MAX_MODEL_BYTES — a zip bomb or a header that lies is refused before
    anything is inflated or allocated."""
    if not content.startswith(b"PK"):
        raise ModelFileError("not a digitnet model file (not an .npz archive)")
    with open_zip(content) as archive:
        members = archive.infolist()
        if f"{META_KEY}.npy" not in archive.namelist():
            raise ModelFileError(f"not a digitnet model file (no {META_KEY} record)")
        declared = sum(member.file_size for member in members)
        if declared > MAX_MODEL_BYTES:
            raise ModelFileError(
                f"refused: its arrays declare {declared / 2**20:,.0f} MB, more than the"
                f" {MAX_MODEL_BYTES // 2**20} MB a model file may hold"
            )
        arrays = {}
        for member in members:
            name = member.filename
            if not name.endswith(".npy"):
                raise ModelFileError(f"not a digitnet model file (it holds {name!r})")
            description = name == f"{META_KEY}.npy"
            if description and member.file_size > MAX_DESCRIPTION_BYTES:
                raise ModelFileError(
                    f"refused: its description takes {member.file_size:,} bytes, more than the"
                    f" {MAX_DESCRIPTION_BYTES:,} a model file's may"
                )
            with archive.open(member) as file:
                version = np.lib.format.read_magic(file)
                if version not in NPY_HEADERS:
                    raise ModelFileError(f"{name}: unknown .npy format {version}")
                shape, fortran, dtype = NPY_HEADERS[version](file)
                wanted = np.dtype(np.uint8) if description else np.dtype("<f4")
                if dtype != wanted or fortran:
                    what = "the description is" if description else "weights are"
                    raise ModelFileError(f"{name} holds {dtype} values; {what} {wanted}")
                size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if size != member.file_size - file.tell():
                    raise ModelFileError(f"{name}: its header does not match its size")
                data = file.read(size)
            arrays[name[:-4]] = np.frombuffer(data, dtype).reshape(shape)
    return arrays


def _description_problem(description: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a model file's JSON, or None."""
    if json_depth(description) > MAX_JSON_DEPTH:
        return f"nested more than {MAX_JSON_DEPTH} levels deep"
    arch = description.get("architecture")
    if not isinstance(arch, dict):
        return "no architecture"
    layers, shape = arch.get("layers"), arch.get("input_shape")
    if not isinstance(layers, list) or not layers:
        return "the architecture's layers are not a list of layers"
    for i, spec in enumerate(layers):
        if not (isinstance(spec, dict) and isinstance(spec.get("class"), str)
                and isinstance(spec.get("config", {}), dict)):  # fmt: skip
            return f"layer {i} is not a {{class, config}} record"
    if not (isinstance(shape, list) and 1 <= len(shape) <= 4
            and all(type(d) is int and 1 <= d <= 2**16 for d in shape)):  # fmt: skip
        return f"the input shape {shape!r} is not a list of 1 to 4 positive sizes"
    for key in ("compile", "history", "metadata", "versions"):
        if description.get(key) is not None and not isinstance(description[key], dict):
            return f"{key} is not a record"
    history = description.get("history") or {}
    curves = history.get("history", {})
    numbers = isinstance(curves, dict) and all(
        isinstance(curve, list) and all(map(_is_number, curve)) for curve in curves.values()
    )
    if not (numbers and isinstance(history.get("epoch", []), list)):
        return "the training history is not curves of numbers"
    return _metadata_problem(description.get("metadata") or {})


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


NUMBER = (int, float)
# The metadata fields digitnet reads back, and their types when they are there; a record
# (test, data, ...) must be a JSON object. A file may hold more; it is not read.
METADATA_FIELDS = {
    ("command",): str,
    ("training_seconds",): NUMBER,
    ("writing_seconds",): NUMBER,
    ("epochs_completed",): int,
    ("interrupted",): bool,
    ("test", "accuracy"): NUMBER,
    ("test", "loss"): NUMBER,
    ("data", "source"): str,
    ("data", "checksum"): str,
    ("data", "written_on_paper"): int,
    ("converted_from", "file"): str,
    ("converted_from", "format"): str,
    ("calibration", "temperature"): NUMBER,
    ("calibration", "fitted_on"): str,
}
TEMPERATURES = (0.04, 25.0)  # what ``recognition.fit_temperature`` can find: e^-3 ... e^3


def _metadata_problem(metadata: dict[str, Any]) -> str | None:
    """The metadata fields digitnet reads back must be what it wrote: numbers and records."""
    for keys, kind in METADATA_FIELDS.items():
        value: Any = metadata
        for depth, key in enumerate(keys):
            if value.get(key) is None:
                break
            value = value[key]
            if depth < len(keys) - 1 and not isinstance(value, dict):
                return f"metadata {key} is {value!r}, not a record"
        else:
            wrong = (type(value) is bool) != (kind is bool) or not isinstance(value, kind)
            if wrong or (kind is NUMBER and not np.isfinite(value)):
                name = "a number" if kind is NUMBER else f"of type {kind.__name__}"
                return f"metadata {'.'.join(keys)} is {value!r}, not {name}"
    temperature = (metadata.get("calibration") or {}).get("temperature")
    low, high = TEMPERATURES
    if temperature is not None and not low <= temperature <= high:
        return (
            f"the calibration's temperature is {temperature!r}; it must be in [{low}, {high}]"
            " (digitnet calibrate fits one there)"
        )
    return None


LAYERS = {
    cls.__name__: cls
    for cls in (Dense, Activation, Flatten, Reshape, Dropout, Conv2D, MaxPool2D, BatchNorm)
}


def load_model(
    filepath: str | os.PathLike,
    custom_objects: Any = None,
    compile: bool = True,
    safe_mode: bool = True,
    *,
    content: bytes | None = None,
):
    """Rebuild a model saved by ``save_model``: architecture, weights, compile settings,
    history and metadata. A Keras ``.keras`` or ``.h5`` file is read too (``keras_files``).
    Keras' arguments, with Keras' meaning: ``compile=False`` gives the model back without its
    loss and optimiser (to predict, or to compile anew); ``safe_mode`` either way — a model
    file is read as data, never run as code; ``custom_objects`` is refused (a digitnet file
    holds only digitnet's own layers, losses and optimisers). ``content``: the file's bytes,
    already read (a model sent to another process or machine); ``filepath`` then only names it
    in messages."""
    refuse_unsupported("load_model", custom_objects=custom_objects)
    if content is None:
        content = read_model_bytes(filepath)
    if keras_format(content):
        model = load_keras(content, filepath, MAX_MODEL_BYTES)
        check_working_memory(model, filepath)
        return model
    description, arrays = read_model_file(filepath, content)
    held = sum(a.size for key, a in arrays.items() if key.startswith(("layers/", "state/")))
    try:
        arch = description["architecture"]
        layers = [_layer_from_dict(LAYERS, spec) for spec in arch["layers"]]
        model = Sequential(layers, name=str(arch.get("name", "")))
        # Never much more than the file holds: a few hundred bytes of JSON must not allocate
        # gigabytes. The margin lets a small mismatch be named by the shape checks below.
        model.build(tuple(arch["input_shape"]), max_values=held + 2**20)
    except (KeyError, TypeError, ValueError, OverflowError, NNError) as err:
        raise ModelFileError(f"{filepath}: the architecture is invalid: {err}") from None
    check_working_memory(model, filepath)

    expected = expected_arrays(model)
    missing = sorted(set(expected) - set(arrays))
    unknown = sorted(set(arrays) - set(expected))
    if missing or unknown:
        raise ModelFileError(
            f"{filepath}: weights do not match the architecture"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unexpected: {', '.join(unknown)}" if unknown else "")
        )
    for key, param in expected.items():
        value = arrays[key]
        if value.shape != param.shape:
            raise ModelFileError(
                f"{filepath}: {key} has shape {value.shape}; the architecture needs {param.shape}"
            )
        if not np.isfinite(value).all():
            raise ModelFileError(f"{filepath}: {key} contains NaN or infinite values")
        param[...] = value

    compiled = description.get("compile")
    if compiled and compile:
        try:
            opt = dict(compiled["optimizer"])
            loss = dict(compiled["loss"])
            loss_obj = get_loss(loss.pop("name"))
            loss_obj.from_logits = bool(loss.get("from_logits", False))
            model.compile(get_optimizer(opt.pop("name"), **opt), loss_obj, compiled.get("metrics"))
        except (KeyError, TypeError, ValueError, OverflowError, NNError) as err:
            raise ModelFileError(f"{filepath}: the compile settings are invalid: {err}") from None
    if description.get("history"):
        history = History()
        history.history = description["history"].get("history", {})
        history.epoch = description["history"].get("epoch", [])
        history.interrupted = bool(description["history"].get("interrupted", False))
        model.history = history
    model.metadata = description.get("metadata") or {}
    model.versions = description.get("versions") or {}
    return model


def check_working_memory(model, filepath) -> None:
    """ModelFileError for a model whose pass over one digit needs more than MAX_SAMPLE_BYTES
    (its layers' outputs and a convolution's windows, from the architecture alone): a 6 KB
    file of a Conv2D with 100,000 1x1 filters asked predict for 9.35 GiB."""
    needed = model.sample_bytes
    if needed > MAX_SAMPLE_BYTES:
        raise ModelFileError(
            f"{filepath}: one digit's pass through this model takes {needed / 2**20:,.0f} MB,"
            f" more than the {MAX_SAMPLE_BYTES // 2**20} MB digitnet allows a model"
        )


def _layer_from_dict(table, spec):
    cls = table.get(spec.get("class"))
    if cls is None:
        raise NNError(f"unknown layer class {spec.get('class')!r}")
    return cls(**spec.get("config", {}))
