"""Keras model files in: a Keras ``Sequential`` model of the layers digitnet has, as a digitnet
``Sequential`` with the same weights — no TensorFlow needed, only h5py for the weights
(``pip install digitnet[keras]``).

Two formats, told apart by their content, not their name:

    Keras 3's .keras        a zip: config.json (the architecture) and model.weights.h5, where
                            layer k of class C keeps its variables at layers/c[_k]/vars/0, 1...
    legacy Keras .h5        HDF5: the architecture in the attribute model_config (JSON), each
                            layer's variables at model_weights/<name>/<weight_names[i]>

Layers: InputLayer, Flatten, Dense, Conv2D, MaxPooling2D, BatchNormalization, Dropout,
Activation, Reshape; activations relu, sigmoid, tanh, softmax, linear. Anything else — another
layer, a functional model, a custom object, dilated or grouped convolutions — is refused with
one line naming it. Keras' kernels are laid out as digitnet's ((D, H) for Dense, (kh, kw, C, F)
for Conv2D, channels last), so the weights go over unchanged. digitnet's tools give a model
(N, 28, 28) digits: a model whose input is (28, 28, 1) or (784,) gets a Reshape or Flatten in
front, which changes no value.

The HDF5 part is read in a child process (``isolation``): the HDF5 library crashed on a
damaged file. All the weights read, an array counted each time a layer names it, stay within
one budget (``max_bytes``), and the config within MAX_CONFIG_BYTES.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from digitnet.nn.conv import Conv2D, MaxPool2D
from digitnet.nn.errors import ModelFileError, NNError
from digitnet.nn.files import ZipRefused, json_depth, open_zip
from digitnet.nn.isolation import isolated
from digitnet.nn.layers import Activation, Dense, Dropout, Flatten, Layer, Reshape
from digitnet.nn.model import Sequential
from digitnet.nn.normalization import BatchNorm

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_CONFIG_BYTES = 2**20  # the Keras cnn's: 6 KB
MAX_CONFIG_DEPTH = 32
ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax", "linear")
DIGIT_INPUTS = {(28, 28): None, (28, 28, 1): Reshape, (784,): Flatten}  # what goes in front


def keras_format(content: bytes) -> str | None:
    """ ".keras" or ".h5" for the bytes of a Keras model file, None for anything else."""
    if content.startswith(HDF5_SIGNATURE):
        return ".h5"
    if content.startswith(b"PK"):
        try:
            with open_zip(content) as archive:
                if "config.json" in archive.namelist():
                    return ".keras"
        except (zipfile.BadZipFile, ZipRefused):
            return None
    return None


def load_keras(content: bytes, path: str | Path, max_bytes: int):
    """The digitnet Sequential of a Keras model file's bytes (``keras_format`` says which);
    ModelFileError naming ``path`` and the problem otherwise. At most ``max_bytes`` of
    weights are read."""
    _h5py()  # said here, in one line, before a child process is started for nothing
    kind = keras_format(content)
    try:
        config, weights = isolated(read_keras, content, kind, max_bytes, what="its HDF5 part")
        model = _build(config, weights)
    except ModelFileError as err:
        raise ModelFileError(f"{path}: {err}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as err:
        raise ModelFileError(
            f"{path}: not a readable Keras {kind} model file ({type(err).__name__}: {err})"
        ) from None
    model.metadata = {"converted_from": {"file": Path(path).name, "format": f"Keras {kind}"}}
    return model


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ModelFileError(
            "reading Keras files needs h5py: pip install 'digitnet[keras]'"
        ) from None
    return h5py


# ----------------------------------------------------------------------------------- reading


def read_keras(content: bytes, kind: str, max_bytes: int):
    """(architecture config, {layer name: [arrays]}) of a Keras file's bytes — run in a child
    process (``isolation``), which turns any other failure into a ModelFileError."""
    budget = Budget(max_bytes)
    read = _read_keras_zip if kind == ".keras" else _read_legacy_h5
    try:
        return read(content, budget)
    except ModelFileError:
        raise
    except Exception as err:  # HDF5's errors on a damaged file come in every kind
        raise ModelFileError(
            f"not a readable Keras {kind} model file ({type(err).__name__}: {err})"
        ) from None


class Budget:
    """The bytes of weights a file may still make us hold; ``take`` refuses past them."""

    def __init__(self, left: int):
        self.left = left

    def take(self, size: int, what: str) -> None:
        if size > self.left:
            raise ModelFileError(f"{what} takes digitnet past the weights a model file may hold")
        self.left -= size


def _read_keras_zip(content: bytes, budget: Budget):
    """(architecture config, {layer name: [arrays]}) of a Keras 3 ``.keras`` file."""
    import h5py

    with open_zip(content) as archive:
        config = _json(_member(archive, "config.json", MAX_CONFIG_BYTES))
        weights_file = _member(archive, "model.weights.h5", budget.left)
    budget.take(len(weights_file), "model.weights.h5")
    weights: dict[str, list[np.ndarray]] = {}
    with h5py.File(io.BytesIO(weights_file), "r") as h5:
        stored = h5.get("layers", {})
        for name in stored:
            variables = stored[name].get("vars", {})
            weights[name] = [_array(variables[k], budget) for k in sorted(variables, key=int)]
    return config, _by_config_name(config, weights)


def _by_config_name(config: dict, weights: dict[str, list[np.ndarray]]):
    """Keras 3 stores layer k of class C under C's snake_case name, numbered from the second
    of its class on (``dense``, ``dense_1``...), not under the layer's own name."""
    seen: dict[str, int] = {}
    named = {}
    for spec in _layer_specs(config):
        if spec["class_name"] == "InputLayer":
            continue
        key = _snake_case(spec["class_name"])
        count = seen.get(key, 0)
        seen[key] = count + 1
        named[str(spec["config"].get("name"))] = weights.get(
            key if count == 0 else f"{key}_{count}", []
        )
    return named


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _read_legacy_h5(content: bytes, budget: Budget):
    """(architecture config, {layer name: [arrays]}) of a legacy Keras ``.h5`` file."""
    import h5py

    weights: dict[str, list[np.ndarray]] = {}
    with h5py.File(io.BytesIO(content), "r") as h5:
        if "model_config" not in h5.attrs:
            raise ModelFileError("an HDF5 file without a model (model_config): weights only?")
        text = h5.attrs["model_config"]
        if len(text) > MAX_CONFIG_BYTES:
            raise ModelFileError(f"its model_config takes more than {MAX_CONFIG_BYTES:,} bytes")
        config = _json(text)
        group = h5["model_weights"]
        for name in group:
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in group[name].attrs.get("weight_names", [])]  # fmt: skip
            weights[name] = [_array(group[name][n], budget) for n in names]
    return config, weights


def _member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelFileError(f"a .keras file without {name}") from None
    if info.file_size > max_bytes:
        raise ModelFileError(f"{name} would take {info.file_size:,} bytes, more than allowed")
    return archive.read(info)


def _json(text: Any) -> dict:
    """A config's JSON object, nested at most MAX_CONFIG_DEPTH deep."""
    try:
        config = json.loads(text.decode() if isinstance(text, bytes) else str(text))
    except RecursionError:
        config = None
    if not isinstance(config, dict) or json_depth(config) > MAX_CONFIG_DEPTH:
        raise ModelFileError(
            f"the model config is not a JSON object nested at most {MAX_CONFIG_DEPTH} deep"
        )
    return config


def _array(dataset, budget: Budget) -> np.ndarray:
    if dataset.dtype.kind != "f":
        raise ModelFileError(f"weights of type {dataset.dtype} (floats expected)")
    budget.take(dataset.size * 4, f"a weight array of {dataset.size:,} values")
    value = np.asarray(dataset[()], dtype=np.float32)
    if not np.isfinite(value).all():
        raise ModelFileError("weights contain NaN or infinite values")
    return value


# ---------------------------------------------------------------------------------- building


def _layer_specs(config: dict) -> list[dict]:
    """The Sequential's layers, each a {class_name, config} record."""
    kind = config.get("class_name")
    if kind != "Sequential":
        raise ModelFileError(
            f"a Keras {kind} model; digitnet reads Sequential models (keras.Sequential([...]))"
        )
    inner = config.get("config")
    layers = inner.get("layers") if isinstance(inner, dict) else inner  # Keras 2.0: a list
    if not isinstance(layers, list) or not layers:
        raise ModelFileError("a Sequential model without layers")
    for i, spec in enumerate(layers):
        if not (isinstance(spec, dict) and isinstance(spec.get("class_name"), str)
                and isinstance(spec.get("config", {}), dict)):  # fmt: skip
            raise ModelFileError(f"layer {i} of the config is not a {{class_name, config}} record")
    return layers


def _build(config: dict, weights: dict[str, list[np.ndarray]]):

    specs = _layer_specs(config)
    input_shape = _input_shape(config, specs)
    front = DIGIT_INPUTS.get(input_shape, "refuse")
    if front == "refuse":
        raise ModelFileError(
            f"a model of inputs {input_shape}; digitnet reads digits: (28, 28), (28, 28, 1)"
            " or (784,)"
        )
    layers: list[Layer] = []
    if front is Reshape:
        layers.append(Reshape(input_shape, input_shape=(28, 28)))
    elif front is Flatten:
        layers.append(Flatten(input_shape=(28, 28)))
    loaded: list[tuple[Layer, str, list[np.ndarray], dict]] = []
    for spec in specs:
        if spec.get("class_name") == "InputLayer":
            continue
        layer_config = spec.get("config") or {}
        layer = _layer(spec.get("class_name"), spec.get("module"), layer_config)
        layers.append(layer)
        name = str(layer_config.get("name"))
        loaded.append((layer, name, weights.get(name, []), layer_config))
    inner = config.get("config")
    name = str((inner.get("name") if isinstance(inner, dict) else None) or "keras")
    try:
        model = Sequential(layers, name=name)
        held = sum(a.size for arrays in weights.values() for a in arrays)
        # Never much more than the file holds: a config must not make us allocate gigabytes.
        model.build((28, 28) if front else input_shape, max_values=held + 2**20)
    except NNError as err:
        raise ModelFileError(f"the architecture does not fit together: {err}") from None
    for layer, layer_name, arrays, layer_config in loaded:
        _set_weights(layer, layer_name, arrays, layer_config)
    return model


def _input_shape(config: dict, specs: list[dict]) -> tuple[int, ...]:
    first = specs[0].get("config") or {}
    shape = (first.get("batch_shape") or first.get("batch_input_shape")
             or (config.get("build_config") or {}).get("input_shape"))  # fmt: skip
    if not shape:
        raise ModelFileError("the model does not say its input shape")
    return tuple(int(d) for d in shape[1:])


def _layer(kind: str | None, module: str | None, c: dict) -> Layer:
    name = c.get("name")
    if module not in (None, "keras.layers"):
        raise ModelFileError(f"layer {name!r} is {module}.{kind}: a custom layer")
    if kind == "Dense":
        return Dense(int(c["units"]), activation=_activation(c, name))
    if kind == "Conv2D":
        _require(c, name, data_format="channels_last", dilation_rate=[1, 1], groups=1)
        return Conv2D(int(c["filters"]), tuple(c["kernel_size"]), strides=tuple(c["strides"]),
                      padding=c["padding"], activation=_activation(c, name))  # fmt: skip
    if kind == "MaxPooling2D":
        _require(c, name, data_format="channels_last", padding="valid")
        return MaxPool2D(tuple(c["pool_size"]), strides=tuple(c["strides"] or c["pool_size"]))
    if kind == "BatchNormalization":
        _require(c, name, renorm=False)
        return BatchNorm(momentum=float(c["momentum"]), epsilon=float(c["epsilon"]))
    if kind == "Flatten":
        _require(c, name, data_format="channels_last")
        return Flatten()
    if kind == "Reshape":
        return Reshape(tuple(int(d) for d in c["target_shape"]))
    if kind == "Dropout":
        return Dropout(float(c["rate"]))
    if kind == "Activation":
        return Activation(_activation(c, name))
    raise ModelFileError(
        f"layer {name!r} is a {kind}, which digitnet does not have (it reads InputLayer, Flatten,"
        " Dense, Conv2D, MaxPooling2D, BatchNormalization, Dropout, Activation, Reshape)"
    )


def _activation(c: dict, name: Any) -> str:
    activation = c.get("activation") or "linear"
    if activation not in ACTIVATIONS:
        raise ModelFileError(
            f"layer {name!r} uses the activation {activation!r}; digitnet has "
            + ", ".join(ACTIVATIONS)
        )
    return activation


def _require(c: dict, name: Any, **settings: Any) -> None:
    for key, wanted in settings.items():
        value = c.get(key, wanted)
        if value is None and key == "data_format":
            continue  # Keras 2: None means the default, channels last
        if (list(value) if isinstance(value, (list, tuple)) else value) != wanted:
            raise ModelFileError(f"layer {name!r} has {key}={value!r}; digitnet reads {wanted!r}")


def _set_weights(layer: Layer, name: str, arrays: list[np.ndarray], c: dict) -> None:
    """Keras' variables of ``layer``, in Keras' order, into digitnet's parameters."""
    if isinstance(layer, (Dense, Conv2D)):
        wanted = ["W", "b"] if c.get("use_bias", True) else ["W"]
        values = dict(zip(wanted, arrays, strict=False))
        values.setdefault("b", np.zeros_like(layer.params["b"]))
        targets = layer.params
    elif isinstance(layer, BatchNorm):
        wanted = (["gamma"] if c.get("scale", True) else []) + (
            ["beta"] if c.get("center", True) else []
        )
        wanted += ["moving_mean", "moving_variance"]
        values = dict(zip(wanted, arrays, strict=False))
        values.setdefault("gamma", np.ones_like(layer.params["gamma"]))
        values.setdefault("beta", np.zeros_like(layer.params["beta"]))
        targets = {**layer.params, **layer.state}
    else:
        wanted, values, targets = [], {}, {}
    if len(arrays) != len(wanted):
        raise ModelFileError(
            f"layer {name!r} has {len(arrays)} weight arrays; {len(wanted)} expected"
        )
    for key, target in targets.items():
        if values[key].shape != target.shape:
            raise ModelFileError(
                f"layer {name!r}: {key} has shape {values[key].shape}; the architecture needs"
                f" {target.shape}"
            )
        target[...] = values[key]
