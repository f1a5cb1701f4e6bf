"""A folder of labelled digit images: ``labels.csv`` (columns file,label) beside the images, as
the real-world evaluation sets (USPS, Semeion) are laid out."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from digitnet.data.errors import DataError


def read_labelled_folder(folder: str | os.PathLike, images: str = "images"):
    """(paths, labels): the image files listed in ``folder/labels.csv``, found in
    ``folder/images``, and their labels as an int array (N,)."""
    folder = Path(folder)
    table = folder / "labels.csv"
    try:
        with table.open(newline="") as file:
            rows = list(csv.DictReader(file))
    except FileNotFoundError:
        raise DataError(f"{table}: no such file") from None
    try:
        paths = [folder / images / row["file"] for row in rows]
        labels = np.array([int(row["label"]) for row in rows], dtype=np.intp)
    except (KeyError, ValueError, TypeError) as err:
        raise DataError(
            f"{table}: expected columns file,label with whole-number labels ({err})"
        ) from None
    return paths, labels
