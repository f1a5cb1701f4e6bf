"""Benchmark: one training epoch (60,000 images, batch 128, Adam) of the Keras example CNN —
Conv 32 3x3 -> MaxPool -> Conv 64 3x3 -> MaxPool -> Dense 128 -> Dense 10 — in digitnet and,
where importable, in PyTorch with the same architecture, side by side in one run.

    python benchmarks/bench_cnn.py [--epochs 1] [--samples 60000]
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import resource
import time

import numpy as np
from common import row, try_import_torch

from digitnet.data import load_mnist, to_float
from digitnet.memory import reuse_freed_memory
from digitnet.nn import Adam, Conv2D, Dense, Flatten, MaxPool2D, Reshape, Sequential

TARGET_RATIO = 1.5  # digitnet's epoch may take at most 1.5x PyTorch's
TARGET_PEAK_MB = 2048


def keras_example_cnn(seed: int = 0) -> Sequential:
    model = Sequential(
        [
            Reshape((28, 28, 1), input_shape=(28, 28)),
            Conv2D(32, 3, activation="relu"),
            MaxPool2D(2),
            Conv2D(64, 3, activation="relu"),
            MaxPool2D(2),
            Flatten(),
            Dense(128, activation="relu"),
            Dense(10, activation="softmax"),
        ],
        seed=seed,
        name="keras-example-cnn",
    )
    model.compile(optimizer=Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def torch_epochs(torch, x, y, x_test, y_test, epochs):
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    X = torch.from_numpy(x).unsqueeze(1)  # (N, 1, 28, 28)
    Y = torch.from_numpy(y.astype(np.int64))
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(X))
        for i in range(0, len(X), 128):
            batch = order[i : i + 128]
            optimizer.zero_grad()
            loss_fn(model(X[batch]), Y[batch]).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(x_test).unsqueeze(1)).argmax(1).numpy() == y_test).mean()
    return times, float(accuracy)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=60000)
    args = parser.parse_args()
    reuse_freed_memory()  # as the digitnet command does
    (x8, y), (x8_test, y_test) = load_mnist()
    x, y = to_float(x8[: args.samples]), y[: args.samples]
    x_test = to_float(x8_test)
    print(f"Keras example CNN, {len(x):,} images per epoch, batch 128, Adam")

    model = keras_example_cnn()
    history = model.fit(x, y, epochs=args.epochs, batch_size=128, verbose=False)
    ours = history.history["time"]
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        row(
            "digitnet epoch",
            f"{np.median(ours):.1f} s",
            f"test accuracy {accuracy:.4f} after {args.epochs} epoch(s)",
        )
    )
    verdict = "meets" if peak_mb <= TARGET_PEAK_MB else "MISSES"
    print(
        row(
            "peak memory of this process so far",
            f"{peak_mb:.0f} MB",
            f"{verdict} the {TARGET_PEAK_MB} MB target",
        )
    )

    torch = try_import_torch()
    if torch is None:
        print(row("PyTorch", "not installed", "pip install torch==2.13.0 to compare"))
        return 0
    theirs, torch_accuracy = torch_epochs(torch, x, y, x_test, y_test, args.epochs)
    ratio = np.median(ours) / np.median(theirs)
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(
        row(
            f"PyTorch {torch.__version__} epoch (threads {torch.get_num_threads()})",
            f"{np.median(theirs):.1f} s",
            f"test accuracy {torch_accuracy:.4f}",
        )
    )
    print(row("ratio digitnet / PyTorch", f"{ratio:.2f}x", f"{verdict} the {TARGET_RATIO}x target"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
