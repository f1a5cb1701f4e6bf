"""Readers for the other common MNIST distributions: Keras' ``mnist.npz`` and Kaggle's
digit-recognizer CSV. Each returns uint8 images (N, 28, 28) and uint8 labels (N,)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from digitnet.data.errors import DataError
from digitnet.data.idx import MAX_IDX_BYTES, read_file

SIDE = 28
PIXELS = SIDE * SIDE


def check_digits(x: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a labelled digit set and return it as uint8 arrays (N, 28, 28) and (N,)."""
    if x.ndim == 2 and x.shape[1] == PIXELS:
        x = x.reshape(-1, SIDE, SIDE)
    if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{name}: expected images of shape (N, 28, 28); got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(
            f"{name}: {len(x)} images but labels of shape {y.shape}; the counts must match"
        )
    for label, values, top in (("pixel", x, 255), ("label", y, 9)):
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise DataError(f"{name}: {label} values include NaN or infinity")
        if values.dtype.kind not in "iuf":
            raise DataError(f"{name}: {label} values are {values.dtype}, not numbers")
        if values.size and (values.min() < 0 or values.max() > top):
            raise DataError(f"{name}: {label} values must be in 0..{top}")
    return x.astype(np.uint8, copy=False), y.astype(np.uint8, copy=False)


def read_keras_npz(path: str | os.PathLike):
    """Keras' ``mnist.npz``: arrays x_train, y_train, x_test, y_test."""
    path = Path(path)
    keys = ("x_train", "y_train", "x_test", "y_test")
    content = read_file(path)
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            declared = sum(member.file_size for member in archive.infolist())
        if declared > MAX_IDX_BYTES:
            raise DataError(
                f"{path}: its arrays declare {declared / 2**20:,.0f} MB, more than the"
                f" {MAX_IDX_BYTES // 2**20} MB accepted"
            )
        with np.load(io.BytesIO(content), allow_pickle=False) as npz:
            missing = [key for key in keys if key not in npz.files]
            if missing:
                raise DataError(
                    f"{path}: not a Keras mnist.npz (missing {', '.join(missing)};"
                    f" it has {', '.join(npz.files) or 'no arrays'})"
                )
            arrays = {key: npz[key] for key in keys}
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        raise DataError(f"{path}: not a readable .npz file (truncated or corrupt?)") from None
    train = check_digits(arrays["x_train"], arrays["y_train"], f"{path} (train)")
    test = check_digits(arrays["x_test"], arrays["y_test"], f"{path} (test)")
    return train, test


def read_kaggle_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Kaggle's digit-recognizer ``train.csv``: a header, then ``label,pixel0,...,pixel783``."""
    path = Path(path)
    content = read_file(path)
    try:
        with io.StringIO(content.decode("utf-8")) as file:
            header = file.readline().strip().split(",")
            if len(header) != PIXELS + 1 or header[0].strip().lower() != "label":
                raise DataError(
                    f"{path}: line 1: expected the header label,pixel0,...,pixel783"
                    f" ({PIXELS + 1} columns); got {len(header)} columns"
                )
            table = np.loadtxt(file, delimiter=",", dtype=np.int64, ndmin=2)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    except DataError:
        raise
    except ValueError as err:
        # NumPy names the row counting from the first data row; the file's line is one more.
        raise DataError(f"{path}: malformed CSV (rows counted after the header): {err}") from None
    if table.shape[1] != PIXELS + 1:
        raise DataError(f"{path}: expected {PIXELS + 1} columns; got {table.shape[1]}")
    return check_digits(table[:, 1:], table[:, 0], str(path))
