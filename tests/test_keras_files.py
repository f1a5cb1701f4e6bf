"""Keras models in: files made by real Keras (tests/keras_fixtures/make_fixtures.py) read into
digitnet give Keras' own predictions; what digitnet cannot read is refused in one line."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import digitnet
from digitnet.cli import main
from digitnet.nn import ModelFileError

pytest.importorskip("h5py")
FIXTURES = Path(__file__).parent / "keras_fixtures"


@pytest.fixture(scope="module")
def expected():
    return dict(np.load(FIXTURES / "expected.npz"))


@pytest.mark.parametrize("name", ["tutorial", "cnn"])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_files_predict_what_keras_predicted(name, suffix, expected):
    model = digitnet.load_model(FIXTURES / f"{name}{suffix}")
    x = expected[f"{name}_x"]  # as Keras was given them: (16, 28, 28) or (16, 28, 28, 1)
    got = model.predict(x.reshape(len(x), 28, 28), verbose=0)  # digitnet's tools give (N, 28, 28)
    np.testing.assert_allclose(got, expected[f"{name}_probabilities"], atol=1e-5)
    assert model.metadata["converted_from"]["format"] == f"Keras {suffix}"


def test_a_keras_file_works_with_every_command(tmp_path, capsys, expected):
    """convert writes a digitnet file with the same predictions; predict, evaluate and
    summary take the Keras file as it is."""
    keras_file = tmp_path / "my model.keras"  # named by the user, not by us
    shutil.copy(FIXTURES / "tutorial.keras", keras_file)
    out = tmp_path / "converted.npz"
    assert main(["convert", str(keras_file), str(out)]) == 0
    x = expected["tutorial_x"]
    np.testing.assert_allclose(digitnet.load_model(out).predict(x, verbose=0),
                               expected["tutorial_probabilities"], atol=1e-5)  # fmt: skip
    assert main(["convert", str(keras_file), str(out)]) == 1  # never replaced unasked
    assert "exists" in capsys.readouterr().err
    digit = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray((255 - 255 * x[0]).astype(np.uint8)).save(digit)
    assert main(["predict", "--model", str(keras_file), "--json", str(digit)]) == 0
    assert '"digit"' in capsys.readouterr().out
    assert main(["summary", str(keras_file)]) == 0
    assert "Converted from: my model.keras (Keras .keras)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name, words",
    [
        ("branching", "a Keras Functional model; digitnet reads Sequential models"),
        ("unknown_layer", "layer 'rescaling' is a Rescaling, which digitnet does not have"),
        ("unknown_activation", "uses the activation 'gelu'; digitnet has relu"),
    ],
)
def test_what_digitnet_cannot_read_is_refused_in_one_line(name, words, capsys):
    with pytest.raises(ModelFileError, match=words):
        digitnet.load_model(FIXTURES / f"{name}.keras")
    assert main(["predict", "--model", str(FIXTURES / f"{name}.keras"), "x.png"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert words in line


def test_damaged_keras_files_are_refused_in_one_line(tmp_path):
    content = (FIXTURES / "cnn.h5").read_bytes()
    for damaged in (content[: len(content) // 2], content[:8] + b"\0" * 100):
        path = tmp_path / "damaged.h5"
        path.write_bytes(damaged)
        with pytest.raises(ModelFileError, match=re.escape("damaged.h5: not a readable Keras .h5")):
            digitnet.load_model(path)


def test_the_web_page_serves_a_keras_model(mnist):
    """serve --model model.keras: the model joins the picker and answers drawings, layer by
    layer, as digitnet's own."""
    from fastapi.testclient import TestClient
    from pictures import digit_png

    from digitnet.web.app import create_app
    from digitnet.web.catalog import load_catalog

    client = TestClient(create_app(load_catalog([str(FIXTURES / "tutorial.keras")])))
    (model,) = client.get("/api/models").json()
    assert model["name"] == "tutorial" and model["kind"] == "mlp"
    _, (x_test, _) = mnist
    drawing = digit_png(x_test[0])
    answer = client.post("/api/predict", content=drawing, headers={"content-type": "image/png"})
    assert answer.status_code == 200 and answer.json()["digit"] in range(10)
    assert len(answer.json()["layers"]) >= 3


def test_digitnet_never_writes_its_format_under_a_keras_name(tmp_path, capsys):
    """A file named .keras or .h5 would be taken for Keras' own: refused before any work."""
    for argv in (["train", "--out", str(tmp_path / "mine.keras")],
                 ["convert", str(FIXTURES / "cnn.h5"), str(tmp_path / "mine.h5")]):  # fmt: skip
        assert main(argv) == 1
        assert "name it mine.npz" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
