"""Model files: a faithful round trip, and a clear error for every kind of bad file."""

import zipfile

import numpy as np
import pytest
from modelfiles import rewrite

from digitnet.nn import SGD, Dense, Dropout, Flatten, ModelFileError, Sequential, load_model
from digitnet.nn.io import FORMAT_VERSION


@pytest.fixture
def trained(rng, tmp_path):
    X = rng.random((64, 4, 4), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    model = Sequential(
        [Flatten(input_shape=(4, 4)), Dense(8, "tanh"), Dropout(0.1), Dense(10, "softmax")], seed=2
    )
    model.compile(optimizer=SGD(0.05, momentum=0.9, nesterov=True), metrics=["accuracy"])
    model.fit(X, y, epochs=2, verbose=False)
    model.metadata = {"command": "digitnet train --epochs 2", "data": {"checksum": "sha256:00"}}
    path = tmp_path / "model.npz"
    model.save(path)
    return model, X, path


def test_round_trip_gives_identical_predictions_and_keeps_everything(trained):
    model, X, path = trained
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert [type(layer).__name__ for layer in loaded.layers] == [
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert loaded.history.history == model.history.history
    assert loaded.metadata == model.metadata
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert set(loaded.versions) == {"digitnet", "numpy", "python"}
    assert loaded.evaluate(X, np.zeros(64), return_dict=True).keys() == {"loss", "accuracy"}


def test_file_is_written_atomically(trained, monkeypatch):
    model, _, path = trained
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_truncated_file(trained):
    _, _, path = trained
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model(path)


def test_not_a_model(tmp_path):
    (tmp_path / "photo.npz").write_bytes(b"\x89PNG\r\n\x1a\n not a model at all")
    with pytest.raises(ModelFileError, match="not a digitnet model file") as refused:
        load_model(tmp_path / "photo.npz")
    assert "pickle" not in str(refused.value)  # NumPy's advice to allow it is never passed on
    np.savez(tmp_path / "arrays.npz", W=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a digitnet model file"):
        load_model(tmp_path / "arrays.npz")
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.npz")


def test_newer_format_version(trained):
    _, _, path = trained
    rewrite(path, lambda d, a: d.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match=f"model format {FORMAT_VERSION + 1}, newer.*upgrade"):
        load_model(path)


def test_weights_that_do_not_fit_the_architecture(trained):
    _, _, path = trained
    rewrite(path, lambda d, a: a.update({"layers/1/W": np.zeros((3, 3), np.float32)}))
    with pytest.raises(ModelFileError, match=r"layers/1/W has shape \(3, 3\).*needs \(16, 8\)"):
        load_model(path)
    rewrite(path, lambda d, a: a.pop("layers/3/b"))
    with pytest.raises(ModelFileError, match="missing: layers/3/b"):
        load_model(path)


def test_unknown_layer_class(trained):
    _, _, path = trained
    rewrite(path, lambda d, a: d["architecture"]["layers"][1].update({"class": "Lambda"}))
    with pytest.raises(ModelFileError, match="unknown layer class 'Lambda'"):
        load_model(path)


def test_loading_never_unpickles(trained):
    _, _, path = trained
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    with np.load(path, allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)
