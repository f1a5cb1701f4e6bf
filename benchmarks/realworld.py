"""Accuracy on real handwriting that is not MNIST: the USPS test split and Semeion, read from
their PNG files through digitnet.vision (the same pipeline as the CLI and the web app).

    python benchmarks/realworld.py [--model cnn|tutorial|PATH] [--large]

The sets live outside the project (../shared/data/realworld, or $DIGITNET_REALWORLD); they are
for evaluation only — never trained on, never copied into the repository.
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import os
import time
from pathlib import Path

from digitnet.data import DataError, read_labelled_folder
from digitnet.evaluation import evaluate_files
from digitnet.zoo import resolve_model

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "realworld"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="cnn (default), tutorial, or a model file")
    parser.add_argument("--large", action="store_true", help="use the 64x64 renderings")
    parser.add_argument("--root", default=os.environ.get("DIGITNET_REALWORLD", DEFAULT_ROOT))
    args = parser.parse_args()
    model = resolve_model(args.model)
    print(f"model: {model.name}; images: {'64x64' if args.large else 'native 16x16'}")
    for name in ("usps", "semeion"):
        images = "images_large" if args.large else "images"
        folder = Path(args.root) / name
        if not (folder / "labels.csv").is_file():
            print(f"  {name:8s} skipped: no {folder / 'labels.csv'} (--root names the sets)")
            continue
        try:
            paths, labels = read_labelled_folder(folder, images)
        except DataError as error:
            print(f"  {name:8s} skipped: {error}")
            continue
        start = time.perf_counter()
        result = evaluate_files(model, paths, labels)
        print(
            f"  {name:8s} accuracy {result['accuracy']:.4f} on {result['count']} digits"
            f" ({result['rejected']} rejected as no digit; {time.perf_counter() - start:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
