"""ONNX export: ONNX Runtime gives the probabilities digitnet gives."""

import numpy as np
import pytest

from digitnet.cli import main
from digitnet.data import to_float
from digitnet.nn import (
    Activation,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    Reshape,
    Sequential,
)
from digitnet.zoo import bundled_model

ort = pytest.importorskip("onnxruntime")


def onnx_probabilities(path_or_bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(path_or_bytes, providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"digits": x})
    return probabilities


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnn", "tutorial"])
def test_bundled_models_give_the_same_probabilities_in_onnx_runtime(name, mnist, tmp_path):
    _, (x_test, _) = mnist
    x = to_float(x_test[:1000])  # (1000, 28, 28) float32 in [0, 1]
    out = tmp_path / f"{name}.onnx"
    assert main(["export", name, str(out)]) == 0
    got = onnx_probabilities(str(out), x)
    np.testing.assert_allclose(got, bundled_model(name).predict(x, verbose=0), atol=1e-5)


def test_every_layer_kind_is_exported_exactly(rng):
    """Strided and 'same' convolutions, tanh and sigmoid, batch norm on images and vectors
    (with moving statistics far from 0 and 1), pooling, dropout."""
    from digitnet.export import to_onnx

    model = Sequential([
        Reshape((28, 28, 1), input_shape=(28, 28)),
        Conv2D(6, 3, strides=2, padding="same", activation="tanh"),
        BatchNorm(),
        MaxPool2D(2),
        Conv2D(4, (3, 2), padding="same"),
        Activation("sigmoid"),
        Flatten(),
        Dense(12, activation="relu"),
        BatchNorm(epsilon=0.01),
        Dropout(0.5),
        Dense(10, activation="softmax"),
    ], seed=1)  # fmt: skip
    model.build()
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            for value in layer.state.values():
                value[:] = rng.uniform(0.5, 2.0, value.shape)
    x = rng.random((64, 28, 28), dtype=np.float32)
    got = onnx_probabilities(to_onnx(model).SerializeToString(), x)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-5)


def test_export_never_replaces_a_file_unasked(tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"mine")
    assert main(["export", "tutorial", str(out)]) == 1
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert main(["export", "tutorial", str(out), "--force"]) == 0
    assert out.read_bytes()[:4] != b"mine"
