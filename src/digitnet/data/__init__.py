"""Digit data: the bundled MNIST, readers for IDX, Keras .npz and Kaggle CSV files."""

from digitnet.data.errors import DataError
from digitnet.data.formats import read_kaggle_csv, read_keras_npz
from digitnet.data.idx import parse_idx, read_idx
from digitnet.data.labelled_folder import read_labelled_folder
from digitnet.data.mnist import fingerprint, load_mnist, read_idx_folder, to_float

__all__ = [
    "DataError",
    "fingerprint",
    "load_mnist",
    "parse_idx",
    "read_idx",
    "read_idx_folder",
    "read_kaggle_csv",
    "read_keras_npz",
    "read_labelled_folder",
    "to_float",
]
