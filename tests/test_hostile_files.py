"""Hostile and odd files: model files, data files and images crafted to hang, exhaust memory or
crash. Each gets one clear error naming the file — quickly, without allocating what the file
claims, and without costing the other files of the same command their answers."""

import json
import os
import resource
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from modelfiles import rewrite
from PIL import Image

from digitnet.cli import main
from digitnet.data import DataError, load_mnist
from digitnet.data.idx import read_idx
from digitnet.nn import SGD, Dense, Flatten, ModelFileError, NNError, Sequential, load_model
from digitnet.nn.io import MAX_MODEL_BYTES, META_KEY
from digitnet.vision import ImageError, prepare


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def refused_cheaply(load, path, error, message) -> None:
    """``load(path)`` raises ``error`` saying ``message`` without taking 100 MB first."""
    before = peak_rss_mb()
    with pytest.raises(error, match=message):
        load(path)
    assert peak_rss_mb() - before < 100


@pytest.fixture
def model_file(tmp_path):
    model = Sequential([Flatten(input_shape=(4, 4)), Dense(8, "relu"), Dense(10, "softmax")])
    model.compile(optimizer=SGD())
    model.build()
    path = tmp_path / "model.npz"
    model.save(path)
    return path


def architecture(d):
    return d["architecture"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d, a: architecture(d)["layers"][1]["config"].update(units=3_000_000),
         "more than the"),  # 9.4 billion weights from a few bytes of JSON
        (lambda d, a: a.update({"layers/1/W": np.full((16, 8), "x")}), "<U1 values"),
        (lambda d, a: a.update({"layers/1/W": np.zeros((16, 8), np.complex64)}), "complex64"),
        (lambda d, a: a.update({"layers/1/W": np.zeros((16, 8))}), "float64 values"),
        (lambda d, a: architecture(d).update(layers={"0": "Dense"}), "not a list of layers"),
        (lambda d, a: architecture(d)["layers"].append(7), "layer 3 is not a"),
        (lambda d, a: architecture(d).update(input_shape=[-4, 4]), "input shape"),
        (lambda d, a: architecture(d).update(input_shape="4x4"), "input shape"),
        (lambda d, a: d.update(history=[1, 2]), "history is not a record"),
        (lambda d, a: d.update(history={"history": {"loss": "low"}}), "curves of numbers"),
        (lambda d, a: d.update(metadata="trained"), "metadata is not a record"),
        (lambda d, a: d.update(metadata={"test": {"accuracy": "0.9"}}), "test.accuracy"),
        (lambda d, a: d.update(metadata={"calibration": {"temperature": -1}}), "in \\[0.04, 25"),
        (lambda d, a: d.update(metadata={"calibration": {"temperature": 1e-300}}), "in \\[0.04"),
        (lambda d, a: d.update(metadata={"data": [1]}), "metadata data is \\[1\\], not a"),
        (lambda d, a: d.update(metadata={"data": {"written_on_paper": "x"}}), "not of type int"),
        (lambda d, a: a.update({"layers/1/W": np.zeros((16, 8), np.uint8)}), "uint8 values"),
        (lambda d, a: architecture(d)["layers"][0].update(
            {"class": "Reshape", "config": {"target_shape": [-1, -16]}}), "1 or more"),
        (lambda d, a: d["compile"]["optimizer"].update(learning_rate="fast"), "compile settings"),
        (lambda d, a: d.update(metadata={"x": json.loads("[" * 40 + "]" * 40)}), "nested"),
    ],
)  # fmt: skip
def test_a_crafted_model_file_gets_one_clear_error(model_file, change, message):
    rewrite(model_file, change)
    with pytest.raises(ModelFileError, match=message) as refused:
        load_model(model_file)
    assert str(refused.value).startswith(str(model_file))


def test_json_nested_a_hundred_thousand_deep_is_a_corrupt_description(model_file):
    deep = "[" * 100_000 + "]" * 100_000
    meta = f'{{"format": "digitnet-model", "format_version": 1, "x": {deep}}}'
    np.savez(model_file, **{META_KEY: np.frombuffer(meta.encode(), np.uint8)})
    with pytest.raises(ModelFileError, match=r"corrupt|nested"):
        load_model(model_file)


def test_a_zip_bomb_is_refused_from_its_declared_sizes(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{META_KEY}.npy", b"")
        with archive.open("layers/1/W.npy", "w", force_zip64=True) as member:
            zeros = bytes(2**20)
            for _ in range(MAX_MODEL_BYTES // 2**20 + 1):
                member.write(zeros)
    assert path.stat().st_size < 2 * 2**20
    refused_cheaply(load_model, path, ModelFileError, "declare 129 MB, more than the 128 MB")


def test_a_file_that_is_not_a_zip_never_gets_numpy_s_pickle_advice(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"\x80\x04K\x01." + bytes(100))  # a pickle
    with pytest.raises(ModelFileError, match=r"not an \.npz archive") as refused:
        load_model(path)
    assert "pickle" not in str(refused.value)


def special_files(tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    endless = tmp_path / "zero.npz"
    endless.symlink_to("/dev/zero")
    return {"named pipe": fifo, "device": endless, "folder": tmp_path}


@pytest.mark.parametrize("kind", ["named pipe", "device", "folder"])
def test_a_special_file_is_refused_without_reading_it(tmp_path, kind):
    path = special_files(tmp_path)[kind]
    with pytest.raises(ModelFileError, match=f"{kind}, not a file"):
        load_model(path)
    with pytest.raises(DataError, match=f"{kind}, not a file"):
        read_idx(path)
    with pytest.raises(ImageError, match=f"{kind}, not a file"):
        prepare(path)


def test_predict_answers_the_others_when_some_files_are_special(tmp_path, mnist, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(255 - mnist[1][0][0]).save(good)
    special = special_files(tmp_path)
    code = main(
        ["predict", "--json", str(special["named pipe"]), str(good), str(special["device"])]
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and records[1]["digit"] == mnist[1][1][0]
    assert "named pipe, not a file" in records[0]["error"]
    assert "device, not a file" in records[2]["error"]


def idx_header(type_code: int, shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


def gzip_of_zeros(prefix: bytes, megabytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip
    zeros = bytes(2**20)
    return (
        packer.compress(prefix)
        + b"".join(packer.compress(zeros) for _ in range(megabytes))
        + packer.flush()
    )


@pytest.mark.slow
def test_a_gzip_bomb_is_inflated_only_as_far_as_its_header_announces(tmp_path):
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip_of_zeros(idx_header(0x08, (10, 28, 28)), 512))  # 512 MB of zeros
    assert bomb.stat().st_size < 2**20
    refused_cheaply(read_idx, bomb, DataError, "more data than its IDX header announces")


def test_an_idx_header_announcing_too_much_is_refused_before_inflating(tmp_path):
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip_of_zeros(idx_header(0x08, (60000, 28, 28, 1000)), 1))
    with pytest.raises(DataError, match=r"announces \(60000, 28, 28, 1000\) values"):
        read_idx(bomb)


def test_float_idx_images_holding_nan_are_refused(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem, shape in [
        ("train-images-idx3-ubyte", (6, 28, 28)),
        ("t10k-images-idx3-ubyte", (2, 28, 28)),
    ]:
        values = np.full(shape, np.nan, ">f4")
        (folder / stem).write_bytes(idx_header(0x0D, shape) + values.tobytes())
    for stem, n in [("train-labels-idx1-ubyte", 6), ("t10k-labels-idx1-ubyte", 2)]:
        (folder / stem).write_bytes(idx_header(0x08, (n,)) + bytes(n))
    with pytest.raises(DataError, match="NaN or infinity"):
        load_mnist(folder)


def test_a_binary_checksum_file_is_one_clear_error(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "MD5SUMS.uncompressed").write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match="not a text file of MD5 sums"):
        load_mnist(folder)


def test_a_crafted_scorecard_is_scored_anew_not_trusted(model_file, mnist):
    from digitnet.data import fingerprint
    from digitnet.modelcard import stored_scorecard

    _, (x_test, y_test) = mnist
    model = load_model(model_file)
    model.metadata["scorecard"] = {
        "test_checksum": fingerprint(x_test, y_test), "temperature": 1.0, "accuracy": 1.0,
        "samples": 10000, "confusion_matrix": np.eye(10, dtype=int).tolist(),
        "mistakes": [{"index": 10**9, "label": 1, "predicted": 2, "confidence": 0.5}],
    }  # fmt: skip
    assert stored_scorecard(model, x_test, y_test, mistakes=24) is None
    model.metadata["scorecard"]["confusion_matrix"] = "many"
    assert stored_scorecard(model, x_test, y_test, mistakes=24) is None


# ------------------------------------------- model files that asked for gigabytes, or crashed


def zip_of(path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def npy(array: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    np.lib.format.write_array(out, array)
    return out.getvalue()


def test_a_description_of_millions_of_numbers_is_refused_before_it_is_parsed(tmp_path):
    """207 KB of npz whose JSON held 40 M numbers took `summary` to 4.35 GB and 22 s."""
    history = {"history": {"loss": [0.5] * 3_000_000}, "epoch": [0]}
    meta = json.dumps({"format": "digitnet-model", "format_version": 1, "history": history})
    path = tmp_path / "model.npz"
    zip_of(path, {f"{META_KEY}.npy": npy(np.frombuffer(meta.encode(), np.uint8))})
    assert path.stat().st_size < 200_000
    refused_cheaply(load_model, path, ModelFileError, "its description takes 15,000,")


def test_an_archive_of_many_members_is_refused_from_its_directory(tmp_path):
    """An npz of a million empty members took 12 s and 691 MB to refuse."""
    path = tmp_path / "model.npz"
    zip_of(path, {f"{i}.npy": b"" for i in range(2000)}, zipfile.ZIP_STORED)
    with pytest.raises(ModelFileError, match="2,000 members, more than the 1,024 allowed"):
        load_model(path)


def test_a_model_whose_one_digit_takes_hundreds_of_megabytes_is_refused_at_load(tmp_path):
    """A 6 KB file of a Conv2D with 100,000 1x1 filters made predict ask for 9.35 GiB."""
    from digitnet.nn import Conv2D, MaxPool2D, Reshape

    model = Sequential([Reshape((28, 28, 1), input_shape=(28, 28)), Conv2D(100_000, 1),
                        MaxPool2D(28), Flatten(), Dense(10, "softmax")])  # fmt: skip
    model.build()
    assert model.sample_bytes > 250 * 2**20
    path = tmp_path / "wide.npz"
    model.save(path)
    refused_cheaply(load_model, path, ModelFileError, "one digit's pass through this model takes")


def test_a_heavy_model_runs_its_passes_in_fewer_rows():
    """Within what loading allows, a pass holds at most PASS_BYTES, whatever the batch."""
    from digitnet.nn import Conv2D, MaxPool2D, Reshape
    from digitnet.nn.model import PASS_BYTES

    model = Sequential([Reshape((28, 28, 1), input_shape=(28, 28)), Conv2D(512, 3, padding="same"),
                        MaxPool2D(28), Flatten(), Dense(10, "softmax")])  # fmt: skip
    model.build()
    rows = PASS_BYTES // model.sample_bytes
    seen = []
    model.plan.forward = lambda X, training: seen.append(len(X)) or np.zeros((len(X), 10))
    model.predict(np.zeros((1000, 28, 28), np.float32), verbose=0)
    assert max(seen) == rows < 256 and sum(seen) == 1000


@pytest.mark.parametrize(
    "layers, words",
    [
        ([Flatten(input_shape=(784,)), Dense(10, "softmax")], "inputs of shape (784,)"),
        ([Flatten(input_shape=(28, 28)), Dense(1000, "softmax")], "gives 1,000 outputs"),
    ],
)
def test_a_model_that_does_not_read_digits_is_refused_before_it_answers(tmp_path, capsys, mnist,
                                                                        layers, words):  # fmt: skip
    """A model of input (784,) served health ok, then every predict 500s; one of 1,000
    classes answered "digit 221"."""
    from digitnet.web.catalog import load_catalog

    path = tmp_path / "odd.npz"
    model = Sequential(layers)
    model.build()
    model.save(path)
    image = tmp_path / "seven.png"
    Image.fromarray(255 - mnist[1][0][0]).save(image)
    assert main(["predict", "--model", str(path), str(image), "--jobs", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and words in captured.err
    assert "28x28 inputs and 10 outputs" in captured.err
    with pytest.raises(NNError, match="28x28 inputs and 10 outputs"):
        load_catalog([str(path)])  # serve stops here, before it announces anything


# ------------------------------------------------------------------------------ Keras files

h5py = pytest.importorskip("h5py")
FIXTURES = Path(__file__).parent / "keras_fixtures"


def legacy_h5(tmp_path, change) -> Path:
    """tutorial.h5 with ``change(h5)`` made to it."""
    path = tmp_path / "model.h5"
    path.write_bytes((FIXTURES / "tutorial.h5").read_bytes())
    with h5py.File(path, "r+") as h5:
        change(h5)
    return path


def one_array_named_twenty_times(h5) -> None:
    group = h5["model_weights"]
    name = next(iter(group))
    group[name].create_dataset("huge", data=np.zeros(20_000_000, np.float32),
                               compression="gzip", chunks=(1_000_000,))  # fmt: skip
    group[name].attrs["weight_names"] = ["huge"] * 20


def twenty_compressed_arrays(tmp_path) -> Path:
    import io

    with zipfile.ZipFile(FIXTURES / "tutorial.keras") as archive:
        config = archive.read("config.json")
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        for k in range(20):
            h5.create_dataset(f"layers/dense/vars/{k}", data=np.zeros(20_000_000, np.float32),
                              compression="gzip", chunks=(1_000_000,))  # fmt: skip
    path = tmp_path / "model.keras"
    zip_of(path, {"config.json": config, "model.weights.h5": weights.getvalue()})
    return path


@pytest.mark.slow
@pytest.mark.parametrize("make", ["h5", "keras"])
def test_weights_are_counted_against_one_budget_each_time_they_are_used(tmp_path, make):
    """A 73 KB .keras of 20 compressed 60 M-value arrays took 4.7 GB and loaded; a .h5
    naming one such array 20 times, the same."""
    if make == "h5":
        path = legacy_h5(tmp_path, one_array_named_twenty_times)
    else:
        path = twenty_compressed_arrays(tmp_path)
    assert path.stat().st_size < 2 * 2**20
    refused_cheaply(load_model, path, ModelFileError, "past the weights a model file may hold")


def configured(h5, change) -> None:
    config = json.loads(h5.attrs["model_config"])
    change(config)
    h5.attrs["model_config"] = json.dumps(config)


def test_keras_2_0_s_list_of_layers_is_read(tmp_path):
    """Keras 2.0 wrote a Sequential's config as the list of its layers: AttributeError."""
    path = legacy_h5(tmp_path, lambda h5: configured(
        h5, lambda c: c.update(config=c["config"]["layers"])))  # fmt: skip
    digits = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    expected = load_model(FIXTURES / "tutorial.h5").predict(digits, verbose=0)
    np.testing.assert_array_equal(load_model(path).predict(digits, verbose=0), expected)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda c: c["config"]["layers"].append(7), "layer 5 of the config is not a"),
        (lambda c: c["config"].update(x=json.loads("[" * 40 + "]" * 40)), "nested at most"),
    ],
)
def test_a_crafted_keras_config_is_one_clear_error(tmp_path, change, words):
    path = legacy_h5(tmp_path, lambda h5: configured(h5, change))
    with pytest.raises(ModelFileError, match=words):
        load_model(path)


def test_a_keras_config_nested_a_hundred_thousand_deep_is_one_clear_error(tmp_path):
    """json.loads raised RecursionError."""
    deep = '{"class_name": "Sequential", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = legacy_h5(tmp_path, lambda h5: h5.attrs.__setitem__("model_config", deep))
    with pytest.raises(ModelFileError, match="nested at most"):
        load_model(path)


def test_a_soft_link_loop_in_an_h5_file_is_one_clear_error(tmp_path):
    """h5py raised RuntimeError."""

    def loop(h5):
        group = h5["model_weights"]
        name = next(iter(group))
        group[name]["a"] = h5py.SoftLink(f"/model_weights/{name}/b")
        group[name]["b"] = h5py.SoftLink(f"/model_weights/{name}/a")
        group[name].attrs["weight_names"] = ["a", "b"]

    with pytest.raises(ModelFileError, match=r"model\.h5: not a readable Keras \.h5"):
        load_model(legacy_h5(tmp_path, loop))


def test_a_calibration_without_a_temperature_is_no_calibration(model_file):
    """The fuzzer's find: {"calibration": {"temperature": null}} was a TypeError traceback."""
    from digitnet.reading.recognizer import Recognizer

    model = Sequential([Flatten(input_shape=(28, 28)), Dense(10, "softmax")])
    model.build()
    model.metadata = {"calibration": {"temperature": None}}
    model.save(model_file)
    assert Recognizer(load_model(model_file)).temperature == 1.0


def test_a_model_whose_outputs_are_not_numbers_is_refused_by_the_tools(model_file):
    """A batch-norm variance below 0 (a fuzzed file's) made every output NaN."""
    from digitnet.nn import BatchNorm
    from digitnet.reading.recognizer import Recognizer

    model = Sequential([Flatten(input_shape=(28, 28)), BatchNorm(), Dense(10, "softmax")])
    model.build()
    model.layers[1].state["moving_variance"][...] = -5
    model.save(model_file)
    with pytest.raises(NNError, match="gives NaN or infinite outputs"):
        Recognizer(load_model(model_file))
