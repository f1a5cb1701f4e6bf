"""Hostile and odd files: model files, data files and images crafted to hang, exhaust memory or
crash. Each gets one clear error naming the file — quickly, without allocating what the file
claims, and without costing the other files of the same command their answers."""

import json
import os
import resource
import zipfile
import zlib

import numpy as np
import pytest
from modelfiles import rewrite
from PIL import Image

from digitnet.cli import main
from digitnet.data import DataError, load_mnist
from digitnet.data.idx import read_idx
from digitnet.nn import SGD, Dense, Flatten, ModelFileError, Sequential, load_model
from digitnet.nn.io import MAX_ARRAY_BYTES, META_KEY
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
        (lambda d, a: d.update(metadata={"calibration": {"temperature": -1}}), "> 0"),
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
            for _ in range(MAX_ARRAY_BYTES // 2**20 + 1):
                member.write(zeros)
    assert path.stat().st_size < 2 * 2**20
    refused_cheaply(load_model, path, ModelFileError, "declare 257 MB, more than the 256 MB")


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
