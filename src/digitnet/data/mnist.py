"""The MNIST digits: the copy bundled with digitnet, and the sources a user can point to.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges, licensed CC BY-SA 3.0.
The bundled files are byte-identical to the official ones; their content is checked against
``MD5SUMS.uncompressed`` on every load.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from digitnet.data.errors import DataError
from digitnet.data.formats import check_digits, read_kaggle_csv, read_keras_npz
from digitnet.data.idx import parse_idx, read_bytes, read_file

BUNDLED_DIR = Path(__file__).with_name("mnist")
DATA_ENV = "DIGITNET_DATA"
CHECKSUM_FILE = "MD5SUMS.uncompressed"
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
CSV_TEST_FRACTION = 1 / 7  # a single labelled CSV is split like MNIST's 60k/10k

Split = tuple[np.ndarray, np.ndarray]


def read_checksums(folder: Path) -> dict[str, str]:
    """``{file name: md5}`` from a folder's MD5SUMS.uncompressed, or {} when it has none."""
    path = folder / CHECKSUM_FILE
    if not path.exists():
        return {}
    try:
        text = read_file(path, max_bytes=2**20).decode("ascii")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file of MD5 sums") from None
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def _find(folder: Path, stem: str) -> Path:
    # The official names, with the common variants (gzipped, '.' for the last '-').
    dotted = stem[::-1].replace("-", ".", 1)[::-1]
    for name in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"{folder}: no {stem} file (also looked for {stem}.gz)")


def read_idx_folder(folder: str | os.PathLike) -> tuple[Split, Split]:
    """The four MNIST IDX files from ``folder``, checked against its MD5 sums if it has them."""
    folder = Path(folder)
    checksums = read_checksums(folder)
    arrays = {}
    for key, stem in FILES.items():
        path = _find(folder, stem)
        content = read_bytes(path)
        if stem in checksums:
            digest = hashlib.md5(content).hexdigest()
            if digest != checksums[stem]:
                raise DataError(
                    f"{path}: checksum mismatch: MD5 of the content is {digest}, expected"
                    f" {checksums[stem]} ({CHECKSUM_FILE}); the file is corrupt — copy it again"
                )
        arrays[key] = parse_idx(content, name=str(path))
    train = check_digits(arrays["x_train"], arrays["y_train"], f"{folder} (train)")
    test = check_digits(arrays["x_test"], arrays["y_test"], f"{folder} (test)")
    return train, test


def load_mnist(source: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """MNIST as Keras returns it: ``(x_train, y_train), (x_test, y_test)``.

    x_* are uint8 images (N, 28, 28) with ink bright on dark, y_* uint8 labels (N,): 60,000
    training and 10,000 test digits for the real MNIST.

    ``source`` (default: the environment variable DIGITNET_DATA, else the bundled copy) may be
    a folder with the four IDX files (gzipped or not), Keras' ``mnist.npz``, or Kaggle's
    digit-recognizer ``train.csv`` (its last seventh becomes the test split).
    """
    source = source or os.environ.get(DATA_ENV) or BUNDLED_DIR
    path = Path(source)
    if path.is_dir():
        return read_idx_folder(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix.lower() == ".npz":
        return read_keras_npz(path)
    if path.suffix.lower() == ".csv":
        x, y = read_kaggle_csv(path)
        n_test = max(1, round(len(x) * CSV_TEST_FRACTION))
        return (x[:-n_test], y[:-n_test]), (x[-n_test:], y[-n_test:])
    raise DataError(
        f"{path}: unknown data source; give a folder of IDX files, a Keras .npz or a Kaggle .csv"
    )


def fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 over the arrays' shapes and bytes: identifies the exact data a model saw."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(repr(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return "sha256:" + digest.hexdigest()


def describe_source(source: str | os.PathLike | None) -> str:
    """A human-readable name of the source ``load_mnist(source)`` reads."""
    if source:
        return str(source)
    if os.environ.get(DATA_ENV):
        return f"{os.environ[DATA_ENV]} (from ${DATA_ENV})"
    return "bundled MNIST"


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 in [0, 1], the engine's input convention."""
    return np.multiply(x, np.float32(1 / 255), dtype=np.float32)
