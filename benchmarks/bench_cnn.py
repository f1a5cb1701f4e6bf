"""Benchmark: one training epoch (60,000 images, batch 128, Adam) of the Keras example CNN —
Conv 32 3x3 -> MaxPool -> Conv 64 3x3 -> MaxPool -> Dense 128 -> Dense 10 — in digitnet and,
where importable, in PyTorch with the same architecture, one straight after the other. Before
them, one epoch of the ``cnn`` preset (batch norm, augmentation, validated on the test set as
``digitnet train`` does) in a fresh process, with that process's peak memory — and, with
``--baseline``, the same epoch of another digitnet's code, taking turns with this one (e.g.
the code an issue was filed against):

    python benchmarks/bench_cnn.py [--epochs 1] [--samples 60000] [--repeats 1]
    git worktree add /tmp/before 2b5f74e
    python benchmarks/bench_cnn.py --baseline /tmp/before/src --repeats 2
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from common import row, try_import_torch

from digitnet.data import load_mnist, to_float
from digitnet.memory import reuse_freed_memory
from digitnet.nn import Adam, Conv2D, Dense, Flatten, MaxPool2D, Reshape, Sequential

TARGET_RATIO = 1.0  # digitnet's epoch takes no longer than PyTorch's
TARGET_PEAK_MB = 2048
PRESET_TARGET_PEAK_MB = 1200  # the cnn preset's training process
PRESET_TARGET_SPEEDUP = 2.0  # against the baseline's code, when given

# One epoch of the cnn preset in a fresh interpreter (whichever digitnet PYTHONPATH finds):
# its time and the process's peak memory, as JSON.
_PRESET_EPOCH = """
import json, sys, time
from digitnet.blas import short_blas_spin
short_blas_spin()
from digitnet.data import load_mnist, to_float
from digitnet.memory import reuse_freed_memory
from digitnet.training import TrainConfig, build_model
from digitnet.zoo import get_preset
reuse_freed_memory()
samples = int(sys.argv[1])
(x8, y), (x8_test, y_test) = load_mnist()
x, y, x_test = to_float(x8[:samples]), y[:samples], to_float(x8_test)
model = build_model(TrainConfig(model="cnn", seed=0), samples=samples)
start = time.perf_counter()  # as digitnet train runs it: validated on the test set
model.fit(x, y, epochs=1, batch_size=128, seed=0, verbose=0, augment=get_preset("cnn").augment,
          validation_data=(x_test, y_test))
seconds = time.perf_counter() - start
status = open("/proc/self/status").read()  # VmHWM: ru_maxrss counts the parent's, kept at exec
peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024}))
"""


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


def preset_epoch(samples: int, source: str | None = None) -> dict:
    """One cnn-preset epoch in a fresh process: {"seconds", "peak_mb"}; ``source``: the src
    directory of another digitnet to run instead of this one."""
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", _PRESET_EPOCH, str(samples)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_presets(samples: int, repeats: int, baseline: str | None) -> None:
    ours, theirs = [], []
    for _ in range(repeats):  # taking turns, so both see the machine's same moods
        ours.append(preset_epoch(samples))
        if baseline:
            theirs.append(preset_epoch(samples, baseline))
    seconds = np.median([r["seconds"] for r in ours])
    peak_mb = max(r["peak_mb"] for r in ours)
    runs = ", ".join(f"{r['seconds']:.1f}" for r in ours)
    print(row("cnn preset epoch (batch norm, augmentation)", f"{seconds:.1f} s", f"runs {runs}"))
    verdict = "meets" if peak_mb <= PRESET_TARGET_PEAK_MB else "MISSES"
    print(row("  its process's peak memory", f"{peak_mb:.0f} MB",
              f"{verdict} the {PRESET_TARGET_PEAK_MB} MB target"))  # fmt: skip
    if baseline:
        before = np.median([r["seconds"] for r in theirs])
        runs = ", ".join(f"{r['seconds']:.1f}" for r in theirs)
        print(row("  the same epoch, baseline code", f"{before:.1f} s", f"runs {runs}; {baseline}"))
        speedup = before / seconds
        verdict = "meets" if speedup >= PRESET_TARGET_SPEEDUP else "MISSES"
        print(row("  speed-up over the baseline", f"{speedup:.2f}x",
                  f"{verdict} the {PRESET_TARGET_SPEEDUP:.0f}x target"))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=1, help="cnn preset epochs to time")
    parser.add_argument("--baseline", help="src directory of another digitnet to compare with")
    args = parser.parse_args()
    reuse_freed_memory()  # as the digitnet command does
    (x8, y), (x8_test, y_test) = load_mnist()
    x, y = to_float(x8[: args.samples]), y[: args.samples]
    x_test = to_float(x8_test)
    # First the cnn preset in fresh processes, while this one is idle (no PyTorch threads yet);
    # then the Keras CNN in digitnet and straight after in PyTorch, so the ratio sees one moment.
    compare_presets(args.samples, args.repeats, args.baseline)
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
    else:
        compare_torch(torch, x, y, x_test, y_test, args.epochs, ours)
    return 0


def compare_torch(torch, x, y, x_test, y_test, epochs, ours) -> None:
    theirs, torch_accuracy = torch_epochs(torch, x, y, x_test, y_test, epochs)
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


if __name__ == "__main__":
    raise SystemExit(main())
