"""Fuzz the model-file readers: thousands of seeded mutations of every format digitnet reads
(its own .npz, Keras 3's .keras, legacy Keras .h5), each loaded as the tools load a model.

Each must be a model that reads a digit into ten probabilities or one clear error line —
never another exception, a crash of this process, a wait past the HDF5 reader's time limit,
or memory the file did not earn. Reports, per format, what became of the mutations, how many
the HDF5 reader's own process absorbed (a crash, its time limit), the slowest loads and this
process's peak memory; exits 1 if any mutation broke the rule.

    python benchmarks/fuzz_models.py [--count 3000] [--seed 1]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' file crafting: one mutator for both

from modelfiles import mutations, try_model

FILES = {
    "npz": ROOT / "src/digitnet/models/tutorial.npz",
    "npz (cnn)": ROOT / "src/digitnet/models/cnn.npz",
    "keras": ROOT / "tests/keras_fixtures/tutorial.keras",
    "h5": ROOT / "tests/keras_fixtures/tutorial.h5",
    "h5 (cnn)": ROOT / "tests/keras_fixtures/cnn.h5",
}


COLUMNS = (("loaded", 7), ("refused", 8), ("absorbed", 9), ("broke", 6))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="mutations of each file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    broken = 0
    heads = " ".join(f"{key:>{width}}" for key, width in COLUMNS)
    print(f"{'file':10} {heads} {'median ms':>10} {'max s':>6}")
    for kind, path in FILES.items():
        outcomes: Counter = Counter()
        seconds = []
        for k, data in enumerate(mutations(path.read_bytes(), args.count, args.seed)):
            started = time.monotonic()
            try:
                outcomes[try_model(data, f"fuzzed{path.suffix}")] += 1
            except Exception:
                outcomes["broke"] += 1
                print(f"  {kind} mutation {k}:\n" + traceback.format_exc(limit=3))
            except BaseException as err:  # what no file may raise either
                outcomes["broke"] += 1
                print(f"  {kind} mutation {k}: {type(err).__name__}")
            seconds.append(time.monotonic() - started)
        broken += outcomes["broke"]
        counts = " ".join(f"{outcomes[key]:>{width}}" for key, width in COLUMNS)
        print(f"{kind:10} {counts} {1000 * statistics.median(seconds):>10.1f}"
              f" {max(seconds):>6.1f}", flush=True)  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:.0f} MB")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
