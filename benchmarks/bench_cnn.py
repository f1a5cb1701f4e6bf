"""Benchmark: training epochs (60,000 images, batch 128, Adam) of the Keras example CNN —
Conv 32 3x3 -> MaxPool -> Conv 64 3x3 -> MaxPool -> Dense 128 -> Dense 10 — in digitnet and,
where importable, in PyTorch with the same architecture, an epoch of each in turns, medians
compared. Before them, one epoch of the ``cnn`` preset (batch norm, augmentation, validated on
the test set as ``digitnet train`` does) in a fresh process, with that process's peak memory —
and, with ``--baseline``, the same epoch of another digitnet's code, taking turns with this one
(e.g. the code an issue was filed against). The first line names the BLAS kernels NumPy runs
on (see ``common.blas_kernels``: a machine may force older ones):

    python benchmarks/bench_cnn.py [--epochs 3] [--samples 60000] [--repeats 1]
    git worktree add /tmp/before 2b5f74e
    python benchmarks/bench_cnn.py --baseline /tmp/before/src --repeats 2
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import os
import time

import numpy as np
from common import blas_kernels, json_of_fresh_process, row, torch_installed

from digitnet.nn import Adam, Conv2D, Dense, Flatten, MaxPool2D, Reshape, Sequential

TARGET_RATIO = 1.0  # digitnet's epoch takes no longer than PyTorch's
TARGET_PEAK_MB = 2048
PRESET_TARGET_PEAK_MB = 1200  # the cnn preset's training process
PRESET_TARGET_SPEEDUP = 2.0  # against the baseline's code, when given

# One epoch from scratch in a fresh interpreter, as JSON: its seconds, the test accuracy after
# it and the process's peak memory. argv: the kind ("preset": the cnn preset, validated on the
# test set as ``digitnet train`` runs it, with whichever digitnet PYTHONPATH finds — a baseline's
# too; "digitnet" or "torch": the Keras example CNN, neither framework loaded beside the other),
# the training digits, this folder.
_EPOCH = """
import json, sys, time
kind, samples = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from digitnet.blas import short_blas_spin
short_blas_spin()
from digitnet.data import load_mnist, to_float
from digitnet.memory import reuse_freed_memory
reuse_freed_memory()
(x8, y), (x8_test, y_test) = load_mnist()
x, y, x_test = to_float(x8[:samples]), y[:samples], to_float(x8_test)
about = "digitnet"
if kind == "preset":
    from digitnet.training import TrainConfig, build_model
    from digitnet.zoo import get_preset
    model = build_model(TrainConfig(model="cnn", seed=0), samples=samples)
    start = time.perf_counter()
    history = model.fit(x, y, epochs=1, batch_size=128, seed=0, verbose=0,
                        augment=get_preset("cnn").augment, validation_data=(x_test, y_test))
    seconds = time.perf_counter() - start
    accuracy = history.history["val_accuracy"][-1]
elif kind == "torch":
    import torch
    from bench_cnn import TorchCNN
    model = TorchCNN(torch, x, y)
    seconds = model.epoch()
    accuracy = model.accuracy(x_test, y_test)
    about = f"PyTorch {torch.__version__} (threads {torch.get_num_threads()})"
else:
    from bench_cnn import keras_example_cnn
    model = keras_example_cnn()
    seconds = model.fit(x, y, epochs=1, batch_size=128, verbose=False).history["time"][0]
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
status = open("/proc/self/status").read()  # VmHWM: ru_maxrss counts the parent's, kept at exec
peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "accuracy": float(accuracy), "peak_mb": peak_kb / 1024,
                  "about": about}))
"""


def epoch(kind: str, samples: int, source: str | None = None) -> dict:
    """One ``_EPOCH`` of ``kind`` in a fresh process: {"seconds", "accuracy", "peak_mb",
    "about"}; ``source``: the src directory of another digitnet to run instead of this one."""
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    here = os.path.dirname(os.path.abspath(__file__))
    return json_of_fresh_process(["-c", _EPOCH, kind, str(samples), here], env)


def timed(results: list[dict]) -> tuple[float, str]:
    """The median seconds of ``epoch`` results, and their runs as words."""
    return float(np.median([r["seconds"] for r in results])), "runs " + ", ".join(
        f"{r['seconds']:.1f}" for r in results
    )


def peak_row(results: list[dict], target_mb: int) -> str:
    peak_mb = max(r["peak_mb"] for r in results)
    verdict = "meets" if peak_mb <= target_mb else "MISSES"
    return row("  its process's peak memory", f"{peak_mb:.0f} MB",
               f"{verdict} the {target_mb} MB target")  # fmt: skip


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


class TorchCNN:
    """The same network in PyTorch, trained one epoch at a time (``epoch`` returns seconds)."""

    def __init__(self, torch, x, y):
        torch.manual_seed(0)
        nn = self.nn = torch.nn
        self.torch = torch
        self.model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10),
        )  # fmt: skip
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss = nn.CrossEntropyLoss()
        self.X = torch.from_numpy(x).unsqueeze(1)  # (N, 1, 28, 28)
        self.Y = torch.from_numpy(y.astype(np.int64))

    def epoch(self) -> float:
        start = time.perf_counter()
        self.model.train()
        order = self.torch.randperm(len(self.X))
        for i in range(0, len(self.X), 128):
            batch = order[i : i + 128]
            self.optimizer.zero_grad()
            self.loss(self.model(self.X[batch]), self.Y[batch]).backward()
            self.optimizer.step()
        return time.perf_counter() - start

    def accuracy(self, x_test, y_test) -> float:
        self.model.eval()
        with self.torch.no_grad():
            out = self.model(self.torch.from_numpy(x_test).unsqueeze(1))
        return float((out.argmax(1).numpy() == y_test).mean())


def compare_presets(samples: int, repeats: int, baseline: str | None) -> None:
    ours, theirs = [], []
    for _ in range(repeats):  # taking turns, so both see the machine's same moods
        ours.append(epoch("preset", samples))
        if baseline:
            theirs.append(epoch("preset", samples, baseline))
    seconds, runs = timed(ours)
    print(row("cnn preset epoch (batch norm, augmentation)", f"{seconds:.1f} s", runs))
    print(peak_row(ours, PRESET_TARGET_PEAK_MB))
    if baseline:
        before, runs = timed(theirs)
        print(row("  the same epoch, baseline code", f"{before:.1f} s", f"{runs}; {baseline}"))
        speedup = before / seconds
        verdict = "meets" if speedup >= PRESET_TARGET_SPEEDUP else "MISSES"
        print(row("  speed-up over the baseline", f"{speedup:.2f}x",
                  f"{verdict} the {PRESET_TARGET_SPEEDUP:.0f}x target"))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="Keras CNN epochs, each side")
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=1, help="cnn preset epochs to time")
    parser.add_argument("--baseline", help="src directory of another digitnet to compare with")
    args = parser.parse_args()
    print(f"NumPy's BLAS: {blas_kernels()}")
    compare_presets(args.samples, args.repeats, args.baseline)
    print(
        f"Keras example CNN, {args.samples:,} images per epoch, batch 128, Adam: an epoch "
        "from scratch in a fresh process, the two frameworks taking turns"
    )
    torch = torch_installed()
    ours, theirs = [], []
    for _ in range(args.epochs):  # taking turns, so both see the machine's same moods
        ours.append(epoch("digitnet", args.samples))
        if torch:
            theirs.append(epoch("torch", args.samples))
    seconds, runs = timed(ours)
    print(row("digitnet epoch", f"{seconds:.1f} s",
              f"{runs}; test accuracy {ours[-1]['accuracy']:.4f} after it"))  # fmt: skip
    print(peak_row(ours, TARGET_PEAK_MB))
    if not torch:
        print(row("PyTorch", "not installed", "pip install torch==2.13.0 to compare"))
        return 0
    their_seconds, runs = timed(theirs)
    print(row(f"{theirs[-1]['about']} epoch", f"{their_seconds:.1f} s",
              f"{runs}; test accuracy {theirs[-1]['accuracy']:.4f}"))  # fmt: skip
    ratio = seconds / their_seconds
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(row("ratio digitnet / PyTorch (medians)", f"{ratio:.2f}x",
              f"{verdict} the {TARGET_RATIO}x target"))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
