"""Accuracy on real handwriting that is not MNIST: the USPS test split and Semeion, read from
their PNG files through digitnet.vision (the same pipeline as the CLI and the web app).

    python benchmarks/realworld.py [--model cnn|tutorial|PATH] [--large]

The sets live outside the project (../shared/data/realworld, or $DIGITNET_REALWORLD); they are
for evaluation only — never trained on, never copied into the repository.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from digitnet.vision import prepare
from digitnet.zoo import resolve_model

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "realworld"


def load_set(folder: Path, large: bool = False):
    """(paths, labels) of one real-world set."""
    with (folder / "labels.csv").open() as file:
        rows = list(csv.DictReader(file))
    images = folder / ("images_large" if large else "images")
    return [images / row["file"] for row in rows], np.array([int(row["label"]) for row in rows])


def evaluate(model, paths, labels) -> dict:
    prepared = [prepare(path) for path in paths]
    rejected = sum(p.image is None for p in prepared)
    inputs = np.stack([p.image if p.image is not None else np.zeros((28, 28)) for p in prepared])
    predicted = model.predict(inputs.astype(np.float32)).argmax(axis=1)
    predicted[[p.image is None for p in prepared]] = -1  # a rejected digit counts as wrong
    return {"accuracy": float(np.mean(predicted == labels)), "rejected": rejected,
            "count": len(labels)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="cnn (default), tutorial, or a model file")
    parser.add_argument("--large", action="store_true", help="use the 64x64 renderings")
    parser.add_argument("--root", default=os.environ.get("DIGITNET_REALWORLD", DEFAULT_ROOT))
    args = parser.parse_args()
    model = resolve_model(args.model)
    print(f"model: {model.name}; images: {'64x64' if args.large else 'native 16x16'}")
    for name in ("usps", "semeion"):
        paths, labels = load_set(Path(args.root) / name, args.large)
        start = time.perf_counter()
        result = evaluate(model, paths, labels)
        print(
            f"  {name:8s} accuracy {result['accuracy']:.4f} on {result['count']} digits"
            f" ({result['rejected']} rejected as no digit; {time.perf_counter() - start:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
